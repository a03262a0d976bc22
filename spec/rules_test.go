package spec

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
)

// ruleCase mutates the ctr run spec and says what hardening must do.
type ruleCase struct {
	name    string
	fixture string // default ctr-run
	level   string // default restricted
	mutate  func(s *specs.Spec)
	inputs  Inputs
	// refused names the rule and a field substring that must be refused.
	refused [2]string
	// changed names the rule and a field that must be changed.
	changed [2]string
	// check inspects the hardened spec.
	check func(t *testing.T, s *specs.Spec)
}

func addCaps(caps ...string) func(s *specs.Spec) {
	return func(s *specs.Spec) {
		c := s.Process.Capabilities
		c.Bounding = append(c.Bounding, caps...)
		c.Effective = append(c.Effective, caps...)
		c.Permitted = append(c.Permitted, caps...)
	}
}

func bind(src, dest string, opts ...string) func(s *specs.Spec) {
	return func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: dest, Type: "bind", Source: src, Options: append([]string{"rbind"}, opts...)})
	}
}

func setNamespacePath(t specs.LinuxNamespaceType, p string) func(s *specs.Spec) {
	return func(s *specs.Spec) {
		for i := range s.Linux.Namespaces {
			if s.Linux.Namespaces[i].Type == t {
				s.Linux.Namespaces[i].Path = p
			}
		}
	}
}

func dropNamespace(t specs.LinuxNamespaceType) func(s *specs.Spec) {
	return func(s *specs.Spec) {
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
	}
}

func hasMount(s *specs.Spec, dest string) (specs.Mount, bool) {
	for _, m := range s.Mounts {
		if m.Destination == dest {
			return m, true
		}
	}
	return specs.Mount{}, false
}

