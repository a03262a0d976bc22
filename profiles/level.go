package profiles

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Action says what a level does with a spec that violates a control.
type Action string

const (
	// Fix rewrites the spec so that it complies, and records the change.
	Fix Action = "fix"
	// Refuse stops the container with an error that names the rule and the fix.
	Refuse Action = "refuse"
)

// Level is one named set of hardening controls. Every field has a safe
// meaning when zero except Name; the built-in levels spell every control out.
type Level struct {
	// Name is what policies and annotations use to select the level.
	Name string `json:"name" yaml:"name"`
	// Description is one line for `hardenctl profiles list`.
	Description string `json:"description,omitempty" yaml:"description,omitempty"`

	User         UserControl       `json:"user" yaml:"user"`
	Capabilities CapabilityControl `json:"capabilities" yaml:"capabilities"`
	Seccomp      SeccompControl    `json:"seccomp" yaml:"seccomp"`
	AppArmor     AppArmorControl   `json:"apparmor" yaml:"apparmor"`
	Rootfs       RootfsControl     `json:"rootfs" yaml:"rootfs"`
	Mounts       MountControl      `json:"mounts" yaml:"mounts"`
	Namespaces   NamespaceControl  `json:"namespaces" yaml:"namespaces"`
	Devices      DeviceControl     `json:"devices" yaml:"devices"`
	Sysctls      SysctlControl     `json:"sysctls" yaml:"sysctls"`
	Limits       Limits            `json:"limits" yaml:"limits"`
	Hooks        HookControl       `json:"hooks" yaml:"hooks"`
	Scheduling   SchedulingControl `json:"scheduling" yaml:"scheduling"`
	Cgroups      CgroupControl     `json:"cgroups" yaml:"cgroups"`
	Checkpoint   CheckpointControl `json:"checkpoint" yaml:"checkpoint"`
	// Exec says whether processes may be exec'd into a running container
	// (kubectl exec, crictl exec, ctr task exec, and exec probes, which are
	// execs too): allow or deny. Every exec is recorded either way. Default
	// allow.
	Exec ExecAction `json:"exec,omitempty" yaml:"exec,omitempty"`
	// AllowPrivileged lets a container that asks for everything (all
	// capabilities, no masked paths) past the privileged rule. The other
	// controls still apply. Default false.
	AllowPrivileged bool `json:"allowPrivileged,omitempty" yaml:"allowPrivileged,omitempty"`
}

// UserControl decides which user the process runs as.
type UserControl struct {
	// RunAsNonRoot requires uid and gid other than 0. Default false.
	RunAsNonRoot bool `json:"runAsNonRoot" yaml:"runAsNonRoot"`
	// UID and GID replace a root user when OnRoot is fix. 65534 (nobody) in
	// the built-in levels.
	UID uint32 `json:"uid" yaml:"uid"`
	GID uint32 `json:"gid" yaml:"gid"`
	// OnRoot is fix (run as UID:GID instead) or refuse. Default fix.
	OnRoot Action `json:"onRoot,omitempty" yaml:"onRoot,omitempty"`
	// Namespace says where a root process (a root image, or a workload
	// that asks for uid 0) runs:
	//   - auto: as root inside a user namespace of its own, whose ids map
	//     to a range of host ids that the runtime reserves for its pod (or
	//     for the container alone) and that no other pod and no host user
	//     has, with its root filesystem seen through an idmapped mount;
	//     where the node or the container cannot have one (no idmapped
	//     mounts, a pod's sandbox, a shared PID namespace, ...) it runs as
	//     OnRoot says, and the reason is recorded;
	//   - required: the same, but refused where it cannot have one;
	//   - off: as OnRoot says (UID:GID with runAsNonRoot).
	// A pod that brings its own user namespace (Kubernetes hostUsers:
	// false) keeps root inside it with auto and required, and is moved to
	// UID:GID with off. Inside, the process keeps only
	// capabilities.inUserNamespace. Default off; auto in restricted.
	Namespace UserNamespaceMode `json:"namespace,omitempty" yaml:"namespace,omitempty"`
}

// UserNamespaceMode is user.namespace: auto, required or off.
type UserNamespaceMode string

// User namespace modes.
const (
	UserNamespaceAuto     UserNamespaceMode = "auto"
	UserNamespaceRequired UserNamespaceMode = "required"
	UserNamespaceOff      UserNamespaceMode = "off"
)

