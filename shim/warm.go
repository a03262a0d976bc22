package shim

import (
	"encoding/json"
	"runtime/debug"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/profiles"
)

// warmUp does, while the shim waits for its first Create, the one-time work
// that Create would otherwise pay for: the JSON codec's tables for the spec
// types and the default level's seccomp profile. A shim process serves one
// container (or one pod), so every Create is otherwise a cold one.
func warmUp() {
	var s specs.Spec
	_ = json.Unmarshal([]byte(`{"process":{"user":{"uid":0},"capabilities":{"bounding":[]}},"root":{"path":"rootfs"},"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}]}}}`), &s)
	_, _ = json.Marshal(&s)
	if l, ok := profiles.Builtin(profiles.DefaultLevel); ok {
		_, _ = profiles.Seccomp(l, l.Capabilities.Allow)
	}
}

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
		releaseTimer = time.AfterFunc(500*time.Millisecond, debug.FreeOSMemory)
		return
	}
	releaseTimer.Reset(500 * time.Millisecond)
}
