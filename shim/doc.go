// Package shim is containerd-shim-hardened-v2: containerd's own runc shim,
// run in process, with Create and Exec intercepted to harden the OCI spec
// under the node policy before runc sees it.
//
// It registers the shim's TTRPC "task" plugin (instead of containerd's
// task/plugin package, which must not be imported: two registrations of the
// same plugin panic), wraps the runc shim manager so that hardened
// containers never share a shim process with plain runc ones, and leaves
// every other call (Start, Kill, Wait, Stats, OOM events, pod grouping) to
// the runc task service untouched.
package shim
