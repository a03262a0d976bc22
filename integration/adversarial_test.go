package integration

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/integration/harness"
	"github.com/hardened-runtime/hardened/policy"
)

// advProbe prints, from inside a container, the powers an attack would want.
const advProbe = `echo "uid=$(id -u)"
echo "groups=$(id -G)"
echo "uid_map=$(tr -s ' ' < /proc/self/uid_map | sed 's/^ //')"
echo "gid_map=$(tr -s ' ' < /proc/self/gid_map | sed 's/^ //')"
grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\t' | tr ':' '='
(echo x > /proc/sys/kernel/domainname) 2>/dev/null && echo procsys=writable || echo procsys=readonly
[ -e /dev/kmsg ] && echo kmsg=present || echo kmsg=absent
[ -e /dev/mem ] && echo mem=present || echo mem=absent
echo "kcore=$(head -c 16 /proc/kcore 2>/dev/null | wc -c)"
(echo x > /advProbe) 2>/dev/null && echo root=writable || echo root=readonly
(unshare -U true) 2>/dev/null && echo unshare=ok || echo unshare=denied
grep -E ' /shared .*shared:' /proc/self/mountinfo >/dev/null && echo propagation=shared || echo propagation=none
`

// neutral is what every case that starts must show: no power over the
// host left (see noHostPower for its user and capabilities).
var neutral = []string{"NoNewPrivs=1", "Seccomp=2", "procsys=readonly",
	"kmsg=absent", "mem=absent", "kcore=0", "root=readonly", "unshare=denied", "propagation=none"}

// noHostPower checks advProbe's user and capabilities: either a non-root
// user (65534) without any capability, or root in a user namespace of its
// own whose ids (uids and gids) are a range of the shims' (never the host's
// root), with no capability beyond restricted's capabilities.inUserNamespace
// (valid only over its own ids); group 0 only inside such a namespace.
func noHostPower(t *testing.T, out string) {
	t.Helper()
	field := func(k string) string {
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(l, k+"="); ok {
				return v
			}
		}
		return ""
	}
	caps := []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}
	if field("uid") == "65534" {
		for _, c := range caps {
			if v := field(c); v != "0000000000000000" {
				t.Errorf("inside: %s=%s as 65534, want none", c, v)
			}
		}
		if g := regexp.MustCompile(`groups=.*\b0\b`); g.MatchString(out) {
			t.Errorf("group 0 inside: %s", out)
		}
		return
	}
	um, gm := strings.Fields(field("uid_map")), strings.Fields(field("gid_map"))
	if field("uid") != "0" || len(um) != 3 || len(gm) != 3 || um[0] != "0" || !inShimsWindow(parseUint(um[1])) || um[2] != "65536" || gm[1] != um[1] || gm[2] != "65536" {
		t.Errorf("inside: uid=%s uid_map=%v gid_map=%v, want 65534, or root in a user namespace on a range of the shims'", field("uid"), um, gm)
		return
	}
	allowed, _ := strconv.ParseUint(namespacedCaps, 16, 64)
	for _, c := range caps {
		if v, err := strconv.ParseUint(field(c), 16, 64); err != nil || v&^allowed != 0 {
			t.Errorf("inside: %s=%s, beyond the namespaced set %s", c, field(c), namespacedCaps)
		}
	}
}

func withSpec(f func(s *specs.Spec)) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		f(s)
		return nil
	}
}

func allCaps(caps ...string) oci.SpecOpts {
	return withSpec(func(s *specs.Spec) {
		c := s.Process.Capabilities
		c.Bounding = append(c.Bounding, caps...)
		c.Effective = append(c.Effective, caps...)
		c.Permitted = append(c.Permitted, caps...)
		c.Inheritable = append(c.Inheritable, caps...)
		c.Ambient = append(c.Ambient, caps...)
	})
}

