package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/hardened-runtime/hardened/integration/harness"
)

// The node policy of the tests: restricted by default; pods of the
// Kubernetes namespaces hostnet-* may use the host network (the tests have
// no CNI); the containerd namespace "audit" only records.
const testPolicy = `mode: enforce
defaultLevel: restricted
levels:
  # hostpaths, hostpaths-strict and broad: for containers that bind-mount
  # host directories (mounts_test.go, the benchmark), by annotation.
  hostpaths:
    extends: restricted
    description: restricted, and the tests' host directory may be bind-mounted
    mounts:
      allowHostPaths: [/tmp/hardened-test-hostpaths]
  hostpaths-strict:
    extends: strict
    description: strict, and the tests' host directory may be bind-mounted
    mounts:
      allowHostPaths: [/tmp/hardened-test-hostpaths]
  no-userns:
    extends: restricted
    description: restricted without root in a user namespace (root images as 65534), to measure its cost
    user:
      namespace: "off"
  broad:
    extends: restricted
    description: restricted, and /tmp, which holds the test containerd's root, state and socket, may be bind-mounted
    mounts:
      allowHostPaths: [/tmp]
  hostnet:
    extends: restricted
    description: restricted with the host network, for CNI-less test pods
    namespaces:
      allowHost: [network]
rules:
  - name: host-network test pods
    match:
      kubernetesNamespaces: ["hostnet-*"]
    level: hostnet
  - name: user namespace test pods (userns_test.go), which share a host directory
    match:
      kubernetesNamespaces: ["userns-*"]
    level: hostpaths
  - name: root tools
    match:
      images: ["registry.example/root-tool*"]
    level: baseline
  - name: audit namespace
    match:
      containerdNamespaces: [audit]
    level: restricted
    mode: audit
  - name: tests that bind host directories (mounts_test.go)
    match:
      containerdNamespaces: [hardened-test]
    level: restricted
    allowAnnotationLevels: [hostpaths, hostpaths-strict, broad, no-userns]
`

const (
	ns         = "hardened-test"
	runcRT     = "io.containerd.runc.v2"
	hardenedRT = "io.containerd.hardened.v2"
)

var (
	cd       *harness.Containerd
	startErr string
	seq      atomic.Int64
)

// hostPaths is the host directory the test levels hostpaths and
// hostpaths-strict may bind-mount; tests make their own directories in it.
const hostPaths = "/tmp/hardened-test-hostpaths"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if why := harness.CanRun(); why != "" {
		startErr = why
		return m.Run() // every test skips (or fails on CI) through require
	}
	shimDir, err := harness.BuildShimDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer harness.RemoveShim()
	policyDir, err := os.MkdirTemp("", "hardened-policy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(policyDir)
	if err := os.MkdirAll(hostPaths, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	policyPath := filepath.Join(policyDir, "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(testPolicy), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cd, err = harness.Launch(harness.Options{PolicyPath: policyPath, ShimDir: shimDir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		return 1
	}
	defer cd.Stop()
	for _, n := range []string{ns, "audit", "k8s.io"} {
		if err := cd.ImportImages(n); err != nil {
			fmt.Fprintln(os.Stderr, "harness:", err)
			return 1
		}
	}
	code := m.Run()
	if os.Getenv("HARDENED_SHOW_LOG") != "" {
		fmt.Fprintln(os.Stderr, cd.Log())
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "harness: containerd log (tail):\n%s\n", cd.LogTail(60))
	}
	return code
}

// require skips when the tests cannot run here, and fails on CI.
func require(t *testing.T) {
	t.Helper()
	if startErr != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("integration tests cannot run on CI: %s", startErr)
		}
		t.Skipf("skipping: %s", startErr)
	}
}

func ctxFor(namespace string) (context.Context, context.CancelFunc) {
	return context.WithTimeout(namespaces.WithNamespace(context.Background(), namespace), 60*time.Second)
}

// newID returns a container id no other test, and no other test binary,
// uses: runc keeps its state per id in one directory of the host, whatever
// containerd runs it.
func newID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), seq.Add(1))
}

