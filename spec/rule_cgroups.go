package spec

import (
	"path"
	"regexp"
	"slices"
	"strings"
)

// ruleCgroups keeps the container in a cgroup of its own, below a parent
// that is meant for containers. runc creates the cgroup the spec names, or
// joins it when it exists, and writes the spec's resources into it: a
// container in "/" escapes every limit, and one in another service's (or
// another container's) cgroup changes that one's limits and, with kill
// --all or delete, kills its processes.
//
// Restricted fields: linux.cgroupsPath.
//
// Allowed values, where <id> is the container's id (when the caller knows
// it; the shim always does):
//   - "" (runc then uses a cgroup named <id> below its own);
//   - /<namespace>/<id>: containerd's default (ctr, CRI without a kubelet),
//     where <namespace> is the container's containerd namespace, in which
//     ids are unique, and not a name other managers use for their cgroups
//     (systemd units such as system.slice, kubepods, docker, ...);
//   - the kubelet's pod cgroups: <root>/kubepods[/burstable|/besteffort]/pod<uid>/<id>
//     (cgroupfs, <root> "/" or listed in cgroups.parents) and
//     kubepods[-burstable|-besteffort]-pod<uid>.slice:cri-containerd:<id>
//     (systemd), where <uid> is the container's own pod's uid;
//   - below a parent listed in the level's cgroups.parents: <parent>/.../<id>,
//     or <slice>:<prefix>:<id> with the slice listed or a sub-slice of one.
//
// Otherwise: refused. Relative paths, which runc places below its own
// cgroup, are refused too: no client writes them.
func ruleCgroups(h *hardening) {
	p := h.spec.Linux.CgroupsPath
	if p == "" {
		return
	}
	if why := h.cgroupProblem(p); why != "" {
		h.refuse("linux.cgroupsPath", p, why,
			"let containerd or the kubelet choose the cgroup, or list its parent in cgroups.parents of a level in the node policy")
	}
}

// cgroupProblem says why p is not an allowed cgroup for the container, or
// "" when it is.
func (h *hardening) cgroupProblem(p string) string {
	id := h.in.Container.ID
	parents := h.level.Cgroups.Parents
	if slice, prefix, name, ok := splitSystemdPath(p); ok {
		if name == "" || (id != "" && name != id) {
			return "the cgroup's name is not the container's id " + orUnknown(id)
		}
		if prefix == "cri-containerd" && isPodSlice(slice, h.in.Container.PodUID) {
			return ""
		}
		if slices.ContainsFunc(parents, func(par string) bool { return sliceWithin(slice, par) }) {
			return ""
		}
		return "slice " + slice + " is not the container's own pod's, nor listed in cgroups.parents"
	}
	if strings.Contains(p, ":") {
		return "not a cgroup path, nor systemd's slice:prefix:name"
	}
	if !path.IsAbs(p) {
		return "a relative cgroup path (runc would put it below its own cgroup)"
	}
	if path.Clean(p) != p {
		return "the cgroup path is not clean"
	}
	parent, name := path.Split(p)
	parent = path.Clean(parent)
	if name == "" || (id != "" && name != id) {
		return "the cgroup's last element is not the container's id " + orUnknown(id)
	}
	if parent == "/" {
		return "a cgroup at the top of the hierarchy escapes every parent's limits"
	}
	if slices.ContainsFunc(parents, func(par string) bool { return par == parent || strings.HasPrefix(parent, par+"/") }) {
		return ""
	}
	if h.isPodCgroup(parent) {
		return ""
	}
	ns := parent[1:]
	if strings.Contains(ns, "/") {
		return "the parent " + parent + " is neither /<containerd namespace>, the container's own pod's cgroup, nor listed in cgroups.parents"
	}
	if want := h.in.Container.Namespace; want != "" && ns != want {
		return "the parent " + parent + " is not the container's containerd namespace /" + want + " (ids are unique only within one)"
	}
	if !containerdNamespace.MatchString(ns) || reservedCgroupParent(ns) {
		return "the parent " + parent + " is a cgroup another manager uses, not a containerd namespace of containers"
	}
	return ""
}

func orUnknown(id string) string {
	if id == "" {
		return ""
	}
	return "(" + id + ")"
}

// splitSystemdPath splits runc's systemd form slice:prefix:name.
func splitSystemdPath(p string) (slice, prefix, name string, ok bool) {
	parts := strings.Split(p, ":")
	if len(parts) != 3 || !strings.HasSuffix(parts[0], ".slice") || strings.Contains(parts[0], "/") || strings.Contains(parts[2], "/") {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// sliceWithin reports whether slice is parent or a sub-slice of it
// (a-b.slice is below a.slice); parent must be a slice name.
func sliceWithin(slice, parent string) bool {
	base, ok := strings.CutSuffix(parent, ".slice")
	if !ok || strings.HasPrefix(parent, "/") {
		return false
	}
	return slice == parent || strings.HasPrefix(slice, base+"-")
}

// podUIDPattern is what a pod uid may look like when the caller does not
// know the container's pod.
var podUIDPattern = `[0-9a-fA-F][0-9a-fA-F_-]*`

var (
	podSlice = regexp.MustCompile(`^kubepods(?:-burstable|-besteffort)?-pod(` + podUIDPattern + `)\.slice$`)
	podDir   = regexp.MustCompile(`^pod(` + podUIDPattern + `)$`)
)

// isPodSlice reports whether slice is the kubelet's slice of pod uid (of
// some pod when uid is "").
func isPodSlice(slice, uid string) bool {
	m := podSlice.FindStringSubmatch(slice)
	return m != nil && (uid == "" || m[1] == strings.ReplaceAll(uid, "-", "_"))
}

// isPodCgroup reports whether parent is the kubelet's cgroupfs cgroup of
// the container's pod: <root>/kubepods[/burstable|/besteffort]/pod<uid>,
// with <root> "/" or listed in cgroups.parents.
func (h *hardening) isPodCgroup(parent string) bool {
	elems := strings.Split(parent[1:], "/")
	k := slices.Index(elems, "kubepods")
	if k < 0 {
		return false
	}
	rest := elems[k+1:]
	if len(rest) == 2 && (rest[0] == "burstable" || rest[0] == "besteffort") {
		rest = rest[1:]
	}
	if len(rest) != 1 {
		return false
	}
	m := podDir.FindStringSubmatch(rest[0])
	if m == nil || (h.in.Container.PodUID != "" && m[1] != h.in.Container.PodUID) {
		return false
	}
	root := "/" + strings.Join(elems[:k], "/")
	return root == "/" || slices.ContainsFunc(h.level.Cgroups.Parents, func(par string) bool {
		return par == root || strings.HasPrefix(root, par+"/")
	})
}

// containerdNamespace is containerd's rule for namespace names.
var containerdNamespace = regexp.MustCompile(`^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$`)

// systemdUnitSuffixes are the unit types whose cgroups systemd manages.
var systemdUnitSuffixes = []string{".slice", ".scope", ".service", ".socket", ".mount", ".automount", ".swap", ".target", ".path", ".timer", ".device"}

// otherManagers are top-level cgroups of other container managers and of
// the kubelet: a containerd namespace of that name must not put its
// containers among theirs.
var otherManagers = []string{"kubepods", "docker", "lxc", "lxc.payload", "lxc.monitor", "machine", "libpod_parent", "crio"}

func reservedCgroupParent(name string) bool {
	for _, s := range systemdUnitSuffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return slices.Contains(otherManagers, name)
}
