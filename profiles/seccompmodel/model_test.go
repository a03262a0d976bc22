package seccompmodel

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func u(v uint) *uint { return &v }

func loadModel(t *testing.T, p *specs.LinuxSeccomp) *Model {
	t.Helper()
	m, err := Load(p, specs.ArchX86_64)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func restricted(t *testing.T, compat bool) *specs.LinuxSeccomp {
	t.Helper()
	l, _ := profiles.Builtin("restricted")
	c := *l
	c.Seccomp.CompatArches = compat
	p, err := profiles.Seccomp(&c, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	allow      = Action{Kind: Allow}
	logAct     = Action{Kind: Log}
	trap       = Action{Kind: Trap}
	killThread = Action{Kind: KillThread}
	eperm      = Action{Kind: Errno, Ret: 1}
	enosysAct  = Action{Kind: Errno, Ret: 38}
)

func arg(i uint, op specs.LinuxSeccompOperator, v uint64, v2 ...uint64) specs.LinuxSeccompArg {
	a := specs.LinuxSeccompArg{Index: i, Op: op, Value: v}
	if len(v2) > 0 {
		a.ValueTwo = v2[0]
	}
	return a
}

func TestLoadRefusesWhatRuncRefuses(t *testing.T) {
	for _, tc := range []struct {
		p    specs.LinuxSeccomp
		want string
	}{
		{specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"}, `defaultAction: "SCMP_ACT_NOPE" is not a seccomp action`},
		{specs.LinuxSeccomp{DefaultAction: specs.ActNotify}, "runc refuses SCMP_ACT_NOTIFY as the default"},
		{specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{"SCMP_ARCH_Z80"}}, `"SCMP_ARCH_Z80" is not an architecture`},
		{specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FAST"}}, "is not a seccomp flag"},
		{specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: "x"}}}, "syscalls[0].action"},
		{specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Op: "SCMP_CMP_ABOUT"}}}}}, "syscalls[0].args[0].op"},
		{specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}, "index: 6 is above 5"},
		{specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{""}, Action: specs.ActAllow}}}, "an empty name"},
		{specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"write"}, Action: specs.ActNotify}}}, "for write"},
	} {
		if _, err := Load(&tc.p, specs.ArchX86_64); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%+v) = %v, want %q", tc.p, err, tc.want)
		}
	}
	// runc skips a rule equal to the default before it looks at its
	// conditions: an index above 5 there is no error.
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno,
		Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}
	if _, err := Load(p, specs.ArchX86_64); err != nil {
		t.Errorf("Load(a skipped rule with index 6) = %v", err)
	}
}

