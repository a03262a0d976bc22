package integration

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/integration/harness"
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
	// HARDENED_PHASES_VARIANTS: a ;-separated list of runtimes and lifecycle
	// variants (runc+seccomp, runc+hardened-spec, runc+hardened-spec-<part>
	// as withoutParts takes them, "hardened, user.namespace off");
	// HARDENED_PHASES_RUNS: how many of each (20).
	variants := []string{runcRT, "runc+seccomp", hardenedRT}
	if v := os.Getenv("HARDENED_PHASES_VARIANTS"); v != "" {
		variants = strings.Split(v, ";")
	}
	var hardSpec *specs.Spec
	if slices.ContainsFunc(variants, func(v string) bool { return strings.HasPrefix(v, runcHardSpec) }) {
		hardSpec = hardenedSpecOf(t)
	}
	for i := range envInt("HARDENED_PHASES_RUNS", 20) {
		order := slices.Clone(variants)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, rt := range order {
			id := newID(fmt.Sprintf("ph-%d", len(rt)))
			runtime, extra, snap := lifecycleVariant(rt, hardSpec)
			opts := append([]oci.SpecOpts{oci.WithImageConfig(img), oci.WithProcessArgs("true")}, extra...)
			if rt == "runc+seccomp" {
				opts = append(opts, seccomp.WithDefaultProfile())
				runtime = runcRT
			}
			t0 := time.Now()
			ctr, err := c.NewContainer(ctx, id, containerd.WithImage(img), snap(id, img), containerd.WithRuntime(runtime, nil), containerd.WithNewSpec(opts...))
			if err != nil {
				t.Fatal(err)
			}
			t1 := time.Now()
			task, err := ctr.NewTask(ctx, cio.NullIO)
			if err != nil {
				t.Fatal(err)
			}
			t2 := time.Now()
			if runtime == hardenedRT {
				starts = append(starts, pipelineTiming(ns, id))
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
	for _, rt := range variants {
		line := rt
		for _, k := range []string{"newcontainer", "newtask", "start", "exit", "taskdelete", "ctrdelete"} {
			line += fmt.Sprintf(" %s=%.1f", k, ms(quantile(sum[rt+" "+k], 0.5)))
		}
		fmt.Println(line)
	}
	for _, st := range starts {
		fmt.Println("pipeline:", st)
	}
}
