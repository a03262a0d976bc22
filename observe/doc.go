// Package observe is the node's view of what the hardening denies while
// containers run. It reads the kernel's seccomp audit records
// (observe/audit), finds the container of each (observe/proctree for the
// processes that already exited, the container table for the rest),
// aggregates them so that a loop of denied calls makes one event per
// window instead of one per call, and hands the events to sinks: a line
// per event, containerd's event stream (topic /hardened/seccomp, what `ctr
// events` shows) and Prometheus counters.
//
// The container table comes from containerd: its hardened containers
// (runtime io.containerd.hardened.v2), their init and exec pids from the
// task events, their names from CRI's labels, their level and seccomp
// profile from the bundle the shim wrote.
//
// `hardenctl observe` runs it as the node's process (the DaemonSet's),
// `hardenctl events` for a person at the node.
package observe
