package spec

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
)

// ruleRootfs makes the root filesystem read-only and makes writable, where
// nothing is mounted yet, what images write at run time, without making the
// image itself writable.
//
// Restricted fields: root.readonly, mounts (tmpfs and bind mounts added),
// process.env TMPDIR.
//
// Allowed values: root.readonly true.
//
// Otherwise: root.readonly is set, and, each nosuid and nodev (noexec too
// with rootfs.noExec, the strict level: a noexec /tmp breaks JNA, snappy and
// the like), where nothing is mounted at the path or above it:
//   - shared scratch space: the level's rootfs.tmpfs paths (/tmp, /var/tmp,
//     /run; /var/run too when the image has it as a directory of its own
//     rather than a link to /run) get a tmpfs of rootfs.tmpfsSize, mode 1777
//     so that any user can write;
//   - volumes: each declared VOLUME of the image gets, with rootfs.volumes
//     disk, a bind mount of a directory on disk private to the container
//     (below ContainerInfo.VolumeDir, which the runtime creates, fills with
//     what the image has there and removes with the container); with tmpfs,
//     a tmpfs of rootfs.tmpfsSize; with none, nothing;
//   - state: the level's rootfs.statePaths that the image has (as
//     directories, without more than rootfs.tmpfsSize in them, outside
//     rootfs.stateExclude and never a system directory such as /usr or
//     /var itself), and every rootfs.writablePaths entry, get a tmpfs of
//     rootfs.tmpfsSize owned by the process user that starts with what the
//     image has there (runc's tmpcopyup).
//
// Copied-up files keep the image's owners; for a process that is not root,
// the runtime gives them to the process user before the process starts
// (Writable.Chown). The image's other files, its binaries and libraries,
// stay read-only. TMPDIR is set to /tmp when unset. Result.Writable lists
// what was made writable.
func ruleRootfs(h *hardening) {
	lv := h.level.Rootfs
	if !lv.ReadOnly {
		return
	}
	if !h.spec.Root.Readonly {
		h.spec.Root.Readonly = true
		h.change("root.readonly", "false", "true", "the image cannot be changed at run time; what it writes gets a tmpfs or a volume")
	}
	root := h.in.Image.Rootfs
	limit, sized := tmpfsBytes(lv.TmpfsSize)
	user := h.spec.Process.User
	shared := lv.Tmpfs
	if slices.Contains(shared, "/run") && ownVarRun(root) {
		shared = append(slices.Clip(shared), "/var/run")
	}
	for _, p := range shared {
		h.fixSharedTmpfs(p)
		// The image's own files there (/run/nginx, /var/run/postgresql)
		// come along when they are few.
		copyUp := root != nil && sized && hasEntries(root, p) && fitsTmpfs(root, p, limit)
		opts := "mode=1777"
		if copyUp {
			opts += ",tmpcopyup"
		}
		h.addTmpfs(p, opts, "shared scratch space of a read-only root", writableScratch, copyUp)
	}
	h.addVolumes()
	for _, c := range h.statePaths() {
		// Copying up costs runc a tmpfs mounted aside and moved: only
		// where the image has something to copy (or might have).
		copyUp := !c.tooLarge && (root == nil || hasEntries(root, c.path))
		opts := "mode=" + c.mode + ",uid=" + itoa(user.UID) + ",gid=" + itoa(user.GID)
		reason := c.reason
		if copyUp {
			opts += ",tmpcopyup"
		} else if !c.tooLarge {
			reason = strings.Replace(reason, "a tmpfs that starts with its content (copy-up)", "an empty tmpfs (the image's directory there is empty)", 1)
			reason = strings.Replace(reason, "a tmpfs that starts with what the image has there (copy-up)", "an empty tmpfs (the image's directory there is empty)", 1)
		}
		h.addTmpfs(c.path, opts, reason, writableState, copyUp)
	}
	if slices.Contains(lv.Tmpfs, "/tmp") && !hasEnv(h.spec.Process.Env, "TMPDIR") {
		h.spec.Process.Env = append(h.spec.Process.Env, "TMPDIR=/tmp")
		h.change("process.env[TMPDIR]", "", "/tmp", "temporary files go to the writable /tmp")
	}
}

