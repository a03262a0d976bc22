package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hardened-runtime/hardened/observe/event"
)

func writeEvents(t *testing.T, evs ...*event.Event) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "seen.jsonl")
	var b strings.Builder
	for _, e := range evs {
		data, _ := json.Marshal(e)
		b.Write(data)
		b.WriteString("\n")
	}
	if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func seccompEvent(pod, level, syscall, action string, count uint64, expected bool) *event.Event {
	return &event.Event{Time: time.Now(), Container: event.Container{Namespace: "k8s.io", ID: pod + "-id", PodNamespace: "shop", Pod: pod, Name: "app",
		Level: level, Image: "registry.example/shop/" + pod + ":v1"},
		Seccomp: &event.Seccomp{Syscall: syscall, Action: action, Count: count, Total: count, Expected: expected}}
}

func TestLearnFromEvents(t *testing.T) {
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(policyFile, []byte("mode: enforce\ndefaultLevel: restricted\nlevels:\n  trial:\n    extends: strict\n    seccomp:\n      mode: audit\n"), 0o644)
	events := writeEvents(t,
		seccompEvent("web", "trial", "ptrace", "log", 3, false),
		seccompEvent("web", "trial", "process_vm_readv", "log", 1, false),
		seccompEvent("web", "trial", "mount", "log", 2, false),
		seccompEvent("web", "trial", "clone3", "errno", 40, true),
		seccompEvent("db", "restricted", "keyctl", "errno", 1, false),
		&event.Event{Time: time.Now(), Container: event.Container{Namespace: "k8s.io", ID: "x"}, Exec: &event.Exec{ExecID: "e"}},
	)
	out := filepath.Join(t.TempDir(), "web.json")
	code, stdout, stderr := hardenctl(t, "learn", "--policy", policyFile, "--events", events, "--pod", "shop/web", "--out", out)
	if code != 0 {
		t.Fatalf("learn --events = %d: %s", code, stderr)
	}
	for _, want := range []string{
		"ptrace            3      pack ptrace",
		"process_vm_readv  1      pack ptrace",
		"mount             2      no pack: not in the level's allowlist",
		"extends: trial", "mode: enforce", "- ptrace", "images:", "- registry.example/shop/web", "level: trial-learned",
		"# mount: no level can allow these",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("learn output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "clone3") || strings.Contains(stdout, "keyctl") {
		t.Errorf("learn used an expected probe or another pod:\n%s", stdout)
	}
	// The printed snippet is a valid policy change.
	snippet := stdout[strings.Index(stdout, "levels:"):]
	snippet = snippet[:strings.Index(snippet, "\n# mount")]
	os.WriteFile(policyFile+".new", []byte("mode: enforce\ndefaultLevel: restricted\n"+strings.Replace(snippet, "levels:\n", "levels:\n  trial:\n    extends: strict\n    seccomp:\n      mode: audit\n", 1)), 0o644)
	if code, out, errOut := hardenctl(t, "policy", "validate", policyFile+".new"); code != 0 {
		t.Errorf("policy validate of the proposal = %d %s %s", code, out, errOut)
	}
	data, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(data), `"mount"`) || !strings.Contains(string(data), `"ptrace"`) || strings.Contains(string(data), "SCMP_ACT_LOG") {
		t.Errorf("--out profile: %v %.300s", err, data)
	}
	// Several levels without a filter: an error that says how to narrow.
	code, _, stderr = hardenctl(t, "learn", "--policy", policyFile, "--events", events)
	if code != 2 || !strings.Contains(stderr, "several levels") {
		t.Errorf("learn over two pods = %d %s", code, stderr)
	}
	code, stdout, _ = hardenctl(t, "--output", "json", "learn", "--policy", policyFile, "--events", events, "--container", "k8s.io/db-id")
	var report struct {
		Level    string
		Packs    []string
		Syscalls map[string]int
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &report) != nil || report.Level != "restricted" || report.Packs[0] != "keyring" || report.Syscalls["keyctl"] != 1 {
		t.Errorf("learn --output json = %d %+v %s", code, report, stdout)
	}
}

func TestLearnFromMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`# TYPE hardened_seccomp_audited_total counter
hardened_seccomp_audited_total{container="app",containerd_namespace="k8s.io",namespace="shop",pod="web",syscall="ptrace"} 12
hardened_seccomp_audited_total{container="app",containerd_namespace="k8s.io",namespace="shop",pod="other",syscall="mount"} 1
# TYPE hardened_seccomp_denied_total counter
hardened_seccomp_denied_total{action="errno",container="app",containerd_namespace="k8s.io",expected="true",namespace="shop",pod="web",syscall="clone3"} 99
hardened_seccomp_denied_total{action="errno",container="app",containerd_namespace="k8s.io",expected="false",namespace="shop",pod="web",syscall="personality"} 2
`))
	}))
	defer srv.Close()
	code, stdout, stderr := hardenctl(t, "learn", "--policy", "/nonexistent", "--metrics", srv.URL, "--pod", "shop/web", "--level", "strict")
	if code != 0 || !strings.Contains(stdout, "ptrace       12     pack ptrace") || !strings.Contains(stdout, "personality  2      pack personality") ||
		!strings.Contains(stdout, "kubernetesNamespaces:") || strings.Contains(stdout, "clone3") || strings.Contains(stdout, "mount") {
		t.Errorf("learn --metrics = %d:\n%s%s", code, stdout, stderr)
	}
	code, _, stderr = hardenctl(t, "learn", "--metrics", srv.URL, "--level", "strict")
	if code != 2 || !strings.Contains(stderr, "--pod or --container") {
		t.Errorf("learn --metrics without a workload = %d %s", code, stderr)
	}
	code, _, stderr = hardenctl(t, "learn", "--metrics", srv.URL, "--events", "x")
	if code != 2 {
		t.Errorf("learn with both = %d %s", code, stderr)
	}
}