func TestRules(t *testing.T) {
	host := Host{UnprivilegedPortSysctl: true}
	cases := []ruleCase{
		// privileged
		{name: "privileged", mutate: func(s *specs.Spec) {
			addCaps(profiles.Capabilities...)(s)
			s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		}, refused: [2]string{"privileged", "process.capabilities"}},
		{name: "privileged without masks", mutate: func(s *specs.Spec) {
			addCaps("CAP_SYS_ADMIN")(s)
			s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		}, refused: [2]string{"privileged", "process.capabilities"}},
		// user
		{name: "root becomes nobody", changed: [2]string{"user", "process.user.uid"}, check: func(t *testing.T, s *specs.Spec) {
			if s.Process.User.UID != 65534 || s.Process.User.GID != 65534 {
				t.Errorf("user = %d:%d, want 65534:65534", s.Process.User.UID, s.Process.User.GID)
			}
		}},
		{name: "root group only", mutate: func(s *specs.Spec) { s.Process.User = specs.User{UID: 1000, GID: 0} },
			changed: [2]string{"user", "process.user.gid"}, check: func(t *testing.T, s *specs.Spec) {
				if s.Process.User.UID != 1000 || s.Process.User.GID != 65534 {
					t.Errorf("user = %d:%d, want 1000:65534", s.Process.User.UID, s.Process.User.GID)
				}
			}},
		{name: "supplementary group 0", mutate: func(s *specs.Spec) {
			s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{0, 10}}
		},
			changed: [2]string{"user", "process.user.additionalGids"}, check: func(t *testing.T, s *specs.Spec) {
				if !slices.Equal(s.Process.User.AdditionalGids, []uint32{10}) {
					t.Errorf("additionalGids = %v, want [10]", s.Process.User.AdditionalGids)
				}
			}},
		{name: "root's image groups dropped without CRI's record", mutate: func(s *specs.Spec) {
			s.Process.User = specs.User{AdditionalGids: []uint32{0, 10, 1234, 5678}}
		},
			changed: [2]string{"user", "process.user.additionalGids"}, check: func(t *testing.T, s *specs.Spec) {
				if len(s.Process.User.AdditionalGids) != 0 {
					t.Errorf("additionalGids = %v, want [] (which groups the pod asked for is unknown)", s.Process.User.AdditionalGids)
				}
			}},
		{name: "root keeps the pod's supplementalGroups and fsGroup", mutate: func(s *specs.Spec) {
			s.Process.User = specs.User{AdditionalGids: []uint32{0, 10, 1234, 2000, 5678}}
		}, inputs: Inputs{Container: ContainerInfo{SupplementalGroupsKnown: true, SupplementalGroups: []uint32{1234, 5678, 2000, 0, 4242}}},
			changed: [2]string{"user", "process.user.additionalGids"}, check: func(t *testing.T, s *specs.Spec) {
				// 0 never, 10 (root's wheel from the image) not, 4242 not in the spec: never added.
				if !slices.Equal(s.Process.User.AdditionalGids, []uint32{1234, 2000, 5678}) {
					t.Errorf("additionalGids = %v, want [1234 2000 5678]", s.Process.User.AdditionalGids)
				}
			}},
		{name: "root in a CRI pod without supplementalGroups loses the image's", mutate: func(s *specs.Spec) {
			s.Process.User = specs.User{AdditionalGids: []uint32{0, 10}}
		}, inputs: Inputs{Container: ContainerInfo{SupplementalGroupsKnown: true}},
			changed: [2]string{"user", "process.user.additionalGids"}, check: func(t *testing.T, s *specs.Spec) {
				if len(s.Process.User.AdditionalGids) != 0 {
					t.Errorf("additionalGids = %v, want []", s.Process.User.AdditionalGids)
				}
			}},
		{name: "non-root keeps its groups but 0", mutate: func(s *specs.Spec) {
			s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{0, 10, 50000}}
		}, inputs: Inputs{Container: ContainerInfo{SupplementalGroupsKnown: true, SupplementalGroups: []uint32{1234}}},
			changed: [2]string{"user", "process.user.additionalGids"}, check: func(t *testing.T, s *specs.Spec) {
				if !slices.Equal(s.Process.User.AdditionalGids, []uint32{10, 50000}) {
					t.Errorf("additionalGids = %v, want [10 50000]: a non-root user's image groups are its own", s.Process.User.AdditionalGids)
				}
			}},
		{name: "own non-root user kept", mutate: func(s *specs.Spec) {
			s.Process.User = specs.User{UID: 101, GID: 101}
			s.Process.Env = append(s.Process.Env, "HOME=/var/cache/nginx")
		}, check: func(t *testing.T, s *specs.Spec) {
			if s.Process.User.UID != 101 || !slices.Contains(s.Process.Env, "HOME=/var/cache/nginx") {
				t.Errorf("user = %+v env %v, want 101 and HOME kept", s.Process.User, s.Process.Env)
			}
		}},
		{name: "root HOME moves to /tmp", mutate: func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "HOME=/root") },
			changed: [2]string{"user", "process.env[HOME]"}, check: func(t *testing.T, s *specs.Spec) {
				if !slices.Contains(s.Process.Env, "HOME=/tmp") {
					t.Errorf("env = %v, want HOME=/tmp", s.Process.Env)
				}
			}},
		{name: "baseline keeps root", level: "baseline", check: func(t *testing.T, s *specs.Spec) {
			if s.Process.User.UID != 0 {
				t.Errorf("uid = %d, want 0 under baseline", s.Process.User.UID)
			}
		}},
		// capabilities
		{name: "CAP_SYS_ADMIN refused", mutate: addCaps("CAP_SYS_ADMIN"), refused: [2]string{"capabilities", "bounding"}},
		{name: "CAP_NET_RAW dropped (default set)", changed: [2]string{"capabilities", "process.capabilities.bounding"}},
		{name: "ambient CAP_SYS_PTRACE refused", mutate: func(s *specs.Spec) {
			s.Process.Capabilities.Ambient = []string{"CAP_SYS_PTRACE"}
		}, refused: [2]string{"capabilities", "ambient"}},
		{name: "inheritable CAP_SYS_ADMIN refused under baseline", level: "baseline", mutate: func(s *specs.Spec) {
			s.Process.Capabilities.Inheritable = []string{"CAP_SYS_ADMIN"}
		}, refused: [2]string{"capabilities", "inheritable"}},
		{name: "baseline keeps NET_BIND_SERVICE", level: "baseline", check: func(t *testing.T, s *specs.Spec) {
			if !slices.Contains(s.Process.Capabilities.Bounding, "CAP_NET_BIND_SERVICE") || slices.Contains(s.Process.Capabilities.Bounding, "CAP_NET_RAW") {
				t.Errorf("bounding = %v", s.Process.Capabilities.Bounding)
			}
		}},
		{name: "missing capabilities become the allowlist", level: "baseline", mutate: func(s *specs.Spec) { s.Process.Capabilities = nil },
			changed: [2]string{"capabilities", "process.capabilities"}, check: func(t *testing.T, s *specs.Spec) {
				if !slices.Equal(s.Process.Capabilities.Bounding, level(t, "baseline").Capabilities.Allow) {
					t.Errorf("bounding = %v", s.Process.Capabilities.Bounding)
				}
			}},
		// noNewPrivileges
		{name: "noNewPrivileges forced", mutate: func(s *specs.Spec) { s.Process.NoNewPrivileges = false }, changed: [2]string{"no-new-privileges", "process.noNewPrivileges"}},
		// seccomp
		{name: "seccomp default with clone3 ENOSYS", changed: [2]string{"seccomp", "linux.seccomp"}, check: func(t *testing.T, s *specs.Spec) {
			p := s.Linux.Seccomp
			if p.DefaultAction != specs.ActErrno || p.DefaultErrnoRet == nil || *p.DefaultErrnoRet != 38 {
				t.Errorf("default action %s errno %v, want ENOSYS", p.DefaultAction, p.DefaultErrnoRet)
			}
			for _, r := range p.Syscalls {
				if slices.Contains(r.Names, "clone3") {
					if r.Action != specs.ActErrno || r.ErrnoRet == nil || *r.ErrnoRet != 38 {
						t.Errorf("clone3 rule %s %v, want ENOSYS", r.Action, r.ErrnoRet)
					}
				}
			}
			if !slices.Equal(p.Architectures, []specs.Arch{specs.ArchX86_64}) {
				t.Errorf("arches = %v, want native only", p.Architectures)
			}
		}},
		{name: "seccomp allow-all replaced", mutate: func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
		}, changed: [2]string{"seccomp", "linux.seccomp"}},
		{name: "seccomp notify replaced", mutate: func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, ListenerPath: "/run/agent.sock"}
		}, changed: [2]string{"seccomp", "linux.seccomp"}},
		{name: "seccomp spec-allow kept: runc sets it for the level's profile too", mutate: func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow}}
		}, check: func(t *testing.T, s *specs.Spec) {
			if !slices.Equal(s.Linux.Seccomp.Flags, []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagLog}) || len(s.Linux.Seccomp.Syscalls) != 0 {
				t.Errorf("workload's profile not kept: %+v", s.Linux.Seccomp)
			}
		}},
		{name: "seccomp notify rule replaced", mutate: func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActNotify}}}
		}, changed: [2]string{"seccomp", "linux.seccomp"}},
		{name: "seccomp extra syscall refused by custom level", level: "refuse-weaker-seccomp", mutate: func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "kexec_load"}, Action: specs.ActAllow}}}
		}, refused: [2]string{"seccomp", "linux.seccomp"}},
		{name: "seccomp stricter kept", mutate: func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Architectures: []specs.Arch{specs.ArchX86_64},
				Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write", "exit_group"}, Action: specs.ActAllow}, {Names: []string{"mount"}, Action: specs.ActErrno}}}
		}, check: func(t *testing.T, s *specs.Spec) {
			if s.Linux.Seccomp.DefaultAction != specs.ActKillProcess || len(s.Linux.Seccomp.Syscalls) != 2 {
				t.Errorf("workload's stricter profile replaced: %+v", s.Linux.Seccomp)
			}
		}},
		{name: "seccomp unconditional where level is conditional", mutate: func(s *specs.Spec) {
			// clone is allowed by RuntimeDefault only without namespace flags.
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"clone"}, Action: specs.ActAllow}}}
		}, changed: [2]string{"seccomp", "linux.seccomp"}},
		{name: "seccomp pack", level: "with-packs", check: func(t *testing.T, s *specs.Spec) {
			some, _ := profiles.AllowedSyscalls(s.Linux.Seccomp)
			if !some["io_uring_setup"] || !some["keyctl"] {
				t.Error("packs io_uring and keyring not in the profile")
			}
		}},
		// AppArmor
		{name: "apparmor set where the host has it", inputs: Inputs{Host: Host{AppArmor: true}}, changed: [2]string{"apparmor", "process.apparmorProfile"},
			check: func(t *testing.T, s *specs.Spec) {
				if s.Process.ApparmorProfile != profiles.DefaultAppArmorProfile {
					t.Errorf("apparmorProfile = %q", s.Process.ApparmorProfile)
				}
			}},
		{name: "apparmor unconfined replaced", inputs: Inputs{Host: Host{AppArmor: true}}, mutate: func(s *specs.Spec) { s.Process.ApparmorProfile = "unconfined" },
			changed: [2]string{"apparmor", "process.apparmorProfile"}},
		{name: "apparmor own profile kept", inputs: Inputs{Host: Host{AppArmor: true}}, mutate: func(s *specs.Spec) { s.Process.ApparmorProfile = "my-app" },
			check: func(t *testing.T, s *specs.Spec) {
				if s.Process.ApparmorProfile != "my-app" {
					t.Errorf("apparmorProfile = %q, want my-app", s.Process.ApparmorProfile)
				}
			}},
		{name: "apparmor removed on a host without", mutate: func(s *specs.Spec) { s.Process.ApparmorProfile = "cri-containerd.apparmor.d" },
			changed: [2]string{"apparmor", "process.apparmorProfile"}},
		{name: "apparmor required", level: "apparmor-required", refused: [2]string{"apparmor", "process.apparmorProfile"}},
		// rootfs
		{name: "image volumes and /var/run get tmpfs", inputs: Inputs{Host: host, Image: ImageInfo{
			Volumes: []string{"/data", "cache/"},
			Rootfs:  fstest.MapFS{"var/run": {Mode: 0o755 | 1<<31}},
		}}, check: func(t *testing.T, s *specs.Spec) {
			for _, d := range []string{"/data", "/cache", "/var/run", "/tmp", "/var/tmp"} {
				if _, ok := hasMount(s, d); !ok {
					t.Errorf("no tmpfs on %s", d)
				}
			}
			m, _ := hasMount(s, "/data")
			if !slices.Contains(m.Options, "uid=65534") {
				t.Errorf("/data options %v, want uid=65534", m.Options)
			}
		}},
		{name: "volume with a mount keeps the mount", level: "hostpaths", mutate: bind("/srv/data", "/data"), inputs: Inputs{Image: ImageInfo{Volumes: []string{"/data"}}},
			check: func(t *testing.T, s *specs.Spec) {
				if m, _ := hasMount(s, "/data"); m.Type != "bind" {
					t.Errorf("/data = %+v, want the bind mount", m)
				}
			}},
		{name: "tmpfs goes before mounts below it", level: "hostpaths", mutate: bind("/srv/secret", "/var/tmp/secret", "ro"), check: func(t *testing.T, s *specs.Spec) {
			i := slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/var/tmp" })
			j := slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/var/tmp/secret" })
			if i < 0 || i > j {
				t.Errorf("/var/tmp at %d, /var/tmp/secret at %d: the tmpfs would hide the mount", i, j)
			}
		}},
		{name: "writable paths", level: "writable", check: func(t *testing.T, s *specs.Spec) {
			m, ok := hasMount(s, "/var/cache/nginx")
			if !ok || !slices.Contains(m.Options, "mode=0755") {
				t.Errorf("/var/cache/nginx = %+v", m)
			}
		}},
		{name: "strict tmpfs is noexec", level: "strict", check: func(t *testing.T, s *specs.Spec) {
			m, _ := hasMount(s, "/tmp")
			if !slices.Contains(m.Options, "noexec") {
				t.Errorf("/tmp options %v, want noexec", m.Options)
			}
		}},
		{name: "restricted tmp stays exec", check: func(t *testing.T, s *specs.Spec) {
			m, _ := hasMount(s, "/tmp")
			if slices.Contains(m.Options, "noexec") {
				t.Errorf("/tmp options %v: noexec breaks JNA and friends", m.Options)
			}
		}},
		// mounts: rule_mounts_test.go
		// namespaces
		{name: "host network (missing)", mutate: dropNamespace(specs.NetworkNamespace), refused: [2]string{"namespaces", "linux.namespaces[network]"}},
		{name: "host pid by path", mutate: setNamespacePath(specs.PIDNamespace, "/proc/1/ns/pid"), refused: [2]string{"namespaces", "linux.namespaces[pid]"}},
		{name: "host ipc by path", mutate: setNamespacePath(specs.IPCNamespace, "/proc/self/ns/ipc"), refused: [2]string{"namespaces", "linux.namespaces[ipc]"}},
		{name: "host uts missing", mutate: dropNamespace(specs.UTSNamespace), refused: [2]string{"namespaces", "linux.namespaces[uts]"}},
		{name: "host user ns by path", mutate: func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/1/ns/user"})
		}, refused: [2]string{"namespaces", "linux.namespaces[user]"}},
		{name: "missing mount namespace", level: "host-network", mutate: dropNamespace(specs.MountNamespace), refused: [2]string{"namespaces", "linux.namespaces[mount]"}},
		{name: "host network allowed by level", level: "host-network", mutate: dropNamespace(specs.NetworkNamespace), check: func(t *testing.T, s *specs.Spec) {
			if _, ok := s.Linux.Sysctl[profiles.UnprivilegedPortSysctl]; ok {
				t.Error("port sysctl set in the host's network namespace")
			}
		}},
		{name: "pod namespace by path via host check", mutate: setNamespacePath(specs.NetworkNamespace, "/proc/4242/ns/net"), inputs: Inputs{Host: Host{
			UnprivilegedPortSysctl: true,
			IsHostNamespace:        func(specs.LinuxNamespaceType, string) bool { return true },
		}}, refused: [2]string{"namespaces", "linux.namespaces[network]"}},
		// devices: rule_devices_test.go
		// kernel paths
		{name: "masked paths removed", mutate: func(s *specs.Spec) { s.Linux.MaskedPaths = []string{"/proc/kcore"} },
			changed: [2]string{"kernel-paths", "linux.maskedPaths"}},
		{name: "/proc/sys writable", mutate: func(s *specs.Spec) { s.Linux.ReadonlyPaths = nil },
			changed: [2]string{"kernel-paths", "linux.readonlyPaths"}},
		// sysctls
		{name: "kernel sysctl", mutate: func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.panic": "1"} },
			refused: [2]string{"sysctls", "linux.sysctl[kernel.panic]"}},
		{name: "safe sysctl", mutate: func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net.ipv4.ping_group_range": "0 0"} }},
		{name: "allowed sysctl pattern", level: "sysctl", mutate: func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net.core.somaxconn": "1024"} }},
		{name: "net sysctl in host netns", level: "host-network", mutate: func(s *specs.Spec) {
			dropNamespace(specs.NetworkNamespace)(s)
			s.Linux.Sysctl = map[string]string{"net.ipv4.tcp_syncookies": "1"}
		}, refused: [2]string{"sysctls", "linux.sysctl[net.ipv4.tcp_syncookies]"}},
		{name: "port sysctl kept", mutate: func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{profiles.UnprivilegedPortSysctl: "1024"} },
			check: func(t *testing.T, s *specs.Spec) {
				if v := s.Linux.Sysctl[profiles.UnprivilegedPortSysctl]; v != "1024" {
					t.Errorf("port sysctl = %q, want the workload's 1024", v)
				}
			}},
		{name: "no port sysctl on an old kernel", inputs: Inputs{Image: ImageInfo{Name: "old"}}, check: func(t *testing.T, s *specs.Spec) {
			if _, ok := s.Linux.Sysctl[profiles.UnprivilegedPortSysctl]; ok {
				t.Error("port sysctl set on a kernel without it")
			}
		}},
		// limits
		{name: "pids default", changed: [2]string{"limits", "linux.resources.pids.limit"}},
		// runc v1.5.2 reads a pids limit of 0 as one process: kept.
		{name: "pids zero", mutate: func(s *specs.Spec) {
			z := int64(0)
			s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &z}
		}, check: func(t *testing.T, s *specs.Spec) {
			if *s.Linux.Resources.Pids.Limit != 0 {
				t.Errorf("pids limit 0 became %d", *s.Linux.Resources.Pids.Limit)
			}
		}},
		{name: "pids unlimited", mutate: func(s *specs.Spec) {
			n := int64(-1)
			s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &n}
		}, changed: [2]string{"limits", "linux.resources.pids.limit"}},
		{name: "pids above the level's", mutate: func(s *specs.Spec) {
			n := int64(1 << 20)
			s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &n}
		}, changed: [2]string{"limits", "linux.resources.pids.limit"}, check: func(t *testing.T, s *specs.Spec) {
			if *s.Linux.Resources.Pids.Limit != 4096 {
				t.Errorf("pids limit %d, want the level's 4096", *s.Linux.Resources.Pids.Limit)
			}
		}},
		{name: "nofile clamped to the runtime's", mutate: func(s *specs.Spec) { s.Process.Rlimits = nil }, inputs: Inputs{Host: Host{MaxNoFile: 20000}},
			check: func(t *testing.T, s *specs.Spec) {
				if r := s.Process.Rlimits[0]; r.Hard != 20000 || r.Soft != 20000 {
					t.Errorf("RLIMIT_NOFILE = %+v, want 20000", r)
				}
			}},
		{name: "nofile default", mutate: func(s *specs.Spec) { s.Process.Rlimits = nil }, changed: [2]string{"limits", "process.rlimits[RLIMIT_NOFILE]"},
			check: func(t *testing.T, s *specs.Spec) {
				for _, r := range s.Process.Rlimits {
					if r.Type == "RLIMIT_NPROC" {
						t.Error("RLIMIT_NPROC set")
					}
				}
			}},
	}
	runRuleCases(t, host, cases)
}

