package seccompmodel

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// MaxRulesPerSyscall bounds the rules the intersection writes for one
// syscall when neither profile's own rules describe it. Beyond it the
// syscall is allowed for a part of the arguments only (or not at all), and
// the loss is reported.
const MaxRulesPerSyscall = 64

// maxMerged bounds the rules whose pairwise intersections the
// intersection tries (the work grows with the square).
const maxMerged = 48

// outRule is one rule of the intersection, before names are grouped.
type outRule struct {
	act  specs.LinuxSeccompAction
	ret  *uint
	args []specs.LinuxSeccompArg
}

func (r outRule) key() string {
	var sb strings.Builder
	sb.WriteString(string(r.act))
	if r.ret != nil {
		sb.WriteString("/" + strconv.FormatUint(uint64(*r.ret), 10))
	}
	for _, a := range r.args {
		fmt.Fprintf(&sb, "|%d %s %d %d", a.Index, a.Op, a.Value, a.ValueTwo)
	}
	return sb.String()
}

// plan is what the intersection does with one syscall name.
type plan struct {
	// asLevel: the name stays in the level's own rules, written as they are.
	asLevel bool
	rules   []outRule
}

type intersection struct {
	w, l   *Model
	native specs.Arch
	b      *bdd
	def    Action
	defSrc specs.LinuxSeccompAction
	defRet *uint
	plans  map[string]plan
	order  []string
	losses []string
}

// Intersect builds a profile that runs a syscall only where both w and l
// surely run it, and otherwise denies it: with w's action where w denies
// it with a rule of its own, or with its default action when that kills or
// traps; else with l's action. The result lists the architectures of both
// but x32, hands nothing to a tracer or agent, has no rules libseccomp
// merges wrongly or loops on, and is checked with Subset against both
// before it is returned. Losses are the parts both profiles run that
// the result denies, because runc's rule language cannot express them in
// MaxRulesPerSyscall rules.
func Intersect(w, l *Model) (*specs.LinuxSeccomp, []string, error) {
	if w.native != l.native {
		return nil, nil, errors.New("intersect: models of different native architectures")
	}
	if l.Disabled {
		return nil, nil, errors.New("intersect: the level's profile is no filter")
	}
	if w.Disabled {
		return l.Src, nil, nil
	}
	in := &intersection{w: w, l: l, native: w.native, plans: map[string]plan{}}
	in.chooseDefault()
	seen := map[string]bool{}
	for _, n := range append(slices.Clone(l.names), w.names...) {
		if !seen[n] {
			seen[n] = true
			in.order = append(in.order, n)
			in.plans[n] = in.planFor(n)
		}
	}
	for round := 0; ; round++ {
		out := in.assemble()
		om, err := Load(out, in.native)
		if err != nil {
			return nil, nil, fmt.Errorf("intersect: the result does not load: %w", err)
		}
		v := subset(om, w, &in.b)
		if v == nil {
			v = subset(om, l, &in.b)
		}
		if v == nil {
			if x := om.mergedBadly(); x != nil {
				return nil, nil, fmt.Errorf("intersect: the result has %s", x)
			}
			return out, in.losses, nil
		}
		if v.Name == "" || round > 2*len(in.order)+4 {
			return nil, nil, fmt.Errorf("intersect: the result still allows %s", v)
		}
		// Deny the syscall outright (the model says the result runs it
		// where one of the profiles does not surely run it; on the
		// multiplexing ABIs this happens to socketcall and ipc).
		in.loss(v.Name, "denied: the intersection could not be checked on "+string(v.Arch))
		in.forceDeny(v.Name)
	}
}

func (in *intersection) loss(name, what string) {
	in.losses = append(in.losses, name+": "+what)
}

func isKillOrTrap(a Action) bool { return a.Kind >= KillThread }

