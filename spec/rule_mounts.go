package spec

import (
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
)

// ruleMounts keeps the host's sensitive files out of the container.
//
// Restricted fields: mounts[].source, mounts[].type, mounts[].options,
// linux.rootfsPropagation.
//
// Allowed values: bind mounts of host paths outside profiles.SensitiveHostPaths
// (/, /proc, /sys read-write, /dev, /etc, the Docker, containerd and CRI-O
// sockets and state, the kubelet's state outside the pods' volume
// directories, ...) or inside the level's mounts.allowHostPaths; bind mounts
// with nosuid and nodev and without shared propagation; sysfs and cgroup
// mounts read-only; no mounts of host-global filesystems (devtmpfs, debugfs,
// tracefs, securityfs, bpf, efivarfs, configfs, pstore).
//
// Otherwise: a sensitive bind mount or a host-global filesystem is refused;
// nosuid and nodev are added to bind mounts; shared propagation becomes
// slave, so mounts made in the container never reach the host; sysfs and
// cgroup mounts become read-only; a shared rootfsPropagation becomes rslave.
// The host path is judged after resolving symbolic links when the caller
// can (the shim does), so a link to a sensitive path counts as that path.
func ruleMounts(h *hardening) {
	for i := range h.spec.Mounts {
		m := &h.spec.Mounts[i]
		field := "mounts[" + m.Destination + "]"
		if hostGlobalFS[m.Type] {
			h.refuse(field+".type", m.Type, "a "+m.Type+" mount exposes the host's kernel state",
				"remove the mount; no level allows it")
			continue
		}
		switch m.Type {
		case "sysfs", "cgroup", "cgroup2":
			if !slices.Contains(m.Options, "ro") {
				h.setOptions(m, field, append(withoutOption(m.Options, "rw"), "ro"), m.Type+" is read-only in a container")
			}
			continue
		}
		if !isBind(m.Type, m.Options) {
			continue
		}
		src := path.Clean(m.Source)
		if h.in.Host.ResolvePath != nil {
			src = path.Clean(h.in.Host.ResolvePath(src))
		}
		if why := sensitive(src, slices.Contains(m.Options, "ro"), h.level.Mounts.AllowHostPaths, h.in.Host.RuntimeSockets); why != "" {
			shown := m.Source
			if src != path.Clean(m.Source) {
				shown += " -> " + src
			}
			h.refuse(field+".source", shown, "bind mount of "+why,
				"remove the mount (hostPath volume), mount it read-only where that is enough, or list the path in mounts.allowHostPaths of a level in the node policy")
			continue
		}
		if slices.Contains(m.Options, "nosuid") && slices.Contains(m.Options, "nodev") &&
			!slices.Contains(m.Options, "shared") && !slices.Contains(m.Options, "rshared") {
			continue
		}
		h.setOptions(m, field, safeBindOptions(m.Options), "bind mounts get nosuid,nodev and never propagate mounts back to the host")
	}
	if p := h.spec.Linux.RootfsPropagation; p == "shared" || p == "rshared" {
		h.spec.Linux.RootfsPropagation = "rslave"
		h.change("linux.rootfsPropagation", p, "rslave", "mounts made in the container must not propagate to the host")
	}
}

// hostGlobalFS are filesystems that are not namespaced: mounting one shows
// (and often lets change) the host's kernel state.
var hostGlobalFS = map[string]bool{
	"devtmpfs": true, "debugfs": true, "tracefs": true, "securityfs": true,
	"bpf": true, "efivarfs": true, "configfs": true, "pstore": true,
}

func (h *hardening) setOptions(m *specs.Mount, field string, opts []string, reason string) {
	h.change(field+".options", strings.Join(m.Options, ","), strings.Join(opts, ","), reason)
	m.Options = opts
}

// safeBindOptions returns opts with suid and dev replaced by nosuid and
// nodev and shared propagation by slave, in one allocation.
func safeBindOptions(opts []string) []string {
	out := make([]string, 0, len(opts)+2)
	var nosuid, nodev bool
	for _, o := range opts {
		switch o {
		case "suid", "dev":
			continue
		case "nosuid":
			nosuid = true
		case "nodev":
			nodev = true
		case "shared":
			o = "slave"
		case "rshared":
			o = "rslave"
		}
		out = append(out, o)
	}
	if !nosuid {
		out = append(out, "nosuid")
	}
	if !nodev {
		out = append(out, "nodev")
	}
	return out
}

func isBind(typ string, opts []string) bool {
	return typ == "bind" || slices.Contains(opts, "bind") || slices.Contains(opts, "rbind")
}

func withoutOption(opts []string, o string) []string {
	return slices.DeleteFunc(slices.Clone(opts), func(x string) bool { return x == o })
}

// sensitive says why host path p may not be bind-mounted, or "" if it may.
func sensitive(p string, readOnly bool, allowed, sockets []string) string {
	for _, a := range allowed {
		a = path.Clean(a)
		if p == a || strings.HasPrefix(p, strings.TrimSuffix(a, "/")+"/") {
			return ""
		}
	}
	for _, s := range profiles.SensitiveHostPaths {
		if s.Matches(p) && !(s.ReadOnlyOK && readOnly) {
			return s.Why
		}
	}
	for _, s := range sockets {
		if s != "" && (p == path.Clean(s) || p == path.Dir(path.Clean(s))) {
			return "the container runtime's API socket on this node (root on the host)"
		}
	}
	return ""
}
