package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/api/types/runtimeoptions/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/integration/harness"
)

// TestFieldsThroughContainerd sends specs that use the fields no rule
// used to look at (issue 16: hooks, scheduling, rlimits, oom_score_adj,
// cgroupsPath, personality, netDevices, ...) through the real containerd
// and runc under level restricted: each is refused with its rule, or
// starts with the request neutralised, as seen from inside.
func TestFieldsThroughContainerd(t *testing.T) {
	require(t)
	marker := filepath.Join(t.TempDir(), "hook-ran")
	hookScript := writeHook(t, marker)
	for _, tc := range []struct {
		name   string
		opts   []oci.SpecOpts
		refuse []string // the error must say these; nil: it must start
		probe  string   // shell run inside when it starts
		inside []string // lines the probe must print
	}{
		{name: "hook-prestart", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: hookScript, Args: []string{hookScript}}}}
		})}, refuse: []string{"rule hooks", "hooks.prestart[0].path=" + hookScript, "hooks.allow"}},
		{name: "hook-createRuntime", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "touch " + marker}}}}
		})}, refuse: []string{"rule hooks", "hooks.createRuntime[0].path=/bin/sh"}},
		{name: "hook-startContainer", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "true"}}}}
		})}, refuse: []string{"rule hooks", "hooks.startContainer[0].path=/bin/sh"}},
		{name: "ioprio-rt", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_RT, Priority: 0}
		})}, refuse: []string{"rule scheduling", "process.ioPriority.class=IOPRIO_CLASS_RT", "scheduling.allowRealtime"}},
		{name: "sched-fifo", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedFIFO, Priority: 99}
		})}, refuse: []string{"rule scheduling", "process.scheduler.policy=SCHED_FIFO"}},
		{name: "nice-negative", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedOther, Nice: -20}
		})}, refuse: []string{"rule scheduling", "process.scheduler.nice=-20", "scheduling.minNice"}},
		{name: "nice-positive", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedOther, Nice: 5}
		})}, probe: `echo "nice=$(cut -d' ' -f19 /proc/self/stat)"`, inside: []string{"nice=5"}},
		{name: "rlimit-rtprio", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_RTPRIO", Hard: 99, Soft: 99})
		})}, refuse: []string{"rule limits", "process.rlimits[RLIMIT_RTPRIO]=soft 99 hard 99"}},
		{name: "rlimit-memlock", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_MEMLOCK", Hard: ^uint64(0), Soft: ^uint64(0)})
		})}, refuse: []string{"rule limits", "process.rlimits[RLIMIT_MEMLOCK]", "limits.maxMemlock"}},
		{name: "rlimit-nproc", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_NPROC", Hard: 1 << 20, Soft: 1 << 20})
		})}, refuse: []string{"rule limits", "process.rlimits[RLIMIT_NPROC]"}},
		{name: "oom-score-negative", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) { v := -1000; s.Process.OOMScoreAdj = &v })},
			probe: `echo "oom=$(cat /proc/self/oom_score_adj)"`, inside: []string{"oom=0"}},
		{name: "cgroup-root", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) { s.Linux.CgroupsPath = "/" })},
			refuse: []string{"rule cgroups", "linux.cgroupsPath=/:", "cgroups.parents"}},
		{name: "cgroup-of-a-service", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) { s.Linux.CgroupsPath = "/system.slice/containerd.service" })},
			refuse: []string{"rule cgroups", "linux.cgroupsPath=/system.slice/containerd.service"}},
		{name: "cgroup-of-another-namespace", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			s.Linux.CgroupsPath = "/k8s.io" + s.Linux.CgroupsPath[strings.LastIndex(s.Linux.CgroupsPath, "/"):]
		})}, refuse: []string{"rule cgroups", "linux.cgroupsPath=/k8s.io/"}},
		{name: "root-path-host", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) { s.Root.Path = "/" })},
			refuse: []string{"rule root-path", "root.path=/:"}},
		{name: "personality", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
		})}, refuse: []string{"rule fields", "linux.personality="}},
		{name: "net-devices", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"lo": {Name: "hostlo"}}
		})}, refuse: []string{"rule fields", "linux.netDevices="}},
		{name: "intel-rdt", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{ClosID: "x"} })},
			refuse: []string{"rule fields", "linux.intelRdt="}},
		{name: "time-offsets", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 1 << 30}}
		})}, refuse: []string{"rule fields", "linux.timeOffsets="}},
		{name: "net-cls", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			id := uint32(0x100001)
			s.Linux.Resources.Network = &specs.LinuxNetwork{ClassID: &id}
		})}, refuse: []string{"rule fields", "linux.resources.network="}},
		{name: "cpu-realtime", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			rt := int64(950000)
			s.Linux.Resources.CPU = &specs.LinuxCPU{RealtimeRuntime: &rt}
		})}, refuse: []string{"rule resources", "linux.resources.cpu.realtimeRuntime=950000"}},
		{name: "userns-host-root", opts: []oci.SpecOpts{withSpec(func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
		})}, refuse: []string{"rule user-namespace", "linux.uidMappings[0]=containerID 0 hostID 0 size 65536"}},
		{name: "systemd-property-annotation", opts: []oci.SpecOpts{oci.WithAnnotations(map[string]string{"org.systemd.property.DeviceAllow": "'/dev/sda rwm'"})},
			refuse: []string{"rule annotations", "annotations[org.systemd.property.DeviceAllow]"}},
		{name: "criu-config-annotation", opts: []oci.SpecOpts{oci.WithAnnotations(map[string]string{"org.criu.config": "/tmp/criu.conf"})},
			refuse: []string{"rule annotations", "annotations[org.criu.config]=/tmp/criu.conf"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probe := tc.probe
			if probe == "" {
				probe = "true"
			}
			res, err := runContainer(t, ns, hardenedRT, harness.Busybox, []string{"sh", "-c", probe}, tc.opts...)
			if tc.refuse != nil {
				if err == nil {
					t.Fatalf("started; want a refusal. Inside:\n%s%s", res.Stdout, res.Stderr)
				}
				for _, w := range tc.refuse {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("refusal %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("refused, want it started with the request neutralised: %v", err)
			}
			for _, w := range tc.inside {
				if !strings.Contains(res.Stdout+"\n", w+"\n") {
					t.Errorf("inside: want %s; got\n%s%s", w, res.Stdout, res.Stderr)
				}
			}
		})
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a refused hook ran on the host")
	}
}

