package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hardened-runtime/hardened/internal/imagefs"
	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/spec"
)

// What the rootfs rule made writable (spec.Result.Writable) the shim
// prepares around runc's create:
//
//   - before it, each volume on disk: a directory below the container's
//     volume directory, filled with what the image has at the VOLUME's
//     path (read from the snapshot's directories: the rootfs is mounted
//     only by runc's create), owned by the process user;
//   - after it (runc has mounted the tmpfs and copied the image's files
//     into them, with the image's owners, and the container's process
//     waits for start), the copied files of a process that is not root
//     are given to it, through /proc/<pid>/root;
//   - at Delete, and in `shim delete` after a shim died, the volume
//     directory is removed. By default it is in containerd's working
//     directory of the task, which containerd removes with the task and,
//     after a reboot, on its next start.

// writableFacts is what the record keeps of what was made writable.
type writableFacts struct {
	// VolumeDir is the container's volume directory (spec.ContainerInfo).
	VolumeDir string `json:"volumeDir,omitempty"`
	// VolumesRoot is the policy's volumesDir, when it names one: VolumeDir
	// is then <VolumesRoot>/<namespace>/<id>.
	VolumesRoot string `json:"volumesRoot,omitempty"`
	// Paths are the rootfs rule's Writable, with the owners on the host.
	Paths []writablePath `json:"paths,omitempty"`
	// UIDMappings and GIDMappings are the hardened spec's: the image's
	// owners of a root process's volume map through them.
	UIDMappings []specs.LinuxIDMapping `json:"uidMappings,omitempty"`
	GIDMappings []specs.LinuxIDMapping `json:"gidMappings,omitempty"`
}

type writablePath struct {
	spec.Writable
	// HostUID and HostGID are the owner as the host sees it.
	HostUID uint32 `json:"hostUID"`
	HostGID uint32 `json:"hostGID"`
}

// volumesSubdir is the last element of a container's volume directory
// (spec.TaskVolumeDir).
const volumesSubdir = "volumes"

// volumeDirOf is the container's volume directory: below the policy's
// volumesDir, or in containerd's working directory of the task.
func volumeDirOf(pol *policy.Policy, containerdRoot, ns, id string) string {
	if pol.VolumesDir == "" {
		return spec.TaskVolumeDir(containerdRoot, ns, id)
	}
	if ns == "" || id == "" || strings.ContainsAny(ns+id, "/\x00") || ns == "." || ns == ".." || id == "." || id == ".." {
		return ""
	}
	return filepath.Join(pol.VolumesDir, ns, id)
}

// newWritableFacts records res.Writable with host owners from the hardened
// spec's user namespace mappings.
func newWritableFacts(volumeDir, volumesRoot string, res *spec.Result) *writableFacts {
	if len(res.Writable) == 0 {
		return nil
	}
	w := &writableFacts{VolumeDir: volumeDir, VolumesRoot: volumesRoot}
	if l := res.Spec.Linux; l != nil {
		w.UIDMappings, w.GIDMappings = l.UIDMappings, l.GIDMappings
	}
	for _, p := range res.Writable {
		uid, _ := hostID(w.UIDMappings, p.UID)
		gid, _ := hostID(w.GIDMappings, p.GID)
		w.Paths = append(w.Paths, writablePath{Writable: p, HostUID: uid, HostGID: gid})
	}
	return w
}

// hostID maps a container id to the host through a user namespace's
// mappings; without mappings ids are the host's. ok is false for an id
// the mappings leave out (it maps to the overflow id, 65534).
func hostID(maps []specs.LinuxIDMapping, id uint32) (uint32, bool) {
	if len(maps) == 0 {
		return id, true
	}
	for _, m := range maps {
		if m.Size > 0 && id >= m.ContainerID && uint64(id) < uint64(m.ContainerID)+uint64(m.Size) {
			return m.HostID + (id - m.ContainerID), true
		}
	}
	return 65534, false
}

