package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hardened-runtime/hardened/integration/harness"
)

// TestLoad creates and removes LOAD_N (default 200) hardened containers
// from 8 concurrent workers, then checks that nothing was left behind: no
// shim process, no mount below containerd's state directory, no cgroup of
// the namespace, no file descriptor of containerd beyond what it had
// before. `make soak` runs it with 1,000 and more.
func TestLoad(t *testing.T) {
	require(t)
	n := envInt("LOAD_N", 200)
	const workers = 8
	before := leakCounts(t)
	t.Logf("before: %v", before)

	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				res, err := runContainer(t, ns, hardenedRT, harness.Busybox, []string{"sh", "-c", idProbe})
				if err == nil && whoAmI(res.Stdout) != rootInItsUserNamespace {
					err = fmt.Errorf("runs as %q", res.Stdout)
				}
				if err != nil {
					if failed.Add(1) <= 5 {
						t.Errorf("container: %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d containers, %d workers: %v, %d failed", n, workers, time.Since(start).Round(time.Millisecond), failed.Load())
	if failed.Load() > 0 {
		t.Fatalf("%d of %d containers failed", failed.Load(), n)
	}

	// Shims exit asynchronously after their container is deleted.
	var after map[string]int
	deadline := time.Now().Add(30 * time.Second)
	for {
		after = leakCounts(t)
		if noLeaks(before, after) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("after: %v", after)
	if !noLeaks(before, after) {
		t.Errorf("left behind after %d containers: before %v, after %v", n, before, after)
	}
}

// leakCounts counts what a container could leave behind.
func leakCounts(t *testing.T) map[string]int {
	t.Helper()
	cgroups := 0
	for _, ctl := range []string{"memory", "pids", "cpu", "devices", "freezer", "blkio"} {
		entries, _ := os.ReadDir(filepath.Join("/sys/fs/cgroup", ctl, ns))
		for _, e := range entries {
			if e.IsDir() {
				cgroups++
			}
		}
	}
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(cd.PID()) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]int{
		"shims":          len(cd.ShimPIDs()),
		"mounts":         len(harness.MountsBelow(cd.State)),
		"cgroups":        cgroups,
		"containerd fds": len(fds),
		"shim sockets":   countSockets(filepath.Join(cd.Dir, "s")) + countSockets(filepath.Join(cd.Dir, "s", "hardened")),
		"bundles":        countDir(filepath.Join(cd.State, "io.containerd.runtime.v2.task", ns)),
		"runc state":     countDir(filepath.Join("/run/containerd/runc", ns)),
		"userns ranges":  len(usernsEntries(t, cd)),
	}
}

func countSockets(dir string) int {
	entries, _ := os.ReadDir(dir)
	n := 0
	for _, e := range entries {
		if e.Type()&os.ModeSocket != 0 {
			n++
		}
	}
	return n
}

func countDir(dir string) int {
	entries, _ := os.ReadDir(dir)
	return len(entries)
}

func noLeaks(before, after map[string]int) bool {
	for k, v := range after {
		if v > before[k] {
			return false
		}
	}
	return true
}