// TestListedHookRuns: a hook whose path the policy lists (hooks.allow)
// runs, on the host, with the container's state on its stdin; the same
// spec under the default level is refused.
func TestListedHookRuns(t *testing.T) {
	require(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "state.json")
	hookScript := writeHook(t, marker)
	policyFile := filepath.Join(dir, "policy.yaml")
	pol := fmt.Sprintf("mode: enforce\ndefaultLevel: with-hook\nlevels:\n  with-hook:\n    extends: restricted\n    hooks:\n      allow: [%s]\n", hookScript)
	if err := os.WriteFile(policyFile, []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	withHook := withSpec(func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: hookScript, Args: []string{hookScript, "createRuntime"}}}}
	})
	res, err := runWithRuntimeOptions(t, &runtimeoptions.Options{ConfigPath: policyFile}, []string{"echo", "ran"}, withHook)
	if err != nil {
		t.Fatalf("container with a listed hook: %v", err)
	}
	if !strings.Contains(res.Stdout, "ran") {
		t.Errorf("the container did not run: %q %q", res.Stdout, res.Stderr)
	}
	data, err := os.ReadFile(marker)
	if err != nil {
		t.Fatalf("the listed hook did not run: %v", err)
	}
	var state specs.State
	if err := json.Unmarshal(data, &state); err != nil || state.ID == "" || state.Pid == 0 {
		t.Errorf("the hook's stdin = %q (%v), want the container's state", data, err)
	}
	os.Remove(marker)
	if _, err := runContainer(t, ns, hardenedRT, harness.Busybox, []string{"true"}, withHook); err == nil || !strings.Contains(err.Error(), "rule hooks") {
		t.Errorf("the same hook under the default level: err = %v, want a refusal by rule hooks", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the hook ran under a level that does not list it")
	}
}

