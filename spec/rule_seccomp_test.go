package spec

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
	"github.com/hardened-runtime/hardened/profiles/seccompmodel"
)

// critestChmodProfile is the profile Kubernetes' CRI validation suite
// (sigs.k8s.io/cri-tools v1.37.0, pkg/validate/security_context_linux.go,
// seccompBlockChmodProfile) gives a container, expecting `chmod 400 /` to
// fail with "Operation not permitted".
const critestChmodProfile = `{
     "defaultAction": "SCMP_ACT_ALLOW",
     "syscalls": [
         {
             "names": ["chmod", "fchmodat"],
             "action": "SCMP_ACT_ERRNO"
         }
     ]
}`

// Flags of clone(2) and values of socket(2) and personality(2).
const (
	cloneNewNS     = 0x00020000
	cloneNewUser   = 0x10000000
	cloneNewNet    = 0x40000000
	sigchld        = 17
	afInet         = 2
	afNetlink      = 16
	afVsock        = 40
	readImpliesExe = 0x0400000
	eperm          = 1
	enosysErrno    = 38
)

// call is a syscall the hardened profile must run or deny.
type call struct {
	name string
	args [6]uint64
	runs bool
	// errno, when not 0, is the errno a denied call must fail with.
	errno uint16
}

func outcome(t *testing.T, p *specs.LinuxSeccomp, c call) seccompmodel.Outcome {
	t.Helper()
	m, err := seccompmodel.Load(p, seccompmodel.Native())
	if err != nil {
		t.Fatalf("the hardened profile does not load: %v", err)
	}
	return m.Eval(seccompmodel.Native(), c.name, c.args)
}

