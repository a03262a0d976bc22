package spec

import (
	"io/fs"
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ruleRootfs makes the root filesystem read-only and gives the process
// writable scratch space where images expect it.
//
// Restricted fields: root.readonly, mounts (tmpfs added), process.env TMPDIR.
//
// Allowed values: root.readonly true.
//
// Otherwise: root.readonly is set, and a size-limited nosuid,nodev tmpfs is
// mounted, where nothing is mounted yet, on
//   - the level's rootfs.tmpfs paths (/tmp, /var/tmp, /run), mode 1777 so any
//     user can write, and on /var/run too when the image has it as a
//     directory of its own rather than a link to /run;
//   - the level's rootfs.writablePaths and, with rootfs.volumesAsTmpfs, the
//     image's declared VOLUMEs, owned by the process user (mode 0755).
//
// The tmpfs is noexec only with rootfs.noExec (the strict level): a noexec
// /tmp breaks JNA, snappy and the like. TMPDIR is set to /tmp when unset.
func ruleRootfs(h *hardening) {
	lv := h.level.Rootfs
	if !lv.ReadOnly {
		return
	}
	if !h.spec.Root.Readonly {
		h.spec.Root.Readonly = true
		h.change("root.readonly", "false", "true", "the image cannot be changed at run time; writable paths get a tmpfs")
	}
	user := h.spec.Process.User
	shared := lv.Tmpfs
	if slices.Contains(shared, "/run") && ownVarRun(h.in.Image.Rootfs) {
		shared = append(slices.Clip(shared), "/var/run")
	}
	for _, p := range shared {
		h.fixSharedTmpfs(p)
		h.addTmpfs(p, "mode=1777", "shared scratch space of a read-only root")
	}
	owned := "mode=0755,uid=" + itoa(user.UID) + ",gid=" + itoa(user.GID)
	for _, p := range lv.WritablePaths {
		h.addTmpfs(p, owned, "writable path of level "+h.level.Name)
	}
	if lv.VolumesAsTmpfs {
		for _, v := range h.in.Image.Volumes {
			v = path.Clean("/" + v)
			if v != "/" {
				h.addTmpfs(v, owned, "the image declares VOLUME "+v+" and nothing is mounted there")
			}
		}
	}
	if slices.Contains(lv.Tmpfs, "/tmp") && !hasEnv(h.spec.Process.Env, "TMPDIR") {
		h.spec.Process.Env = append(h.spec.Process.Env, "TMPDIR=/tmp")
		h.change("process.env[TMPDIR]", "", "/tmp", "temporary files go to the writable /tmp")
	}
}

// fixSharedTmpfs makes an existing tmpfs on a shared scratch path (such as
// the /run tmpfs of containerd's default spec, mode 755 and owned by root)
// writable for a non-root process, and gives it the options the level's own
// tmpfs would have.
func (h *hardening) fixSharedTmpfs(dest string) {
	for i := range h.spec.Mounts {
		m := &h.spec.Mounts[i]
		if m.Type != "tmpfs" || path.Clean(m.Destination) != dest {
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

// addTmpfs mounts a tmpfs on dest unless something is mounted on dest or on
// a directory above it. The mount goes before the first mount below dest,
// so that it does not hide that one.
func (h *hardening) addTmpfs(dest, mode, reason string) {
	for _, m := range h.spec.Mounts {
		d := path.Clean(m.Destination)
		if d == dest || (d != "/" && strings.HasPrefix(dest, d+"/")) {
			return
		}
	}
	opts := make([]string, 0, 7)
	opts = append(opts, "nosuid", "nodev")
	if h.level.Rootfs.NoExec {
		opts = append(opts, "noexec")
	}
	for mode != "" {
		var o string
		o, mode, _ = strings.Cut(mode, ",")
		opts = append(opts, o)
	}
	opts = append(opts, "size="+h.level.Rootfs.TmpfsSize)
	m := specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: opts}
	at := len(h.spec.Mounts)
	for i, e := range h.spec.Mounts {
		if strings.HasPrefix(path.Clean(e.Destination), dest+"/") {
			at = i
			break
		}
	}
	h.spec.Mounts = slices.Insert(h.spec.Mounts, at, m)
	h.change("mounts["+dest+"]", "", "tmpfs "+strings.Join(opts, ","), reason)
}

// ownVarRun reports whether the image has /var/run as a directory rather
// than a link to /run.
func ownVarRun(root fs.FS) bool {
	if root == nil {
		return false
	}
	var fi fs.FileInfo
	var err error
	if l, ok := root.(fs.ReadLinkFS); ok {
		fi, err = l.Lstat("var/run")
	} else {
		fi, err = fs.Stat(root, "var/run")
	}
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