// UsesUserNamespace reports whether root runs in a user namespace of its
// own under the control (auto or required).
func (u UserControl) UsesUserNamespace() bool {
	return u.Namespace == UserNamespaceAuto || u.Namespace == UserNamespaceRequired
}

// CapabilityControl bounds all five capability sets.
type CapabilityControl struct {
	// Allow lists the capabilities a container may keep, as CAP_* names.
	// Every set is reduced to it. Empty means none.
	Allow []string `json:"allow" yaml:"allow"`
	// Add and Drop edit Allow where a level is written: a policy level
	// that extends another adds capabilities to the base level's Allow
	// with Add and removes some with Drop. They are folded into Allow when
	// the level is built (FoldCapabilities): a built level has none.
	Add  []string `json:"add,omitempty" yaml:"add,omitempty"`
	Drop []string `json:"drop,omitempty" yaml:"drop,omitempty"`
	// OnRequest is what happens to a capability outside both Allow and the
	// runtime's default set (that is, one the workload asked for): refuse, or
	// fix (drop it). Capabilities of the default set outside Allow are always
	// dropped. Default refuse.
	OnRequest Action `json:"onRequest,omitempty" yaml:"onRequest,omitempty"`
	// InUserNamespace lists the capabilities a process keeps, instead of
	// Allow, when it runs as root in a user namespace of its own (see
	// user.namespace): they act only inside that namespace, on the ids it
	// maps (its own files and processes), never on the host's.
	// CAP_NET_RAW is kept only where the network namespace is the
	// container's own too (created with its user namespace: nothing but
	// loopback), never in a pod's network. Only capabilities of the
	// runtime's default set (RuntimeDefaultCapabilities). Default none.
	InUserNamespace []string `json:"inUserNamespace,omitempty" yaml:"inUserNamespace,omitempty"`
}

// FoldCapabilities applies Add and Drop to Allow (Allow, then each added
// capability it lacks, without the dropped ones) and empties them.
func (l *Level) FoldCapabilities() {
	c := &l.Capabilities
	if len(c.Add) == 0 && len(c.Drop) == 0 {
		return
	}
	allow := slices.Clone(c.Allow)
	for _, a := range c.Add {
		if !slices.Contains(allow, a) {
			allow = append(allow, a)
		}
	}
	allow = slices.DeleteFunc(allow, func(a string) bool { return slices.Contains(c.Drop, a) })
	if allow == nil {
		allow = []string{}
	}
	c.Allow, c.Add, c.Drop = allow, nil, nil
}

// SeccompControl picks the seccomp profile.
type SeccompControl struct {
	// Profile is runtime-default (moby's RuntimeDefault) or strict (that minus
	// the families in StrictRemoved). Default runtime-default.
	Profile string `json:"profile,omitempty" yaml:"profile,omitempty"`
	// CompatArches keeps the 32-bit compat ABIs (x86 and x32 on x86_64) in the
	// filter, for images that run 32-bit binaries. Default false: only the
	// native ABI, which is faster to compile and blocks the compat syscall
	// surface.
	CompatArches bool `json:"compatArches,omitempty" yaml:"compatArches,omitempty"`
	// Packs adds opt-in syscall families (see Packs) to the allowlist.
	Packs []string `json:"packs,omitempty" yaml:"packs,omitempty"`
	// OnWeaker is what happens to a workload's own profile that is not at
	// least as strict as the level's: fix (use the level's) or refuse.
	// "Unconfined" counts as weaker. Default fix.
	OnWeaker Action `json:"onWeaker,omitempty" yaml:"onWeaker,omitempty"`
	// Mode is what the level's filter does with a syscall outside its
	// allowlist: enforce (deny it, and log each denial to the kernel's
	// audit records), audit (trial mode: let it run and log it, so that a
	// workload can run under the level and show what it would deny) or
	// silent (deny without logging). See SeccompModes. Default enforce.
	Mode SeccompMode `json:"mode,omitempty" yaml:"mode,omitempty"`
}

// AppArmorControl picks the AppArmor profile where the host has AppArmor.
type AppArmorControl struct {
	// Profile is the profile name to set. Default "hardened-default", whose
	// text `hardenctl profiles export-apparmor` prints.
	Profile string `json:"profile,omitempty" yaml:"profile,omitempty"`
	// Required refuses containers on hosts without AppArmor instead of
	// running them without it. Default false.
	Required bool `json:"required,omitempty" yaml:"required,omitempty"`
}