func TestEval(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    specs.LinuxSeccomp
		arch specs.Arch
		call string
		args [6]uint64
		want Outcome
	}{
		{name: "no filter", p: specs.LinuxSeccomp{Architectures: []specs.Arch{specs.ArchX86}}, call: "mount", want: Outcome{allow}},
		{name: "default, unnamed: the ENOSYS patch may answer", p: specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess},
			call: "mount", want: Outcome{{Kind: KillProcess}, enosysAct}},
		{name: "default, named", p: specs.LinuxSeccomp{DefaultAction: specs.ActTrap, Syscalls: []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActTrap}}},
			call: "mount", want: Outcome{trap}},
		{name: "a foreign architecture is killed", p: specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, arch: specs.ArchX86, call: "read", want: Outcome{killThread}},
		{name: "errno is EPERM unless set, 16 bits", p: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mount"}, Action: specs.ActErrno}, {Names: []string{"chmod"}, Action: specs.ActErrno, ErrnoRet: u(65536 + 13)}}},
			call: "chmod", want: Outcome{{Kind: Errno, Ret: 13}}},
		{name: "SCMP_ACT_KILL is kill-thread", p: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActKill}}},
			call: "mount", want: Outcome{killThread}},
		{name: "conditions on different indexes are ANDed", p: specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 1), arg(1, specs.OpEqualTo, 2)}}}},
			call: "clone", args: [6]uint64{1, 3}, want: Outcome{eperm}},
		{name: "a repeated index ORs every condition", p: specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 1), arg(0, specs.OpEqualTo, 9), arg(1, specs.OpEqualTo, 2)}}}},
			call: "clone", args: [6]uint64{5, 2}, want: Outcome{allow}},
		{name: "a zero mask is no condition", p: specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpMaskedEqual, 0, 7)}}}},
			call: "clone", args: [6]uint64{0x10000000}, want: Outcome{allow}},
		{name: "masked compares the masked datum", p: specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpMaskedEqual, 0xf0, 0xff)}}}},
			call: "clone", args: [6]uint64{0xf3}, want: Outcome{allow}},
		{name: "the first unconditional rule wins over later ones", p: specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"clone"}, Action: specs.ActTrap}, {Names: []string{"clone"}, Action: specs.ActAllow}}},
			call: "clone", want: Outcome{trap}},
		{name: "an unconditional rule wins over earlier conditional ones", p: specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 1)}}, {Names: []string{"clone"}, Action: specs.ActTrap}}},
			call: "clone", args: [6]uint64{1}, want: Outcome{trap}},
		{name: "a rule equal to the default is skipped", p: specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 1)}}, {Names: []string{"clone"}, Action: specs.ActErrno, ErrnoRet: u(1)}}},
			call: "clone", args: [6]uint64{1}, want: Outcome{allow}},
		{name: "conditional rules with different actions are ambiguous", p: specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 1)}},
			{Names: []string{"clone"}, Action: specs.ActTrap, Args: []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 2)}}}},
			call: "clone", args: [6]uint64{3}, want: Outcome{allow, trap, eperm}},
		{name: "two 64-bit ranges merge badly", p: specs.LinuxSeccomp{DefaultAction: specs.ActTrap, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"connect"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpGreaterThan, 0x5d5b93c0f3ce68b1), arg(0, specs.OpLessEqual, 0x100000002)}}}},
			call: "connect", args: [6]uint64{0x1ffffffff}, want: Outcome{allow, trap}},
		{name: "32-bit ABIs compare the low half", p: specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86}, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 0x100000008)}}}},
			arch: specs.ArchX86, call: "personality", args: [6]uint64{8}, want: Outcome{allow}},
		{name: "x86 adds socket's rules to socketcall", p: specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86}, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 2)}}}},
			arch: specs.ArchX86, call: "socketcall", args: [6]uint64{1}, want: Outcome{allow}},
		{name: "and shmat's to ipc", p: specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86}, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"shmat"}, Action: specs.ActTrap}}},
			arch: specs.ArchX86, call: "ipc", args: [6]uint64{21}, want: Outcome{trap}},
		{name: "not on x86_64", p: specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86}, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"shmat"}, Action: specs.ActTrap}}},
			call: "ipc", args: [6]uint64{21}, want: Outcome{eperm, enosysAct}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arch := tc.arch
			if arch == "" {
				arch = specs.ArchX86_64
			}
			got := loadModel(t, &tc.p).Eval(arch, tc.call, tc.args)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Eval(%s %s%#x) = %v, want %v", arch, tc.call, tc.args, got, tc.want)
			}
		})
	}
}

// evalBDD follows a diagram to the answer for one argument vector.
func evalBDD(b *bdd, r ref, args [6]uint64) bool {
	for r != bTrue && r != bFalse {
		n := b.nodes[r]
		idx, bit := n.v/64, 63-n.v%64
		if args[idx]&(1<<bit) != 0 {
			r = n.hi
		} else {
			r = n.lo
		}
	}
	return r == bTrue
}

