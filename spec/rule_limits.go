package spec

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ruleLimits bounds the container's process count and the rlimits it asks
// for, and sets the limits it left unset.
//
// Restricted fields: linux.resources.pids.limit, process.rlimits.
//
// Allowed values: a pids limit from 0 (one process, for runc v1.5.2) to the
// level's limits.pids. Rlimits, which runc sets as root before it drops
// privileges (so a container could raise any of them), of these types:
//   - RLIMIT_NOFILE, RLIMIT_AS, RLIMIT_CORE, RLIMIT_CPU, RLIMIT_DATA,
//     RLIMIT_FSIZE, RLIMIT_LOCKS, RLIMIT_MSGQUEUE, RLIMIT_RSS, RLIMIT_RTTIME,
//     RLIMIT_SIGPENDING, RLIMIT_STACK: any value (the memory they stand
//     for is charged to the container's memory cgroup; file tables are
//     bounded by fs.nr_open);
//   - RLIMIT_MEMLOCK: up to the level's limits.maxMemlock (locked memory
//     cannot be reclaimed);
//   - RLIMIT_NICE: up to 20 - scheduling.minNice (the priority it lets the
//     process give itself);
//   - RLIMIT_RTPRIO: 0, unless scheduling.allowRealtime (then up to 99): a
//     non-zero one grants realtime scheduling without a capability.
//
// RLIMIT_NPROC is refused: it counts processes per uid across the whole
// host, so every container running as 65534 would share one limit; the
// pids limit bounds processes per container instead.
//
// Otherwise: an unlimited or higher pids limit becomes the level's, as
// does a missing one; RLIMIT_NOFILE is set to limits.nofile (no higher
// than the runtime's own hard limit, Host.MaxNoFile) when unset, but not
// for a container with its own user namespace (runc sets its rlimits from
// outside, which fails without CAP_SYS_RESOURCE; the container keeps the
// runtime's limit); other rlimits are refused.
func ruleLimits(h *hardening) {
	if max := h.level.Limits.Pids; max > 0 {
		r := h.spec.Linux.Resources
		if r == nil {
			r = &specs.LinuxResources{}
			h.spec.Linux.Resources = r
		}
		from := "unset"
		if r.Pids != nil && r.Pids.Limit != nil {
			from = itoa(*r.Pids.Limit)
		}
		if r.Pids == nil || r.Pids.Limit == nil || pidsProblem(*r.Pids.Limit, max) != "" {
			n := max
			r.Pids = &specs.LinuxPids{Limit: &n}
			h.change("linux.resources.pids.limit", from, itoa(n), "a fork bomb stops at the container's pids limit")
		}
	}
	ruleRlimits(h)
	lim := h.level.Limits
	if lim.NoFile > 0 {
		for _, r := range h.spec.Process.Rlimits {
			if r.Type == "RLIMIT_NOFILE" {
				return
			}
		}
		if h.ownNamespace(specs.UserNamespace) {
			// runc sets a user-namespaced process's rlimits from outside
			// (prlimit), which a runtime without CAP_SYS_RESOURCE may not
			// do: the container would not start (Kubernetes hostUsers:
			// false). It keeps the limit it inherits from the runtime.
			h.note("process.rlimits[RLIMIT_NOFILE]", "not set: the container has its own user namespace, where runc cannot always set it")
			return
		}
		n := lim.NoFile
		if max := h.in.Host.MaxNoFile; max > 0 && n > max {
			n = max // more would fail in runc without CAP_SYS_RESOURCE
		}
		h.spec.Process.Rlimits = append(slices.Clip(h.spec.Process.Rlimits), specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: n, Soft: n})
		h.change("process.rlimits[RLIMIT_NOFILE]", "unset", itoa(n), "bounded open files per process")
	}
}

// anyRlimit are the rlimit types a container may set to any value.
var anyRlimit = []string{
	"RLIMIT_NOFILE", "RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS",
	"RLIMIT_MSGQUEUE", "RLIMIT_RSS", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
}

// ruleRlimits judges the rlimits of the process being hardened (the
// container's or an exec'd one); see ruleLimits.
func ruleRlimits(h *hardening) {
	lv := h.level
	for _, r := range h.proc.Rlimits {
		field := h.field("rlimits[" + r.Type + "]")
		value := "soft " + itoa(r.Soft) + " hard " + itoa(r.Hard)
		high := max(r.Soft, r.Hard)
		switch r.Type {
		case "RLIMIT_NPROC":
			h.refuse(field, value, "RLIMIT_NPROC counts the processes of the uid across the whole host, not the container's",
				"remove it; the pids limit (limits.pids) bounds the container's processes")
		case "RLIMIT_RTPRIO":
			switch {
			case !lv.Scheduling.AllowRealtime && high > 0:
				h.refuse(field, value, "a non-zero RLIMIT_RTPRIO grants realtime scheduling without a capability",
					"set it to 0, or set scheduling.allowRealtime in a level of the node policy")
			case high > 99:
				h.refuse(field, value, "realtime priorities go up to 99", "ask for at most 99")
			}
		case "RLIMIT_NICE":
			if ceiling := uint64(20 - lv.Scheduling.MinNice); high > ceiling {
				h.refuse(field, value, "RLIMIT_NICE "+itoa(high)+" lets the process raise its priority above nice "+itoa(lv.Scheduling.MinNice),
					"ask for at most "+itoa(ceiling)+", or lower scheduling.minNice in a level of the node policy")
			}
		case "RLIMIT_MEMLOCK":
			if high > lv.Limits.MaxMemlock {
				h.refuse(field, value, "locked memory cannot be reclaimed; the level allows "+itoa(lv.Limits.MaxMemlock)+" bytes",
					"ask for at most "+itoa(lv.Limits.MaxMemlock)+", or raise limits.maxMemlock in a level of the node policy")
			}
		default:
			if !slices.Contains(anyRlimit, r.Type) {
				h.refuse(field, value, "not an rlimit this runtime knows", "remove it; known: "+list(append(slices.Clip(anyRlimit), "RLIMIT_MEMLOCK", "RLIMIT_NICE", "RLIMIT_RTPRIO")))
			}
		}
	}
}
