package spec

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
	"github.com/hardened-runtime/hardened/profiles/seccompmodel"
)

// fuzzNames are the syscalls the fuzzer's rules and calls use: the ones
// the level filters by argument, the multiplexed socket and IPC calls,
// syscalls only x86 has, privileged ones and plain ones.
var fuzzNames = []string{"clone", "clone3", "unshare", "socket", "personality", "chmod", "fchmodat", "read", "write",
	"getpid", "socketcall", "bind", "connect", "ipc", "semget", "shmat", "mount", "kexec_load", "ptrace", "chown32", "_llseek"}

var fuzzValues = []uint64{0, 1, 2, 8, 17, 38, 40, 41, 0x20000, 0x10000000, 0x40000000, 0x7e020000, 0x20008, 0xffffffff,
	1 << 32, 1<<32 | 2, 1 << 63, ^uint64(0)}

var fuzzActions = []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno, specs.ActKillProcess, specs.ActKill,
	specs.ActTrap, specs.ActLog, specs.ActTrace, specs.ActNotify, specs.ActKillThread}

var fuzzOps = []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
	specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual}

// fuzzProfile builds a workload's profile from a base (the level's own,
// containerd's CRI default, critest's, allow-all, an empty allowlist, a
// small kill allowlist) and a program of edits, as an attacker would.
func fuzzProfile(t *testing.T, base uint8, prog []byte) *specs.LinuxSeccomp {
	var p specs.LinuxSeccomp
	switch base % 6 {
	case 0:
		p = *restrictedProfile(t)
	case 1:
		p = *readSpec(t, "cri-container").Linux.Seccomp
	case 2:
		if err := json.Unmarshal([]byte(critestChmodProfile), &p); err != nil {
			t.Fatal(err)
		}
	case 3:
		p = specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	case 4:
		p = specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
	case 5:
		p = specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "exit_group", "clone", "socket"}, Action: specs.ActAllow}}}
	}
	next := func() int {
		if len(prog) == 0 {
			return 0
		}
		b := prog[0]
		prog = prog[1:]
		return int(b)
	}
	value := func() uint64 {
		b := next()
		if b >= 0xf0 && len(prog) >= 8 {
			v := binary.LittleEndian.Uint64(prog)
			prog = prog[8:]
			return v
		}
		return fuzzValues[b%len(fuzzValues)]
	}
	arg := func() specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: uint(next() % 3), Op: fuzzOps[next()%len(fuzzOps)], Value: value(), ValueTwo: value()}
	}
	errno := func() *uint {
		v := []uint{0, 1, 13, 38}[next()%4]
		return &v
	}
	rule := func() *specs.LinuxSyscall {
		if len(p.Syscalls) == 0 {
			return nil
		}
		return &p.Syscalls[next()%len(p.Syscalls)]
	}
	for len(prog) > 0 {
		switch next() % 12 {
		case 0:
			p.DefaultAction = fuzzActions[next()%len(fuzzActions)]
			if p.DefaultAction == specs.ActNotify {
				p.DefaultAction = specs.ActTrace
			}
		case 1, 2:
			r := specs.LinuxSyscall{Names: []string{fuzzNames[next()%len(fuzzNames)]}, Action: fuzzActions[next()%len(fuzzActions)]}
			if r.Action == specs.ActNotify && r.Names[0] == "write" {
				r.Action = specs.ActAllow
			}
			for range next() % 3 {
				r.Args = append(r.Args, arg())
			}
			p.Syscalls = slices.Insert(p.Syscalls, next()%(len(p.Syscalls)+1), r)
		case 3:
			if r := rule(); r != nil && len(r.Args) > 0 {
				a := &r.Args[next()%len(r.Args)]
				a.Value, a.ValueTwo, a.Op = value(), value(), fuzzOps[next()%len(fuzzOps)]
			}
		case 4:
			if len(p.Syscalls) > 0 {
				i := next() % len(p.Syscalls)
				p.Syscalls = slices.Delete(slices.Clone(p.Syscalls), i, i+1)
			}
		case 5:
			p.Architectures = append(slices.Clone(p.Architectures), []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64}[next()%4])
		case 6:
			p.Flags = [][]specs.LinuxSeccompFlag{nil, {specs.LinuxSeccompFlagSpecAllow}, {specs.LinuxSeccompFlagLog},
				{"SECCOMP_FILTER_FLAG_TSYNC"}, {specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow}}[next()%5]
		case 7:
			p.ListenerPath = "/run/agent.sock"
		case 8:
			if r := rule(); r != nil {
				r.Action = fuzzActions[next()%len(fuzzActions)]
				if r.Action == specs.ActNotify {
					r.Action = specs.ActTrace
				}
			}
		case 9:
			if r := rule(); r != nil {
				r.Args = append(slices.Clone(r.Args), arg())
			}
		case 10:
			if r := rule(); r != nil {
				r.ErrnoRet = errno()
			} else {
				p.DefaultErrnoRet = errno()
			}
		case 11:
			if r := rule(); r != nil {
				r.Names = append(slices.Clone(r.Names), fuzzNames[next()%len(fuzzNames)])
			}
		}
	}
	// Through JSON, as config.json carries it (no shared memory with the
	// bases either).
	data, _ := json.Marshal(&p)
	var c specs.LinuxSeccomp
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// FuzzSeccomp gives a container a workload's profile built by fuzzProfile
// under a built-in level, hardens it, and evaluates the level's profile,
// the workload's and the result on calls of the fuzzer's syscalls with
// arguments around the profiles' constants, from x86_64, x86 and x32. It
// fails when the result may run a call the level's profile does not surely
// run, or (unless the workload's profile was kept as it is) a call the
// workload's profile does not surely run; when Harden(Harden(s)) changes
// the profile; or when Harden refuses a profile runc would load.
func FuzzSeccomp(f *testing.F) {
	f.Add(uint8(0), uint8(0), []byte{}, uint64(1))
	f.Add(uint8(1), uint8(0), []byte{}, uint64(2))
	f.Add(uint8(2), uint8(1), []byte{}, uint64(3))
	f.Add(uint8(3), uint8(2), []byte{}, uint64(4))
	f.Add(uint8(5), uint8(0), []byte{}, uint64(5))
	// The level's own profile with clone's mask set to 0 (edit 3 on the
	// clone rule), socket for any family, personality with any persona.
	f.Add(uint8(0), uint8(0), []byte{3, 14, 0, 6, 0, 0}, uint64(6))
	f.Add(uint8(0), uint8(0), []byte{1, 3, 0, 0}, uint64(7))
	f.Add(uint8(0), uint8(1), []byte{1, 4, 0, 1, 0, 6, 0, 0}, uint64(8))
	// Notify with a listener, extra architectures, flags.
	f.Add(uint8(0), uint8(0), []byte{1, 15, 7, 0, 0, 7, 5, 1, 5, 2, 6, 2}, uint64(9))
	// A repeated argument index (ORed by runc) on clone.
	f.Add(uint8(0), uint8(0), []byte{9, 14, 0, 0, 9, 0}, uint64(10))
	f.Fuzz(func(t *testing.T, base, lvl uint8, prog []byte, seed uint64) {
		w := fuzzProfile(t, base, prog)
		names := profiles.BuiltinNames()
		l := level(t, names[int(lvl)%len(names)])
		s := readSpec(t, "ctr-run")
		s.Linux.Seccomp = w
		native := seccompmodel.Native()
		wm, werr := seccompmodel.Load(w, native)
		res, err := Harden(s, l, Inputs{Host: noAppArmorHost})
		var refused *RefusedError
		if errors.As(err, &refused) {
			if werr == nil {
				t.Fatalf("Harden refused a profile runc loads: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if werr != nil {
			t.Fatalf("Harden kept or intersected a profile runc does not load (%v)", werr)
		}
		out := res.Spec.Linux.Seccomp
		kept := string(mustJSON(t, out)) == string(mustJSON(t, w))
		want, err := profiles.Seccomp(l, res.Spec.Process.Capabilities.Bounding)
		if err != nil {
			t.Fatal(err)
		}
		lm, err := seccompmodel.Load(want, native)
		if err != nil {
			t.Fatal(err)
		}
		om, err := seccompmodel.Load(out, native)
		if err != nil {
			t.Fatalf("the result does not load: %v", err)
		}
		values := slices.Clone(fuzzValues)
		for _, p := range []*specs.LinuxSeccomp{w, want} {
			for _, r := range p.Syscalls {
				for _, a := range r.Args {
					values = append(values, a.Value, a.Value-1, a.Value+1, a.ValueTwo, ^a.Value, a.Value&a.ValueTwo, a.ValueTwo|^a.Value)
				}
			}
		}
		rng := rand.New(rand.NewPCG(seed, uint64(len(prog))))
		calls := append(slices.Clone(fuzzNames), "exit_group", "fchmod", "personality")
		for _, arch := range []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32} {
			for _, name := range calls {
				for range 24 {
					var args [6]uint64
					for j := range 3 {
						if rng.IntN(4) == 0 {
							args[j] = rng.Uint64()
						} else {
							args[j] = values[rng.IntN(len(values))]
						}
					}
					o := om.Eval(arch, name, args)
					if !o.MayRun() {
						continue
					}
					if lo := lm.Eval(arch, name, args); !lo.Runs() {
						t.Fatalf("%s %s%#x: the result %v, the level's profile %v (kept %v)\nworkload's:\n%s\nresult:\n%s",
							arch, name, args, o, lo, kept, mustJSON(t, w), mustJSON(t, out))
					}
					if wo := wm.Eval(arch, name, args); !kept && !wo.Runs() {
						t.Fatalf("%s %s%#x: the result %v, the workload's profile %v\nworkload's:\n%s\nresult:\n%s",
							arch, name, args, o, wo, mustJSON(t, w), mustJSON(t, out))
					}
				}
			}
		}
		again, err := Harden(res.Spec, l, Inputs{Host: noAppArmorHost})
		if err != nil || string(mustJSON(t, again.Spec.Linux.Seccomp)) != string(mustJSON(t, out)) {
			t.Fatalf("Harden(Harden(s)) changed the profile (%v)", err)
		}
	})
}
