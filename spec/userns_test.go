package spec

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
)

// usernsInputs are the inputs of a container on this build machine as the
// shim gives them: idmapped mounts, and a range reserved for its pod.
func usernsInputs() Inputs {
	return Inputs{Host: usernsHost, Container: ContainerInfo{UserNamespace: testRange}}
}

// usernsLevel returns a built-in level with user.namespace set to mode.
func usernsLevel(t *testing.T, name string, mode profiles.UserNamespaceMode) *profiles.Level {
	t.Helper()
	l := level(t, name)
	l.User.Namespace = mode
	if len(l.Capabilities.InUserNamespace) == 0 {
		l.Capabilities.InUserNamespace = level(t, "restricted").Capabilities.InUserNamespace
	}
	l.Name = name + "-userns-" + string(mode)
	return l
}

var (
	ownMapping  = []specs.LinuxIDMapping{{ContainerID: 0, HostID: testRange.HostID, Size: testRange.Size}}
	podsMapping = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 531300352, Size: 65536}}
	namespaced  = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_NET_BIND_SERVICE"}
)

// withPodUserNamespace makes the spec what containerd's CRI makes for a
// hostUsers: false pod's container: the sandbox's user namespace by path,
// with its mappings.
func withPodUserNamespace(s *specs.Spec) {
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/4242/ns/user"})
	s.Linux.UIDMappings, s.Linux.GIDMappings = slices.Clone(podsMapping), slices.Clone(podsMapping)
}

func changesOnly(cs []Change) []Change {
	return slices.DeleteFunc(slices.Clone(cs), func(c Change) bool { return c.Note })
}

func userOf(s *specs.Spec) (uint32, uint32) { return s.Process.User.UID, s.Process.User.GID }

func hasUserNamespace(s *specs.Spec) bool {
	return slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace })
}

func noteSays(res *Result, words string) bool {
	return slices.ContainsFunc(res.Changes, func(c Change) bool { return c.Note && c.Rule == "user" && strings.Contains(c.Reason, words) })
}

func sortedCaps(caps []string) []string {
	c := slices.Clone(caps)
	slices.Sort(c)
	return c
}

