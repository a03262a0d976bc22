package spec

// ruleOOMScore keeps a container from shielding itself from the host's
// OOM killer. runc writes process.oomScoreAdj as root: -1000 makes the
// kernel kill every other process of the host before this one.
//
// Restricted fields: process.oomScoreAdj (the container's process and every
// exec'd one).
//
// Allowed values: the level's limits.minOOMScoreAdj (0 in the built-in
// levels) and above. Kubernetes gives Burstable and BestEffort containers
// 2 to 1000; Guaranteed ones -997 and pod sandboxes -998.
//
// Otherwise: raised to limits.minOOMScoreAdj, recorded. A policy level with
// minOOMScoreAdj: -998 keeps Kubernetes' ordering.
func ruleOOMScore(h *hardening) {
	p := h.proc.OOMScoreAdj
	min := h.level.Limits.MinOOMScoreAdj
	if p == nil || *p >= min {
		return
	}
	from := *p
	h.proc.OOMScoreAdj = &min
	h.change(h.field("oomScoreAdj"), itoa(int64(from)), itoa(int64(min)),
		"a lower score makes the host's OOM killer spare the container at the expense of the host's own processes (limits.minOOMScoreAdj)")
}
