package spec

import (
	"errors"
	"path"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fixtureNamespace is the containerd namespace each fixture was made in.
var fixtureNamespace = map[string]string{
	"ctr-run": "default", "cri-container": "k8s.io", "cri-sandbox": "k8s.io", "nonroot-own-seccomp": "k8s.io",
	"real-ctr-run": "hardened-test", "real-cri-container": "k8s.io", "real-cri-sandbox": "k8s.io",
}

// containerOf is what the shim knows about a fixture's container: its id
// (the last element of its cgroup), bundle, namespace and pod.
func containerOf(t testing.TB, name string, s *specs.Spec) ContainerInfo {
	t.Helper()
	p := s.Linux.CgroupsPath
	id := path.Base(p)
	if i := strings.LastIndex(p, ":"); i >= 0 {
		id = p[i+1:]
	}
	ns := fixtureNamespace[name]
	c := ContainerInfo{ID: id, Namespace: ns, Bundle: "/run/containerd/io.containerd.runtime.v2.task/" + ns + "/" + id,
		SandboxID: s.Annotations["io.kubernetes.cri.sandbox-id"], PodUID: s.Annotations["io.kubernetes.cri.sandbox-uid"]}
	if m := podSlice.FindStringSubmatch(strings.Split(p, ":")[0]); m != nil {
		c.PodUID = strings.ReplaceAll(m[1], "_", "-")
	}
	return c
}

// fieldCase is a case of the rules that classify fields: it mutates the
// real `ctr run` spec (containerd v2.4.2, namespace hardened-test, id
// fixture-ctr) hardened with the container facts the shim passes.
type fieldCase struct {
	name   string
	level  string
	mutate func(s *specs.Spec)
	// container replaces the container facts when set.
	container *ContainerInfo
	// refused is the rule, a substring of the field and one of the value
	// that must be refused.
	refused [3]string
	changed [2]string
	check   func(t *testing.T, s *specs.Spec)
}

func hook(p string) specs.Hook { return specs.Hook{Path: p, Args: []string{path.Base(p), "prestart"}} }

func withHooks(hk specs.Hooks) func(s *specs.Spec) { return func(s *specs.Spec) { s.Hooks = &hk } }

func cgroupsPath(p string) func(s *specs.Spec) {
	return func(s *specs.Spec) { s.Linux.CgroupsPath = p }
}

func rlimit(typ string, soft, hard uint64) func(s *specs.Spec) {
	return func(s *specs.Spec) {
		s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: typ, Soft: soft, Hard: hard})
	}
}

func ptr[T any](v T) *T { return &v }

