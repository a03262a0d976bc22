package spec

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Class says how the engine treats one field of the runtime spec.
type Class string

const (
	// Kept fields go to runc as the spec has them: harmless whatever their
	// value (a limit that only restricts the container, a label, a
	// group of fields each classified on its own).
	Kept Class = "kept"
	// Checked fields are judged by a rule, which keeps, fixes or refuses
	// the value.
	Checked Class = "checked"
	// Forced fields are set by a rule to what the level says, whatever the
	// spec has.
	Forced Class = "forced"
	// Refused fields may not have a value: any non-zero value, anywhere
	// below them, refuses the container.
	Refused Class = "refused"
)

// FieldClass is the classification of one field of specs.Spec.
type FieldClass struct {
	// Path is the field's JSON path; "[]" stands for the elements of a list
	// or the values of a map: linux.resources.devices[].major.
	Path  string `json:"path"`
	Class Class  `json:"class"`
	// Rule names the rule that checks or forces the field.
	Rule string `json:"rule,omitempty"`
	// Why says, for a kept field, why it is harmless; for a refused one,
	// what it would let the container do.
	Why string `json:"why,omitempty"`
	// Fix says, for a refused field, what to do instead.
	Fix string `json:"fix,omitempty"`
}

const (
	group       = "a group of fields, each classified on its own"
	ownCgroup   = "a limit or weight of the container's own cgroup, which sits below its parent's (see rule cgroups): it can only restrict the container"
	ignored     = "for Windows; runc ignores it"
	otherOS     = "configuration for another platform; this runtime runs Linux containers with runc"
	fixOtherOS  = "remove it: the hardened runtime runs Linux containers only"
	noLevelFix  = "remove it; no level allows it"
	selinuxNote = "an SELinux label: no label at all (what the container gets otherwise) is never stricter; the hardening does not rely on SELinux"
)

func kept(path, why string) FieldClass { return FieldClass{Path: path, Class: Kept, Why: why} }
func checked(rule string, paths ...string) []FieldClass {
	out := make([]FieldClass, len(paths))
	for i, p := range paths {
		out[i] = FieldClass{Path: p, Class: Checked, Rule: rule}
	}
	return out
}
func forced(path, rule string) FieldClass { return FieldClass{Path: path, Class: Forced, Rule: rule} }
func refused(path, why, fix string) FieldClass {
	return FieldClass{Path: path, Class: Refused, Rule: "fields", Why: why, Fix: fix}
}

func hookFields() []FieldClass {
	var out []FieldClass
	for _, k := range []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"} {
		p := "hooks." + k
		out = append(out, checked("hooks", p, p+"[].path", p+"[].args", p+"[].env", p+"[].timeout")...)
	}
	return out
}

