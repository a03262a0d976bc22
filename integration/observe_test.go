package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hardened-runtime/hardened/integration/harness"
	"github.com/hardened-runtime/hardened/observe"
	"github.com/hardened-runtime/hardened/observe/event"
)

// observePolicy adds a trial-mode level to the tests' policy: the
// containerd namespace "trial" gets restricted with seccomp.mode audit.
const observePolicy = `mode: enforce
defaultLevel: restricted
levels:
  trial:
    extends: restricted
    description: restricted, seccomp in trial mode
    seccomp:
      mode: audit
rules:
  - name: trial runs
    match:
      containerdNamespaces: [trial]
    level: trial
`

// watcher is an observer of the test containerd, in this process, with
// the events it made.
type watcher struct {
	node *observe.Node

	mu     sync.Mutex
	events []*event.Event
}

// startObserver runs an observer of the test containerd until the test
// ends: the real kernel's records, the real containerd's containers.
func startObserver(t *testing.T) *watcher {
	t.Helper()
	w := &watcher{}
	node, err := observe.NewNode(observe.NodeConfig{
		Address: cd.Address, State: cd.State, Publish: true, Metrics: true,
		Limits: observe.Limits{Window: 500 * time.Millisecond, Expected: true},
		Emit: func(e *event.Event) {
			w.mu.Lock()
			w.events = append(w.events, e)
			w.mu.Unlock()
		},
		Logf: func(format string, args ...any) { t.Logf("observer: "+format, args...) },
	})
	if err != nil {
		t.Fatal(err)
	}
	w.node = node
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("observer: %v", err)
		}
	})
	select {
	case <-node.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("observer not synchronised with containerd in 30 s")
	}
	return w
}

