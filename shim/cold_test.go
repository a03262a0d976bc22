package shim

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// TestColdLookupCost measures what the look-ups of one container cost a
// process that has never dialled containerd (as `shim start` is): CPU
// time of a child that makes them, against a child that only starts and
// exits. HARDENED_COLD=1 runs it (a diagnostic).
func TestColdLookupCost(t *testing.T) {
	if os.Getenv("HARDENED_COLD") != "1" {
		t.Skip("skipping: a diagnostic, HARDENED_COLD=1 runs it")
	}
	e := newTestEnv(t)
	e.fake.addSandbox("sb1", "uid-1", "web")
	e.fake.addContainer("app", e.image, e.image.chainID).Sandbox = "sb1"
	cpu := func(work string) time.Duration {
		var ds []time.Duration
		for range 21 {
			cmd := exec.Command(os.Args[0], "-test.run=^TestColdLookupChild$")
			cmd.Env = append(os.Environ(), "HARDENED_COLD_CHILD="+work, "HARDENED_COLD_ADDRESS="+e.address, CacheDirEnv+"=off")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			ds = append(ds, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	idle, lookups := cpu("none"), cpu("lookups")
	fmt.Printf("cold process CPU: idle %v, with the look-ups %v: the look-ups cost %v\n", idle, lookups, lookups-idle)
}

func TestColdLookupChild(t *testing.T) {
	work := os.Getenv("HARDENED_COLD_CHILD")
	if work == "" {
		t.Skip()
	}
	if work == "none" {
		return
	}
	r := newRecords(os.Getenv("HARDENED_COLD_ADDRESS"))
	ctx := context.Background()
	p := &pipeline{records: r, imageCache: ""}
	c, err := r.container(ctx, testNS, "app")
	if err != nil {
		t.Fatal(err)
	}
	img := imageRecord{}
	img.Name = c.Image
	if err := p.image(ctx, testNS, &img); err != nil {
		t.Fatal(err)
	}
	if _, err := r.sandboxContainer(ctx, testNS, "sb1"); err != nil {
		t.Fatal(err)
	}
	r.close()
}
