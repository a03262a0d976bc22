package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hardened-runtime/hardened/integration/harness"
	"github.com/hardened-runtime/hardened/profiles"
	"github.com/hardened-runtime/hardened/shim"
)

// figure is one line of the benchmark table: plain runc, hardened, ratio.
type figure struct {
	Name     string  `json:"name"`
	Unit     string  `json:"unit"`
	Runc     float64 `json:"runc"`
	Hardened float64 `json:"hardened"`
	Ratio    float64 `json:"ratio"`
	Target   string  `json:"target,omitempty"`
	Met      *bool   `json:"met,omitempty"`
}

func newFigure(name, unit string, runc, hardened float64, target string, maxRatio float64) figure {
	f := figure{Name: name, Unit: unit, Runc: runc, Hardened: hardened, Target: target}
	if runc > 0 {
		f.Ratio = hardened / runc
	}
	if maxRatio > 0 {
		met := f.Ratio <= maxRatio
		f.Met = &met
	}
	return f
}

// TestBench is `make bench`: plain runc and hardened side by side in one
// private containerd, as ratios. It runs only with HARDENED_BENCH=1 and
// asserts nothing about time.
func TestBench(t *testing.T) {
	if os.Getenv("HARDENED_BENCH") != "1" {
		t.Skip("skipping: the benchmark runs with make bench (HARDENED_BENCH=1)")
	}
	require(t)
	runs := envInt("BENCH_RUNS", 100)
	// BENCH_ONLY=lifecycle,concurrent,rss,cri,syscalls,harden runs some figures
	// and prints them without touching bench/results.
	only := os.Getenv("BENCH_ONLY")
	want := func(part string) bool { return only == "" || strings.Contains(only, part) }
	var figs []figure

	// 1. Lifecycle latency, interleaved to cancel drift. A third variant,
	// plain runc given the spec the hardened shim produces, splits the
	// difference into what the hardened spec costs runc (its seccomp
	// filter, compiled for every container) and what the shim costs.
	lat := map[string][]time.Duration{}
	var hardSpec *specs.Spec
	if want("lifecycle") {
		hardSpec = hardenedSpecOf(t)
	}
	for i := range runs {
		if !want("lifecycle") {
			break
		}
		order := []string{runcRT, runcHardSpec, hardenedRT, hardenedNoUserns}
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, v := range order {
			rt, opts, snap := lifecycleVariant(v, hardSpec)
			start := time.Now()
			if _, err := runContainerOn(t, ns, rt, harness.Busybox, []string{"true"}, snap, opts...); err != nil {
				t.Fatalf("%s: %v", v, err)
			}
			lat[v] = append(lat[v], time.Since(start))
		}
	}
	for _, p := range []struct {
		name string
		q    float64
		max  float64
	}{{"lifecycle median", 0.5, 1.05}, {"lifecycle p90", 0.9, 0}, {"lifecycle p99", 0.99, 1.10}} {
		if !want("lifecycle") {
			break
		}
		target := ""
		if p.max > 0 {
			target = fmt.Sprintf("≤ %.2f×", p.max)
		}
		figs = append(figs, newFigure(p.name+fmt.Sprintf(" (%d runs of true)", runs), "ms", ms(quantile(lat[runcRT], p.q)), ms(quantile(lat[hardenedRT], p.q)), target, p.max))
	}
	if want("lifecycle") {
		figs = append(figs,
			newFigure("lifecycle median: runc with the hardened spec, against plain runc (the spec's cost)", "ms",
				ms(quantile(lat[runcRT], 0.5)), ms(quantile(lat[runcHardSpec], 0.5)), "", 0),
			newFigure("lifecycle median: hardened, against runc with the hardened spec (the shim's own cost)", "ms",
				ms(quantile(lat[runcHardSpec], 0.5)), ms(quantile(lat[hardenedRT], 0.5)), "", 0),
			newFigure("lifecycle median: hardened, root in its user namespace, against hardened with user.namespace off (as 65534; the user namespace's cost)", "ms",
				ms(quantile(lat[hardenedNoUserns], 0.5)), ms(quantile(lat[hardenedRT], 0.5)), "", 0))
	}

	// 2. 50 concurrent creates and starts.
	conc := map[string]float64{}
	fails := map[string]int{}
	for _, rt := range []string{runcRT, hardenedRT} {
		if !want("concurrent") {
			break
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		start := time.Now()
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := runContainer(t, ns, rt, harness.Busybox, []string{"true"}); err != nil {
					mu.Lock()
					fails[rt]++
					mu.Unlock()
					t.Logf("%s: %v", rt, err)
				}
			}()
		}
		wg.Wait()
		conc[rt] = ms(time.Since(start))
	}
	if want("concurrent") {
		figs = append(figs, newFigure("50 concurrent create+start+exit, wall time", "ms", conc[runcRT], conc[hardenedRT], "", 0),
			newFigure("50 concurrent: failures", "count", float64(fails[runcRT]), float64(fails[hardenedRT]), "0", 0))
	}

	// 3. Shim memory: one container, and a CRI pod of 5 containers.
	if want("rss") {
		rss := map[string]float64{}
		for _, rt := range []string{runcRT, hardenedRT} {
			ctx, cancel := ctxFor(ns)
			before := cd.ShimPIDs()
			_, task := startTask(t, ctx, newID("rss"), rt, oci.WithProcessArgs("sleep", "600"))
			time.Sleep(2 * time.Second) // steady state: what a running container costs
			rss[rt] = shimRSS(t, before)
			task.Kill(ctx, 9)
			cancel()
		}
		figs = append(figs, newFigure("shim RSS, one container", "MiB", rss[runcRT], rss[hardenedRT], "≤ runc + 2 MiB", 0))
		figs[len(figs)-1].Met = ptr(rss[hardenedRT] <= rss[runcRT]+2)
		pod := map[string]float64{}
		for _, handler := range []string{"runc", "hardened"} {
			pod[handler] = podRSS(t, handler)
		}
		figs = append(figs, newFigure("shim RSS, CRI pod of 5 containers (one shim)", "MiB", pod["runc"], pod["hardened"], "≤ runc + 2 MiB", 0))
		figs[len(figs)-1].Met = ptr(pod["hardened"] <= pod["runc"]+2)
	}

	// 3b. The Kubernetes path, interleaved: a container joining a running
	// pod (CreateContainer + StartContainer, as the kubelet does; no `shim
	// start` for it), and a whole pod (RunPodSandbox + 3 containers).
	if want("cri") {
		n := envInt("BENCH_CRI_RUNS", 30)
		join := criJoins(t, n)
		for _, p := range []struct {
			name string
			q    float64
		}{{"median", 0.5}, {"p90", 0.9}} {
			figs = append(figs, newFigure(fmt.Sprintf("CRI create+start of a container joining a running pod, %s of %d", p.name, n), "ms",
				ms(quantile(join["runc"], p.q)), ms(quantile(join["hardened"], p.q)), "≤ 1.10×", 1.10))
		}
		figs = append(figs,
			newFigure("CRI join median: runc with the restricted level's seccomp profile, against plain runc (the filter's cost)", "ms",
				ms(quantile(join["runc"], 0.5)), ms(quantile(join[criRuncSeccomp], 0.5)), "", 0),
			newFigure("CRI join median: hardened, against runc with the level's seccomp profile (the shim's and the rest of the spec's cost)", "ms",
				ms(quantile(join[criRuncSeccomp], 0.5)), ms(quantile(join["hardened"], 0.5)), "", 0))
		pods := criPods(t, envInt("BENCH_POD_RUNS", 15))
		for _, p := range []struct {
			name string
			q    float64
			max  float64
		}{{"median", 0.5, 1.10}, {"p90", 0.9, 0}} {
			target := ""
			if p.max > 0 {
				target = "≤ 1.10×"
			}
			figs = append(figs, newFigure(fmt.Sprintf("CRI pod: RunPodSandbox + 3 containers started, %s of %d", p.name, len(pods["runc"])), "ms",
				ms(quantile(pods["runc"], p.q)), ms(quantile(pods["hardened"], p.q)), target, p.max))
		}
		figs = append(figs,
			newFigure("CRI pod median: runc with the level's seccomp profile, against plain runc (the filter's cost)", "ms",
				ms(quantile(pods["runc"], 0.5)), ms(quantile(pods[criRuncSeccomp], 0.5)), "", 0),
			newFigure("CRI pod median: hardened, against runc with the level's seccomp profile (the shim's and the rest of the spec's cost)", "ms",
				ms(quantile(pods[criRuncSeccomp], 0.5)), ms(quantile(pods["hardened"], 0.5)), "", 0))
	}

	// 4. In-container syscall cost: 10 million getppid.
	if want("syscalls") {
		bin := buildGetppid(t)
		mount := oci.WithMounts([]specs.Mount{{Destination: "/getppid", Type: "bind", Source: bin, Options: []string{"rbind", "ro"}}})
		calls := strconv.Itoa(envInt("BENCH_SYSCALLS", 10_000_000))
		cost := func(rt string, opts ...oci.SpecOpts) float64 {
			var best float64
			for range 3 {
				res, err := runContainer(t, ns, rt, harness.Busybox, []string{"/getppid", calls}, append([]oci.SpecOpts{mount}, opts...)...)
				if err != nil {
					t.Fatal(err)
				}
				v, err := strconv.ParseFloat(strings.TrimSpace(res.Stdout), 64)
				if err != nil {
					t.Fatalf("getppid output %q %q", res.Stdout, res.Stderr)
				}
				if best == 0 || v < best {
					best = v
				}
			}
			return best
		}
		none := cost(runcRT)
		moby := cost(runcRT, seccomp.WithDefaultProfile())
		// hostpaths(-strict): restricted (strict) that may bind-mount the binary.
		restricted := cost(hardenedRT, withLevel("hostpaths"))
		strict := cost(hardenedRT, withLevel("hostpaths-strict"))
		figs = append(figs,
			newFigure("getppid, no filter (runc) vs restricted", "ns/call", none, restricted, "", 0),
			newFigure("getppid, RuntimeDefault (runc) vs restricted", "ns/call", moby, restricted, "≤ 1.05×", 1.05),
			newFigure("getppid, RuntimeDefault (runc) vs strict", "ns/call", moby, strict, "", 0))
	}

	// 5. The engine.
	if want("harden") {
		harden := goBench(t, "./spec/", "BenchmarkHarden$")
		figs = append(figs, figure{Name: "spec.Harden, CRI pod spec (Go benchmark)", Unit: "µs/op; allocs/op", Hardened: harden[0] / 1000, Target: "≤ 50 µs", Met: ptr(harden[0] <= 50_000),
			Runc: 0, Ratio: 0})
		figs[len(figs)-1].Name += fmt.Sprintf(" — %.0f allocs/op", harden[1])
	}

	if only != "" {
		fmt.Print("\n" + table(figs) + "\n")
		return
	}
	writeResults(t, figs)
}

