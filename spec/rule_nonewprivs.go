package spec

// ruleNoNewPrivileges sets no_new_privs, so setuid binaries and file
// capabilities cannot raise privileges inside the container.
//
// Restricted fields: process.noNewPrivileges.
//
// Allowed values: true.
//
// Otherwise: set to true.
func ruleNoNewPrivileges(h *hardening) {
	if !h.proc.NoNewPrivileges {
		h.proc.NoNewPrivileges = true
		h.change(h.field("noNewPrivileges"), "false", "true", "setuid binaries and file capabilities must not raise privileges")
	}
}
