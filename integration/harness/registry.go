package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// RegistryBinary is the test registry's binary, built from
// ./integration/testregistry by BuildRegistry.
const RegistryBinary = "testregistry"

// How long the harness waits for the registry to listen, and to stop.
const (
	registryReadyTimeout = 10 * time.Second
	registryTermTimeout  = 5 * time.Second
)

// RegistryOptions configure a test registry. The zero value serves the
// referrers API on a free loopback port.
type RegistryOptions struct {
	// NoReferrers makes the referrers API answer 404, as registries before
	// OCI 1.1 do: cosign v3's bundles then live in the referrers tag schema
	// (`sha256-<hex>` tags).
	NoReferrers bool
	// Addr is where to listen; default 127.0.0.1:0 (any free port).
	Addr string
}

// Registry is a test registry process (integration/testregistry): an
// in-memory OCI registry over plain HTTP on 127.0.0.1, started by
// StartRegistry or LaunchRegistry. Its request log is in Log.
type Registry struct {
	addr    string
	dir     string // holds the address file and the log
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited

	stopOnce sync.Once
	stopErr  error
	mu       sync.Mutex
	finalLog []byte // the log, kept when dir is removed
}

var (
	registryOnce sync.Once
	registryDir  string
	registryErr  error
)

// BuildRegistry builds ./integration/testregistry once per test binary and
// returns the binary's path. The directory lives until the test binary
// exits (RemoveShim removes it; a later build removes those of exited test
// binaries).
func BuildRegistry(t testing.TB) (string, error) {
	t.Helper()
	start := time.Now()
	bin, err := BuildRegistryBinary()
	if err == nil {
		t.Logf("harness: %s in %s (%v)", RegistryBinary, filepath.Dir(bin), time.Since(start).Round(time.Millisecond))
	}
	return bin, err
}

// BuildRegistryBinary is BuildRegistry for TestMain, which has no
// *testing.T.
func BuildRegistryBinary() (string, error) {
	registryOnce.Do(func() { registryDir, registryErr = buildRegistry() })
	if registryErr != nil {
		return "", registryErr
	}
	return filepath.Join(registryDir, RegistryBinary), nil
}

func buildRegistry() (string, error) {
	return buildInto("hardened-registry-", RegistryBinary, "./integration/testregistry")
}

// RemoveRegistry removes the directory BuildRegistry built in (RemoveShim
// calls it too).
func RemoveRegistry() {
	if registryDir != "" {
		os.RemoveAll(registryDir)
	}
}

// StartRegistry starts a test registry (building it first, see
// BuildRegistry) and stops it by PID when the test and its subtests are
// done; it logs the tail of the registry's request log when the test
// failed. It fails the test if the registry does not listen in 10 seconds.
func StartRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	begin := time.Now()
	if _, err := BuildRegistry(t); err != nil {
		t.Fatalf("harness: %v", err)
	}
	r, err := LaunchRegistry(opts)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Logf("harness: registry pid %d serving http://%s (referrers API: %v; %v)", r.PID(), r.addr, !opts.NoReferrers, time.Since(begin).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("harness: stop registry: %v", err)
		}
		if t.Failed() {
			t.Logf("harness: registry %s log (tail):\n%s", r.addr, tail(r.Log(), 40))
		}
	})
	return r
}

// LaunchRegistry is StartRegistry for TestMain, which has no *testing.T:
// the caller must call Stop. On error nothing is left running.
func LaunchRegistry(opts RegistryOptions) (*Registry, error) {
	bin, err := BuildRegistryBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "hardened-registry-run-")
	if err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}
	r := &Registry{dir: dir, logPath: filepath.Join(dir, "registry.log"), exited: make(chan struct{})}
	if err := r.launch(bin, opts); err != nil {
		r.Stop()
		return nil, fmt.Errorf("start registry: %w", err)
	}
	return r, nil
}