// result is what a container printed and how it ended.
type result struct {
	Stdout, Stderr string
	Exit           uint32
}

// runContainer runs args in a new container of image under runtime, the
// way `ctr run --rm` does, and removes it.
func runContainer(t *testing.T, namespace, runtime, image string, args []string, opts ...oci.SpecOpts) (result, error) {
	t.Helper()
	return runSpec{namespace: namespace, runtime: runtime, image: image}.run(t, args, opts...)
}

// runContainerOn is runContainer with the container's rootfs snapshot
// made by snapshot (containerd.WithNewSnapshot, or a remapped one).
func runContainerOn(t *testing.T, namespace, runtime, image string, args []string, snapshot func(string, containerd.Image, ...snapshots.Opt) containerd.NewContainerOpts, opts ...oci.SpecOpts) (result, error) {
	t.Helper()
	return runSpec{namespace: namespace, runtime: runtime, image: image, snapshot: snapshot}.run(t, args, opts...)
}

// runSpec is how a test runs a container to its end, as `ctr run --rm`
// does: where, with what, and what it gets on stdin.
type runSpec struct {
	namespace, runtime, image string
	// runtimeOpts are the runtime's options (a policy file, as CRI passes
	// it); nil: none.
	runtimeOpts any
	// snapshot makes the rootfs snapshot; nil: containerd.WithNewSnapshot.
	snapshot func(string, containerd.Image, ...snapshots.Opt) containerd.NewContainerOpts
	// stdin is the process's stdin, closed when read to its end; nil: none.
	stdin io.Reader
}

// run runs args in a new container and removes it.
func (r runSpec) run(t *testing.T, args []string, opts ...oci.SpecOpts) (result, error) {
	t.Helper()
	ctx, cancel := ctxFor(r.namespace)
	defer cancel()
	c := cd.Client(t)
	img, err := c.GetImage(ctx, r.image)
	if err != nil {
		return result{}, err
	}
	snapshot := r.snapshot
	if snapshot == nil {
		snapshot = containerd.WithNewSnapshot
	}
	id := newID(strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-"))
	specOpts := append([]oci.SpecOpts{oci.WithImageConfig(img), oci.WithProcessArgs(args...)}, opts...)
	ctr, err := c.NewContainer(ctx, id, containerd.WithImage(img), snapshot(id, img),
		containerd.WithRuntime(r.runtime, r.runtimeOpts), containerd.WithNewSpec(specOpts...))
	if err != nil {
		return result{}, err
	}
	defer ctr.Delete(context.WithoutCancel(ctx), containerd.WithSnapshotCleanup)
	var stdout, stderr bytes.Buffer
	var in *eofReader
	var stdin io.Reader
	if r.stdin != nil {
		in = &eofReader{r: r.stdin, done: make(chan struct{})}
		stdin = in
	}
	task, err := ctr.NewTask(ctx, cio.NewCreator(cio.WithStreams(stdin, &stdout, &stderr), cio.WithFIFODir(filepath.Join(cd.Dir, "fifo"))))
	if err != nil {
		return result{}, err
	}
	defer task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
	exitCh, err := task.Wait(ctx)
	if err != nil {
		return result{}, err
	}
	if err := task.Start(ctx); err != nil {
		return result{}, err
	}
	if in != nil {
		// The shim keeps the stdin FIFO open until told the client is done.
		go func() {
			<-in.done
			task.CloseIO(ctx, containerd.WithStdinCloser)
		}()
	}
	var st containerd.ExitStatus
	select {
	case st = <-exitCh:
	case <-ctx.Done():
		task.Kill(context.WithoutCancel(ctx), syscall.SIGKILL)
		return result{}, fmt.Errorf("container %s did not exit in time", id)
	}
	task.IO().Wait() // all output copied
	task.Delete(context.WithoutCancel(ctx))
	return result{Stdout: stdout.String(), Stderr: stderr.String(), Exit: st.ExitCode()}, nil
}

// statusField returns a field of /proc/self/status output.
func statusField(status, field string) string {
	for _, line := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == field {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