// RootfsControl makes the root filesystem read-only and says what stays
// writable.
type RootfsControl struct {
	// ReadOnly sets root.readonly. Default false; true in every built-in level.
	ReadOnly bool `json:"readOnly" yaml:"readOnly"`
	// Tmpfs lists shared scratch paths that get a tmpfs with mode 1777 when
	// nothing is mounted there (built-in: /tmp, /var/tmp, /run).
	Tmpfs []string `json:"tmpfs,omitempty" yaml:"tmpfs,omitempty"`
	// WritablePaths lists further paths that are writable (for example an
	// application's upload directory): each gets a tmpfs owned by the
	// process user that starts with what the image has there (copy-up),
	// or empty where the image has nothing. They add to StatePaths: this is
	// the key a policy level sets to make one more path writable.
	WritablePaths []string `json:"writablePaths,omitempty" yaml:"writablePaths,omitempty"`
	// StatePaths are the paths images usually write at run time. Each one
	// the image has as a directory gets what a WritablePaths entry gets
	// (copy-up, owned by the process user), unless it holds more than
	// TmpfsSize; one the image does not have stays absent. An entry is an
	// absolute path (/var/log), an absolute path ending in "/*" (each
	// directory the image has there: /var/lib/* is /var/lib/<app> for each
	// app), or a relative path, below the image's WORKDIR (uploads: the
	// WORKDIR's uploads directory; never when the WORKDIR is /). Built-in:
	// the usual state directories of /var and of an application's WORKDIR.
	StatePaths []string `json:"statePaths,omitempty" yaml:"statePaths,omitempty"`
	// StateExclude lists paths that StatePaths never make writable, nor a
	// directory that holds one: the package managers' records of the image
	// (/var/lib/dpkg, ...), which describe its read-only binaries and would
	// only cost a copy per container.
	StateExclude []string `json:"stateExclude,omitempty" yaml:"stateExclude,omitempty"`
	// TmpfsSize is the size limit of each tmpfs, as the tmpfs size= option
	// takes it ("64m", "1g"). Default "64m".
	TmpfsSize string `json:"tmpfsSize,omitempty" yaml:"tmpfsSize,omitempty"`
	// NoExec mounts the tmpfs paths noexec. Breaks JNA, snappy and friends
	// that map code from /tmp; only the strict level sets it.
	NoExec bool `json:"noExec,omitempty" yaml:"noExec,omitempty"`
	// Volumes is what the image's declared VOLUMEs that have no mount get:
	// disk (a directory on the node's disk private to the container, owned
	// by the process user, that starts with what the image has there and
	// is removed with the container, as Docker's anonymous volumes), tmpfs
	// (a tmpfs of TmpfsSize in memory, likewise) or none (they stay part
	// of the read-only root). Default none; disk in the built-in levels.
	Volumes VolumeMode `json:"volumes,omitempty" yaml:"volumes,omitempty"`
	// VolumesAsTmpfs is the older spelling of volumes: tmpfs (true) or
	// none (false), kept so that existing policies mean what they said.
	VolumesAsTmpfs bool `json:"volumesAsTmpfs,omitempty" yaml:"volumesAsTmpfs,omitempty"`
}

// VolumeMode is what a level gives an image's declared VOLUMEs.
type VolumeMode string

// Volume modes.
const (
	VolumesDisk  VolumeMode = "disk"
	VolumesTmpfs VolumeMode = "tmpfs"
	VolumesNone  VolumeMode = "none"
)

// MountControl decides which host paths may be bind-mounted.
type MountControl struct {
	// AllowHostPaths lists host paths (each with its subtree) that containers
	// of the level may bind-mount, besides what is the container's own (its
	// CRI files and its pod's kubelet directory). Clean absolute paths. A
	// sensitive path (SensitiveHostPaths, the runtime's sockets, containerd's
	// root and state, the kubelet's root) is not allowed by a broader entry:
	// only an entry that names it, or a path below it that holds the mount's
	// source, allows it. Default none.
	AllowHostPaths []string `json:"allowHostPaths,omitempty" yaml:"allowHostPaths,omitempty"`
}

