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
	// releaseMu guards releaseTimer.
	releaseMu    sync.Mutex
	releaseTimer *time.Timer
)

// releaseMemorySoon returns the memory Creates used (specs, seccomp
// profiles, JSON buffers) to the kernel half a second after the last one,
// once the containers run: the shim lives as long as its containers, and
// its resident size is paid per pod on every node.
func releaseMemorySoon() {
	releaseMu.Lock()
	defer releaseMu.Unlock()
	if releaseTimer == nil {
		releaseTimer = time.AfterFunc(500*time.Millisecond, func() {
			debug.FreeOSMemory()
			writeHeapProfile()
		})
		return
	}
	releaseTimer.Reset(500 * time.Millisecond)
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
