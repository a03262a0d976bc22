package shim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hardened-runtime/hardened/internal/imagefs"
	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/spec"
)

// imageDir makes a directory that stands for an image's root filesystem
// (the layer of a bind-mounted snapshot).
func imageDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"var/cache/nginx", "var/lib/app/db", "data/sub", "etc"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "data/seed"), []byte("seed"), 0o4755)
	os.WriteFile(filepath.Join(dir, "data/sub/f"), []byte("f"), 0o600)
	os.Symlink("/etc/passwd", filepath.Join(dir, "data/link"))
	os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0::/:/bin/sh\n"), 0o644)
	if os.Getuid() == 0 {
		os.Lchown(filepath.Join(dir, "data/sub/f"), 1000, 1000)
	}
	unix.Mkfifo(filepath.Join(dir, "data/fifo"), 0o644)
	return dir
}

// TestPipelineReadsTheImagesFiles: through the snapshot's mounts the
// rules see which state directories the image has; its VOLUME gets a
// directory in containerd's working directory of the task, recorded with
// the owners on the host.
func TestPipelineReadsTheImagesFiles(t *testing.T) {
	e := newTestEnv(t)
	bundle := e.bundle(testNS, "w1", e.image, nil)
	img := imageDir(t)
	e.fake.mounts["overlayfs/w1-snap"] = []*types.Mount{{Type: "bind", Source: img, Options: []string{"rbind", "ro"}}}
	rec, err := e.run(e.pipeline("shim start"), testNS, "w1", bundle)
	if err != nil {
		t.Fatal(err)
	}
	s := readBundleSpec(t, bundle)
	for p, copyUp := range map[string]bool{"/var/cache/nginx": false, "/var/lib/app": true} {
		if m, ok := mountAt(s, p); !ok || m.Type != "tmpfs" || slices.Contains(m.Options, "tmpcopyup") != copyUp {
			t.Errorf("%s: %+v, want a tmpfs (copy-up: %v)", p, m, copyUp)
		}
	}
	w := rec.Writable
	if w == nil || w.VolumeDir != filepath.Join(e.root, taskPlugin, testNS, "w1", "volumes") {
		t.Fatalf("record: writable %+v", w)
	}
	var vol *writablePath
	for i := range w.Paths {
		if w.Paths[i].Path == "/data" {
			vol = &w.Paths[i]
		}
	}
	if vol == nil || vol.Medium != "disk" || vol.Source != filepath.Join(w.VolumeDir, "data") || vol.HostUID != 65534 || !vol.Chown {
		t.Errorf("record: /data = %+v", vol)
	}
	if m, ok := mountAt(s, "/data"); !ok || m.Source != vol.Source {
		t.Errorf("/data mount %+v", m)
	}
}

func mountAt(s *specs.Spec, dest string) (specs.Mount, bool) {
	for _, m := range s.Mounts {
		if m.Destination == dest {
			return m, true
		}
	}
	return specs.Mount{}, false
}

func TestHostID(t *testing.T) {
	maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1000}, {ContainerID: 65534, HostID: 200000, Size: 1}}
	for _, tc := range []struct {
		maps     []specs.LinuxIDMapping
		id, want uint32
		ok       bool
	}{
		{nil, 65534, 65534, true},
		{maps, 0, 100000, true},
		{maps, 999, 100999, true},
		{maps, 1000, 65534, false},
		{maps, 65534, 200000, true},
	} {
		if got, ok := hostID(tc.maps, tc.id); got != tc.want || ok != tc.ok {
			t.Errorf("hostID(%v, %d) = %d %v, want %d %v", tc.maps, tc.id, got, ok, tc.want, tc.ok)
		}
	}
}

