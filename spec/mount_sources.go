package spec

import (
	"fmt"
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
)

// criPlugin is the directory containerd's CRI plugin keeps below
// containerd's root and state (plugins/cri/runtime/plugin.go in v2.4.2).
const criPlugin = "io.containerd.grpc.v1.cri"

// criNamespace is the containerd namespace of the CRI plugin's pods and
// containers (internal/cri/constants.K8sContainerdNamespace).
const criNamespace = "k8s.io"

// criFiles reports whether the CRI plugin's files of the container's
// pod and of its id may be its own: the plugin's paths carry no
// containerd namespace, and ids are unique only within one, so a
// container of another namespace with the same id (or pod claim) must
// not get them. "" is a namespace nobody said (hardenctl without one).
func (h *hardening) criFiles() bool {
	ns := h.in.Container.Namespace
	return ns == "" || ns == criNamespace
}

// hostPaths are the facts a bind mount's source is judged by, computed
// from Inputs once per Harden, at the first bind mount.
type hostPaths struct {
	// own are the host paths that are this container's own.
	own []ownPath
	// sensitive are the paths no broader allowHostPaths entry opens up.
	sensitive []profiles.SensitivePath
	// allowed is the level's mounts.allowHostPaths, as written.
	allowed []string
}

type ownPath struct {
	path    string
	subtree bool
}

// hostPaths lists what the container may bind-mount as its own, and what
// is sensitive, from the facts in h.in. A fact that is "" (or not a clean
// absolute path, or an id that is not one path element) gives the
// container nothing:
//
//   - containerd's CRI plugin (only in its namespace, k8s.io), for the pod (SandboxID; for the sandbox's
//     own pause container, its id): <root>/io.containerd.grpc.v1.cri/
//     sandboxes/<id>/{hosts,hostname,resolv.conf},
//     <state>/io.containerd.grpc.v1.cri/sandboxes/<id>/shm and the pod's
//     image volumes <state>/io.containerd.grpc.v1.cri/image-volumes/<id>/
//     (internal/cri/server/helpers.go and podsandbox/helpers_linux.go);
//   - for the container (ID): its image VOLUMEs,
//     <root>/io.containerd.grpc.v1.cri/containers/<id>/volumes/, and the
//     directory the runtime keeps its volumes on disk in (VolumeDir);
//   - the kubelet, for the pod (PodUID): <kubelet root>/pods/<uid>/
//     (volumes, etc-hosts, termination log);
//   - the host's /dev/shm, which CRI binds for a pod in the host's IPC
//     namespace, when the level allows that namespace and the container
//     is in it.
func (h *hardening) hostPaths() *hostPaths {
	hp := &hostPaths{
		own:       make([]ownPath, 0, 16),
		sensitive: make([]profiles.SensitivePath, 0, 2*(len(profiles.SensitiveHostPaths)+len(h.in.Host.RuntimeSockets)+3)),
	}
	host, c := h.in.Host, h.in.Container
	root, state, kubelet := cleanAbs(host.ContainerdRoot), cleanAbs(host.ContainerdState), cleanAbs(host.KubeletRoot)
	// The elements are names of this file or ids that are one path
	// element each (isPathElement), and base a clean absolute path: base
	// and elements joined with slashes is path.Join of them.
	own := func(base string, subtree bool, elems ...string) {
		for _, b := range h.resolved(base) {
			if b != "" {
				hp.own = append(hp.own, ownPath{joinElements(b, elems), subtree})
			}
		}
	}
	if sid := c.SandboxID; IsPathElement(sid) && h.criFiles() {
		if root != "" {
			for _, f := range []string{"hosts", "hostname", "resolv.conf"} {
				own(root, false, criPlugin, "sandboxes", sid, f)
			}
		}
		if state != "" {
			own(state, false, criPlugin, "sandboxes", sid, "shm")
			own(state, true, criPlugin, "image-volumes", sid)
		}
	}
	if IsPathElement(c.ID) && root != "" && h.criFiles() {
		own(root, true, criPlugin, "containers", c.ID, "volumes")
	}
	if v := cleanAbs(c.VolumeDir); v != "" && v != "/" {
		own(v, true)
	}
	if IsPathElement(c.PodUID) && kubelet != "" {
		own(kubelet, true, "pods", c.PodUID)
	}
	if h.level.AllowsHostNamespace(string(specs.IPCNamespace)) && !h.ownNamespace(specs.IPCNamespace) {
		own("/dev/shm", false)
	}

	sensitive := func(p string, why string) {
		for _, r := range h.resolved(p) {
			if r == "" {
				continue
			}
			hp.sensitive = append(hp.sensitive, profiles.SensitivePath{Path: r, Subtree: true, Why: why})
		}
	}
	for _, s := range host.RuntimeSockets {
		if s = cleanAbs(s); s != "" {
			sensitive(s, "the container runtime's API socket on this node (root on the host)")
		}
	}
	if root != "" {
		sensitive(root, "containerd's root directory (images, the content store, other containers' volumes)")
	}
	if state != "" {
		sensitive(state, "containerd's state directory (other containers' live root filesystems and bundles, shim sockets)")
	}
	if kubelet != "" {
		sensitive(kubelet, "the kubelet's state, including other pods' secrets")
	}
	for _, s := range profiles.SensitiveHostPaths {
		for _, r := range h.resolved(s.Path) {
			if r == "" {
				continue
			}
			s.Path = r
			hp.sensitive = append(hp.sensitive, s)
		}
	}
	// The level's entries are taken as written, never resolved: a link
	// put where an entry points (by a container that can write its
	// parent) must not widen what the entry allows.
	for _, a := range h.level.Mounts.AllowHostPaths {
		if a = cleanAbs(a); a != "" {
			hp.allowed = append(hp.allowed, a)
		}
	}
	return hp
}

