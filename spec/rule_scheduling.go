package spec

import (
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ruleScheduling bounds the CPU and I/O priority of the container's
// processes. runc applies process.scheduler and process.ioPriority as root,
// before it drops privileges: without this rule a container gets realtime
// priority (which can starve every other process of the host) without
// CAP_SYS_NICE.
//
// Restricted fields: process.scheduler (policy, nice, priority, flags,
// runtime, deadline, period), process.ioPriority (class, priority); for
// the container's process and every exec'd one.
//
// Allowed values: policies SCHED_OTHER, SCHED_BATCH and SCHED_IDLE with
// priority 0, nice no lower than the level's scheduling.minNice (0 in the
// built-in levels) and no deadline parameters; I/O classes IOPRIO_CLASS_BE
// and IOPRIO_CLASS_IDLE with priority 0 to 7. SCHED_FIFO, SCHED_RR,
// SCHED_DEADLINE (and their flags SCHED_FLAG_RECLAIM and
// SCHED_FLAG_DL_OVERRUN) and IOPRIO_CLASS_RT only with
// scheduling.allowRealtime.
//
// Otherwise: refused.
func ruleScheduling(h *hardening) {
	lv := h.level.Scheduling
	realtimeFix := "list no realtime scheduling, or set scheduling.allowRealtime in a level of the node policy"
	if s := h.proc.Scheduler; s != nil {
		f := h.field("scheduler")
		switch s.Policy {
		case specs.SchedOther, specs.SchedBatch, specs.SchedIdle:
			if s.Priority != 0 {
				h.refuse(f+".priority", strconv.Itoa(int(s.Priority)), "a static priority is for realtime policies only", "remove it")
			}
			if s.Runtime != 0 || s.Deadline != 0 || s.Period != 0 {
				h.refuse(f, "runtime/deadline/period", "deadline parameters are for SCHED_DEADLINE only", "remove them")
			}
		case specs.SchedFIFO, specs.SchedRR, specs.SchedDeadline:
			if !lv.AllowRealtime {
				h.refuse(f+".policy", string(s.Policy), "a realtime policy can starve every other process of the host's CPUs", realtimeFix)
			}
		default:
			h.refuse(f+".policy", string(s.Policy), "not a scheduling policy of Linux", "use SCHED_OTHER, SCHED_BATCH or SCHED_IDLE")
		}
		if s.Nice < lv.MinNice || s.Nice > 19 {
			h.refuse(f+".nice", strconv.Itoa(int(s.Nice)), "a nice value below "+strconv.Itoa(int(lv.MinNice))+" raises the process above others of the host",
				"ask for nice "+strconv.Itoa(int(lv.MinNice))+" to 19, or lower scheduling.minNice in a level of the node policy")
		}
		for _, fl := range s.Flags {
			switch fl {
			case specs.SchedFlagResetOnFork, specs.SchedFlagKeepPolicy, specs.SchedFlagKeepParams,
				specs.SchedFlagUtilClampMin, specs.SchedFlagUtilClampMax:
			case specs.SchedFlagReclaim, specs.SchedFlagDLOverrun:
				if !lv.AllowRealtime {
					h.refuse(f+".flags", string(fl), "a SCHED_DEADLINE flag", realtimeFix)
				}
			default:
				h.refuse(f+".flags", string(fl), "not a scheduling flag of Linux", "remove it")
			}
		}
	}
	if p := h.proc.IOPriority; p != nil {
		f := h.field("ioPriority")
		switch p.Class {
		case specs.IOPRIO_CLASS_BE, specs.IOPRIO_CLASS_IDLE:
			if p.Priority < 0 || p.Priority > 7 {
				h.refuse(f+".priority", strconv.Itoa(p.Priority), "an I/O priority is 0 to 7", "ask for 0 (highest) to 7")
			}
		case specs.IOPRIO_CLASS_RT:
			if !lv.AllowRealtime {
				h.refuse(f+".class", string(p.Class), "the realtime I/O class goes before every other process's I/O on the host's disks", realtimeFix)
			}
		default:
			h.refuse(f+".class", string(p.Class), "not an I/O class of Linux", "use IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE")
		}
	}
}
