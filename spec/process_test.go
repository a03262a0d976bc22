package spec

import (
	"errors"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// execOf is the process containerd builds for `ctr task exec` or a CRI
// ExecSync: from its stored, unhardened spec.
func execOf(s *specs.Spec) *specs.Process {
	p := deepCopy(s.Process)
	p.Args = []string{"id"}
	p.User.AdditionalGids = []uint32{0, 10}
	return p
}

func TestHardenProcess(t *testing.T) {
	in := readSpec(t, "ctr-run")
	for _, ln := range []string{"baseline", "restricted", "strict"} {
		t.Run(ln, func(t *testing.T) {
			l := level(t, ln)
			host := Host{AppArmor: true}
			res, err := Harden(in, l, Inputs{Host: host})
			if err != nil {
				t.Fatal(err)
			}
			p, changes, err := HardenProcess(execOf(in), res.Spec, l, Inputs{Host: host})
			if err != nil {
				t.Fatalf("HardenProcess = %v", err)
			}
			c := res.Spec.Process
			if p.User.UID != c.User.UID || p.User.GID != c.User.GID {
				t.Errorf("exec user %d:%d, container %d:%d", p.User.UID, p.User.GID, c.User.UID, c.User.GID)
			}
			if l.User.RunAsNonRoot && slices.Contains(p.User.AdditionalGids, 0) {
				t.Error("exec keeps group 0")
			}
			for _, cap := range p.Capabilities.Bounding {
				if !slices.Contains(c.Capabilities.Bounding, cap) {
					t.Errorf("exec has %s, the container does not", cap)
				}
			}
			if !p.NoNewPrivileges || p.ApparmorProfile != c.ApparmorProfile {
				t.Errorf("exec nnp %v apparmor %q", p.NoNewPrivileges, p.ApparmorProfile)
			}
			for _, ch := range changes {
				if ch.Field[:5] != "exec." {
					t.Errorf("change %s does not name the exec", ch.Field)
				}
			}
			// Idempotent.
			again, more, err := HardenProcess(p, res.Spec, l, Inputs{Host: host})
			if err != nil || len(more) > 0 || again.User.UID != p.User.UID {
				t.Errorf("HardenProcess twice: %v %v", err, more)
			}
		})
	}
}

func TestHardenProcessRefusals(t *testing.T) {
	in := readSpec(t, "ctr-run")
	l := level(t, "restricted")
	res, _ := Harden(in, l, Inputs{})
	p := execOf(in)
	p.Capabilities.Ambient = []string{"CAP_SYS_ADMIN"}
	_, _, err := HardenProcess(p, res.Spec, l, Inputs{})
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Violations[0].Field != "exec.capabilities.ambient" {
		t.Errorf("HardenProcess with CAP_SYS_ADMIN = %v, want refusal", err)
	}
	onRoot := level(t, "restricted")
	onRoot.User.OnRoot = "refuse"
	if _, _, err := HardenProcess(execOf(in), res.Spec, onRoot, Inputs{}); !errors.As(err, &refused) {
		t.Errorf("HardenProcess of root with onRoot refuse = %v", err)
	}
	for name, call := range map[string]func() error{
		"nil process":   func() error { _, _, err := HardenProcess(nil, res.Spec, l, Inputs{}); return err },
		"nil level":     func() error { _, _, err := HardenProcess(p, res.Spec, nil, Inputs{}); return err },
		"nil container": func() error { _, _, err := HardenProcess(p, nil, l, Inputs{}); return err },
	} {
		if err := call(); err == nil {
			t.Errorf("HardenProcess(%s) = nil error", name)
		}
	}
}

func TestMalformedInput(t *testing.T) {
	l := level(t, "restricted")
	for name, s := range map[string]*specs.Spec{
		"nil":             nil,
		"no process":      {Root: &specs.Root{Path: "rootfs"}},
		"no root":         {Process: &specs.Process{}},
		"empty root path": {Process: &specs.Process{}, Root: &specs.Root{}},
	} {
		if _, err := Harden(s, l, Inputs{}); err == nil {
			t.Errorf("Harden(%s) = nil error", name)
		}
		if _, err := Check(s, l, Inputs{}); err == nil {
			t.Errorf("Check(%s) = nil error", name)
		}
	}
	if _, err := Harden(readSpec(t, "ctr-run"), nil, Inputs{}); err == nil {
		t.Error("Harden without a level = nil error")
	}
	// A minimal spec (no linux section, no capabilities) is hardened, not a panic.
	res, err := Harden(&specs.Spec{Process: &specs.Process{Args: []string{"sh"}}, Root: &specs.Root{Path: "rootfs"}}, l, Inputs{})
	var refused *RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("Harden(minimal) = %v, want a refusal (no namespaces)", err)
	}
	if res == nil || res.Spec.Process.Capabilities == nil {
		t.Error("minimal spec: capabilities not set")
	}
}

