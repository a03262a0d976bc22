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

// StandardDevice is a device node runc creates in every container.
type StandardDevice struct {
	Path         string
	Type         string
	Major, Minor int64 // Minor -1 means any
}

// StandardDevices are the device nodes (and cgroup rules) every container
// gets from runc; a spec may list them without asking for anything.
var StandardDevices = []StandardDevice{
	{"/dev/null", "c", 1, 3},
	{"/dev/zero", "c", 1, 5},
	{"/dev/full", "c", 1, 7},
	{"/dev/random", "c", 1, 8},
	{"/dev/urandom", "c", 1, 9},
	{"/dev/tty", "c", 5, 0},
	{"/dev/console", "c", 5, 1},
	{"/dev/ptmx", "c", 5, 2},
	{"/dev/pts/*", "c", 136, -1},
}

// SensitiveHostPaths may not be bind-mounted into a container unless the
// level allows them (mounts.allowHostPaths). A path refuses itself and, for
// those marked subtree, everything below it. "/sys" is refused
// only when mounted read-write.
var SensitiveHostPaths = []SensitivePath{
	{Path: "/", Subtree: false, Why: "the host's root filesystem"},
	{Path: "/proc", Subtree: true, Why: "the host's /proc (every process's environment and memory maps)"},
	{Path: "/sys", Subtree: true, ReadOnlyOK: true, Why: "the host's /sys"},
	{Path: "/dev", Subtree: true, Why: "host devices"},
	{Path: "/etc", Subtree: true, Why: "host configuration (credentials, kubelet and containerd config)"},
	{Path: "/boot", Subtree: true, Why: "the host's kernel and boot loader"},
	{Path: "/lib/modules", Subtree: true, Why: "host kernel modules"},
	{Path: "/root", Subtree: true, Why: "the host's root home directory"},
	{Path: "/var/run/docker.sock", Why: "the Docker API (root on the host)"},
	{Path: "/run/docker.sock", Why: "the Docker API (root on the host)"},
	{Path: "/var/run/containerd", Subtree: true, Why: "the containerd API socket (root on the host)", AllowBelow: criSandboxFiles("/var/run/containerd")},
	{Path: "/run/containerd", Subtree: true, Why: "the containerd API socket (root on the host)", AllowBelow: criSandboxFiles("/run/containerd")},
	{Path: "/var/lib/containerd", Subtree: true, Why: "containerd's image and container state", AllowBelow: criSandboxFiles("/var/lib/containerd")},
	{Path: "/var/lib/kubelet", Subtree: true, Why: "the kubelet's state, including other pods' secrets", AllowBelow: []string{"/var/lib/kubelet/pods/"}},
	{Path: "/var/run/crio", Subtree: true, Why: "the CRI-O API socket"},
	{Path: "/run/crio", Subtree: true, Why: "the CRI-O API socket"},
}

// SensitivePath is one entry of SensitiveHostPaths.
type SensitivePath struct {
	Path string
	// Subtree refuses everything below Path too.
	Subtree bool
	// ReadOnlyOK allows a read-only bind mount.
	ReadOnlyOK bool
	// AllowBelow lists prefixes below Path that are not sensitive (the
	// kubelet's per-pod volume directories, which every pod mounts).
	AllowBelow []string
	Why        string
}

// Matches reports whether host path p falls under the entry.
func (s SensitivePath) Matches(p string) bool {
	if p == s.Path {
		return true
	}
	if !s.Subtree {
		return false
	}
	prefix := strings.TrimSuffix(s.Path, "/") + "/"
	if !strings.HasPrefix(p, prefix) {
		return false
	}
	for _, ok := range s.AllowBelow {
		if strings.HasPrefix(p, ok) {
			return false
		}
	}
	return true
}

// criSandboxFiles are the per-pod files containerd's CRI plugin bind-mounts
// into every container of a pod (hosts, hostname, resolv.conf, /dev/shm),
// below containerd's root or state directory.
func criSandboxFiles(dir string) []string {
	return []string{dir + "/io.containerd.grpc.v1.cri/sandboxes/"}
}