// TestVolumesOnDisk: a volume starts with the image's files there, owned
// by the process user (a non-root process) or as the image has them (a
// root process, through its user namespace); links stay links, device
// nodes and fifos are left out, set-user-id bits dropped; an earlier
// task's directory is replaced; Delete removes it.
func TestVolumesOnDisk(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("skipping: needs root (chown)")
	}
	img := imageDir(t)
	rootfs := []*types.Mount{{Type: "bind", Source: img, Options: []string{"rbind", "ro"}}}
	dir := filepath.Join(t.TempDir(), "work", "volumes")
	os.MkdirAll(filepath.Join(dir, "stale"), 0o755)
	w := &writableFacts{VolumeDir: dir, Paths: []writablePath{
		{Writable: spec.Writable{Path: "/data", Medium: "disk", Source: filepath.Join(dir, "data"), CopyUp: true, UID: 65534, GID: 65534, Chown: true}, HostUID: 65534, HostGID: 65534},
		{Writable: spec.Writable{Path: "/empty", Medium: "disk", Source: filepath.Join(dir, "empty"), CopyUp: true, UID: 65534, GID: 65534, Chown: true}, HostUID: 65534, HostGID: 65534},
		{Writable: spec.Writable{Path: "/tmp", Medium: "tmpfs"}},
	}}
	if err := prepareVolumes(w, rootfs, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	owner := func(p string) (uint32, uint32, os.FileMode) {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return st.Uid, st.Gid, fi.Mode()
	}
	for _, p := range []string{"data", "data/seed", "data/sub", "data/sub/f", "data/link", "empty"} {
		if uid, gid, _ := owner(filepath.Join(dir, p)); uid != 65534 || gid != 65534 {
			t.Errorf("%s owned by %d:%d, want 65534", p, uid, gid)
		}
	}
	if _, _, mode := owner(filepath.Join(dir, "data/seed")); mode&os.ModeSetuid != 0 || mode.Perm() != 0o755 {
		t.Errorf("data/seed mode %v", mode)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "data/seed")); string(data) != "seed" {
		t.Errorf("data/seed = %q", data)
	}
	if target, _ := os.Readlink(filepath.Join(dir, "data/link")); target != "/etc/passwd" {
		t.Errorf("data/link -> %q", target)
	}
	for _, gone := range []string{"data/fifo", "stale"} {
		if _, err := os.Lstat(filepath.Join(dir, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v, want absent", gone, err)
		}
	}
	// A root process in a user namespace: the image's owners, mapped.
	w.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 300000, Size: 65536}}
	w.GIDMappings = w.UIDMappings
	for i := range w.Paths {
		w.Paths[i].Chown, w.Paths[i].HostUID, w.Paths[i].HostGID = false, 300000, 300000
	}
	if err := prepareVolumes(w, rootfs, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if uid, _, _ := owner(filepath.Join(dir, "data/sub/f")); uid != 301000 {
		t.Errorf("data/sub/f (image uid 1000) owned by %d, want 301000", uid)
	}
	if uid, _, _ := owner(filepath.Join(dir, "data/seed")); uid != 300000 {
		t.Errorf("data/seed (image root) owned by %d, want 300000", uid)
	}
	if err := removeVolumes(w); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("volume directory after removal: %v", err)
	}
	// Never anything but a volume directory.
	if err := removeVolumes(&writableFacts{VolumeDir: filepath.Dir(dir)}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(dir)); err != nil {
		t.Errorf("removeVolumes removed %s", filepath.Dir(dir))
	}
	// A source outside the volume directory is refused.
	bad := &writableFacts{VolumeDir: dir, Paths: []writablePath{{Writable: spec.Writable{Path: "/x", Medium: "disk", Source: "/etc/x"}}}}
	if err := prepareVolumes(bad, rootfs, t.TempDir()); err == nil || !strings.Contains(err.Error(), "not in the volume directory") {
		t.Errorf("prepareVolumes(source /etc/x) = %v", err)
	}
}