// fieldTable classifies every field of runtime-spec v1.3.0's specs.Spec.
// TestEveryFieldIsClassified walks the types and fails when a field is
// missing here; at run time, rule fields refuses a value in a field that
// is missing (one a newer runtime-spec added) or refused.
var fieldTable = slices.Concat(
	[]FieldClass{
		kept("ociVersion", "the version the spec claims; runc reads the fields, not the version"),
		kept("process", group),
		kept("process.terminal", "a pseudo-terminal for the process"),
		kept("process.consoleSize", group),
		kept("process.consoleSize.height", "the terminal's size"),
		kept("process.consoleSize.width", "the terminal's size"),
		kept("process.user", group),
	},
	checked("user", "process.user.uid", "process.user.gid", "process.user.additionalGids"),
	[]FieldClass{
		kept("process.user.umask", "the permission mask of files the process creates: its own files"),
		kept("process.user.username", ignored),
		kept("process.args", "the program the container runs, inside its confinement"),
		kept("process.commandLine", ignored),
		kept("process.env", "the process's environment (rules rootfs and user may add TMPDIR and HOME)"),
		kept("process.cwd", "a directory of the container"),
		kept("process.capabilities", group),
	},
	checked("capabilities", "process.capabilities.bounding", "process.capabilities.effective",
		"process.capabilities.inheritable", "process.capabilities.permitted", "process.capabilities.ambient"),
	checked("limits", "process.rlimits", "process.rlimits[].type", "process.rlimits[].hard", "process.rlimits[].soft"),
	[]FieldClass{
		forced("process.noNewPrivileges", "no-new-privileges"),
		forced("process.apparmorProfile", "apparmor"),
	},
	checked("oom-score", "process.oomScoreAdj"),
	checked("scheduling", "process.scheduler", "process.scheduler.policy", "process.scheduler.nice",
		"process.scheduler.priority", "process.scheduler.flags", "process.scheduler.runtime",
		"process.scheduler.deadline", "process.scheduler.period",
		"process.ioPriority", "process.ioPriority.class", "process.ioPriority.priority"),
	[]FieldClass{
		kept("process.selinuxLabel", selinuxNote),
		kept("process.execCPUAffinity", group),
		kept("process.execCPUAffinity.initial", "CPU affinity of an exec'd process, within the container's cpuset"),
		kept("process.execCPUAffinity.final", "CPU affinity of an exec'd process, within the container's cpuset"),
		kept("root", group),
	},
	checked("root-path", "root.path"),
	[]FieldClass{
		forced("root.readonly", "rootfs"),
		kept("hostname", "the container's own UTS namespace (rule namespaces); runc refuses a hostname without one"),
		kept("domainname", "the container's own UTS namespace (rule namespaces); runc refuses a domain name without one"),
	},
	checked("mounts", "mounts", "mounts[].destination", "mounts[].type", "mounts[].source", "mounts[].options",
		"mounts[].uidMappings", "mounts[].uidMappings[].containerID", "mounts[].uidMappings[].hostID", "mounts[].uidMappings[].size",
		"mounts[].gidMappings", "mounts[].gidMappings[].containerID", "mounts[].gidMappings[].hostID", "mounts[].gidMappings[].size",
		"linux.rootfsPropagation"),
	checked("hooks", "hooks"),
	hookFields(),
	checked("annotations", "annotations"),
	[]FieldClass{kept("linux", group)},
	checked("user-namespace", "linux.uidMappings", "linux.uidMappings[].containerID", "linux.uidMappings[].hostID", "linux.uidMappings[].size",
		"linux.gidMappings", "linux.gidMappings[].containerID", "linux.gidMappings[].hostID", "linux.gidMappings[].size"),
	checked("sysctls", "linux.sysctl"),
	[]FieldClass{kept("linux.resources", group)},
	checked("devices", "linux.resources.devices", "linux.resources.devices[].allow", "linux.resources.devices[].type",
		"linux.resources.devices[].major", "linux.resources.devices[].minor", "linux.resources.devices[].access",
		"linux.devices", "linux.devices[].path", "linux.devices[].type", "linux.devices[].major", "linux.devices[].minor",
		"linux.devices[].fileMode", "linux.devices[].uid", "linux.devices[].gid"),
	[]FieldClass{
		kept("linux.resources.memory", group),
		kept("linux.resources.memory.limit", ownCgroup),
		kept("linux.resources.memory.reservation", ownCgroup),
		kept("linux.resources.memory.swap", ownCgroup),
		kept("linux.resources.memory.kernel", ownCgroup),
		kept("linux.resources.memory.kernelTCP", ownCgroup),
		kept("linux.resources.memory.swappiness", "how eagerly the kernel swaps the container's own memory"),
		kept("linux.resources.memory.checkBeforeUpdate", "makes an update that lowers the limit below the usage fail"),
	},
	checked("resources", "linux.resources.memory.disableOOMKiller", "linux.resources.memory.useHierarchy"),
	[]FieldClass{
		kept("linux.resources.cpu", group),
		kept("linux.resources.cpu.shares", ownCgroup),
		kept("linux.resources.cpu.quota", ownCgroup),
		kept("linux.resources.cpu.burst", ownCgroup),
		kept("linux.resources.cpu.period", ownCgroup),
		kept("linux.resources.cpu.cpus", "the container's cpuset, which the kernel keeps within its parent's"),
		kept("linux.resources.cpu.mems", "the container's cpuset, which the kernel keeps within its parent's"),
		kept("linux.resources.cpu.idle", "SCHED_IDLE for the container's cgroup: a lower priority"),
	},
	checked("resources", "linux.resources.cpu.realtimeRuntime", "linux.resources.cpu.realtimePeriod"),
	[]FieldClass{kept("linux.resources.pids", group)},
	checked("limits", "linux.resources.pids.limit"),
	[]FieldClass{
		kept("linux.resources.blockIO", group),
		kept("linux.resources.blockIO.weight", ownCgroup),
		kept("linux.resources.blockIO.leafWeight", ownCgroup),
	},
	blockIODeviceFields(),
	[]FieldClass{
		kept("linux.resources.hugepageLimits", ownCgroup),
		kept("linux.resources.hugepageLimits[].pageSize", ownCgroup),
		kept("linux.resources.hugepageLimits[].limit", ownCgroup),
		refused("linux.resources.network",
			"net_cls classid and net_prio priorities tag the container's packets for the host's firewall (iptables -m cgroup) and traffic control rules",
			noLevelFix),
		kept("linux.resources.rdma", ownCgroup),
		kept("linux.resources.rdma[].hcaHandles", ownCgroup),
		kept("linux.resources.rdma[].hcaObjects", ownCgroup),
	},
	checked("resources", "linux.resources.unified"),
	checked("cgroups", "linux.cgroupsPath"),
	checked("namespaces", "linux.namespaces", "linux.namespaces[].type", "linux.namespaces[].path"),
	[]FieldClass{refused("linux.netDevices",
		"moves a network interface of the host into the container: the host loses it, and the container reaches the host's network past its CNI and firewall",
		"remove it; give the pod its network through CNI (no level allows host interfaces)")},
	checked("seccomp", "linux.seccomp", "linux.seccomp.defaultAction", "linux.seccomp.defaultErrnoRet",
		"linux.seccomp.architectures", "linux.seccomp.flags", "linux.seccomp.listenerPath", "linux.seccomp.listenerMetadata",
		"linux.seccomp.syscalls", "linux.seccomp.syscalls[].names", "linux.seccomp.syscalls[].action",
		"linux.seccomp.syscalls[].errnoRet", "linux.seccomp.syscalls[].args", "linux.seccomp.syscalls[].args[].index",
		"linux.seccomp.syscalls[].args[].value", "linux.seccomp.syscalls[].args[].valueTwo", "linux.seccomp.syscalls[].args[].op"),
	checked("kernel-paths", "linux.maskedPaths", "linux.readonlyPaths"),
	[]FieldClass{
		kept("linux.mountLabel", selinuxNote),
		refused("linux.intelRdt",
			"joins or creates an Intel RDT class of service in the host's resctrl: the cache and memory bandwidth of the whole machine",
			noLevelFix),
		kept("linux.memoryPolicy", group),
		kept("linux.memoryPolicy.mode", "the NUMA policy of the container's own memory, within its cpuset's nodes"),
		kept("linux.memoryPolicy.nodes", "the NUMA policy of the container's own memory, within its cpuset's nodes"),
		kept("linux.memoryPolicy.flags", "the NUMA policy of the container's own memory, within its cpuset's nodes"),
		refused("linux.personality",
			"changes the process's execution domain (32-bit uname, and with flags its address-space layout), which no Kubernetes or containerd client asks for",
			noLevelFix),
		refused("linux.timeOffsets", "shifts the clocks of a time namespace; no Kubernetes or containerd client asks for it", noLevelFix),
		refused("solaris", otherOS, fixOtherOS),
		refused("windows", otherOS, fixOtherOS),
		refused("vm", otherOS, fixOtherOS),
		refused("zos", otherOS, fixOtherOS),
		refused("freebsd", otherOS, fixOtherOS),
	},
)