// NamespaceControl decides which host namespaces a container may share.
type NamespaceControl struct {
	// AllowHost lists namespace types (network, pid, ipc, uts, user) the
	// container may share with the host. Sharing the mount namespace is never
	// allowed.
	AllowHost []string `json:"allowHost,omitempty" yaml:"allowHost,omitempty"`
}

// DeviceControl decides which devices a container may have.
type DeviceControl struct {
	// Allow lists devices, by type and major:minor (what the kernel checks,
	// whatever the node's path), allowed besides the standard set runc
	// creates in every container (StandardDevices): device nodes in
	// linux.devices and allow rules of the device cgroup. In YAML each entry
	// is "c 10:229 /dev/fuse" (type, major:minor, an optional name; "c 195:*"
	// for every minor) or {type: c, major: 10, minor: 229, path: /dev/fuse}.
	// Default none.
	Allow []Device `json:"allow,omitempty" yaml:"allow,omitempty"`
}

// SysctlControl decides which sysctls a container may set.
type SysctlControl struct {
	// Allow lists sysctl names or prefixes ending in "*" allowed besides
	// the namespaced safe set (SafeSysctls).
	Allow []string `json:"allow,omitempty" yaml:"allow,omitempty"`
	// UnprivilegedPorts sets net.ipv4.ip_unprivileged_port_start=0 in a
	// container that has its own network namespace, so a non-root server can
	// bind ports below 1024 without CAP_NET_BIND_SERVICE.
	UnprivilegedPorts bool `json:"unprivilegedPorts,omitempty" yaml:"unprivilegedPorts,omitempty"`
	// PingGroupRange sets net.ipv4.ping_group_range in a container that has
	// its own network namespace, to every group (0 2147483647, as Docker
	// does) or, in a user namespace of its own, to the range of groups it
	// maps, so that a non-root process can ping and use ICMP sockets
	// without CAP_NET_RAW.
	PingGroupRange bool `json:"pingGroupRange,omitempty" yaml:"pingGroupRange,omitempty"`
}

// Limits are defaults set when the spec has none; a workload's own lower
// limit is kept. RLIMIT_NPROC is deliberately absent: it counts processes per
// uid across the whole host, so every container running as 65534 would share
// one limit. The pids cgroup limits processes per container instead.
type Limits struct {
	// Pids is linux.resources.pids.limit. 0 means leave unset.
	Pids int64 `json:"pids,omitempty" yaml:"pids,omitempty"`
	// NoFile is the soft and hard RLIMIT_NOFILE. 0 means leave unset.
	NoFile uint64 `json:"nofile,omitempty" yaml:"nofile,omitempty"`
	// MaxMemlock is the highest RLIMIT_MEMLOCK (bytes, soft and hard) a
	// container may ask for: runc sets rlimits as root, so without a bound
	// any container could lock all of the host's memory. Default 0: a
	// container may only set it to 0; the built-in levels allow 8 MiB (the
	// kernel's own default).
	MaxMemlock uint64 `json:"maxMemlock" yaml:"maxMemlock"`
	// MinOOMScoreAdj is the lowest process.oomScoreAdj a container keeps;
	// a lower one (which makes the host's OOM killer pick other processes
	// first, down to -1000: never this one) is raised to it. -1000 to 1000;
	// default 0. Kubernetes gives Guaranteed pods -997 and pod sandboxes
	// -998: set -998 to keep its ordering.
	MinOOMScoreAdj int `json:"minOOMScoreAdj" yaml:"minOOMScoreAdj"`
}

// HookControl decides which OCI hooks may run. Hooks run programs of the
// host as root with every capability, outside the container's confinement.
type HookControl struct {
	// Allow lists the exact, absolute paths of host programs that may be a
	// prestart, createRuntime, createContainer, poststart or poststop hook
	// (for example /usr/bin/nvidia-container-runtime-hook). The hook gets
	// whatever arguments and environment the spec gives it: list only
	// programs that are safe with any. startContainer hooks, whose path is a
	// file of the image, are never allowed. Default none.
	Allow []string `json:"allow" yaml:"allow"`
}