// runcHardSpec names the bench's third lifecycle variant: plain runc run
// with the spec the hardened shim wrote for a container of the same image.
const runcHardSpec = "runc+hardened-spec"

// hardenedSpecOf returns the spec the hardened shim writes for `true` in
// the busybox image.
func hardenedSpecOf(t *testing.T) *specs.Spec {
	t.Helper()
	ctx, cancel := ctxFor(ns)
	defer cancel()
	c := cd.Client(t)
	img, err := c.GetImage(ctx, harness.Busybox)
	if err != nil {
		t.Fatal(err)
	}
	id := newID("bench-spec")
	ctr, err := c.NewContainer(ctx, id, containerd.WithImage(img), containerd.WithNewSnapshot(id, img),
		containerd.WithRuntime(hardenedRT, nil), containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("true")))
	if err != nil {
		t.Fatal(err)
	}
	defer ctr.Delete(context.WithoutCancel(ctx), containerd.WithSnapshotCleanup)
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	defer task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
	data, err := os.ReadFile(filepath.Join(cd.State, "io.containerd.runtime.v2.task", ns, id, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	// The image's VOLUMEs on disk go with that container: runc's containers
	// get a directory of the same kind (the same bind, owned by the
	// process's host ids) that outlives it.
	volumes := filepath.Join(cd.Root, "io.containerd.runtime.v2.task", ns, id, "volumes") + "/"
	for i, m := range s.Mounts {
		if !strings.HasPrefix(m.Source, volumes) {
			continue
		}
		dir := t.TempDir()
		uid, gid := s.Process.User.UID, s.Process.User.GID
		if l := s.Linux; len(l.UIDMappings) == 1 && len(l.GIDMappings) == 1 {
			uid, gid = l.UIDMappings[0].HostID+uid, l.GIDMappings[0].HostID+gid
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, int(uid), int(gid)); err != nil {
			t.Fatal(err)
		}
		s.Mounts[i].Source = dir
	}
	return &s
}

// withSpecOf replaces the spec with a copy of s, in the container's own
// cgroup.
func withSpecOf(s *specs.Spec) oci.SpecOpts {
	data, _ := json.Marshal(s)
	return func(_ context.Context, _ oci.Client, c *containers.Container, spec *oci.Spec) error {
		var cp specs.Spec
		if err := json.Unmarshal(data, &cp); err != nil {
			return err
		}
		cp.Linux.CgroupsPath = "/" + ns + "/" + c.ID
		*spec = cp
		return nil
	}
}

func ptr[T any](v T) *T { return &v }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(int(q*float64(len(s))), len(s)-1)]
}

