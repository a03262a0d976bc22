package spec

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// rulePrivileged refuses containers that ask for everything at once, so the
// error names "privileged" instead of a dozen separate controls.
//
// Restricted fields: process.capabilities.bounding, linux.maskedPaths,
// linux.readonlyPaths.
//
// Allowed values: anything that is not all of CAP_SYS_ADMIN in the bounding
// set together with either (nearly) every capability or no masked and no
// read-only paths, which is how containerd's CRI and ctr --privileged
// express a privileged container.
//
// Otherwise: refused, unless the level sets allowPrivileged. The other rules
// still apply either way.
func rulePrivileged(h *hardening) {
	if h.level.AllowPrivileged || !looksPrivileged(h.spec) {
		return
	}
	h.refuse("process.capabilities", "privileged",
		"privileged containers are not allowed (all capabilities, host devices, no masked paths)",
		"drop privileged (securityContext.privileged / ctr --privileged), or select a level with allowPrivileged: true in the node policy")
}

func looksPrivileged(s *specs.Spec) bool {
	if s.Process.Capabilities == nil || !slices.Contains(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN") {
		return false
	}
	if len(s.Process.Capabilities.Bounding) >= 38 {
		return true
	}
	return s.Linux != nil && len(s.Linux.MaskedPaths) == 0 && len(s.Linux.ReadonlyPaths) == 0
}