// SchedulingControl bounds the CPU and I/O priority a container may ask
// for: runc applies them as root before it drops privileges.
type SchedulingControl struct {
	// AllowRealtime lets a container use realtime scheduling: SCHED_FIFO,
	// SCHED_RR and SCHED_DEADLINE policies, the IOPRIO_CLASS_RT I/O class, a
	// non-zero RLIMIT_RTPRIO and the cgroup's realtime CPU time. A realtime
	// process can starve every other process of its CPU. Default false.
	AllowRealtime bool `json:"allowRealtime" yaml:"allowRealtime"`
	// MinNice is the lowest nice value (process.scheduler.nice, and the
	// ceiling RLIMIT_NICE gives) a container may ask for; -20 to 19.
	// Default 0: no priority above the default.
	MinNice int32 `json:"minNice" yaml:"minNice"`
}

// CgroupControl decides where a container's cgroup may be.
type CgroupControl struct {
	// Parents lists cgroups below which a container's own cgroup may be, at
	// any depth, besides the forms containerd and the kubelet use (see
	// rule cgroups): absolute cgroupfs paths (/buildkit) or systemd slices
	// (build.slice, which also allows its sub-slices build-x.slice). The
	// cgroup's last element is always the container's id. Default none.
	Parents []string `json:"parents" yaml:"parents"`
}

// CheckpointControl decides whether a container may be restored from a
// checkpoint. CRIU restores the processes' memory, credentials and
// capabilities from the checkpoint's image files, which no rule of the
// level has seen.
type CheckpointControl struct {
	// AllowRestore lets a task be created from a checkpoint (ctr run
	// --checkpoint, CRI's container restore). Default false, whatever the
	// signatures policy.
	AllowRestore bool `json:"allowRestore" yaml:"allowRestore"`
}

// Seccomp profile names a level may use.
const (
	SeccompRuntimeDefault = "runtime-default"
	SeccompStrict         = "strict"
)

// DefaultAppArmorProfile is the name of the profile this package ships.
const DefaultAppArmorProfile = "hardened-default"

// Namespace types as a level's namespaces.allowHost names them.
var hostNamespaceTypes = []string{"network", "pid", "ipc", "uts", "user", "cgroup"}

// SetDefaults fills the zero fields that have a documented default.
func (l *Level) SetDefaults() {
	if l.User.OnRoot == "" {
		l.User.OnRoot = Fix
	}
	if l.User.Namespace == "" {
		l.User.Namespace = UserNamespaceOff
	}
	if l.Capabilities.OnRequest == "" {
		l.Capabilities.OnRequest = Refuse
	}
	if l.Seccomp.Profile == "" {
		l.Seccomp.Profile = SeccompRuntimeDefault
	}
	if l.Seccomp.OnWeaker == "" {
		l.Seccomp.OnWeaker = Fix
	}
	if l.Seccomp.Mode == "" {
		l.Seccomp.Mode = SeccompEnforce
	}
	if l.Exec == "" {
		l.Exec = ExecAllow
	}
	if l.AppArmor.Profile == "" {
		l.AppArmor.Profile = DefaultAppArmorProfile
	}
	if l.Rootfs.TmpfsSize == "" {
		l.Rootfs.TmpfsSize = "64m"
	}
	if l.Rootfs.Volumes == "" {
		l.Rootfs.Volumes = VolumesNone
		if l.Rootfs.VolumesAsTmpfs {
			l.Rootfs.Volumes, l.Rootfs.VolumesAsTmpfs = VolumesTmpfs, false
		}
	}
}