func blockIODeviceFields() []FieldClass {
	out := []FieldClass{
		kept("linux.resources.blockIO.weightDevice", ownCgroup),
		kept("linux.resources.blockIO.weightDevice[].major", "the device a weight applies to"),
		kept("linux.resources.blockIO.weightDevice[].minor", "the device a weight applies to"),
		kept("linux.resources.blockIO.weightDevice[].weight", ownCgroup),
		kept("linux.resources.blockIO.weightDevice[].leafWeight", ownCgroup),
	}
	for _, t := range []string{"throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice"} {
		p := "linux.resources.blockIO." + t
		out = append(out, kept(p, ownCgroup), kept(p+"[].major", "the device a limit applies to"),
			kept(p+"[].minor", "the device a limit applies to"), kept(p+"[].rate", ownCgroup))
	}
	return out
}

// Fields returns the classification of every field of specs.Spec, sorted
// by path.
func Fields() []FieldClass {
	out := slices.Clone(fieldTable)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// fieldNode is one field of the spec's types, as the fields rule walks
// them. Only nodes that need a look at run time are kept: refused fields,
// unclassified ones, and those with such a field below them.
type fieldNode struct {
	name     string // JSON name
	path     string // as in FieldClass.Path
	index    []int  // reflect field index in the parent struct
	class    *FieldClass
	children []*fieldNode // of the field's struct, or of its elements' struct
}

// watch says whether the field itself must be judged when it has a value.
func (n *fieldNode) watch() bool { return n.class == nil || n.class.Class == Refused }

type fieldTree struct {
	root *fieldNode
	// unclassified are the paths of fields the table does not cover.
	unclassified []string
}

var fields = sync.OnceValue(func() *fieldTree {
	byPath := make(map[string]*FieldClass, len(fieldTable))
	for i := range fieldTable {
		byPath[fieldTable[i].Path] = &fieldTable[i]
	}
	t := &fieldTree{root: &fieldNode{}}
	t.root.children = t.build(reflect.TypeFor[specs.Spec](), "", byPath, 0)
	return t
})

// elem strips pointers, lists and maps off t: the type whose fields are
// the children of a field of type t, and whether the field holds elements.
func elem(t reflect.Type) (reflect.Type, bool) {
	many := false
	for {
		switch t.Kind() {
		case reflect.Pointer:
			t = t.Elem()
		case reflect.Slice, reflect.Array, reflect.Map:
			t, many = t.Elem(), true
		default:
			return t, many
		}
	}
}

// build returns the nodes of struct type st's fields that need a look.
func (t *fieldTree) build(st reflect.Type, prefix string, byPath map[string]*FieldClass, depth int) []*fieldNode {
	var out []*fieldNode
	for _, f := range reflect.VisibleFields(st) {
		if f.Anonymous || !f.IsExported() {
			continue // an embedded struct's fields are visible fields too
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		n := &fieldNode{name: name, path: p, index: f.Index, class: byPath[p]}
		if n.class == nil {
			t.unclassified = append(t.unclassified, p)
		}
		if !n.watch() {
			et, many := elem(f.Type)
			if et.Kind() == reflect.Struct && depth < 16 {
				cp := p
				if many {
					cp += "[]"
				}
				n.children = t.build(et, cp, byPath, depth+1)
			}
		}
		if n.watch() || len(n.children) > 0 {
			out = append(out, n)
		}
	}
	return out
}

// ruleFields refuses values in fields no rule may let through.
//
// Restricted fields: every field of the runtime spec (see Fields).
//
// Allowed values: any value in a field classified kept, checked or forced
// (the rule named by the classification judges it); none in a field
// classified refused (linux.netDevices, linux.intelRdt,
// linux.personality, linux.timeOffsets, linux.resources.network and the
// sections of other platforms) or in a field the classification does not
// know, such as one a newer runtime-spec added.
//
// Otherwise: refused. No level allows these fields.
func ruleFields(h *hardening) {
	h.walkFields(fields().root.children, reflect.ValueOf(h.spec).Elem(), "")
}

// ruleProcessFields is ruleFields for an exec'd process.
func ruleProcessFields(h *hardening) {
	for _, n := range fields().root.children {
		if n.name == "process" {
			h.walkFields(n.children, reflect.ValueOf(h.proc).Elem(), strings.TrimSuffix(h.field(""), "."))
		}
	}
}

// walkFields judges the fields of nodes in struct value v, whose own path
// (with indices and keys) is at.
func (h *hardening) walkFields(nodes []*fieldNode, v reflect.Value, at string) {
	for _, n := range nodes {
		fv := v.FieldByIndex(n.index)
		if isEmpty(fv) {
			continue
		}
		p := n.name
		if at != "" {
			p = at + "." + n.name
		}
		if n.watch() {
			h.refuseField(n, p, fv)
			continue
		}
		for fv.Kind() == reflect.Pointer {
			fv = fv.Elem()
		}
		switch fv.Kind() {
		case reflect.Struct:
			h.walkFields(n.children, fv, p)
		case reflect.Slice, reflect.Array:
			for i := 0; i < fv.Len(); i++ {
				if e := deref(fv.Index(i)); e.Kind() == reflect.Struct {
					h.walkFields(n.children, e, p+"["+itoa(i)+"]")
				}
			}
		case reflect.Map:
			keys := fv.MapKeys()
			sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
			for _, k := range keys {
				if e := deref(fv.MapIndex(k)); e.Kind() == reflect.Struct {
					h.walkFields(n.children, e, p+"["+fmt.Sprint(k)+"]")
				}
			}
		}
	}
}

func (h *hardening) refuseField(n *fieldNode, p string, v reflect.Value) {
	value := renderValue(v)
	if n.class == nil {
		h.refuse(p, value, "this version of the hardened runtime does not know the field, so no rule judges it",
			"remove it; a field is allowed once a release of the runtime classifies it")
		return
	}
	h.refuse(p, value, n.class.Why, n.class.Fix)
}

// renderValue shows a value briefly, as JSON.
func renderValue(v reflect.Value) string {
	data, err := json.Marshal(v.Interface())
	if err != nil {
		return fmt.Sprint(v.Interface())
	}
	if s := string(data); len(s) <= 80 {
		return s
	}
	return string(data[:77]) + "..."
}

func reflectElem(p any) reflect.Value { return reflect.ValueOf(p).Elem() }

func deref(v reflect.Value) reflect.Value {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return reflect.Value{}
		}
		v = v.Elem()
	}
	return v
}

// isEmpty reports whether a field has no value: nil, an empty list or map,
// or the zero value. A pointer to a zero value is a value (oomScoreAdj: 0).
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		return v.IsNil()
	case reflect.Slice, reflect.Map:
		return v.Len() == 0
	}
	return v.IsZero()
}
