package profiles

import (
	"slices"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestSeccompModes(t *testing.T) {
	r, _ := Builtin(Restricted)
	if r.Seccomp.Mode != SeccompEnforce || r.Exec != ExecAllow {
		t.Fatalf("restricted: seccomp.mode %q exec %q, want enforce, allow", r.Seccomp.Mode, r.Exec)
	}
	enforce, _ := Seccomp(r, nil)
	if !slices.Contains(enforce.Flags, specs.LinuxSeccompFlagLog) {
		t.Errorf("enforce: flags %v, want %s so that denials are logged", enforce.Flags, specs.LinuxSeccompFlagLog)
	}

	silentLevel := r.Clone()
	silentLevel.Seccomp.Mode = SeccompSilent
	silent, _ := Seccomp(silentLevel, nil)
	if slices.Contains(silent.Flags, specs.LinuxSeccompFlagLog) {
		t.Errorf("silent: flags %v, want no log flag", silent.Flags)
	}
	if silent.DefaultAction != enforce.DefaultAction || len(silent.Syscalls) != len(enforce.Syscalls) {
		t.Error("silent denies differently from enforce")
	}

	trialLevel := r.Clone()
	trialLevel.Seccomp.Mode = SeccompAudit
	trial, _ := Seccomp(trialLevel, nil)
	if trial.DefaultAction != specs.ActLog || trial.DefaultErrnoRet != nil {
		t.Errorf("audit: default %s %v, want SCMP_ACT_LOG", trial.DefaultAction, trial.DefaultErrnoRet)
	}
	if !slices.Contains(trial.Flags, specs.LinuxSeccompFlagLog) {
		t.Errorf("audit: flags %v, want the log flag (for the expected probes)", trial.Flags)
	}
	for _, rule := range trial.Syscalls {
		if Permits(rule.Action) {
			continue
		}
		for _, n := range rule.Names {
			if !IsExpectedProbe(n) {
				t.Errorf("audit: %s still denied (%s)", n, rule.Action)
			}
		}
		if slices.Contains(rule.Names, "clone3") && (rule.ErrnoRet == nil || *rule.ErrnoRet != uint(syscall.ENOSYS)) {
			t.Errorf("audit: clone3 rule %+v, want ENOSYS as under enforce", rule)
		}
	}
	denied := func(p *specs.LinuxSeccomp, name string) bool {
		for _, rule := range p.Syscalls {
			if slices.Contains(rule.Names, name) {
				return !Permits(rule.Action)
			}
		}
		return !Permits(p.DefaultAction)
	}
	if !denied(trial, "clone3") || denied(trial, "unshare") || denied(trial, "kexec_load") {
		t.Error("audit: want clone3 denied, unshare and kexec_load logged")
	}
	if !denied(enforce, "unshare") {
		t.Error("enforce: unshare not denied")
	}
	// The allowlist, and so the judgement of a workload's own profile, is
	// the same in every mode.
	es, ea := AllowedSyscalls(enforce)
	ts, ta := AllowedSyscalls(trial)
	for n := range es {
		if !ts[n] || ea[n] != ta[n] {
			t.Errorf("audit allowlist differs at %s", n)
		}
	}
	// Each mode is cached apart; the cached enforce profile is untouched.
	if again, _ := Seccomp(r, nil); again != enforce || again.DefaultAction != specs.ActErrno {
		t.Error("modes share a cache entry")
	}
}

func TestSeccompModeAndExecValidation(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"name: x\nseccomp:\n  mode: log\n", `seccomp.mode: "log" is not one of enforce, audit, silent`},
		{"name: x\nexec: never\n", `exec: "never" is not one of allow, deny`},
	} {
		if _, err := DecodeLevel([]byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeLevel(%q) = %v, want %q", tc.yaml, err, tc.want)
		}
	}
	l, err := DecodeLevel([]byte("name: x\nseccomp:\n  mode: audit\nexec: deny\n"))
	if err != nil || l.Seccomp.Mode != SeccompAudit || l.Exec != ExecDeny {
		t.Errorf("DecodeLevel = %+v, %v", l, err)
	}
	d, _ := DecodeLevel([]byte("name: x\n"))
	if d.Seccomp.Mode != SeccompEnforce || d.Exec != ExecAllow {
		t.Errorf("defaults: seccomp.mode %q exec %q", d.Seccomp.Mode, d.Exec)
	}
}

func TestExpectedProbes(t *testing.T) {
	if !IsExpectedProbe("clone3") || IsExpectedProbe("ptrace") {
		t.Error("IsExpectedProbe")
	}
	for n, why := range ExpectedProbes {
		if why == "" {
			t.Errorf("expected probe %s has no reason", n)
		}
	}
}