func TestFieldRules(t *testing.T) {
	const nvidia = "/usr/bin/nvidia-container-runtime-hook"
	kube := ContainerInfo{ID: "abc123", Namespace: "k8s.io", PodUID: "3f2e1d0c-b9a8-4c7d-8e6f-5a4b3c2d1e0f", Bundle: "/run/b/abc123"}
	cases := []fieldCase{
		// hooks
		{name: "hook prestart", mutate: withHooks(specs.Hooks{Prestart: []specs.Hook{hook("/bin/sh")}}), refused: [3]string{"hooks", "hooks.prestart[0].path", "/bin/sh"}},
		{name: "hook createRuntime", mutate: withHooks(specs.Hooks{CreateRuntime: []specs.Hook{hook("/tmp/x")}}), refused: [3]string{"hooks", "hooks.createRuntime[0].path", "/tmp/x"}},
		{name: "hook createContainer", mutate: withHooks(specs.Hooks{CreateContainer: []specs.Hook{hook("/tmp/x")}}), refused: [3]string{"hooks", "hooks.createContainer[0]", "/tmp/x"}},
		{name: "hook startContainer", mutate: withHooks(specs.Hooks{StartContainer: []specs.Hook{hook("/x")}}), refused: [3]string{"hooks", "hooks.startContainer[0]", "/x"}},
		{name: "hook poststart", mutate: withHooks(specs.Hooks{Poststart: []specs.Hook{hook("/x")}}), refused: [3]string{"hooks", "hooks.poststart[0]", "/x"}},
		{name: "hook poststop second", mutate: withHooks(specs.Hooks{Poststop: []specs.Hook{hook(nvidia), hook("/x")}}), level: "hooked", refused: [3]string{"hooks", "hooks.poststop[1]", "/x"}},
		{name: "hook not listed under its own name", level: "hooked", mutate: withHooks(specs.Hooks{Prestart: []specs.Hook{hook("/usr/bin/../bin/nvidia-container-runtime-hook")}}),
			refused: [3]string{"hooks", "hooks.prestart[0]", "/usr/bin/../bin"}},
		{name: "hook listed", level: "hooked", mutate: withHooks(specs.Hooks{Prestart: []specs.Hook{hook(nvidia)}, CreateRuntime: []specs.Hook{hook(nvidia)}}),
			check: func(t *testing.T, s *specs.Spec) {
				if len(s.Hooks.Prestart) != 1 || len(s.Hooks.CreateRuntime) != 1 {
					t.Errorf("listed hooks not kept: %+v", s.Hooks)
				}
			}},
		{name: "hook listed but startContainer", level: "hooked", mutate: withHooks(specs.Hooks{StartContainer: []specs.Hook{hook(nvidia)}}), refused: [3]string{"hooks", "hooks.startContainer[0]", nvidia}},
		{name: "hooks empty", mutate: withHooks(specs.Hooks{})},

		// root-path
		{name: "root path relative", mutate: func(s *specs.Spec) { s.Root.Path = "./rootfs" }},
		{name: "root path bundle", mutate: func(s *specs.Spec) { s.Root.Path = "/run/b/fixture-ctr/rootfs" }},
		{name: "root path host root", mutate: func(s *specs.Spec) { s.Root.Path = "/" }, refused: [3]string{"root-path", "root.path", "/"}},
		{name: "root path other bundle", mutate: func(s *specs.Spec) { s.Root.Path = "/run/b/other/rootfs" }, refused: [3]string{"root-path", "root.path", "/run/b/other/rootfs"}},
		{name: "root path escapes bundle", mutate: func(s *specs.Spec) { s.Root.Path = "../../etc" }, refused: [3]string{"root-path", "root.path", "../../etc"}},
		{name: "root path unknown bundle", container: &ContainerInfo{}, mutate: func(s *specs.Spec) { s.Root.Path = "/run/b/fixture-ctr/rootfs" }, refused: [3]string{"root-path", "root.path", "/run/b"}},

		// cgroups
		{name: "cgroup containerd default"},
		{name: "cgroup empty", mutate: cgroupsPath("")},
		{name: "cgroup root", mutate: cgroupsPath("/"), refused: [3]string{"cgroups", "linux.cgroupsPath", "/"}},
		{name: "cgroup at the top", mutate: cgroupsPath("/fixture-ctr"), refused: [3]string{"cgroups", "linux.cgroupsPath", "/fixture-ctr"}},
		{name: "cgroup of a service", mutate: cgroupsPath("/system.slice/kubelet.service"), refused: [3]string{"cgroups", "linux.cgroupsPath", "kubelet.service"}},
		{name: "cgroup of a service named like the container", container: &ContainerInfo{ID: "kubelet.service", Namespace: "system.slice", Bundle: "/run/b/fixture-ctr"},
			mutate: cgroupsPath("/system.slice/kubelet.service"), refused: [3]string{"cgroups", "linux.cgroupsPath", "kubelet.service"}},
		{name: "cgroup of a docker container", container: &ContainerInfo{ID: "0123abcd", Namespace: "docker", Bundle: "/run/b/fixture-ctr"},
			mutate: cgroupsPath("/docker/0123abcd"), refused: [3]string{"cgroups", "linux.cgroupsPath", "/docker/"}},
		{name: "cgroup of another namespace's container", mutate: cgroupsPath("/k8s.io/fixture-ctr"), refused: [3]string{"cgroups", "linux.cgroupsPath", "/k8s.io/"}},
		{name: "cgroup of another container", mutate: cgroupsPath("/hardened-test/victim"), refused: [3]string{"cgroups", "linux.cgroupsPath", "victim"}},
		{name: "cgroup deeper in the namespace", mutate: cgroupsPath("/hardened-test/x/fixture-ctr"), refused: [3]string{"cgroups", "linux.cgroupsPath", "/x/"}},
		{name: "cgroup not clean", mutate: cgroupsPath("/hardened-test/../system.slice/fixture-ctr"), refused: [3]string{"cgroups", "linux.cgroupsPath", ".."}},
		{name: "cgroup relative", mutate: cgroupsPath("hardened-test/fixture-ctr"), refused: [3]string{"cgroups", "linux.cgroupsPath", "hardened-test"}},
		{name: "cgroup kubepods", container: &kube, mutate: cgroupsPath("/kubepods/burstable/pod3f2e1d0c-b9a8-4c7d-8e6f-5a4b3c2d1e0f/abc123")},
		{name: "cgroup kubepods guaranteed", container: &kube, mutate: cgroupsPath("/kubepods/pod3f2e1d0c-b9a8-4c7d-8e6f-5a4b3c2d1e0f/abc123")},
		{name: "cgroup kubepods other pod", container: &kube, mutate: cgroupsPath("/kubepods/besteffort/pod00000000-0000-0000-0000-000000000000/abc123"),
			refused: [3]string{"cgroups", "linux.cgroupsPath", "pod0000"}},
		{name: "cgroup kubepods level", container: &kube, mutate: cgroupsPath("/kubepods/abc123"), refused: [3]string{"cgroups", "linux.cgroupsPath", "/kubepods/abc123"}},
		{name: "cgroup kubepods under a custom root", container: &kube, mutate: cgroupsPath("/kube/kubepods/pod3f2e1d0c-b9a8-4c7d-8e6f-5a4b3c2d1e0f/abc123"),
			refused: [3]string{"cgroups", "linux.cgroupsPath", "/kube/"}},
		{name: "cgroup kubepods under a listed root", level: "parents", container: &kube,
			mutate: cgroupsPath("/buildkit/kubepods/pod3f2e1d0c-b9a8-4c7d-8e6f-5a4b3c2d1e0f/abc123")},
		{name: "cgroup systemd pod slice", container: &kube, mutate: cgroupsPath("kubepods-besteffort-pod3f2e1d0c_b9a8_4c7d_8e6f_5a4b3c2d1e0f.slice:cri-containerd:abc123")},
		{name: "cgroup systemd other pod", container: &kube, mutate: cgroupsPath("kubepods-pod11111111_b9a8_4c7d_8e6f_5a4b3c2d1e0f.slice:cri-containerd:abc123"),
			refused: [3]string{"cgroups", "linux.cgroupsPath", "pod1111"}},
		{name: "cgroup systemd service slice", container: &kube, mutate: cgroupsPath("system.slice:cri-containerd:abc123"), refused: [3]string{"cgroups", "linux.cgroupsPath", "system.slice"}},
		{name: "cgroup systemd other name", container: &kube, mutate: cgroupsPath("kubepods-besteffort-pod3f2e1d0c_b9a8_4c7d_8e6f_5a4b3c2d1e0f.slice:cri-containerd:other"),
			refused: [3]string{"cgroups", "linux.cgroupsPath", ":other"}},
		{name: "cgroup listed parent", level: "parents", mutate: cgroupsPath("/buildkit/jobs/fixture-ctr")},
		{name: "cgroup listed slice", level: "parents", mutate: cgroupsPath("build-jobs.slice:ctr:fixture-ctr")},
		{name: "cgroup listed slice other name", level: "parents", mutate: cgroupsPath("build.slice:ctr:kubelet"), refused: [3]string{"cgroups", "linux.cgroupsPath", "kubelet"}},
		{name: "cgroup unknown container", container: &ContainerInfo{}, mutate: cgroupsPath("/default/anything")},
		{name: "cgroup unknown container, service", container: &ContainerInfo{}, mutate: cgroupsPath("/system.slice/anything"), refused: [3]string{"cgroups", "linux.cgroupsPath", "system.slice"}},

		// user-namespace
		{name: "userns unprivileged range", mutate: func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		}},
		{name: "userns host root uid", mutate: func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}, {ContainerID: 65534, HostID: 0, Size: 1}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		}, refused: [3]string{"user-namespace", "linux.uidMappings[1]", "hostID 0"}},
		{name: "userns host root gid", mutate: func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
		}, refused: [3]string{"user-namespace", "linux.gidMappings[0]", "hostID 0"}},

		// scheduling
		{name: "scheduler other", mutate: func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedOther, Nice: 5} }},
		{name: "scheduler batch reset on fork", mutate: func(s *specs.Spec) {
			s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Flags: []specs.LinuxSchedulerFlag{specs.SchedFlagResetOnFork}}
		}},
		{name: "scheduler fifo", mutate: func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedFIFO, Priority: 99} },
			refused: [3]string{"scheduling", "process.scheduler.policy", "SCHED_FIFO"}},
		{name: "scheduler rr", mutate: func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedRR, Priority: 1} },
			refused: [3]string{"scheduling", "process.scheduler.policy", "SCHED_RR"}},
		{name: "scheduler deadline", mutate: func(s *specs.Spec) {
			s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 1e6, Deadline: 2e6, Period: 2e6}
		}, refused: [3]string{"scheduling", "process.scheduler.policy", "SCHED_DEADLINE"}},
		{name: "scheduler fifo allowed", level: "realtime", mutate: func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedFIFO, Priority: 10} }},
		{name: "scheduler negative nice", mutate: func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedOther, Nice: -20} },
			refused: [3]string{"scheduling", "process.scheduler.nice", "-20"}},
		{name: "scheduler negative nice allowed", level: "realtime", mutate: func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedOther, Nice: -10} }},
		{name: "scheduler priority for other", mutate: func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedOther, Priority: 50} },
			refused: [3]string{"scheduling", "process.scheduler.priority", "50"}},
		{name: "scheduler reclaim flag", mutate: func(s *specs.Spec) {
			s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedOther, Flags: []specs.LinuxSchedulerFlag{specs.SchedFlagReclaim}}
		}, refused: [3]string{"scheduling", "process.scheduler.flags", "SCHED_FLAG_RECLAIM"}},
		{name: "scheduler unknown", mutate: func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedISO} },
			refused: [3]string{"scheduling", "process.scheduler.policy", "SCHED_ISO"}},
		{name: "ioprio be", mutate: func(s *specs.Spec) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 0}
		}},
		{name: "ioprio idle", mutate: func(s *specs.Spec) { s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE} }},
		{name: "ioprio rt", mutate: func(s *specs.Spec) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_RT, Priority: 0}
		},
			refused: [3]string{"scheduling", "process.ioPriority.class", "IOPRIO_CLASS_RT"}},
		{name: "ioprio rt allowed", level: "realtime", mutate: func(s *specs.Spec) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_RT, Priority: 4}
		}},
		{name: "ioprio out of range", mutate: func(s *specs.Spec) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 9}
		},
			refused: [3]string{"scheduling", "process.ioPriority.priority", "9"}},

		// oom-score
		{name: "oom score negative", mutate: func(s *specs.Spec) { s.Process.OOMScoreAdj = ptr(-1000) }, changed: [2]string{"oom-score", "process.oomScoreAdj"},
			check: func(t *testing.T, s *specs.Spec) {
				if *s.Process.OOMScoreAdj != 0 {
					t.Errorf("oomScoreAdj %d, want 0", *s.Process.OOMScoreAdj)
				}
			}},
		{name: "oom score burstable kept", mutate: func(s *specs.Spec) { s.Process.OOMScoreAdj = ptr(999) }, check: func(t *testing.T, s *specs.Spec) {
			if *s.Process.OOMScoreAdj != 999 {
				t.Errorf("oomScoreAdj %d, want 999", *s.Process.OOMScoreAdj)
			}
		}},
		{name: "oom score kubernetes level", level: "kubernetes-oom", mutate: func(s *specs.Spec) { s.Process.OOMScoreAdj = ptr(-998) }, check: func(t *testing.T, s *specs.Spec) {
			if *s.Process.OOMScoreAdj != -998 {
				t.Errorf("oomScoreAdj %d, want -998 kept", *s.Process.OOMScoreAdj)
			}
		}},
		{name: "oom score below kubernetes level", level: "kubernetes-oom", mutate: func(s *specs.Spec) { s.Process.OOMScoreAdj = ptr(-999) }, changed: [2]string{"oom-score", "process.oomScoreAdj"}},

		// limits: rlimits
		{name: "rlimit rtprio raised", mutate: rlimit("RLIMIT_RTPRIO", 99, 99), refused: [3]string{"limits", "process.rlimits[RLIMIT_RTPRIO]", "hard 99"}},
		{name: "rlimit rtprio zero", mutate: rlimit("RLIMIT_RTPRIO", 0, 0)},
		{name: "rlimit rtprio realtime", level: "realtime", mutate: rlimit("RLIMIT_RTPRIO", 50, 50)},
		{name: "rlimit memlock raised", mutate: rlimit("RLIMIT_MEMLOCK", 1<<40, 1<<40), refused: [3]string{"limits", "process.rlimits[RLIMIT_MEMLOCK]", "hard 1099511627776"}},
		{name: "rlimit memlock unlimited", mutate: rlimit("RLIMIT_MEMLOCK", ^uint64(0), ^uint64(0)), refused: [3]string{"limits", "process.rlimits[RLIMIT_MEMLOCK]", "18446744073709551615"}},
		{name: "rlimit memlock 64k", mutate: rlimit("RLIMIT_MEMLOCK", 65536, 65536)},
		{name: "rlimit nice raised", mutate: rlimit("RLIMIT_NICE", 40, 40), refused: [3]string{"limits", "process.rlimits[RLIMIT_NICE]", "hard 40"}},
		{name: "rlimit nice default", mutate: rlimit("RLIMIT_NICE", 0, 20)},
		{name: "rlimit nproc", mutate: rlimit("RLIMIT_NPROC", 100, 100), refused: [3]string{"limits", "process.rlimits[RLIMIT_NPROC]", "100"}},
		{name: "rlimit unknown", mutate: rlimit("RLIMIT_FOO", 1, 1), refused: [3]string{"limits", "process.rlimits[RLIMIT_FOO]", "soft 1"}},
		{name: "rlimit core and stack", mutate: func(s *specs.Spec) {
			rlimit("RLIMIT_CORE", ^uint64(0), ^uint64(0))(s)
			rlimit("RLIMIT_STACK", 8<<20, ^uint64(0))(s)
		}},

		// resources
		{name: "cpu realtime runtime", mutate: func(s *specs.Spec) { s.Linux.Resources.CPU = &specs.LinuxCPU{RealtimeRuntime: ptr(int64(950000))} },
			refused: [3]string{"resources", "linux.resources.cpu.realtimeRuntime", "950000"}},
		{name: "cpu realtime runtime zero", mutate: func(s *specs.Spec) { s.Linux.Resources.CPU = &specs.LinuxCPU{RealtimeRuntime: ptr(int64(0))} }},
		{name: "cpu realtime allowed", level: "realtime", mutate: func(s *specs.Spec) {
			s.Linux.Resources.CPU = &specs.LinuxCPU{RealtimeRuntime: ptr(int64(950000)), RealtimePeriod: ptr(uint64(1000000))}
		}},
		{name: "cpu limits kept", mutate: func(s *specs.Spec) {
			s.Linux.Resources.CPU = &specs.LinuxCPU{Shares: ptr(uint64(262144)), Quota: ptr(int64(-1)), Period: ptr(uint64(100000)), Cpus: "0-1"}
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr(int64(1 << 30)), Swap: ptr(int64(-1))}
			s.Linux.Resources.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 30}}
			s.Linux.Resources.BlockIO = &specs.LinuxBlockIO{Weight: ptr(uint16(1000))}
		}},
		{name: "oom killer disabled", mutate: func(s *specs.Spec) { s.Linux.Resources.Memory = &specs.LinuxMemory{DisableOOMKiller: ptr(true)} },
			refused: [3]string{"resources", "linux.resources.memory.disableOOMKiller", "true"}},
		{name: "no memory hierarchy", mutate: func(s *specs.Spec) { s.Linux.Resources.Memory = &specs.LinuxMemory{UseHierarchy: ptr(false)} },
			refused: [3]string{"resources", "linux.resources.memory.useHierarchy", "false"}},
		{name: "unified limits", mutate: func(s *specs.Spec) {
			s.Linux.Resources.Unified = map[string]string{"memory.high": "1073741824", "memory.min": "0", "cpu.weight": "100", "hugetlb.2MB.max": "0", "pids.max": "100"}
		}},
		{name: "unified pids unlimited", mutate: func(s *specs.Spec) { s.Linux.Resources.Unified = map[string]string{"pids.max": "max"} },
			refused: [3]string{"resources", "linux.resources.unified[pids.max]", "max"}},
		{name: "unified pids above", mutate: func(s *specs.Spec) { s.Linux.Resources.Unified = map[string]string{"pids.max": "100000"} },
			refused: [3]string{"resources", "linux.resources.unified[pids.max]", "100000"}},
		{name: "unified cgroup procs", mutate: func(s *specs.Spec) { s.Linux.Resources.Unified = map[string]string{"cgroup.procs": "1"} },
			refused: [3]string{"resources", "linux.resources.unified[cgroup.procs]", "1"}},
		{name: "unified path", mutate: func(s *specs.Spec) { s.Linux.Resources.Unified = map[string]string{"../memory.max": "max"} },
			refused: [3]string{"resources", "linux.resources.unified[../memory.max]", "max"}},

		// annotations
		{name: "annotation systemd property", mutate: func(s *specs.Spec) {
			s.Annotations = map[string]string{"org.systemd.property.DeviceAllow": "'/dev/sda rwm'"}
		}, refused: [3]string{"annotations", "annotations[org.systemd.property.DeviceAllow]", "/dev/sda"}},
		{name: "annotation criu config", mutate: func(s *specs.Spec) { s.Annotations = map[string]string{"org.criu.config": "/tmp/evil.conf"} },
			refused: [3]string{"annotations", "annotations[org.criu.config]", "/tmp/evil.conf"}},
		{name: "annotation bundle", mutate: func(s *specs.Spec) { s.Annotations = map[string]string{"bundle": "/"} },
			refused: [3]string{"annotations", "annotations[bundle]", "/"}},
		{name: "annotation metadata", mutate: func(s *specs.Spec) {
			s.Annotations = map[string]string{"io.kubernetes.cri.container-type": "container", "org.opencontainers.image.title": "x"}
		}},

		// kept fields stay as they are
		{name: "kept fields", mutate: func(s *specs.Spec) {
			s.Process.SelinuxLabel = "system_u:system_r:container_t:s0:c1,c2"
			s.Linux.MountLabel = "system_u:object_r:container_file_t:s0:c1,c2"
			s.Process.ExecCPUAffinity = &specs.CPUAffinity{Initial: "0", Final: "0-1"}
			s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "0"}
			s.Process.User.Umask = ptr(uint32(0o077))
			s.Hostname = "app"
		}, check: func(t *testing.T, s *specs.Spec) {
			if s.Process.SelinuxLabel == "" || s.Linux.MemoryPolicy == nil || s.Process.ExecCPUAffinity == nil {
				t.Error("kept fields were dropped")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := readSpec(t, "real-ctr-run")
			if tc.mutate != nil {
				tc.mutate(s)
			}
			lv := testLevel(t, tc.level)
			inputs := Inputs{Host: noAppArmorHost, Container: ContainerInfo{ID: "fixture-ctr", Namespace: "hardened-test", Bundle: "/run/b/fixture-ctr"}}
			if tc.container != nil {
				inputs.Container = *tc.container
			}
			res, err := Harden(s, lv, inputs)
			vs, cerr := Check(s, lv, inputs)
			if cerr != nil {
				t.Fatalf("Check = %v", cerr)
			}
			if tc.refused[0] != "" {
				var refused *RefusedError
				if !errors.As(err, &refused) {
					t.Fatalf("Harden = %v, want a refusal by rule %s", err, tc.refused[0])
				}
				i := slices.IndexFunc(refused.Violations, func(v Violation) bool {
					return v.Rule == tc.refused[0] && strings.Contains(v.Field, tc.refused[1])
				})
				if i < 0 {
					t.Fatalf("Harden = %v, want a refusal of %s by rule %s", err, tc.refused[1], tc.refused[0])
				}
				v := refused.Violations[i]
				if !strings.Contains(v.Value, tc.refused[2]) || v.Reason == "" || v.Fix == "" {
					t.Errorf("violation %+v: want value %q, a reason and a fix", v, tc.refused[2])
				}
				if !slices.ContainsFunc(vs, func(v Violation) bool { return v.Refused && v.Rule == tc.refused[0] }) {
					t.Errorf("Check = %v, want a refusal by rule %s", vs, tc.refused[0])
				}
				if len(refused.Violations) == 1 && !strings.Contains(err.Error(), "rule "+tc.refused[0]+": "+v.Field+"="+v.Value) {
					t.Errorf("error %q does not name the rule, the field and the value", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Harden = %v", err)
			}
			if tc.changed[0] != "" && !slices.ContainsFunc(res.Changes, func(c Change) bool { return c.Rule == tc.changed[0] && c.Field == tc.changed[1] }) {
				t.Errorf("changes %+v, want %s by rule %s", res.Changes, tc.changed[1], tc.changed[0])
			}
			if tc.check != nil {
				tc.check(t, res.Spec)
			}
			if vs, _ := Check(res.Spec, lv, inputs); len(vs) > 0 {
				t.Errorf("Check(Harden(s)) = %v, want none", vs)
			}
		})
	}
}

// TestFixturesWithContainerFacts: the real and hand-made CRI and ctr specs
// pass every new rule with the facts the shim passes (their id, namespace,
// pod and bundle) under every built-in level.
func TestFixturesWithContainerFacts(t *testing.T) {
	mine := []string{"fields", "hooks", "root-path", "cgroups", "user-namespace", "scheduling", "resources", "annotations", "limits"}
	for _, name := range fixtures {
		for _, ln := range []string{"baseline", "restricted", "strict", "host-network"} {
			s := readSpec(t, name)
			inputs := Inputs{Host: noAppArmorHost, Container: containerOf(t, name, s)}
			vs, err := Check(s, testLevel(t, ln), inputs)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range vs {
				if v.Refused && slices.Contains(mine, v.Rule) {
					t.Errorf("%s under %s: %v", name, ln, v)
				}
			}
		}
	}
}
