package observe

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/observe/audit"
	"github.com/hardened-runtime/hardened/observe/event"
	"github.com/hardened-runtime/hardened/profiles"
)

// fakeSource delivers the records it is given, then blocks until closed.
type fakeSource struct {
	recs   chan audit.Record
	closed chan struct{}
	once   sync.Once
}

func newFakeSource() *fakeSource {
	return &fakeSource{recs: make(chan audit.Record, 100), closed: make(chan struct{})}
}

func (f *fakeSource) Read() (audit.Record, error) {
	select {
	case r := <-f.recs:
		return r, nil
	case <-f.closed:
		return audit.Record{}, os.ErrClosed
	}
}
func (f *fakeSource) SetReadDeadline(time.Time) error { return nil }
func (f *fakeSource) Close() error                    { f.once.Do(func() { close(f.closed) }); return nil }
func (f *fakeSource) Name() string                    { return "fake" }
func (f *fakeSource) Lost() uint64                    { return 2 }

// rec is a record of syscall nr (x86_64) by pid with action code.
func rec(pid, nr int, code uint32) audit.Record {
	return audit.Record{Time: t0, PID: pid, Comm: "app", Exe: "/bin/app", Arch: 0xc000003e, Syscall: nr, Code: code}
}

const (
	nrPtrace  = 101
	nrUnshare = 272
	nrClone3  = 435
	errnoCode = 0x00050000
	logCode   = 0x7ffc0000
)

func writeProc(t *testing.T, root string, pid int, cgroup string) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid))
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte(cgroup), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestObserverAttributes(t *testing.T) {
	procRoot := t.TempDir()
	writeProc(t, procRoot, 500, "2:pids:/default/web\n1:cpu:/\n0::/\n")
	writeProc(t, procRoot, 600, "2:pids:/system.slice/cron\n0::/\n")
	table := NewTable()
	r, _ := profiles.Builtin(profiles.Restricted)
	prof, _ := profiles.Seccomp(r, nil)
	table.Put(&Container{Container: event.Container{Namespace: "default", ID: "web", Level: "restricted"}, Seccomp: prof,
		Cgroup: containerCgroup([]string{"pids:/default/web", "cpu:/", "0::/"})})
	table.AddPid("default", "web", 100)
	table.Put(&Container{Container: event.Container{Namespace: "k8s.io", ID: "abc", PodNamespace: "shop", Pod: "web-1", Name: "app"}})
	table.AddPid("k8s.io", "abc", 200)

	var mu sync.Mutex
	var got []*event.Event
	src := newFakeSource()
	var o *Observer
	metrics := NewMetrics(func() Stats { return o.Stats() })
	o = New(Config{Source: src, Table: table, ProcRoot: procRoot, Retry: 50 * time.Millisecond, Metrics: metrics,
		Limits: Limits{Window: 100 * time.Millisecond},
		Emit:   func(e *event.Event) { mu.Lock(); got = append(got, e); mu.Unlock() }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()

	src.recs <- rec(100, nrUnshare, errnoCode) // the init pid
	src.recs <- rec(500, nrPtrace, errnoCode)  // a pid in its cgroup
	src.recs <- rec(200, nrPtrace, logCode)    // trial mode in a pod
	src.recs <- rec(100, nrClone3, errnoCode)  // expected probe: counted only
	src.recs <- rec(600, nrPtrace, errnoCode)  // a host process
	src.recs <- rec(999, nrPtrace, errnoCode)  // gone, unknown
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s := o.Stats(); s.Records == 6 && s.Unattributed == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	lines := make([]string, len(got))
	for i, e := range got {
		lines[i] = e.String()
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		"seccomp: unshare denied (EPERM) in default/web, level restricted: pid 100 app (/bin/app)",
		"seccomp: ptrace denied (ENOSYS) in default/web, level restricted: pid 500 app (/bin/app)",
		"seccomp: ptrace would be denied (trial mode, it ran) in k8s.io/abc (pod shop/web-1, container app): pid 200",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("events:\n%s\nwant a line with %q", all, want)
		}
	}
	if len(got) != 3 {
		t.Errorf("%d events, want 3:\n%s", len(got), all)
	}
	s := o.Stats()
	if s.ByTree != 3 || s.ByCgroup != 1 || s.Unattributed != 2 || s.Overruns != 2 || s.Containers != 2 {
		t.Errorf("stats %+v", s)
	}

	srv := httptest.NewServer(metrics.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`hardened_seccomp_denied_total{action="errno",container="web",containerd_namespace="default",expected="false",namespace="",pod="",syscall="unshare"} 1`,
		`hardened_seccomp_denied_total{action="errno",container="web",containerd_namespace="default",expected="true",namespace="",pod="",syscall="clone3"} 1`,
		`hardened_seccomp_audited_total{container="app",containerd_namespace="k8s.io",namespace="shop",pod="web-1",syscall="ptrace"} 1`,
		`hardened_observe_unattributed_records_total 2`,
		`hardened_observe_records_total{source="fake"} 6`,
		`hardened_observe_overruns_total 2`,
		`hardened_observe_containers 2`,
		`go_goroutines`, `process_cpu_seconds_total`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestObserverUnattributedEvents(t *testing.T) {
	var got []*event.Event
	src := newFakeSource()
	o := New(Config{Source: src, ProcRoot: t.TempDir(), Retry: time.Millisecond, Unattributed: true,
		Emit: func(e *event.Event) { got = append(got, e) }})
	o.Handle(rec(42, nrPtrace, 0x80000000), t0)
	o.Flush(t0.Add(time.Second))
	if len(got) != 1 || !strings.Contains(got[0].String(), "ptrace denied (kill_process) in no hardened container: pid 42") {
		t.Errorf("events %v", got)
	}
}

func TestErrnoOf(t *testing.T) {
	r, _ := profiles.Builtin(profiles.Restricted)
	p, _ := profiles.Seccomp(r, nil)
	for _, tc := range []struct{ syscall, action, want string }{
		{"unshare", "errno", "EPERM"}, {"clone3", "errno", "ENOSYS"}, {"nosuchcall", "errno", "ENOSYS"},
		{"ptrace", "log", ""},
	} {
		if got := errnoOf(p, tc.syscall, tc.action); got != tc.want {
			t.Errorf("errnoOf(%s, %s) = %q, want %q", tc.syscall, tc.action, got, tc.want)
		}
	}
	if got := errnoOf(nil, "unshare", "errno"); got != "" {
		t.Errorf("errnoOf(nil) = %q", got)
	}
	plain := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActErrno}}}
	if got := errnoOf(plain, "mount", "errno"); got != "EPERM" {
		t.Errorf("errnoOf without errnoRet = %q, want runc's EPERM", got)
	}
}

