package spec

import (
	"slices"
	"strings"

	"github.com/hardened-runtime/hardened/profiles"
)

// ruleUser makes the process non-root where the level requires it, or
// root only inside a user namespace of its own.
//
// Restricted fields: process.user.uid, process.user.gid,
// process.user.additionalGids, and process.env HOME when the user changes;
// with user.namespace, linux.namespaces[user], linux.uidMappings,
// linux.gidMappings, and the sysfs and mqueue mounts (userns.go).
//
// Allowed values: with user.runAsNonRoot, uid and gid other than 0 and no
// supplementary group 0. A workload's own non-root user is kept. With
// user.namespace auto or required, uid 0 in a user namespace of the
// container's own whose mappings do not reach the host's root (the pod's
// own, hostUsers: false; for an exec, the container's when it runs as
// root there).
//
// Otherwise: with user.namespace auto or required, a root process without
// one gets a user namespace of its own on the host ids the runtime
// reserved for its pod (userns.go); where it cannot have one, required
// refuses it and auto notes why and goes on as below. With user.onRoot
// fix, a root uid (or gid) becomes the level's
// uid (gid); for an exec'd process, the container's own user; root's
// supplementary groups go with it, the pod's own (supplementalGroups,
// fsGroup) stay (see dropRootGroups). Group 0 is dropped from the
// supplementary groups of any user. HOME becomes /tmp when it pointed at
// root's home, because the new user could not write there. With onRoot
// refuse, the container is refused.
func ruleUser(h *hardening) {
	u := &h.proc.User
	if u.UID == 0 && h.level.User.UsesUserNamespace() && h.keepsRootInUserNamespace() {
		return
	}
	defer h.refuseWindowIDs()
	if !h.level.User.RunAsNonRoot {
		return
	}
	prefix := h.field("user")
	if u.UID == 0 || u.GID == 0 {
		if h.level.User.OnRoot == profiles.Refuse {
			h.refuse(prefix+".uid", itoa(u.UID)+":"+itoa(u.GID), "the level requires a non-root user and group",
				"run as a non-root user (USER in the image, runAsUser/runAsGroup in the pod), or select a level with user.onRoot: fix")
			return
		}
		uid, gid, why := h.level.User.UID, h.level.User.GID, "level "+h.level.Name+" runs root containers as its non-root user"
		if h.container != nil {
			// An exec becomes the container's own user, never more.
			uid, gid, why = h.container.Process.User.UID, h.container.Process.User.GID, "an exec runs as the container's hardened user"
		}
		if u.UID == 0 {
			h.change(prefix+".uid", "0", itoa(uid), why)
			u.UID = uid
			h.fixHome()
			h.dropRootGroups(prefix)
		}
		if u.GID == 0 {
			h.change(prefix+".gid", "0", itoa(gid), why)
			u.GID = gid
		}
		u.Username = ""
	}
	if slices.Contains(u.AdditionalGids, 0) {
		before := gidList(u.AdditionalGids)
		u.AdditionalGids = slices.DeleteFunc(u.AdditionalGids, func(g uint32) bool { return g == 0 })
		h.change(prefix+".additionalGids", before, gidList(u.AdditionalGids), "supplementary group 0 gives root's group access")
	}
}

// dropRootGroups sets the supplementary groups of a process moved off
// root. They have two sources: containerd adds root's groups from the
// image's /etc/group (and root's primary group 0), which are not the new
// user's; the workload's own request (CRI's supplementalGroups: the pod's
// supplementalGroups and fsGroup, under either supplementalGroupsPolicy)
// is kept, so volumes shared through those groups stay readable. Which is
// which comes from Inputs.Container.SupplementalGroups, containerd's
// record of the CRI config: a group the pod asked for that root also had
// from the image is kept (the pod asked for it); a group neither asked for
// nor in the spec is never added. Without that record (not a CRI
// container) no group is kept. An exec gets the container's own groups.
// Group 0 is dropped afterwards in every case.
func (h *hardening) dropRootGroups(prefix string) {
	u := &h.proc.User
	var want []uint32
	reason := "root's supplementary groups (such as wheel) are not the non-root user's"
	switch {
	case h.container != nil:
		want = slices.Clone(h.container.Process.User.AdditionalGids)
		reason = "an exec gets the container's own supplementary groups"
	case h.in.Container.SupplementalGroupsKnown:
		for _, g := range u.AdditionalGids {
			if g != 0 && slices.Contains(h.in.Container.SupplementalGroups, g) && !slices.Contains(want, g) {
				want = append(want, g)
			}
		}
		reason = "root's groups from the image's /etc/group are not the non-root user's; the pod's supplementalGroups and fsGroup are kept"
	}
	if len(u.AdditionalGids) > 0 && !slices.Equal(u.AdditionalGids, want) {
		h.change(prefix+".additionalGids", gidList(u.AdditionalGids), gidList(want), reason)
		u.AdditionalGids = want
	}
}

// fixHome points HOME at a writable place when the process no longer is the
// user whose home it names.
func (h *hardening) fixHome() {
	for i, e := range h.proc.Env {
		name, val, _ := strings.Cut(e, "=")
		if name != "HOME" {
			continue
		}
		if val == "/root" || val == "/" {
			h.change(h.field("env")+"[HOME]", val, "/tmp", "the non-root user cannot write root's home")
			h.proc.Env[i] = "HOME=/tmp"
		}
		return
	}
	h.change(h.field("env")+"[HOME]", "", "/tmp", "HOME was unset; the non-root user gets a writable one")
	h.proc.Env = append(h.proc.Env, "HOME=/tmp")
}

// field names a field of the process being hardened.
func (h *hardening) field(name string) string {
	if h.container != nil {
		return "exec." + name
	}
	return "process." + name
}

func gidList(gids []uint32) string {
	s := make([]string, len(gids))
	for i, g := range gids {
		s[i] = itoa(g)
	}
	return list(s)
}

// refuseWindowIDs refuses a process outside a user namespace of its own
// whose uid, gid or a supplementary group lies in the window of host ids
// the runtime hands out as pods' user namespace ranges: it would run as
// (or with the group of) another pod's root, and reach that pod's files
// on any storage they share.
func (h *hardening) refuseWindowIDs() {
	w := h.in.Host.UsernsWindow
	if w.Size == 0 || h.ownUserNamespace() {
		return
	}
	u := h.proc.User
	ids := append([]uint32{u.UID, u.GID}, u.AdditionalGids...)
	for i, id := range ids {
		if !w.Contains(id) {
			continue
		}
		field := h.field("user") + [...]string{".uid", ".gid", ".additionalGids"}[min(i, 2)]
		h.refuse(field, itoa(id), "host id "+itoa(id)+" lies in the runtime's window for pods' user namespaces ("+itoa(w.HostID)+"-"+itoa(uint32(uint64(w.HostID)+uint64(w.Size)-1))+"): the process would have the ids of another pod's root",
			"run as an id outside that window (runAsUser, runAsGroup, supplementalGroups), or give the pod a user namespace of its own (hostUsers: false)")
		return
	}
}