// Writable is a path the rootfs rule made writable in a read-only root.
type Writable struct {
	// Path is where the container sees it.
	Path string `json:"path"`
	// Kind is scratch (shared, mode 1777), state (a path the image
	// writes, owned by the process user) or volume (a declared VOLUME).
	Kind string `json:"kind"`
	// Medium is tmpfs (in memory, of Size) or disk (a directory on the
	// node's disk at Source).
	Medium string `json:"medium"`
	// Size is the tmpfs's size limit, as its size= option says; "" on disk.
	Size string `json:"size,omitempty"`
	// Source is the host directory of a volume on disk.
	Source string `json:"source,omitempty"`
	// CopyUp is true when it starts with what the image has at Path.
	CopyUp bool `json:"copyUp,omitempty"`
	// UID and GID are its owner in the container: the process user.
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
	// Chown is true when everything copied from the image is to be the
	// process user's (a process that is not root could not write the
	// image's root-owned directories); false keeps the image's owners, for
	// a root process that chowns what it needs and drops to its own user.
	Chown bool `json:"chown,omitempty"`
	// MadeBy is "cri" for a volume containerd's CRI plugin made (and
	// filled from the image) for the container, which the runtime only
	// gives to the process user; "" for what the runtime makes itself.
	MadeBy string `json:"madeBy,omitempty"`
}

// Kinds and media of Writable.
const (
	writableScratch = "scratch"
	writableState   = "state"
	writableVolume  = "volume"
	mediumTmpfs     = "tmpfs"
	mediumDisk      = "disk"
)

// fixSharedTmpfs makes an existing tmpfs on a shared scratch path (such as
// the /run tmpfs of containerd's default spec, mode 755 and owned by root)
// writable for a non-root process, and gives it the options the level's own
// tmpfs would have.
func (h *hardening) fixSharedTmpfs(dest string) {
	for i := range h.spec.Mounts {
		m := &h.spec.Mounts[i]
		if m.Type != "tmpfs" || cleanPath(m.Destination) != dest {
			continue
		}
		opts := slices.Clone(m.Options)
		want := []string{"nosuid", "nodev"}
		if h.level.Rootfs.NoExec {
			want = append(want, "noexec")
		}
		for _, o := range want {
			if !slices.Contains(opts, o) {
				opts = append(withoutOption(opts, strings.TrimPrefix(o, "no")), o)
			}
		}
		if h.spec.Process.User.UID != 0 && !slices.ContainsFunc(opts, func(o string) bool { return strings.HasPrefix(o, "uid=") }) {
			for j, o := range opts {
				if strings.HasPrefix(o, "mode=") && o != "mode=1777" {
					opts[j] = "mode=1777"
				}
			}
		}
		if !slices.Equal(opts, m.Options) {
			h.setOptions(m, "mounts["+dest+"]", opts, "shared scratch space must be writable by the non-root user, nosuid and nodev")
		}
	}
}

// addTmpfs mounts a tmpfs with the level's options and opts on dest
// unless something is mounted on dest or on a directory above it, and
// records it in Result.Writable (also when the same tmpfs is there
// already: hardening again changes nothing and reports the same). The
// mount goes before the first mount below dest, so that it does not hide
// that one.
func (h *hardening) addTmpfs(dest, opts, reason, kind string, copyUp bool) {
	m := specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: h.tmpfsOptions(opts)}
	if !h.addMount(m, reason) {
		return
	}
	w := Writable{Path: dest, Kind: kind, Medium: mediumTmpfs, Size: h.level.Rootfs.TmpfsSize, CopyUp: copyUp}
	if kind != writableScratch {
		w.UID, w.GID = h.spec.Process.User.UID, h.spec.Process.User.GID
	}
	// Copied-up files keep the image's owners: a process that is not root
	// gets them (in scratch space too: /run/postgresql of a root image).
	w.Chown = copyUp && h.spec.Process.User.UID != 0
	if w.Chown && kind == writableScratch {
		w.UID, w.GID = h.spec.Process.User.UID, h.spec.Process.User.GID
	}
	h.writable = append(h.writable, w)
}

// tmpfsOptions are the options of a tmpfs the rule adds: nosuid, nodev,
// noexec with rootfs.noExec, then opts, then the size limit.
func (h *hardening) tmpfsOptions(opts string) []string {
	out := make([]string, 0, 8)
	out = append(out, "nosuid", "nodev")
	if h.level.Rootfs.NoExec {
		out = append(out, "noexec")
	}
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		out = append(out, o)
	}
	return append(out, "size="+h.level.Rootfs.TmpfsSize)
}

