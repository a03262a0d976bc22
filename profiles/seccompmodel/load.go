package seccompmodel

import (
	"fmt"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Kind is what a seccomp action does with a syscall.
type Kind uint8

// The kinds of action, as libseccomp has them (SCMP_ACT_KILL is KillThread).
const (
	Allow Kind = iota
	Log
	Trace
	Notify
	Errno
	KillThread
	KillProcess
	Trap
)

// Action is a libseccomp action: a kind and, for Errno and Trace, the
// 16-bit return code. Two actions are the same for libseccomp (and runc)
// exactly when they are equal.
type Action struct {
	Kind Kind
	Ret  uint16
}

// MayRun reports whether the syscall may run: the action lets it run, or
// hands the decision to a tracer or an agent that can let it run.
func (a Action) MayRun() bool { return a.Kind <= Notify }

// Runs reports whether the syscall surely runs.
func (a Action) Runs() bool { return a.Kind == Allow || a.Kind == Log }

func (a Action) String() string {
	switch a.Kind {
	case Allow:
		return "allow"
	case Log:
		return "log"
	case Trace:
		return fmt.Sprintf("trace(%d)", a.Ret)
	case Notify:
		return "notify"
	case Errno:
		return fmt.Sprintf("errno(%d)", a.Ret)
	case KillThread:
		return "kill-thread"
	case KillProcess:
		return "kill-process"
	}
	return "trap"
}

var actionKinds = map[specs.LinuxSeccompAction]Kind{
	specs.ActKill:        KillThread,
	specs.ActKillThread:  KillThread,
	specs.ActKillProcess: KillProcess,
	specs.ActTrap:        Trap,
	specs.ActErrno:       Errno,
	specs.ActTrace:       Trace,
	specs.ActAllow:       Allow,
	specs.ActLog:         Log,
	specs.ActNotify:      Notify,
}

// parseAction converts an OCI action as runc does (getAction): errno and
// trace return errnoRet, or EPERM when it is unset, truncated to 16 bits.
func parseAction(a specs.LinuxSeccompAction, ret *uint) (Action, error) {
	k, ok := actionKinds[a]
	if !ok {
		return Action{}, fmt.Errorf("%q is not a seccomp action runc knows", a)
	}
	act := Action{Kind: k}
	if k == Errno || k == Trace {
		act.Ret = 1 // EPERM, runc's default
		if ret != nil {
			act.Ret = uint16(*ret)
		}
	}
	return act, nil
}

// op is a comparison operator.
type op uint8

const (
	opNE op = iota
	opLT
	opLE
	opEQ
	opGE
	opGT
	opMaskedEQ
)

var ops = map[specs.LinuxSeccompOperator]op{
	specs.OpNotEqual: opNE, specs.OpLessThan: opLT, specs.OpLessEqual: opLE, specs.OpEqualTo: opEQ,
	specs.OpGreaterEqual: opGE, specs.OpGreaterThan: opGT, specs.OpMaskedEqual: opMaskedEQ,
}

var opNames = [...]specs.LinuxSeccompOperator{specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo, specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual}

// cond is one condition on one argument: for opMaskedEQ, (arg & a) == (b & a);
// otherwise arg <op> a.
type cond struct {
	idx  uint8
	op   op
	a, b uint64
}

// noop reports whether libseccomp drops the condition on an ABI of the
// given width: a MASKED_EQ whose mask is zero there is always true.
func (c cond) noop(bits int) bool {
	return c.op == opMaskedEQ && c.a&widthMask(bits) == 0
}

func widthMask(bits int) uint64 {
	if bits == 32 {
		return 0xffffffff
	}
	return ^uint64(0)
}

// match evaluates the condition as libseccomp compiles it for an ABI of the
// given width.
func (c cond) match(arg uint64, bits int) bool {
	m := widthMask(bits)
	x, v := arg&m, c.a&m
	switch c.op {
	case opNE:
		return x != v
	case opLT:
		return x < v
	case opLE:
		return x <= v
	case opEQ:
		return x == v
	case opGE:
		return x >= v
	case opGT:
		return x > v
	}
	return x&v == c.b&v
}

func (c cond) arg() specs.LinuxSeccompArg {
	return specs.LinuxSeccompArg{Index: uint(c.idx), Op: opNames[c.op], Value: c.a, ValueTwo: c.b}
}

// lrule is one libseccomp rule as runc adds it: one syscall, one action,
// the ANDed conditions.
type lrule struct {
	act   Action
	conds []cond
	// src is the OCI rule it came from, so that it can be written back with
	// the same spelling (SCMP_ACT_KILL, an unset errnoRet).
	src *specs.LinuxSyscall
}

func (r lrule) equal(o lrule) bool {
	if r.act != o.act || len(r.conds) != len(o.conds) {
		return false
	}
	for i := range r.conds {
		if r.conds[i] != o.conds[i] {
			return false
		}
	}
	return true
}

// Model is a profile as runc loads it.
type Model struct {
	// Src is the profile; the model keeps pointers into it.
	Src *specs.LinuxSeccomp
	// Disabled: runc installs no filter (no defaultAction, no syscalls).
	Disabled bool
	def      Action
	native   specs.Arch
	// arches are the architectures of the filter: the listed ones and the
	// native one, without duplicates.
	arches []specs.Arch
	// specAllow: SECCOMP_FILTER_FLAG_SPEC_ALLOW may be set (listed, or no
	// flags at all so that runc adds it). log: SECCOMP_FILTER_FLAG_LOG.
	specAllow, log bool
	// rules are runc's rules per syscall name, in profile order, without
	// the ones runc skips because their action is the default's.
	rules map[string][]lrule
	// names are the names the profile mentions, in order of first mention.
	names []string
	// notify: some rule hands decisions to a user-space agent.
	notify bool
}

// Names are the syscall names the profile mentions, in order.
func (m *Model) Names() []string { return m.names }

// abi is what libseccomp does differently per architecture: the width of
// argument comparisons, and whether socket and IPC calls are multiplexed.
type abi struct {
	bits int
	mux  bool
}

// abis are runc v1.5.2's architectures (seccomp.ConvertStringToArch) with
// libseccomp 2.5's width and multiplexing for each.
var abis = map[specs.Arch]abi{
	specs.ArchX86:         {32, true},
	specs.ArchX86_64:      {64, false},
	specs.ArchX32:         {32, false},
	specs.ArchARM:         {32, false},
	specs.ArchAARCH64:     {64, false},
	specs.ArchMIPS:        {32, true},
	specs.ArchMIPS64:      {64, false},
	specs.ArchMIPS64N32:   {32, false},
	specs.ArchMIPSEL:      {32, true},
	specs.ArchMIPSEL64:    {64, false},
	specs.ArchMIPSEL64N32: {32, false},
	specs.ArchPPC:         {32, true},
	specs.ArchPPC64:       {64, true},
	specs.ArchPPC64LE:     {64, true},
	specs.ArchS390:        {32, true},
	specs.ArchS390X:       {64, true},
	specs.ArchRISCV64:     {64, false},
	specs.ArchLOONGARCH64: {64, false},
}

// Native is the seccomp name of the architecture this program runs on, the
// one libseccomp always puts in a filter.
func Native() specs.Arch {
	return map[string]specs.Arch{
		"amd64": specs.ArchX86_64, "arm64": specs.ArchAARCH64, "386": specs.ArchX86, "arm": specs.ArchARM,
		"ppc64le": specs.ArchPPC64LE, "ppc64": specs.ArchPPC64, "s390x": specs.ArchS390X, "riscv64": specs.ArchRISCV64,
		"mips64le": specs.ArchMIPSEL64, "mips64": specs.ArchMIPS64, "mipsle": specs.ArchMIPSEL, "mips": specs.ArchMIPS,
		"loong64": specs.ArchLOONGARCH64,
	}[runtime.GOARCH]
}

const (
	flagTsync = specs.LinuxSeccompFlag("SECCOMP_FILTER_FLAG_TSYNC")
)

// InvalidError says why runc would not load a profile.
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string { return e.Err.Error() }
func (e *InvalidError) Unwrap() error { return e.Err }

// Load reads a profile as runc v1.5.2 would load it on a machine whose
// native architecture is native. It fails, with an *InvalidError, where
// runc would fail to load it (unknown action, operator, architecture or
// flag, an argument index above 5, an empty syscall name, notify as the
// default or for write).
func Load(p *specs.LinuxSeccomp, native specs.Arch) (*Model, error) {
	m, err := load(p, native)
	if err != nil {
		return nil, &InvalidError{err}
	}
	return m, nil
}

func load(p *specs.LinuxSeccomp, native specs.Arch) (*Model, error) {
	m := &Model{Src: p, native: native}
	if p == nil || (p.DefaultAction == "" && len(p.Syscalls) == 0) {
		m.Disabled = true
		m.def = Action{Kind: Allow}
		m.specAllow = true
		m.arches = []specs.Arch{native}
		return m, nil
	}
	def, err := parseAction(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("defaultAction: %w", err)
	}
	if def.Kind == Notify {
		return nil, fmt.Errorf("defaultAction: runc refuses %s as the default action", specs.ActNotify)
	}
	m.def = def
	m.arches = []specs.Arch{native}
	for _, a := range p.Architectures {
		if _, ok := abis[a]; !ok {
			return nil, fmt.Errorf("architectures: %q is not an architecture runc knows", a)
		}
		if !containsArch(m.arches, a) {
			m.arches = append(m.arches, a)
		}
	}
	m.specAllow = len(p.Flags) == 0
	for _, f := range p.Flags {
		switch f {
		case specs.LinuxSeccompFlagSpecAllow:
			m.specAllow = true
		case specs.LinuxSeccompFlagLog:
			m.log = true
		case specs.LinuxSeccompFlagWaitKillableRecv, flagTsync:
		default:
			return nil, fmt.Errorf("flags: %q is not a seccomp flag runc knows", f)
		}
	}
	m.rules = make(map[string][]lrule, 64)
	for i := range p.Syscalls {
		r := &p.Syscalls[i]
		act, err := parseAction(r.Action, r.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("syscalls[%d].action: %w", i, err)
		}
		conds := make([]cond, 0, len(r.Args))
		var perIndex [6]int
		split := false
		for j, a := range r.Args {
			o, ok := ops[a.Op]
			if !ok {
				return nil, fmt.Errorf("syscalls[%d].args[%d].op: %q is not a seccomp operator runc knows", i, j, a.Op)
			}
			if a.Index > 5 && act != def {
				return nil, fmt.Errorf("syscalls[%d].args[%d].index: %d is above 5", i, j, a.Index)
			}
			if a.Index <= 5 {
				perIndex[a.Index]++
				split = split || perIndex[a.Index] > 1
			}
			conds = append(conds, cond{idx: uint8(min(a.Index, 5)), op: o, a: a.Value, b: a.ValueTwo})
		}
		if act.Kind == Notify {
			m.notify = true
		}
		for _, n := range r.Names {
			if n == "" {
				return nil, fmt.Errorf("syscalls[%d].names: an empty name", i)
			}
			if act.Kind == Notify && n == "write" {
				return nil, fmt.Errorf("syscalls[%d]: runc refuses %s for write", i, specs.ActNotify)
			}
			if _, seen := m.rules[n]; !seen {
				m.names = append(m.names, n)
				m.rules[n] = nil
			}
			if act == def {
				continue // runc: "This rule is redundant, silently skip it"
			}
			switch {
			case len(conds) == 0:
				m.rules[n] = append(m.rules[n], lrule{act: act, src: r})
			case split:
				// runc: "If two or more arguments have the same condition,
				// revert to old behavior, adding each condition as a
				// separate rule".
				for _, c := range conds {
					m.rules[n] = append(m.rules[n], lrule{act: act, conds: []cond{c}, src: r})
				}
			default:
				m.rules[n] = append(m.rules[n], lrule{act: act, conds: conds, src: r})
			}
		}
	}
	return m, nil
}

func containsArch(as []specs.Arch, a specs.Arch) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

// hasArch reports whether a is in the filter.
func (m *Model) hasArch(a specs.Arch) bool { return containsArch(m.arches, a) }

// socketcalls and ipcs are the calls libseccomp multiplexes, with the call
// number it puts in the first argument of socketcall or ipc.
var (
	socketcalls = map[string]uint64{
		"socket": 1, "bind": 2, "connect": 3, "listen": 4, "accept": 5, "getsockname": 6, "getpeername": 7,
		"socketpair": 8, "send": 9, "recv": 10, "sendto": 11, "recvfrom": 12, "shutdown": 13, "setsockopt": 14,
		"getsockopt": 15, "sendmsg": 16, "recvmsg": 17, "accept4": 18, "recvmmsg": 19, "sendmmsg": 20,
	}
	ipcs = map[string]uint64{
		"semop": 1, "semget": 2, "semctl": 3, "semtimedop": 4, "msgsnd": 11, "msgrcv": 12, "msgget": 13,
		"msgctl": 14, "shmat": 21, "shmdt": 22, "shmget": 23, "shmctl": 24,
	}
)

// rulesFor returns the libseccomp rules of a syscall on an architecture:
// on the multiplexing ABIs, socketcall and ipc also get the rules of their
// families with the first argument replaced by the call number.
func (m *Model) rulesFor(arch specs.Arch, name string) []lrule {
	own := m.rules[name]
	if !abis[arch].mux || (name != "socketcall" && name != "ipc") {
		return own
	}
	family := socketcalls
	if name == "ipc" {
		family = ipcs
	}
	rs := own
	cloned := false
	for _, n := range m.names {
		k, ok := family[n]
		if !ok {
			continue
		}
		for _, r := range m.rules[n] {
			conds := []cond{{idx: 0, op: opEQ, a: k}}
			for _, c := range r.conds {
				if c.idx != 0 {
					conds = append(conds, c)
				}
			}
			if !cloned {
				rs = append([]lrule(nil), own...)
				cloned = true
			}
			rs = append(rs, lrule{act: r.act, conds: conds, src: r.src})
		}
	}
	return rs
}