// TestDiagramsMatchConditions checks the decision diagram of every
// operator against the condition's own arithmetic.
func TestDiagramsMatchConditions(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	b := newBDD()
	values := []uint64{0, 1, 2, 7, 8, 0xffffffff, 1 << 32, 1<<32 | 1, 1 << 63, ^uint64(0), ^uint64(0) - 1}
	pick := func() uint64 {
		if rng.IntN(3) == 0 {
			return rng.Uint64()
		}
		return values[rng.IntN(len(values))]
	}
	for range 3000 {
		c := cond{idx: uint8(rng.IntN(6)), op: op(rng.IntN(7)), a: pick(), b: pick()}
		bits := []int{32, 64}[rng.IntN(2)]
		r := b.cond(c, bits)
		for range 20 {
			var args [6]uint64
			args[c.idx] = pick()
			if rng.IntN(2) == 0 {
				args[c.idx] = c.a + uint64(rng.IntN(3)) - 1
			}
			if got, want := evalBDD(b, r, args), c.match(args[c.idx], bits); got != want {
				t.Fatalf("cond %+v on %d bits, arg %#x: diagram %v, arithmetic %v", c, bits, args[c.idx], got, want)
			}
		}
	}
	x := b.or(b.cond(cond{op: opEQ, a: 5}, 64), b.cond(cond{idx: 1, op: opLT, a: 9}, 64))
	cubes, ok := b.cubes(x, 200)
	if !ok || len(cubes) < 2 {
		t.Fatalf("cubes = %v, %v", len(cubes), ok)
	}
	if cs, ok := b.cubes(x, 1); ok || len(cs) != 1 {
		t.Error("cubes ignored its limit")
	}
	args, constrained := b.witness(b.and(x, b.not(b.cond(cond{op: opEQ, a: 5}, 64))))
	if args[0] == 5 || !(args[1] < 9) || !constrained[1] {
		t.Errorf("witness = %#x %v", args, constrained)
	}
}

func TestSubsetSaysWhatIsLooser(t *testing.T) {
	level := restricted(t, false)
	lm := loadModel(t, level)
	for _, tc := range []struct {
		name string
		p    specs.LinuxSeccomp
		want string
	}{
		{"no filter", specs.LinuxSeccomp{}, "no filter"},
		{"SPEC_ALLOW where the level has explicit flags", specs.LinuxSeccomp{DefaultAction: specs.ActErrno}, ""},
		{"an architecture", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86}}, "architecture SCMP_ARCH_X86"},
		{"the default", specs.LinuxSeccomp{DefaultAction: specs.ActLog}, "defaultAction SCMP_ACT_LOG"},
		{"a syscall", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"kexec_load"}, Action: specs.ActAllow}}},
			"kexec_load (SCMP_ARCH_X86_64)"},
		{"a syscall's arguments", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"personality"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{arg(0, specs.OpLessEqual, 9)}}}}, "personality with arg0=0x1 (SCMP_ARCH_X86_64)"},
		{"a tracer", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActTrace}}},
			"mount (SCMP_ARCH_X86_64)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Subset(loadModel(t, &tc.p), lm)
			switch {
			case tc.want == "" && v != nil:
				t.Errorf("Subset = %v, want none", v)
			case tc.want != "" && (v == nil || !strings.Contains(v.String(), tc.want)):
				t.Errorf("Subset = %v, want %q", v, tc.want)
			}
		})
	}
	explicit := *level
	explicit.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}
	if v := Subset(loadModel(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}), loadModel(t, &explicit)); v == nil || !strings.Contains(v.String(), "SPEC_ALLOW") {
		t.Errorf("Subset(no flags, explicit flags) = %v, want SPEC_ALLOW", v)
	}
	if v := Subset(loadModel(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}), loadModel(t, &specs.LinuxSeccomp{})); v != nil {
		t.Errorf("Subset(anything, no filter) = %v", v)
	}
}

