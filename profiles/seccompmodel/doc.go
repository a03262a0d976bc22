// Package seccompmodel says what an OCI seccomp profile (runtime-spec
// v1.3.0) lets through once runc v1.5.2 and libseccomp 2.5 have loaded it,
// and builds the intersection of two profiles as a profile runc loads
// correctly. It is pure: no cgo, no libseccomp, no syscalls.
//
// # What a profile means, as runc loads it
//
// A profile is read the way the shim writes it (encoding/json with the
// runtime-spec struct tags) and runc loads it
// (libcontainer/specconv.SetupSeccomp, libcontainer/seccomp.InitSeccomp,
// patchbpf):
//
//   - A profile with no defaultAction and no syscalls is no filter at all
//     (runc treats it as seccomp disabled): everything runs.
//   - Each name of each rule becomes one libseccomp rule, in profile order.
//     A rule whose action equals the default action (errno values included)
//     is skipped. A name libseccomp does not know is skipped; since the same
//     name is skipped in every profile, the model keeps it by name and the
//     kernel's syscall, if any, falls to the default action.
//   - The conditions of a rule on different argument indexes are ANDed. When
//     one index has several conditions, runc adds every condition of the
//     rule as a separate rule (OR), whatever its index.
//   - MASKED_EQ compares (arg & value) with (valueTwo & value); other
//     operators compare arg with value as unsigned 64-bit numbers. On the
//     32-bit ABIs (x86, x32, arm, mips o32/n32, ppc, s390) libseccomp
//     compares the low 32 bits only. A MASKED_EQ with a zero mask (its low
//     half on 32-bit ABIs) is dropped, so a rule made only of such conditions
//     is unconditional.
//   - Several rules for one syscall with one action: any match applies it.
//     The first unconditional rule for a syscall decides it for every
//     argument, whatever comes before or after it (libseccomp clears or
//     drops the conditional ones). Conditional rules with different actions
//     are merged by libseccomp in ways that depend on order and on the
//     64-bit comparison trees, and may make runc fail: the model treats such
//     a syscall as ambiguous (any of those actions, or the default, for any
//     arguments). So it does with rules of one action that libseccomp 2.5.4
//     merges wrongly or loops on (see mergesBadly): LT, LE, GT or GE against
//     values above 32 bits in two rules, and rules with several conditions
//     mixed with operators other than EQ and MASKED_EQ.
//   - On the ABIs that multiplex socket and SysV IPC calls (x86, ppc, ppc64,
//     s390, s390x, mips o32) libseccomp also adds each rule of the socket
//     family (socket, bind, ...) to socketcall with its first argument
//     replaced by the call number, and likewise for ipc; the model does the
//     same.
//   - The native architecture is always in the filter; an architecture not
//     in it is killed. The model assumes libseccomp compiles each
//     architecture's part right; it does not for some x86_64 filters that
//     list x32 (see x32Why), which Judge therefore keeps only in the level's
//     own profile. Syscalls numbered above every syscall the profile
//     names fail with ENOSYS (runc's patch) unless the default action lets
//     syscalls run: a deny, like the default.
//   - errno and trace return codes are the low 16 bits of errnoRet (EPERM
//     when unset); SCMP_ACT_KILL is SCMP_ACT_KILL_THREAD.
//   - An empty flags list is not written by encoding/json, so runc sees no
//     flags and adds SECCOMP_FILTER_FLAG_SPEC_ALLOW where it is supported:
//     the model treats "no flags" as "SPEC_ALLOW".
//
// # Allowed, denied, maybe
//
// SCMP_ACT_ALLOW and SCMP_ACT_LOG run the syscall. SCMP_ACT_TRACE and
// SCMP_ACT_NOTIFY hand the decision to a tracer or an agent: they may run
// it. SCMP_ACT_ERRNO, SCMP_ACT_KILL* and SCMP_ACT_TRAP never run it. The
// model answers with the set of actions a syscall may get, so a caller can
// over-approximate what a profile may run (Outcome.MayRun) and
// under-approximate what it surely runs (Outcome.Runs).
//
// Judge keeps a workload's profile only when everything it may run the
// level's profile surely runs, and otherwise builds their intersection: the
// result surely runs only what both surely run, and it is checked with the
// same model before it is returned.
package seccompmodel
