package shim

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/hardened-runtime/hardened/internal/atomicfile"
)

var (
	// releaseMu guards releaseTimer and releaseIdle.
	releaseMu    sync.Mutex
	releaseTimer *time.Timer
	releaseIdle  func()
)

// releaseDelay is how long after the last Create the shim releases what
// Creates used: long enough for the kubelet to start a pod's next
// container on the same connection.
const releaseDelay = 500 * time.Millisecond

// releaseMemorySoon calls idle (which closes what Creates keep open), then
// returns the memory Creates used (specs, seccomp profiles, JSON buffers)
// to the kernel, releaseDelay after the last call, once the containers
// run: the shim lives as long as its containers, and its resident size is
// paid per pod on every node.
func releaseMemorySoon(idle func()) {
	releaseMu.Lock()
	defer releaseMu.Unlock()
	releaseIdle = idle
	if releaseTimer == nil {
		releaseTimer = time.AfterFunc(releaseDelay, func() {
			releaseMu.Lock()
			idle := releaseIdle
			releaseMu.Unlock()
			if idle != nil {
				idle()
			}
			debug.FreeOSMemory()
			writeHeapProfile()
		})
		return
	}
	releaseTimer.Reset(releaseDelay)
}

// HeapProfileEnv names a directory where the shim writes a heap profile
// (heap-<pid>.pprof) each time it has released memory: what a running
// container's shim keeps, for `go tool pprof`.
const HeapProfileEnv = "HARDENED_HEAP_PROFILE_DIR"

func writeHeapProfile() {
	dir := os.Getenv(HeapProfileEnv)
	if dir == "" {
		return
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	stats := fmt.Sprintf("HeapInuse %d HeapIdle %d HeapReleased %d StackInuse %d MSpanInuse %d GCSys %d OtherSys %d Sys %d NumGC %d\n",
		ms.HeapInuse>>10, ms.HeapIdle>>10, ms.HeapReleased>>10, ms.StackInuse>>10, ms.MSpanInuse>>10, ms.GCSys>>10, ms.OtherSys>>10, ms.Sys>>10, ms.NumGC)
	_ = atomicfile.Write(filepath.Join(dir, fmt.Sprintf("memstats-%d.txt", os.Getpid())), []byte(stats), 0o600)
	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 0); err == nil {
		_ = atomicfile.Write(filepath.Join(dir, fmt.Sprintf("heap-%d.pprof", os.Getpid())), buf.Bytes(), 0o600)
	}
}
