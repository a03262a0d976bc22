package spec

import (
	"slices"

	"github.com/hardened-runtime/hardened/profiles"
)

// ruleKernelPaths hides and protects the parts of /proc and /sys that show
// or change the host kernel.
//
// Restricted fields: linux.maskedPaths, linux.readonlyPaths.
//
// Allowed values: lists that include at least profiles.MaskedPaths and
// profiles.ReadonlyPaths (the union of runc's and containerd's defaults).
//
// Otherwise: the missing paths are added; a workload's own extra paths stay.
func ruleKernelPaths(h *hardening) {
	l := h.spec.Linux
	if added := missing(l.MaskedPaths, profiles.MaskedPaths); len(added) > 0 {
		l.MaskedPaths = append(slices.Clip(l.MaskedPaths), added...)
		h.change("linux.maskedPaths", "", "+"+list(added), "kernel information the container must not see")
	}
	if added := missing(l.ReadonlyPaths, profiles.ReadonlyPaths); len(added) > 0 {
		l.ReadonlyPaths = append(slices.Clip(l.ReadonlyPaths), added...)
		h.change("linux.readonlyPaths", "", "+"+list(added), "kernel settings the container must not change")
	}
}

// missing returns the entries of want that have is missing.
func missing(have, want []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}