func TestRefusedErrorMessage(t *testing.T) {
	e := &RefusedError{Level: "restricted"}
	if e.Error() != "refused by level restricted" {
		t.Errorf("empty RefusedError = %q", e.Error())
	}
	e.Violations = []Violation{
		{Rule: "mounts", Field: "mounts[/host].source", Value: "/", Reason: "bind mount of the host's root filesystem", Fix: "remove it"},
		{Rule: "namespaces", Field: "linux.namespaces[network]"},
	}
	// A host namespace is named first (what the pod author wrote: hostNetwork).
	e.Violations[1].Value, e.Violations[1].Reason = "missing (the host's)", "no host network"
	want := "refused by level restricted: rule namespaces: linux.namespaces[network]=missing (the host's): no host network (and 1 more: mounts mounts[/host].source)"
	if e.Error() != want {
		t.Errorf("RefusedError = %q, want %q", e.Error(), want)
	}
	// Many: counted per rule, in order of appearance.
	e.Violations = []Violation{{Rule: "privileged", Field: "process.capabilities", Value: "privileged", Reason: "no", Fix: "drop it"}}
	for _, f := range []string{"bounding", "effective", "permitted"} {
		e.Violations = append(e.Violations, Violation{Rule: "capabilities", Field: "process.capabilities." + f})
	}
	for _, d := range []string{"/dev/a", "/dev/b", "/dev/c"} {
		e.Violations = append(e.Violations, Violation{Rule: "devices", Field: "linux.devices[" + d + "]"})
	}
	want = "refused by level restricted: rule privileged: process.capabilities=privileged: no; fix: drop it (and 6 more: capabilities ×3, devices ×3; each in the shim log)"
	if e.Error() != want {
		t.Errorf("RefusedError = %q, want %q", e.Error(), want)
	}
	// hostIPC: the host's /dev/shm mount is a consequence; the namespace
	// is what the pod asked for, and comes first.
	e.Violations = []Violation{
		{Rule: "mounts", Field: "mounts[/dev/shm].source", Value: "/dev/shm", Reason: "host path"},
		{Rule: "namespaces", Field: "linux.namespaces[ipc]", Value: "missing (the host's)", Reason: "no host ipc (hostIPC: true)"},
	}
	want = "refused by level restricted: rule namespaces: linux.namespaces[ipc]=missing (the host's): no host ipc (hostIPC: true) (and 1 more: mounts mounts[/dev/shm].source)"
	if e.Error() != want {
		t.Errorf("RefusedError = %q, want %q", e.Error(), want)
	}
	if got := RuleNames(); len(got) != len(rules) || got[0] != "fields" {
		t.Errorf("RuleNames() = %v", got)
	}
}

// TestHardenProcessPodGroups: a root container keeps the pod's groups, and
// an exec into it (built by containerd from the unhardened spec, with
// root's image groups and 0) gets exactly the container's.
func TestHardenProcessPodGroups(t *testing.T) {
	in := readSpec(t, "ctr-run")
	in.Process.User = specs.User{AdditionalGids: []uint32{0, 10, 1234, 5678}}
	l := level(t, "restricted")
	pod := Inputs{Container: ContainerInfo{SupplementalGroupsKnown: true, SupplementalGroups: []uint32{1234, 5678}}}
	res, err := Harden(in, l, pod)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Spec.Process.User.AdditionalGids; !slices.Equal(got, []uint32{1234, 5678}) {
		t.Fatalf("container additionalGids = %v, want the pod's [1234 5678]", got)
	}
	p := deepCopy(in.Process)
	p.Args = []string{"id", "-G"}
	hp, _, err := HardenProcess(p, res.Spec, l, Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	if hp.User.UID != res.Spec.Process.User.UID || !slices.Equal(hp.User.AdditionalGids, []uint32{1234, 5678}) {
		t.Errorf("exec user %+v, want the container's %+v", hp.User, res.Spec.Process.User)
	}
	// Idempotent: hardening the hardened spec again changes nothing.
	again, err := Harden(res.Spec, l, pod)
	if err != nil || !slices.Equal(again.Spec.Process.User.AdditionalGids, []uint32{1234, 5678}) {
		t.Errorf("Harden twice: %v, %v", err, again.Spec.Process.User.AdditionalGids)
	}
}