// TestPidsUnlimitedNeutralised: a container that asks for no pids limit
// gets the level's, as the host's pids cgroup shows while it runs.
func TestPidsUnlimitedNeutralised(t *testing.T) {
	require(t)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	id := newID("pids-unlimited")
	startTaskWith(t, ctx, id, nil, oci.WithProcessArgs("sleep", "600"), withSpec(func(s *specs.Spec) {
		n := int64(-1)
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &n}
	}))
	data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", ns, id, "pids.max"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(data)); got != "4096" {
		t.Errorf("pids.max of the container = %s, want the level's 4096", got)
	}
}

// TestTaskUpdateRefused: a task update that would lift the level's pids
// limit (the attack of issue 16: 4096 to unlimited) is refused, and the
// container keeps its limit; one that only changes memory goes through.
func TestTaskUpdateRefused(t *testing.T) {
	require(t)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	id := newID("update")
	_, task := startTaskWith(t, ctx, id, nil, oci.WithProcessArgs("sleep", "600"))
	unlimited := int64(-1)
	err := task.Update(ctx, containerd.WithResources(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &unlimited}}))
	if err == nil || !strings.Contains(err.Error(), "rule limits") || !strings.Contains(err.Error(), "linux.resources.pids.limit=-1") {
		t.Errorf("Update(pids unlimited) = %v, want a refusal by rule limits", err)
	}
	if data, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", ns, id, "pids.max")); strings.TrimSpace(string(data)) != "4096" {
		t.Errorf("pids.max after the refused update = %q, want 4096", data)
	}
	limit := int64(64 << 20)
	if err := task.Update(ctx, containerd.WithResources(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}})); err != nil {
		t.Errorf("Update(memory) = %v, want it applied", err)
	}
}

// TestExecFieldsRefused: an exec'd process is judged like the container's
// own: realtime scheduling and raised rlimits are refused at exec.
func TestExecFieldsRefused(t *testing.T) {
	require(t)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	_, task := startTaskWith(t, ctx, newID("exec-fields"), nil, oci.WithProcessArgs("sleep", "600"))
	spec, err := task.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(p *specs.Process)
		want   []string
	}{
		{"sched-fifo", func(p *specs.Process) { p.Scheduler = &specs.Scheduler{Policy: specs.SchedFIFO, Priority: 50} }, []string{"rule scheduling", "exec.scheduler.policy=SCHED_FIFO"}},
		{"ioprio-rt", func(p *specs.Process) { p.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_RT} }, []string{"rule scheduling", "exec.ioPriority.class"}},
		{"rlimit-rtprio", func(p *specs.Process) {
			p.Rlimits = append(p.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_RTPRIO", Hard: 99, Soft: 99})
		}, []string{"rule limits", "exec.rlimits[RLIMIT_RTPRIO]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := *spec.Process
			p.Args = []string{"true"}
			p.Terminal = false
			tc.mutate(&p)
			proc, err := task.Exec(ctx, newID("x"), &p, cio.NullIO)
			if err == nil {
				err = proc.Start(ctx)
				proc.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
			}
			if err == nil {
				t.Fatal("exec started; want a refusal")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal %q lacks %q", err, w)
				}
			}
		})
	}
}

// writeHook writes a hook program that copies its stdin (the container's
// state) to marker.
func writeHook(t *testing.T, marker string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hook.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\ncat > "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// runWithRuntimeOptions is runContainer (namespace ns, the hardened
// runtime, busybox) with runtime options, such as a policy of the test's own.
func runWithRuntimeOptions(t *testing.T, runtimeOpts any, args []string, opts ...oci.SpecOpts) (result, error) {
	t.Helper()
	return runSpec{namespace: ns, runtime: hardenedRT, image: harness.Busybox, runtimeOpts: runtimeOpts}.run(t, args, opts...)
}
