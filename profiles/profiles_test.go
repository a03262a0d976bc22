package profiles

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestBuiltinLevelsAreValid(t *testing.T) {
	for _, name := range BuiltinNames() {
		l, ok := Builtin(name)
		if !ok {
			t.Fatalf("Builtin(%q) missing", name)
		}
		if err := l.Validate(); err != nil {
			t.Errorf("Builtin(%q).Validate() = %v", name, err)
		}
		if l.Name != name || l.Description == "" {
			t.Errorf("Builtin(%q) = name %q description %q", name, l.Name, l.Description)
		}
		if !l.Rootfs.ReadOnly || l.Limits.Pids == 0 || l.Seccomp.OnWeaker == "" {
			t.Errorf("Builtin(%q) is missing a control: %+v", name, l)
		}
	}
	if _, ok := Builtin("nope"); ok {
		t.Error(`Builtin("nope") found a level`)
	}
}

// TestLevelsMeetPodSecurityStandards checks the built-in levels against what
// the Kubernetes Pod Security Standards require of the level of the same name.
func TestLevelsMeetPodSecurityStandards(t *testing.T) {
	// PSS baseline allows only these capabilities to be added.
	pssBaseline := []string{"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_MKNOD",
		"CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"}
	b, _ := Builtin(Baseline)
	for _, c := range b.Capabilities.Allow {
		if !slices.Contains(pssBaseline, c) {
			t.Errorf("baseline allows %s, which PSS baseline forbids", c)
		}
	}
	if b.AllowPrivileged || len(b.Namespaces.AllowHost) > 0 || len(b.Mounts.AllowHostPaths) > 0 {
		t.Error("baseline allows privileged, host namespaces or host paths")
	}
	for _, name := range []string{Restricted, Strict} {
		l, _ := Builtin(name)
		// PSS restricted: runAsNonRoot, drop ALL (NET_BIND_SERVICE may be added; we do not).
		if !l.User.RunAsNonRoot || len(l.Capabilities.Allow) > 0 {
			t.Errorf("%s: runAsNonRoot %v, capabilities %v", name, l.User.RunAsNonRoot, l.Capabilities.Allow)
		}
	}
}

