package spec

import (
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ruleMounts allows the mounts runc, containerd and its CRI plugin make,
// and host paths that are the container's own or the level's; nothing
// else.
//
// Restricted fields: mounts[].type, .destination, .source, .options,
// .uidMappings, .gidMappings; linux.rootfsPropagation.
//
// Allowed values:
//   - types: proc at /proc, sysfs at /sys, cgroup or cgroup2 at
//     /sys/fs/cgroup, mqueue at /dev/mqueue, devpts at /dev/pts (each at
//     most once), tmpfs, and bind mounts (type bind, or any type with the
//     bind or rbind option). No other filesystem type: ext4, xfs, overlay,
//     nfs, fuse, 9p... read a host device, share or directory.
//   - destinations: absolute; not /; nothing over /proc and /sys besides
//     the mounts above (a bind over /proc/cpuinfo and the other files lxcfs
//     emulates, as runc allows, is judged by its source).
//   - options: the mount flags runc knows, and per type the data options
//     containerd, its CRI plugin and ctr emit (tmpfs size, mode, uid, gid,
//     nr_inodes, nr_blocks, huge, inode64, noswap, tmpcopyup; devpts
//     newinstance, ptmxmode, mode, gid, uid, max; proc hidepid, subset, gid;
//     cgroup nsdelegate, memory_recursiveprot); nothing else reaches the
//     kernel.
//   - bind sources (after resolving symbolic links where the caller can):
//     absolute, and the container's own (see hostPaths: its pod's CRI
//     files, its image VOLUMEs, its pod's kubelet directory) or in the
//     level's mounts.allowHostPaths; a sensitive path (the runtime's
//     sockets, containerd's root and state, the kubelet's root,
//     profiles.SensitiveHostPaths) or a directory that holds one only when
//     the level names it (or, for a source inside it, a path below it that
//     holds the source). The source runc mounts is the resolved path.
//   - idmapped bind mounts: only in a container with its own user
//     namespace, with exactly that namespace's mappings, none of them
//     mapping host uid or gid 0.
//
// Otherwise: refused. Fixed instead: nosuid and nodev are added to bind
// mounts; suid and dev (nodev on /dev and devpts aside) become nosuid and
// nodev elsewhere; shared propagation becomes slave, so mounts made in the
// container never reach the host; sysfs and cgroup mounts become
// read-only; a shared rootfsPropagation becomes rslave.
func ruleMounts(h *hardening) {
	var hp *hostPaths // computed at the first bind mount
	seen := map[string]string{}
	for i := range h.spec.Mounts {
		m := &h.spec.Mounts[i]
		field := "mounts[" + m.Destination + "]"
		bind := isBind(m.Type, m.Options)
		kind := m.Type
		if bind {
			kind = "bind"
		}
		if !bind && mountData[kind] == nil {
			h.refuseType(m, field)
			continue
		}
		if !path.IsAbs(m.Destination) {
			h.refuse(field+".destination", m.Destination, "relative mount destination",
				"give the mount an absolute destination in the container")
			continue
		}
		dest := cleanPath(m.Destination)
		if why := h.badDestination(kind, dest, m, seen); why != "" {
			h.refuse(field+".destination", dest, why,
				"remove the mount; every container has its proc, sysfs, cgroup, devpts and mqueue mounts already, and nothing else may cover /, /proc or /sys")
			continue
		}
		if bad := badOptions(kind, m.Options); bad != "" {
			h.refuse(field+".options", bad, "mount option "+bad+" is not one runc, containerd or CRI use for a "+kind+" mount",
				"remove the option; a "+kind+" mount takes the mount flags"+dataHelp(kind))
			continue
		}
		if m.UIDMappings != nil || m.GIDMappings != nil || slices.Contains(m.Options, "idmap") || slices.Contains(m.Options, "ridmap") {
			if !h.idmapOK(m, field, bind) {
				continue
			}
		}
		if bind {
			if hp == nil {
				hp = h.hostPaths()
			}
			if !h.bindSourceOK(m, field, dest, hp) {
				continue
			}
		}
		if opts := safeOptions(kind, dest, m.Options); !slices.Equal(opts, m.Options) {
			h.setOptions(m, field, opts, fixReason(kind))
		}
	}
	if p := h.spec.Linux.RootfsPropagation; p == "shared" || p == "rshared" {
		h.spec.Linux.RootfsPropagation = "rslave"
		h.change("linux.rootfsPropagation", p, "rslave", "mounts made in the container must not propagate to the host")
	}
}

func (h *hardening) refuseType(m *specs.Mount, field string) {
	why := "mount type " + m.Type + " (source " + m.Source + ")"
	if m.Type == "" {
		why = "a mount without a type"
	}
	if hostGlobalFS[m.Type] {
		why += " exposes the host's kernel state"
	} else {
		why += ": only proc, sysfs, cgroup, cgroup2, tmpfs, devpts, mqueue and bind mounts are allowed (a filesystem type reads a host device, share or directory)"
	}
	h.refuse(field+".type", m.Type, why,
		"remove the mount; no level allows another filesystem type (bind-mount a host directory the level lists in mounts.allowHostPaths instead)")
}

// hostGlobalFS are filesystems that are not namespaced: mounting one shows
// (and often lets change) the host's kernel state. Refused like every type
// outside mountData; named for a clearer message.
var hostGlobalFS = map[string]bool{
	"devtmpfs": true, "debugfs": true, "tracefs": true, "securityfs": true,
	"bpf": true, "efivarfs": true, "configfs": true, "pstore": true,
}

// singleMounts are the kernel filesystems a container has at most once, at
// one place.
var singleMounts = map[string]string{
	"proc": "/proc", "sysfs": "/sys", "cgroup": "/sys/fs/cgroup", "cgroup2": "/sys/fs/cgroup",
	"mqueue": "/dev/mqueue", "devpts": "/dev/pts",
}

// lxcfsProcFiles are the /proc files runc lets a bind mount cover (lxcfs
// emulates them per container). The ones that can be written
// (ns_last_pid, fips_enabled) are left out.
var lxcfsProcFiles = []string{"/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat",
	"/proc/swaps", "/proc/uptime", "/proc/loadavg", "/proc/slabinfo"}

// badDestination says why a mount of kind may not go to dest, or "".
func (h *hardening) badDestination(kind, dest string, m *specs.Mount, seen map[string]string) string {
	if want, ok := singleMounts[kind]; ok {
		if dest != want {
			return "a " + kind + " mount belongs at " + want + " only"
		}
		if prev, dup := seen[want]; dup {
			return "a second " + kind + " mount at " + want + " (after " + prev + ")"
		}
		seen[want] = kind
		return ""
	}
	switch {
	case dest == "/":
		return "a mount over the root filesystem"
	case dest == "/proc" || strings.HasPrefix(dest, "/proc/"):
		if kind == "bind" && slices.Contains(lxcfsProcFiles, dest) {
			return ""
		}
		return "a " + kind + " mount over " + dest + " would replace what the kernel shows there (and unmask or unprotect it)"
	case dest == "/sys" && kind == "bind" && h.hostSysBind(m):
		if prev, dup := seen["/sys"]; dup {
			return "a second mount at /sys (after " + prev + ")"
		}
		seen["/sys"] = "bind of /sys"
		return ""
	case dest == "/sys" || strings.HasPrefix(dest, "/sys/"):
		return "a " + kind + " mount over " + dest + " would replace what the kernel shows there (and unmask or unprotect it)"
	}
	return ""
}

// hostSysBind reports whether m is the read-only bind of the host's /sys
// that containerd's CRI gives a container with its own user namespace in
// the host's network namespace, and rule user one in a pod's (userns.go):
// mounting sysfs fails with EPERM where the user namespace does not own
// the network namespace.
func (h *hardening) hostSysBind(m *specs.Mount) bool {
	return m.Source == "/sys" && slices.Contains(m.Options, "rro") && !slices.Contains(m.Options, "rrw") && !slices.Contains(m.Options, "rw") &&
		h.ownNamespace(specs.UserNamespace) && !h.networkOfItsOwn()
}

// mountFlags are the options runc turns into mount flags, propagation and
// mount attributes: they never reach the filesystem. suid, dev and shared
// propagation are allowed here and fixed by safeOptions.
var mountFlags = map[string]bool{
	"async": true, "atime": true, "defaults": true, "dev": true, "diratime": true, "dirsync": true,
	"exec": true, "iversion": true, "lazytime": true, "loud": true, "noatime": true, "nodev": true,
	"nodiratime": true, "noexec": true, "noiversion": true, "nolazytime": true, "nomand": true,
	"norelatime": true, "nostrictatime": true, "nosuid": true, "nosymfollow": true, "relatime": true,
	"ro": true, "rw": true, "silent": true, "strictatime": true, "suid": true, "sync": true, "symfollow": true,
	"private": true, "rprivate": true, "slave": true, "rslave": true, "shared": true, "rshared": true,
	"unbindable": true, "runbindable": true,
	"rro": true, "rrw": true, "rnosuid": true, "rsuid": true, "rnodev": true, "rdev": true,
	"rnoexec": true, "rexec": true, "rnodiratime": true, "rdiratime": true, "rrelatime": true,
	"rnorelatime": true, "rnoatime": true, "ratime": true, "rstrictatime": true, "rnostrictatime": true,
	"rnosymfollow": true, "rsymfollow": true,
}

// mountData lists, per allowed type, the filesystem options (passed to
// the kernel) and what their values may be; "" is a flag without a value.
// A bind mount takes bind, rbind, idmap and ridmap, which runc handles.
var mountData = map[string]map[string]func(string) bool{
	"tmpfs": {"size": isSize, "mode": isOctal, "uid": isDecimal, "gid": isDecimal, "nr_inodes": isSize, "nr_blocks": isSize,
		"huge": oneOf("never", "always", "within_size", "advise", "deny", "force"), "inode64": isFlag, "inode32": isFlag,
		"noswap": isFlag, "tmpcopyup": isFlag},
	"devpts":  {"newinstance": isFlag, "ptmxmode": isOctal, "mode": isOctal, "gid": isDecimal, "uid": isDecimal, "max": isDecimal},
	"proc":    {"hidepid": oneOf("0", "1", "2", "4", "off", "noaccess", "invisible", "ptraceable"), "subset": oneOf("pid"), "gid": isDecimal},
	"sysfs":   {},
	"mqueue":  {},
	"cgroup":  {"nsdelegate": isFlag, "memory_recursiveprot": isFlag},
	"cgroup2": {"nsdelegate": isFlag, "memory_recursiveprot": isFlag},
	"bind":    {"bind": isFlag, "rbind": isFlag, "idmap": isFlag, "ridmap": isFlag},
}

// badOptions returns the first option a mount of kind may not have, or "".
func badOptions(kind string, opts []string) string {
	data := mountData[kind]
	for _, o := range opts {
		if strings.IndexByte(o, ',') >= 0 || strings.IndexByte(o, 0) >= 0 {
			return o
		}
		if mountFlags[o] {
			continue
		}
		k, v, hasValue := strings.Cut(o, "=")
		valid, known := data[k]
		if !known || (hasValue && v == "") || !valid(v) {
			return o
		}
	}
	return ""
}

func dataHelp(kind string) string {
	var names []string
	for k := range mountData[kind] {
		names = append(names, k)
	}
	if len(names) == 0 {
		return " only"
	}
	slices.Sort(names)
	return " and " + strings.Join(names, ", ")
}

func isFlag(v string) bool { return v == "" }

func isDecimal(v string) bool { return isDigits(v, 10) }

func isDigits(v string, max int) bool {
	if v == "" || len(v) > max {
		return false
	}
	return strings.Trim(v, "0123456789") == ""
}

func isOctal(v string) bool { return v != "" && len(v) <= 5 && strings.Trim(v, "01234567") == "" }

// isSize accepts what tmpfs's size, nr_inodes and nr_blocks take: a
// number with an optional k, m, g, t, p, e or % suffix.
func isSize(v string) bool {
	if n := len(v); n > 1 && strings.ContainsRune("kKmMgGtTpPeE%", rune(v[n-1])) {
		v = v[:n-1]
	}
	return isDigits(v, 20)
}

func oneOf(values ...string) func(string) bool {
	return func(v string) bool { return slices.Contains(values, v) }
}

// safeOptions returns opts with the fixes every mount of kind at dest
// gets: nosuid and nodev (binds always; elsewhere instead of suid and dev,
// except nodev where device nodes live), slave instead of shared
// propagation, read-only for sysfs and cgroup. It returns opts itself when
// nothing changes.
func safeOptions(kind, dest string, opts []string) []string {
	devices := kind == "devpts" || (kind == "tmpfs" && dest == "/dev")
	readOnly := kind == "sysfs" || kind == "cgroup" || kind == "cgroup2"
	needs := func(o string) bool {
		switch o {
		case "suid", "rsuid", "shared", "rshared":
			return true
		case "dev", "rdev":
			return !devices
		case "rw", "rrw":
			return readOnly
		}
		return false
	}
	missing := func(o string) bool { return !slices.Contains(opts, o) }
	if !slices.ContainsFunc(opts, needs) && !(kind == "bind" && (missing("nosuid") || missing("nodev"))) &&
		!(readOnly && missing("ro")) {
		return opts
	}
	out := make([]string, 0, len(opts)+2)
	for _, o := range opts {
		switch {
		case o == "shared":
			o = "slave"
		case o == "rshared":
			o = "rslave"
		case needs(o):
			continue
		}
		out = append(out, o)
	}
	add := func(o string) {
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	if kind == "bind" || slices.Contains(opts, "suid") || slices.Contains(opts, "rsuid") {
		add("nosuid")
	}
	if kind == "bind" || (!devices && (slices.Contains(opts, "dev") || slices.Contains(opts, "rdev"))) {
		add("nodev")
	}
	if readOnly {
		add("ro")
	}
	return out
}

func fixReason(kind string) string {
	switch kind {
	case "bind":
		return "bind mounts get nosuid,nodev and never propagate mounts back to the host"
	case "sysfs", "cgroup", "cgroup2":
		return kind + " is read-only in a container"
	}
	return "no set-uid files or device nodes from a mount, and no mount propagation to the host"
}

func (h *hardening) setOptions(m *specs.Mount, field string, opts []string, reason string) {
	h.change(field+".options", strings.Join(m.Options, ","), strings.Join(opts, ","), reason)
	m.Options = opts
}

func isBind(typ string, opts []string) bool {
	return typ == "bind" || slices.Contains(opts, "bind") || slices.Contains(opts, "rbind")
}

func withoutOption(opts []string, o string) []string {
	return slices.DeleteFunc(slices.Clone(opts), func(x string) bool { return x == o })
}