// waitEvent returns the first event that matches, waiting up to 30 s.
func (w *watcher) waitEvent(t *testing.T, what string, match func(*event.Event) bool) *event.Event {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		w.mu.Lock()
		for _, e := range w.events {
			if match(e) {
				w.mu.Unlock()
				return e
			}
		}
		n := len(w.events)
		w.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no event %s in 30 s (%d events, stats %+v)", what, n, w.node.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metrics scrapes the observer's /metrics.
func (w *watcher) metrics(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(w.node.Metrics().Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// ctrEvents runs `ctr events` against the test containerd until the test
// ends and returns its output so far.
func ctrEvents(t *testing.T) func() string {
	t.Helper()
	cmd := exec.Command(filepath.Join(harness.ToolsBin(), "ctr"), "--address", cd.Address, "events")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lines []string
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(lines, "\n")
	}
}

// TestObserveDenial: a hardened container whose unshare(CLONE_NEWUSER) the
// restricted level denies; the denial reaches the observer through the
// real kernel's audit records, names the container, the syscall and the
// errno, is published into containerd's event stream (ctr events shows it)
// and counted in the metrics. The unshare runs as a child of the
// container's shell and exits at once: when its record is read /proc may
// no longer have it, and the fork tree says whose it was.
func TestObserveDenial(t *testing.T) {
	require(t)
	w := startObserver(t)
	ctrOut := ctrEvents(t)
	res, err := runContainer(t, ns, hardenedRT, harness.Busybox, []string{"sh", "-c", "unshare -U true; echo unshare=$?"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Stdout, "unshare=1") || !strings.Contains(res.Stderr, "Operation not permitted") {
		t.Fatalf("unshare in a hardened container: %+v, want it denied", res)
	}
	e := w.waitEvent(t, "for unshare", func(e *event.Event) bool {
		return e.Seccomp != nil && e.Seccomp.Syscall == "unshare" && strings.HasPrefix(e.Container.ID, "testobservedenial")
	})
	s := e.Seccomp
	if e.Container.Namespace != ns || e.Container.Level != "restricted" || s.Action != "errno" || s.Errno != "EPERM" ||
		s.Comm != "unshare" || s.Exe != "/bin/busybox" || !inShimsWindow(uint64(s.UID)) || s.Expected {
		t.Errorf("event %+v %+v", e.Container, s)
	}
	t.Logf("event: %s; observer stats %+v", e, w.node.Stats())
	m := w.metrics(t)
	want := `hardened_seccomp_denied_total{action="errno",container="` + e.Container.ID + `",containerd_namespace="` + ns + `",expected="false",namespace="",pod="",syscall="unshare"} 1`
	if !strings.Contains(m, want) {
		t.Errorf("metrics lack %s:\n%s", want, grepLines(m, "hardened_"))
	}
	waitFor(t, "ctr events to show the denial", func() bool {
		out := ctrOut()
		return strings.Contains(out, "/hardened/seccomp") && strings.Contains(out, `"hardened.dev/syscall":"unshare"`) &&
			strings.Contains(out, `"hardened.dev/container":"`+e.Container.ID+`"`)
	})
	t.Logf("ctr events: %s", grepLines(ctrOut(), "/hardened/"))
}

// TestObserveTrialMode: under a level with seccomp.mode audit the same
// unshare runs (the kernel only logs it) and is reported as what the level
// would deny; clone3, an expected probe, still fails with ENOSYS.
func TestObserveTrialMode(t *testing.T) {
	require(t)
	w := startObserver(t)
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte(observePolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cd.ImportImages("trial", harness.Busybox); err != nil {
		t.Fatal(err)
	}
	res, err := runContainerWith(t, "trial", &runtimeoptions.Options{ConfigPath: policy}, harness.Busybox,
		[]string{"sh", "-c", "unshare -U true; echo unshare=$?"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Stdout, "unshare=0") {
		t.Fatalf("unshare under trial mode: %+v, want it to run", res)
	}
	e := w.waitEvent(t, "for unshare in trial mode", func(e *event.Event) bool {
		return e.Seccomp != nil && e.Seccomp.Syscall == "unshare" && e.Container.Namespace == "trial"
	})
	if e.Seccomp.Action != "log" || e.Seccomp.Denied() || e.Container.Level != "trial" {
		t.Errorf("trial event %+v %+v", e.Container, e.Seccomp)
	}
	t.Logf("event: %s", e)
	m := w.metrics(t)
	want := `hardened_seccomp_audited_total{container="` + e.Container.ID + `",containerd_namespace="trial",namespace="",pod="",syscall="unshare"} 1`
	if !strings.Contains(m, want) {
		t.Errorf("metrics lack %s:\n%s", want, grepLines(m, "hardened_"))
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, prefix) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestObserveLoop: a container that makes a denied call in a loop (500
// short-lived processes, each denied once) makes a handful of events, not
// 500, each with its count; every denial is counted in the metric.
func TestObserveLoop(t *testing.T) {
	require(t)
	w := startObserver(t)
	const n = 500
	res, err := runContainer(t, ns, hardenedRT, harness.Busybox,
		[]string{"sh", "-c", fmt.Sprintf("i=0; while [ $i -lt %d ]; do unshare -U true 2>/dev/null; i=$((i+1)); done; echo done", n)})
	if err != nil || !strings.Contains(res.Stdout, "done") {
		t.Fatalf("loop: %+v %v", res, err)
	}
	var id string
	sum := func() (uint64, int) {
		w.mu.Lock()
		defer w.mu.Unlock()
		var total uint64
		events := 0
		for _, e := range w.events {
			if e.Seccomp != nil && e.Seccomp.Syscall == "unshare" && strings.HasPrefix(e.Container.ID, "testobserveloop") {
				id = e.Container.ID
				total += e.Seccomp.Count
				events++
			}
		}
		return total, events
	}
	waitFor(t, fmt.Sprintf("%d denials summed up in the events", n), func() bool { total, _ := sum(); return total == n })
	total, events := sum()
	t.Logf("%d denials in %d events; observer stats %+v", total, events, w.node.Stats())
	if events > 20 {
		t.Errorf("%d events for one loop, want a handful", events)
	}
	want := `hardened_seccomp_denied_total{action="errno",container="` + id + `",containerd_namespace="` + ns + `",expected="false",namespace="",pod="",syscall="unshare"} ` + fmt.Sprint(n)
	if m := w.metrics(t); !strings.Contains(m, want) {
		t.Errorf("metrics lack %s:\n%s", want, grepLines(m, "hardened_seccomp"))
	}
}

// TestObserveCRI: a denial in a container that CRI created (as the kubelet
// does for runtimeClassName: hardened), made by a process that ExecSync
// started, names the pod's Kubernetes namespace, name and container name.
func TestObserveCRI(t *testing.T) {
	require(t)
	w := startObserver(t)
	rs, _ := cd.CRI(t)
	podID, podCfg, err := pod(t, rs, "observe", false)
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	id, err := startContainer(t, rs, podID, podCfg, "app", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := rs.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "unshare -U true; echo rc=$?"}, Timeout: 30})
	if err != nil || !strings.Contains(string(out.Stdout), "rc=1") {
		t.Fatalf("ExecSync: %v %s %s", err, out.GetStdout(), out.GetStderr())
	}
	e := w.waitEvent(t, "for the pod's unshare", func(e *event.Event) bool {
		return e.Seccomp != nil && e.Seccomp.Syscall == "unshare" && e.Container.ID == id
	})
	if e.Container.Namespace != "k8s.io" || e.Container.PodNamespace != "hostnet-observe" || e.Container.Pod != "observe" ||
		e.Container.Name != "app" || e.Container.Image == "" {
		t.Errorf("event container %+v", e.Container)
	}
	t.Logf("event: %s", e)
	want := `hardened_seccomp_denied_total{action="errno",container="app",containerd_namespace="k8s.io",expected="false",namespace="hostnet-observe",pod="observe",syscall="unshare"} 1`
	if m := w.metrics(t); !strings.Contains(m, want) {
		t.Errorf("metrics lack %s:\n%s", want, grepLines(m, "hardened_seccomp"))
	}
}

// TestObserveContainerdRestart: the observer keeps up with containerd
// across a crash and restart (as systemd restarts it): a container that
// ran before is still attributed, one started after is seen.
func TestObserveContainerdRestart(t *testing.T) {
	require(t)
	shimDir, err := harness.BuildShimDir()
	if err != nil {
		t.Fatal(err)
	}
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(policyFile, []byte(testPolicy), 0o644)
	c := harness.Start(t, harness.Options{ShimDir: shimDir, PolicyPath: policyFile})
	harness.Import(t, c, ns, harness.Busybox)

	var mu sync.Mutex
	var events []*event.Event
	node, err := observe.NewNode(observe.NodeConfig{Address: c.Address, State: c.State,
		Limits: observe.Limits{Window: 200 * time.Millisecond},
		Emit:   func(e *event.Event) { mu.Lock(); events = append(events, e); mu.Unlock() },
		Logf:   func(format string, args ...any) { t.Logf("observer: "+format, args...) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-node.Ready()

	nctx := namespaces.WithNamespace(t.Context(), ns)
	start := func(name string, args ...string) containerd.Task {
		t.Helper()
		id := newID(name)
		img, err := c.Client(t).GetImage(nctx, harness.Busybox) // the client of the moment
		if err != nil {
			t.Fatal(err)
		}
		ctr, err := c.Client(t).NewContainer(nctx, id, containerd.WithImage(img), containerd.WithNewSnapshot(id, img),
			containerd.WithRuntime(hardenedRT, nil), containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs(args...)))
		if err != nil {
			t.Fatal(err)
		}
		task, err := ctr.NewTask(nctx, cio.NullIO)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			task.Delete(context.Background(), containerd.WithProcessKill)
			ctr.Delete(context.Background(), containerd.WithSnapshotCleanup)
		})
		if err := task.Start(nctx); err != nil {
			t.Fatal(err)
		}
		return task
	}
	seen := func(id string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			if e.Seccomp != nil && e.Seccomp.Syscall == "unshare" && e.Container.ID == id {
				return true
			}
		}
		return false
	}
	// Before: a container that loops on a denial, slowly.
	before := start("restart-before", "sh", "-c", "while true; do unshare -U true 2>/dev/null; sleep 0.2; done")
	waitFor(t, "the first container's denial", func() bool { return seen(before.ID()) })

	if err := c.KillAndRestart(); err != nil {
		t.Fatal(err)
	}
	after := start("restart-after", "sh", "-c", "unshare -U true; sleep 600")
	waitFor(t, "the denial of a container started after the restart", func() bool { return seen(after.ID()) })
	mu.Lock()
	n := len(events)
	mu.Unlock()
	// The first container's denials keep coming, attributed.
	waitFor(t, "the first container's denials after the restart", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events[n:] {
			if e.Seccomp != nil && e.Container.ID == before.ID() {
				return true
			}
		}
		return false
	})
	t.Logf("observer stats %+v", node.Stats())
}

// runContainerWith is runContainer for the hardened runtime with runtime
// options (a policy file, as CRI passes it).
func runContainerWith(t *testing.T, namespace string, opts *runtimeoptions.Options, image string, args []string, specOpts ...oci.SpecOpts) (result, error) {
	t.Helper()
	var runtimeOpts any
	if opts != nil {
		runtimeOpts = opts
	}
	return runSpec{namespace: namespace, runtime: hardenedRT, image: image, runtimeOpts: runtimeOpts}.run(t, args, specOpts...)
}
