package spec

import (
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
)

// Root in a user namespace of its own (user.namespace auto or required):
// the user rule decides it, the capabilities, seccomp and mounts rules
// follow from it. Everything here is part of rule user.
//
// A root process gets a user namespace whose ids 0 to Size-1 are the host
// ids the runtime reserved for its pod (Inputs.Container.UserNamespace),
// so that every process of the container has a host uid of that range,
// never 0, and what it creates on a host path is owned by that range. The
// runtime shows it its root filesystem through an idmapped mount, so the
// image's files keep the owners they were built with. Inside, it keeps
// only capabilities.inUserNamespace, valid over its own ids.
//
// The kernel filesystems a user namespace can mount only in namespaces it
// owns are given the way containerd's CRI gives them to a user-namespaced
// pod: sysfs becomes a read-only bind of the host's /sys where the network
// namespace is not created with the user namespace (a pod's, the host's),
// and /dev/mqueue is left out where the IPC namespace is joined (POSIX
// message queues work without it).

// keepsRootInUserNamespace decides, for a root process under a level with
// user.namespace auto or required, whether it stays root because it runs
// in a user namespace of its own: the pod's own (hostUsers: false), one
// given now, or, for an exec, the container's. Otherwise it notes why not
// (refuses, with required) and returns false: the process is then handled
// as without one.
func (h *hardening) keepsRootInUserNamespace() bool {
	if h.container != nil {
		// An exec joins the container's namespaces: its root is the
		// container's own when that runs as root in its user namespace.
		return h.container.Process.User.UID == 0 && h.ownUserNamespace()
	}
	prefix := h.field("user")
	if h.ownUserNamespace() {
		h.note(prefix+".uid", "root in the container's own user namespace (host ids "+idMappings(h.spec.Linux.UIDMappings)+"), not the host's root; "+
			"it keeps capabilities.inUserNamespace of level "+h.level.Name)
		return true
	}
	why := h.userNamespaceUnavailable()
	if why == "" {
		h.giveUserNamespace()
		return true
	}
	if h.level.User.Namespace == profiles.UserNamespaceRequired {
		h.refuse(prefix+".uid", "0", "level "+h.level.Name+" runs root only in a user namespace of its own, and this container can have none: "+why,
			"run as a non-root user (USER in the image, runAsUser in the pod), or select a level with user.namespace: auto in the node policy")
		return true
	}
	h.note(prefix+".uid", "root gets no user namespace of its own: "+why)
	return false
}

// ownUserNamespace reports whether the container has a user namespace of
// its own whose mappings the spec states and none of which reaches the
// host's uid or gid 0.
func (h *hardening) ownUserNamespace() bool {
	l := h.spec.Linux
	return h.ownNamespace(specs.UserNamespace) && len(l.UIDMappings) > 0 && len(l.GIDMappings) > 0 &&
		!reachesHostRoot(l.UIDMappings) && !reachesHostRoot(l.GIDMappings)
}

// rootInOwnUserNamespace reports whether the process being hardened runs
// as root in a user namespace of the container's own, under a level that
// keeps root there.
func (h *hardening) rootInOwnUserNamespace() bool {
	return h.level.User.UsesUserNamespace() && h.proc.User.UID == 0 && h.ownUserNamespace()
}

// networkOfItsOwn reports whether the container's network namespace is
// created with its user namespace (neither joined by path): it holds
// nothing but loopback, and the container's user namespace owns it.
func (h *hardening) networkOfItsOwn() bool {
	netns, okNet := findNamespace(h.spec, specs.NetworkNamespace)
	userns, okUser := findNamespace(h.spec, specs.UserNamespace)
	return okNet && okUser && netns.Path == "" && userns.Path == ""
}

// capabilityAllowlist is what the process may keep: the level's
// capabilities.allow, or, for root in a user namespace of its own,
// capabilities.inUserNamespace (CAP_NET_RAW only with a network namespace
// of its own).
func (h *hardening) capabilityAllowlist() []string {
	if !h.rootInOwnUserNamespace() {
		return h.level.Capabilities.Allow
	}
	allow := h.level.Capabilities.InUserNamespace
	if slices.Contains(allow, "CAP_NET_RAW") && !h.networkOfItsOwn() {
		allow = slices.DeleteFunc(slices.Clone(allow), func(c string) bool { return c == "CAP_NET_RAW" })
	}
	return allow
}

// allowlistName names the list capabilityAllowlist returned, for a Change.
func (h *hardening) allowlistName() string {
	if h.rootInOwnUserNamespace() {
		return "capabilities.inUserNamespace of level " + h.level.Name
	}
	return "the allowlist of level " + h.level.Name
}