// chooseDefault: the workload's default where it kills or traps (its own,
// harder answer), otherwise the level's (ENOSYS, so that libc falls back).
func (in *intersection) chooseDefault() {
	w, l := in.w, in.l
	switch {
	case isKillOrTrap(w.def) || (l.def.MayRun() && !w.def.MayRun()):
		in.def, in.defSrc, in.defRet = w.def, w.Src.DefaultAction, w.Src.DefaultErrnoRet
	case !l.def.MayRun():
		in.def, in.defSrc, in.defRet = l.def, l.Src.DefaultAction, l.Src.DefaultErrnoRet
	case w.def.Runs() && l.def.Runs():
		in.def, in.defSrc = w.def, w.Src.DefaultAction
	default:
		eperm := uint(1)
		in.def, in.defSrc, in.defRet = Action{Kind: Errno, Ret: 1}, specs.ActErrno, &eperm
	}
}

func (in *intersection) bdd() *bdd {
	if in.b == nil {
		in.b = newBDD()
	}
	return in.b
}

// planFor decides one syscall on the native architecture; Intersect checks
// the result on every architecture afterwards.
func (in *intersection) planFor(n string) plan {
	w, l, a := in.w, in.l, in.native
	bits := abis[a].bits
	dw, dl := w.decide(a, n), l.decide(a, n)
	if w.def == l.def && w.exact(dw) && equalRules(dw.rules, dl.rules) {
		// The same rules: the result is the level's (and the workload's).
		switch {
		case w.runsNone(dw):
			return in.deny(n, dw, dl)
		case dw.kind == uniform || !w.def.Runs():
			return in.allowLike(dl, dl.act)
		}
	}
	b := in.bdd()
	lw, ll := w.lower(b, dw, bits), l.lower(b, dl, bits)
	o := b.and(lw, ll)
	if o == bFalse {
		return in.deny(n, dw, dl)
	}
	act := Action{Kind: Allow}
	if in.logs(w, dw) {
		act = Action{Kind: Log}
	}
	if o == ll && l.exact(dl) && (dl.kind == uniform || !l.def.Runs()) {
		return in.allowLike(dl, act)
	}
	if o == bTrue {
		return plan{rules: []outRule{in.rule(act, nil)}}
	}
	if dw.kind == single && dw.act.Runs() && !w.def.Runs() && o == lw {
		return plan{rules: in.fromRules(dw.rules, act)}
	}
	return in.fromRegion(n, o, act, dw, dl, bits)
}

// logs: where the workload runs the syscall, it logs it.
func (in *intersection) logs(w *Model, d decision) bool {
	switch d.kind {
	case uniform:
		return d.act.Kind == Log
	case single:
		return (d.act.Kind == Log || !d.act.Runs()) && (w.def.Kind == Log || !w.def.Runs())
	}
	return false
}

func (in *intersection) rule(act Action, args []specs.LinuxSeccompArg) outRule {
	r := outRule{act: specs.ActAllow, args: args}
	if act.Kind == Log {
		r.act = specs.ActLog
	}
	return r
}

// allowLike writes the syscall as the level's rules of a single or uniform
// decision write it, with the action act.
func (in *intersection) allowLike(dl decision, act Action) plan {
	if dl.kind == uniform && !dl.explicit {
		return plan{rules: []outRule{in.rule(act, nil)}}
	}
	if act == dl.act && in.def == in.l.def {
		return plan{asLevel: true}
	}
	if dl.kind == uniform {
		return plan{rules: []outRule{in.rule(act, nil)}}
	}
	return plan{rules: in.fromRules(dl.rules, act)}
}

func (in *intersection) fromRules(rs []lrule, act Action) []outRule {
	out := make([]outRule, 0, len(rs))
	for _, r := range rs {
		args := make([]specs.LinuxSeccompArg, len(r.conds))
		for i, c := range r.conds {
			args[i] = c.arg()
		}
		out = append(out, in.rule(act, args))
	}
	return out
}

// deny chooses how the result denies a syscall both profiles do not run
// together: the workload's own rule, its default when it kills or traps,
// the level's own rule, or the result's default.
func (in *intersection) deny(n string, dw, dl decision) plan {
	w := in.w
	if dw.kind == uniform && dw.explicit && !dw.act.MayRun() {
		return in.denyWith(n, dl, dw.act, dw.rules[dw.by].src)
	}
	if dw.kind == uniform && !dw.explicit && isKillOrTrap(w.def) {
		return plan{}
	}
	if dl.kind == uniform && dl.explicit && !dl.act.MayRun() {
		return in.denyWith(n, dl, dl.act, dl.rules[dl.by].src)
	}
	return in.denyAsLevel(n, dl)
}

