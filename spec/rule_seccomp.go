package spec

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
)

// ruleSeccomp gives the process the level's seccomp profile unless its own
// is at least as strict.
//
// Restricted fields: linux.seccomp.
//
// Allowed values: a profile that is at least as strict as the level's,
// computed for the final capabilities. "At least as strict" means all of:
//   - its default action denies (errno, kill or trap, never allow, log,
//     trace or notify);
//   - it hands no decision to a user-space agent (no listenerPath, no notify
//     rule);
//   - it does not set SECCOMP_FILTER_FLAG_SPEC_ALLOW;
//   - it lists no architecture the level's profile does not list (so the
//     32-bit compat ABIs stay closed unless the level opens them);
//   - every syscall it lets run for some arguments, the level's profile lets
//     run for some arguments too, and every syscall it lets run for all
//     arguments, the level's profile lets run for all arguments.
//
// The argument filters themselves are not compared: a conditional rule of the
// workload counts as "some arguments". That errs towards replacing a custom
// profile, never towards keeping a looser one.
//
// Otherwise: no profile (which is what "Unconfined" becomes in a spec) or a
// weaker one is replaced by the level's, recorded with what made it weaker;
// with seccomp.onWeaker refuse a weaker profile of the workload is refused.
// The level's profile fails unknown syscalls (clone3 among them on older
// profiles) with ENOSYS so that libc falls back.
func ruleSeccomp(h *hardening) {
	// The profile depends on the final capabilities. Capabilities that are
	// being refused do not count (and cannot grow the profile cache).
	var bounding []string
	if h.proc.Capabilities != nil {
		bounding = intersect(h.proc.Capabilities.Bounding, h.level.Capabilities.Allow)
	}
	want, err := profiles.Seccomp(h.level, bounding)
	if err != nil {
		h.refuse("linux.seccomp", "", "cannot build the level's seccomp profile: "+err.Error(), "fix seccomp in level "+h.level.Name)
		return
	}
	have := h.spec.Linux.Seccomp
	if have == nil {
		h.spec.Linux.Seccomp = copySeccomp(want)
		h.change("linux.seccomp", "unset (unconfined)", h.level.Seccomp.Profile+" profile of level "+h.level.Name,
			"every container gets a seccomp allowlist; unknown syscalls fail with ENOSYS")
		return
	}
	why := weakerSeccomp(have, want, h.level, bounding)
	if why == "" {
		h.spec.Linux.Seccomp = deepCopy(have) // shared with the input until now
		return
	}
	if h.level.Seccomp.OnWeaker == profiles.Refuse {
		h.refuse("linux.seccomp", why, "the container's seccomp profile is weaker than level "+h.level.Name+"'s",
			"use the RuntimeDefault profile, or add the syscalls it needs as seccomp.packs ("+list(profiles.PackNames())+") in a level of the node policy")
		return
	}
	h.spec.Linux.Seccomp = copySeccomp(want)
	h.change("linux.seccomp", "own profile ("+why+")", h.level.Seccomp.Profile+" profile of level "+h.level.Name,
		"the container's profile is weaker than the level's")
}

// weakerSeccomp says why have is weaker than want, or "" when it is not.
func weakerSeccomp(have, want *specs.LinuxSeccomp, level *profiles.Level, bounding []string) string {
	if profiles.Permits(have.DefaultAction) {
		return "defaultAction " + string(have.DefaultAction)
	}
	if have.ListenerPath != "" {
		return "listenerPath " + have.ListenerPath
	}
	if slices.Contains(have.Flags, specs.LinuxSeccompFlagSpecAllow) {
		return "flag " + string(specs.LinuxSeccompFlagSpecAllow)
	}
	for _, a := range have.Architectures {
		if !slices.Contains(want.Architectures, a) {
			return "architecture " + string(a)
		}
	}
	some, all, err := profiles.SeccompAllows(level, bounding)
	if err != nil {
		return "cannot compare: " + err.Error()
	}
	for _, r := range have.Syscalls {
		if r.Action == specs.ActNotify {
			return "notify rule"
		}
		if !profiles.Permits(r.Action) {
			continue
		}
		for _, n := range r.Names {
			if !some[n] || (len(r.Args) == 0 && !all[n]) {
				return "allows " + n
			}
		}
	}
	return ""
}

// copySeccomp copies a cached profile, so that no two specs share one. All
// name lists share one new backing array and all argument lists another
// (each sub-slice clipped), which keeps the copy to a handful of allocations.
func copySeccomp(p *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	c := *p
	c.Architectures = slices.Clone(p.Architectures)
	c.Flags = slices.Clone(p.Flags)
	c.Syscalls = make([]specs.LinuxSyscall, len(p.Syscalls))
	var nNames, nArgs int
	for _, r := range p.Syscalls {
		nNames += len(r.Names)
		nArgs += len(r.Args)
	}
	names := make([]string, 0, nNames)
	args := make([]specs.LinuxSeccompArg, 0, nArgs)
	for i, r := range p.Syscalls {
		start := len(names)
		names = append(names, r.Names...)
		r.Names = names[start:len(names):len(names)]
		if r.Args != nil {
			start = len(args)
			args = append(args, r.Args...)
			r.Args = args[start:len(args):len(args)]
		}
		if r.ErrnoRet != nil {
			e := *r.ErrnoRet
			r.ErrnoRet = &e
		}
		c.Syscalls[i] = r
	}
	if p.DefaultErrnoRet != nil {
		e := *p.DefaultErrnoRet
		c.DefaultErrnoRet = &e
	}
	return &c
}