// prepareVolumes creates the container's volumes on disk and fills each
// with what the image has at its path, read from the task's rootfs mounts
// (the snapshot's directories).
func prepareVolumes(w *writableFacts, rootfs []*types.Mount, taskDir string) error {
	if w == nil {
		return nil
	}
	// CRI's volumes are there, with the image's owners.
	for _, p := range w.Paths {
		if p.Medium == "disk" && p.MadeBy == "cri" && p.Chown {
			if err := chownHostTree(p.Source, int(p.HostUID), int(p.HostGID)); err != nil {
				return fmt.Errorf("volume %s: give CRI's directory %s to uid %d gid %d: %w", p.Path, p.Source, p.UID, p.GID, err)
			}
		}
	}
	if !hasDiskVolumes(w) {
		return nil
	}
	if w.VolumeDir == "" || !filepath.IsAbs(w.VolumeDir) {
		return fmt.Errorf("volumes on disk without a volume directory")
	}
	var img *imagefs.FS
	if len(rootfs) > 0 {
		ms := make([]imagefs.Mount, len(rootfs))
		for i, m := range rootfs {
			ms[i] = imagefs.Mount{Type: m.Type, Source: m.Source, Options: m.Options}
		}
		img, _ = imagefs.FromMounts(ms) // unreadable: the volumes start empty
	}
	// A volume directory left by an earlier task of the container (a
	// crash before Delete) starts afresh, as containerd's working
	// directory does.
	if err := os.RemoveAll(w.VolumeDir); err != nil {
		return fmt.Errorf("remove the old volume directory %s: %w", w.VolumeDir, err)
	}
	// Only root traverses it: a volume a container with the host's root
	// (baseline) filled with a set-user-id file must not be reachable by
	// the node's other users (nosuid holds only inside the container;
	// Moby's CVE-2021-41091). runc opens the mount source as root.
	if err := os.MkdirAll(w.VolumeDir, 0o700); err != nil {
		return fmt.Errorf("create the volume directory: %w", err)
	}
	// In the policy's volumesDir, a mark that this runtime made it, for
	// the containerd whose task directory is named: the sweep of orphans
	// removes nothing else (another tool's data, another containerd's).
	if w.VolumesRoot != "" {
		if err := os.WriteFile(filepath.Join(w.VolumeDir, VolumesMark), []byte(taskDir+"\n"), 0o600); err != nil {
			return fmt.Errorf("mark the volume directory: %w", err)
		}
	}
	for _, p := range w.Paths {
		if p.Medium != "disk" || p.MadeBy != "" {
			continue
		}
		if filepath.Dir(p.Source) != w.VolumeDir {
			return fmt.Errorf("volume %s: source %s is not in the volume directory %s", p.Path, p.Source, w.VolumeDir)
		}
		if err := fillVolume(w, p, img); err != nil {
			return fmt.Errorf("volume %s: %w", p.Path, err)
		}
	}
	return nil
}

// hasDiskVolumes reports whether the runtime makes volumes on disk.
func hasDiskVolumes(w *writableFacts) bool {
	for _, p := range w.Paths {
		if p.Medium == "disk" && p.MadeBy == "" {
			return true
		}
	}
	return false
}

// fillVolume creates the volume's directory, owned as the image has the
// path (a process that is not root: by the process user), and copies the
// image's files below it into it.
func fillVolume(w *writableFacts, p writablePath, img *imagefs.FS) error {
	name := strings.TrimPrefix(path.Clean(p.Path), "/")
	var top fs.FileInfo
	if img != nil {
		if fi, err := img.Stat(name); err == nil && fi.IsDir() {
			top = fi
		}
	}
	mode := fs.FileMode(0o755)
	if top != nil {
		mode = top.Mode() & (fs.ModePerm | fs.ModeSticky | fs.ModeSetgid)
	}
	if err := os.Mkdir(p.Source, 0o700); err != nil {
		return err
	}
	uid, gid := w.owner(p, top)
	if err := os.Lchown(p.Source, int(uid), int(gid)); err != nil {
		return err
	}
	if err := os.Chmod(p.Source, mode); err != nil {
		return err
	}
	if top == nil {
		return nil
	}
	links := map[[2]uint64]string{} // hard links of the image: copied once
	return fs.WalkDir(img, name, func(src string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if src == name {
			return nil
		}
		dst := filepath.Join(p.Source, strings.TrimPrefix(src, name+"/"))
		info, err := d.Info()
		if err != nil {
			return err
		}
		return copyEntry(img, src, dst, info, w, p, links)
	})
}

