package seccompmodel

import (
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// upper is the set of argument vectors for which the syscall may run.
func (m *Model) upper(b *bdd, d decision, bits int) ref {
	switch d.kind {
	case uniform:
		return truth(d.act.MayRun())
	case ambiguous:
		return truth(slices.ContainsFunc(d.acts, Action.MayRun))
	}
	in := b.boxes(d.boxes, bits)
	return b.or(b.and(in, truth(d.act.MayRun())), b.and(b.not(in), truth(m.def.MayRun())))
}

// lower is the set of argument vectors for which the syscall surely runs.
func (m *Model) lower(b *bdd, d decision, bits int) ref {
	switch d.kind {
	case uniform:
		return truth(d.act.Runs())
	case ambiguous:
		return truth(!slices.ContainsFunc(d.acts, func(a Action) bool { return !a.Runs() }))
	}
	in := b.boxes(d.boxes, bits)
	return b.or(b.and(in, truth(d.act.Runs())), b.and(b.not(in), truth(m.def.Runs())))
}

func truth(v bool) ref {
	if v {
		return bTrue
	}
	return bFalse
}

// exact reports whether what a decision may run is what it surely runs:
// no ambiguity, no tracer or agent.
func (m *Model) exact(d decision) bool {
	sure := func(a Action) bool { return a.Runs() || !a.MayRun() }
	switch d.kind {
	case uniform:
		return sure(d.act)
	case single:
		return sure(d.act) && sure(m.def)
	}
	return false
}

func (m *Model) runsNone(d decision) bool {
	switch d.kind {
	case uniform:
		return !d.act.MayRun()
	case single:
		return !d.act.MayRun() && !m.def.MayRun()
	}
	return !slices.ContainsFunc(d.acts, Action.MayRun)
}

func (m *Model) runsAll(d decision) bool {
	switch d.kind {
	case uniform:
		return d.act.Runs()
	case single:
		return d.act.Runs() && m.def.Runs()
	}
	return !slices.ContainsFunc(d.acts, func(a Action) bool { return !a.Runs() })
}

func equalRules(a, b []lrule) bool {
	return slices.EqualFunc(a, b, lrule.equal)
}

// Violation is something one filter may run that another does not surely
// run.
type Violation struct {
	// Arch and Name are the syscall; empty when the violation is about the
	// whole filter (its flags, an architecture, its default action).
	Arch specs.Arch
	Name string
	// Args are arguments for which it happens, when only some do.
	Args string
	// What describes a violation about the whole filter.
	What string
}

func (v *Violation) String() string {
	if v.Name == "" {
		return v.What
	}
	s := v.Name
	if v.Args != "" {
		s += " with " + v.Args
	}
	return s + " (" + string(v.Arch) + ")"
}

// Subset returns nil when everything x may run, y surely runs: for every
// architecture of x, every syscall and every argument. Otherwise it says
// one thing x may run that y does not surely run.
func Subset(x, y *Model) *Violation {
	var b *bdd
	return subset(x, y, &b)
}

func subset(x, y *Model, b **bdd) *Violation {
	if y.Disabled {
		return nil
	}
	if x.Disabled {
		return &Violation{What: "no filter (every syscall runs)"}
	}
	if x.specAllow && !y.specAllow {
		return &Violation{What: "flag " + string(specs.LinuxSeccompFlagSpecAllow) + " (no flags at all means runc sets it)"}
	}
	for _, a := range x.arches {
		if !y.hasArch(a) {
			return &Violation{What: "architecture " + string(a)}
		}
	}
	if x.def.MayRun() && !y.def.Runs() {
		return &Violation{What: "defaultAction " + string(x.Src.DefaultAction) + " (every syscall the profile does not name runs)"}
	}
	for _, a := range x.arches {
		bits := abis[a].bits
		check := func(n string) *Violation {
			dx, dy := x.decide(a, n), y.decide(a, n)
			if x.runsNone(dx) || y.runsAll(dy) {
				return nil
			}
			if x.def == y.def && dx.kind != ambiguous && x.exact(dx) && equalRules(dx.rules, dy.rules) {
				return nil
			}
			if *b == nil {
				*b = newBDD()
			}
			bd := *b
			diff := bd.and(x.upper(bd, dx, bits), bd.not(y.lower(bd, dy, bits)))
			if diff == bFalse {
				return nil
			}
			return &Violation{Arch: a, Name: n, Args: renderArgs(bd.witness(diff))}
		}
		for _, n := range x.names {
			if v := check(n); v != nil {
				return v
			}
		}
		for _, n := range y.names {
			if _, ok := x.rules[n]; ok {
				continue
			}
			if v := check(n); v != nil {
				return v
			}
		}
		if abis[a].mux {
			for _, n := range []string{"socketcall", "ipc"} {
				_, inX := x.rules[n]
				_, inY := y.rules[n]
				if !inX && !inY {
					if v := check(n); v != nil {
						return v
					}
				}
			}
		}
	}
	return nil
}

func renderArgs(args [6]uint64, constrained [6]bool) string {
	var parts []string
	for i, c := range constrained {
		if c {
			parts = append(parts, fmt.Sprintf("arg%d=%#x", i, args[i]))
		}
	}
	return strings.Join(parts, ",")
}
