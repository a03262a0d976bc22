package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/integration/harness"
)

// probe prints what the tests check inside a container.
const probe = `id -u; id -g; cat /proc/self/status; cat /proc/self/uid_map
(echo x > /probe) 2>&1; echo "root-write=$?"
(echo x > /tmp/probe && echo tmp-ok) 2>&1
unshare -U true 2>&1; echo "unshare=$?"
mount -t tmpfs none /mnt 2>&1; echo "mount=$?"`

// TestHardenedVersusRunc runs the same root container under plain runc
// and under hardened: the shim makes the difference. Under hardened it is
// root only in a user namespace of its own, with the level's namespaced
// capabilities.
func TestHardenedVersusRunc(t *testing.T) {
	require(t)
	plain, err := runContainer(t, ns, runcRT, harness.Busybox, []string{"sh", "-c", probe})
	if err != nil {
		t.Fatalf("runc: %v", err)
	}
	hard, err := runContainer(t, ns, hardenedRT, harness.Busybox, []string{"sh", "-c", probe})
	if err != nil {
		t.Fatalf("hardened: %v", err)
	}
	t.Logf("runc:\n%s\nhardened:\n%s", plain.Stdout, hard.Stdout)
	lines := strings.Split(hard.Stdout, "\n")
	var m []string // the uid map: one line of three fields
	for _, l := range lines {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "0" {
			m = f
		}
	}
	if lines[0] != "0" || lines[1] != "0" || len(m) != 3 || !inShimsWindow(parseUint(m[1])) {
		t.Errorf("hardened uid/gid = %s/%s, uid_map %v: want root in a user namespace on a range of the shims'", lines[0], lines[1], m)
	}
	for f, want := range map[string]string{"CapEff": namespacedCaps, "CapPrm": namespacedCaps, "CapBnd": namespacedCaps, "CapAmb": "0000000000000000", "CapInh": "0000000000000000"} {
		if v := statusField(hard.Stdout, f); v != want {
			t.Errorf("hardened %s = %s, want %s", f, v, want)
		}
	}
	for f, want := range map[string]string{"NoNewPrivs": "1", "Seccomp": "2"} {
		if v := statusField(hard.Stdout, f); v != want {
			t.Errorf("hardened %s = %s, want %s", f, v, want)
		}
	}
	for _, want := range []string{"Read-only file system", "tmp-ok"} {
		if !strings.Contains(hard.Stdout, want) {
			t.Errorf("hardened output lacks %q", want)
		}
	}
	for _, bad := range []string{"root-write=0", "unshare=0", "mount=0"} {
		if strings.Contains(hard.Stdout, bad) {
			t.Errorf("hardened container: %s", bad)
		}
	}
	// The same container under runc: root, capabilities, no filter, a
	// writable root, unshare allowed. (mount fails there too: containerd's
	// default capabilities lack CAP_SYS_ADMIN; NoNewPrivs is 1 there too.)
	pl := strings.Split(plain.Stdout, "\n")
	if pl[0] != "0" {
		t.Errorf("runc uid = %s, want 0", pl[0])
	}
	if v := statusField(plain.Stdout, "CapEff"); v == "0000000000000000" {
		t.Error("runc CapEff = 0: the comparison proves nothing")
	}
	if v := statusField(plain.Stdout, "Seccomp"); v != "0" {
		t.Errorf("runc Seccomp = %s, want 0", v)
	}
	if !strings.Contains(plain.Stdout, "root-write=0") || !strings.Contains(plain.Stdout, "unshare=0") {
		t.Error("runc could not write / or unshare: the comparison proves nothing")
	}
}

