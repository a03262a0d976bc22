package spec

import (
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
// Otherwise: refused, with the pod field that asked for it (hostNetwork,
// hostPID, hostIPC): a pod with hostNetwork gets the host's network and
// UTS namespaces, and is refused once, for hostNetwork. Sharing the host's
// mount namespace is never allowed.
func ruleNamespaces(h *hardening) {
	host := map[specs.LinuxNamespaceType]string{}
	for _, t := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.NetworkNamespace, specs.MountNamespace} {
		ns, ok := findNamespace(h.spec, t)
		switch {
		case !ok:
			host[t] = "missing (the host's)"
		case ns.Path != "" && h.isHostNamespace(t, ns.Path):
			host[t] = ns.Path + " (the host's)"
		}
	}
	for _, t := range []specs.LinuxNamespaceType{specs.UserNamespace, specs.CgroupNamespace} {
		if ns, ok := findNamespace(h.spec, t); ok && ns.Path != "" && h.isHostNamespace(t, ns.Path) {
			host[t] = ns.Path + " (the host's)"
		}
	}
	// The pod field first: what its author wrote is what the one line of
	// `kubectl describe` must name.
	for _, t := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace,
		specs.MountNamespace, specs.UserNamespace, specs.CgroupNamespace} {
		value, ok := host[t]
		if !ok {
			continue
		}
		if t == specs.UTSNamespace && host[specs.NetworkNamespace] != "" && !h.level.AllowsHostNamespace(string(specs.NetworkNamespace)) {
			continue // hostNetwork's, refused with it
		}
		h.hostNamespace(t, value, host[specs.UTSNamespace] != "")
	}
}

// hostNamespace refuses (or notes, where the level allows it) the host's
// namespace of type t; withUTS says the host's UTS namespace comes with
// the host's network (a hostNetwork pod).
func (h *hardening) hostNamespace(t specs.LinuxNamespaceType, value string, withUTS bool) {
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
	knob := "list " + string(t) + " in namespaces.allowHost of a level in the node policy"
	reason := "level " + h.level.Name + " does not allow the host's " + string(t) + " namespace"
	switch t {
	case specs.NetworkNamespace:
		if withUTS {
			reason = "level " + h.level.Name + " does not allow the host's network namespace (hostNetwork: true, which brings the host's UTS namespace too)"
		}
		h.refuse(field, value, reason, "remove hostNetwork: true from the pod, or "+knob)
	case specs.PIDNamespace:
		h.refuse(field, value, reason+" (hostPID: true)", "remove hostPID: true from the pod, or "+knob)
	case specs.IPCNamespace:
		h.refuse(field, value, reason+" (hostIPC: true)", "remove hostIPC: true from the pod, or "+knob)
	case specs.UTSNamespace:
		h.refuse(field, value, reason+" without the host's network (Kubernetes has no such pod field)",
			"give the container a UTS namespace of its own, or "+knob)
	case specs.UserNamespace:
		h.refuse(field, value, reason, "do not join the host's user namespace by path (a pod without hostUsers: false runs in it already, unnamed), or "+knob)
	default:
		h.refuse(field, value, reason, "give the container a "+string(t)+" namespace of its own, or "+knob)
	}
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
