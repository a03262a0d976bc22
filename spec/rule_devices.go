package spec

import (
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
)

// ruleDevices keeps host devices out of the container. Devices are judged
// by what the kernel checks, their type and major:minor, never by path: a
// block device with a host disk's numbers is a host disk at /dev/full too.
//
// Restricted fields: linux.devices, linux.resources.devices.
//
// Allowed values: device nodes whose type and numbers are those of a
// device runc creates in every container (profiles.StandardDevices: null,
// zero, full, random, urandom, tty, console, ptmx, pts) or of one the
// level's devices.allow names, whatever their path; device cgroup rules
// that start with "deny all" and allow only those devices (no wildcard
// type or major; a wildcard minor only where the allowed device has every
// minor, as c 136:* for the pseudo-terminals).
//
// Otherwise: other device nodes and allow rules are refused; a missing
// leading "deny all" rule is added.
func ruleDevices(h *hardening) {
	for _, d := range h.spec.Linux.Devices {
		id := d.Type + " " + itoa(d.Major) + ":" + itoa(d.Minor)
		if (d.Type == "c" || d.Type == "u" || d.Type == "b") && d.Minor >= 0 && deviceAllowed(h.level, d.Type, d.Major, d.Minor) {
			continue
		}
		h.refuse("linux.devices["+d.Path+"]", id, "device "+id+" is neither one runc creates in every container nor in devices.allow of level "+h.level.Name,
			"remove the device, or add \""+id+" "+d.Path+"\" to devices.allow of a level in the node policy")
	}
	if h.spec.Linux.Resources == nil {
		h.spec.Linux.Resources = &specs.LinuxResources{}
	}
	rules := h.spec.Linux.Resources.Devices
	h.refusals = append(h.refusals, DeviceRuleViolations(rules, h.level)...)
	if len(rules) == 0 || !isDenyAll(rules[0]) {
		deny := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
		h.spec.Linux.Resources.Devices = slices.Insert(slices.Clip(rules), 0, deny)
		h.change("linux.resources.devices[0]", "", "deny all rwm", "the device cgroup denies every device not explicitly allowed")
	}
}

// DeviceRuleViolations judges device cgroup rules (linux.resources.devices
// of a spec, or of a task update) against level: every allow rule must
// name one device the level allows (a standard one or one of its
// devices.allow) by type, major and minor, and access only with r, w and
// m. Deny rules only take away and are always fine. It returns one refused
// Violation (rule "devices") per other allow rule; whether the rules start
// with "deny all" is for the caller (Harden adds that rule).
func DeviceRuleViolations(rules []specs.LinuxDeviceCgroup, level *profiles.Level) []Violation {
	var vs []Violation
	for i, r := range rules {
		if !r.Allow {
			continue
		}
		var v Violation
		switch {
		case strings.Trim(r.Access, "rwm") != "":
			v.Reason, v.Fix = "device cgroup access "+r.Access+" is not made of r, w and m", "give the rule's access as a subset of rwm"
		case r.Type != "c" && r.Type != "b" || r.Major == nil || *r.Major < 0:
			v.Reason, v.Fix = "a device cgroup rule that allows every "+deviceKind(r.Type),
				"remove the rule (it comes with privileged); allow single devices with devices.allow (\"c 10:229 /dev/fuse\")"
		case !deviceAllowed(level, r.Type, *r.Major, minorOrWildcard(r.Minor)):
			id := r.Type + " " + itoa(*r.Major) + ":" + wildcard(r.Minor)
			v.Reason = "device cgroup rule allows " + id + ", which is neither a device runc creates in every container nor in devices.allow of level " + level.Name
			v.Fix = "remove the rule, or add \"" + id + "\" to devices.allow of a level in the node policy"
		default:
			continue
		}
		v.Rule, v.Refused = "devices", true
		v.Field = "linux.resources.devices[" + itoa(i) + "]"
		v.Value = "allow " + orAll(r.Type) + " " + wildcard(r.Major) + ":" + wildcard(r.Minor) + " " + r.Access
		vs = append(vs, v)
	}
	return vs
}

// deviceAllowed reports whether the device (minor < 0: every minor) is a
// standard one or one the level allows.
func deviceAllowed(level *profiles.Level, typ string, major, minor int64) bool {
	for _, d := range profiles.StandardDevices {
		if d.Matches(typ, major, minor) {
			return true
		}
	}
	for _, d := range level.Devices.Allow {
		if d.Matches(typ, major, minor) {
			return true
		}
	}
	return false
}

func minorOrWildcard(m *int64) int64 {
	if m == nil {
		return -1
	}
	return *m
}

func wildcard(n *int64) string {
	if n == nil || *n < 0 {
		return "*"
	}
	return itoa(*n)
}

func deviceKind(t string) string {
	switch t {
	case "c":
		return "character device"
	case "b":
		return "block device"
	case "", "a":
		return "device"
	}
	return "device of type " + t
}

func isDenyAll(r specs.LinuxDeviceCgroup) bool {
	return !r.Allow && r.Major == nil && r.Minor == nil && (r.Type == "" || r.Type == "a") && r.Access == "rwm"
}

func orAll(t string) string {
	if t == "" {
		return "a"
	}
	return t
}
