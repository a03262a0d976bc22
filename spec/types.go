package spec

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Change is one thing Harden changed, or one decision it recorded.
type Change struct {
	// Rule is the rule that made the change (user, capabilities, ...).
	Rule string `json:"rule"`
	// Field is the spec field, as a JSON path (process.user.uid).
	Field string `json:"field"`
	// From and To are the old and new values, rendered for people.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Reason says why, in a few words.
	Reason string `json:"reason"`
	// Note marks a recorded decision that changed nothing (for example
	// "host has no AppArmor"); notes are not violations.
	Note bool `json:"note,omitempty"`
}

// Violation is a way in which a spec does not comply with a level.
type Violation struct {
	Rule   string `json:"rule"`
	Field  string `json:"field"`
	Value  string `json:"value,omitempty"`
	Reason string `json:"reason"`
	// Fix says what would make the spec comply.
	Fix string `json:"fix"`
	// Refused is true when the level refuses such a spec rather than fixing it.
	Refused bool `json:"refused"`
}

func (v Violation) String() string {
	s := "rule " + v.Rule + ": " + v.Field
	if v.Value != "" {
		s += "=" + v.Value
	}
	s += ": " + v.Reason
	if v.Fix != "" {
		s += "; fix: " + v.Fix
	}
	return s
}

// RefusedError is returned when a level refuses a spec. Its message is one
// line: it ends up in `kubectl describe pod` through the kubelet.
type RefusedError struct {
	Level      string
	Violations []Violation
}

func (e *RefusedError) Error() string {
	if len(e.Violations) == 0 {
		return "refused by level " + e.Level
	}
	// The first line names what the pod author wrote: privileged, then a
	// host namespace (hostIPC brings a bind mount of the host's /dev/shm,
	// which the mounts rule refuses too), then the rest in rule order.
	first := 0
	for i, v := range e.Violations {
		if primaryRank(v.Rule) < primaryRank(e.Violations[first].Rule) {
			first = i
		}
	}
	msg := "refused by level " + e.Level + ": " + e.Violations[first].String()
	rest := append(slices.Clone(e.Violations[:first]), e.Violations[first+1:]...)
	if len(rest) == 0 {
		return msg
	}
	// The rest, briefly: the message ends up in a pod event. A few are
	// named; many (a privileged container brings dozens of devices and
	// capabilities) are counted per rule, so the line stays readable.
	var fields, rules []string
	perRule := map[string]int{}
	for _, v := range rest {
		if f := v.Rule + " " + v.Field; !slices.Contains(fields, f) {
			fields = append(fields, f)
		}
		if perRule[v.Rule] == 0 {
			rules = append(rules, v.Rule)
		}
		perRule[v.Rule]++
	}
	if len(fields) <= maxNamedViolations {
		return msg + fmt.Sprintf(" (and %d more: %s)", len(rest), strings.Join(fields, ", "))
	}
	for i, r := range rules {
		rules[i] = fmt.Sprintf("%s ×%d", r, perRule[r])
	}
	return msg + fmt.Sprintf(" (and %d more: %s; each in the shim log)", len(rest), strings.Join(rules, ", "))
}

// primaryRank orders the rules whose violation a RefusedError names first:
// those that follow from a field the pod author wrote, and cause others.
func primaryRank(rule string) int {
	switch rule {
	case "privileged":
		return 0
	case "namespaces":
		return 1
	}
	return 2
}

// maxNamedViolations is how many further violations a RefusedError names
// by field; more are counted per rule.
const maxNamedViolations = 4

// ImageInfo is what the caller knows about the image the container runs.
// Everything is optional.
type ImageInfo struct {
	// Name and Digest identify the image, for the record.
	Name   string
	Digest string
	// User is the image config's USER, for the record.
	User string
	// Volumes are the image config's declared VOLUMEs.
	Volumes []string
	// WorkingDir is the image config's WORKDIR: the state paths of
	// rootfs.statePaths that are relative are below it.
	WorkingDir string `json:",omitempty"`
	// Rootfs, when set, is the container's root filesystem as the image
	// makes it. It is only read: whether /var/run is a directory of its
	// own, which of the level's state paths the image has and how much
	// they hold. Symbolic links in it must resolve inside it.
	Rootfs fs.FS `json:"-"`
}

