package spec

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ruleHooks keeps OCI hooks from running programs the node did not choose.
// runc runs prestart, createRuntime, poststart and poststop hooks on the
// host, and createContainer hooks in the container's namespaces, as root
// with every capability and outside any confinement; startContainer hooks
// run a file of the image before the seccomp filter is in place.
//
// Restricted fields: hooks.prestart, hooks.createRuntime,
// hooks.createContainer, hooks.startContainer, hooks.poststart,
// hooks.poststop (each hook's path, args, env, timeout).
//
// Allowed values: prestart, createRuntime, createContainer, poststart and
// poststop hooks whose path is exactly one of the level's hooks.allow (none
// in the built-in levels), with any args, env and timeout. No
// startContainer hook: its path is resolved in the container's root
// filesystem, so a listed path would run the image's file.
//
// Otherwise: refused.
func ruleHooks(h *hardening) {
	hk := h.spec.Hooks
	if hk == nil {
		return
	}
	for _, phase := range []struct {
		name  string
		hooks []specs.Hook
	}{
		{"prestart", hk.Prestart}, {"createRuntime", hk.CreateRuntime}, {"createContainer", hk.CreateContainer},
		{"startContainer", hk.StartContainer}, {"poststart", hk.Poststart}, {"poststop", hk.Poststop},
	} {
		for i, hook := range phase.hooks {
			field := "hooks." + phase.name + "[" + itoa(i) + "].path"
			switch {
			case phase.name == "startContainer":
				h.refuse(field, hook.Path, "a startContainer hook runs a file of the image before the seccomp filter is in place",
					"remove the hook; no level allows startContainer hooks (a host program can be a createRuntime hook listed in hooks.allow)")
			case !slices.Contains(h.level.Hooks.Allow, hook.Path):
				h.refuse(field, hook.Path, "an OCI hook runs a program as root with every capability, outside the container's confinement",
					"remove the hook, or list its exact path in hooks.allow of a level in the node policy")
			}
		}
	}
}
