package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/hardened-runtime/hardened/integration/harness"
	"github.com/hardened-runtime/hardened/shim"
)

// TestPhases prints the median time of each step of a container's life
// under runc, runc with the RuntimeDefault profile, and hardened: where the
// lifecycle difference of make bench comes from. HARDENED_PHASES=1 runs it.
func TestPhases(t *testing.T) {
	if os.Getenv("HARDENED_PHASES") != "1" {
		t.Skip("skipping: a diagnostic, HARDENED_PHASES=1 runs it")
	}
	require(t)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	c := cd.Client(t)
	img, _ := c.GetImage(ctx, harness.Busybox)
	sum := map[string][]time.Duration{}
	var starts []string
	for range 20 {
		for _, rt := range []string{runcRT, "runc+seccomp", hardenedRT} {
			id := newID(fmt.Sprintf("ph-%d", len(rt)))
			opts := []oci.SpecOpts{oci.WithImageConfig(img), oci.WithProcessArgs("true")}
			runtime := rt
			if rt == "runc+seccomp" {
				opts = append(opts, seccomp.WithDefaultProfile())
				runtime = runcRT
			}
			t0 := time.Now()
			ctr, err := c.NewContainer(ctx, id, containerd.WithImage(img), containerd.WithNewSnapshot(id, img), containerd.WithRuntime(runtime, nil), containerd.WithNewSpec(opts...))
			if err != nil {
				t.Fatal(err)
			}
			t1 := time.Now()
			task, err := ctr.NewTask(ctx, cio.NullIO)
			if err != nil {
				t.Fatal(err)
			}
			t2 := time.Now()
			if rt == hardenedRT {
				if b, err := os.ReadFile(filepath.Join(cd.State, "io.containerd.runtime.v2.task", ns, id, "hardened-start-timing.txt")); err == nil {
					starts = append(starts, strings.TrimSpace(string(b)))
				}
			}
			ch, _ := task.Wait(ctx)
			task.Start(ctx)
			t3 := time.Now()
			<-ch
			t4 := time.Now()
			task.Delete(ctx)
			t5 := time.Now()
			ctr.Delete(ctx, containerd.WithSnapshotCleanup)
			t6 := time.Now()
			for k, d := range map[string]time.Duration{"newcontainer": t1.Sub(t0), "newtask": t2.Sub(t1), "start": t3.Sub(t2), "exit": t4.Sub(t3), "taskdelete": t5.Sub(t4), "ctrdelete": t6.Sub(t5)} {
				sum[rt+" "+k] = append(sum[rt+" "+k], d)
			}
		}
	}
	for _, rt := range []string{runcRT, "runc+seccomp", hardenedRT} {
		line := rt
		for _, k := range []string{"newcontainer", "newtask", "start", "exit", "taskdelete", "ctrdelete"} {
			line += fmt.Sprintf(" %s=%.1f", k, ms(quantile(sum[rt+" "+k], 0.5)))
		}
		fmt.Println(line)
	}
	for _, st := range starts {
		fmt.Println("shim start:", st)
	}
}

// TestPhasesPrepare times shim.Prepare, the image look-up `shim start`
// makes for each container, against the harness's containerd.
func TestPhasesPrepare(t *testing.T) {
	if os.Getenv("HARDENED_PHASES") != "1" {
		t.Skip("skipping: a diagnostic, HARDENED_PHASES=1 runs it")
	}
	require(t)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	c := cd.Client(t)
	img, _ := c.GetImage(ctx, harness.Busybox)
	id := newID("prepare")
	ctr, err := c.NewContainer(ctx, id, containerd.WithImage(img), containerd.WithNewSnapshot(id, img), containerd.WithNewSpec(oci.WithImageConfig(img)))
	if err != nil {
		t.Fatal(err)
	}
	defer ctr.Delete(ctx, containerd.WithSnapshotCleanup)
	bundle := t.TempDir()
	var ds []time.Duration
	for range 20 {
		t0 := time.Now()
		if err := shim.Prepare(ctx, cd.Address, ns, id, bundle); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, time.Since(t0))
	}
	fmt.Printf("Prepare: first %.1f ms, median %.1f ms\n", ms(ds[0]), ms(quantile(ds, 0.5)))
	// The same in a new process each time, as `shim start` does it, next to
	// a process that only starts and exits.
	shimBin := filepath.Join(shimDirForPhases(t), "containerd-shim-hardened-v2")
	for _, args := range [][]string{{shim.PrepareCommand}, {shim.PrepareCommand, "--address", cd.Address, "--namespace", ns, "--id", id, "--bundle", bundle}} {
		var ds []time.Duration
		for range 15 {
			t0 := time.Now()
			exec.Command(shimBin, args...).Run()
			ds = append(ds, time.Since(t0))
		}
		fmt.Printf("process %v: median %.1f ms\n", len(args) > 1, ms(quantile(ds, 0.5)))
	}
}

func shimDirForPhases(t *testing.T) string {
	dir, err := harness.BuildShimDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