// TestRootInUserNamespace is the table of rule user's user namespace
// (user.namespace): which root process gets one, keeps its own, or falls
// back to the level's uid with the reason recorded.
func TestRootInUserNamespace(t *testing.T) {
	restricted := level(t, "restricted")
	cases := []struct {
		name    string
		fixture string // default ctr-run
		level   *profiles.Level
		mutate  func(s *specs.Spec)
		inputs  func(in *Inputs)
		check   func(t *testing.T, s *specs.Spec, res *Result)
		refused string // a field of rule user that must be refused
	}{
		{name: "root image gets a user namespace on the reserved range", check: func(t *testing.T, s *specs.Spec, res *Result) {
			if u, g := userOf(s); u != 0 || g != 0 {
				t.Errorf("user = %d:%d, want 0:0 inside its user namespace", u, g)
			}
			if !slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace && n.Path == "" }) {
				t.Errorf("namespaces = %v, want a user namespace of its own", s.Linux.Namespaces)
			}
			if !cmp.Equal(s.Linux.UIDMappings, ownMapping) || !cmp.Equal(s.Linux.GIDMappings, ownMapping) {
				t.Errorf("mappings = %v %v, want %v", s.Linux.UIDMappings, s.Linux.GIDMappings, ownMapping)
			}
			// Its network namespace is its own: CAP_NET_RAW (ping) stays.
			want := sortedCaps(append(slices.Clone(namespaced), "CAP_NET_RAW"))
			for _, set := range [][]string{s.Process.Capabilities.Bounding, s.Process.Capabilities.Effective, s.Process.Capabilities.Permitted} {
				if got := sortedCaps(set); !cmp.Equal(got, want) {
					t.Errorf("capabilities = %v, want %v", got, want)
				}
			}
			if len(s.Process.Capabilities.Inheritable) > 0 || len(s.Process.Capabilities.Ambient) > 0 {
				t.Errorf("inheritable %v ambient %v, want none", s.Process.Capabilities.Inheritable, s.Process.Capabilities.Ambient)
			}
			// Everything else of the level stays.
			if !s.Process.NoNewPrivileges || !s.Root.Readonly || s.Linux.Seccomp == nil || len(s.Linux.MaskedPaths) == 0 {
				t.Errorf("nnp %v readonly %v seccomp %v masked %v", s.Process.NoNewPrivileges, s.Root.Readonly, s.Linux.Seccomp != nil, s.Linux.MaskedPaths)
			}
			if m, ok := hasMount(s, "/sys"); !ok || m.Type != "sysfs" {
				t.Errorf("/sys = %+v, want its own sysfs (its network namespace is its own)", m)
			}
			if _, ok := hasMount(s, "/dev/mqueue"); !ok {
				t.Error("/dev/mqueue removed from a container with an IPC namespace of its own")
			}
			if m, _ := hasMount(s, "/tmp"); !slices.Contains(m.Options, "mode=1777") {
				t.Errorf("/tmp options %v", m.Options)
			}
			if s.Linux.Sysctl[profiles.UnprivilegedPortSysctl] != "0" {
				t.Errorf("sysctls %v: its own network namespace gets the port sysctl", s.Linux.Sysctl)
			}
		}},
		{name: "a workload asking for root gets one too", mutate: func(s *specs.Spec) { s.Process.User = specs.User{UID: 0, GID: 1000} },
			check: func(t *testing.T, s *specs.Spec, _ *Result) {
				if u, g := userOf(s); u != 0 || g != 1000 || !hasUserNamespace(s) {
					t.Errorf("user = %d:%d userns %v, want 0:1000 in its own", u, g, hasUserNamespace(s))
				}
			}},
		{name: "pod container joins its pod's namespaces", fixture: "cri-container", check: func(t *testing.T, s *specs.Spec, _ *Result) {
			if u, _ := userOf(s); u != 0 || !cmp.Equal(s.Linux.UIDMappings, ownMapping) {
				t.Errorf("uid %d mappings %v", u, s.Linux.UIDMappings)
			}
			if slices.Contains(s.Process.Capabilities.Bounding, "CAP_NET_RAW") {
				t.Error("CAP_NET_RAW kept in a pod's network namespace")
			}
			if m, ok := hasMount(s, "/sys"); !ok || m.Type != "bind" || m.Source != "/sys" || !slices.Contains(m.Options, "rro") {
				t.Errorf("/sys = %+v, want the host's /sys bound read-only (sysfs needs the network namespace's owner)", m)
			}
			if _, ok := hasMount(s, "/dev/mqueue"); ok {
				t.Error("/dev/mqueue kept: mqueue cannot be mounted in a joined IPC namespace")
			}
			if _, ok := s.Linux.Sysctl[profiles.UnprivilegedPortSysctl]; ok {
				t.Error("the port sysctl set from a user namespace that does not own the pod's network")
			}
		}},
		{name: "idempotent and never root's groups on the host", check: func(t *testing.T, s *specs.Spec, res *Result) {
			again, err := Harden(s, restricted, usernsInputs())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(s, again.Spec); diff != "" {
				t.Errorf("Harden twice differs:\n%s", diff)
			}
		}},
		// Fallbacks, each with its reason recorded.
		{name: "no idmapped mounts: the level's uid", inputs: func(in *Inputs) { in.Host.IDMappedMounts = false },
			check: func(t *testing.T, s *specs.Spec, res *Result) {
				if u, _ := userOf(s); u != 65534 || hasUserNamespace(s) || !noteSays(res, "idmapped mounts") {
					t.Errorf("uid %d userns %v notes %v", u, hasUserNamespace(s), res.Changes)
				}
			}},
		{name: "no range reserved: the level's uid", inputs: func(in *Inputs) {
			in.Container.UserNamespace = IDRange{}
			in.Container.UserNamespaceUnavailable = "every range of the node is in use"
		}, check: func(t *testing.T, s *specs.Spec, res *Result) {
			if u, _ := userOf(s); u != 65534 || !noteSays(res, "every range of the node is in use") {
				t.Errorf("uid %d notes %v", u, res.Changes)
			}
		}},
		{name: "a pod's sandbox keeps the host's user namespace", fixture: "cri-sandbox", mutate: func(s *specs.Spec) { s.Process.User = specs.User{} }, check: func(t *testing.T, s *specs.Spec, res *Result) {
			if u, _ := userOf(s); u != 65534 || hasUserNamespace(s) || !noteSays(res, "pod's sandbox") {
				t.Errorf("uid %d userns %v", u, hasUserNamespace(s))
			}
		}},
		{name: "the pod's fsGroup keeps the host's user namespace", fixture: "cri-container", mutate: func(s *specs.Spec) {
			s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, 2000)
		}, inputs: func(in *Inputs) {
			in.Container.SupplementalGroupsKnown, in.Container.SupplementalGroups = true, []uint32{2000}
		}, check: func(t *testing.T, s *specs.Spec, res *Result) {
			if u, _ := userOf(s); u != 65534 || !noteSays(res, "fsGroup") || !slices.Contains(s.Process.User.AdditionalGids, 2000) {
				t.Errorf("uid %d groups %v", u, s.Process.User.AdditionalGids)
			}
		}},
		{name: "a shared PID namespace keeps the host's user namespace", fixture: "real-cri-container", check: func(t *testing.T, s *specs.Spec, res *Result) {
			if u, _ := userOf(s); u != 65534 || !noteSays(res, "PID namespace") {
				t.Errorf("uid %d notes %v", u, res.Changes)
			}
		}},
		{name: "its own net sysctl in a joined network keeps the host's user namespace", fixture: "cri-container", mutate: func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"net.ipv4.tcp_syncookies": "1"}
		}, check: func(t *testing.T, s *specs.Spec, res *Result) {
			if u, _ := userOf(s); u != 65534 || !noteSays(res, "net.ipv4.tcp_syncookies") {
				t.Errorf("uid %d notes %v", u, res.Changes)
			}
		}},
		{name: "required refuses where there can be none", level: usernsLevel(t, "restricted", profiles.UserNamespaceRequired),
			inputs: func(in *Inputs) { in.Host.IDMappedMounts = false }, refused: "process.user.uid"},
		{name: "required runs it where there can be one", level: usernsLevel(t, "restricted", profiles.UserNamespaceRequired),
			check: func(t *testing.T, s *specs.Spec, _ *Result) {
				if u, _ := userOf(s); u != 0 || !hasUserNamespace(s) {
					t.Errorf("uid %d userns %v", u, hasUserNamespace(s))
				}
			}},
		{name: "off: the level's uid, as before", level: usernsLevel(t, "restricted", profiles.UserNamespaceOff),
			check: func(t *testing.T, s *specs.Spec, res *Result) {
				if u, _ := userOf(s); u != 65534 || hasUserNamespace(s) || noteSays(res, "user namespace") {
					t.Errorf("uid %d userns %v", u, hasUserNamespace(s))
				}
			}},
		{name: "baseline keeps the host's root", level: level(t, "baseline"), check: func(t *testing.T, s *specs.Spec, _ *Result) {
			if u, _ := userOf(s); u != 0 || hasUserNamespace(s) {
				t.Errorf("uid %d userns %v", u, hasUserNamespace(s))
			}
		}},
		{name: "strict: 65534, no user namespace", level: level(t, "strict"), check: func(t *testing.T, s *specs.Spec, _ *Result) {
			if u, _ := userOf(s); u != 65534 || hasUserNamespace(s) {
				t.Errorf("uid %d userns %v", u, hasUserNamespace(s))
			}
		}},
		{name: "a level allowing root may put it in a user namespace", level: usernsLevel(t, "baseline", profiles.UserNamespaceAuto),
			check: func(t *testing.T, s *specs.Spec, _ *Result) {
				if u, _ := userOf(s); u != 0 || !hasUserNamespace(s) || slices.Contains(s.Process.Capabilities.Bounding, "CAP_FSETID") {
					t.Errorf("uid %d userns %v caps %v", u, hasUserNamespace(s), s.Process.Capabilities.Bounding)
				}
			}},
		// Never loosens.
		{name: "a workload's own non-root user stays non-root", mutate: func(s *specs.Spec) { s.Process.User = specs.User{UID: 1000, GID: 1000} },
			check: func(t *testing.T, s *specs.Spec, _ *Result) {
				if u, g := userOf(s); u != 1000 || g != 1000 || hasUserNamespace(s) || len(s.Process.Capabilities.Bounding) > 0 {
					t.Errorf("user %d:%d userns %v caps %v", u, g, hasUserNamespace(s), s.Process.Capabilities.Bounding)
				}
			}},
		{name: "its own mapping of host root is refused", mutate: func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
		}, refused: "linux.uidMappings"},
		{name: "a capability it asks for beyond the default set is still refused", mutate: addCaps("CAP_SYS_ADMIN"), refused: "process.capabilities"},
		// A pod that brings its own user namespace (hostUsers: false).
		{name: "hostUsers false keeps root and its namespaced capabilities", fixture: "cri-container", mutate: withPodUserNamespace,
			check: func(t *testing.T, s *specs.Spec, res *Result) {
				if u, _ := userOf(s); u != 0 || !cmp.Equal(s.Linux.UIDMappings, podsMapping) || !noteSays(res, "own user namespace") {
					t.Errorf("uid %d mappings %v", u, s.Linux.UIDMappings)
				}
				if n := slices.IndexFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace }); s.Linux.Namespaces[n].Path != "/proc/4242/ns/user" {
					t.Errorf("namespaces %v", s.Linux.Namespaces)
				}
				if got := sortedCaps(s.Process.Capabilities.Bounding); !cmp.Equal(got, sortedCaps(namespaced)) {
					t.Errorf("capabilities %v, want %v (no CAP_NET_RAW in a pod's network)", got, sortedCaps(namespaced))
				}
				if m, _ := hasMount(s, "/sys"); m.Type != "sysfs" {
					t.Errorf("/sys %+v: containerd's spec is left as it is", m)
				}
			}},
		{name: "hostUsers false without idmapped mounts or a range keeps root too", fixture: "cri-container", mutate: withPodUserNamespace,
			inputs: func(in *Inputs) { in.Host.IDMappedMounts, in.Container.UserNamespace = false, IDRange{} }, check: func(t *testing.T, s *specs.Spec, _ *Result) {
				if u, _ := userOf(s); u != 0 {
					t.Errorf("uid %d", u)
				}
			}},
		{name: "hostUsers false under strict (off) runs as 65534", fixture: "cri-container", level: level(t, "strict"), mutate: withPodUserNamespace,
			check: func(t *testing.T, s *specs.Spec, _ *Result) {
				if u, _ := userOf(s); u != 65534 || len(s.Process.Capabilities.Bounding) > 0 {
					t.Errorf("uid %d caps %v", u, s.Process.Capabilities.Bounding)
				}
			}},
		{name: "a user namespace joined without mappings is not trusted with root", fixture: "cri-container", mutate: func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/4242/ns/user"})
		}, check: func(t *testing.T, s *specs.Spec, res *Result) {
			if u, _ := userOf(s); u != 65534 || !noteSays(res, "whose mappings the spec does not state") {
				t.Errorf("uid %d notes %v", u, res.Changes)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fixture := tc.fixture
			if fixture == "" {
				fixture = "ctr-run"
			}
			s := readSpec(t, fixture)
			if tc.mutate != nil {
				tc.mutate(s)
			}
			in := withFacts(fixture, usernsInputs())
			if tc.inputs != nil {
				tc.inputs(&in)
			}
			lv := tc.level
			if lv == nil {
				lv = restricted
			}
			res, err := Harden(s, lv, in)
			var refused *RefusedError
			if tc.refused != "" {
				if !errors.As(err, &refused) || !slices.ContainsFunc(refused.Violations, func(v Violation) bool { return strings.Contains(v.Field, tc.refused) }) {
					t.Fatalf("Harden = %v, want a refusal of %s", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatalf("Harden = %v", err)
			}
			tc.check(t, res.Spec, res)
			if vs, err := Check(res.Spec, lv, in); err != nil || len(vs) > 0 {
				t.Errorf("Check(Harden(s)) = %v %v, want none", vs, err)
			}
			twice, err := Harden(res.Spec, lv, in)
			if err != nil || !cmp.Equal(twice.Spec, res.Spec) {
				t.Errorf("Harden is not idempotent: %v\n%s", err, cmp.Diff(res.Spec, twice.Spec))
			}
		})
	}
}

