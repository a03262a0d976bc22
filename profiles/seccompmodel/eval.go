package seccompmodel

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// decision is what a filter does with one syscall on one architecture.
type decision struct {
	kind decisionKind
	// act is the action of a uniform decision, or the action a single
	// decision applies where one of boxes matches (the default elsewhere).
	act Action
	// boxes are the conditions of the rules of a single decision, without
	// the ones libseccomp drops; each box is ANDed, the boxes are ORed.
	boxes [][]cond
	// rules are the rules behind the decision.
	rules []lrule
	// acts are the actions an ambiguous decision may take, the default
	// included.
	acts []Action
	// explicit: a rule (not the default action) decides a uniform
	// decision: rules[by].
	explicit bool
	by       int
}

type decisionKind uint8

const (
	uniform decisionKind = iota
	single
	ambiguous
)

// decide works out what libseccomp makes of the rules of one syscall.
func (m *Model) decide(arch specs.Arch, name string) decision {
	if m.Disabled {
		return decision{kind: uniform, act: Action{Kind: Allow}}
	}
	rs := m.rulesFor(arch, name)
	if len(rs) == 0 {
		return decision{kind: uniform, act: m.def}
	}
	bits := abis[arch].bits
	acts := []Action{}
	for i, r := range rs {
		if !slices.ContainsFunc(r.conds, func(c cond) bool { return !c.noop(bits) }) {
			// The first unconditional rule decides the syscall.
			return decision{kind: uniform, act: r.act, explicit: true, rules: rs, by: i}
		}
		if !slices.Contains(acts, r.act) {
			acts = append(acts, r.act)
		}
	}
	if len(acts) > 1 || mergesBadly(rs, bits) {
		if !slices.Contains(acts, m.def) {
			acts = append(acts, m.def)
		}
		return decision{kind: ambiguous, acts: acts, rules: rs}
	}
	d := decision{kind: single, act: acts[0], rules: rs, boxes: make([][]cond, 0, len(rs))}
	for _, r := range rs {
		box := make([]cond, 0, len(r.conds))
		for _, c := range r.conds {
			if !c.noop(bits) {
				box = append(box, c)
			}
		}
		d.boxes = append(d.boxes, box)
	}
	return d
}

// Outcome is the set of actions a filter may take for one syscall.
type Outcome []Action

// MayRun reports whether the syscall may run.
func (o Outcome) MayRun() bool { return slices.ContainsFunc(o, Action.MayRun) }

// Runs reports whether the syscall surely runs.
func (o Outcome) Runs() bool {
	return len(o) > 0 && !slices.ContainsFunc(o, func(a Action) bool { return !a.Runs() })
}

var enosys = Action{Kind: Errno, Ret: 38}

// Eval says what the filter does with one call: syscall name, architecture
// and the six argument registers. It evaluates the rules directly (no
// decision diagrams), as the reference the rest of the package is tested
// against.
func (m *Model) Eval(arch specs.Arch, name string, args [6]uint64) Outcome {
	if m.Disabled {
		return Outcome{{Kind: Allow}}
	}
	if !m.hasArch(arch) {
		return Outcome{{Kind: KillThread}} // libseccomp's bad-architecture action
	}
	rs := m.rulesFor(arch, name)
	bits := abis[arch].bits
	var acts Outcome
	for _, r := range rs {
		if !slices.ContainsFunc(r.conds, func(c cond) bool { return !c.noop(bits) }) {
			return Outcome{r.act}
		}
		if !slices.Contains(acts, r.act) {
			acts = append(acts, r.act)
		}
	}
	if len(acts) > 1 || mergesBadly(rs, bits) {
		if !slices.Contains(acts, m.def) {
			acts = append(acts, m.def)
		}
		return acts
	}
	for _, r := range rs {
		if matches(r.conds, args, bits) {
			return Outcome{r.act}
		}
	}
	if _, named := m.rules[name]; !named && !m.def.MayRun() && m.def != enosys {
		// runc's patch returns ENOSYS for syscalls above the highest one
		// the profile names.
		return Outcome{m.def, enosys}
	}
	return Outcome{m.def}
}

func matches(conds []cond, args [6]uint64, bits int) bool {
	for _, c := range conds {
		if !c.match(args[c.idx], bits) {
			return false
		}
	}
	return true
}

// mergesBadly reports whether libseccomp 2.5 may compile the conditional
// rules of one syscall into something else than their OR. Seen with
// libseccomp 2.5.4 (profiles/seccompbpf's tests find them again):
//   - on a 64-bit ABI it compares the two halves of an argument
//     separately; when two rules compare one argument with LT, LE, GT or GE
//     against values whose high half is not zero, the merged trees accept
//     and reject values neither rule says;
//   - two rules that share a first condition other than EQ or MASKED_EQ
//     and differ in a second one make seccomp_rule_add loop forever (runc
//     never starts the container).
//
// Such a syscall gets the rules' action or the default for any argument,
// as far as the model knows: several rules are exact only when the rules
// with more than one condition use EQ and MASKED_EQ alone, and no range
// compares a value above 32 bits on a 64-bit ABI.
func mergesBadly(rs []lrule, bits int) bool {
	wrong, loops := mergeDefects(rs, bits)
	return wrong || loops
}

// mergeDefects says whether libseccomp 2.5 may merge the conditional rules
// wrongly (64-bit ranges) and whether it may loop on them (several
// conditions mixed with operators other than EQ and MASKED_EQ).
func mergeDefects(rs []lrule, bits int) (wrong, loops bool) {
	if len(rs) < 2 {
		return false, false
	}
	multi, nonEq := false, false
	for _, r := range rs {
		multi = multi || len(r.conds) > 1
		for _, c := range r.conds {
			isRange := c.op == opLT || c.op == opLE || c.op == opGT || c.op == opGE
			wrong = wrong || (bits == 64 && isRange && c.a>>32 != 0)
			nonEq = nonEq || (c.op != opEQ && c.op != opMaskedEQ)
		}
	}
	return wrong, multi && nonEq
}

// mergedBadly returns a syscall whose rules libseccomp 2.5 may compile
// wrongly or loop on (mergesBadly), or nil. Such a profile is never kept:
// even where the level allows the syscall outright, runc could hang on it.
func (m *Model) mergedBadly() *Violation {
	if n, a := m.defective(true); n != "" {
		return &Violation{What: "rules for " + n + " that libseccomp 2.5 compiles wrongly or loops on (" + string(a) + ")"}
	}
	return nil
}

// MayHangLibseccomp reports whether libseccomp 2.5 may loop forever adding
// the profile's rules (so that runc never starts the container).
func (m *Model) MayHangLibseccomp() bool {
	n, _ := m.defective(false)
	return n != ""
}

// defective returns the first syscall whose rules libseccomp may loop on
// (or, with wrong, also compile wrongly).
func (m *Model) defective(wrong bool) (string, specs.Arch) {
	for _, a := range m.arches {
		bits := abis[a].bits
		for _, n := range append(slices.Clone(m.names), "socketcall", "ipc") {
			// libseccomp merges the conditional rules up to the first
			// unconditional one, which then replaces them; it drops the
			// rules after it.
			var conditional []lrule
			for _, r := range m.rulesFor(a, n) {
				if !slices.ContainsFunc(r.conds, func(c cond) bool { return !c.noop(bits) }) {
					break
				}
				conditional = append(conditional, r)
			}
			w, loops := mergeDefects(conditional, bits)
			if loops || (wrong && w) {
				return n, a
			}
		}
	}
	return "", ""
}
