package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/process"
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/runc"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	runcC "github.com/containerd/go-runc"

	"github.com/hardened-runtime/hardened/internal/userns"
)

// TestStopWithoutRunc: `shim delete` skips `runc delete --force` only when
// runc certainly has no state for the container, and then reports what
// the runc manager's Stop would.
func TestStopWithoutRunc(t *testing.T) {
	root := t.TempDir() // runc's --root, from the bundle's options
	bundle := filepath.Join(t.TempDir(), "c1")
	if err := os.MkdirAll(filepath.Join(bundle, "rootfs"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := runc.WriteOptions(bundle, &options.Options{Root: root}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "init.pid"), []byte("4242"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(bundle) // containerd runs `shim delete` in the bundle
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")

	// runc still has the container: the runc manager must delete it.
	state := filepath.Join(root, "k8s.io", "c1")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, ok := stopWithoutRunc(ctx, "c1"); ok {
		t.Fatal("stopWithoutRunc skipped runc although runc has state for the container")
	}
	if err := os.Remove(state); err != nil {
		t.Fatal(err)
	}

	// Gone: no runc call; the pid file's pid and SIGKILL's status, as the
	// runc manager reports without a recorded exit.
	st, ok := stopWithoutRunc(ctx, "c1")
	if !ok || st.Pid != 4242 || st.ExitStatus != 128+9 {
		t.Fatalf("stopWithoutRunc = %+v, %v; want pid 4242, status 137", st, ok)
	}
	// With the exit the shim recorded, that one.
	at := time.Unix(1700000000, 0).UTC()
	if err := runc.WriteExitStatus(bundle, runcC.Exit{Pid: 4242, Status: 3, Timestamp: at}); err != nil {
		t.Fatal(err)
	}
	st, ok = stopWithoutRunc(ctx, "c1")
	if !ok || st.Pid != 4242 || st.ExitStatus != 3 || !st.ExitedAt.Equal(at) {
		t.Fatalf("stopWithoutRunc = %+v, %v; want the recorded exit", st, ok)
	}

	// Not certain: another runtime binary, no namespace, unreadable options.
	for _, bin := range []string{"/usr/local/bin/runsc", "crun"} {
		if err := runc.WriteRuntime(bundle, bin); err != nil {
			t.Fatal(err)
		}
		if _, ok := stopWithoutRunc(ctx, "c1"); ok {
			t.Errorf("stopWithoutRunc went ahead for runtime binary %s", bin)
		}
	}
	if err := runc.WriteRuntime(bundle, "/opt/bin/runc"); err != nil {
		t.Fatal(err)
	}
	if _, ok := stopWithoutRunc(ctx, "c1"); !ok {
		t.Error("stopWithoutRunc did not go ahead for runc at another path")
	}
	if _, ok := stopWithoutRunc(context.Background(), "c1"); ok {
		t.Error("stopWithoutRunc went ahead without a namespace")
	}
	if err := os.WriteFile(filepath.Join(bundle, "options.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := stopWithoutRunc(ctx, "c1"); ok {
		t.Error("stopWithoutRunc went ahead with unreadable runtime options")
	}
}

// TestStopWithoutRuncDefaultRoot: without options.json, runc's root is the
// runc manager's default, /run/containerd/runc.
func TestStopWithoutRuncDefaultRoot(t *testing.T) {
	id := fmt.Sprintf("hardened-unit-%d", os.Getpid())
	bundle := filepath.Join(t.TempDir(), id)
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Chdir(bundle)
	if _, ok := stopWithoutRunc(namespaces.WithNamespace(context.Background(), "hardened-unit"), id); !ok {
		t.Errorf("stopWithoutRunc did not go ahead: runc has no state for %s under %s", id, process.RuncRoot)
	}
}

// TestDeadShimReleasesWithTheLastOfThePod: after a pod's shim died, each
// container's `shim delete` lets go of its hold on the pod's range; the
// range goes with the last one, whatever the order.
func TestDeadShimReleasesWithTheLastOfThePod(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: the allocator's directory is root's")
	}
	t.Setenv(userns.RangeEnv, "16777216:65536")
	t.Setenv(userns.DirEnv, t.TempDir())
	a, err := userns.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	pod := userns.Owner{Namespace: "k8s.io", ID: "sb"}
	for _, id := range []string{"sb", "app"} { // as their pipelines reserve it
		if _, err := a.Reserve(pod, id); err != nil {
			t.Fatal(err)
		}
	}
	nsDir := t.TempDir()
	for _, id := range []string{"sb", "app"} {
		bundle := filepath.Join(nsDir, id)
		if err := os.MkdirAll(bundle, 0o700); err != nil {
			t.Fatal(err)
		}
		// A record of another version: only its container facts count.
		data, _ := json.Marshal(map[string]any{"version": 999, "container": containerFacts{ID: id, Namespace: "k8s.io", SandboxID: "sb"}})
		if err := os.WriteFile(filepath.Join(bundle, RecordFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	t.Chdir(filepath.Join(nsDir, "sb"))
	releaseAfterDeadShim(ctx, "sb")
	if has, _ := a.Has(pod); !has {
		t.Fatal("the sandbox's shim delete released the range the pod's app holds")
	}
	t.Chdir(filepath.Join(nsDir, "app"))
	releaseAfterDeadShim(ctx, "app")
	if has, _ := a.Has(pod); has {
		t.Error("the pod's last container's shim delete left the range reserved")
	}
}