// userNamespaceUnavailable says why the container cannot be given a user
// namespace of its own, or "".
func (h *hardening) userNamespaceUnavailable() string {
	c := h.in.Container
	switch {
	case c.SandboxID != "" && c.SandboxID == c.ID:
		return "it is a pod's sandbox: runc sets the pod's network sysctls from it, which a user namespace that does not own the pod's network namespace cannot"
	case !h.in.Host.IDMappedMounts:
		return "the kernel has no idmapped mounts (Linux 5.19 or later, with overlayfs), which the image's files need to keep their owners in a user namespace"
	case c.UserNamespace.Size == 0 && c.UserNamespaceUnavailable != "":
		return c.UserNamespaceUnavailable
	case c.UserNamespace.Size == 0:
		return "the runtime reserved no range of host ids for it"
	case c.UserNamespace.HostID == 0:
		return "the range of host ids the runtime reserved starts at the host's root"
	case c.SupplementalGroupsKnown && slices.ContainsFunc(c.SupplementalGroups, func(g uint32) bool { return g != 0 }):
		return "the pod's supplementalGroups and fsGroup (" + gidList(c.SupplementalGroups) + ") are host groups, which a user namespace would make other ids; hostUsers: false maps the pod's volumes instead"
	case len(h.spec.Linux.UIDMappings) > 0 || len(h.spec.Linux.GIDMappings) > 0:
		return "the spec has uid or gid mappings of its own"
	}
	if ns, ok := findNamespace(h.spec, specs.UserNamespace); ok && ns.Path != "" {
		return "it joins the user namespace " + ns.Path + ", whose mappings the spec does not state"
	} else if ok {
		return "it asks for a user namespace without mappings"
	}
	if ns, ok := findNamespace(h.spec, specs.PIDNamespace); ok && ns.Path != "" {
		return "it shares the PID namespace " + ns.Path + " (shareProcessNamespace), which a new user namespace would not own: /proc could not be mounted"
	}
	if ns, ok := findNamespace(h.spec, specs.MountNamespace); ok && ns.Path != "" {
		return "it joins the mount namespace " + ns.Path + ", which a new user namespace would not own"
	}
	for _, k := range sortedKeys(h.spec.Linux.Sysctl) {
		t := sysctlNamespace(k)
		if ns, ok := findNamespace(h.spec, t); t != "" && (!ok || ns.Path != "") {
			return "runc sets its sysctl " + k + " from inside the user namespace, which cannot write one of a " + string(t) + " namespace it does not own"
		}
	}
	return ""
}

// netSysctlsWritable reports whether runc can set net.* sysctls in the
// container: runc writes them from inside its user namespace, which can
// write those of a network namespace it owns only. A container in the
// host's user namespace can; so can one whose network namespace is
// created with its user namespace, one that joins a pod's user namespace
// (whose network namespace containerd creates inside it, hostUsers:
// false) and a pod's sandbox that brings its own. A container given a user
// namespace of its own that joins a pod's network namespace cannot: the
// pod's sandbox, in the host's user namespace, sets them for the pod.
func (h *hardening) netSysctlsWritable() bool {
	userns, ok := findNamespace(h.spec, specs.UserNamespace)
	c := h.in.Container
	return !ok || userns.Path != "" || h.networkOfItsOwn() || (c.SandboxID != "" && c.SandboxID == c.ID)
}

// sysctlNamespace is the namespace a sysctl belongs to, "" when unknown.
func sysctlNamespace(k string) specs.LinuxNamespaceType {
	switch {
	case strings.HasPrefix(k, "net."):
		return specs.NetworkNamespace
	case strings.HasPrefix(k, "kernel.shm"), strings.HasPrefix(k, "kernel.msg"), strings.HasPrefix(k, "kernel.sem"), strings.HasPrefix(k, "fs.mqueue."):
		return specs.IPCNamespace
	case k == "kernel.hostname", k == "kernel.domainname":
		return specs.UTSNamespace
	}
	return ""
}

// giveUserNamespace gives the container a user namespace mapping its ids
// 0 to Size-1 onto the range the runtime reserved, and makes its kernel
// filesystem mounts ones that user namespace can make.
func (h *hardening) giveUserNamespace() {
	r := h.in.Container.UserNamespace
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: r.HostID, Size: r.Size}}
	l := h.spec.Linux
	l.Namespaces = append(slices.Clip(l.Namespaces), specs.LinuxNamespace{Type: specs.UserNamespace})
	ids := itoa(r.HostID) + "-" + itoa(uint64(r.HostID)+uint64(r.Size)-1)
	h.change("linux.namespaces[user]", "the host's", "its own",
		"root runs as root only inside a user namespace of its own: its ids 0-"+itoa(r.Size-1)+" are the host's "+ids+", a range no other pod and no host user has")
	l.UIDMappings, l.GIDMappings = m, slices.Clone(m)
	h.change("linux.uidMappings", "", idMappings(m), "the container's uids are host uids "+ids+", never the host's root")
	h.change("linux.gidMappings", "", idMappings(m), "the container's gids are host gids "+ids+", never the host's group 0")
	net, _ := findNamespace(h.spec, specs.NetworkNamespace)
	ownNet := h.networkOfItsOwn()
	ipc, joinedIPC := findNamespace(h.spec, specs.IPCNamespace)
	joinedIPC = !joinedIPC || ipc.Path != ""
	for i := 0; i < len(h.spec.Mounts); i++ {
		mnt := &h.spec.Mounts[i]
		dest := cleanPath(mnt.Destination)
		switch {
		case mnt.Type == "sysfs" && dest == "/sys" && !ownNet:
			where := "the host's"
			if net.Path != "" {
				where = "a joined one (" + net.Path + ")"
			}
			h.change("mounts[/sys]", "sysfs "+strings.Join(mnt.Options, ","), "bind /sys "+strings.Join(sysBindOptions, ","),
				"sysfs cannot be mounted from a user namespace that does not own the network namespace ("+where+"); the host's /sys, read-only, as containerd's CRI gives a user-namespaced pod")
			*mnt = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: slices.Clone(sysBindOptions)}
		case mnt.Type == "mqueue" && dest == "/dev/mqueue" && joinedIPC:
			h.change("mounts[/dev/mqueue]", "mqueue", "",
				"mqueue cannot be mounted from a user namespace that does not own the IPC namespace (joined: "+ipc.Path+"); POSIX message queues work without it")
			h.spec.Mounts = slices.Delete(h.spec.Mounts, i, i+1)
			i--
		}
	}
}

// sysBindOptions are the options of the read-only bind of the host's /sys
// that replaces sysfs (containerd v2.4.2's CRI uses the same).
var sysBindOptions = []string{"rbind", "nosuid", "noexec", "nodev", "rro"}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
