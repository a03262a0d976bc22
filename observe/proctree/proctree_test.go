package proctree

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
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

func TestPrune(t *testing.T) {
	tr := &Tree{keep: time.Millisecond, procs: map[int]*proc{}, done: make(chan struct{})}
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
