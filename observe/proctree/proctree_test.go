package proctree

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root on CI")
		}
		t.Skip("skipping: needs root")
	}
}

func TestLineageOfExitedProcesses(t *testing.T) {
	needRoot(t)
	tree, err := Open("/proc", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	if !tree.Known(os.Getpid()) || tree.Len() < 2 {
		t.Fatalf("seeded %d processes, this one known: %v", tree.Len(), tree.Known(os.Getpid()))
	}
	// A grandchild that exits at once, as a denied unshare does.
	cmd := exec.Command("/bin/sh", "-c", `/bin/sh -c 'echo $$'; true`)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	inner, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	outer := cmd.Process.Pid
	deadline := time.Now().Add(10 * time.Second)
	for !tree.Known(inner) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := tree.Lineage(inner)
	if len(got) < 3 || got[0] != inner || got[1] != outer || !slices.Contains(got, os.Getpid()) {
		t.Errorf("Lineage(%d) = %v, want %d, %d, ..., %d", inner, got, inner, outer, os.Getpid())
	}
	if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(inner))); err == nil {
		t.Errorf("process %d still runs", inner)
	}
}

// TestThreadsAreNotRecorded: the socket filter drops thread events in the
// kernel; a new thread of this process is not in the tree.
func TestThreadsAreNotRecorded(t *testing.T) {
	needRoot(t)
	if got := newThreadsRecorded(t); got != 0 {
		t.Errorf("%d thread events reached the reader through the filter", got)
	}
	// Without the filter they would be: the test sees threads at all.
	noThreadFilter = true
	defer func() { noThreadFilter = false }()
	if got := newThreadsRecorded(t); got == 0 {
		t.Error("without the filter no thread was recorded either: the test starts no thread")
	}
}

// newThreadsRecorded starts threads and returns how many of them reached
// the reader.
func newThreadsRecorded(t *testing.T) int {
	t.Helper()
	var mu sync.Mutex
	seen := map[int]bool{}
	threadEventHook = func(tid int) { mu.Lock(); seen[tid] = true; mu.Unlock() }
	defer func() { threadEventHook = nil }()
	tree, err := Open("/proc", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	// Goroutines that hold a thread each at the same time: the runtime
	// has to start new threads for most of them.
	const n = 16
	tids := make(chan int)
	release := make(chan struct{})
	for range n {
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			tids <- unix.Gettid()
			<-release
		}()
	}
	var threads []int
	for range n {
		threads = append(threads, <-tids)
	}
	close(release)
	// A process forked after the threads: once it is known, the events
	// before it have been read.
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !tree.Known(cmd.Process.Pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !tree.Known(cmd.Process.Pid) {
		t.Fatal("the process was not recorded")
	}
	mu.Lock()
	defer mu.Unlock()
	recorded := 0
	for _, tid := range threads {
		if tree.Known(tid) && tid != os.Getpid() {
			t.Errorf("thread %d recorded as a process", tid)
		}
		if seen[tid] {
			recorded++
		}
	}
	return recorded
}

func TestPrune(t *testing.T) {
	tr := &Tree{keep: time.Millisecond, procs: map[int]*proc{}, done: make(chan struct{}), closing: make(chan struct{})}
	tr.forked(10, 1)
	tr.forked(11, 10)
	tr.exited(11)
	tr.forked(12, 11)
	if got := tr.Lineage(12); !slices.Equal(got, []int{12, 11, 10, 1}) {
		t.Errorf("Lineage = %v", got)
	}
	tr.forked(11, 5) // pid reuse
	if got := tr.Lineage(12); !slices.Equal(got, []int{12, 11, 5}) {
		t.Errorf("Lineage after reuse = %v", got)
	}
	tr.exited(11)
	go tr.prune()
	deadline := time.Now().Add(5 * time.Second)
	for tr.Known(11) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(tr.done)
	if tr.Known(11) || !tr.Known(10) {
		t.Errorf("after prune: 11 known %v, 10 known %v", tr.Known(11), tr.Known(10))
	}
}

func TestReadPPid(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "stat")
	os.WriteFile(p, []byte("42 (a) b) c) S 7 42 42 0 -1"), 0o644)
	if ppid, ok := readPPid(p); !ok || ppid != 7 {
		t.Errorf("readPPid = %d %v", ppid, ok)
	}
	os.WriteFile(p, []byte("42 (x"), 0o644)
	if _, ok := readPPid(p); ok {
		t.Error("readPPid accepted a broken stat")
	}
}