// judged intersects p with the restricted level's profile and checks what
// Judge promises: the result runs nothing either does not surely run, and
// it is kept when judged again.
func judged(t *testing.T, p, level *specs.LinuxSeccomp) *Verdict {
	t.Helper()
	v, err := Judge(p, level)
	if err != nil {
		t.Fatal(err)
	}
	if v.Keep {
		return v
	}
	om := loadModel(t, v.Result)
	if x := Subset(om, loadModel(t, level)); x != nil {
		t.Fatalf("the result runs %s, the level's profile does not", x)
	}
	if x := Subset(om, loadModel(t, p)); x != nil {
		t.Fatalf("the result runs %s, the workload's profile does not", x)
	}
	again, err := Judge(v.Result, level)
	if err != nil || !again.Keep {
		t.Fatalf("Judge(result) = %+v, %v, want it kept", again, err)
	}
	return v
}

func rulesFor(p *specs.LinuxSeccomp, name string) []specs.LinuxSyscall {
	var rs []specs.LinuxSyscall
	for _, r := range p.Syscalls {
		if slices.Contains(r.Names, name) {
			r.Names = []string{name}
			rs = append(rs, r)
		}
	}
	return rs
}

func TestIntersect(t *testing.T) {
	level := restricted(t, false)
	t.Run("a conditional deny becomes its complement", func(t *testing.T) {
		v := judged(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"chmod"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{arg(1, specs.OpEqualTo, 0o777)}}}}, level)
		want := []specs.LinuxSyscall{{Names: []string{"chmod"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(1, specs.OpNotEqual, 0o777)}}}
		if diff := cmp.Diff(want, rulesFor(v.Result, "chmod")); diff != "" {
			t.Error(diff)
		}
	})
	t.Run("ranges become masked rules", func(t *testing.T) {
		v := judged(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"socket"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{arg(0, specs.OpGreaterEqual, 10)}}}}, level)
		m := loadModel(t, v.Result)
		for fam := uint64(0); fam < 64; fam++ {
			want := fam >= 10 && fam != 38 && fam != 40 && fam <= 45
			if got := m.Eval(specs.ArchX86_64, "socket", [6]uint64{fam}).Runs(); got != want {
				t.Errorf("socket(%d) runs %v, want %v", fam, got, want)
			}
		}
		if len(v.Losses) > 0 {
			t.Errorf("losses %v", v.Losses)
		}
	})
	t.Run("the level's rules where they are what both allow", func(t *testing.T) {
		v := judged(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"personality"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{arg(0, specs.OpLessEqual, 0x20008)}}}}, level)
		if got := rulesFor(v.Result, "personality"); len(got) != 4 || got[0].Args[0].Op != specs.OpEqualTo {
			t.Errorf("personality rules %+v, want the level's four", got)
		}
	})
	t.Run("merged masks", func(t *testing.T) {
		v := judged(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"clone"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{arg(0, specs.OpMaskedEqual, 3, 1)}}}}, level)
		want := []specs.LinuxSyscall{{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpMaskedEqual, 0x7e020003, 1)}}}
		if diff := cmp.Diff(want, rulesFor(v.Result, "clone")); diff != "" {
			t.Error(diff)
		}
	})
	t.Run("more than the rules allow: a part, and the loss is said", func(t *testing.T) {
		v := judged(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"socket"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{arg(0, specs.OpNotEqual, 5), arg(1, specs.OpNotEqual, 7)}}}}, level)
		if len(v.Losses) != 1 || !strings.Contains(v.Losses[0], "socket: allowed for fewer arguments") {
			t.Errorf("losses %v", v.Losses)
		}
		m := loadModel(t, v.Result)
		if !m.Eval(specs.ArchX86_64, "socket", [6]uint64{1, 1}).Runs() {
			t.Error("socket(1, 1) denied; the part the rules express should run")
		}
		if m.Eval(specs.ArchX86_64, "socket", [6]uint64{1, 7}).MayRun() || m.Eval(specs.ArchX86_64, "socket", [6]uint64{5, 1}).MayRun() {
			t.Error("socket runs what the workload's profile denies")
		}
	})
	t.Run("log where the workload logs", func(t *testing.T) {
		v := judged(t, &specs.LinuxSeccomp{DefaultAction: specs.ActLog}, level)
		m := loadModel(t, v.Result)
		if got := m.Eval(specs.ArchX86_64, "read", [6]uint64{}); !slices.Equal(got, Outcome{logAct}) {
			t.Errorf("read: %v, want log", got)
		}
		if got := m.Eval(specs.ArchX86_64, "clone", [6]uint64{0x11}); !slices.Equal(got, Outcome{logAct}) {
			t.Errorf("clone: %v, want log", got)
		}
	})
	t.Run("the workload's kill default stays, the level's EPERM too", func(t *testing.T) {
		v := judged(t, &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "mount", "kexec_load"}, Action: specs.ActAllow}}}, level)
		m := loadModel(t, v.Result)
		if v.Result.DefaultAction != specs.ActKillProcess {
			t.Errorf("default %s", v.Result.DefaultAction)
		}
		for call, want := range map[string]Outcome{"read": {allow}, "mount": {eperm}, "kexec_load": {{Kind: KillProcess}, enosysAct}} {
			if got := m.Eval(specs.ArchX86_64, call, [6]uint64{}); !slices.Equal(got, want) {
				t.Errorf("%s: %v, want %v", call, got, want)
			}
		}
	})
	t.Run("socketcall on x86 is denied where its rules would be ambiguous", func(t *testing.T) {
		// A level that allows socketcall for some arguments only.
		l := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: u(38), Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"socketcall"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(1, specs.OpEqualTo, 5)}},
				{Names: []string{"socket", "read"}, Action: specs.ActAllow}}}
		w := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86}, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"socketcall"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(1, specs.OpEqualTo, 5)}},
			{Names: []string{"socket"}, Action: specs.ActErrno, ErrnoRet: u(13)},
			{Names: []string{"read"}, Action: specs.ActAllow}}}
		v := judged(t, w, l)
		m := loadModel(t, v.Result)
		if got := m.Eval(specs.ArchX86, "socketcall", [6]uint64{1, 5}); got.MayRun() {
			t.Errorf("socketcall(1, 5) on x86: %v, want it denied", got)
		}
		if !slices.ContainsFunc(v.Losses, func(l string) bool { return strings.HasPrefix(l, "socketcall: denied") }) {
			t.Errorf("losses %v", v.Losses)
		}
	})
	t.Run("flags", func(t *testing.T) {
		for _, tc := range []struct {
			w, l, want []specs.LinuxSeccompFlag
		}{
			{nil, nil, nil},
			{[]specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}, nil, []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}},
			{[]specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagLog}, nil,
				[]specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagLog}},
			{[]specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}, nil, []specs.LinuxSeccompFlag{flagTsync}},
			{nil, []specs.LinuxSeccompFlag{flagTsync}, []specs.LinuxSeccompFlag{flagTsync}},
		} {
			l := *level
			l.Flags = tc.l
			w := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: tc.w}
			v := judged(t, w, &l)
			if !slices.Equal(v.Result.Flags, tc.want) {
				t.Errorf("flags %v and %v: %v, want %v", tc.w, tc.l, v.Result.Flags, tc.want)
			}
		}
	})
}