func (r *Registry) launch(bin string, opts RegistryOptions) error {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	addrFile := filepath.Join(r.dir, "addr")
	args := []string{"--addr", addr, "--addr-file", addrFile, "--verbose"}
	if opts.NoReferrers {
		args = append(args, "--no-referrers")
	}
	logFile, err := os.OpenFile(r.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logFile
	// Its own process group, so a ^C to the tests does not reach it first,
	// and killed if the test binary dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	r.cmd = cmd
	go func() {
		cmd.Wait()
		close(r.exited)
	}()
	deadline := time.Now().Add(registryReadyTimeout)
	for {
		if data, err := os.ReadFile(addrFile); err == nil && strings.TrimSpace(string(data)) != "" {
			r.addr = strings.TrimSpace(string(data))
			return nil
		}
		select {
		case <-r.exited:
			return fmt.Errorf("%s exited (%v); log:\n%s", RegistryBinary, cmd.ProcessState, tail(r.Log(), 20))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen in %v; log:\n%s", RegistryBinary, registryReadyTimeout, tail(r.Log(), 20))
		}
	}
}

// Addr returns the registry's host:port ("127.0.0.1:PORT"): the registry
// part of image references, and the host to give Options.RegistryHosts.
func (r *Registry) Addr() string { return r.addr }

// PID returns the registry's process id, or 0 if it was not started.
func (r *Registry) PID() int {
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// Ref returns the reference of path (e.g. "test/busybox:v1") in this
// registry: Addr()/path.
func (r *Registry) Ref(path string) string { return r.addr + "/" + path }

// Repository returns the repository path (e.g. "test/busybox") in this
// registry, for go-containerregistry (plain HTTP) and signtest.
func (r *Registry) Repository(t testing.TB, path string) name.Repository {
	t.Helper()
	repo, err := name.NewRepository(r.Ref(path), name.Insecure)
	if err != nil {
		t.Fatalf("harness: repository %s: %v", r.Ref(path), err)
	}
	return repo
}

// Push pushes img as ref (a full reference in this registry, e.g.
// r.Ref("test/busybox:v1")) and returns its descriptor (media type, digest,
// size): the digest containerd resolves ref to.
func (r *Registry) Push(t testing.TB, ref string, img v1.Image) v1.Descriptor {
	t.Helper()
	d, err := r.push(t.Context(), ref, img)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return d
}

// PushIndex pushes an image index and its images as ref and returns the
// index's descriptor.
func (r *Registry) PushIndex(t testing.TB, ref string, idx v1.ImageIndex) v1.Descriptor {
	t.Helper()
	d, err := r.push(t.Context(), ref, idx)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return d
}

// taggable is what push accepts: a v1.Image or a v1.ImageIndex.
type taggable interface {
	remote.Taggable
	MediaType() (types.MediaType, error)
	Digest() (v1.Hash, error)
	Size() (int64, error)
}

func (r *Registry) push(ctx context.Context, ref string, t taggable) (v1.Descriptor, error) {
	fail := func(err error) (v1.Descriptor, error) { return v1.Descriptor{}, fmt.Errorf("push %s: %w", ref, err) }
	parsed, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := remote.Push(parsed, t, remote.WithContext(ctx)); err != nil {
		return fail(err)
	}
	var desc v1.Descriptor
	var errs []error
	desc.Digest, err = t.Digest()
	errs = append(errs, err)
	desc.Size, err = t.Size()
	errs = append(errs, err)
	desc.MediaType, err = t.MediaType()
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return fail(err)
	}
	return desc, nil
}

// Stop stops the registry by PID (SIGTERM, SIGKILL after 5 seconds) and
// waits for it, as when a registry goes away; later pulls fail with
// "connection refused". It runs once; later calls return the first result.
func (r *Registry) Stop() error {
	r.stopOnce.Do(func() { r.stopErr = r.stop() })
	return r.stopErr
}

func (r *Registry) stop() error {
	var err error
	if r.cmd != nil && r.cmd.Process != nil {
		select {
		case <-r.exited:
			err = fmt.Errorf("%s pid %d exited before Stop (%v)", RegistryBinary, r.PID(), r.cmd.ProcessState)
		default:
			r.cmd.Process.Signal(syscall.SIGTERM)
			r.cmd.Process.Signal(syscall.SIGCONT) // if paused
			select {
			case <-r.exited:
			case <-time.After(registryTermTimeout):
				r.cmd.Process.Kill()
				<-r.exited
			}
		}
	}
	data, _ := os.ReadFile(r.logPath)
	r.mu.Lock()
	r.finalLog = data
	r.mu.Unlock()
	if rerr := os.RemoveAll(r.dir); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return err
}

// Pause stops the registry process (SIGSTOP) without closing its socket:
// connections are accepted by the kernel and never answered, as with a
// hung registry, until Resume. Stop works on a paused registry too.
func (r *Registry) Pause() error { return r.signal(syscall.SIGSTOP) }

// Resume continues a paused registry (SIGCONT).
func (r *Registry) Resume() error { return r.signal(syscall.SIGCONT) }

func (r *Registry) signal(sig syscall.Signal) error {
	select {
	case <-r.exited:
		return fmt.Errorf("%s pid %d has exited", RegistryBinary, r.PID())
	default:
	}
	return r.cmd.Process.Signal(sig)
}

// Log returns the registry's request log: one line per request (method,
// URL, status, bytes, duration), also after Stop.
func (r *Registry) Log() string {
	data, err := os.ReadFile(r.logPath)
	if errors.Is(err, os.ErrNotExist) {
		r.mu.Lock()
		data = r.finalLog
		r.mu.Unlock()
	}
	return string(data)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
