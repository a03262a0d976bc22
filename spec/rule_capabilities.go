package spec

import (
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
)

// ruleCapabilities bounds all five capability sets.
//
// Restricted fields: process.capabilities.{bounding,effective,permitted,
// inheritable,ambient}.
//
// Allowed values: the level's capabilities.allow, or, for root in a user
// namespace of the container's own, capabilities.inUserNamespace
// (CAP_NET_RAW only with a network namespace of its own too); for an
// exec'd process also no more than the container's own process has.
//
// Otherwise: capabilities of the runtime's default set are dropped; others
// (ones the workload asked for, such as CAP_SYS_ADMIN) are refused when
// capabilities.onRequest is refuse, dropped when it is fix. A missing
// capabilities object (which runc reads as "keep all of root's") becomes
// the allowlist.
func ruleCapabilities(h *hardening) {
	allow := h.capabilityAllowlist()
	if h.container != nil && h.container.Process.Capabilities != nil {
		allow = intersect(allow, h.container.Process.Capabilities.Bounding)
	}
	caps := h.proc.Capabilities
	prefix := h.field("capabilities")
	if caps == nil {
		allowed := slices.Clone(allow)
		h.proc.Capabilities = &specs.LinuxCapabilities{Bounding: allowed, Effective: slices.Clone(allowed), Permitted: slices.Clone(allowed)}
		h.change(prefix, "unset (all of root's)", list(allowed), "capabilities are reduced to the level's allowlist")
		return
	}
	sets := []struct {
		name string
		set  *[]string
	}{
		{"bounding", &caps.Bounding}, {"effective", &caps.Effective}, {"permitted", &caps.Permitted},
		{"inheritable", &caps.Inheritable}, {"ambient", &caps.Ambient},
	}
	for _, s := range sets {
		var dropped, refused []string
		for _, c := range *s.set {
			if slices.Contains(allow, c) {
				continue
			}
			if dropped == nil {
				dropped = make([]string, 0, len(*s.set))
			}
			if !slices.Contains(profiles.RuntimeDefaultCapabilities, c) && h.level.Capabilities.OnRequest == profiles.Refuse {
				refused = append(refused, c)
				continue
			}
			dropped = append(dropped, c)
		}
		if len(refused) > 0 {
			h.refuse(prefix+"."+s.name, strings.Join(refused, ","), "the level "+h.level.Name+" does not allow these capabilities",
				"drop them (securityContext.capabilities.add / ctr --cap-add), or allow them with capabilities.allow in a level of the node policy")
		}
		if len(dropped) > 0 {
			before := list(*s.set)
			*s.set = slices.DeleteFunc(*s.set, func(c string) bool { return slices.Contains(dropped, c) })
			h.change(prefix+"."+s.name, before, list(*s.set), "not in "+h.allowlistName())
		}
	}
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
