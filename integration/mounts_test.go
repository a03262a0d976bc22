package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hardened-runtime/hardened/integration/harness"
	"github.com/hardened-runtime/hardened/policy"
)

// withLevel selects a level of the test policy by annotation (hostpaths,
// hostpaths-strict and broad are allowed for the namespace hardened-test).
func withLevel(name string) oci.SpecOpts {
	return oci.WithAnnotations(map[string]string{policy.LevelAnnotation: name})
}

// hostDir is a new directory below hostPaths, which level hostpaths may
// bind-mount.
func hostDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp(hostPaths, "t-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func withMount(m specs.Mount) oci.SpecOpts { return oci.WithMounts([]specs.Mount{m}) }

// loopDevice is an ext4 filesystem on a loop device: a host block device
// that is not the host's own disk.
func loopDevice(t *testing.T) (dev string, major, minor int64) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", img).CombinedOutput(); err != nil {
		t.Skipf("skipping: mkfs.ext4: %v %s", err, out)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).Output()
	if err != nil {
		t.Skipf("skipping: losetup: %v", err)
	}
	dev = strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	var st syscall.Stat_t
	if err := syscall.Stat(dev, &st); err != nil {
		t.Fatal(err)
	}
	return dev, int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
}

// runcRootfs starts a plain runc container and returns its live root
// filesystem on the host, below the test containerd's state directory.
func runcRootfs(t *testing.T) string {
	t.Helper()
	ctx, cancel := ctxFor(ns)
	t.Cleanup(cancel)
	id := newID("victim")
	startTask(t, ctx, id, runcRT, oci.WithProcessArgs("sleep", "600"))
	rootfs := filepath.Join(cd.State, "io.containerd.runtime.v2.task", ns, id, "rootfs")
	if _, err := os.Stat(filepath.Join(rootfs, "bin")); err != nil {
		t.Fatalf("the runc container's rootfs: %v", err)
	}
	return rootfs
}

// TestMountsAdversarial: mounts and devices that would reach the host,
// through the real containerd and runc under level restricted (the
// default). Each is refused by its rule, or started with the fix in
// place, as seen from inside.
func TestMountsAdversarial(t *testing.T) {
	require(t)
	dev, major, minor := loopDevice(t)
	victim := runcRootfs(t)
	allowed := hostDir(t)
	os.WriteFile(filepath.Join(allowed, "hello"), []byte("hi\n"), 0o644)
	u := func(c, h, n uint32) []specs.LinuxIDMapping {
		return []specs.LinuxIDMapping{{ContainerID: c, HostID: h, Size: n}}
	}
	for _, tc := range []struct {
		name   string
		opts   []oci.SpecOpts
		refuse []string // the error must say these; nil: it must start
		inside string   // what the container runs; its output must hold want
		want   []string
	}{
		{name: "bind-socket-dir", opts: []oci.SpecOpts{bind(filepath.Dir(cd.Address), "/c")}, refuse: []string{"rule mounts", "mounts[/c].source"}},
		{name: "bind-socket-dir-even-when-listed", opts: []oci.SpecOpts{bind(filepath.Dir(cd.Address), "/c"), withLevel("broad")},
			refuse: []string{"rule mounts", "mounts[/c].source", "API socket"}},
		{name: "bind-run", opts: []oci.SpecOpts{bind("/run", "/hostrun")}, refuse: []string{"rule mounts", "mounts[/hostrun].source"}},
		{name: "bind-var", opts: []oci.SpecOpts{bind("/var", "/hostvar", "ro")}, refuse: []string{"rule mounts", "mounts[/hostvar].source"}},
		{name: "bind-tmp", opts: []oci.SpecOpts{bind("/tmp", "/hosttmp")}, refuse: []string{"rule mounts", "mounts[/hosttmp].source"}},
		{name: "bind-relative-etc", opts: []oci.SpecOpts{bind("../../../../etc", "/hostetc")}, refuse: []string{"rule mounts", "mounts[/hostetc].source", "relative bind source"}},
		{name: "ext4-loop-device", opts: []oci.SpecOpts{withMount(specs.Mount{Destination: "/disk", Type: "ext4", Source: dev, Options: []string{"rw"}})},
			refuse: []string{"rule mounts", "mounts[/disk].type=ext4"}},
		{name: "overlay-host-lowerdir", opts: []oci.SpecOpts{withMount(specs.Mount{Destination: "/merged", Type: "overlay", Source: "overlay",
			Options: []string{"lowerdir=/etc", "upperdir=" + hostDir(t), "workdir=" + hostDir(t)}})}, refuse: []string{"rule mounts", "mounts[/merged].type=overlay"}},
		{name: "second-proc", opts: []oci.SpecOpts{withMount(specs.Mount{Destination: "/hostproc", Type: "proc", Source: "proc"})},
			refuse: []string{"rule mounts", "mounts[/hostproc].destination"}},
		{name: "second-mqueue", opts: []oci.SpecOpts{withMount(specs.Mount{Destination: "/mq", Type: "mqueue", Source: "mqueue"})},
			refuse: []string{"rule mounts", "mounts[/mq].destination"}},
		{name: "tmpfs-over-proc-sys", opts: []oci.SpecOpts{withMount(specs.Mount{Destination: "/proc/sys", Type: "tmpfs", Source: "tmpfs"})},
			refuse: []string{"rule mounts", "mounts[/proc/sys].destination"}},
		{name: "unknown-tmpfs-option", opts: []oci.SpecOpts{withMount(specs.Mount{Destination: "/x", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m,dev"}})},
			refuse: []string{"rule mounts", "mounts[/x].options"}},
		{name: "idmap-host-root", opts: []oci.SpecOpts{withLevel("hostpaths"), withMount(specs.Mount{Destination: "/x", Type: "bind", Source: allowed,
			Options: []string{"rbind", "idmap"}, UIDMappings: u(65534, 0, 1), GIDMappings: u(65534, 0, 1)})}, refuse: []string{"rule mounts", "mounts[/x].uidMappings"}},
		{name: "other-container-rootfs", opts: []oci.SpecOpts{bind(victim, "/other")}, refuse: []string{"rule mounts", "mounts[/other].source"}},
		{name: "content-store", opts: []oci.SpecOpts{bind(filepath.Join(cd.Root, "io.containerd.content.v1.content"), "/content", "ro")},
			refuse: []string{"rule mounts", "mounts[/content].source"}},
		{name: "device-disk-at-dev-full", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/full", Type: "b", Major: major, Minor: minor})
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "b", Major: &major, Minor: &minor, Access: "rwm"})
		})}, refuse: []string{"rule devices", "linux.devices[/dev/full]", fmt.Sprintf("b %d:%d", major, minor)}},
		{name: "device-cgroup-rule-for-disk", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "b", Major: &major, Minor: &minor, Access: "rwm"})
		})}, refuse: []string{"rule devices", "linux.resources.devices"}},
		// What a level allows still gets the fixes.
		{name: "bind-listed-dir", opts: []oci.SpecOpts{withLevel("hostpaths"), bind(allowed, "/x", "suid", "dev")},
			inside: "cat /x/hello; grep ' /x ' /proc/self/mountinfo", want: []string{"hi", "nosuid", "nodev"}},
		{name: "sysfs-rw", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			for i := range s.Mounts {
				if s.Mounts[i].Type == "sysfs" {
					s.Mounts[i].Options = []string{"nosuid", "noexec", "nodev", "rw"}
				}
			}
		})}, inside: "grep ' /sys ' /proc/self/mountinfo", want: []string{" ro,"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := tc.inside
			if cmd == "" {
				cmd = "id"
			}
			res, err := runContainer(t, ns, hardenedRT, harness.Busybox, []string{"sh", "-c", cmd}, tc.opts...)
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
				t.Fatalf("refused, want it started: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.Stdout, w) {
					t.Errorf("inside: want %q; got\n%s%s", w, res.Stdout, res.Stderr)
				}
			}
		})
	}
}

