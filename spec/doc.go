// Package spec hardens OCI runtime specs. It is pure: a spec and a level go
// in, a hardened copy and the list of what changed (and why) come out. The
// input is never modified.
//
// Each control is one rule in its own file (rule_*.go), opening with a doc
// comment in the style of Kubernetes Pod Security Admission: the fields it
// restricts, the values it allows, and what it does otherwise (fix and record
// a Change, or refuse with a Violation that names the fix). The rules run in
// the order of the rules slice in harden.go; later rules see earlier rules'
// results (seccomp is computed after the capabilities are final).
//
// Invariants, proven by the tests: Harden is idempotent; it never loosens a
// stricter setting a workload already has; Check of a hardened spec reports
// nothing; malformed input is an error, never a panic.
package spec