// runRuleCases hardens and checks each case's spec (the fixture, default
// ctr-run, after mutate) with inputs (default: host alone).
func runRuleCases(t *testing.T, host Host, cases []ruleCase) {
	t.Helper()
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
			lv := testLevel(t, tc.level)
			inputs := tc.inputs
			if reflect.ValueOf(inputs).IsZero() {
				inputs.Host = host
			}
			res, err := Harden(s, lv, inputs)
			vs, cerr := Check(s, lv, inputs)
			if cerr != nil {
				t.Fatalf("Check = %v", cerr)
			}
			var refused *RefusedError
			if tc.refused[0] != "" {
				if !errors.As(err, &refused) {
					t.Fatalf("Harden = %v, want refusal by rule %s", err, tc.refused[0])
				}
				if !slices.ContainsFunc(refused.Violations, func(v Violation) bool {
					return v.Rule == tc.refused[0] && strings.Contains(v.Field, tc.refused[1]) && v.Fix != ""
				}) {
					t.Fatalf("Harden = %v, want refusal of %s by rule %s", err, tc.refused[1], tc.refused[0])
				}
				if !slices.ContainsFunc(vs, func(v Violation) bool { return v.Refused && v.Rule == tc.refused[0] }) {
					t.Errorf("Check = %v, want a refused violation of rule %s", vs, tc.refused[0])
				}
				if !strings.Contains(err.Error(), "rule "+refused.Violations[0].Rule) {
					t.Errorf("error %q does not name the rule", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Harden = %v", err)
			}
			if tc.changed[0] != "" && !slices.ContainsFunc(res.Changes, func(c Change) bool {
				return c.Rule == tc.changed[0] && c.Field == tc.changed[1] && !c.Note
			}) {
				t.Errorf("Harden changes = %+v, want a change of %s by rule %s", res.Changes, tc.changed[1], tc.changed[0])
			}
			if tc.check != nil {
				tc.check(t, res.Spec)
			}
			if vs, _ := Check(res.Spec, lv, inputs); len(vs) > 0 {
				t.Errorf("Check(Harden(s)) = %v, want none", vs)
			}
		})
	}
}