// TestGiveCopiedFiles: the files below a tmpfs (as runc's tmpcopyup left
// them) become the process user's; the tmpfs's own root keeps its owner,
// links are not followed, other mounts below are not entered, and a path
// that is not a tmpfs is an error.
func TestGiveCopiedFiles(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("skipping: needs root (mount, chown)")
	}
	root := t.TempDir()
	state := filepath.Join(root, "var/cache/app")
	other := filepath.Join(state, "other")
	os.MkdirAll(state, 0o755)
	if err := unix.Mount("tmpfs", state, "tmpfs", 0, "mode=0755,uid=65534,gid=65534"); err != nil {
		t.Skipf("skipping: mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(state, unix.MNT_DETACH) })
	outside := filepath.Join(root, "outside")
	os.WriteFile(outside, nil, 0o644)
	os.MkdirAll(filepath.Join(state, "a/b"), 0o755)
	os.WriteFile(filepath.Join(state, "a/b/f"), []byte("x"), 0o644)
	os.Symlink("/outside", filepath.Join(state, "a/link"))
	os.MkdirAll(other, 0o755)
	if err := unix.Mount("tmpfs", other, "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(other, unix.MNT_DETACH) })
	os.WriteFile(filepath.Join(other, "g"), nil, 0o644)

	rootFd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rootFd)
	p := writablePath{Writable: spec.Writable{Path: "/var/cache/app", Medium: "tmpfs", CopyUp: true, Chown: true}, HostUID: 1234, HostGID: 5678}
	if err := chownTree(rootFd, p); err != nil {
		t.Fatal(err)
	}
	uidOf := func(p string) uint32 {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Uid
	}
	for p, want := range map[string]uint32{
		"a": 1234, "a/b": 1234, "a/b/f": 1234, "a/link": 1234,
		".": 65534, "other": 0, "other/g": 0,
	} {
		if got := uidOf(filepath.Join(state, p)); got != want {
			t.Errorf("%s owned by %d, want %d", p, got, want)
		}
	}
	if got := uidOf(outside); got != 0 {
		t.Errorf("the link's target outside was chowned to %d", got)
	}
	if err := chownTree(rootFd, writablePath{Writable: spec.Writable{Path: "/"}, HostUID: 1}); err == nil || !strings.Contains(err.Error(), "not the tmpfs") {
		t.Errorf("chownTree(/) = %v, want: not a tmpfs", err)
	}
}

// TestCreatePreparesWritableState: Create makes the volumes before runc's
// create and gives the copied files to the user after; when that fails,
// the task runc created is deleted and the error returned.
func TestCreatePreparesWritableState(t *testing.T) {
	e := newTestEnv(t)
	s, runc := e.service()
	bundle := e.bundle(testNS, "cw", e.image, nil)
	img := imageDir(t)
	e.fake.mounts["overlayfs/cw-snap"] = []*types.Mount{{Type: "bind", Source: img, Options: []string{"rbind", "ro"}}}
	if _, err := e.create(s, testNS, "cw", bundle, func(r *taskAPI.CreateTaskRequest) {
		r.Rootfs = []*types.Mount{{Type: "bind", Source: img, Options: []string{"rbind", "ro"}}}
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(runc.gave, "42:/var/lib/app") {
		t.Errorf("gave %v, want the copied files of /var/lib/app given after create (pid 42)", runc.gave)
	}
	vol := filepath.Join(e.root, taskPlugin, testNS, "cw", "volumes", "data")
	if os.Getuid() == 0 {
		if data, err := os.ReadFile(filepath.Join(vol, "seed")); err != nil || string(data) != "seed" {
			t.Errorf("volume: %q %v", data, err)
		}
	}
	if _, err := s.Delete(context.Background(), &taskAPI.DeleteRequest{ID: "cw"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(vol)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("volumes after Delete: %v", err)
	}

	runc.giveErr = errors.New("no tmpfs")
	bundle = e.bundle(testNS, "cw2", e.image, nil)
	e.fake.mounts["overlayfs/cw2-snap"] = []*types.Mount{{Type: "bind", Source: img, Options: []string{"rbind", "ro"}}}
	_, err := e.create(s, testNS, "cw2", bundle, func(r *taskAPI.CreateTaskRequest) { r.Rootfs = copyMounts(e.fake.mounts["overlayfs/cw2-snap"]) })
	if err == nil || !strings.Contains(err.Error(), "no tmpfs") {
		t.Errorf("Create = %v, want the error", err)
	}
	if n := len(runc.deletes); n == 0 || runc.deletes[n-1].ID != "cw2" {
		t.Errorf("the task runc created was not deleted: %v", runc.deletes)
	}
}

// TestVolumesDir: with the policy's volumesDir, a container's volumes are
// <volumesDir>/<namespace>/<id>; removal touches nothing else; a sweep
// removes the directories of containers without a bundle, and keeps those
// with one.
func TestVolumesDir(t *testing.T) {
	root := filepath.Join(t.TempDir(), "volumes")
	pol, err := policy.Parse([]byte("volumesDir: " + root + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := volumeDirOf(pol, "/var/lib/containerd", "default", "db"); got != filepath.Join(root, "default", "db") {
		t.Errorf("volumeDirOf = %s", got)
	}
	if got := volumeDirOf(pol, "/var/lib/containerd", "default", "../x"); got != "" {
		t.Errorf("volumeDirOf(id ../x) = %q", got)
	}
	if got := volumeDirOf(policy.Default(), "/var/lib/containerd", "default", "db"); got != "/var/lib/containerd/io.containerd.runtime.v2.task/default/db/volumes" {
		t.Errorf("volumeDirOf (default) = %s", got)
	}
	taskDir := filepath.Join(t.TempDir(), "io.containerd.runtime.v2.task")
	// Marked by this runtime for this containerd, for another
	// containerd's, or not at all (another tool's data): only the first
	// kind is swept when its container is gone.
	for _, c := range []struct {
		id     string
		bundle bool
		mark   string
	}{{"live", true, taskDir}, {"gone", false, taskDir}, {"gone2", false, taskDir}, {"others", false, "/var/lib/other/io.containerd.runtime.v2.task"}, {"unmarked", false, ""}} {
		os.MkdirAll(filepath.Join(root, "default", c.id, "data"), 0o755)
		os.WriteFile(filepath.Join(root, "default", c.id, "data", "f"), []byte("x"), 0o644)
		if c.mark != "" {
			os.WriteFile(filepath.Join(root, "default", c.id, VolumesMark), []byte(c.mark+"\n"), 0o600)
		}
		if c.bundle {
			os.MkdirAll(filepath.Join(taskDir, "default", c.id), 0o700)
		}
	}
	old := filepath.Join(root, ".removing-old")
	os.MkdirAll(old, 0o700)
	os.Chtimes(old, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour))
	sweepVolumes(context.Background(), root, taskDir)
	for id, want := range map[string]bool{"live": true, "gone": false, "gone2": false, "others": true, "unmarked": true} {
		_, err := os.Stat(filepath.Join(root, "default", id, "data", "f"))
		if (err == nil) != want {
			t.Errorf("after the sweep, %s: %v (want kept: %v)", id, err, want)
		}
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an old sweep's trash is left: %v", err)
	}
	w := &writableFacts{VolumesRoot: root, VolumeDir: filepath.Join(root, "default", "live")}
	if err := removeVolumes(w); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(w.VolumeDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("removeVolumes left %s", w.VolumeDir)
	}
	// Nothing but <root>/<ns>/<id>.
	for _, dir := range []string{root, filepath.Join(root, "default"), filepath.Join(root, "default", "a", "b")} {
		os.MkdirAll(dir, 0o755)
		removeVolumes(&writableFacts{VolumesRoot: root, VolumeDir: dir})
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("removeVolumes removed %s", dir)
		}
	}
}

// TestVolumeCopyKeepsHardLinks: an image's file with many names is copied
// into a volume once and linked again: many links to one large file
// cannot fill the node's disk.
func TestVolumeCopyKeepsHardLinks(t *testing.T) {
	layer := t.TempDir()
	if err := os.MkdirAll(filepath.Join(layer, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(layer, "data", "big")
	if err := os.WriteFile(big, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := os.Link(big, filepath.Join(layer, "data", fmt.Sprintf("link%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	img, err := imagefs.New(layer)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "volumes")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	p := writablePath{Writable: spec.Writable{Path: "/data", Medium: "disk", Source: filepath.Join(dir, "data"), UID: uid, GID: gid}, HostUID: uid, HostGID: gid}
	if err := fillVolume(&writableFacts{VolumeDir: dir}, p, img); err != nil {
		t.Fatal(err)
	}
	first, err := os.Stat(filepath.Join(dir, "data", "big"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		fi, err := os.Stat(filepath.Join(dir, "data", fmt.Sprintf("link%d", i)))
		if err != nil || !os.SameFile(first, fi) {
			t.Fatalf("link%d: %v, not the same file as big", i, err)
		}
	}
	if n := first.Sys().(*syscall.Stat_t).Nlink; n != 51 {
		t.Errorf("big has %d links in the volume, want 51", n)
	}
}
