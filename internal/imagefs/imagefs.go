// Package imagefs reads a container's root filesystem as its image makes
// it, before anything is mounted: straight from the snapshotter's
// directories, merged as overlayfs merges them (whiteouts, opaque
// directories), with every symbolic link resolved inside the root. The
// runtime mounts the root filesystem only when runc creates the container,
// after the hardening has been decided; this is how the hardening sees
// which state directories the image has, and how the runtime copies an
// image's content into a volume on disk.
//
// An FS is read-only and never follows a link out of the root: a link to
// /etc/passwd in the image names the image's /etc/passwd, not the host's.
package imagefs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// FS is a root filesystem made of layers, top first.
type FS struct {
	layers []string
}

// Mount is a mount of a root filesystem, as containerd describes it.
type Mount struct {
	Type    string
	Source  string
	Options []string
}

// FromMounts returns the FS of a root filesystem that the mounts make, for
// the mounts containerd's overlayfs and native snapshotters give a
// container: one overlay mount (upperdir over the lowerdirs) or one bind
// mount of a directory. Anything else is an error: the caller then knows
// nothing of the image.
func FromMounts(mounts []Mount) (*FS, error) {
	if len(mounts) != 1 {
		return nil, fmt.Errorf("%d rootfs mounts: only one overlay or bind mount can be read", len(mounts))
	}
	m := mounts[0]
	switch {
	case m.Type == "overlay":
		var upper string
		var lowers []string
		for _, o := range m.Options {
			k, v, _ := strings.Cut(o, "=")
			switch k {
			case "upperdir":
				upper = v
			case "lowerdir":
				lowers = splitLowerdir(v)
			}
		}
		if len(lowers) == 0 {
			return nil, errors.New("overlay rootfs mount without lowerdir")
		}
		layers := lowers
		if upper != "" {
			layers = append([]string{upper}, lowers...)
		}
		return New(layers...)
	case m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind"):
		return New(m.Source)
	}
	return nil, fmt.Errorf("rootfs mount of type %q cannot be read", m.Type)
}

// splitLowerdir splits overlayfs's lowerdir option at the colons that are
// not escaped.
func splitLowerdir(v string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '\\' && i+1 < len(v):
			i++
			cur.WriteByte(v[i])
		case v[i] == ':':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(v[i])
		}
	}
	return append(out, cur.String())
}

// New returns the FS of the given layer directories, top first.
func New(layers ...string) (*FS, error) {
	for _, l := range layers {
		if !path.IsAbs(l) {
			return nil, fmt.Errorf("layer %q is not an absolute path", l)
		}
	}
	return &FS{layers: slices.Clone(layers)}, nil
}

// maxLinks bounds the symbolic links followed in one look-up, as the
// kernel's 40.
const maxLinks = 40

// node is a resolved name: the host paths that hold it, top first (more
// than one only for a directory merged from several layers).
type node struct {
	name  string // the clean path in the FS, "" for the root
	hosts []string
	info  fs.FileInfo // of hosts[0]
}

func (n *node) isDir() bool { return n.info.IsDir() }

// resolve looks name up; follow says whether a final symbolic link is
// followed.
func (f *FS) resolve(op, name string, follow bool) (*node, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	links := 0
	var pending []string
	if name != "." {
		pending = strings.Split(name, "/")
	}
	root := &node{hosts: f.layers}
	if info, err := os.Lstat(f.layers[0]); err == nil && info.IsDir() {
		root.info = info
	} else {
		if err == nil {
			err = syscall.ENOTDIR
		}
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	cur := root
	var stack []*node // the directories above cur, for ".."
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) > 0 {
				cur, stack = stack[len(stack)-1], stack[:len(stack)-1]
			}
			continue
		}
		if !cur.isDir() {
			return nil, &fs.PathError{Op: op, Path: name, Err: syscall.ENOTDIR}
		}
		next, err := lookup(cur, c)
		if err != nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: err}
		}
		if next.info.Mode()&fs.ModeSymlink != 0 && (len(pending) > 0 || follow) {
			if links++; links > maxLinks {
				return nil, &fs.PathError{Op: op, Path: name, Err: syscall.ELOOP}
			}
			target, err := os.Readlink(next.hosts[0])
			if err != nil {
				return nil, &fs.PathError{Op: op, Path: name, Err: err}
			}
			if strings.HasPrefix(target, "/") {
				cur, stack = root, nil
			}
			pending = append(strings.Split(target, "/"), pending...)
			continue
		}
		stack = append(stack, cur)
		cur = next
	}
	return cur, nil
}