func (in *intersection) denyWith(n string, dl decision, act Action, src *specs.LinuxSyscall) plan {
	if act == in.def {
		return in.denyAsLevel(n, dl) // runc skips a rule equal to the default
	}
	if dl.kind == uniform && dl.explicit && dl.act == act && in.def == in.l.def {
		return plan{asLevel: true}
	}
	return plan{rules: []outRule{{act: src.Action, ret: src.ErrnoRet}}}
}

// denyAsLevel leaves a denied syscall to the default action, in the
// level's own rules where it has some that deny it too (a rule runc skips
// because it equals the default, like clone3's ENOSYS), so that a profile
// that only adds to the level's gives the level's back.
func (in *intersection) denyAsLevel(n string, dl decision) plan {
	l := in.l
	if _, named := l.rules[n]; named && in.def == l.def && l.runsNone(dl) && dl.kind != ambiguous {
		return plan{asLevel: true}
	}
	return plan{}
}

// forceDeny makes sure the syscall never runs: with no rule where nothing
// else feeds it, with an explicit rule where the multiplexing ABIs add the
// rules of other names to it (an unconditional rule wins over them).
func (in *intersection) forceDeny(n string) {
	if n != "socketcall" && n != "ipc" {
		if _, ok := in.plans[n]; !ok {
			in.order = append(in.order, n)
		}
		in.plans[n] = plan{}
		return
	}
	act, ret := specs.ActErrno, uint(1)
	if in.def == (Action{Kind: Errno, Ret: 1}) {
		ret = 38
	}
	if _, ok := in.plans[n]; !ok {
		in.order = append(in.order, n)
	}
	in.plans[n] = plan{rules: []outRule{{act: act, ret: &ret}}}
}

// fromRegion writes a region of arguments as rules: first from the rules
// of both profiles (and their pairwise intersections and simple
// complements), else as the paths of its decision diagram.
func (in *intersection) fromRegion(n string, o ref, act Action, dw, dl decision, bits int) plan {
	b := in.bdd()
	var cands [][]cond
	var runBoxes, denyBoxes [][]cond
	for _, x := range []struct {
		m *Model
		d decision
	}{{in.l, dl}, {in.w, dw}} {
		if x.d.kind != single {
			continue
		}
		if x.d.act.Runs() {
			runBoxes = append(runBoxes, x.d.boxes...)
		} else if x.m.def.Runs() {
			for _, box := range x.d.boxes {
				if len(box) == 1 && box[0].op != opMaskedEQ {
					denyBoxes = append(denyBoxes, []cond{complement(box[0])})
				}
			}
		}
	}
	base := append(runBoxes, denyBoxes...)
	cands = append(cands, base...)
	for i := range min(len(base), maxMerged) {
		for j := i + 1; j < min(len(base), maxMerged); j++ {
			if m, ok := in.merge(base[i], base[j], bits); ok {
				cands = append(cands, m)
			}
		}
	}
	u := bFalse
	var chosen [][]cond
	for _, c := range cands {
		cb := b.box(c, bits)
		if b.subset(cb, o) && !b.subset(cb, u) {
			chosen = append(chosen, c)
			u = b.or(u, cb)
		}
	}
	if u != o || mergesBadly(asRules(chosen), 64) {
		// The paths of the diagram: EQ and MASKED_EQ only, which
		// libseccomp merges right; the first MaxRulesPerSyscall of them
		// when there are more.
		cubes, all := b.cubes(o, MaxRulesPerSyscall)
		if len(cubes) == 0 {
			in.loss(n, fmt.Sprintf("denied: the arguments both profiles allow need more than %d rules", MaxRulesPerSyscall))
			return in.deny(n, dw, dl)
		}
		if !all {
			in.loss(n, fmt.Sprintf("allowed for fewer arguments than both profiles allow: the rest need more than %d rules", MaxRulesPerSyscall))
		}
		chosen = chosen[:0]
		for _, c := range cubes {
			chosen = append(chosen, c.conds(bits))
		}
	}
	rules := make([]outRule, 0, len(chosen))
	for _, c := range chosen {
		args := make([]specs.LinuxSeccompArg, len(c))
		for i, x := range c {
			args[i] = x.arg()
		}
		rules = append(rules, in.rule(act, args))
	}
	return plan{rules: rules}
}