func TestTable(t *testing.T) {
	tb := NewTable()
	tb.Keep = time.Second
	c := &Container{Container: event.Container{Namespace: "n", ID: "a", Pod: "p", PodNamespace: "ns", Name: "c"}, Cgroup: "pids:/n/a"}
	tb.Put(c)
	if tb.AddPid("n", "zzz", 5) || !tb.AddPid("n", "a", 5) {
		t.Error("AddPid")
	}
	if got, ok := tb.byPidOf(5); !ok || got != c {
		t.Error("byPidOf")
	}
	if got, ok := tb.byCgroupOf([]string{"cpu:/", "pids:/n/a"}); !ok || got != c {
		t.Error("byCgroupOf")
	}
	// A restart of the pod's container: same names, new id.
	tb.Put(&Container{Container: event.Container{Namespace: "n", ID: "b", Pod: "p", PodNamespace: "ns", Name: "c"}})
	tb.Delete("n", "a", t0)
	if tb.Len() != 1 || !tb.Live(c.Container) {
		t.Errorf("len %d live %v", tb.Len(), tb.Live(c.Container))
	}
	if gone := tb.Purge(t0.Add(500 * time.Millisecond)); len(gone) != 0 {
		t.Error("purged too early")
	}
	if gone := tb.Purge(t0.Add(2 * time.Second)); len(gone) != 1 || gone[0] != c {
		t.Errorf("Purge = %v", gone)
	}
	if _, ok := tb.byPidOf(5); ok {
		t.Error("pid of a purged container")
	}
	if _, ok := tb.Get("n", "b"); !ok {
		t.Error("Get")
	}
	if containerCgroup([]string{"cpu:/", "0::/"}) != "" || containerCgroup([]string{"0::/k8s/x"}) != "0::/k8s/x" ||
		containerCgroup([]string{"cpu,cpuacct:/a", "pids:/a", "0::/"}) != "pids:/a" {
		t.Error("containerCgroup")
	}
}

