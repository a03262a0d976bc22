package profiles

import (
	"slices"
	"strings"
)

// Capabilities lists every capability the kernel knows (as of Linux 6.x).
var Capabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
	"CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
	"CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// RuntimeDefaultCapabilities is the set containerd (and Docker) give a
// container that asks for nothing. A capability outside it is one the
// workload requested.
var RuntimeDefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// IsCapability reports whether name is a capability the kernel knows.
func IsCapability(name string) bool { return slices.Contains(Capabilities, name) }

// MaskedPaths is the union of runc's and containerd's (ctr and CRI) default
// masked paths. Every hardened spec masks at least these.
var MaskedPaths = []string{
	"/proc/acpi",
	"/proc/asound",
	"/proc/interrupts",
	"/proc/kcore",
	"/proc/keys",
	"/proc/latency_stats",
	"/proc/sched_debug",
	"/proc/scsi",
	"/proc/timer_list",
	"/proc/timer_stats",
	"/sys/devices/virtual/powercap",
	"/sys/firmware",
}

// ReadonlyPaths is the union of runc's and containerd's default read-only
// paths.
var ReadonlyPaths = []string{
	"/proc/bus",
	"/proc/fs",
	"/proc/irq",
	"/proc/sys",
	"/proc/sysrq-trigger",
}

// SafeSysctls are the namespaced sysctls Kubernetes considers safe: they
// affect only the container's own namespaces.
var SafeSysctls = []string{
	"kernel.shm_rmid_forced",
	"net.ipv4.ip_local_port_range",
	"net.ipv4.ip_local_reserved_ports",
	"net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.ping_group_range",
	"net.ipv4.tcp_fin_timeout",
	"net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
	"net.ipv4.tcp_keepalive_time",
	"net.ipv4.tcp_syncookies",
}

// UnprivilegedPortSysctl lets non-root processes bind any port when set to 0.
const UnprivilegedPortSysctl = "net.ipv4.ip_unprivileged_port_start"

// SensitiveHostPaths are host paths that no broad mounts.allowHostPaths
// entry opens up: a bind mount of one of them, of a path below one marked
// Subtree, or of a directory above one (which shows it) is refused unless
// the level names that path (or a path below it that holds the mount's
// source) in mounts.allowHostPaths. The engine adds the node's own: the
// runtime's API sockets, containerd's root and state, the kubelet's root.
// Host paths that are neither sensitive nor allowed are refused anyway:
// these make the refusal say why, and keep "allowHostPaths: [/var]" from
// meaning containerd's state.
var SensitiveHostPaths = []SensitivePath{
	{Path: "/", Why: "the host's root filesystem"},
	{Path: "/proc", Subtree: true, Why: "the host's /proc (every process's environment and memory maps)"},
	{Path: "/sys", Subtree: true, Why: "the host's /sys (kernel and device settings)"},
	{Path: "/dev", Subtree: true, Why: "host devices"},
	{Path: "/etc", Subtree: true, Why: "host configuration (credentials, kubelet and containerd config)"},
	{Path: "/boot", Subtree: true, Why: "the host's kernel and boot loader"},
	{Path: "/lib/modules", Subtree: true, Why: "host kernel modules"},
	{Path: "/usr/lib/modules", Subtree: true, Why: "host kernel modules"},
	{Path: "/root", Subtree: true, Why: "the host's root home directory"},
	{Path: "/var/run/docker.sock", Why: "the Docker API (root on the host)"},
	{Path: "/run/docker.sock", Why: "the Docker API (root on the host)"},
	{Path: "/var/lib/docker", Subtree: true, Why: "Docker's images and containers"},
	{Path: "/var/run/containerd", Subtree: true, Why: "the containerd API socket and state (root on the host)"},
	{Path: "/run/containerd", Subtree: true, Why: "the containerd API socket and state (root on the host)"},
	{Path: "/var/lib/containerd", Subtree: true, Why: "containerd's images and containers"},
	{Path: "/run/k3s", Subtree: true, Why: "k3s's containerd socket and state (root on the host)"},
	{Path: "/var/lib/rancher", Subtree: true, Why: "k3s/rke2 state: containerd's root, cluster tokens"},
	{Path: "/var/lib/kubelet", Subtree: true, Why: "the kubelet's state, including other pods' secrets"},
	{Path: "/var/lib/etcd", Subtree: true, Why: "etcd's data (every Secret of the cluster)"},
	{Path: "/var/run/crio", Subtree: true, Why: "the CRI-O API socket"},
	{Path: "/run/crio", Subtree: true, Why: "the CRI-O API socket"},
}

// SensitivePath is one entry of SensitiveHostPaths.
type SensitivePath struct {
	Path string
	// Subtree makes everything below Path sensitive too; otherwise only
	// Path itself is (a directory's listing, a socket).
	Subtree bool
	Why     string
}

// Covers reports whether host path p (clean, absolute) is the sensitive
// path or, for a subtree, below it.
func (s SensitivePath) Covers(p string) bool {
	return p == s.Path || (s.Subtree && IsBelow(p, s.Path))
}

// IsBelow reports whether clean absolute path p is strictly below dir.
func IsBelow(p, dir string) bool {
	if dir == "/" {
		return p != "/" && strings.HasPrefix(p, "/")
	}
	return len(p) > len(dir) && p[len(dir)] == '/' && strings.HasPrefix(p, dir)
}