func asRules(boxes [][]cond) []lrule {
	rs := make([]lrule, len(boxes))
	for i, b := range boxes {
		rs[i] = lrule{conds: b}
	}
	return rs
}

func complement(c cond) cond {
	switch c.op {
	case opEQ:
		c.op = opNE
	case opNE:
		c.op = opEQ
	case opLT:
		c.op = opGE
	case opGE:
		c.op = opLT
	case opLE:
		c.op = opGT
	case opGT:
		c.op = opLE
	}
	return c
}

// merge intersects two boxes into one when, on every argument both
// constrain, the intersection is one condition.
func (in *intersection) merge(x, y []cond, bits int) ([]cond, bool) {
	b := in.bdd()
	out := slices.Clone(x)
	for _, c := range y {
		i := slices.IndexFunc(out, func(o cond) bool { return o.idx == c.idx })
		if i < 0 {
			out = append(out, c)
			continue
		}
		if out[i] == c {
			continue
		}
		cx, cy := b.cond(out[i], bits), b.cond(c, bits)
		both := b.and(cx, cy)
		switch {
		case both == bFalse:
			return nil, false
		case both == cx:
		case both == cy:
			out[i] = c
		default:
			cubes, ok := b.cubes(both, 1)
			if !ok || len(cubes) != 1 {
				return nil, false
			}
			cs := cubes[0].conds(bits)
			if len(cs) != 1 {
				return nil, false
			}
			out[i] = cs[0]
		}
	}
	slices.SortFunc(out, func(a, b cond) int { return int(a.idx) - int(b.idx) })
	return out, true
}

// assemble writes the profile: the level's rules first, in its order, with
// the names that stay as the level has them; then the other rules, with the
// names of identical rules grouped.
func (in *intersection) assemble() *specs.LinuxSeccomp {
	w, l := in.w, in.l
	out := &specs.LinuxSeccomp{DefaultAction: in.defSrc, DefaultErrnoRet: cloneUint(in.defRet)}
	for _, a := range l.Src.Architectures {
		if w.hasArch(a) && a != specs.ArchX32 && !containsArch(out.Architectures, a) {
			out.Architectures = append(out.Architectures, a)
		}
	}
	out.Flags = in.flags()
	for _, r := range l.Src.Syscalls {
		var names []string
		for _, n := range r.Names {
			if p, ok := in.plans[n]; ok && p.asLevel && !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			continue
		}
		c := r
		c.Names = names
		c.ErrnoRet = cloneUint(r.ErrnoRet)
		c.Args = slices.Clone(r.Args)
		out.Syscalls = append(out.Syscalls, c)
	}
	groups := map[string]int{}
	for _, n := range in.order {
		for _, r := range in.plans[n].rules {
			k := r.key()
			if i, ok := groups[k]; ok {
				if !slices.Contains(out.Syscalls[i].Names, n) {
					out.Syscalls[i].Names = append(out.Syscalls[i].Names, n)
				}
				continue
			}
			groups[k] = len(out.Syscalls)
			out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{Names: []string{n}, Action: r.act, ErrnoRet: cloneUint(r.ret), Args: slices.Clone(r.args)})
		}
	}
	return out
}

// flags: SPEC_ALLOW only where both have it (no flags at all is how the
// level's profile gets it from runc), LOG where either has it.
func (in *intersection) flags() []specs.LinuxSeccompFlag {
	w, l := in.w, in.l
	spec := w.specAllow && l.specAllow
	log := w.log || l.log
	switch {
	case spec && !log:
		return nil
	case spec:
		return []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagLog}
	case log:
		return []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}
	}
	// An empty list is not written to config.json, and no flags at all
	// makes runc set SPEC_ALLOW: TSYNC, which runc accepts and ignores,
	// keeps the list non-empty.
	return []specs.LinuxSeccompFlag{flagTsync}
}

func cloneUint(p *uint) *uint {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