// Host holds the facts about the node that some rules depend on. The shim
// probes them once; hardenctl has flags for them.
type Host struct {
	// AppArmor is true when the kernel has AppArmor enabled, the parser is
	// present and the level's profile is loaded.
	AppArmor bool
	// UnprivilegedPortSysctl is true when the kernel has
	// net.ipv4.ip_unprivileged_port_start (Linux 4.11+).
	UnprivilegedPortSysctl bool
	// MaxNoFile is the hard RLIMIT_NOFILE of the runtime itself; 0 when
	// unknown. Without CAP_SYS_RESOURCE runc cannot give a container more,
	// so the level's default is lowered to it.
	MaxNoFile uint64
	// ResolvePath resolves symlinks in a bind mount's host path, so that a
	// link to a sensitive path is judged as that path. Nil: paths are taken
	// as they are.
	ResolvePath func(string) string
	// IsHostNamespace reports whether a namespace path (a
	// linux.namespaces[].path) is the host's own namespace of that type.
	// Nil: only /proc/1/ns/* and /proc/self/ns/* count as the host's.
	IsHostNamespace func(nsType specs.LinuxNamespaceType, path string) bool
	// RuntimeSockets are the API sockets of the container runtime on this
	// node (containerd's gRPC and TTRPC sockets as the shim was given
	// them), refused as bind sources like the well-known paths of
	// profiles.SensitiveHostPaths: a node may run containerd elsewhere
	// (k3s: /run/k3s/containerd/containerd.sock).
	RuntimeSockets []string
	// ContainerdRoot and ContainerdState are the root and state directories
	// of the containerd that runs the container, as that containerd reports
	// them (never assumed: k3s and rke2 keep them elsewhere). CRI's per-pod
	// and per-container files live below them. "" when unknown: then no
	// file below them is the container's own.
	ContainerdRoot, ContainerdState string
	// KubeletRoot is the kubelet's root directory (--root-dir; default
	// /var/lib/kubelet), below which each pod's volumes live in
	// pods/<pod uid>/. "" when there is no kubelet.
	KubeletRoot string
	// IDMappedMounts is true when the kernel can show a filesystem through
	// an idmapped mount, overlayfs lower layers included (Linux 5.19+): a
	// root image in a user namespace of its own then sees its files with
	// the owners it was built with (user.namespace).
	IDMappedMounts bool
	// UsernsWindow is the window of host ids the runtime hands out as
	// pods' user namespace ranges: a process in the host's user namespace
	// (or one whose mappings are not its own) must not run with an id in
	// it, which would be another pod's root. Size 0: none known.
	UsernsWindow IDRange
}

// IDRange is a range of host ids (uids and the same gids): [HostID,
// HostID+Size).
type IDRange struct {
	HostID uint32 `json:"hostID"`
	Size   uint32 `json:"size"`
}

// Contains reports whether id is in the range.
func (r IDRange) Contains(id uint32) bool {
	return r.Size > 0 && id >= r.HostID && uint64(id) < uint64(r.HostID)+uint64(r.Size)
}

// ContainerInfo is what the runtime knows about the container being
// hardened from containerd's records. The shim fills it; a claim that only
// the spec's annotations make (which any containerd API client can set) is
// checked against containerd's records first.
type ContainerInfo struct {
	// ID is the container's id; for a CRI pod's sandbox (pause) container,
	// the sandbox id.
	ID string
	// Bundle is the container's bundle directory (relative paths in the
	// spec are relative to it for runc).
	Bundle string
	// SandboxID is the id of the CRI sandbox (pod) the container belongs
	// to, and for the sandbox's own (pause) container its id; "" outside
	// Kubernetes. The pod's CRI files (hosts, resolv.conf, shm) are the
	// container's own only under this id (rule mounts).
	SandboxID string
	// PodUID is the Kubernetes uid of that pod; "" outside Kubernetes.
	PodUID string
	// Namespace is the containerd namespace the container was created in,
	// from the request (not an annotation); "" when unknown. Container ids
	// are unique within it, which makes /<namespace>/<id> the container's
	// own cgroup.
	Namespace string
	// SupplementalGroups are the supplementary groups the workload asked
	// for itself: for a CRI container, its CRI config's
	// supplementalGroups (the pod's supplementalGroups and fsGroup, as the
	// kubelet sends them), from containerd's record of that config. The
	// user rule keeps them (group 0 excepted) when it moves a process off
	// root, and drops the groups containerd added for root from the
	// image's /etc/group. Read only when SupplementalGroupsKnown.
	SupplementalGroups []uint32
	// SupplementalGroupsKnown is true when SupplementalGroups was read (a
	// CRI container); otherwise a process moved off root keeps no
	// supplementary group.
	SupplementalGroupsKnown bool
	// UserNamespace is the range of host ids the runtime reserved for the
	// container's pod (or the container alone, outside a pod): a root
	// process gets a user namespace mapping its ids 0 to Size-1 onto it
	// (user.namespace). Size 0: none reserved, for the reason in
	// UserNamespaceUnavailable.
	UserNamespace IDRange
	// UserNamespaceUnavailable says why the runtime reserved no range (the
	// root filesystem cannot be idmapped, no range is free, ...); "" when
	// it did or was not asked to.
	UserNamespaceUnavailable string
	// VolumeDir is the host directory that holds the container's own
	// volumes on disk (rootfs.volumes: disk), one directory below it per
	// declared VOLUME; the runtime creates them, fills them from the
	// image and removes them with the container. A bind mount from below
	// it is the container's own. "": none, and such volumes get a tmpfs.
	VolumeDir string
}

// Inputs are everything Harden needs besides the spec and the level.
type Inputs struct {
	Image     ImageInfo
	Host      Host
	Container ContainerInfo
}

// Result is the hardened spec and what was done to it.
type Result struct {
	// Level is the name of the level applied.
	Level string `json:"level"`
	// Spec is the hardened spec: a copy, never the input.
	Spec *specs.Spec `json:"-"`
	// Changes lists every change and note, in rule order.
	Changes []Change `json:"changes"`
	// Writable lists what the rootfs rule made writable in the read-only
	// root, for the runtime to prepare (volume directories, owners of
	// copied-up files) and to explain.
	Writable []Writable `json:"writable,omitempty"`
}