// testLevel returns a built-in level or one of the test levels below.
func testLevel(t *testing.T, name string) *profiles.Level {
	t.Helper()
	if name == "" {
		name = "restricted"
	}
	if l, ok := profiles.Builtin(name); ok {
		return l
	}
	l := level(t, "restricted")
	l.Name = name
	switch name {
	case "refuse-weaker-seccomp":
		l.Seccomp.OnWeaker = profiles.Refuse
	case "with-packs":
		l.Seccomp.Packs = []string{"io_uring", "keyring"}
	case "apparmor-required":
		l.AppArmor.Required = true
	case "writable":
		l.Rootfs.WritablePaths = []string{"/var/cache/nginx"}
	case "allow-etc":
		l.Mounts.AllowHostPaths = []string{"/etc/ssl/certs"}
	case "hostpaths":
		l.Mounts.AllowHostPaths = []string{"/srv"}
	case "allow-broad":
		l.Mounts.AllowHostPaths = []string{"/var", "/run", "/opt", "/srv"}
	case "allow-etc-dir":
		l.Mounts.AllowHostPaths = []string{"/etc"}
	case "allow-root":
		l.Mounts.AllowHostPaths = []string{"/"}
	case "allow-socket-dir":
		l.Mounts.AllowHostPaths = []string{"/srv", "/srv/k3s", "/srv/k3s/containerd.sock"}
	case "lxcfs":
		l.Mounts.AllowHostPaths = []string{"/var/lib/lxcfs"}
	case "host-ipc":
		l.Namespaces.AllowHost = []string{"ipc"}
	case "host-network":
		l.Namespaces.AllowHost = []string{"network"}
	case "fuse":
		d, _ := profiles.ParseDevice("c 10:229 /dev/fuse")
		l.Devices.Allow = []profiles.Device{d}
	case "sysctl":
		l.Sysctls.Allow = []string{"net.core.*"}
	case "hooked":
		l.Hooks.Allow = []string{"/usr/bin/nvidia-container-runtime-hook"}
	case "realtime":
		l.Scheduling.AllowRealtime = true
		l.Scheduling.MinNice = -10
	case "parents":
		l.Cgroups.Parents = []string{"/buildkit", "build.slice"}
	case "kubernetes-oom":
		l.Limits.MinOOMScoreAdj = -998
	case "restore":
		l.Checkpoint.AllowRestore = true
	default:
		t.Fatalf("no test level %q", name)
	}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestHostNetworkRefusal: the pause container of a hostNetwork pod (CRI
// leaves out its network and UTS namespaces) is refused once, for
// hostNetwork, the field the pod author wrote: not for a "hostUts"
// Kubernetes does not have, and nothing is hidden in "and 1 more".
func TestHostNetworkRefusal(t *testing.T) {
	in := readSpec(t, "real-cri-sandbox")
	if _, ok := findNamespace(in, specs.NetworkNamespace); ok {
		t.Fatal("fixture real-cri-sandbox is expected to be a hostNetwork pod's sandbox")
	}
	facts := withFacts("real-cri-sandbox", Inputs{Container: containerOf(t, "real-cri-sandbox", in)})
	_, err := Harden(in, level(t, "restricted"), facts)
	var refused *RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("Harden(hostNetwork sandbox) = %v, want a refusal", err)
	}
	msg := err.Error()
	for _, want := range []string{"rule namespaces: linux.namespaces[network]", "hostNetwork: true", "remove hostNetwork: true from the pod", "namespaces.allowHost"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal %q does not contain %q", msg, want)
		}
	}
	for _, bad := range []string{"hostUts", "hostUTS", "and 1 more", "linux.namespaces[uts]"} {
		if strings.Contains(msg, bad) {
			t.Errorf("refusal %q contains %q", msg, bad)
		}
	}
	// hostPID too: each pod field is named, hostNetwork first.
	pid := dropNamespace(specs.PIDNamespace)
	in2 := deepCopy(in)
	pid(in2)
	_, err = Harden(in2, level(t, "restricted"), facts)
	if err == nil || !strings.HasPrefix(err.Error(), "refused by level restricted: rule namespaces: linux.namespaces[network]") ||
		!strings.Contains(err.Error(), "(and 1 more: namespaces linux.namespaces[pid])") {
		t.Errorf("hostNetwork+hostPID refusal = %v", err)
	}
	// The host's UTS namespace alone has no pod field to name.
	in3 := readSpec(t, "real-cri-container")
	dropNamespace(specs.UTSNamespace)(in3)
	_, err = Harden(in3, level(t, "restricted"), withFacts("real-cri-container", Inputs{Container: containerOf(t, "real-cri-container", in3)}))
	if err == nil || !strings.Contains(err.Error(), "linux.namespaces[uts]") || !strings.Contains(err.Error(), "Kubernetes has no such pod field") {
		t.Errorf("host UTS alone = %v", err)
	}
}