// addMount adds m unless something is mounted on its destination or on a
// directory above it, before the first mount below it. It reports whether
// m is in the spec now: added, or there already as it is.
func (h *hardening) addMount(m specs.Mount, reason string) bool {
	dest := m.Destination
	at, above := len(h.spec.Mounts), false
	for i, e := range h.spec.Mounts {
		d := cleanPath(e.Destination)
		switch {
		case d == dest:
			return e.Type == m.Type && e.Source == m.Source && slices.Equal(e.Options, m.Options)
		case d != "/" && profiles.IsBelow(dest, d):
			above = true
		case at == len(h.spec.Mounts) && dest != "/" && profiles.IsBelow(d, dest):
			at = i // the first mount below it
		}
	}
	if above {
		return false
	}
	h.spec.Mounts = slices.Insert(h.spec.Mounts, at, m)
	to := m.Type + " " + strings.Join(m.Options, ",")
	if m.Type == "bind" {
		to = "bind " + m.Source + " " + strings.Join(m.Options, ",")
	}
	h.change("mounts["+dest+"]", "", to, reason)
	return true
}

// addVolumes gives each declared VOLUME of the image what rootfs.volumes
// says, where nothing is mounted.
func (h *hardening) addVolumes() {
	mode := h.level.Rootfs.Volumes
	if mode == "" || mode == profiles.VolumesNone {
		return
	}
	vols := make([]string, 0, len(h.in.Image.Volumes))
	for _, v := range h.in.Image.Volumes {
		if v = path.Clean("/" + v); v != "/" && !slices.Contains(vols, v) {
			vols = append(vols, v)
		}
	}
	slices.Sort(vols) // a volume before those below it
	dir := cleanAbs(h.in.Container.VolumeDir)
	user := h.spec.Process.User
	names := map[string]bool{}
	for _, v := range vols {
		if h.criVolume(v) {
			continue
		}
		why := "the image declares VOLUME " + v + " and nothing is mounted there"
		if mode == profiles.VolumesTmpfs || dir == "" {
			if mode == profiles.VolumesDisk {
				why += "; the runtime named no directory for volumes on disk, so a tmpfs of " + h.level.Rootfs.TmpfsSize + " (in memory) instead"
			} else {
				why += " (rootfs.volumes: tmpfs: in memory, of rootfs.tmpfsSize)"
			}
			h.addTmpfs(v, "mode=0755,uid="+itoa(user.UID)+",gid="+itoa(user.GID)+",tmpcopyup", why, writableVolume, true)
			continue
		}
		name := volumeName(v, names)
		opts := []string{"rbind", "rw", "nosuid", "nodev"}
		if h.level.Rootfs.NoExec {
			opts = append(opts, "noexec")
		}
		m := specs.Mount{Destination: v, Type: "bind", Source: path.Join(dir, name), Options: opts}
		if h.addMount(m, why+": a directory on disk private to the container, with the image's content there, removed with it (rootfs.volumes: disk)") {
			h.writable = append(h.writable, Writable{Path: v, Kind: writableVolume, Medium: mediumDisk, Source: m.Source, CopyUp: true,
				UID: user.UID, GID: user.GID, Chown: user.UID != 0})
		}
	}
}

// TaskVolumeDir is where the runtime keeps a container's volumes on disk
// (ContainerInfo.VolumeDir): in containerd's working directory of the task,
// <containerd root>/io.containerd.runtime.v2.task/<namespace>/<id>/volumes,
// which containerd removes with the task, and on its next start after a
// reboot. "" when a fact is missing or not one path element.
func TaskVolumeDir(containerdRoot, namespace, id string) string {
	root := cleanAbs(containerdRoot)
	if root == "" || !IsPathElement(namespace) || !IsPathElement(id) {
		return ""
	}
	return path.Join(root, "io.containerd.runtime.v2.task", namespace, id, "volumes")
}

