package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/integration/harness"
)

// TestFaultContainerdKilled: containerd killed with SIGKILL and started
// again while a hardened container runs: the container keeps running and
// stays manageable (exec, still hardened; kill; delete), and nothing is
// left afterwards.
func TestFaultContainerdKilled(t *testing.T) {
	require(t)
	shimDir, err := harness.BuildShimDir()
	if err != nil {
		t.Fatal(err)
	}
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(policyFile, []byte(testPolicy), 0o644)
	c := harness.Start(t, harness.Options{ShimDir: shimDir, PolicyPath: policyFile})
	img := harness.Import(t, c, ns, harness.Busybox)[0]
	ctx := namespaces.WithNamespace(t.Context(), ns)
	id := newID("crash")
	ctr, err := c.Client(t).NewContainer(ctx, id, containerd.WithImage(img), containerd.WithNewSnapshot(id, img),
		containerd.WithRuntime(hardenedRT, nil), containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("sleep", "600")))
	if err != nil {
		t.Fatal(err)
	}
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pid := task.Pid()
	shims := c.ShimPIDs()

	if err := c.KillAndRestart(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(int(pid), 0); err != nil {
		t.Fatalf("container process %d did not survive containerd's restart: %v", pid, err)
	}
	if got := c.ShimPIDs(); !slices.Equal(got, shims) {
		t.Errorf("shims %v after the restart, want %v", got, shims)
	}
	client := c.Client(t)
	ctr, err = client.LoadContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	task, err = ctr.Task(ctx, nil)
	if err != nil {
		t.Fatalf("task after containerd's restart: %v", err)
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := spec.Process
	p.Args, p.Terminal = []string{"sh", "-c", idProbe}, false
	p.User = specs.User{UID: 0, GID: 0}
	out, err := execIn(ctx, task, "after-restart", p)
	if err != nil {
		t.Fatalf("exec after containerd's restart: %v", err)
	}
	if whoAmI(out) != rootInItsUserNamespace {
		t.Errorf("exec after containerd's restart runs as %q, want %s", out, rootInItsUserNamespace)
	}
	exitCh, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Kill(ctx, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exitCh:
	case <-time.After(30 * time.Second):
		t.Fatal("the container did not exit after SIGKILL")
	}
	if _, err := task.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the shim to exit", func() bool { return len(c.ShimPIDs()) == 0 })
	if m := harness.MountsBelow(c.State); len(m) > 0 {
		t.Errorf("mounts left below the state directory: %v", m)
	}
}

// TestFaultShimKilled: the shim of a running hardened container killed
// with SIGKILL: containerd reports the task dead, and it can be deleted
// with nothing left behind.
func TestFaultShimKilled(t *testing.T) {
	require(t)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	before := cd.ShimPIDs()
	ctr, task := startTask(t, ctx, newID("shimkill"), hardenedRT, oci.WithProcessArgs("sleep", "600"))
	var shim int
	for _, pid := range cd.ShimPIDs() {
		if !slices.Contains(before, pid) {
			shim = pid
		}
	}
	if shim == 0 {
		t.Fatal("no shim for the container")
	}
	exitCh, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sleeper := int(task.Pid())
	syscall.Kill(shim, syscall.SIGKILL)
	select {
	case st := <-exitCh:
		t.Logf("task ended after its shim was killed: %d %v", st.ExitCode(), st.Error())
	case <-ctx.Done():
		t.Fatal("containerd did not report the task dead after its shim was killed")
	}
	task.Delete(ctx, containerd.WithProcessKill) // may already be cleaned up
	if err := ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
		t.Fatalf("delete the container after its shim died: %v", err)
	}
	bundle := filepath.Join(cd.State, "io.containerd.runtime.v2.task", ns, ctr.ID())
	waitFor(t, "the bundle and the container's process to go", func() bool {
		_, err := os.Stat(bundle)
		return errors.Is(err, os.ErrNotExist) && !slices.Contains(cd.ShimPIDs(), shim)
	})
	if _, err := os.Stat(filepath.Join("/run/containerd/runc", ns, ctr.ID())); err == nil {
		t.Error("runc state left behind")
	}
	// `shim delete` found runc's state and had runc kill the container.
	waitFor(t, "the container's process to be killed", func() bool {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", sleeper))
		if err != nil {
			return true
		}
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		return len(f) > 0 && f[0] == "Z"
	})
}