// resolved returns p and, when it differs, p with symbolic links resolved
// ("" when it does not).
func (h *hardening) resolved(p string) [2]string {
	if h.in.Host.ResolvePath == nil {
		return [2]string{p}
	}
	if r := path.Clean(h.in.Host.ResolvePath(p)); r != p && path.IsAbs(r) {
		return [2]string{p, r}
	}
	return [2]string{p}
}

// joinElements is path.Join(base, elems...) for a clean absolute base and
// elements that are one path element each, in one allocation.
func joinElements(base string, elems []string) string {
	if len(elems) == 0 {
		return base
	}
	if base == "/" {
		base = ""
	}
	n := len(base)
	for _, e := range elems {
		n += 1 + len(e)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(base)
	for _, e := range elems {
		b.WriteByte('/')
		b.WriteString(e)
	}
	return b.String()
}

func cleanAbs(p string) string {
	if p == "" || !path.IsAbs(p) || path.Clean(p) != p {
		return ""
	}
	return p
}

// IsPathElement reports whether an id can name one directory: not empty,
// not . or .., no slash or NUL.
func IsPathElement(id string) bool {
	return id != "" && id != "." && id != ".." && !strings.ContainsAny(id, "/\x00")
}

func (hp *hostPaths) isOwn(p string) bool {
	for _, o := range hp.own {
		if p == o.path || (o.subtree && profiles.IsBelow(p, o.path)) {
			return true
		}
	}
	return false
}

// entryBetween reports whether an allowHostPaths entry holds p and is top
// itself or below it.
func (hp *hostPaths) entryBetween(p, top string) bool {
	for _, a := range hp.allowed {
		if (p == a || profiles.IsBelow(p, a)) && (a == top || profiles.IsBelow(a, top)) {
			return true
		}
	}
	return false
}

// bindSourceOK judges a bind mount's host path and refuses it unless it is
// the container's own or the level allows it.
func (h *hardening) bindSourceOK(m *specs.Mount, field, dest string, hp *hostPaths) bool {
	if !path.IsAbs(m.Source) {
		where := "the bundle directory"
		if h.in.Container.Bundle != "" {
			where += " " + h.in.Container.Bundle
		}
		h.refuse(field+".source", m.Source, "relative bind source: runc would resolve it against "+where,
			"give the bind mount an absolute host path")
		return false
	}
	src := cleanPath(m.Source)
	real := src
	if h.in.Host.ResolvePath != nil {
		real = path.Clean(h.in.Host.ResolvePath(src))
	}
	shown := m.Source
	if real != m.Source {
		shown += " -> " + real
	}
	if !path.IsAbs(real) {
		h.refuse(field+".source", shown, "the host path does not resolve to an absolute path", "give the bind mount an existing absolute host path")
		return false
	}
	if dest == "/sys" && real == "/sys" && h.hostSysBind(m) {
		return true
	}
	if hp.isOwn(real) {
		h.mountResolved(m, field, real)
		return true
	}
	// The sensitive paths the source is in first (the better message),
	// then those it holds.
	for _, s := range hp.sensitive {
		if s.Covers(real) && !hp.entryBetween(real, s.Path) {
			h.refuse(field+".source", shown, "bind mount of "+s.Why+" ("+s.Path+")",
				"remove the mount (hostPath volume); only a level that lists "+s.Path+", or a path below it that holds the source, in mounts.allowHostPaths may mount it")
			return false
		}
	}
	for _, s := range hp.sensitive {
		if profiles.IsBelow(s.Path, real) && !slices.Contains(hp.allowed, s.Path) {
			h.refuse(field+".source", shown, "bind mount of a directory that holds "+s.Path+": "+s.Why,
				"remove the mount (hostPath volume) or mount a directory that does not hold "+s.Path+"; only a level that lists "+s.Path+" itself in mounts.allowHostPaths may show it")
			return false
		}
	}
	if !slices.ContainsFunc(hp.allowed, func(a string) bool { return real == a || profiles.IsBelow(real, a) }) {
		h.refuse(field+".source", shown, "host path that is neither this container's own (its CRI files, its pod's kubelet directory) nor in mounts.allowHostPaths of level "+h.level.Name+h.missingFacts(real),
			"remove the mount (hostPath volume), or list "+real+" in mounts.allowHostPaths of a level in the node policy")
		return false
	}
	h.mountResolved(m, field, real)
	return true
}

// mountResolved makes runc mount the path that was judged: a symbolic
// link on the way that changes after the judgement (in a host directory a
// container can write) cannot point the mount elsewhere.
func (h *hardening) mountResolved(m *specs.Mount, field, real string) {
	if h.in.Host.ResolvePath != nil && real != m.Source {
		h.change(field+".source", m.Source, real, "the bind source with symbolic links resolved: runc mounts the host path that was judged")
		m.Source = real
	}
}

// idmapOK judges an idmapped mount: a bind mount in a container with its
// own user namespace, with exactly that namespace's mappings (what
// containerd's CRI sets for a hostUsers: false pod), none of them reaching
// host uid or gid 0.
func (h *hardening) idmapOK(m *specs.Mount, field string, bind bool) bool {
	value := "uid " + idMappings(m.UIDMappings) + " gid " + idMappings(m.GIDMappings)
	fail := func(why string) bool {
		h.refuse(field+".uidMappings", value, why,
			"remove the mount's uidMappings, gidMappings and idmap option, or give the pod its own user namespace (hostUsers: false), whose mappings its mounts may use")
		return false
	}
	uids, gids := h.spec.Linux.UIDMappings, h.spec.Linux.GIDMappings
	switch {
	case !bind:
		return fail("idmapped mounts are bind mounts only")
	case !h.ownNamespace(specs.UserNamespace):
		return fail("an idmapped mount in a container without its own user namespace maps host ids onto the container's users (its files would be created as whoever the mapping names, root included)")
	case len(uids) == 0 || len(gids) == 0:
		return fail("the container's user namespace mappings are not in the spec (linux.uidMappings, linux.gidMappings), so the mount's cannot be checked against them")
	case (m.UIDMappings != nil || m.GIDMappings != nil) && (!slices.Equal(m.UIDMappings, uids) || !slices.Equal(m.GIDMappings, gids)):
		return fail("the mount's mappings differ from the container's user namespace's (uid " + idMappings(uids) + " gid " + idMappings(gids) + ")")
	case reachesHostRoot(uids) || reachesHostRoot(gids):
		return fail("the mappings make host uid or gid 0 reachable")
	}
	return true
}

func reachesHostRoot(ms []specs.LinuxIDMapping) bool {
	for _, m := range ms {
		if m.Size > 0 && (m.HostID == 0 || uint64(m.HostID)+uint64(m.Size) > 1<<32) {
			return true
		}
	}
	return false
}

func idMappings(ms []specs.LinuxIDMapping) string {
	if len(ms) == 0 {
		return "[]"
	}
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%d:%d:%d", m.ContainerID, m.HostID, m.Size)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// missingFacts explains, for a path that looks like CRI's or the kubelet's,
// which facts the runtime did not give: without them nothing there is the
// container's own.
func (h *hardening) missingFacts(p string) string {
	host, c := h.in.Host, h.in.Container
	var missing []string
	switch {
	case strings.Contains(p, "/"+criPlugin+"/"):
		for _, f := range [][2]string{{"containerd's root", host.ContainerdRoot}, {"containerd's state", host.ContainerdState},
			{"the container's id", c.ID}, {"its sandbox id", c.SandboxID}} {
			if f[1] == "" {
				missing = append(missing, f[0])
			}
		}
	case strings.Contains(p, "/pods/"):
		for _, f := range [][2]string{{"the kubelet's root", host.KubeletRoot}, {"the pod's uid", c.PodUID}} {
			if f[1] == "" {
				missing = append(missing, f[0])
			}
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return " (the runtime did not say " + strings.Join(missing, ", ") + ")"
}

// cleanPath is path.Clean(p), without the walk through p when p is already
// a clean absolute path (as nearly every path of a spec is).
func cleanPath(p string) string {
	if isCleanAbs(p) {
		return p
	}
	return path.Clean(p)
}

// isCleanAbs reports whether p is an absolute path that path.Clean leaves
// as it is: "/", or "/"-separated elements none of which is empty, "." or
// "..". (A false "no" only costs path.Clean's walk.)
func isCleanAbs(p string) bool {
	if p == "/" {
		return true
	}
	if len(p) < 2 || p[0] != '/' || p[len(p)-1] == '/' {
		return false
	}
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		if e := p[start:i]; e == "" || e == "." || e == ".." {
			return false
		}
		start = i + 1
	}
	return true
}
