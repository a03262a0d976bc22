package spec

import (
	"path"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
)

// ruleDevices keeps host devices out of the container.
//
// Restricted fields: linux.devices, linux.resources.devices.
//
// Allowed values: device nodes of the standard set runc creates anyway
// (/dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom, /dev/tty,
// /dev/console, /dev/ptmx, /dev/pts/*) and the level's devices.allow;
// device cgroup rules that start with "deny all" and never allow every
// device of a type.
//
// Otherwise: other device nodes and allow-all cgroup rules are refused; a
// missing leading "deny all" rule is added.
func ruleDevices(h *hardening) {
	for _, d := range h.spec.Linux.Devices {
		if !standardDevice(d.Path) && !slices.Contains(h.level.Devices.Allow, d.Path) {
			h.refuse("linux.devices["+d.Path+"]", d.Type+" "+itoa(d.Major)+":"+itoa(d.Minor), "host device nodes are not allowed",
				"remove the device, or list "+d.Path+" in devices.allow of a level in the node policy")
		}
	}
	if h.spec.Linux.Resources == nil {
		h.spec.Linux.Resources = &specs.LinuxResources{}
	}
	rules := h.spec.Linux.Resources.Devices
	for i, r := range rules {
		if r.Allow && r.Major == nil && r.Minor == nil && slices.Contains([]string{"", "a", "c", "b"}, r.Type) {
			h.refuse("linux.resources.devices["+itoa(i)+"]", "allow "+orAll(r.Type)+" *:* "+r.Access, "a device cgroup rule that allows every device",
				"remove the rule (it comes with privileged); allow single devices with devices.allow")
		}
	}
	if len(rules) == 0 || !isDenyAll(rules[0]) {
		deny := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
		h.spec.Linux.Resources.Devices = slices.Insert(slices.Clip(rules), 0, deny)
		h.change("linux.resources.devices[0]", "", "deny all rwm", "the device cgroup denies every device not explicitly allowed")
	}
}

func isDenyAll(r specs.LinuxDeviceCgroup) bool {
	return !r.Allow && r.Major == nil && r.Minor == nil && (r.Type == "" || r.Type == "a") && r.Access == "rwm"
}

func standardDevice(p string) bool {
	for _, d := range profiles.StandardDevices {
		if ok, _ := path.Match(d.Path, p); ok {
			return true
		}
	}
	return false
}

func orAll(t string) string {
	if t == "" {
		return "a"
	}
	return t
}