// TestFaultRuncMissing: a runc binary that is not there fails the create
// with an error that says so; no shim, bundle or task is left.
func TestFaultRuncMissing(t *testing.T) {
	require(t)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	c := cd.Client(t)
	img, err := c.GetImage(ctx, harness.Busybox)
	if err != nil {
		t.Fatal(err)
	}
	before := cd.ShimPIDs()
	id := newID("norunc")
	ctr, err := c.NewContainer(ctx, id, containerd.WithImage(img), containerd.WithNewSnapshot(id, img),
		containerd.WithRuntime(hardenedRT, &runcoptions.Options{BinaryName: "/nonexistent/runc"}),
		containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("true")))
	if err != nil {
		t.Fatal(err)
	}
	defer ctr.Delete(context.WithoutCancel(ctx), containerd.WithSnapshotCleanup)
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err == nil {
		task.Delete(ctx, containerd.WithProcessKill)
		t.Fatal("a task was created without runc")
	}
	if !strings.Contains(err.Error(), "/nonexistent/runc") {
		t.Errorf("error %q does not name the missing runc", err)
	}
	t.Logf("refused: %v", err)
	waitFor(t, "no shim left", func() bool { return slices.Equal(cd.ShimPIDs(), before) })
	if _, err := os.Stat(filepath.Join(cd.State, "io.containerd.runtime.v2.task", ns, id)); err == nil {
		t.Error("bundle left behind")
	}
}

// TestFaultPolicyChanges: the policy file made invalid while containers
// run refuses new containers with the validation error; deleted (the
// runtime's ConfigPath names it), it refuses them with the path and the
// fix, never falling back to the built-in default; running containers
// are not touched.
func TestFaultPolicyChanges(t *testing.T) {
	require(t)
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte("mode: enforce\ndefaultLevel: restricted\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := &runtimeoptions.Options{ConfigPath: file}
	ctx, cancel := ctxFor(ns)
	defer cancel()
	_, running := startTaskWith(t, ctx, newID("policy-running"), opts, oci.WithProcessArgs("sleep", "600"))

	os.WriteFile(file, []byte("mode: enforce\ndefaultLevel: restricted\nlevels: {oops\n"), 0o644)
	_, err := newTaskWith(t, ctx, newID("policy-invalid"), opts)
	if err == nil || !strings.Contains(err.Error(), "invalid node policy") || !strings.Contains(err.Error(), file) {
		t.Errorf("container under an invalid policy: err = %v, want a refusal naming the policy file", err)
	}
	os.Remove(file)
	task, err := newTaskWith(t, ctx, newID("policy-deleted"), opts)
	if err == nil {
		task.Delete(ctx, containerd.WithProcessKill)
		t.Fatal("a container started with its policy file deleted")
	}
	for _, want := range []string{file + " does not exist", "fix: restore it", "never falls back to the built-in default"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q lacks %q", err, want)
		}
	}
	if st, err := running.Status(ctx); err != nil || st.Status != containerd.Running {
		t.Errorf("the running container is %v (%v) after the policy changes", st.Status, err)
	}
}

func startTaskWith(t *testing.T, ctx context.Context, id string, opts any, specOpts ...oci.SpecOpts) (containerd.Container, containerd.Task) {
	t.Helper()
	task, err := newTaskWith(t, ctx, id, opts, specOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { task.Delete(context.Background(), containerd.WithProcessKill) })
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ctr, _ := cd.Client(t).LoadContainer(ctx, id)
	return ctr, task
}

func newTaskWith(t *testing.T, ctx context.Context, id string, opts any, specOpts ...oci.SpecOpts) (containerd.Task, error) {
	t.Helper()
	c := cd.Client(t)
	img, err := c.GetImage(ctx, harness.Busybox)
	if err != nil {
		t.Fatal(err)
	}
	ctr, err := c.NewContainer(ctx, id, containerd.WithImage(img), containerd.WithNewSnapshot(id, img),
		containerd.WithRuntime(hardenedRT, opts),
		containerd.WithNewSpec(append([]oci.SpecOpts{oci.WithImageConfig(img), oci.WithProcessArgs("true")}, specOpts...)...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctr.Delete(context.Background(), containerd.WithSnapshotCleanup) })
	return ctr.NewTask(ctx, cio.NullIO)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
