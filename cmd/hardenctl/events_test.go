package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hardened-runtime/hardened/observe/event"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs hardenctl with args in the background; the returned function
// waits for it and returns its exit code.
func start(args []string, stdout, stderr io.Writer) func() int {
	done := make(chan int, 1)
	go func() { done <- run(append([]string{"hardenctl"}, args...), stdout, stderr) }()
	return func() int { return <-done }
}

func waitOutput(t *testing.T, what string, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in 30 s: %s", what, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEventsCommand: hardenctl events, without containerd and with --all,
// prints the denial of a container that runc ran (hardenctl run) as a JSON
// line, read from the real kernel's audit records.
func TestEventsCommand(t *testing.T) {
	runc := needRunc(t)
	layout := busyboxLayout(t)
	var out, errOut syncBuffer
	wait := start([]string{"events", "--output", "json", "--address", "", "--all", "--window", "100ms", "--count", "1", "--duration", "60s"}, &out, &errOut)
	waitOutput(t, "start line", &errOut, "reading seccomp records from netlink")
	if code, stdout, stderr := hardenctl(t, "run", "--runc", runc, layout, "--", "unshare", "-U", "true"); code == 0 {
		t.Fatalf("unshare ran: %s %s", stdout, stderr)
	}
	if code := wait(); code != 0 {
		t.Fatalf("events = %d: %s", code, errOut.String())
	}
	var e event.Event
	if err := json.Unmarshal([]byte(strings.SplitN(out.String(), "\n", 2)[0]), &e); err != nil {
		t.Fatalf("events output %q: %v", out.String(), err)
	}
	if e.Seccomp == nil || e.Seccomp.Syscall != "unshare" || e.Seccomp.Action != "errno" || e.Seccomp.Comm != "unshare" || e.Container.ID != "" {
		t.Errorf("event %+v %+v", e.Container, e.Seccomp)
	}
}

// TestObserveCommand: hardenctl observe serves /healthz and the metrics,
// counts a denial, and stops on SIGTERM.
func TestObserveCommand(t *testing.T) {
	runc := needRunc(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var out, errOut syncBuffer
	wait := start([]string{"observe", "--listen", addr, "--address", "", "--duration", "2m"}, &out, &errOut)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, body := get(t, "http://"+addr+"/healthz"); code == http.StatusOK && strings.TrimSpace(body) == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz not ok in 30 s: %s %s", out.String(), errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _, stderr := hardenctl(t, "run", "--runc", runc, busyboxLayout(t), "--", "unshare", "-U", "true"); code == 0 {
		t.Fatalf("unshare ran: %s", stderr)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		_, m := get(t, "http://"+addr+"/metrics")
		if strings.Contains(m, `hardened_observe_records_total{source="netlink"}`) && !strings.Contains(m, "hardened_observe_unattributed_records_total 0") &&
			strings.Contains(m, "hardened_observe_containers 0") && strings.Contains(m, "process_resident_memory_bytes") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics:\n%s", m)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The command has its signal handler: SIGTERM ends it, not the test.
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	if code := wait(); code != 0 {
		t.Errorf("observe = %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "hardenctl observe: metrics on http://"+addr+"/metrics") {
		t.Errorf("observe log:\n%s", out.String())
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