// restrictedProfile is what `hardenctl profiles export-seccomp restricted`
// prints: the level's own profile, for its capability allowlist.
func restrictedProfile(t *testing.T) *specs.LinuxSeccomp {
	t.Helper()
	l := level(t, "restricted")
	p, err := profiles.Seccomp(l, l.Capabilities.Allow)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(p)
	var c specs.LinuxSeccomp
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// editRules changes the rules of the restricted profile that name name.
func editRules(t *testing.T, name string, f func(r *specs.LinuxSyscall)) *specs.LinuxSeccomp {
	p := restrictedProfile(t)
	for i := range p.Syscalls {
		if slices.Contains(p.Syscalls[i].Names, name) {
			f(&p.Syscalls[i])
		}
	}
	return p
}

// onlyRule replaces the level's rules for name with one rule.
func onlyRule(t *testing.T, r specs.LinuxSyscall) *specs.LinuxSeccomp {
	p := restrictedProfile(t)
	var keep []specs.LinuxSyscall
	for _, x := range p.Syscalls {
		x.Names = slices.DeleteFunc(slices.Clone(x.Names), func(n string) bool { return slices.Contains(r.Names, n) })
		if len(x.Names) > 0 {
			keep = append(keep, x)
		}
	}
	p.Syscalls = append(keep, r)
	return p
}

func TestSeccompJudgement(t *testing.T) {
	var critest specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(critestChmodProfile), &critest); err != nil {
		t.Fatal(err)
	}
	namespaces := []call{
		{name: "clone", args: [6]uint64{cloneNewUser | sigchld}},
		{name: "clone", args: [6]uint64{cloneNewNet | sigchld}},
		{name: "clone", args: [6]uint64{cloneNewNS | sigchld}},
		{name: "unshare", args: [6]uint64{cloneNewUser}, errno: eperm},
		{name: "clone3", errno: enosysErrno},
		{name: "clone", args: [6]uint64{sigchld}, runs: true},
	}
	for _, tc := range []struct {
		name    string
		profile func(t *testing.T) *specs.LinuxSeccomp
		// kept: the workload's profile stays as it is.
		kept bool
		// sameAsLevel: the result is the level's own profile.
		sameAsLevel bool
		calls       []call
	}{
		{name: "the level's own profile is kept", profile: restrictedProfile, kept: true, calls: namespaces},
		{name: "clone mask 0", profile: func(t *testing.T) *specs.LinuxSeccomp {
			return editRules(t, "clone", func(r *specs.LinuxSyscall) { r.Args[0].Value = 0 })
		}, sameAsLevel: true, calls: namespaces},
		{name: "clone unconditional", profile: func(t *testing.T) *specs.LinuxSeccomp {
			return onlyRule(t, specs.LinuxSyscall{Names: []string{"clone", "clone3", "unshare"}, Action: specs.ActAllow})
		}, sameAsLevel: true, calls: namespaces},
		{name: "two conditions on one argument are ORed by runc", profile: func(t *testing.T) *specs.LinuxSeccomp {
			return editRules(t, "clone", func(r *specs.LinuxSyscall) {
				r.Args = append(r.Args, specs.LinuxSeccompArg{Index: 0, Value: cloneNewUser | sigchld, Op: specs.OpEqualTo})
			})
		}, sameAsLevel: true, calls: namespaces},
		{name: "socket for any family", profile: func(t *testing.T) *specs.LinuxSeccomp {
			return onlyRule(t, specs.LinuxSyscall{Names: []string{"socket"}, Action: specs.ActAllow})
		}, sameAsLevel: true, calls: []call{
			{name: "socket", args: [6]uint64{afVsock, 1}},
			{name: "socket", args: [6]uint64{afInet, 1}, runs: true},
			{name: "socket", args: [6]uint64{afNetlink, 3}, runs: true},
		}},
		{name: "personality with any persona", profile: func(t *testing.T) *specs.LinuxSeccomp {
			return onlyRule(t, specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0, ValueTwo: 0, Op: specs.OpMaskedEqual}}})
		}, sameAsLevel: true, calls: []call{
			{name: "personality", args: [6]uint64{readImpliesExe}},
			{name: "personality", args: [6]uint64{0}, runs: true},
			{name: "personality", args: [6]uint64{0xffffffff}, runs: true},
		}},
		{name: "allow by default", profile: func(*testing.T) *specs.LinuxSeccomp {
			return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
		}, sameAsLevel: true, calls: append([]call{{name: "kexec_load", errno: enosysErrno}, {name: "mount", errno: eperm}, {name: "read", runs: true}}, namespaces...)},
		{name: "log by default", profile: func(*testing.T) *specs.LinuxSeccomp {
			return &specs.LinuxSeccomp{DefaultAction: specs.ActLog}
		}, calls: []call{{name: "kexec_load", errno: enosysErrno}, {name: "read", runs: true}, {name: "clone", args: [6]uint64{cloneNewUser}}}},
		{name: "trace by default", profile: func(*testing.T) *specs.LinuxSeccomp {
			return &specs.LinuxSeccomp{DefaultAction: specs.ActTrace}
		}, calls: []call{{name: "kexec_load", errno: enosysErrno}, {name: "read", errno: enosysErrno}}},
		{name: "a notify agent", profile: func(t *testing.T) *specs.LinuxSeccomp {
			p := onlyRule(t, specs.LinuxSyscall{Names: []string{"mount", "read"}, Action: specs.ActNotify})
			p.ListenerPath = "/run/agent.sock"
			return p
		}, calls: []call{{name: "mount", errno: eperm}, {name: "read"}, {name: "write", runs: true}}},
		{name: "compat architectures", profile: func(t *testing.T) *specs.LinuxSeccomp {
			p := restrictedProfile(t)
			p.Architectures = []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
			return p
		}, sameAsLevel: true, calls: namespaces},
		{name: "a trace rule where the level allows", profile: func(t *testing.T) *specs.LinuxSeccomp {
			return onlyRule(t, specs.LinuxSyscall{Names: []string{"getpid"}, Action: specs.ActTrace})
		}, kept: true},
		{name: "own kill default and allowlist", profile: func(*testing.T) *specs.LinuxSeccomp {
			return &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Architectures: []specs.Arch{specs.ArchX86_64},
				Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write", "exit_group"}, Action: specs.ActAllow}}}
		}, kept: true},
		{name: "critest chmod profile", profile: func(*testing.T) *specs.LinuxSeccomp { c := critest; return &c },
			calls: append([]call{
				{name: "chmod", errno: eperm}, {name: "fchmodat", errno: eperm},
				{name: "fchmod", runs: true}, {name: "read", runs: true},
				{name: "mount", errno: eperm}, {name: "kexec_load", errno: enosysErrno},
			}, namespaces...)},
		{name: "a workload's conditional deny", profile: func(*testing.T) *specs.LinuxSeccomp {
			return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"chmod"}, Action: specs.ActErrno,
				Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0o777, Op: specs.OpEqualTo}}}}}
		}, calls: []call{{name: "chmod", args: [6]uint64{0, 0o777}}, {name: "chmod", args: [6]uint64{0, 0o400}, runs: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := readSpec(t, "ctr-run")
			s.Linux.Seccomp = tc.profile(t)
			in, _ := json.Marshal(s.Linux.Seccomp)
			res, err := Harden(s, level(t, "restricted"), Inputs{Host: noAppArmorHost})
			if err != nil {
				t.Fatalf("Harden = %v", err)
			}
			if after, _ := json.Marshal(s.Linux.Seccomp); string(after) != string(in) {
				t.Error("Harden changed its input's profile")
			}
			out := res.Spec.Linux.Seccomp
			changed := slices.IndexFunc(res.Changes, func(c Change) bool { return c.Rule == "seccomp" && !c.Note && c.Field == "linux.seccomp" })
			if tc.kept {
				// Kept: the same profile, with the level's log flag added.
				kept := *out
				kept.Flags = s.Linux.Seccomp.Flags
				if changed >= 0 || string(mustJSON(t, &kept)) != string(in) {
					t.Fatalf("profile not kept: %+v", res.Changes)
				}
				if !slices.Contains(out.Flags, specs.LinuxSeccompFlagLog) {
					t.Errorf("kept profile's flags %v: want the level's log flag", out.Flags)
				}
			} else {
				if changed < 0 {
					t.Fatal("profile kept, want it intersected")
				}
				c := res.Changes[changed]
				if !strings.HasPrefix(c.From, "own profile (allows ") {
					t.Errorf("change from %q does not say what was looser", c.From)
				}
				want, _ := profiles.Seccomp(level(t, "restricted"), nil)
				if same := string(mustJSON(t, out)) == string(mustJSON(t, want)); same != tc.sameAsLevel {
					t.Errorf("result is the level's profile: %v, want %v (%s)", same, tc.sameAsLevel, c.To)
				}
				if out.ListenerPath != "" || slices.ContainsFunc(out.Syscalls, func(r specs.LinuxSyscall) bool {
					return r.Action == specs.ActNotify || r.Action == specs.ActTrace
				}) || out.DefaultAction != specs.ActErrno {
					t.Errorf("result hands decisions away or runs by default: %+v", out)
				}
			}
			for _, c := range tc.calls {
				o := outcome(t, out, c)
				switch {
				case c.runs && !o.Runs():
					t.Errorf("%s%v: %v, want it to run", c.name, c.args, o)
				case !c.runs && o.MayRun():
					t.Errorf("%s%v: %v, want it denied", c.name, c.args, o)
				case c.errno != 0 && !slices.Equal(o, seccompmodel.Outcome{{Kind: seccompmodel.Errno, Ret: c.errno}}):
					t.Errorf("%s%v: %v, want errno %d", c.name, c.args, o, c.errno)
				}
			}
			again, err := Harden(res.Spec, level(t, "restricted"), Inputs{Host: noAppArmorHost})
			if err != nil || string(mustJSON(t, again.Spec.Linux.Seccomp)) != string(mustJSON(t, out)) {
				t.Errorf("Harden(Harden(s)) changed the profile (%v)", err)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestSeccompRefusals(t *testing.T) {
	for _, tc := range []struct {
		name    string
		level   string
		profile func(t *testing.T) *specs.LinuxSeccomp
		want    []string
	}{
		{name: "clone mask 0 under onWeaker refuse", level: "refuse-weaker-seccomp", profile: func(t *testing.T) *specs.LinuxSeccomp {
			return editRules(t, "clone", func(r *specs.LinuxSyscall) { r.Args[0].Value = 0 })
		}, want: []string{"linux.seccomp=allows clone with arg0=0x", "(SCMP_ARCH_X86_64)", "seccomp.packs"}},
		{name: "socket for any family under onWeaker refuse", level: "refuse-weaker-seccomp", profile: func(t *testing.T) *specs.LinuxSeccomp {
			return onlyRule(t, specs.LinuxSyscall{Names: []string{"socket"}, Action: specs.ActAllow})
		}, want: []string{"allows socket with arg0=0x26 (SCMP_ARCH_X86_64)"}},
		{name: "an action runc does not know", profile: func(*testing.T) *specs.LinuxSeccomp {
			return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: "SCMP_ACT_MAYBE"}}}
		}, want: []string{`syscalls[0].action: "SCMP_ACT_MAYBE" is not a seccomp action runc knows`, "runc cannot load"}},
		{name: "an argument index above 5", profile: func(*testing.T) *specs.LinuxSeccomp {
			return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}
		}, want: []string{"index: 6 is above 5"}},
		{name: "notify for write", profile: func(*testing.T) *specs.LinuxSeccomp {
			return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"write"}, Action: specs.ActNotify}}}
		}, want: []string{"runc refuses SCMP_ACT_NOTIFY for write"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := readSpec(t, "ctr-run")
			s.Linux.Seccomp = tc.profile(t)
			_, err := Harden(s, testLevel(t, tc.level), Inputs{Host: noAppArmorHost})
			var refused *RefusedError
			if !errors.As(err, &refused) {
				t.Fatalf("Harden = %v, want a refusal", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestSeccompLossesRecorded: where runc's rules cannot express what both
// profiles allow, the result denies the rest and the change says so.
func TestSeccompLossesRecorded(t *testing.T) {
	s := readSpec(t, "ctr-run")
	s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"socket", "read", "write"}, Action: specs.ActAllow,
		Args: []specs.LinuxSeccompArg{{Index: 0, Value: 5, Op: specs.OpNotEqual}, {Index: 1, Value: 7, Op: specs.OpNotEqual}}}}}
	res, err := Harden(s, level(t, "restricted"), Inputs{Host: noAppArmorHost})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(res.Changes, func(c Change) bool { return c.Rule == "seccomp" })
	if i < 0 || !strings.Contains(res.Changes[i].Reason, "denied where runc's rules cannot express the intersection: socket: allowed for fewer arguments") {
		t.Fatalf("changes %+v, want the loss recorded", res.Changes)
	}
	out := res.Spec.Linux.Seccomp
	for _, c := range []call{{name: "socket", args: [6]uint64{1, 1}, runs: true}, {name: "socket", args: [6]uint64{1, 7}}, {name: "socket", args: [6]uint64{5, 1}},
		{name: "read", args: [6]uint64{3, 4}, runs: true}, {name: "read", args: [6]uint64{5, 4}}} {
		if o := outcome(t, out, c); o.Runs() != c.runs || (!c.runs && o.MayRun()) {
			t.Errorf("%s%v: %v, want runs=%v", c.name, c.args, o, c.runs)
		}
	}
}