// TestExecIsHardened execs as root with the default capabilities (what
// `ctr task exec --user 0` sends) into a hardened container.
func TestExecIsHardened(t *testing.T) {
	require(t)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	id := newID("exec-test")
	ctr, task := startTask(t, ctx, id, hardenedRT, oci.WithProcessArgs("sleep", "600"))
	spec, err := ctr.Spec(ctx) // containerd's stored, unhardened spec
	if err != nil {
		t.Fatal(err)
	}
	pspec := spec.Process
	pspec.Args = []string{"sh", "-c", "id -u; cat /proc/self/status; cat /proc/self/uid_map"}
	pspec.User = specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0}}
	pspec.Terminal = false
	pspec.Capabilities.Bounding = append(pspec.Capabilities.Bounding, "CAP_SYS_CHROOT", "CAP_MKNOD")
	out, err := execIn(ctx, task, "root-exec", pspec)
	if err != nil {
		t.Fatalf("exec: %v", err)
	}
	// Root as the container's root: in its user namespace (its range's
	// host ids), with the container's namespaced capabilities at most.
	if first := rangeOf(t, task.Pid()); !strings.HasPrefix(out, "0\n") || !strings.Contains(out, " "+strconv.Itoa(int(first))+" ") {
		t.Errorf("exec as root runs as %q, want 0 in the container's user namespace (range %d):\n%s", strings.SplitN(out, "\n", 2)[0], first, out)
	}
	if v := statusField(out, "CapEff"); v != namespacedCaps {
		t.Errorf("exec CapEff = %s, want %s", v, namespacedCaps)
	}
	if v := statusField(out, "CapBnd"); v != namespacedCaps {
		t.Errorf("exec CapBnd = %s, want %s", v, namespacedCaps)
	}
	if v := statusField(out, "NoNewPrivs"); v != "1" {
		t.Errorf("exec NoNewPrivs = %s", v)
	}
	// The same with the ctr binary.
	ctrOut, err := cd.Ctr(t, "task", "exec", "--exec-id", "ctr-exec", "--user", "0", id, "sh", "-c", "id -u; grep CapEff /proc/self/status")
	if err != nil {
		t.Fatalf("ctr task exec: %v\n%s", err, ctrOut)
	}
	if !strings.Contains(ctrOut, "\n0\n") && !strings.HasPrefix(ctrOut, "0\n") || !strings.Contains(ctrOut, "CapEff:\t"+namespacedCaps) {
		t.Errorf("ctr task exec --user 0 = %q", ctrOut)
	}
	task.Kill(ctx, syscall.SIGKILL)
}

func execIn(ctx context.Context, task containerd.Task, id string, p *specs.Process) (string, error) {
	var out strings.Builder
	proc, err := task.Exec(ctx, id, p, cio.NewCreator(cio.WithStreams(nil, &out, &out), cio.WithFIFODir(filepath.Join(cd.Dir, "fifo"))))
	if err != nil {
		return "", err
	}
	defer proc.Delete(context.WithoutCancel(ctx))
	ch, err := proc.Wait(ctx)
	if err != nil {
		return "", err
	}
	if err := proc.Start(ctx); err != nil {
		return "", err
	}
	<-ch
	proc.IO().Wait()
	proc.Delete(ctx)
	return out.String(), nil
}