// criVolume records the VOLUME v when containerd's CRI plugin mounted a
// directory of its own there (it does for every VOLUME of a pod's image:
// <root>/io.containerd.grpc.v1.cri/containers/<id>/volumes/<uuid>, filled
// from the image with the image's owners): the runtime gives its files to
// a process user that is not root, as it does with its own volumes.
func (h *hardening) criVolume(v string) bool {
	root, id := cleanAbs(h.in.Host.ContainerdRoot), h.in.Container.ID
	if root == "" || !IsPathElement(id) || !h.criFiles() {
		return false
	}
	dir := path.Join(root, criPlugin, "containers", id, "volumes")
	for _, m := range h.spec.Mounts {
		if cleanPath(m.Destination) != v || !isBind(m.Type, m.Options) || !profiles.IsBelow(cleanPath(m.Source), dir) ||
			slices.Contains(m.Options, "ro") || slices.Contains(m.Options, "rro") {
			continue
		}
		user := h.spec.Process.User
		h.writable = append(h.writable, Writable{Path: v, Kind: writableVolume, Medium: mediumDisk, Source: path.Clean(m.Source), CopyUp: true,
			UID: user.UID, GID: user.GID, Chown: user.UID != 0, MadeBy: "cri"})
		return true
	}
	return false
}

// volumeName is the name of the directory of volume v below VolumeDir:
// its path with / as _, made unique among names.
func volumeName(v string, names map[string]bool) string {
	base := strings.ReplaceAll(strings.TrimPrefix(v, "/"), "/", "_")
	name := base
	for i := 2; names[name]; i++ {
		name = base + "-" + strconv.Itoa(i)
	}
	names[name] = true
	return name
}

// statePath is a path the rule makes writable with copy-up.
type statePath struct {
	path, mode, reason string
	// tooLarge: the image has more there than the tmpfs holds (an
	// explicit writablePaths entry then gets an empty tmpfs).
	tooLarge bool
}