func bind(src, dst string, opts ...string) oci.SpecOpts {
	return oci.WithMounts([]specs.Mount{{Source: src, Destination: dst, Type: "bind", Options: append([]string{"rbind"}, opts...)}})
}

// TestAdversarial runs specs that ask for forbidden powers through the real
// containerd and the hardened runtime (level restricted): each is refused
// with the rule that refused it, or starts without the power, which the
// advProbe checks from inside.
func TestAdversarial(t *testing.T) {
	require(t)
	link := filepath.Join(t.TempDir(), "innocent")
	if err := os.Symlink("/", link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		opts   []oci.SpecOpts
		refuse []string // the error must say these; nil: it must start
	}{
		{"privileged", []oci.SpecOpts{oci.WithPrivileged}, []string{"rule privileged"}},
		// Issue 16.6: `ctr run --annotation io.kubernetes.cri.sandbox-namespace=kube-system
		// --privileged`: a pod claim containerd's records do not confirm.
		{"kubernetes-namespace-claim", []oci.SpecOpts{oci.WithPrivileged, oci.WithAnnotations(map[string]string{"io.kubernetes.cri.sandbox-namespace": "kube-system"})},
			[]string{"claim CRI pod", "containerd's records do not confirm"}},
		{"forged-pod-claim", []oci.SpecOpts{oci.WithAnnotations(map[string]string{"io.kubernetes.cri.container-type": "container",
			"io.kubernetes.cri.sandbox-id": "forged", "io.kubernetes.cri.sandbox-uid": "u", "io.kubernetes.cri.sandbox-namespace": "kube-system"})},
			[]string{"containerd's records do not confirm", `names sandbox ""`}},
		{"cap-sys-admin-all-sets", []oci.SpecOpts{allCaps("CAP_SYS_ADMIN")}, []string{"rule capabilities", "process.capabilities.ambient", "CAP_SYS_ADMIN"}},
		{"cap-net-raw-all-sets", []oci.SpecOpts{allCaps("CAP_NET_RAW")}, nil},
		{"cap-sys-ptrace-all-sets", []oci.SpecOpts{allCaps("CAP_SYS_PTRACE")}, []string{"rule capabilities", "process.capabilities.ambient", "CAP_SYS_PTRACE"}},
		{"uid-0", []oci.SpecOpts{oci.WithUserID(0)}, nil},
		{"additional-gid-0", []oci.SpecOpts{withSpec(func(s *specs.Spec) { s.Process.User.AdditionalGids = []uint32{0} })}, nil},
		{"host-pid", []oci.SpecOpts{oci.WithHostNamespace(specs.PIDNamespace)}, []string{"rule namespaces", "linux.namespaces[pid]"}},
		{"host-net", []oci.SpecOpts{oci.WithHostNamespace(specs.NetworkNamespace)}, []string{"rule namespaces", "linux.namespaces[network]"}},
		{"host-ipc", []oci.SpecOpts{oci.WithHostNamespace(specs.IPCNamespace)}, []string{"rule namespaces", "linux.namespaces[ipc]"}},
		{"host-uts", []oci.SpecOpts{oci.WithHostNamespace(specs.UTSNamespace)}, []string{"rule namespaces", "linux.namespaces[uts]"}},
		{"host-net-by-path", []oci.SpecOpts{oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"})}, []string{"rule namespaces", "linux.namespaces[network]"}},
		{"host-user-by-path", []oci.SpecOpts{oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/self/ns/user"})}, []string{"rule namespaces", "linux.namespaces[user]"}},
		{"no-mount-namespace", []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			var keep []specs.LinuxNamespace
			for _, n := range s.Linux.Namespaces {
				if n.Type != specs.MountNamespace {
					keep = append(keep, n)
				}
			}
			s.Linux.Namespaces = keep
		})}, []string{"rule namespaces", "mount"}},
		{"bind-root", []oci.SpecOpts{bind("/", "/host", "ro")}, []string{"rule mounts", "mounts[/host].source"}},
		{"bind-proc", []oci.SpecOpts{bind("/proc", "/hostproc")}, []string{"rule mounts", "mounts[/hostproc].source"}},
		{"bind-sys", []oci.SpecOpts{bind("/sys", "/hostsys")}, []string{"rule mounts", "mounts[/hostsys].source"}},
		{"bind-containerd-socket", []oci.SpecOpts{bind("/var/run/containerd/containerd.sock", "/run/containerd.sock")}, []string{"rule mounts", "mounts[/run/containerd.sock].source"}},
		{"bind-this-containerds-socket", []oci.SpecOpts{bind(cd.Address, "/run/containerd.sock")}, []string{"rule mounts", "mounts[/run/containerd.sock].source", "runtime's API socket"}},
		{"bind-dev-mem", []oci.SpecOpts{bind("/dev/mem", "/mem")}, []string{"rule mounts", "mounts[/mem].source"}},
		{"bind-rshared", []oci.SpecOpts{bind(sharedDir(t), "/shared", "rshared"), withLevel("hostpaths")}, nil}, // becomes rslave
		{"bind-symlink-to-root", []oci.SpecOpts{bind(link, "/innocent", "ro")}, []string{"rule mounts", "mounts[/innocent].source"}},
		{"proc-sys-writable", []oci.SpecOpts{withSpec(func(s *specs.Spec) { s.Linux.ReadonlyPaths = nil })}, nil},
		{"masked-paths-removed", []oci.SpecOpts{withSpec(func(s *specs.Spec) { s.Linux.MaskedPaths = nil })}, nil},
		{"seccomp-unconfined", []oci.SpecOpts{withSpec(func(s *specs.Spec) { s.Linux.Seccomp = nil })}, nil},
		{"seccomp-allow-default", []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
		})}, nil},
		{"apparmor-unconfined", []oci.SpecOpts{withSpec(func(s *specs.Spec) { s.Process.ApparmorProfile = "unconfined" })}, nil},
		{"device-kmsg", []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/kmsg", Type: "c", Major: 1, Minor: 11})
		})}, []string{"rule devices", "/dev/kmsg"}},
		{"device-cgroup-allow-all", []oci.SpecOpts{oci.WithAllDevicesAllowed}, []string{"rule devices", "allows every device"}},
		{"sysctl-kernel", []oci.SpecOpts{withSpec(func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.msgmax": "65536"} })}, []string{"rule sysctls", "kernel.msgmax"}},
		{"annotation-looser-level", []oci.SpecOpts{oci.WithAnnotations(map[string]string{policy.LevelAnnotation: "baseline"})}, []string{"may not replace level restricted"}},
		{"annotation-lies-about-image", []oci.SpecOpts{oci.WithAnnotations(map[string]string{
			"io.kubernetes.cri.image-name": "registry.example/root-tool:1", "io.containerd.image.name": "registry.example/root-tool:1"})}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := runContainer(t, ns, hardenedRT, harness.Busybox, []string{"sh", "-c", advProbe}, tc.opts...)
			if tc.refuse != nil {
				if err == nil {
					t.Fatalf("started; want a refusal. Inside:\n%s", res.Stdout)
				}
				for _, w := range tc.refuse {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("refusal %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("refused, want it neutralised and started: %v", err)
			}
			for _, w := range neutral {
				if !strings.Contains(res.Stdout+"\n", w+"\n") {
					t.Errorf("inside: want %s; got\n%s%s", w, res.Stdout, res.Stderr)
				}
			}
			noHostPower(t, res.Stdout)
		})
	}
}

// sharedDir is a directory that is a shared mount point, so that rshared on
// a bind of it would propagate; level hostpaths may bind-mount it.
func sharedDir(t *testing.T) string {
	dir := hostDir(t)
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	if err := syscall.Mount("", dir, "", syscall.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	return dir
}
