package spec

import (
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ruleNamespaces keeps the container out of the host's namespaces.
//
// Restricted fields: linux.namespaces.
//
// Allowed values: own (path-less) or another container's pid, ipc, uts,
// network and mount namespaces; a mount namespace always. The host's
// namespace of a type (a missing entry, or a path to the host's own) only
// when the level lists the type in namespaces.allowHost; network implies
// uts, as Kubernetes couples them for hostNetwork pods. Joining the host's
// user or cgroup namespace by path, likewise.
//
// Otherwise: refused. Sharing the host's mount namespace is never allowed.
func ruleNamespaces(h *hardening) {
	for _, t := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.NetworkNamespace, specs.MountNamespace} {
		ns, ok := findNamespace(h.spec, t)
		switch {
		case !ok:
			h.hostNamespace(t, "missing (the host's)")
		case ns.Path != "" && h.isHostNamespace(t, ns.Path):
			h.hostNamespace(t, ns.Path+" (the host's)")
		}
	}
	for _, t := range []specs.LinuxNamespaceType{specs.UserNamespace, specs.CgroupNamespace} {
		if ns, ok := findNamespace(h.spec, t); ok && ns.Path != "" && h.isHostNamespace(t, ns.Path) {
			h.hostNamespace(t, ns.Path+" (the host's)")
		}
	}
}

func (h *hardening) hostNamespace(t specs.LinuxNamespaceType, value string) {
	field := "linux.namespaces[" + string(t) + "]"
	if t == specs.MountNamespace {
		h.refuse(field, value, "a container must have its own mount namespace", "add a mount namespace; no level allows the host's")
		return
	}
	// Kubernetes gives a hostNetwork pod the host's UTS namespace too (its
	// hostname is the node's): allowing the host network allows that.
	if h.level.AllowsHostNamespace(string(t)) || (t == specs.UTSNamespace && h.level.AllowsHostNamespace(string(specs.NetworkNamespace))) {
		h.note(field, "shares the host's "+string(t)+" namespace, as level "+h.level.Name+" allows")
		return
	}
	h.refuse(field, value, "level "+h.level.Name+" does not allow the host's "+string(t)+" namespace",
		"drop host"+hostField(t)+" from the pod, or list "+string(t)+" in namespaces.allowHost of a level in the node policy")
}

func hostField(t specs.LinuxNamespaceType) string {
	switch t {
	case specs.NetworkNamespace:
		return "Network"
	case specs.PIDNamespace:
		return "PID"
	case specs.IPCNamespace:
		return "IPC"
	}
	return strings.ToUpper(string(t[:1])) + string(t[1:])
}

func findNamespace(s *specs.Spec, t specs.LinuxNamespaceType) (specs.LinuxNamespace, bool) {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return ns, true
		}
	}
	return specs.LinuxNamespace{}, false
}

// procNames are the names of namespaces under /proc/<pid>/ns/.
var procNames = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts",
	specs.NetworkNamespace: "net", specs.MountNamespace: "mnt", specs.UserNamespace: "user",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

func (h *hardening) isHostNamespace(t specs.LinuxNamespaceType, p string) bool {
	if h.in.Host.IsHostNamespace != nil {
		return h.in.Host.IsHostNamespace(t, p)
	}
	n := procNames[t]
	for _, host := range []string{"/proc/1/ns/", "/proc/self/ns/", "/proc/thread-self/ns/"} {
		if p == host+n {
			return true
		}
	}
	return false
}

// ownNamespace reports whether the spec has a network (or other) namespace
// that is not the host's.
func (h *hardening) ownNamespace(t specs.LinuxNamespaceType) bool {
	ns, ok := findNamespace(h.spec, t)
	return ok && (ns.Path == "" || !h.isHostNamespace(t, ns.Path))
}
