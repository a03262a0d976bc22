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
}

// CapabilityControl bounds all five capability sets.
type CapabilityControl struct {
	// Allow lists the capabilities a container may keep, as CAP_* names.
	// Every set is reduced to it. Empty means none.
	Allow []string `json:"allow" yaml:"allow"`
	// OnRequest is what happens to a capability outside both Allow and the
	// runtime's default set (that is, one the workload asked for): refuse, or
	// fix (drop it). Capabilities of the default set outside Allow are always
	// dropped. Default refuse.
	OnRequest Action `json:"onRequest,omitempty" yaml:"onRequest,omitempty"`
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
	// WritablePaths lists further paths that get a tmpfs owned by the
	// process user (for example an application's cache directory).
	WritablePaths []string `json:"writablePaths,omitempty" yaml:"writablePaths,omitempty"`
	// TmpfsSize is the size limit of each tmpfs, as the tmpfs size= option
	// takes it ("64m", "1g"). Default "64m".
	TmpfsSize string `json:"tmpfsSize,omitempty" yaml:"tmpfsSize,omitempty"`
	// NoExec mounts the tmpfs paths noexec. Breaks JNA, snappy and friends
	// that map code from /tmp; only the strict level sets it.
	NoExec bool `json:"noExec,omitempty" yaml:"noExec,omitempty"`
	// VolumesAsTmpfs gives the image's declared VOLUMEs that have no mount a
	// tmpfs owned by the process user. Default false; true in the built-ins.
	VolumesAsTmpfs bool `json:"volumesAsTmpfs,omitempty" yaml:"volumesAsTmpfs,omitempty"`
}

// MountControl decides which host paths may be bind-mounted.
type MountControl struct {
	// AllowHostPaths lists host paths (and their subtrees) that may be
	// bind-mounted although they are sensitive (see SensitiveHostPaths).
	AllowHostPaths []string `json:"allowHostPaths,omitempty" yaml:"allowHostPaths,omitempty"`
}

// NamespaceControl decides which host namespaces a container may share.
type NamespaceControl struct {
	// AllowHost lists namespace types (network, pid, ipc, uts, user) the
	// container may share with the host. Sharing the mount namespace is never
	// allowed.
	AllowHost []string `json:"allowHost,omitempty" yaml:"allowHost,omitempty"`
}

// DeviceControl decides which device nodes a container may have.
type DeviceControl struct {
	// Allow lists device paths (for example /dev/fuse) allowed besides the
	// standard set runc creates in every container.
	Allow []string `json:"allow,omitempty" yaml:"allow,omitempty"`
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
	checkAction("capabilities.onRequest", l.Capabilities.OnRequest)
	for _, c := range l.Capabilities.Allow {
		if !IsCapability(c) {
			bad("capabilities.allow", "%q is not a capability (want a name like CAP_NET_BIND_SERVICE)", c)
		}
	}
	if l.Seccomp.Profile != SeccompRuntimeDefault && l.Seccomp.Profile != SeccompStrict {
		bad("seccomp.profile", "%q is not one of %s, %s", l.Seccomp.Profile, SeccompRuntimeDefault, SeccompStrict)
	}
	checkAction("seccomp.onWeaker", l.Seccomp.OnWeaker)
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
	if !validSize(l.Rootfs.TmpfsSize) {
		bad("rootfs.tmpfsSize", "%q is not a tmpfs size such as 64m or 1g", l.Rootfs.TmpfsSize)
	}
	for _, p := range l.Mounts.AllowHostPaths {
		if !path.IsAbs(p) {
			bad("mounts.allowHostPaths", "%q must be an absolute path", p)
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
		if !strings.HasPrefix(d, "/dev/") {
			bad("devices.allow", "%q must be a path under /dev/", d)
		}
	}
	if l.Limits.Pids < 0 {
		bad("limits.pids", "%d must not be negative", l.Limits.Pids)
	}
	return errors.Join(errs...)
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
	c.Seccomp.Packs = slices.Clone(l.Seccomp.Packs)
	c.Rootfs.Tmpfs = slices.Clone(l.Rootfs.Tmpfs)
	c.Rootfs.WritablePaths = slices.Clone(l.Rootfs.WritablePaths)
	c.Mounts.AllowHostPaths = slices.Clone(l.Mounts.AllowHostPaths)
	c.Namespaces.AllowHost = slices.Clone(l.Namespaces.AllowHost)
	c.Devices.Allow = slices.Clone(l.Devices.Allow)
	c.Sysctls.Allow = slices.Clone(l.Sysctls.Allow)
	return &c
}
