package spec

import (
	"regexp"
	"slices"
	"sort"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ruleResources judges the cgroup settings that reach beyond the
// container's own limits. The plain limits and weights (memory, cpu
// shares and quota, block I/O, hugepages, rdma) only restrict the
// container's own cgroup and are kept; the pids limit is rule limits';
// the device rules are rule devices'; net_cls and net_prio are refused by
// rule fields.
//
// Restricted fields: linux.resources.cpu.realtimeRuntime,
// linux.resources.cpu.realtimePeriod, linux.resources.memory.disableOOMKiller,
// linux.resources.memory.useHierarchy, linux.resources.unified.
//
// Allowed values: no realtime CPU time (unset or 0) unless the level sets
// scheduling.allowRealtime; disableOOMKiller unset or false (a cgroup
// without an OOM killer hangs at its limit, with its memory held);
// useHierarchy unset or true (cgroup v1: false would take the container's
// memory out of its parents' accounting); unified keys that are limits or
// weights of the container's own cgroup (memory.min/low/high/max,
// memory.swap.high/max, memory.zswap.max/writeback, memory.oom.group,
// cpu.weight, cpu.weight.nice, cpu.max, cpu.max.burst, cpu.idle,
// cpu.uclamp.max, cpuset.cpus/mems, io.weight, io.bfq.weight, io.max,
// hugetlb.<size>.max and .rsvd.max, rdma.max, and pids.max no higher than
// the level's limits.pids).
//
// Otherwise: refused. The same judgement applies to a task update
// (CheckUpdate), which runc applies to the running container.
func ruleResources(h *hardening) {
	if r := h.spec.Linux.Resources; r != nil {
		h.judgeResources(r)
	}
}

// unifiedKeys are the cgroup v2 files a spec's unified map may write.
var unifiedKeys = []string{
	"memory.min", "memory.low", "memory.high", "memory.max", "memory.swap.high", "memory.swap.max",
	"memory.zswap.max", "memory.zswap.writeback", "memory.oom.group",
	"cpu.weight", "cpu.weight.nice", "cpu.max", "cpu.max.burst", "cpu.idle", "cpu.uclamp.max",
	"cpuset.cpus", "cpuset.mems",
	"io.weight", "io.bfq.weight", "io.max",
	"rdma.max", "pids.max",
}

var hugetlbKey = regexp.MustCompile(`^hugetlb\.[0-9]+[KMG]B\.(?:rsvd\.)?max$`)

func (h *hardening) judgeResources(r *specs.LinuxResources) {
	lv := h.level
	if c := r.CPU; c != nil && !lv.Scheduling.AllowRealtime {
		fix := "remove it, or set scheduling.allowRealtime in a level of the node policy"
		if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
			h.refuse("linux.resources.cpu.realtimeRuntime", itoa(*c.RealtimeRuntime), "realtime CPU time lets the container's realtime processes starve the host", fix)
		}
		if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
			h.refuse("linux.resources.cpu.realtimePeriod", itoa(*c.RealtimePeriod), "the realtime period is only for realtime CPU time", fix)
		}
	}
	if m := r.Memory; m != nil {
		if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
			h.refuse("linux.resources.memory.disableOOMKiller", "true", "without its OOM killer the container hangs at its memory limit, holding the memory",
				"remove it; no level allows it")
		}
		if m.UseHierarchy != nil && !*m.UseHierarchy {
			h.refuse("linux.resources.memory.useHierarchy", "false", "the container's memory would not count towards its parents' limits",
				"remove it; no level allows it")
		}
	}
	keys := make([]string, 0, len(r.Unified))
	for k := range r.Unified {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, field := r.Unified[k], "linux.resources.unified["+k+"]"
		switch {
		case k == "pids.max":
			limit := int64(-1)
			if v != "max" {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					h.refuse(field, v, "not a number or max", "write a number")
					continue
				}
				limit = n
			}
			if why := pidsProblem(limit, lv.Limits.Pids); why != "" {
				h.refuse(field, v, "a pids limit "+why, pidsFix(lv.Limits.Pids))
			}
		case slices.Contains(unifiedKeys, k) || hugetlbKey.MatchString(k):
		default:
			h.refuse(field, v, "not a limit or weight of the container's own cgroup",
				"remove it, or use one of "+list(unifiedKeys)+" or hugetlb.<size>.max; no level allows other cgroup files")
		}
	}
}

// pidsProblem says how a pids limit (as runc v1.5.2 reads it: below 0 is
// unlimited, 0 is one process) is looser than the level's max, or "" when
// it is not. A level without a pids limit allows any.
func pidsProblem(limit, max int64) string {
	switch {
	case max <= 0:
		return ""
	case limit < 0:
		return "that is unlimited, above the level's " + itoa(max)
	case limit > max:
		return "above the level's " + itoa(max)
	}
	return ""
}

func pidsFix(max int64) string {
	return "ask for at most " + itoa(max) + ", or raise limits.pids in a level of the node policy"
}