// TestRefusals: privileged, host pid namespace and a bind mount of / are
// refused with the rule and the fix; nothing is left running or mounted.
func TestRefusals(t *testing.T) {
	require(t)
	time.Sleep(200 * time.Millisecond)
	shimsBefore, mountsBefore := len(cd.ShimPIDs()), len(harness.MountsBelow(cd.Dir))
	for _, tc := range []struct {
		name string
		opts []oci.SpecOpts
		want []string
	}{
		{"privileged", []oci.SpecOpts{oci.WithPrivileged}, []string{"rule privileged", "allowPrivileged"}},
		{"host-pid", []oci.SpecOpts{oci.WithHostNamespace(specs.PIDNamespace)}, []string{"rule namespaces", "linux.namespaces[pid]", "namespaces.allowHost"}},
		{"bind-root", []oci.SpecOpts{oci.WithMounts([]specs.Mount{{Source: "/", Destination: "/host", Type: "bind", Options: []string{"rbind", "ro"}}})},
			[]string{"rule mounts", "mounts[/host].source", "host's root filesystem"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runContainer(t, ns, hardenedRT, harness.Busybox, []string{"true"}, tc.opts...)
			if err == nil {
				t.Fatal("container started; want a refusal")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			t.Logf("refused: %v", err)
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(cd.ShimPIDs()) > shimsBefore && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(cd.ShimPIDs()); n > shimsBefore {
		t.Errorf("%d shim processes after the refusals, %d before", n, shimsBefore)
	}
	if n := len(harness.MountsBelow(cd.Dir)); n > mountsBefore {
		t.Errorf("%d mounts below the state after the refusals, %d before: %v", n, mountsBefore, harness.MountsBelow(cd.Dir))
	}
}

// TestGroupingNeverFallsBackToRunc: a hardened container that names the
// group of a plain runc container gets its own, hardened shim: with runc's
// group annotation it runs hardened; with the CRI sandbox id annotation
// (a pod claim containerd's records do not confirm) it is refused, and
// never runs in the runc shim.
func TestGroupingNeverFallsBackToRunc(t *testing.T) {
	require(t)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	group := oci.WithAnnotations(map[string]string{"io.containerd.runc.v2.group": "shared-group"})
	claim := oci.WithAnnotations(map[string]string{"io.kubernetes.cri.sandbox-id": "shared-sandbox"})
	_, task := startTask(t, ctx, newID("runc-group-owner"), runcRT, oci.WithProcessArgs("sleep", "600"), group)
	_, task2 := startTask(t, ctx, newID("runc-sandbox-owner"), runcRT, oci.WithProcessArgs("sleep", "600"), claim)
	res, err := runContainer(t, ns, hardenedRT, harness.Busybox, []string{"sh", "-c", idProbe}, group)
	if err != nil {
		t.Fatal(err)
	}
	if whoAmI(res.Stdout) != rootInItsUserNamespace {
		t.Errorf("hardened container in a runc group runs as %q: it went to the runc shim", res.Stdout)
	}
	res, err = runContainer(t, ns, hardenedRT, harness.Busybox, []string{"id", "-u"}, claim)
	if err == nil {
		t.Errorf("hardened container claiming a runc container's sandbox ran (as %q); want it refused", res.Stdout)
	} else if !strings.Contains(err.Error(), "containerd's records do not confirm") {
		t.Errorf("refusal %q does not say the pod claim is unconfirmed", err)
	}
	task.Kill(ctx, syscall.SIGKILL)
	task2.Kill(ctx, syscall.SIGKILL)
}

// TestAuditMode: in the audit namespace the root container runs unchanged
// and the violations are in the shim log.
func TestAuditMode(t *testing.T) {
	require(t)
	res, err := runContainer(t, "audit", hardenedRT, harness.Busybox, []string{"id", "-u"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(res.Stdout) != "0" {
		t.Errorf("audit mode container runs as %q, want 0 (unchanged)", res.Stdout)
	}
	log := cd.Log()
	for _, want := range []string{"hardened audit: rule user: linux.namespaces[user]=the host's", "hardened audit: rule seccomp"} {
		if !strings.Contains(log, want) {
			t.Errorf("containerd log lacks %q", want)
		}
	}
}

// TestChangesAreRecorded: the bundle holds hardened.json and the spec is
// annotated, for admins and hardenctl.
func TestChangesAreRecorded(t *testing.T) {
	require(t)
	if _, err := runContainer(t, ns, hardenedRT, harness.Busybox, []string{"true"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cd.Log(), "hardened: the host's -> its own") {
		t.Error("the shim log does not list the user namespace")
	}
}

// TestInvalidPolicyRefusesEverything: a runtime whose ConfigPath names an
// invalid policy refuses every container with the validation error (the
// options reach the shim as runtimeoptions, as CRI sends them).
func TestInvalidPolicyRefusesEverything(t *testing.T) {
	require(t)
	bad := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(bad, []byte("mode: enforce\ndefaultLevel: lax\n"), 0o644)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	c := cd.Client(t)
	img, _ := c.GetImage(ctx, harness.Busybox)
	id := newID("bad-policy")
	ctr, err := c.NewContainer(ctx, id, containerd.WithImage(img), containerd.WithNewSnapshot(id, img),
		containerd.WithRuntime(hardenedRT, &runtimeoptions.Options{ConfigPath: bad}),
		containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("true")))
	if err != nil {
		t.Fatal(err)
	}
	defer ctr.Delete(context.WithoutCancel(ctx), containerd.WithSnapshotCleanup)
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err == nil {
		task.Delete(ctx, containerd.WithProcessKill)
		t.Fatal("container created under an invalid policy")
	}
	for _, want := range []string{"invalid node policy", bad, `defaultLevel: unknown level "lax"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// startTask starts a long-running busybox container and removes it when the
// test ends.
func startTask(t *testing.T, ctx context.Context, id, runtime string, opts ...oci.SpecOpts) (containerd.Container, containerd.Task) {
	t.Helper()
	c := cd.Client(t)
	img, err := c.GetImage(ctx, harness.Busybox)
	if err != nil {
		t.Fatal(err)
	}
	ctr, err := c.NewContainer(ctx, id, containerd.WithImage(img), containerd.WithNewSnapshot(id, img),
		containerd.WithRuntime(runtime, nil), containerd.WithNewSpec(append([]oci.SpecOpts{oci.WithImageConfig(img)}, opts...)...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctr.Delete(context.Background(), containerd.WithSnapshotCleanup) })
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { task.Delete(context.Background(), containerd.WithProcessKill) })
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return ctr, task
}

// TestOOMIsReported: the wrapped runc task service still watches the
// cgroup, so an OOM kill reaches containerd as a /tasks/oom event (what
// the kubelet shows as OOMKilled).
func TestOOMIsReported(t *testing.T) {
	require(t)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	events, errs := cd.Client(t).Subscribe(ctx, `topic=="/tasks/oom"`)
	id := newID("oom-test")
	_, task := startTask(t, ctx, id, hardenedRT, oci.WithMemoryLimit(16<<20),
		oci.WithProcessArgs("sh", "-c", "sleep 1; x=$(yes | head -c 268435456); echo survived"))
	exitCh, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		t.Logf("event %s in %s", ev.Topic, ev.Namespace)
	case err := <-errs:
		t.Fatalf("subscribe: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no /tasks/oom event within 30 s")
	}
	select {
	case st := <-exitCh:
		if st.ExitCode() != 137 {
			t.Errorf("exit status %d, want 137 (SIGKILL by the OOM killer)", st.ExitCode())
		}
	case <-time.After(30 * time.Second):
		t.Error("the task did not exit after the OOM kill")
	}
}

// TestShimRemovesItsSocket: a hardened shim serves from a socket directory
// of its own (see the grouping trap), and must remove its socket there when
// it exits, as the runc shim does in containerd's directory: one socket
// left per container would pile up on a busy node.
func TestShimRemovesItsSocket(t *testing.T) {
	require(t)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	id := newID("socket")
	ctr, task := startTask(t, ctx, id, hardenedRT, oci.WithProcessArgs("sleep", "600"))
	data, err := os.ReadFile(filepath.Join(cd.State, "io.containerd.runtime.v2.task", ns, id, "bootstrap.json"))
	if err != nil {
		t.Fatal(err)
	}
	var boot struct{ Address string }
	if err := json.Unmarshal(data, &boot); err != nil {
		t.Fatal(err)
	}
	socket := strings.TrimPrefix(boot.Address, "unix://")
	if filepath.Base(filepath.Dir(socket)) != "hardened" {
		t.Errorf("shim socket %s is not in a directory of its own", socket)
	}
	if _, err := os.Stat(socket); err != nil {
		t.Fatalf("shim socket: %v", err)
	}
	if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil {
		t.Fatal(err)
	}
	if err := ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
		t.Fatal(err)
	}
	for ctx.Err() == nil { // the shim exits asynchronously after Shutdown
		if _, err := os.Stat(socket); os.IsNotExist(err) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("shim socket %s left behind after its container was deleted", socket)
}

// TestUpdateCannotLiftLimits: a task update that would lift the pids limit
// the level set (to unlimited) is refused, and the limit inside the
// container is unchanged; an update within the level goes through.
func TestUpdateCannotLiftLimits(t *testing.T) {
	require(t)
	ctx, cancel := ctxFor(ns)
	defer cancel()
	id := newID("update")
	_, task := startTask(t, ctx, id, hardenedRT, oci.WithProcessArgs("sleep", "600"))
	// The container's pids cgroup, as runc set it up (cgroup v1 here;
	// containerd's default cgroups path /<namespace>/<id>).
	pidsMax := func() string {
		t.Helper()
		for _, f := range []string{filepath.Join("/sys/fs/cgroup/pids", ns, id, "pids.max"), filepath.Join("/sys/fs/cgroup", ns, id, "pids.max")} {
			if b, err := os.ReadFile(f); err == nil {
				return strings.TrimSpace(string(b))
			}
		}
		t.Fatal("no pids cgroup for the container")
		return ""
	}
	if got := pidsMax(); got != "4096" {
		t.Fatalf("pids.max = %q, want the level's 4096", got)
	}
	unlimited := int64(-1)
	err := task.Update(ctx, containerd.WithResources(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &unlimited}}))
	if err == nil || !strings.Contains(err.Error(), "rule limits") || !strings.Contains(err.Error(), "linux.resources.pids.limit=-1") {
		t.Errorf("update to an unlimited pids limit: %v, want a refusal by rule limits", err)
	} else {
		t.Logf("refused: %v", err)
	}
	if got := pidsMax(); got != "4096" {
		t.Errorf("pids.max = %q after the refused update, want 4096", got)
	}
	lower := int64(2048)
	if err := task.Update(ctx, containerd.WithResources(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &lower}})); err != nil {
		t.Fatalf("update to a lower pids limit: %v", err)
	}
	if got := pidsMax(); got != "2048" {
		t.Errorf("pids.max = %q after the update, want 2048", got)
	}
	task.Kill(ctx, syscall.SIGKILL)
}
