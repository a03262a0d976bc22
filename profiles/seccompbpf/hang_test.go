package seccompbpf

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles/seccompmodel"
)

// hangingProfile makes libseccomp 2.5.4's seccomp_rule_add loop forever:
// two rules for one syscall that share a first condition other than EQ or
// MASKED_EQ and differ in a second one (found by a random search, then
// shrunk). runc would never start such a container.
const hangingProfile = `{"defaultAction":"SCMP_ACT_TRAP","syscalls":[
 {"names":["connect"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2,"op":"SCMP_CMP_LT"},{"index":1,"value":7,"op":"SCMP_CMP_LE"}]},
 {"names":["connect"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2,"op":"SCMP_CMP_LT"},{"index":1,"value":6,"op":"SCMP_CMP_EQ"}]}]}`

// TestCompileChild compiles the profile in $SECCOMPBPF_PROFILE, for
// TestLibseccompHangs.
func TestCompileChild(t *testing.T) {
	data := os.Getenv("SECCOMPBPF_PROFILE")
	if data == "" {
		t.Skip("only as a child of TestLibseccompHangs")
	}
	var p specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(data), &p); err != nil {
		t.Fatal(err)
	}
	_, _ = CompileLikeRunc(&p)
}

// TestLibseccompHangs shows why the model never trusts several conditional
// rules of one syscall that mix conditions on more than one argument with
// operators other than EQ and MASKED_EQ: such a profile may hang libseccomp,
// and the model gives the syscall every action of its rules and the
// default. The intersection never writes such rules (it would not pass its
// own check).
func TestLibseccompHangs(t *testing.T) {
	var p specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(hangingProfile), &p); err != nil {
		t.Fatal(err)
	}
	m, err := seccompmodel.Load(&p, seccompmodel.Native())
	if err != nil {
		t.Fatal(err)
	}
	if !m.MayHangLibseccomp() {
		t.Error("the model does not see that libseccomp may loop on it")
	}
	o := m.Eval(specs.ArchX86_64, "connect", [6]uint64{1, 6})
	if !slices.Contains(o, seccompmodel.Action{Kind: seccompmodel.Trap}) || !o.MayRun() {
		t.Errorf("model: connect(1, 6) = %v, want allow or trap", o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCompileChild$")
	cmd.Env = append(os.Environ(), "SECCOMPBPF_PROFILE="+hangingProfile)
	err = cmd.Run()
	if ctx.Err() == nil {
		t.Logf("this libseccomp compiles it (%v): the defect is gone", err)
		return
	}
	t.Log("libseccomp loops on it (the defect)")
}
