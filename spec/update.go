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
	h.judgeUpdateDevices(r.Devices, container)
	return h.refusals
}

// judgeUpdateDevices refuses device cgroup rules of an update that allow
// more than the container has: runc v1.5.2 ignores the device rules of an
// update, but another runtime may not. CRI sends the container's stored
// rules with every update, so the standard devices and the container's own
// device nodes pass.
//
// TODO: use DeviceRuleViolations(rules, level) from rule_devices.go once
// it is on main, so that an update is judged exactly as a create.
func (h *hardening) judgeUpdateDevices(rules []specs.LinuxDeviceCgroup, container *specs.Spec) {
	for i, r := range rules {
		if !r.Allow || updateDeviceAllowed(r, container) {
			continue
		}
		major, minor := "*", "*"
		if r.Major != nil {
			major = itoa(*r.Major)
		}
		if r.Minor != nil {
			minor = itoa(*r.Minor)
		}
		h.refuse("linux.resources.devices["+itoa(i)+"]", "allow "+orAll(r.Type)+" "+major+":"+minor+" "+r.Access,
			"an update may not allow a device the container was not created with",
			"remove the rule; give the container the device at create (devices.allow of its level)")
	}
}

func updateDeviceAllowed(r specs.LinuxDeviceCgroup, container *specs.Spec) bool {
	if r.Major == nil || (r.Type != "c" && r.Type != "b") {
		return false
	}
	minor := int64(-1)
	if r.Minor != nil {
		minor = *r.Minor
	}
	for _, d := range profiles.StandardDevices {
		if r.Type == d.Type && *r.Major == d.Major && minor == d.Minor {
			return true
		}
	}
	if container != nil && container.Linux != nil && minor >= 0 {
		for _, d := range container.Linux.Devices {
			if d.Type == r.Type && d.Major == *r.Major && d.Minor == minor {
				return true
			}
		}
	}
	return false
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
