package spec

import (
	"slices"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
)

// ruleSysctls lets the container set only sysctls of its own namespaces.
//
// Restricted fields: linux.sysctl.
//
// Allowed values: the namespaced safe set (profiles.SafeSysctls) and the
// level's sysctls.allow; net.* only with a network namespace of its own.
//
// Otherwise: refused. With sysctls.unprivilegedPorts and a network namespace
// of its own, net.ipv4.ip_unprivileged_port_start=0 is set when unset, so a
// non-root server can bind ports below 1024 without a capability. With
// sysctls.pingGroupRange and a network namespace of its own,
// net.ipv4.ping_group_range is set when unset, so that non-root processes
// can ping and use ICMP sockets without CAP_NET_RAW (as Docker does): to
// every group (0 2147483647), or, in a user namespace of its own, to the
// container ids of the gid mapping that holds the process's group (the
// kernel takes only groups mapped in the writer's namespace).
func ruleSysctls(h *hardening) {
	ownNet := h.ownNamespace(specs.NetworkNamespace)
	keys := make([]string, 0, len(h.spec.Linux.Sysctl))
	for k := range h.spec.Linux.Sysctl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field := "linux.sysctl[" + k + "]"
		if !slices.Contains(profiles.SafeSysctls, k) && !matchesAny(k, h.level.Sysctls.Allow) {
			h.refuse(field, h.spec.Linux.Sysctl[k], "the sysctl is not in the namespaced safe set",
				"remove it, or list it in sysctls.allow of a level in the node policy")
			continue
		}
		if strings.HasPrefix(k, "net.") && !ownNet {
			h.refuse(field, h.spec.Linux.Sysctl[k], "a net.* sysctl in the host's network namespace changes the host",
				"remove it, or give the container its own network namespace")
		}
	}
	if h.level.Sysctls.UnprivilegedPorts && ownNet && h.in.Host.UnprivilegedPortSysctl && h.netSysctlsWritable() {
		h.setSysctl(profiles.UnprivilegedPortSysctl, "0",
			"a non-root server can bind ports below 1024 in its own network namespace, without a capability")
	}
	if h.level.Sysctls.PingGroupRange && ownNet && h.netSysctlsWritable() {
		if _, set := h.spec.Linux.Sysctl[pingGroupRange]; !set {
			if r, why := h.pingGroups(); r != "" {
				h.setSysctl(pingGroupRange, r, "non-root processes can ping and use ICMP sockets in the container's own network namespace, without CAP_NET_RAW")
			} else {
				h.note("linux.sysctl["+pingGroupRange+"]", "left unset: "+why)
			}
		}
	}
}

// pingGroupRange is the sysctl that lets the groups in its range open ICMP
// echo sockets (SOCK_DGRAM, IPPROTO_ICMP) without CAP_NET_RAW.
const pingGroupRange = "net.ipv4.ping_group_range"

// allGroups is every group the kernel's ping_group_range takes.
const allGroups = "0 2147483647"

// pingGroups returns the value of net.ipv4.ping_group_range for the
// container, or "" and why none fits.
func (h *hardening) pingGroups() (string, string) {
	if !h.ownNamespace(specs.UserNamespace) {
		return allGroups, ""
	}
	gid := uint32(0)
	if h.spec.Process != nil {
		gid = h.spec.Process.User.GID
	}
	for _, m := range h.spec.Linux.GIDMappings {
		if m.Size > 0 && gid >= m.ContainerID && uint64(gid) < uint64(m.ContainerID)+uint64(m.Size) {
			high := uint64(m.ContainerID) + uint64(m.Size) - 1
			if high > 2147483647 {
				high = 2147483647
			}
			return itoa(m.ContainerID) + " " + itoa(high), ""
		}
	}
	return "", "the container's user namespace has no gid mapping for the process's group " + itoa(gid) + " in the spec, and the kernel takes only mapped groups"
}

// setSysctl sets a sysctl the spec does not set.
func (h *hardening) setSysctl(key, value, reason string) {
	if _, ok := h.spec.Linux.Sysctl[key]; ok {
		return
	}
	m := make(map[string]string, len(h.spec.Linux.Sysctl)+1)
	for k, v := range h.spec.Linux.Sysctl {
		m[k] = v
	}
	m[key] = value
	h.spec.Linux.Sysctl = m
	h.change("linux.sysctl["+key+"]", "", value, reason)
}

// matchesAny reports whether name equals a pattern or starts with a pattern
// ending in "*" (without the "*").
func matchesAny(name string, patterns []string) bool {
	for _, p := range patterns {
		if p == name || (strings.HasSuffix(p, "*") && strings.HasPrefix(name, strings.TrimSuffix(p, "*"))) {
			return true
		}
	}
	return false
}
