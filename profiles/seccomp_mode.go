package profiles

import (
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SeccompMode is what a level's seccomp filter does with a syscall outside
// its allowlist (seccomp.mode).
type SeccompMode string

const (
	// SeccompEnforce denies the syscall (ENOSYS, or EPERM for privileged
	// ones) and has the kernel log each denial: the filter carries
	// SECCOMP_FILTER_FLAG_LOG, so every denial is an audit record of type
	// 1326 (AUDIT_SECCOMP) that `hardenctl observe` attributes to its
	// container. A logged denial costs the process 12-28 µs more than a
	// silent one on the build machines (the kernel formats the record).
	SeccompEnforce SeccompMode = "enforce"
	// SeccompAudit is trial mode: the syscall runs and the kernel logs it
	// (SCMP_ACT_LOG), so a workload can run under the level and show what
	// enforce would deny. The expected probes (ExpectedProbes) keep failing
	// as under enforce: libc falls back from them, and letting them run
	// would only make the trial differ from production.
	SeccompAudit SeccompMode = "audit"
	// SeccompSilent denies like enforce without logging: for workloads that
	// hit a denied syscall in a hot path (glibc probes clone3 at every
	// thread start), where the record's cost matters more than seeing it.
	SeccompSilent SeccompMode = "silent"
)

// SeccompModes are the values seccomp.mode takes.
var SeccompModes = []SeccompMode{SeccompEnforce, SeccompAudit, SeccompSilent}

func joinModes(ms []SeccompMode) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = string(m)
	}
	return strings.Join(s, ", ")
}

// ExecAction says whether a level lets processes be exec'd into a running
// container (exec).
type ExecAction string

const (
	// ExecAllow lets execs run, hardened like the container's process.
	ExecAllow ExecAction = "allow"
	// ExecDeny refuses every exec into the container at the exec, with one
	// line that names the level. Exec probes (liveness, readiness) are
	// execs too: use HTTP, TCP or gRPC probes with it.
	ExecDeny ExecAction = "deny"
)

// ExpectedProbes are syscalls that programs call to find out whether the
// kernel has them and that the level's filter fails with ENOSYS by design:
// the caller falls back to an older call and works. Their denials are
// logged like any other but are no sign of a broken workload, and they are
// frequent, so observers count them apart from the real denials. The value
// says who probes and why it is denied.
var ExpectedProbes = map[string]string{
	// glibc >= 2.34 tries clone3 first for every pthread_create and
	// posix_spawn (so system() and most subprocess launchers) and falls back
	// to clone on ENOSYS. The filter cannot inspect clone3's flags (they are
	// behind a pointer), so it cannot tell a thread from a new namespace.
	"clone3": "glibc tries clone3 at every thread start and posix_spawn and falls back to clone; denied because seccomp cannot check its namespace flags",
}

// IsExpectedProbe reports whether a denial of syscall name is expected
// (see ExpectedProbes).
func IsExpectedProbe(name string) bool {
	_, ok := ExpectedProbes[name]
	return ok
}

// applySeccompMode turns the level's enforcing profile p into the one its
// mode installs: with the log flag for enforce, with every denial turned
// into SCMP_ACT_LOG for audit (but the expected probes'), unchanged for
// silent. p is the caller's own copy.
func applySeccompMode(p *specs.LinuxSeccomp, mode SeccompMode) {
	switch mode {
	case SeccompSilent:
		return
	case SeccompAudit:
		p.DefaultAction, p.DefaultErrnoRet = specs.ActLog, nil
		var rules []specs.LinuxSyscall
		for _, r := range p.Syscalls {
			if Permits(r.Action) {
				rules = append(rules, r)
				continue
			}
			// A denying rule: its expected probes stay as they are, the
			// rest only log. Rules that only log fold into the default.
			var keep []string
			for _, n := range r.Names {
				if IsExpectedProbe(n) {
					keep = append(keep, n)
				}
			}
			if len(keep) > 0 {
				r.Names = keep
				rules = append(rules, r)
			}
		}
		p.Syscalls = rules
	}
	// Any flag stops runc from adding SECCOMP_FILTER_FLAG_SPEC_ALLOW, which
	// it sets on a profile without flags (Docker's and runc's default: no
	// speculative store bypass mitigation forced on every seccomp'd
	// process). Keep it explicitly, so the log flag changes nothing else and
	// a workload's profile without flags is still no looser than the level's.
	for _, f := range []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagLog} {
		if !slices.Contains(p.Flags, f) {
			p.Flags = append(p.Flags, f)
		}
	}
}