// owner is who owns a copied file: the process user (Chown), or the
// image's owner through the user namespace (an id the namespace does not
// map: the process user).
func (w *writableFacts) owner(p writablePath, info fs.FileInfo) (uint32, uint32) {
	if p.Chown || info == nil {
		return p.HostUID, p.HostGID
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return p.HostUID, p.HostGID
	}
	uid, okU := hostID(w.UIDMappings, st.Uid)
	gid, okG := hostID(w.GIDMappings, st.Gid)
	if !okU || !okG {
		return p.HostUID, p.HostGID
	}
	return uid, gid
}

// copyEntry copies one file, directory or link of the image; device
// nodes, fifos and sockets are left out (volumes are nodev). Set-user-id
// and set-group-id bits of files are dropped. A file the image has under
// several names (hard links) is copied once and linked again, as the image
// has it: a layer of many links to one large file cannot fill the disk.
func copyEntry(img *imagefs.FS, src, dst string, info fs.FileInfo, w *writableFacts, p writablePath, links map[[2]uint64]string) error {
	uid, gid := w.owner(p, info)
	switch mode := info.Mode(); {
	case mode.IsDir():
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
		if err := os.Lchown(dst, int(uid), int(gid)); err != nil {
			return err
		}
		return os.Chmod(dst, mode&(fs.ModePerm|fs.ModeSticky|fs.ModeSetgid))
	case mode&fs.ModeSymlink != 0:
		target, err := img.ReadLink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
		return os.Lchown(dst, int(uid), int(gid))
	case mode.IsRegular():
		var key [2]uint64
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			key = [2]uint64{uint64(st.Dev), st.Ino}
			if first, ok := links[key]; ok {
				return os.Link(first, dst)
			}
			links[key] = dst
		}
		in, err := img.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, in)
		if err == nil {
			err = out.Chown(int(uid), int(gid))
		}
		if err == nil {
			err = out.Chmod(mode & fs.ModePerm)
		}
		return errors.Join(err, out.Close())
	}
	return nil
}

// removeVolumes removes the container's volume directory: never anything
// but what volumeDirOf names.
func removeVolumes(w *writableFacts) error {
	if w == nil || w.VolumeDir == "" || !filepath.IsAbs(w.VolumeDir) || filepath.Clean(w.VolumeDir) != w.VolumeDir {
		return nil
	}
	if w.VolumesRoot == "" && filepath.Base(w.VolumeDir) == volumesSubdir ||
		w.VolumesRoot != "" && filepath.Dir(filepath.Dir(w.VolumeDir)) == w.VolumesRoot {
		return os.RemoveAll(w.VolumeDir)
	}
	return nil
}

// sweepOnce runs sweepVolumes once per shim process.
var sweepOnce sync.Once

// sweepVolumes removes the volume directories below the policy's
// volumesDir whose container no longer has a bundle in containerd's state
// (taskDir, <state>/io.containerd.runtime.v2.task): left by a shim that
// died and a `shim delete` that did not run (a reboot, a crash of
// containerd). A directory is renamed away first, then its bundle looked
// for again: a container's volumes exist only while its bundle does
// (made after it, removed before it), so a container created meanwhile
// under the same id is seen, and its directory put back.
// VolumesMark is the file that marks a container's directory in the
// policy's volumesDir as this runtime's, naming containerd's task
// directory.
const VolumesMark = ".hardened-volumes"

func sweepVolumes(ctx context.Context, root, taskDir string) {
	nss, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, ns := range nss {
		if !ns.IsDir() || strings.HasPrefix(ns.Name(), ".") {
			continue
		}
		ids, err := os.ReadDir(filepath.Join(root, ns.Name()))
		if err != nil {
			continue
		}
		for _, id := range ids {
			bundle := filepath.Join(taskDir, ns.Name(), id.Name())
			if _, err := os.Lstat(bundle); err == nil || !id.IsDir() {
				continue
			}
			dir := filepath.Join(root, ns.Name(), id.Name())
			if mark, err := os.ReadFile(filepath.Join(dir, VolumesMark)); err != nil || strings.TrimSpace(string(mark)) != taskDir {
				continue // not this runtime's, or another containerd's
			}
			trash, err := os.MkdirTemp(root, ".removing-")
			if err != nil {
				return
			}
			moved := filepath.Join(trash, "v")
			if err := os.Rename(dir, moved); err != nil {
				os.Remove(trash)
				continue
			}
			if _, err := os.Lstat(bundle); err == nil {
				os.Rename(moved, dir) // created meanwhile: its own
				os.Remove(trash)
				continue
			}
			if err := os.RemoveAll(trash); err != nil {
				log.G(ctx).WithError(err).WithField("dir", dir).Warn("hardened: remove the volumes of a container that is gone")
				continue
			}
			log.G(ctx).WithField("dir", dir).Info("hardened: removed the volumes of a container that is gone")
		}
	}
	// Trash of a sweep that was cut short (not one under way elsewhere).
	old, _ := filepath.Glob(filepath.Join(root, ".removing-*"))
	for _, t := range old {
		if fi, err := os.Lstat(t); err == nil && time.Since(fi.ModTime()) > 10*time.Minute {
			os.RemoveAll(t)
		}
	}
}

