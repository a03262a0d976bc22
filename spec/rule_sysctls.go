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
// non-root server can bind ports below 1024 without a capability.
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
		if _, ok := h.spec.Linux.Sysctl[profiles.UnprivilegedPortSysctl]; !ok {
			m := make(map[string]string, len(h.spec.Linux.Sysctl)+1)
			for k, v := range h.spec.Linux.Sysctl {
				m[k] = v
			}
			m[profiles.UnprivilegedPortSysctl] = "0"
			h.spec.Linux.Sysctl = m
			h.change("linux.sysctl["+profiles.UnprivilegedPortSysctl+"]", "", "0",
				"a non-root server can bind ports below 1024 in its own network namespace, without a capability")
		}
	}
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
