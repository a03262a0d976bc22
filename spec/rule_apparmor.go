package spec

import "github.com/hardened-runtime/hardened/profiles"

// ruleAppArmor confines the process with the level's AppArmor profile where
// the host has AppArmor.
//
// Restricted fields: process.apparmorProfile.
//
// Allowed values: on a host with AppArmor, any profile other than
// "unconfined"; on a host without, none (runc fails with EINVAL on a profile
// the kernel cannot apply).
//
// Otherwise: on a host with AppArmor, an unset or unconfined profile becomes
// the level's. On a host without, the profile is removed (or never set) and
// the reason recorded, or the container is refused when the level sets
// apparmor.required.
func ruleAppArmor(h *hardening) {
	field := h.field("apparmorProfile")
	have := h.proc.ApparmorProfile
	if !h.in.Host.AppArmor {
		if h.level.AppArmor.Required {
			h.refuse(field, have, "level "+h.level.Name+" requires AppArmor and the host has no AppArmor (or the profile "+h.level.AppArmor.Profile+" is not loaded)",
				"load the profile (hardenctl profiles export-apparmor "+h.level.Name+" | apparmor_parser -r), or set apparmor.required: false")
			return
		}
		if have != "" {
			h.proc.ApparmorProfile = ""
			h.change(field, have, "", "host has no AppArmor")
			return
		}
		h.note(field, "host has no AppArmor")
		return
	}
	if have == "" || have == "unconfined" {
		want := h.level.AppArmor.Profile
		if want == "" {
			want = profiles.DefaultAppArmorProfile
		}
		h.proc.ApparmorProfile = want
		h.change(field, orUnset(have), want, "every container is confined by an AppArmor profile")
	}
}

func orUnset(s string) string {
	if s == "" {
		return "unset"
	}
	return s
}