// Validate reports every problem of the level at once; each names the key.
func (l *Level) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("level %q: %s: %s", l.Name, key, fmt.Sprintf(format, args...)))
	}
	if l.Name == "" {
		bad("name", "must not be empty")
	}
	checkAction := func(key string, a Action) {
		if a != Fix && a != Refuse {
			bad(key, "%q is not one of fix, refuse", a)
		}
	}
	checkAction("user.onRoot", l.User.OnRoot)
	if l.User.RunAsNonRoot && (l.User.UID == 0 || l.User.GID == 0) && l.User.OnRoot == Fix {
		bad("user.uid/gid", "must be non-zero when runAsNonRoot is true and onRoot is fix")
	}
	switch l.User.Namespace {
	case UserNamespaceAuto, UserNamespaceRequired, UserNamespaceOff:
	default:
		bad("user.namespace", "%q is not one of %s, %s, %s", l.User.Namespace, UserNamespaceAuto, UserNamespaceRequired, UserNamespaceOff)
	}
	checkAction("capabilities.onRequest", l.Capabilities.OnRequest)
	for _, c := range l.Capabilities.Allow {
		if !IsCapability(c) {
			bad("capabilities.allow", "%q is not a capability (want a name like CAP_NET_BIND_SERVICE)", c)
		}
	}
	for _, c := range l.Capabilities.InUserNamespace {
		switch {
		case !IsCapability(c):
			bad("capabilities.inUserNamespace", "%q is not a capability (want a name like CAP_CHOWN)", c)
		case !slices.Contains(RuntimeDefaultCapabilities, c):
			bad("capabilities.inUserNamespace", "%s is not in the runtime's default set (%s): even inside a user namespace it reaches kernel code an unprivileged process cannot; grant it with capabilities.allow of a level that needs it",
				c, strings.Join(RuntimeDefaultCapabilities, ", "))
		}
	}
	if l.Seccomp.Profile != SeccompRuntimeDefault && l.Seccomp.Profile != SeccompStrict {
		bad("seccomp.profile", "%q is not one of %s, %s", l.Seccomp.Profile, SeccompRuntimeDefault, SeccompStrict)
	}
	checkAction("seccomp.onWeaker", l.Seccomp.OnWeaker)
	for _, set := range []struct {
		key  string
		caps []string
	}{{"capabilities.add", l.Capabilities.Add}, {"capabilities.drop", l.Capabilities.Drop}} {
		for _, c := range set.caps {
			if !IsCapability(c) {
				bad(set.key, "%q is not a capability (want a name like CAP_NET_BIND_SERVICE)", c)
			} else if set.key == "capabilities.add" && slices.Contains(l.Capabilities.Drop, c) {
				bad("capabilities.add/drop", "%s is both added and dropped", c)
			}
		}
	}
	if !slices.Contains(SeccompModes, l.Seccomp.Mode) {
		bad("seccomp.mode", "%q is not one of %s", l.Seccomp.Mode, joinModes(SeccompModes))
	}
	if l.Exec != ExecAllow && l.Exec != ExecDeny {
		bad("exec", "%q is not one of %s, %s", l.Exec, ExecAllow, ExecDeny)
	}
	for _, p := range l.Seccomp.Packs {
		if _, ok := Packs[p]; !ok {
			bad("seccomp.packs", "unknown pack %q (known: %s)", p, strings.Join(PackNames(), ", "))
		}
	}
	if l.AppArmor.Profile == "unconfined" {
		bad("apparmor.profile", "unconfined is not a profile; leave the key out to use %s", DefaultAppArmorProfile)
	}
	for _, p := range append(slices.Clone(l.Rootfs.Tmpfs), l.Rootfs.WritablePaths...) {
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
			bad("rootfs.tmpfs/writablePaths", "%q must be a clean absolute path other than /", p)
		}
	}
	for _, p := range l.Rootfs.StatePaths {
		if dir, ok := strings.CutSuffix(p, "/*"); ok {
			p = dir
		}
		if strings.ContainsAny(p, "*?[") || path.Clean(p) != p || p == "/" || p == "." || strings.HasPrefix(p, "../") || p == ".." {
			bad("rootfs.statePaths", "%q is not a clean path (absolute, optionally ending in /*, or relative to the WORKDIR) other than /", p)
		}
	}
	for _, p := range l.Rootfs.StateExclude {
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
			bad("rootfs.stateExclude", "%q must be a clean absolute path other than /", p)
		}
	}
	switch l.Rootfs.Volumes {
	case VolumesDisk, VolumesTmpfs, VolumesNone:
	default:
		bad("rootfs.volumes", "%q is not one of %s, %s, %s", l.Rootfs.Volumes, VolumesDisk, VolumesTmpfs, VolumesNone)
	}
	if l.Rootfs.VolumesAsTmpfs && l.Rootfs.Volumes != VolumesTmpfs {
		bad("rootfs.volumesAsTmpfs", "true contradicts volumes: %s; leave volumesAsTmpfs out (it is the older spelling of volumes: tmpfs)", l.Rootfs.Volumes)
	}
	if !validSize(l.Rootfs.TmpfsSize) {
		bad("rootfs.tmpfsSize", "%q is not a tmpfs size such as 64m or 1g", l.Rootfs.TmpfsSize)
	}
	for _, p := range l.Mounts.AllowHostPaths {
		if !path.IsAbs(p) || path.Clean(p) != p {
			bad("mounts.allowHostPaths", "%q must be a clean absolute path (such as %s)", p, path.Clean("/"+p))
		}
	}
	for _, n := range l.Namespaces.AllowHost {
		if n == "mount" {
			bad("namespaces.allowHost", "sharing the host's mount namespace is never allowed")
		} else if !slices.Contains(hostNamespaceTypes, n) {
			bad("namespaces.allowHost", "%q is not one of %s", n, strings.Join(hostNamespaceTypes, ", "))
		}
	}
	for _, d := range l.Devices.Allow {
		if err := d.validate(); err != nil {
			bad("devices.allow", "%s", err)
		}
	}
	if l.Limits.Pids < 0 {
		bad("limits.pids", "%d must not be negative", l.Limits.Pids)
	}
	if l.Limits.MinOOMScoreAdj < -1000 || l.Limits.MinOOMScoreAdj > 1000 {
		bad("limits.minOOMScoreAdj", "%d is not between -1000 and 1000", l.Limits.MinOOMScoreAdj)
	}
	for _, p := range l.Hooks.Allow {
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
			bad("hooks.allow", "%q must be a clean absolute path of a program", p)
		}
	}
	if l.Scheduling.MinNice < -20 || l.Scheduling.MinNice > 19 {
		bad("scheduling.minNice", "%d is not between -20 and 19", l.Scheduling.MinNice)
	}
	for _, p := range l.Cgroups.Parents {
		if !ValidCgroupParent(p) {
			bad("cgroups.parents", "%q is neither a clean absolute cgroup path other than / nor a systemd slice name such as build.slice", p)
		}
	}
	return errors.Join(errs...)
}