// TestNeverKeepsWhatLibseccompLoopsOn: two rules for connect that make
// libseccomp 2.5.4 loop forever (profiles/seccompbpf TestLibseccompHangs),
// under a level that allows connect outright: not kept, and the result
// has no such rules.
func TestNeverKeepsWhatLibseccompLoopsOn(t *testing.T) {
	level := restricted(t, false)
	w := cloneProfile(level)
	w.Syscalls = append([]specs.LinuxSyscall{
		{Names: []string{"connect"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpLessThan, 2), arg(1, specs.OpLessEqual, 7)}},
		{Names: []string{"connect"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{arg(0, specs.OpLessThan, 2), arg(1, specs.OpEqualTo, 6)}},
	}, w.Syscalls...)
	v := judged(t, w, level)
	if v.Keep || !strings.Contains(v.Looser.String(), "rules for connect that libseccomp 2.5 compiles wrongly or loops on") {
		t.Fatalf("Judge = %+v (%v)", v, v.Looser)
	}
	if x := loadModel(t, v.Result).mergedBadly(); x != nil {
		t.Errorf("the result has %v", x)
	}
}

func TestJudgeCaches(t *testing.T) {
	level := restricted(t, false)
	w := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"chmod"}, Action: specs.ActErrno}}}
	v1, _ := Judge(w, level)
	v2, _ := Judge(cloneProfile(w), level)
	if v1 != v2 {
		t.Error("the same profile was judged twice")
	}
	if v, _ := Judge(cloneProfile(v1.Result), level); !v.Keep {
		t.Error("the intersection is not kept")
	}
	for i := range maxCache + 10 {
		Judge(&specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: u(uint(i))}, level)
	}
	if len(cache.m) > maxCache {
		t.Errorf("cache holds %d entries", len(cache.m))
	}
	big := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Action: specs.ActAllow}}}
	for i := range maxCachedSize + 1 {
		big.Syscalls[0].Names = append(big.Syscalls[0].Names, fmt.Sprint("x", i))
	}
	before := len(cache.m)
	if v, err := Judge(big, level); err != nil || v.Keep {
		t.Errorf("Judge(big) = %+v, %v", v, err)
	}
	if len(cache.m) > before {
		t.Error("an outsized profile was cached")
	}
	if _, err := Judge(&specs.LinuxSeccomp{DefaultAction: "nope"}, level); err == nil {
		t.Error("an invalid profile judged")
	}
	if v, err := Judge(nil, level); err != nil || !v.SameAsLevel || v.Result != level {
		t.Errorf("Judge(nil) = %+v, %v", v, err)
	}
}

