package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/hardened-runtime/hardened/integration/harness"
	"github.com/hardened-runtime/hardened/shim"
	"github.com/hardened-runtime/hardened/spec"
)

// demoScript is what the demo container runs under both runtimes.
const demoScript = `grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status
(echo x > /probe) 2>/dev/null && echo "write /: ok" || echo "write /: Read-only file system"
(echo x > /tmp/probe) 2>/dev/null && echo "write /tmp: ok" || echo "write /tmp: failed"
unshare -U true 2>/dev/null && echo "unshare -U: ok" || echo "unshare -U: Operation not permitted"`

// TestDemo is `make demo`: the same container under runc and under
// hardened, side by side, and the shim's list of changes. It runs only
// when HARDENED_DEMO=1.
func TestDemo(t *testing.T) {
	if os.Getenv("HARDENED_DEMO") != "1" {
		t.Skip("skipping: the demo runs with make demo (HARDENED_DEMO=1)")
	}
	require(t)
	plain, err := runContainer(t, ns, runcRT, harness.Busybox, []string{"sh", "-c", demoScript})
	if err != nil {
		t.Fatal(err)
	}
	hard, rec, err := runRecorded(t, harness.Busybox, []string{"sh", "-c", demoScript})
	if err != nil {
		t.Fatal(err)
	}
	w := os.Stdout
	fmt.Fprintf(w, "\n== The same busybox container (image %s, started as root) under two runtimes ==\n\n", harness.Busybox)
	fmt.Fprintf(w, "%-36s  %s\n%-36s  %s\n", "runc (io.containerd.runc.v2)", "hardened (io.containerd.hardened.v2)", strings.Repeat("-", 36), strings.Repeat("-", 36))
	pl, hl := strings.Split(strings.TrimSpace(plain.Stdout), "\n"), strings.Split(strings.TrimSpace(hard.Stdout), "\n")
	for i := 0; i < max(len(pl), len(hl)); i++ {
		var a, b string
		if i < len(pl) {
			a = strings.ReplaceAll(pl[i], "\t", " ")
		}
		if i < len(hl) {
			b = strings.ReplaceAll(hl[i], "\t", " ")
		}
		mark := "  "
		if a != b {
			mark = "≠ "
		}
		fmt.Fprintf(w, "%-36s%s%s\n", a, mark, b)
	}
	fmt.Fprintf(w, "\n== What the shim changed (level %s, %s; %s) ==\n\n", rec.Level, rec.Mode, rec.Reason)
	for _, c := range rec.Changes {
		if c.Note {
			fmt.Fprintf(w, "  %-13s %-50s note: %s\n", c.Rule, c.Field, c.Reason)
			continue
		}
		fmt.Fprintf(w, "  %-13s %-50s %s\n", c.Rule, c.Field, c.Reason)
	}
	fmt.Fprintf(w, "\nThe record is in the bundle (%s) and in the containerd log.\n\n", shim.RecordFile)
	demoCrictl(t, w)
}

type shimRecord struct {
	Level         string
	Mode          string
	Reason        string
	Changes       []spec.Change
	UserNamespace *struct {
		HostID, Size uint32
		Given        bool
		Rootfs       string
	}
}

// runRecorded runs a hardened container and also returns the shim's record
// from the bundle.
func runRecorded(t *testing.T, image string, args []string) (result, shimRecord, error) {
	ctx, cancel := ctxFor(ns)
	defer cancel()
	c := cd.Client(t)
	img, err := c.GetImage(ctx, image)
	if err != nil {
		return result{}, shimRecord{}, err
	}
	id := fmt.Sprintf("recorded-%d", seq.Add(1))
	ctr, err := c.NewContainer(ctx, id, containerd.WithImage(img), containerd.WithNewSnapshot(id, img),
		containerd.WithRuntime(hardenedRT, nil), containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs(args...)))
	if err != nil {
		return result{}, shimRecord{}, err
	}
	defer ctr.Delete(context.WithoutCancel(ctx), containerd.WithSnapshotCleanup)
	var out, errOut bytes.Buffer
	task, err := ctr.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, &out, &errOut), cio.WithFIFODir(filepath.Join(cd.Dir, "fifo"))))
	if err != nil {
		return result{}, shimRecord{}, err
	}
	defer task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
	var rec shimRecord
	data, err := os.ReadFile(filepath.Join(cd.State, "io.containerd.runtime.v2.task", ns, id, shim.RecordFile))
	if err != nil {
		return result{}, rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return result{}, rec, err
	}
	exitCh, err := task.Wait(ctx)
	if err != nil {
		return result{}, rec, err
	}
	if err := task.Start(ctx); err != nil {
		return result{}, rec, err
	}
	st := <-exitCh
	task.IO().Wait() // all output copied
	task.Delete(context.WithoutCancel(ctx))
	return result{Stdout: out.String(), Stderr: errOut.String(), Exit: st.ExitCode()}, rec, nil
}

// TestRecordInBundle: the shim leaves its record in the bundle.
func TestRecordInBundle(t *testing.T) {
	require(t)
	res, rec, err := runRecorded(t, harness.Busybox, []string{"sh", "-c", idProbe})
	if err != nil {
		t.Fatal(err)
	}
	if whoAmI(res.Stdout) != rootInItsUserNamespace || rec.Level != "restricted" || len(rec.Changes) < 10 || rec.UserNamespace == nil || !rec.UserNamespace.Given {
		t.Errorf("stdout %q stderr %q exit %d, level %s, %d changes", res.Stdout, res.Stderr, res.Exit, rec.Level, len(rec.Changes))
	}
}