func TestStricter(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{Restricted, Baseline, true}, {Strict, Restricted, true}, {Baseline, Restricted, false},
		{Restricted, Restricted, false}, {"mine", Baseline, false}, {Strict, "mine", false},
	} {
		if got := Stricter(tc.a, tc.b); got != tc.want {
			t.Errorf("Stricter(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestDecodeLevelErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", "name: x\nuser:\n  runAsRoot: true\n", "line 3: field runAsRoot not found"},
		{"bad action", "name: x\nuser:\n  onRoot: ignore\n", `user.onRoot: "ignore" is not one of fix, refuse`},
		{"bad cap", "name: x\ncapabilities:\n  allow: [NET_ADMIN]\n", `"NET_ADMIN" is not a capability`},
		{"bad profile", "name: x\nseccomp:\n  profile: unconfined\n", `seccomp.profile: "unconfined" is not one of`},
		{"bad pack", "name: x\nseccomp:\n  packs: [bpf]\n", `unknown pack "bpf"`},
		{"bad onWeaker", "name: x\nseccomp:\n  onWeaker: allow\n", "seccomp.onWeaker"},
		{"apparmor unconfined", "name: x\napparmor:\n  profile: unconfined\n", "apparmor.profile"},
		{"relative tmpfs", "name: x\nrootfs:\n  tmpfs: [tmp]\n", `"tmp" must be a clean absolute path`},
		{"root tmpfs", "name: x\nrootfs:\n  writablePaths: [/]\n", `"/" must be a clean absolute path`},
		{"bad size", "name: x\nrootfs:\n  tmpfsSize: big\n", `"big" is not a tmpfs size`},
		{"relative host path", "name: x\nmounts:\n  allowHostPaths: [etc]\n", `"etc" must be a clean absolute path (such as /etc)`},
		{"unclean host path", "name: x\nmounts:\n  allowHostPaths: [/srv/../etc/]\n", `"/srv/../etc/" must be a clean absolute path (such as /etc)`},
		{"host mount ns", "name: x\nnamespaces:\n  allowHost: [mount]\n", "never allowed"},
		{"bad ns", "name: x\nnamespaces:\n  allowHost: [time]\n", `"time" is not one of`},
		{"device by path", "name: x\ndevices:\n  allow: [/dev/fuse]\n", `give the device's type and numbers, "TYPE MAJOR:MINOR /dev/fuse" as ls -l /dev/fuse shows them`},
		{"device bad type", "name: x\ndevices:\n  allow: [\"p 10:229\"]\n", `type "p" is not c or b`},
		{"device bad numbers", "name: x\ndevices:\n  allow: [\"c 10\"]\n", `"10" is not MAJOR:MINOR`},
		{"device bad minor", "name: x\ndevices:\n  allow: [\"c 10:x\"]\n", `minor "x" is not a number or *`},
		{"device too many fields", "name: x\ndevices:\n  allow: [\"c 10:1 /dev/a b\"]\n", `want "TYPE MAJOR:MINOR [PATH]"`},
		{"device major 0", "name: x\ndevices:\n  allow: [{type: c, major: 0, minor: 1}]\n", "major 0 must be above 0"},
		{"device negative minor", "name: x\ndevices:\n  allow: [{type: b, major: 8, minor: -1}]\n", "minor -1 must not be negative"},
		{"device path outside /dev", "name: x\ndevices:\n  allow: [\"c 10:229 /tmp/fuse\"]\n", `path "/tmp/fuse" must be a clean path under /dev/`},
		{"device unknown key", "name: x\ndevices:\n  allow: [{type: c, major: 10, minr: 229}]\n", "field minr not found"},
		{"device list", "name: x\ndevices:\n  allow: [[c, 10]]\n", "want \"c 10:229 /dev/fuse\""},
		{"negative pids", "name: x\nlimits:\n  pids: -1\n", "limits.pids"},
		{"oom score", "name: x\nlimits:\n  minOOMScoreAdj: -1001\n", "limits.minOOMScoreAdj: -1001 is not between"},
		{"relative hook", "name: x\nhooks:\n  allow: [nvidia-hook]\n", `hooks.allow: "nvidia-hook" must be a clean absolute path`},
		{"unclean hook", "name: x\nhooks:\n  allow: [/usr/bin/../bin/x]\n", `hooks.allow: "/usr/bin/../bin/x"`},
		{"nice", "name: x\nscheduling:\n  minNice: -21\n", "scheduling.minNice: -21"},
		{"cgroup root", "name: x\ncgroups:\n  parents: [/]\n", `cgroups.parents: "/" is neither`},
		{"cgroup relative", "name: x\ncgroups:\n  parents: [build]\n", `cgroups.parents: "build" is neither`},
		{"cgroup root slice", "name: x\ncgroups:\n  parents: [-.slice]\n", `cgroups.parents: "-.slice"`},
		{"unknown checkpoint key", "name: x\ncheckpoint:\n  allowDump: true\n", "field allowDump not found"},
		{"no name", "user:\n  runAsNonRoot: false\n", "name: must not be empty"},
		{"root uid", "name: x\nuser:\n  runAsNonRoot: true\n", "user.uid/gid: must be non-zero"},
		{"not yaml", "name: [\n", "yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeLevel([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("DecodeLevel = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestDecodeLevelDefaults(t *testing.T) {
	l, err := DecodeLevel([]byte("name: minimal\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l.User.OnRoot != Fix || l.Capabilities.OnRequest != Refuse || l.Seccomp.Profile != SeccompRuntimeDefault ||
		l.AppArmor.Profile != DefaultAppArmorProfile || l.Rootfs.TmpfsSize != "64m" {
		t.Errorf("defaults not filled: %+v", l)
	}
}

func TestCloneIsDeep(t *testing.T) {
	l, _ := Builtin(Baseline)
	c := l.Clone()
	c.Capabilities.Allow[0] = "CAP_SYS_ADMIN"
	c.Rootfs.Tmpfs[0] = "/x"
	if l.Capabilities.Allow[0] == "CAP_SYS_ADMIN" || l.Rootfs.Tmpfs[0] == "/x" {
		t.Error("Clone shares slices with the original")
	}
	again, _ := Builtin(Baseline)
	if again.Capabilities.Allow[0] == "CAP_SYS_ADMIN" {
		t.Error("Builtin hands out the shared level")
	}
	if l.AllowsHostNamespace("network") {
		t.Error("baseline allows the host network")
	}
	l.Hooks.Allow, l.Cgroups.Parents = []string{"/a"}, []string{"/b"}
	c = l.Clone()
	c.Hooks.Allow[0], c.Cgroups.Parents[0] = "/x", "/y"
	if l.Hooks.Allow[0] != "/a" || l.Cgroups.Parents[0] != "/b" {
		t.Error("Clone shares hooks.allow or cgroups.parents with the original")
	}
}

func TestSeccomp(t *testing.T) {
	r, _ := Builtin(Restricted)
	p, err := Seccomp(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.DefaultAction != specs.ActErrno || p.DefaultErrnoRet == nil || *p.DefaultErrnoRet != uint(syscall.ENOSYS) {
		t.Errorf("default %s %v, want errno ENOSYS", p.DefaultAction, p.DefaultErrnoRet)
	}
	if len(p.Architectures) != 1 {
		t.Errorf("architectures = %v, want the native one only", p.Architectures)
	}
	some, all := AllowedSyscalls(p)
	for _, n := range []string{"read", "write", "openat", "execve", "getppid"} {
		if !all[n] {
			t.Errorf("%s not allowed", n)
		}
	}
	if some["mount"] || some["unshare"] || some["kexec_load"] {
		t.Error("privileged syscalls allowed without CAP_SYS_ADMIN")
	}
	eperm := false
	for _, rule := range p.Syscalls {
		if slices.Contains(rule.Names, "mount") && rule.Action == specs.ActErrno && rule.ErrnoRet != nil && *rule.ErrnoRet == uint(syscall.EPERM) {
			eperm = true
		}
		if slices.Contains(rule.Names, "clone3") && (rule.ErrnoRet == nil || *rule.ErrnoRet != uint(syscall.ENOSYS)) {
			t.Errorf("clone3 rule %+v, want ENOSYS", rule)
		}
	}
	if !eperm {
		t.Error("mount does not fail with EPERM")
	}
	// Cached: the same pointer for the same inputs, in any order.
	p2, _ := Seccomp(r, []string{})
	if p2 != p {
		t.Error("profile not cached")
	}
	admin, _ := Seccomp(r, []string{"CAP_SYS_ADMIN", "CAP_CHOWN"})
	admin2, _ := Seccomp(r, []string{"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_CHOWN"})
	if admin != admin2 {
		t.Error("capability order changes the cache key")
	}
	if s, _ := AllowedSyscalls(admin); !s["mount"] {
		t.Error("mount not allowed with CAP_SYS_ADMIN")
	}

	st, _ := Builtin(Strict)
	sp, _ := Seccomp(st, nil)
	ss, _ := AllowedSyscalls(sp)
	for _, n := range StrictRemoved {
		if ss[n] {
			t.Errorf("strict allows %s", n)
		}
	}
	if len(ss) >= len(some) {
		t.Errorf("strict allows %d syscalls, restricted %d", len(ss), len(some))
	}

	packs := r.Clone()
	packs.Seccomp.Packs = []string{"ptrace"}
	packs.Seccomp.CompatArches = true
	pp, _ := Seccomp(packs, nil)
	if s, _ := AllowedSyscalls(pp); !s["ptrace"] || !s["process_vm_readv"] {
		t.Error("ptrace pack not applied")
	}
	if len(pp.Architectures) < 2 {
		t.Errorf("compatArches: architectures %v", pp.Architectures)
	}
	sa, aa, err := SeccompAllows(packs, nil)
	if err != nil || !sa["ptrace"] || !aa["ptrace"] {
		t.Errorf("SeccompAllows = %v", err)
	}

	bad := r.Clone()
	bad.Seccomp.Packs = []string{"nope"}
	if _, err := Seccomp(bad, nil); err == nil {
		t.Error("unknown pack accepted")
	}
	bad.Seccomp.Packs = nil
	bad.Seccomp.Profile = "nope"
	if _, _, err := SeccompAllows(bad, nil); err == nil {
		t.Error("unknown profile accepted")
	}
	if s, a := AllowedSyscalls(nil); len(s)+len(a) != 0 {
		t.Error("AllowedSyscalls(nil) not empty")
	}
}

func TestPermits(t *testing.T) {
	for a, want := range map[specs.LinuxSeccompAction]bool{
		specs.ActAllow: true, specs.ActLog: true, specs.ActNotify: true, specs.ActTrace: true,
		specs.ActErrno: false, specs.ActKill: false, specs.ActKillProcess: false, specs.ActTrap: false,
	} {
		if got := Permits(a); got != want {
			t.Errorf("Permits(%s) = %v, want %v", a, got, want)
		}
	}
}

func TestSensitivePaths(t *testing.T) {
	covered := func(p string) bool {
		for _, s := range SensitiveHostPaths {
			if s.Covers(p) {
				return true
			}
		}
		return false
	}
	for p, want := range map[string]bool{
		"/": true, "/etc": true, "/etc/shadow": true, "/etcetera": false, "/srv": false, "/var/run/docker.sock": true,
		"/run/containerd/containerd.sock": true, "/var/lib/kubelet/pods/x/volumes/y": true, "/var/lib/kubelet/config.yaml": true,
		"/var/lib/containerd/io.containerd.content.v1.content": true, "/var/lib/rancher/k3s/agent/containerd": true,
		"/dev/mem": true, "/proc/1/root": true, "/home/user": false, "/var": false, "/run": false, "/usr/lib/modules/6.1": true,
	} {
		if got := covered(p); got != want {
			t.Errorf("covered(%s) = %v, want %v", p, got, want)
		}
	}
	for _, s := range SensitiveHostPaths {
		if s.Path != filepath.Clean(s.Path) || !filepath.IsAbs(s.Path) || s.Why == "" {
			t.Errorf("sensitive path %+v: want a clean absolute path and a reason", s)
		}
	}
	for _, tc := range []struct {
		p, dir string
		want   bool
	}{
		{"/a/b", "/a", true}, {"/a", "/a", false}, {"/ab", "/a", false}, {"/a", "/", true}, {"/", "/", false}, {"/a/b/c", "/a/b", true},
	} {
		if got := IsBelow(tc.p, tc.dir); got != tc.want {
			t.Errorf("IsBelow(%s, %s) = %v, want %v", tc.p, tc.dir, got, tc.want)
		}
	}
}

func TestAppArmorProfile(t *testing.T) {
	text, err := AppArmorProfile(DefaultAppArmorProfile, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"profile hardened-default", "deny @{PROC}/sysrq-trigger", "peer=unconfined"} {
		if !strings.Contains(text, want) {
			t.Errorf("profile text lacks %q", want)
		}
	}
	if _, err := AppArmorProfile("bad name;", ""); err == nil {
		t.Error("bad profile name accepted")
	}
	parser, err := exec.LookPath("apparmor_parser")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("apparmor_parser missing on CI: run make tools")
		}
		t.Skip("skipping: apparmor_parser not installed (make tools installs it)")
	}
	file := filepath.Join(t.TempDir(), "profile")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// -Q: parse and check only, no kernel needed; -K: no cache.
	if out, err := exec.Command(parser, "-Q", "-K", file).CombinedOutput(); err != nil {
		t.Fatalf("apparmor_parser -Q: %v\n%s", err, out)
	}
	broken := filepath.Join(t.TempDir(), "broken")
	os.WriteFile(broken, []byte(strings.Replace(text, "}", "", 1)), 0o644)
	if err := exec.Command(parser, "-Q", "-K", broken).Run(); err == nil {
		t.Error("apparmor_parser accepted a broken profile: the check proves nothing")
	}
}

func TestPackNames(t *testing.T) {
	if got := PackNames(); !slices.IsSorted(got) || len(got) != len(Packs) {
		t.Errorf("PackNames() = %v", got)
	}
	for _, c := range RuntimeDefaultCapabilities {
		if !IsCapability(c) {
			t.Errorf("%s is not a capability", c)
		}
	}
}

func TestDevices(t *testing.T) {
	l, err := DecodeLevel([]byte("name: x\ndevices:\n  allow:\n    - c 10:229 /dev/fuse\n    - \"c 195:*\"\n    - {type: b, major: 8, minor: 16, path: /dev/sdb}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(l.Devices.Allow))
	for i, d := range l.Devices.Allow {
		got[i] = d.String() + " " + d.Path
	}
	if want := []string{"c 10:229 /dev/fuse", "c 195:* ", "b 8:16 /dev/sdb"}; !slices.Equal(got, want) {
		t.Errorf("devices.allow = %q, want %q", got, want)
	}
	fuse, gpu, sdb := l.Devices.Allow[0], l.Devices.Allow[1], l.Devices.Allow[2]
	for _, tc := range []struct {
		d            Device
		typ          string
		major, minor int64
		want         bool
	}{
		{fuse, "c", 10, 229, true}, {fuse, "u", 10, 229, true}, {fuse, "b", 10, 229, false}, {fuse, "c", 10, 228, false},
		{fuse, "c", 10, -1, false}, {gpu, "c", 195, 255, true}, {gpu, "c", 195, -1, true}, {gpu, "c", 196, 0, false},
		{sdb, "b", 8, 16, true}, {sdb, "b", 8, 0, false}, {sdb, "c", 8, 16, false},
	} {
		if got := tc.d.Matches(tc.typ, tc.major, tc.minor); got != tc.want {
			t.Errorf("%s.Matches(%s %d:%d) = %v, want %v", tc.d, tc.typ, tc.major, tc.minor, got, tc.want)
		}
	}
	c := l.Clone()
	*c.Devices.Allow[0].Minor = 1
	if *l.Devices.Allow[0].Minor != 229 {
		t.Error("Clone shares a device's minor")
	}
	for _, d := range StandardDevices {
		if err := d.validate(); err != nil {
			t.Errorf("standard device %s: %v", d.Path, err)
		}
	}
}

func TestValidCgroupParent(t *testing.T) {
	for p, want := range map[string]bool{
		"/buildkit": true, "/a/b": true, "build.slice": true, "build-jobs.slice": true,
		"/": false, "/a/": false, "/a/../b": false, "build": false, ".slice": false, "-.slice": false,
		"a/b.slice": false, "a:b.slice": false, "-a.slice": false, "a-.slice": false, "a--b.slice": false,
	} {
		if got := ValidCgroupParent(p); got != want {
			t.Errorf("ValidCgroupParent(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestBuiltinLevelsRefuseByDefault: no built-in level allows a hook,
// realtime scheduling, a raised priority, extra cgroup parents or a restore.
func TestBuiltinLevelsRefuseByDefault(t *testing.T) {
	for _, name := range BuiltinNames() {
		l, _ := Builtin(name)
		if len(l.Hooks.Allow) > 0 || l.Scheduling.AllowRealtime || l.Scheduling.MinNice < 0 || len(l.Cgroups.Parents) > 0 ||
			l.Checkpoint.AllowRestore || l.Limits.MinOOMScoreAdj < 0 || l.Limits.MaxMemlock > 8<<20 {
			t.Errorf("level %s loosens a default: %+v %+v %+v %+v %+v", name, l.Hooks, l.Scheduling, l.Cgroups, l.Checkpoint, l.Limits)
		}
	}
}