// systemDirs are never state paths, nor is a directory that holds one:
// copying them up would make the image's software writable.
var systemDirs = []string{"/bin", "/boot", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/opt", "/root", "/sbin", "/srv", "/usr", "/var"}

// statePaths lists the level's state paths that apply to the image, then
// its writablePaths, parents before children.
func (h *hardening) statePaths() []statePath {
	lv := h.level.Rootfs
	root := h.in.Image.Rootfs
	limit, sized := tmpfsBytes(lv.TmpfsSize)
	var out []statePath
	seen := map[string]bool{}
	add := func(p, reason string, explicit bool) {
		if seen[p] {
			return
		}
		seen[p] = true
		c := statePath{path: p, mode: "0755", reason: reason}
		if root != nil {
			if fi, err := lstat(root, p); err == nil && fi.IsDir() {
				c.mode = fmt.Sprintf("%04o", fi.Mode().Perm()|0o700)
				if fi.Mode()&fs.ModeSticky != 0 {
					c.mode = fmt.Sprintf("1%03o", fi.Mode().Perm()|0o700)
				}
			}
			// An explicit entry whose content would not fit starts empty;
			// with an unreadable image runc copies what there is.
			if explicit && sized && !fitsTmpfs(root, p, limit) {
				c.tooLarge = true
				c.reason += "; the image has more there than a tmpfs of " + lv.TmpfsSize + " holds, so it starts empty (raise rootfs.tmpfsSize, or mount a volume there)"
			}
		}
		out = append(out, c)
	}
	if len(lv.StatePaths) > 0 && root == nil {
		h.note("mounts", "rootfs.statePaths not applied: the image's filesystem could not be read, so which of them it has is unknown; list what the workload writes in rootfs.writablePaths")
	}
	if root != nil {
		for _, pattern := range lv.StatePaths {
			for _, p := range h.expandState(root, pattern) {
				if h.stateExcluded(p) {
					continue
				}
				if !sized || !fitsTmpfs(root, p, limit) {
					h.note("mounts["+p+"]", "rootfs.statePaths "+pattern+": left read-only: the image has more there than a tmpfs of "+lv.TmpfsSize+" holds (list it in rootfs.writablePaths with a larger rootfs.tmpfsSize, or mount a volume there)")
					continue
				}
				add(p, "the image has "+p+", where images write at run time (rootfs.statePaths "+pattern+"): a tmpfs that starts with its content (copy-up), owned by the process user", false)
			}
		}
	}
	for _, p := range lv.WritablePaths {
		add(p, "writable path of level "+h.level.Name+" (rootfs.writablePaths): a tmpfs that starts with what the image has there (copy-up), owned by the process user", true)
	}
	slices.SortStableFunc(out, func(a, b statePath) int { return strings.Compare(a.path, b.path) })
	return out
}

// expandState returns the directories of the image that a statePaths
// entry names.
func (h *hardening) expandState(root fs.FS, pattern string) []string {
	if !path.IsAbs(pattern) {
		wd := h.in.Image.WorkingDir
		if wd == "" {
			wd = h.spec.Process.Cwd
		}
		if wd = path.Clean("/" + wd); wd == "/" {
			return nil
		}
		pattern = path.Join(wd, pattern)
	}
	var candidates []string
	if dir, ok := strings.CutSuffix(pattern, "/*"); ok {
		entries, err := fs.ReadDir(root, strings.TrimPrefix(dir, "/"))
		if err != nil {
			return nil
		}
		for _, e := range entries {
			candidates = append(candidates, path.Join(dir, e.Name()))
		}
	} else {
		candidates = []string{pattern}
	}
	var out []string
	for _, p := range candidates {
		if fi, err := lstat(root, p); err == nil && fi.IsDir() && !holdsSystemDir(p) {
			out = append(out, p)
		}
	}
	return out
}

// stateExcluded reports whether p is, is below or holds a path of
// rootfs.stateExclude.
func (h *hardening) stateExcluded(p string) bool {
	for _, x := range h.level.Rootfs.StateExclude {
		if p == x || profiles.IsBelow(p, x) || profiles.IsBelow(x, p) {
			return true
		}
	}
	return false
}

func holdsSystemDir(p string) bool {
	for _, s := range systemDirs {
		if p == s || profiles.IsBelow(s, p) {
			return true
		}
	}
	return false
}

// lstat stats p (absolute) in root without following a final symbolic
// link, where root can.
func lstat(root fs.FS, p string) (fs.FileInfo, error) {
	name := strings.TrimPrefix(path.Clean(p), "/")
	if name == "" {
		name = "."
	}
	if l, ok := root.(fs.ReadLinkFS); ok {
		return l.Lstat(name)
	}
	return fs.Stat(root, name)
}

// maxCopyUpEntries bounds the files a copy-up may take: beyond it a
// directory counts as too large, whatever its size (each costs runc a copy
// at every start).
const maxCopyUpEntries = 4096

// fitsTmpfs reports whether what root has at p (nothing counts as fitting)
// holds at most limit bytes, with room to write, in at most
// maxCopyUpEntries files.
func fitsTmpfs(root fs.FS, p string, limit int64) bool {
	name := strings.TrimPrefix(path.Clean(p), "/")
	if fi, err := lstat(root, p); err != nil || !fi.IsDir() {
		return true
	}
	var size int64
	n := 0
	err := fs.WalkDir(root, name, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n++; n > maxCopyUpEntries {
			return fs.SkipAll
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				size += fi.Size()
			}
		}
		return nil
	})
	// Half the tmpfs at most: the workload needs room to write.
	return err == nil && n <= maxCopyUpEntries && size <= limit/2
}

// hasEntries reports whether the image has a directory at p with
// something in it.
func hasEntries(root fs.FS, p string) bool {
	if fi, err := lstat(root, p); err != nil || !fi.IsDir() {
		return false
	}
	entries, err := fs.ReadDir(root, strings.TrimPrefix(path.Clean(p), "/"))
	return err == nil && len(entries) > 0
}

// tmpfsBytes parses a tmpfs size= value into bytes; ok is false for a
// percentage of memory (which the engine cannot know).
func tmpfsBytes(s string) (int64, bool) {
	mult := int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			mult, s = 1<<10, s[:n-1]
		case 'm', 'M':
			mult, s = 1<<20, s[:n-1]
		case 'g', 'G':
			mult, s = 1<<30, s[:n-1]
		case '%':
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 || v > (1<<62)/mult {
		return 0, false
	}
	return v * mult, true
}

// ownVarRun reports whether the image has /var/run as a directory rather
// than a link to /run.
func ownVarRun(root fs.FS) bool {
	if root == nil {
		return false
	}
	fi, err := lstat(root, "/var/run")
	return err == nil && fi.IsDir()
}

func hasEnv(env []string, name string) bool {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == name {
			return true
		}
	}
	return false
}
