package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/hardened-runtime/hardened/integration/harness"
	"github.com/hardened-runtime/hardened/observe/event"
)

// lockedPolicy makes every container of the runtime that reads it run
// under a level that refuses execs.
const lockedPolicy = `mode: enforce
defaultLevel: locked
levels:
  locked:
    extends: restricted
    description: restricted, no exec into the container
    exec: deny
`

// startSleeper starts a hardened busybox `sleep 600` (with runtime options
// when opts is not nil) and returns its id; it is removed when the test
// ends.
func startSleeper(t *testing.T, namespace string, opts *runtimeoptions.Options) string {
	t.Helper()
	ctx, cancel := ctxFor(namespace)
	defer cancel()
	c := cd.Client(t)
	img, err := c.GetImage(ctx, harness.Busybox)
	if err != nil {
		t.Fatal(err)
	}
	id := newID(strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-"))
	var ro any
	if opts != nil {
		ro = opts
	}
	ctr, err := c.NewContainer(ctx, id, containerd.WithImage(img), containerd.WithNewSnapshot(id, img),
		containerd.WithRuntime(hardenedRT, ro), containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("sleep", "600")))
	if err != nil {
		t.Fatal(err)
	}
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		ctr.Delete(context.WithoutCancel(ctx), containerd.WithSnapshotCleanup)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := ctxFor(namespace)
		defer cancel()
		task.Kill(ctx, syscall.SIGKILL)
		task.Delete(ctx, containerd.WithProcessKill)
		ctr.Delete(ctx, containerd.WithSnapshotCleanup)
	})
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestObserveExecAudit: `ctr task exec --user 0` into a hardened container
// is recorded with its argv, the user it ran as (not the root it asked
// for), tty or not and what the shim changed: one line in the containerd
// log, one /hardened/exec event (ctr events shows it), one count in
// hardened_execs_total.
func TestObserveExecAudit(t *testing.T) {
	require(t)
	w := startObserver(t)
	ctrOut := ctrEvents(t)
	id := startSleeper(t, ns, nil)
	// Root, as the container's root: in its user namespace.
	out, err := cd.Ctr(t, "task", "exec", "--exec-id", "audited", "--user", "0", id, "id", "-u")
	if err != nil || strings.TrimSpace(out) != "0" {
		t.Fatalf("ctr task exec: %q %v", out, err)
	}
	e := w.waitEvent(t, "for the exec", func(e *event.Event) bool {
		return e.Exec != nil && e.Container.ID == id && e.Exec.ExecID == "audited"
	})
	x := e.Exec
	if strings.Join(x.Args, " ") != "id -u" || x.User.UID != 0 || x.RequestedUser.UID != 0 || x.Terminal || x.Refused ||
		e.Container.Namespace != ns || e.Container.Level != "restricted" || len(x.Capabilities) != 9 {
		t.Errorf("exec event %+v %+v", e.Container, x)
	}
	if !strings.Contains(strings.Join(x.Changes, "\n"), "exec.capabilities.bounding: [") {
		t.Errorf("exec changes %q lack the capabilities", x.Changes)
	}
	t.Logf("event: %s", e)
	// One line (logrus quotes the message: \"id\").
	waitFor(t, "the exec's line in the containerd log", func() bool {
		for _, l := range strings.Split(cd.Log(), "\n") {
			if strings.Contains(l, "hardened: exec audited into "+ns+"/"+id+": [") && strings.Contains(l, "] as 0:0") && strings.Contains(l, "(asked 0:0+0), no tty, level restricted; changed: exec.capabilities.bounding") {
				return true
			}
		}
		return false
	})
	waitFor(t, "ctr events to show the exec", func() bool {
		o := ctrOut()
		return strings.Contains(o, "/hardened/exec") && strings.Contains(o, `"hardened.dev/exec-id":"audited"`) && strings.Contains(o, `"args":["id","-u"]`)
	})
	t.Logf("ctr events: %s", grepLines(ctrOut(), "/hardened/exec"))
	want := `hardened_execs_total{container="` + id + `",containerd_namespace="` + ns + `",decision="allowed",namespace="",pod=""} 1`
	waitFor(t, "hardened_execs_total", func() bool { return strings.Contains(w.metrics(t), want) })
}

// TestObserveExecDeny: a level with exec: deny refuses `ctr task exec` with
// one line that names the level, the rule and the knob; the refusal is
// recorded too.
func TestObserveExecDeny(t *testing.T) {
	require(t)
	w := startObserver(t)
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte(lockedPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	id := startSleeper(t, ns, &runtimeoptions.Options{ConfigPath: policy})
	out, err := cd.Ctr(t, "task", "exec", "--exec-id", "denied", id, "sh", "-c", "echo ran")
	if err == nil || strings.Contains(out, "ran") {
		t.Fatalf("exec into a container of level locked ran: %q", out)
	}
	for _, want := range []string{"refused by level locked", "rule exec", "exec: deny", "fix: use a level with exec: allow"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ctr task exec error %q lacks %q", err, want)
		}
	}
	t.Logf("ctr task exec: %v", err)
	e := w.waitEvent(t, "for the refused exec", func(e *event.Event) bool {
		return e.Exec != nil && e.Container.ID == id && e.Exec.ExecID == "denied"
	})
	if !e.Exec.Refused || !strings.Contains(e.Exec.Reason, "exec: deny") || e.Container.Level != "locked" {
		t.Errorf("refused exec event %+v %+v", e.Container, e.Exec)
	}
	want := `hardened_execs_total{container="` + id + `",containerd_namespace="` + ns + `",decision="refused",namespace="",pod=""} 1`
	waitFor(t, "hardened_execs_total refused", func() bool { return strings.Contains(w.metrics(t), want) })
}