// TestExecInUserNamespace: an exec into a container that runs as root in
// its user namespace runs there as root with the container's capabilities
// at most; into one moved to 65534, as 65534.
func TestExecInUserNamespace(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fixture string
		inputs  Inputs
		mutate  func(p *specs.Process)
		wantUID uint32
		wantNR  bool // CAP_NET_RAW
	}{
		{"root exec into root in its user namespace", "ctr-run", usernsInputs(), nil, 0, true},
		{"root exec into a pod's container", "cri-container", withFacts("cri-container", usernsInputs()), nil, 0, false},
		{"non-root exec stays non-root", "ctr-run", usernsInputs(), func(p *specs.Process) { p.User = specs.User{UID: 1000, GID: 1000} }, 1000, false},
		{"root exec where the container fell back", "ctr-run", Inputs{Host: noAppArmorHost}, nil, 65534, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := readSpec(t, tc.fixture)
			l := level(t, "restricted")
			res, err := Harden(in, l, tc.inputs)
			if err != nil {
				t.Fatal(err)
			}
			exec := execOf(in)
			exec.Capabilities.Bounding = append(exec.Capabilities.Bounding, "CAP_SYS_ADMIN")
			exec.Capabilities = &specs.LinuxCapabilities{Bounding: profiles.RuntimeDefaultCapabilities, Effective: profiles.RuntimeDefaultCapabilities,
				Permitted: profiles.RuntimeDefaultCapabilities}
			if tc.mutate != nil {
				tc.mutate(exec)
			}
			p, _, err := HardenProcess(exec, res.Spec, l, Inputs{Host: tc.inputs.Host})
			if err != nil {
				t.Fatalf("HardenProcess = %v", err)
			}
			if p.User.UID != tc.wantUID {
				t.Errorf("exec uid %d, want %d", p.User.UID, tc.wantUID)
			}
			for _, c := range p.Capabilities.Bounding {
				if !slices.Contains(res.Spec.Process.Capabilities.Bounding, c) {
					t.Errorf("exec has %s, the container does not", c)
				}
			}
			if got := slices.Contains(p.Capabilities.Effective, "CAP_NET_RAW"); got != tc.wantNR {
				t.Errorf("exec CAP_NET_RAW %v, want %v (caps %v)", got, tc.wantNR, p.Capabilities.Effective)
			}
			if !p.NoNewPrivileges {
				t.Error("exec without no-new-privileges")
			}
			again, more, err := HardenProcess(p, res.Spec, l, Inputs{Host: tc.inputs.Host})
			if more = changesOnly(more); err != nil || len(more) > 0 || again.User.UID != p.User.UID {
				t.Errorf("HardenProcess twice: %v %v", err, more)
			}
		})
	}
}

// TestInUserNamespaceValidation: only the runtime's default capabilities
// may be kept in a user namespace, and the mode is one of three.
func TestInUserNamespaceValidation(t *testing.T) {
	l := level(t, "restricted")
	l.Capabilities.InUserNamespace = append(l.Capabilities.InUserNamespace, "CAP_SYS_ADMIN")
	l.User.Namespace = "sometimes"
	err := l.Validate()
	if err == nil || !strings.Contains(err.Error(), "capabilities.inUserNamespace") || !strings.Contains(err.Error(), "CAP_SYS_ADMIN") ||
		!strings.Contains(err.Error(), "user.namespace") {
		t.Errorf("Validate = %v, want errors for capabilities.inUserNamespace (CAP_SYS_ADMIN) and user.namespace", err)
	}
}
