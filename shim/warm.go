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
func warmUp(images *imageResolver) {
	// Connect to containerd now: the image look-up of the first Create
	// then skips the dial and the HTTP/2 handshake.
	if conn, err := images.connect(); err == nil {
		conn.Connect()
	}
	var s specs.Spec
	_ = json.Unmarshal([]byte(`{"process":{"user":{"uid":0},"capabilities":{"bounding":[]}},"root":{"path":"rootfs"},"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}]}}}`), &s)
	_, _ = json.Marshal(&s)
	if l, ok := profiles.Builtin(profiles.DefaultLevel); ok {
		_, _ = profiles.Seccomp(l, l.Capabilities.Allow)
	}
}

var releaseOnce sync.Mutex

// releaseMemorySoon returns the memory a Create used (the spec, its seccomp
// profile, JSON buffers) to the kernel once the container is running: the
// shim lives as long as its containers, and its resident size is paid per
// pod on every node.
func releaseMemorySoon() {
	if !releaseOnce.TryLock() {
		return // one is already scheduled
	}
	time.AfterFunc(500*time.Millisecond, func() {
		debug.FreeOSMemory()
		releaseOnce.Unlock()
	})
}