// shimRSS returns the RSS in MiB of the shim started since before.
func shimRSS(t *testing.T, before []int) float64 {
	t.Helper()
	for _, pid := range cd.ShimPIDs() {
		if !slices.Contains(before, pid) {
			dumpResident(pid, "one-"+path.Base(shimBinary(pid)))
			return rssOf(pid)
		}
	}
	t.Fatal("no new shim process")
	return 0
}

func rssOf(pid int) float64 {
	if os.Getenv("BENCH_SMAPS") != "" {
		rollup, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		fmt.Printf("%s\n%s\n", strings.SplitN(string(cmd), "\x00", 2)[0], rollup)
	}
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// benchPod starts a host-network pod with the handler, as the kubelet
// does, and returns its id, its config and a function that removes it.
func benchPod(t *testing.T, rs runtime.RuntimeServiceClient, handler, name string, seccomp *runtime.SecurityProfile) (string, *runtime.PodSandboxConfig, func()) {
	t.Helper()
	ctx := context.Background()
	cfg := &runtime.PodSandboxConfig{
		Metadata:     &runtime.PodSandboxMetadata{Name: name, Uid: name + "-uid", Namespace: "hostnet-bench"},
		LogDirectory: t.TempDir(),
		Linux: &runtime.LinuxPodSandboxConfig{SecurityContext: &runtime.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtime.NamespaceOption{Network: runtime.NamespaceMode_NODE},
			Seccomp:          seccomp,
		}},
	}
	p, err := rs.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: cfg, RuntimeHandler: handler})
	if err != nil {
		t.Fatalf("%s pod: %v", handler, err)
	}
	return p.PodSandboxId, cfg, func() {
		rs.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: p.PodSandboxId})
		rs.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: p.PodSandboxId})
	}
}

