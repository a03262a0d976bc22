package spec

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ruleUserNamespace keeps the host's root user out of the container's user
// namespace. With host uid 0 mapped, what the container does as that uid
// (files it creates, processes it signals through shared namespaces) is
// done as the host's root.
//
// Restricted fields: linux.uidMappings, linux.gidMappings.
//
// Allowed values: mappings whose host range does not contain 0 (container
// root mapped to an unprivileged host range, as hostUsers: false pods get).
//
// Otherwise: refused. No level allows it.
func ruleUserNamespace(h *hardening) {
	h.refuseRootMappings("linux.uidMappings", "uid", h.spec.Linux.UIDMappings)
	h.refuseRootMappings("linux.gidMappings", "gid", h.spec.Linux.GIDMappings)
}

func (h *hardening) refuseRootMappings(field, kind string, ms []specs.LinuxIDMapping) {
	for i, m := range ms {
		if mapsHostRoot(m) {
			h.refuse(field+"["+itoa(i)+"]", "containerID "+itoa(m.ContainerID)+" hostID "+itoa(m.HostID)+" size "+itoa(m.Size),
				"maps the host's "+kind+" 0 into the container's user namespace",
				"map an unprivileged range of host ids (hostUsers: false gets one); no level allows the host's root")
		}
	}
}

// mapsHostRoot reports whether a mapping's host range contains id 0. The
// kernel refuses ranges that wrap around, so only a range starting at 0
// contains it.
func mapsHostRoot(m specs.LinuxIDMapping) bool {
	return m.HostID == 0
}