func TestReadBundleSpec(t *testing.T) {
	dir := t.TempDir()
	r, _ := profiles.Builtin(profiles.Restricted)
	prof, _ := profiles.Seccomp(r, nil)
	spec := &specs.Spec{Version: "1", Process: &specs.Process{Args: []string{"x"}},
		Annotations: map[string]string{"io.kubernetes.cri.sandbox-name": "web", "x": `"seccomp":{}`}, Linux: &specs.Linux{Seccomp: prof}}
	data, _ := json.Marshal(spec)
	os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644)
	a, p, err := readBundleSpec(dir)
	if err != nil || a["io.kubernetes.cri.sandbox-name"] != "web" || p == nil || len(p.Syscalls) != len(prof.Syscalls) {
		t.Fatalf("readBundleSpec = %v, %v, %v", a, p, err)
	}
	// A second bundle with the same profile shares the decoded one.
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "config.json"), data, 0o644)
	if _, p2, _ := readBundleSpec(other); p2 != p {
		t.Error("the same profile decoded twice")
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`[]`), 0o644)
	if _, _, err := readBundleSpec(dir); err == nil {
		t.Error("not an object accepted")
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"ociVersion":"1"}`), 0o644)
	if a, p, err := readBundleSpec(dir); err != nil || a != nil || p != nil {
		t.Errorf("no annotations, no profile: %v %v %v", a, p, err)
	}
}

func TestReadRecord(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ record, level, image string }{
		{`{"level":"restricted","image":"docker.io/library/nginx:1"}`, "restricted", "docker.io/library/nginx:1"},
		{`{"version":2,"level":"strict","image":{"Name":"r.example/app:v1","Digest":"sha256:ab"}}`, "strict", "r.example/app:v1"},
		{`{"level":"baseline"}`, "baseline", ""},
	} {
		os.WriteFile(filepath.Join(dir, "hardened.json"), []byte(tc.record), 0o644)
		level, image, err := readRecord(dir)
		if err != nil || level != tc.level || image != tc.image {
			t.Errorf("readRecord(%s) = %q %q %v", tc.record, level, image, err)
		}
	}
	os.WriteFile(filepath.Join(dir, "hardened.json"), []byte(`{`), 0o644)
	if _, _, err := readRecord(dir); err == nil {
		t.Error("broken record accepted")
	}
}

// TestMetricsForget: the series of a container's names go once no live
// container has them.
func TestMetricsForget(t *testing.T) {
	m := NewMetrics(func() Stats { return Stats{} })
	c := event.Container{Namespace: "k8s.io", ID: "a", PodNamespace: "shop", Pod: "web", Name: "app"}
	other := event.Container{Namespace: "k8s.io", ID: "b", PodNamespace: "shop", Pod: "db", Name: "app"}
	m.denial(Denial{Container: c, Syscall: "ptrace", Action: "errno"})
	m.denial(Denial{Container: c, Syscall: "ptrace", Action: "log"})
	m.denial(Denial{Container: other, Syscall: "ptrace", Action: "errno"})
	m.exec(&event.Event{Container: c, Exec: &event.Exec{}})
	count := func() int {
		fams, _ := m.Registry().Gather()
		n := 0
		for _, f := range fams {
			if strings.HasPrefix(f.GetName(), "hardened_seccomp") || f.GetName() == "hardened_execs_total" {
				n += len(f.GetMetric())
			}
		}
		return n
	}
	if got := count(); got != 4 {
		t.Fatalf("%d series, want 4", got)
	}
	m.forget(c)
	if got := count(); got != 1 {
		t.Errorf("%d series after forget, want the other pod's 1", got)
	}
}