// podRSS starts a host-network pod of 5 containers with the handler and
// returns the RSS of its shim.
func podRSS(t *testing.T, handler string) float64 {
	t.Helper()
	rs, _ := cd.CRI(t)
	before := cd.ShimPIDs()
	podID, cfg, remove := benchPod(t, rs, handler, "bench-rss-"+handler, nil)
	defer remove()
	for i := range 5 {
		if _, err := startContainer(t, rs, podID, cfg, fmt.Sprintf("c%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second)
	var shims []int
	for _, pid := range cd.ShimPIDs() {
		if !slices.Contains(before, pid) {
			shims = append(shims, pid)
		}
	}
	if len(shims) != 1 {
		t.Fatalf("pod %s has %d shims, want 1", handler, len(shims))
	}
	dumpResident(shims[0], "pod-"+handler)
	return rssOf(shims[0])
}

// criJoins times n containers joining a running pod of each handler,
// interleaved; each is removed before the next. A third variant, runc
// given the restricted level's own seccomp profile (as a Localhost
// profile), splits the difference as the lifecycle's third variant does:
// what the filter costs runc, what the shim and the rest of the spec cost.
func criJoins(t *testing.T, n int) map[string][]time.Duration {
	t.Helper()
	rs, _ := cd.CRI(t)
	ctx := context.Background()
	levelProfile := levelSeccomp(t)
	type pod struct {
		id  string
		cfg *runtime.PodSandboxConfig
	}
	pods := map[string]pod{}
	for _, h := range []string{"runc", "hardened"} {
		id, cfg, remove := benchPod(t, rs, h, "bench-join-"+h, nil)
		defer remove()
		pods[h] = pod{id, cfg}
		// The pod's first container, as a running pod has.
		if _, err := startContainer(t, rs, id, cfg, "first", nil); err != nil {
			t.Fatal(err)
		}
	}
	variants := []string{"runc", criRuncSeccomp, "hardened"}
	out := map[string][]time.Duration{}
	for i := range n {
		for k := range variants {
			v := variants[(i+k)%len(variants)]
			h, sc := v, (*runtime.LinuxContainerSecurityContext)(nil)
			if v == criRuncSeccomp {
				h = "runc"
				sc = &runtime.LinuxContainerSecurityContext{Seccomp: levelProfile}
			}
			t0 := time.Now()
			id, err := startContainer(t, rs, pods[h].id, pods[h].cfg, fmt.Sprintf("j%d-%d", i, k), sc)
			if err != nil {
				t.Fatalf("%s: %v", v, err)
			}
			out[v] = append(out[v], time.Since(t0))
			if v == "hardened" && os.Getenv("BENCH_TIMING") != "" {
				fmt.Printf("join %.1f ms: %s\n", ms(time.Since(t0)), pipelineTiming(harness.CRINamespace, id))
			}
			rs.StopContainer(ctx, &runtime.StopContainerRequest{ContainerId: id})
			rs.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: id})
		}
	}
	return out
}

// pipelineTiming is the pipeline's timing a hardened container's record
// holds ("by: step=time ..."), or "" for another runtime's. BENCH_TIMING=1
// prints it for each CRI join and pod sandbox.
func pipelineTiming(namespace, id string) string {
	var rec struct{ By, Timing string }
	b, err := os.ReadFile(filepath.Join(cd.State, "io.containerd.runtime.v2.task", namespace, id, shim.RecordFile))
	if err != nil || json.Unmarshal(b, &rec) != nil {
		return ""
	}
	return rec.By + ": " + rec.Timing
}

// criRuncSeccomp names the CRI join variant of runc given the restricted
// level's seccomp profile.
const criRuncSeccomp = "runc+restricted-seccomp"

// criPods times n whole pods of each variant, interleaved: RunPodSandbox
// and 3 containers created and started one after the other, as the
// kubelet starts a pod; the runc variant with the level's seccomp profile
// gives it to the sandbox and to each container.
func criPods(t *testing.T, n int) map[string][]time.Duration {
	t.Helper()
	rs, _ := cd.CRI(t)
	levelProfile := levelSeccomp(t)
	variants := []string{"runc", criRuncSeccomp, "hardened"}
	out := map[string][]time.Duration{}
	for i := range n {
		for k := range variants {
			v := variants[(i+k)%len(variants)]
			h, prof, sc := v, (*runtime.SecurityProfile)(nil), (*runtime.LinuxContainerSecurityContext)(nil)
			if v == criRuncSeccomp {
				h, prof, sc = "runc", levelProfile, &runtime.LinuxContainerSecurityContext{Seccomp: levelProfile}
			}
			t0 := time.Now()
			id, cfg, remove := benchPod(t, rs, h, fmt.Sprintf("bench-pod-%d-%d", i, k), prof)
			if os.Getenv("BENCH_TIMING") != "" {
				fmt.Printf("pod %s: sandbox %.1f ms %s\n", v, ms(time.Since(t0)), pipelineTiming(harness.CRINamespace, id))
			}
			for c := range 3 {
				t1 := time.Now()
				cid, err := startContainer(t, rs, id, cfg, fmt.Sprintf("c%d", c), sc)
				if err != nil {
					t.Fatalf("%s: %v", v, err)
				}
				if os.Getenv("BENCH_TIMING") != "" {
					fmt.Printf("pod %s: c%d %.1f ms %s\n", v, c, ms(time.Since(t1)), pipelineTiming(harness.CRINamespace, cid))
				}
			}
			out[v] = append(out[v], time.Since(t0))
			remove()
		}
	}
	return out
}

// levelSeccomp writes the restricted level's seccomp profile (for a
// container without capabilities) where the CRI plugin reads Localhost
// profiles from, and returns it as a CRI security profile.
func levelSeccomp(t *testing.T) *runtime.SecurityProfile {
	t.Helper()
	level, _ := profiles.Builtin(profiles.DefaultLevel)
	prof, err := profiles.Seccomp(level, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(prof)
	path := filepath.Join(t.TempDir(), "restricted-seccomp.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_Localhost, LocalhostRef: path}
}

func buildGetppid(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(hostDir(t), "getppid")
	cmd := exec.Command("go", "build", "-o", bin, "./bench/getppid")
	cmd.Dir = harness.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build getppid: %v\n%s", err, out)
	}
	os.Chmod(filepath.Dir(bin), 0o755)
	return bin
}

// goBench runs a Go benchmark and returns ns/op and allocs/op.
func goBench(t *testing.T, pkg, name string) [2]float64 {
	t.Helper()
	cmd := exec.Command("go", "test", "-run", "XXX", "-bench", name, "-benchmem", "-count", "5", pkg)
	cmd.Dir = harness.RepoRoot()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test -bench: %v\n%s", err, out)
	}
	var ns []float64
	var allocs float64
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 8 && strings.HasPrefix(f[0], "Benchmark") {
			v, _ := strconv.ParseFloat(f[2], 64)
			ns = append(ns, v)
			allocs, _ = strconv.ParseFloat(f[6], 64)
		}
	}
	slices.Sort(ns)
	return [2]float64{ns[len(ns)/2], allocs}
}