// TestGolden judges the profiles in testdata/*.json under the restricted
// level and compares the verdicts with testdata/*.golden.json (-update
// rewrites them).
func TestGolden(t *testing.T) {
	level := restricted(t, false)
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, file := range files {
		if strings.HasSuffix(file, ".golden.json") {
			continue
		}
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var w specs.LinuxSeccomp
			if err := json.Unmarshal(data, &w); err != nil {
				t.Fatal(err)
			}
			v := judged(t, &w, level)
			got := struct {
				Keep        bool                `json:"keep"`
				Looser      string              `json:"looser,omitempty"`
				SameAsLevel bool                `json:"sameAsLevel,omitempty"`
				Losses      []string            `json:"losses,omitempty"`
				Result      *specs.LinuxSeccomp `json:"result,omitempty"`
			}{Keep: v.Keep, SameAsLevel: v.SameAsLevel, Losses: v.Losses}
			if v.Looser != nil {
				got.Looser = v.Looser.String()
			}
			if !v.Keep && !v.SameAsLevel {
				got.Result = v.Result
			}
			out, _ := json.MarshalIndent(got, "", "  ")
			out = append(out, '\n')
			golden := strings.TrimSuffix(file, ".json") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if diff := cmp.Diff(string(want), string(out)); diff != "" {
				t.Errorf("Judge(%s) differs from %s (-want +got):\n%s", file, golden, diff)
			}
		})
	}
}

// BenchmarkJudgeCRI judges containerd's CRI RuntimeDefault profile under
// the restricted level: after the first call, a hash and a comparison.
func BenchmarkJudgeCRI(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "containerd-runtime-default.json"))
	if err != nil {
		b.Fatal(err)
	}
	var w specs.LinuxSeccomp
	if err := json.Unmarshal(data, &w); err != nil {
		b.Fatal(err)
	}
	l, _ := profiles.Builtin("restricted")
	level, _ := profiles.Seccomp(l, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Judge(&w, level); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJudgeCold judges it without the cache: the model's work.
func BenchmarkJudgeCold(b *testing.B) {
	data, _ := os.ReadFile(filepath.Join("testdata", "containerd-runtime-default.json"))
	var w specs.LinuxSeccomp
	_ = json.Unmarshal(data, &w)
	l, _ := profiles.Builtin("restricted")
	level, _ := profiles.Seccomp(l, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := judge(&w, level); err != nil {
			b.Fatal(err)
		}
	}
}