// lookup finds name in the merged directory dir, as overlayfs does: the
// topmost layer that has it; for a directory, merged with the directories
// of that name in the layers below, down to a whiteout, an opaque
// directory or a layer where it is not a directory.
func lookup(dir *node, name string) (*node, error) {
	var n *node
	for _, h := range dir.hosts {
		p := h + "/" + name
		info, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if isWhiteout(info) {
			break
		}
		if n == nil {
			n = &node{name: path.Join(dir.name, name), hosts: []string{p}, info: info}
			if !info.IsDir() || isOpaque(p) {
				break
			}
			continue
		}
		if !info.IsDir() {
			break
		}
		n.hosts = append(n.hosts, p)
		if isOpaque(p) {
			break
		}
	}
	if n == nil {
		return nil, fs.ErrNotExist
	}
	return n, nil
}

// isWhiteout reports whether a layer's entry hides the name in the layers
// below: overlayfs's character device 0:0.
func isWhiteout(info fs.FileInfo) bool {
	if info.Mode()&fs.ModeCharDevice == 0 {
		return false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}

// isOpaque reports whether a layer's directory hides the directories of its
// name in the layers below (overlayfs's opaque xattr, trusted or, for
// overlays mounted with userxattr, user).
func isOpaque(p string) bool {
	buf := make([]byte, 4)
	for _, attr := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		if n, err := unix.Lgetxattr(p, attr, buf); err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}

// Open opens a file or directory (following links) for reading.
func (f *FS) Open(name string) (fs.File, error) {
	n, err := f.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		return &dir{fsys: f, n: n}, nil
	}
	if !n.info.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("not a regular file or directory: %w", fs.ErrInvalid)}
	}
	file, err := os.OpenFile(n.hosts[0], os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return file, nil
}

// Stat returns what name is, following links.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	n, err := f.resolve("stat", name, true)
	if err != nil {
		return nil, err
	}
	return n.info, nil
}

// Lstat returns what name is, without following a final link.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	n, err := f.resolve("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return n.info, nil
}

// ReadLink returns the target of the link name, as the image has it.
func (f *FS) ReadLink(name string) (string, error) {
	n, err := f.resolve("readlink", name, false)
	if err != nil {
		return "", err
	}
	if n.info.Mode()&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return os.Readlink(n.hosts[0])
}

// ReadDir lists a directory (following links), merged, sorted by name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := f.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !n.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: syscall.ENOTDIR}
	}
	return readMerged(n)
}

func readMerged(n *node) ([]fs.DirEntry, error) {
	seen := map[string]bool{}
	var out []fs.DirEntry
	for _, h := range n.hosts {
		entries, err := os.ReadDir(h)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if seen[e.Name()] {
				continue
			}
			seen[e.Name()] = true
			info, err := e.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return nil, err
			}
			if isWhiteout(info) {
				continue
			}
			out = append(out, fs.FileInfoToDirEntry(info))
		}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// dir is an open directory.
type dir struct {
	fsys    *FS
	n       *node
	entries []fs.DirEntry
	read    bool
}

func (d *dir) Stat() (fs.FileInfo, error) { return d.n.info, nil }
func (d *dir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.n.name, Err: syscall.EISDIR}
}
func (d *dir) Close() error { return nil }

func (d *dir) ReadDir(count int) ([]fs.DirEntry, error) {
	if !d.read {
		entries, err := readMerged(d.n)
		if err != nil {
			return nil, err
		}
		d.entries, d.read = entries, true
	}
	if count <= 0 {
		out := d.entries
		d.entries = nil
		return out, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	count = min(count, len(d.entries))
	out := d.entries[:count]
	d.entries = d.entries[count:]
	return out, nil
}

var (
	_ fs.ReadDirFS   = (*FS)(nil)
	_ fs.StatFS      = (*FS)(nil)
	_ fs.ReadLinkFS  = (*FS)(nil)
	_ fs.ReadDirFile = (*dir)(nil)
)