func writeResults(t *testing.T, figs []figure) {
	t.Helper()
	dir := filepath.Join(harness.RepoRoot(), "bench", "results")
	os.MkdirAll(dir, 0o755)
	host, _ := os.Hostname()
	meta := map[string]any{"date": time.Now().UTC().Format(time.RFC3339), "host": host, "cpus": goruntime.NumCPU(),
		"containerd": "v2.4.2", "runc": "v1.5.2", "figures": figs}
	data, _ := json.MarshalIndent(meta, "", "  ")
	os.WriteFile(filepath.Join(dir, "bench.json"), append(data, '\n'), 0o644)
	md := table(figs)
	os.WriteFile(filepath.Join(dir, "bench.md"), []byte(md), 0o644)
	fmt.Print("\n" + md + "\n")
}

// table renders the figures as a markdown table.
func table(figs []figure) string {
	var md strings.Builder
	fmt.Fprintf(&md, "| figure | unit | runc | hardened | ratio | target | met |\n| --- | --- | ---: | ---: | ---: | --- | --- |\n")
	for _, f := range figs {
		met := ""
		if f.Met != nil {
			met = map[bool]string{true: "yes", false: "**no**"}[*f.Met]
		}
		runc, ratio := fmt.Sprintf("%.2f", f.Runc), fmt.Sprintf("%.3f", f.Ratio)
		if f.Runc == 0 && f.Ratio == 0 && !strings.Contains(f.Name, "failures") {
			runc, ratio = "—", "—"
		}
		fmt.Fprintf(&md, "| %s | %s | %s | %.2f | %s | %s | %s |\n", f.Name, f.Unit, runc, f.Hardened, ratio, f.Target, met)
	}
	return md.String()
}
