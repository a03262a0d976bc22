package spec

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
)

// CheckUpdate judges a task update, containerd's
// UpdateTaskRequest.Resources (what `ctr task update`, CRI's
// UpdateContainerResources and in-place pod resize send), which runc
// applies to the running container, against the container's level. It
// refuses what the level would not have allowed at create:
//   - a pids limit that is unlimited or above the level's limits.pids;
//   - realtime CPU time without scheduling.allowRealtime;
//   - disableOOMKiller, useHierarchy false, unified keys other than the
//     container's own limits and weights, net_cls/net_prio (rule fields),
//     and fields this runtime does not know;
//   - device cgroup rules that allow a device the container was not given
//     at create (container is its hardened spec, from the bundle).
//
// Limits and weights (memory, cpu, block I/O, hugepages) are the pod's
// resource decision, as at create. Unlike at create nothing is fixed: the
// update is refused as a whole. The result is empty when the update may
// go to runc; each violation is Refused.
func CheckUpdate(container *specs.Spec, res *specs.LinuxResources, level *profiles.Level) []Violation {
	if level == nil {
		return []Violation{{Rule: "update", Field: "resources", Reason: "no level to judge the update against", Fix: "fix the runtime's record of the container", Refused: true}}
	}
	if res == nil {
		return nil
	}
	r := deepCopy(res)
	h := &hardening{level: level, spec: &specs.Spec{Linux: &specs.Linux{Resources: r}}, container: container}
	h.rule = "fields"
	for _, n := range fields().root.children {
		if n.name != "linux" {
			continue
		}
		for _, c := range n.children {
			if c.name == "resources" {
				h.walkFields(c.children, reflectElem(r), "linux.resources")
			}
		}
	}
	h.rule = "limits"
	if r.Pids != nil && r.Pids.Limit != nil {
		if why := pidsProblem(*r.Pids.Limit, level.Limits.Pids); why != "" {
			h.refuse("linux.resources.pids.limit", itoa(*r.Pids.Limit), "a pids limit "+why, pidsFix(level.Limits.Pids))
		}
	}
	h.rule = "resources"
	h.judgeResources(r)
	h.rule = "devices"
	// Device rules are judged exactly as at create: only the standard
	// devices and the level's devices.allow, by type and major:minor.
	return append(h.refusals, DeviceRuleViolations(r.Devices, level)...)
}

// CheckRestore judges a task created from a checkpoint (containerd's
// CreateTaskRequest.Checkpoint, the checkpoint's path): CRIU restores the
// processes' memory, credentials and capabilities from image files no rule
// has seen, so it is refused unless the level sets
// checkpoint.allowRestore, whatever the signatures policy.
func CheckRestore(checkpoint string, level *profiles.Level) []Violation {
	if checkpoint == "" {
		return nil
	}
	if level != nil && level.Checkpoint.AllowRestore {
		return nil
	}
	name := "(none)"
	if level != nil {
		name = level.Name
	}
	return []Violation{{Rule: "checkpoint", Field: "checkpoint", Value: checkpoint,
		Reason: "restoring a checkpoint brings back processes with the memory, credentials and capabilities of its images, which level " + name + " has not judged",
		Fix:    "start the container from its image, or set checkpoint.allowRestore in a level of the node policy", Refused: true}}
}