// giveCopiedFiles gives the files runc copied into the container's tmpfs
// mounts (tmpcopyup, with the image's owners) to the process user, where
// the rule says so (Writable.Chown): the container's process, pid, has
// not started yet. Each path is looked up in the container's root
// (openat2 RESOLVE_IN_ROOT: a link in the image cannot lead out of it),
// must be a tmpfs, and is walked without following links or crossing into
// another mount; the mount's own root keeps the owner and mode its tmpfs
// options gave it.
func giveCopiedFiles(w *writableFacts, pid uint32) error {
	if w == nil || pid == 0 {
		return nil
	}
	var root *os.File
	defer func() {
		if root != nil {
			root.Close()
		}
	}()
	for _, p := range w.Paths {
		if p.Medium != "tmpfs" || !p.CopyUp || !p.Chown {
			continue
		}
		if root == nil {
			var err error
			if root, err = os.OpenFile("/proc/"+strconv.FormatUint(uint64(pid), 10)+"/root", unix.O_PATH|unix.O_DIRECTORY, 0); err != nil {
				return fmt.Errorf("open the container's root: %w", err)
			}
		}
		if err := chownTree(int(root.Fd()), p); err != nil {
			return fmt.Errorf("give the files copied into %s to uid %d gid %d: %w", p.Path, p.UID, p.GID, err)
		}
	}
	return nil
}

// chownHostTree chowns a host directory (never a link) and everything
// below it on the same filesystem, without following links.
func chownHostTree(dir string, uid, gid int) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return err
	}
	return chownBelow(fd, st.Dev, uid, gid, 0)
}

// maxChownDepth bounds the directory depth chownTree descends.
const maxChownDepth = 128

