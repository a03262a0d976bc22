package spec

import (
	"errors"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
	"github.com/hardened-runtime/hardened/profiles/seccompmodel"
)

// ruleSeccomp gives the process the level's seccomp profile, or keeps its
// own when that runs nothing the level's does not, or else the intersection
// of both.
//
// Restricted fields: linux.seccomp.
//
// Allowed values: a profile that, as runc v1.5.2 and libseccomp load it
// (package profiles/seccompmodel), runs nothing the level's profile for the
// final capabilities does not surely run: for each of its architectures,
// each syscall and each value of the six arguments. SCMP_ACT_TRACE and
// SCMP_ACT_NOTIFY count as running (a tracer or an agent decides), rules
// that libseccomp merges ambiguously count as running, "no flags" counts as
// SECCOMP_FILTER_FLAG_SPEC_ALLOW (runc's default). Never kept: a profile
// that hands decisions to a user-space agent (listenerPath, a notify rule),
// one with rules libseccomp 2.5 merges wrongly or loops on, and one that
// lists x32 unless it is the level's own (libseccomp 2.5 miscompiles some
// x86_64+x32 filters).
//
// Otherwise: no profile (which is what "Unconfined" becomes in a spec) gets
// the level's. Any other profile gets the intersection of both: a syscall
// runs only for the arguments both surely run it for; what the workload's
// profile denies stays denied, with its own action where a rule of its own
// denies it (critest's chmod fails with EPERM) or its default action when
// that kills or traps, else with the level's (ENOSYS for unknown syscalls,
// so that libc falls back). Its architectures are those of both but x32,
// it hands nothing to a tracer or agent, and SPEC_ALLOW stays only where
// both have it. What runc's rules cannot express in 64 rules per syscall is
// denied, and the change says so. With seccomp.onWeaker refuse, such a profile is refused instead, with
// the syscall and arguments the level denies. A profile runc would not load
// is refused.
func ruleSeccomp(h *hardening) {
	// The profile depends on the final capabilities. Capabilities that are
	// being refused do not count (and cannot grow the profile cache).
	var bounding []string
	if h.proc.Capabilities != nil {
		bounding = intersect(h.proc.Capabilities.Bounding, h.capabilityAllowlist())
	}
	want, err := profiles.Seccomp(h.level, bounding)
	if err != nil {
		h.refuse("linux.seccomp", "", "cannot build the level's seccomp profile: "+err.Error(), "fix seccomp in level "+h.level.Name)
		return
	}
	levels := h.level.Seccomp.Profile + " profile of level " + h.level.Name
	have := h.spec.Linux.Seccomp
	if have == nil {
		h.spec.Linux.Seccomp = copySeccomp(want)
		h.change("linux.seccomp", "unset (unconfined)", levels,
			"every container gets a seccomp allowlist; unknown syscalls fail with ENOSYS")
		return
	}
	v, err := seccompmodel.Judge(have, want)
	var invalid *seccompmodel.InvalidError
	switch {
	case errors.As(err, &invalid):
		h.refuse("linux.seccomp", err.Error(), "runc cannot load the container's seccomp profile",
			"fix the profile (runtime-spec v1.3.0 seccomp as runc v1.5.2 reads it), or use the RuntimeDefault profile")
		return
	case err != nil:
		h.refuse("linux.seccomp", err.Error(), "cannot intersect the container's seccomp profile with level "+h.level.Name+"'s",
			"use the RuntimeDefault profile")
		return
	}
	if v.Keep {
		h.spec.Linux.Seccomp = deepCopy(have) // shared with the input until now
		h.logDenials(want)
		return
	}
	why := v.Looser.String()
	if h.level.Seccomp.OnWeaker == profiles.Refuse {
		h.refuse("linux.seccomp", "allows "+why, "the container's seccomp profile allows what level "+h.level.Name+"'s denies",
			"use the RuntimeDefault profile, or add the syscalls it needs as seccomp.packs ("+list(profiles.PackNames())+") in a level of the node policy")
		return
	}
	h.spec.Linux.Seccomp = copySeccomp(v.Result)
	to, reason := levels, "the container's profile allows what the level's denies, and denies nothing the level's allows"
	if !v.SameAsLevel {
		to = "intersection of the container's profile and the " + levels
		reason = "the container's profile allows what the level's denies; the result denies what either denies"
	}
	if len(v.Losses) > 0 {
		reason += "; denied where runc's rules cannot express the intersection: " + strings.Join(v.Losses, "; ")
	}
	h.change("linux.seccomp", "own profile (allows "+why+")", to, reason)
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

// logDenials gives a workload's own kept profile the level's
// SECCOMP_FILTER_FLAG_LOG (seccomp.mode enforce), so that its denials are
// audit records `hardenctl observe` attributes like the level's. A profile
// without flags gets SPEC_ALLOW with it, which runc would otherwise have
// added (any flag stops runc from adding it): logging changes nothing else.
func (h *hardening) logDenials(want *specs.LinuxSeccomp) {
	p := h.spec.Linux.Seccomp
	if !slices.Contains(want.Flags, specs.LinuxSeccompFlagLog) || slices.Contains(p.Flags, specs.LinuxSeccompFlagLog) {
		return
	}
	before := list(flagNames(p.Flags))
	if len(p.Flags) == 0 {
		p.Flags = append(p.Flags, specs.LinuxSeccompFlagSpecAllow)
	}
	p.Flags = append(p.Flags, specs.LinuxSeccompFlagLog)
	h.change("linux.seccomp.flags", before, list(flagNames(p.Flags)), "the container's own profile is kept; its denials are logged like the level's (hardenctl observe)")
}

func flagNames(fs []specs.LinuxSeccompFlag) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = string(f)
	}
	return out
}