// ValidCgroupParent reports whether p may be an entry of cgroups.parents:
// a clean absolute cgroupfs path other than /, or a systemd slice name
// (no slash, ending in .slice, not the root slice -.slice).
func ValidCgroupParent(p string) bool {
	if strings.HasPrefix(p, "/") {
		return path.Clean(p) == p && p != "/"
	}
	name, ok := strings.CutSuffix(p, ".slice")
	if !ok || name == "" || name == "-" || strings.ContainsAny(p, "/:") {
		return false
	}
	return !strings.HasPrefix(name, "-") && !strings.HasSuffix(name, "-") && !strings.Contains(name, "--")
}

func validSize(s string) bool {
	s = strings.TrimRight(s, "kmgKMG%")
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// AllowsHostNamespace reports whether the level lets a container share the
// host's namespace of type t (as the runtime-spec names it).
func (l *Level) AllowsHostNamespace(t string) bool {
	return slices.Contains(l.Namespaces.AllowHost, t)
}

// Clone returns a deep copy, so a policy can derive a level from a built-in
// one without touching it.
func (l *Level) Clone() *Level {
	c := *l
	c.Capabilities.Allow = slices.Clone(l.Capabilities.Allow)
	c.Capabilities.InUserNamespace = slices.Clone(l.Capabilities.InUserNamespace)
	c.Seccomp.Packs = slices.Clone(l.Seccomp.Packs)
	c.Rootfs.Tmpfs = slices.Clone(l.Rootfs.Tmpfs)
	c.Rootfs.WritablePaths = slices.Clone(l.Rootfs.WritablePaths)
	c.Rootfs.StatePaths = slices.Clone(l.Rootfs.StatePaths)
	c.Rootfs.StateExclude = slices.Clone(l.Rootfs.StateExclude)
	c.Mounts.AllowHostPaths = slices.Clone(l.Mounts.AllowHostPaths)
	c.Namespaces.AllowHost = slices.Clone(l.Namespaces.AllowHost)
	c.Devices.Allow = slices.Clone(l.Devices.Allow)
	for i, d := range c.Devices.Allow {
		if d.Minor != nil {
			m := *d.Minor
			c.Devices.Allow[i].Minor = &m
		}
	}
	c.Sysctls.Allow = slices.Clone(l.Sysctls.Allow)
	c.Capabilities.Add = slices.Clone(l.Capabilities.Add)
	c.Capabilities.Drop = slices.Clone(l.Capabilities.Drop)
	c.Hooks.Allow = slices.Clone(l.Hooks.Allow)
	c.Cgroups.Parents = slices.Clone(l.Cgroups.Parents)
	return &c
}
