// Package shim is containerd-shim-hardened-v2: containerd's own runc shim,
// run in process, with every container hardened under the node policy
// before runc sees it.
//
// Read it in this order:
//
//   - pipeline.go: the one pipeline every container goes through
//     (containerd's records → policy → signature → spec → bundle), and the
//     check of the task against its record before runc (checkTask);
//   - bundle.go: everything the shim writes to a bundle (config.json and
//     the record hardened.json) and how Create reads it back;
//   - manager.go: `shim start`, which runs the pipeline while the
//     long-running shim starts, in a socket directory of hardened shims
//     only (grouping never hands a container to a runc shim); stop.go:
//     `shim delete`;
//   - service.go: the runc task service with Create (record or pipeline),
//     Exec and Update (judged by the recorded level) intercepted;
//   - containerd.go, images.go, podclaim.go, policy.go, signature.go,
//     host.go: the pipeline's steps.
//
// It registers the shim's TTRPC "task" plugin (instead of containerd's
// task/plugin package, which must not be imported: two registrations of
// the same plugin panic) and leaves every other call (Start, Kill, Wait,
// Stats, OOM events, pod grouping) to the runc task service untouched.
package shim