// TestMountsRuntimeFacts: with the facts the shim learns from containerd
// (its root and state, which are temp directories here, never
// /var/lib/containerd), containerd's files stay refused under a level
// whose mounts.allowHostPaths covers them (/tmp), and a CRI container's own
// files are allowed. Needs the shim to fill spec.Inputs' Host.Containerd*
// and Container facts.
func TestMountsRuntimeFacts(t *testing.T) {
	require(t)
	victim := runcRootfs(t)
	for _, tc := range []struct {
		name, src, why string
	}{
		{"other-container-rootfs", victim, "containerd's state directory"},
		{"content-store", filepath.Join(cd.Root, "io.containerd.content.v1.content"), "containerd's root directory"},
		{"containerd-root", cd.Root, "containerd's root directory"},
		{"socket-dir", filepath.Dir(cd.Address), "holds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runContainer(t, ns, hardenedRT, harness.Busybox, []string{"true"}, bind(tc.src, "/x", "ro"), withLevel("broad"))
			if err == nil || !strings.Contains(err.Error(), "rule mounts") || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("bind of %s under a level that lists /tmp: %v, want a refusal by rule mounts naming %s", tc.src, err, tc.why)
			}
		})
	}
}

// TestCRIImageVolume runs, through CRI, an image that declares a VOLUME:
// containerd's CRI plugin bind-mounts a directory of its own below its
// root (<root>/io.containerd.grpc.v1.cri/containers/<id>/volumes/...)
// for it, which must be allowed as the container's own while containerd's
// root stays refused to others. The test containerd's root is a temp
// directory: the protection is computed from it, not from
// /var/lib/containerd.
func TestCRIImageVolume(t *testing.T) {
	require(t)
	rs, _ := cd.CRI(t)
	podID, podCfg, err := pod(t, rs, "vol", false)
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	id, err := startContainer(t, rs, podID, podCfg, "app", nil) // harness.Busybox declares VOLUME /data
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := rs.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"grep", " /data ", "/proc/self/mountinfo"}, Timeout: 30})
	if err != nil {
		t.Fatalf("ExecSync: %v", err)
	}
	info := string(out.Stdout)
	volumes := filepath.Join(cd.Root, "io.containerd.grpc.v1.cri", "containers", id, "volumes")
	if !strings.Contains(info, "nosuid") || !strings.Contains(info, "nodev") {
		t.Errorf("/data: %q, want the image VOLUME's bind mount with nosuid,nodev", info)
	}
	entries, err := os.ReadDir(volumes)
	if err != nil || len(entries) == 0 {
		t.Errorf("the VOLUME's directory below the test containerd's root: %v %v", entries, err)
	}
	// Another container may not have it, even where /tmp is allowed.
	if len(entries) > 0 {
		src := filepath.Join(volumes, entries[0].Name())
		_, err := runContainer(t, ns, hardenedRT, harness.Busybox, []string{"true"}, bind(src, "/stolen"), withLevel("broad"))
		if err == nil || !strings.Contains(err.Error(), "rule mounts") {
			t.Errorf("another container binding %s: %v, want a refusal by rule mounts", src, err)
		}
	}
}
