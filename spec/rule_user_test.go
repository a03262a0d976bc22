package spec

import (
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestWindowIDsRefused: a process outside a user namespace of its own may
// not run with a host id of the runtime's window for pods' ranges (it
// would be another pod's root); inside its own, the ids are its own.
func TestWindowIDsRefused(t *testing.T) {
	window := IDRange{HostID: 1879048192, Size: 65536 * 4}
	in := Inputs{Host: Host{UnprivilegedPortSysctl: true, UsernsWindow: window}}
	for _, l := range []string{"restricted", "baseline", "strict"} {
		for name, u := range map[string]specs.User{
			"uid":   {UID: window.HostID + 5, GID: 1000},
			"gid":   {UID: 1000, GID: window.HostID},
			"group": {UID: 1000, GID: 1000, AdditionalGids: []uint32{window.HostID + 65536*4 - 1}},
		} {
			s := readSpec(t, "ctr-run")
			s.Process.User = u
			_, err := Harden(s, level(t, l), in)
			var refused *RefusedError
			if !errors.As(err, &refused) || !strings.Contains(err.Error(), "runtime's window for pods' user namespaces") || !strings.Contains(err.Error(), "hostUsers: false") {
				t.Errorf("%s, %s in the window: %v, want a refusal", l, name, err)
			}
		}
		s := readSpec(t, "ctr-run")
		s.Process.User = specs.User{UID: window.HostID - 1, GID: window.HostID + window.Size}
		if _, err := Harden(s, level(t, l), in); err != nil {
			t.Errorf("%s, ids beside the window: %v", l, err)
		}
	}
	// In a user namespace of its own (hostUsers: false), its ids are not
	// the host's.
	s := readSpec(t, "ctr-run")
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1 << 20, Size: 65536}}
	s.Linux.UIDMappings, s.Linux.GIDMappings = m, m
	s.Process.User = specs.User{UID: 1000, GID: 1000}
	if _, err := Harden(s, level(t, "restricted"), in); err != nil && strings.Contains(err.Error(), "runtime's window") {
		t.Errorf("own user namespace: %v", err)
	}
}

// TestCRIFilesOnlyInCRINamespace: the CRI plugin's paths carry no
// containerd namespace; a container of another namespace with a CRI pod's
// claims and ids must not get that pod's files or volumes.
func TestCRIFilesOnlyInCRINamespace(t *testing.T) {
	for ns, refused := range map[string]bool{"k8s.io": false, "": false, "attacker": true} {
		in := withFacts("cri-container", Inputs{Host: Host{UnprivilegedPortSysctl: true}, Container: ContainerInfo{Namespace: ns}})
		in.Container.Namespace = ns
		_, err := Harden(readSpec(t, "cri-container"), level(t, "restricted"), in)
		var r *RefusedError
		if got := errors.As(err, &r) && strings.Contains(err.Error(), "rule mounts"); got != refused {
			t.Errorf("namespace %q: %v, want refused %v", ns, err, refused)
		}
	}
}