// TestNoFileInUserNamespace: RLIMIT_NOFILE is not added to a container with
// its own user namespace (Kubernetes hostUsers: false), which runc could
// not start without CAP_SYS_RESOURCE; it still is to the others, and a
// workload's own limit is kept either way.
func TestNoFileInUserNamespace(t *testing.T) {
	has := func(s *specs.Spec) bool {
		return slices.ContainsFunc(s.Process.Rlimits, func(r specs.POSIXRlimit) bool { return r.Type == "RLIMIT_NOFILE" })
	}
	in := readSpec(t, "real-cri-container")
	in.Process.Rlimits = nil
	facts := withFacts("real-cri-container", Inputs{Container: containerOf(t, "real-cri-container", in)})
	res, err := Harden(in, level(t, "restricted"), facts)
	if err != nil || !has(res.Spec) {
		t.Fatalf("without a user namespace: %v, rlimits %v; want RLIMIT_NOFILE", err, res.Spec.Process.Rlimits)
	}
	for _, ns := range []specs.LinuxNamespace{{Type: specs.UserNamespace}, {Type: specs.UserNamespace, Path: "/proc/4242/ns/user"}} {
		u := deepCopy(in)
		u.Linux.Namespaces = append(u.Linux.Namespaces, ns)
		u.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 65536, Size: 65536}}
		u.Linux.GIDMappings = u.Linux.UIDMappings
		res, err := Harden(u, level(t, "restricted"), facts)
		if err != nil || has(res.Spec) {
			t.Errorf("user namespace %+v: %v, rlimits %v; want no RLIMIT_NOFILE added", ns, err, res.Spec.Process.Rlimits)
		}
		u.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 100, Soft: 100}}
		res, err = Harden(u, level(t, "restricted"), facts)
		if err != nil || !slices.Equal(res.Spec.Process.Rlimits, u.Process.Rlimits) {
			t.Errorf("user namespace, own limit: %v, %v; want it kept", err, res.Spec.Process.Rlimits)
		}
	}
}
