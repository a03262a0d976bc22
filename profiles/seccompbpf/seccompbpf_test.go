package seccompbpf

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
)

func TestBuiltinProfilesCompile(t *testing.T) {
	for _, name := range profiles.BuiltinNames() {
		l, _ := profiles.Builtin(name)
		for _, caps := range [][]string{l.Capabilities.Allow, {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE"}} {
			p, err := profiles.Seccomp(l, caps)
			if err != nil {
				t.Fatal(err)
			}
			newer, err := Validate(p)
			if err != nil {
				t.Errorf("level %s caps %v: %v", name, caps, err)
			}
			if len(newer) > 0 {
				t.Logf("level %s: libseccomp here lacks %v (runc skips them)", name, newer)
			}
		}
	}
}

func TestValidateFindsTypos(t *testing.T) {
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "wirte", "opn"}, Action: specs.ActAllow}}}
	_, err := Validate(p)
	if err == nil || !strings.Contains(err.Error(), "wirte, opn") {
		t.Errorf("Validate = %v, want the unknown names", err)
	}
	p.Syscalls[0].Names = []string{"read"}
	p.Architectures = []specs.Arch{"SCMP_ARCH_Z80"}
	if _, err := Validate(p); err == nil || !strings.Contains(err.Error(), "SCMP_ARCH_Z80") {
		t.Errorf("Validate = %v, want the unknown architecture", err)
	}
	p.Architectures = nil
	p.DefaultAction = "SCMP_ACT_MAYBE"
	if _, err := Validate(p); err == nil {
		t.Error("unknown default action accepted")
	}
}

func TestCompileWithArguments(t *testing.T) {
	for _, op := range []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual} {
		p := &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, ValueTwo: 8, Op: op}}},
			{Names: []string{"read"}, Action: specs.ActLog}, {Names: []string{"write"}, Action: specs.ActTrap},
			{Names: []string{"mount"}, Action: specs.ActErrno}, {Names: []string{"ptrace"}, Action: specs.ActTrace},
			{Names: []string{"kill"}, Action: specs.ActKillThread},
		}}
		if n, err := Compile(p); err != nil || n == 0 {
			t.Errorf("Compile(op %s) = %d, %v", op, n, err)
		}
	}
}