func chownTree(root int, p writablePath) error {
	name := strings.TrimPrefix(path.Clean(p.Path), "/")
	if name == "" {
		name = "."
	}
	fd, err := unix.Openat2(root, name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return err
	}
	if sfs.Type != unix.TMPFS_MAGIC {
		return fmt.Errorf("not the tmpfs the spec mounts there (filesystem type %#x)", sfs.Type)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	return chownBelow(fd, st.Dev, int(p.HostUID), int(p.HostGID), 0)
}

// chownBelow chowns everything below the directory dirfd that is on device
// dev, never following a link.
func chownBelow(dirfd int, dev uint64, uid, gid, depth int) error {
	if depth > maxChownDepth {
		return fmt.Errorf("more than %d directories deep", maxChownDepth)
	}
	dup, err := unix.Dup(dirfd)
	if err != nil {
		return err
	}
	dir := os.NewFile(uintptr(dup), "dir")
	names, err := dir.Readdirnames(-1)
	dir.Close()
	if err != nil {
		return err
	}
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if st.Dev != dev {
			continue // another mount: not what runc copied
		}
		if err := unix.Fchownat(dirfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		sub, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		err = chownBelow(sub, dev, uid, gid, depth+1)
		unix.Close(sub)
		if err != nil {
			return err
		}
	}
	return nil
}

// imageFS is the image's filesystem as the snapshot's mounts make it, for
// the rules to read; nil when the snapshotter's mounts cannot be read
// (the rules then apply only the level's explicit writable paths).
func imageFS(mounts []rootfsMount) fs.FS {
	ms := make([]imagefs.Mount, len(mounts))
	for i, m := range mounts {
		ms[i] = imagefs.Mount{Type: m.Type, Source: m.Source, Options: m.Options}
	}
	f, err := imagefs.FromMounts(ms)
	if err != nil {
		return nil
	}
	return f
}

// createWritable is runc's create with what the rootfs rule made writable
// prepared around it: the volumes on disk before, the copied files' owners
// after (the container's process has not started). When that fails, the
// task runc created is deleted and the error returned: the container does
// not start with state it cannot write.
func (s *service) createWritable(ctx context.Context, r *taskAPI.CreateTaskRequest, rec *record) (*taskAPI.CreateTaskResponse, error) {
	// containerd's task directory (<root>/io.containerd.runtime.v2.task),
	// above the namespace's and the bundle's.
	taskDir := filepath.Dir(filepath.Dir(r.Bundle))
	if w := rec.Writable; w != nil && w.VolumesRoot != "" {
		sweepOnce.Do(func() { go sweepVolumes(context.WithoutCancel(ctx), w.VolumesRoot, taskDir) })
	}
	if err := prepareVolumes(rec.Writable, r.Rootfs, taskDir); err != nil {
		_ = removeVolumes(rec.Writable)
		return nil, errgrpc.ToGRPC(fmt.Errorf("hardened: container %s: %w", r.ID, err))
	}
	resp, err := s.TTRPCTaskService.Create(ctx, r)
	if err != nil {
		_ = removeVolumes(rec.Writable)
		return resp, err
	}
	give := s.giveFiles
	if give == nil {
		give = giveCopiedFiles
	}
	if err := give(rec.Writable, resp.Pid); err != nil {
		err = fmt.Errorf("hardened: container %s: %w", r.ID, err)
		log.G(ctx).WithError(err).WithField("id", r.ID).Error("hardened: container not started")
		if _, derr := s.TTRPCTaskService.Delete(ctx, &taskAPI.DeleteRequest{ID: r.ID}); derr != nil {
			log.G(ctx).WithError(derr).WithField("id", r.ID).Warn("hardened: delete the task whose state could not be prepared")
		}
		_ = removeVolumes(rec.Writable)
		return nil, errgrpc.ToGRPC(err)
	}
	return resp, nil
}

// deleteWritable removes the volumes of a deleted container.
func (s *service) deleteWritable(ctx context.Context, id string) {
	s.mu.Lock()
	c := s.containers[id]
	s.mu.Unlock()
	if c == nil || c.rec == nil {
		return
	}
	if err := removeVolumes(c.rec.Writable); err != nil {
		log.G(ctx).WithError(err).WithField("id", id).Warn("hardened: remove the container's volumes")
	}
}

// removeVolumesOfBundle removes the volumes of container id after its
// shim has gone (`shim delete`, which containerd runs in the bundle, as the
// runc manager's Stop finds it): a shim that died before Delete left
// them.
func removeVolumesOfBundle(ctx context.Context, id string) {
	cwd, err := os.Getwd()
	if err != nil {
		return
	}
	data, err := os.ReadFile(filepath.Join(filepath.Dir(cwd), id, RecordFile))
	if err != nil {
		return
	}
	var rec struct {
		Writable *writableFacts `json:"writable"`
	}
	if json.Unmarshal(data, &rec) != nil {
		return
	}
	if err := removeVolumes(rec.Writable); err != nil {
		log.G(ctx).WithError(err).WithField("id", id).Warn("hardened: remove the volumes of a container whose shim has gone")
	}
}

// snapshotFacts are the rootfs snapshot's parent and mounts.
type snapshotFacts struct {
	parent string
	mounts []rootfsMount
	err    error
}

// snapshotSoon reads the container's rootfs snapshot while the image is
// looked up; nil when the container has none.
func (p *pipeline) snapshotSoon(ctx context.Context, ns string, img *imageRecord) chan snapshotFacts {
	if img.SnapshotKey == "" {
		return nil
	}
	ch := make(chan snapshotFacts, 1)
	snapshotter, key := img.Snapshotter, img.SnapshotKey
	go func() {
		var f snapshotFacts
		f.parent, f.mounts, f.err = p.records.snapshot(ctx, ns, snapshotter, key)
		ch <- f
	}()
	return ch
}

// into records the snapshot in img. Its mounts give the rules the image's
// files; unreadable, they only lose the rules that: an error matters only
// where the signatures policy binds the container to the snapshot.
func (f snapshotFacts) into(img *imageRecord, signatures bool) error {
	if f.err != nil {
		if signatures {
			return f.err
		}
		return nil
	}
	img.SnapshotParent, img.SnapshotMounts = f.parent, f.mounts
	img.Rootfs = imageFS(f.mounts)
	return nil
}
