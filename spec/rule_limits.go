package spec

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ruleLimits sets process limits the workload left unset.
//
// Restricted fields: linux.resources.pids.limit, process.rlimits
// (RLIMIT_NOFILE).
//
// Allowed values: any limit the workload set (a lower one is stricter; a
// higher one is the pod's resource decision).
//
// Otherwise: the level's limits.pids and limits.nofile are set, the latter
// no higher than the runtime's own hard limit (Host.MaxNoFile), and not
// for a container with its own user namespace (runc sets its rlimits from
// outside, which fails without CAP_SYS_RESOURCE; the container keeps the
// runtime's limit). RLIMIT_NPROC is never set: it counts processes per uid
// across the whole host, so every container running as 65534 would share
// one limit. The pids cgroup limits processes per container instead.
func ruleLimits(h *hardening) {
	lim := h.level.Limits
	if lim.Pids > 0 {
		r := h.spec.Linux.Resources
		if r.Pids == nil || r.Pids.Limit == nil || *r.Pids.Limit <= 0 {
			from := "unset"
			if r.Pids != nil && r.Pids.Limit != nil {
				from = itoa(*r.Pids.Limit)
			}
			n := lim.Pids
			r.Pids = &specs.LinuxPids{Limit: &n}
			h.change("linux.resources.pids.limit", from, itoa(n), "a fork bomb stops at the container's pids limit")
		}
	}
	if lim.NoFile > 0 {
		for _, r := range h.spec.Process.Rlimits {
			if r.Type == "RLIMIT_NOFILE" {
				return
			}
		}
		if h.ownNamespace(specs.UserNamespace) {
			// runc sets a user-namespaced process's rlimits from outside
			// (prlimit), which a runtime without CAP_SYS_RESOURCE may not
			// do: the container would not start (Kubernetes hostUsers:
			// false). It keeps the limit it inherits from the runtime.
			h.note("process.rlimits[RLIMIT_NOFILE]", "not set: the container has its own user namespace, where runc cannot always set it")
			return
		}
		n := lim.NoFile
		if max := h.in.Host.MaxNoFile; max > 0 && n > max {
			n = max // more would fail in runc without CAP_SYS_RESOURCE
		}
		h.spec.Process.Rlimits = append(h.spec.Process.Rlimits[:len(h.spec.Process.Rlimits):len(h.spec.Process.Rlimits)],
			specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: n, Soft: n})
		h.change("process.rlimits[RLIMIT_NOFILE]", "unset", itoa(n), "bounded open files per process")
	}
}
