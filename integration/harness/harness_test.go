package harness_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hardened-runtime/hardened/integration/harness"
)

const runcRuntime = "io.containerd.runc.v2"

func TestMain(m *testing.M) {
	code := m.Run()
	harness.RemoveShim()
	os.Exit(code)
}

// uniqueID is a container id no parallel test binary uses: runc's state
// (/run/containerd/runc/<ns>/<id>) and the cgroup are per namespace and id,
// not per containerd.
func uniqueID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), time.Now().UnixNano())
}

// TestHarnessRunc runs `id` in a busybox container with the plain runc
// runtime through the Go client, then checks that the harness's cleanup
// left nothing behind.
func TestHarnessRunc(t *testing.T) {
	harness.Require(t)
	var c *harness.Containerd
	t.Run("run", func(t *testing.T) {
		c = harness.Start(t, harness.Options{})
		img := harness.ImportBusybox(t, c)
		client, ctx := c.Client(t), c.Context(t)

		id := uniqueID("smoke")
		ctr, err := client.NewContainer(ctx, id,
			containerd.WithImage(img),
			containerd.WithNewSnapshot(id, img),
			containerd.WithRuntime(runcRuntime, nil),
			containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("id")))
		if err != nil {
			t.Fatalf("NewContainer: %v", err)
		}
		defer ctr.Delete(context.WithoutCancel(ctx), containerd.WithSnapshotCleanup)

		var stdout, stderr bytes.Buffer
		task, err := ctr.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, &stdout, &stderr), cio.WithFIFODir(c.FIFODir)))
		if err != nil {
			t.Fatalf("NewTask: %v", err)
		}
		defer task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
		exitCh, err := task.Wait(ctx)
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
		if err := task.Start(ctx); err != nil {
			t.Fatalf("Start: %v", err)
		}
		select {
		case st := <-exitCh:
			if st.ExitCode() != 0 {
				t.Errorf("id exited %d, stderr %q", st.ExitCode(), stderr.String())
			}
		case <-time.After(30 * time.Second):
			task.Kill(ctx, syscall.SIGKILL)
			t.Fatal("id did not exit in 30s")
		}
		task.IO().Wait()
		if _, err := task.Delete(ctx); err != nil {
			t.Errorf("task Delete: %v", err)
		}
		if got := stdout.String(); !strings.HasPrefix(got, "uid=0(root) gid=0(root)") {
			t.Errorf("id printed %q, want uid=0(root) gid=0(root) …", got)
		}
		if err := ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
			t.Errorf("container Delete: %v", err)
		}

		// ctr talks to the same containerd, in the same namespace.
		out, err := c.Ctr(t, "images", "ls", "-q")
		if err != nil || !strings.Contains(out, harness.Busybox) {
			t.Errorf("ctr images ls -q = %q, %v; want %s", out, err, harness.Busybox)
		}
	})
	if c != nil {
		checkGone(t, c)
	}
}

// TestHarnessCRI runs a host-network pod with the runc handler and a
// busybox container through containerd's CRI plugin, as the kubelet does.
func TestHarnessCRI(t *testing.T) {
	harness.Require(t)
	var c *harness.Containerd
	t.Run("pod", func(t *testing.T) {
		c = harness.Start(t, harness.Options{})
		harness.Import(t, c, harness.CRINamespace, harness.Pause, harness.Busybox)
		rs, is := c.CRI(t)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()

		v, err := rs.Version(ctx, &runtime.VersionRequest{})
		if err != nil {
			t.Fatalf("Version: %v", err)
		}
		t.Logf("CRI %s: %s %s", v.RuntimeApiVersion, v.RuntimeName, v.RuntimeVersion)
		st, err := rs.Status(ctx, &runtime.StatusRequest{})
		if err != nil {
			t.Fatalf("Status: %v", err)
		}
		for _, cond := range st.Status.Conditions {
			t.Logf("CRI condition %s=%v %s %s", cond.Type, cond.Status, cond.Reason, cond.Message)
			if cond.Type == runtime.RuntimeReady && !cond.Status {
				t.Errorf("CRI runtime not ready: %s", cond.Message)
			}
		}
		for _, image := range []string{harness.Pause, harness.Busybox} {
			if is, err := is.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: image}}); err != nil || is.Image == nil {
				t.Fatalf("ImageStatus(%s) = %v, %v; want the image", image, is, err)
			}
		}

		logDir := filepath.Join(c.Dir, "pods", "smoke")
		podCfg := &runtime.PodSandboxConfig{
			Metadata:     &runtime.PodSandboxMetadata{Name: "smoke", Uid: uniqueID("uid"), Namespace: "default"},
			LogDirectory: logDir,
			Linux: &runtime.LinuxPodSandboxConfig{SecurityContext: &runtime.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtime.NamespaceOption{Network: runtime.NamespaceMode_NODE},
			}},
		}
		pod, err := rs.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: podCfg, RuntimeHandler: "runc"})
		if err != nil {
			t.Fatalf("RunPodSandbox: %v", err)
		}
		created, err := rs.CreateContainer(ctx, &runtime.CreateContainerRequest{
			PodSandboxId:  pod.PodSandboxId,
			SandboxConfig: podCfg,
			Config: &runtime.ContainerConfig{
				Metadata: &runtime.ContainerMetadata{Name: "sh"},
				Image:    &runtime.ImageSpec{Image: harness.Busybox},
				Command:  []string{"sh", "-c", "id; sleep 3600"},
				LogPath:  "sh.log",
			},
		})
		if err != nil {
			t.Fatalf("CreateContainer: %v", err)
		}
		if _, err := rs.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: created.ContainerId}); err != nil {
			t.Fatalf("StartContainer: %v", err)
		}
		exec, err := rs.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: created.ContainerId, Cmd: []string{"id"}, Timeout: 30})
		if err != nil {
			t.Fatalf("ExecSync: %v", err)
		}
		if exec.ExitCode != 0 || !strings.HasPrefix(string(exec.Stdout), "uid=0(root)") {
			t.Errorf("ExecSync id = exit %d, stdout %q, stderr %q; want uid=0(root)", exec.ExitCode, exec.Stdout, exec.Stderr)
		}
		// The container's own `id` reaches its CRI log file.
		deadline := time.Now().Add(10 * time.Second)
		for {
			log, _ := os.ReadFile(filepath.Join(logDir, "sh.log"))
			if strings.Contains(string(log), "uid=0(root)") {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("container log %q lacks uid=0(root)", log)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}

		if _, err := rs.StopContainer(ctx, &runtime.StopContainerRequest{ContainerId: created.ContainerId, Timeout: 0}); err != nil {
			t.Errorf("StopContainer: %v", err)
		}
		if _, err := rs.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: created.ContainerId}); err != nil {
			t.Errorf("RemoveContainer: %v", err)
		}
		if _, err := rs.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: pod.PodSandboxId}); err != nil {
			t.Errorf("StopPodSandbox: %v", err)
		}
		if _, err := rs.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: pod.PodSandboxId}); err != nil {
			t.Errorf("RemovePodSandbox: %v", err)
		}
		pods, err := rs.ListPodSandbox(ctx, &runtime.ListPodSandboxRequest{})
		if err != nil || len(pods.Items) != 0 {
			t.Errorf("ListPodSandbox after removal = %v, %v; want none", pods, err)
		}
	})
	if c != nil {
		checkGone(t, c)
	}
}

// TestHarnessCleansUp leaves a running container (and its shim) behind, as
// a failing test would, and checks that the harness removes it.
func TestHarnessCleansUp(t *testing.T) {
	harness.Require(t)
	var c *harness.Containerd
	t.Run("leave", func(t *testing.T) {
		c = harness.Start(t, harness.Options{})
		img := harness.ImportBusybox(t, c)
		ctx := namespaces.WithNamespace(context.Background(), c.Namespace)
		id := uniqueID("left")
		ctr, err := c.Client(t).NewContainer(ctx, id, containerd.WithImage(img), containerd.WithNewSnapshot(id, img),
			containerd.WithRuntime(runcRuntime, nil), containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("sleep", "3600")))
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
		if len(c.ShimPIDs()) == 0 {
			t.Errorf("no shim found for a running container")
		}
		if len(harness.MountsBelow(c.Dir)) == 0 {
			t.Errorf("no mounts found below %s", c.Dir)
		}
	})
	if c != nil {
		checkGone(t, c)
	}
}

// checkGone checks that a stopped containerd left nothing: no process, no
// shim, no mount, no directory.
func checkGone(t *testing.T, c *harness.Containerd) {
	t.Helper()
	if err := syscall.Kill(c.PID(), 0); err != syscall.ESRCH {
		if stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.PID())); !strings.Contains(string(stat), ") Z ") {
			t.Errorf("containerd pid %d still runs after the test", c.PID())
		}
	}
	if pids := c.ShimPIDs(); len(pids) > 0 {
		t.Errorf("shims %v still run after the test", pids)
	}
	if m := harness.MountsBelow(c.Dir); len(m) > 0 {
		t.Errorf("still mounted after the test: %v", m)
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after the test (%v)", c.Dir, err)
	}
	if !strings.Contains(c.Log(), "containerd successfully booted") {
		t.Errorf("the log kept after Stop lacks the boot line:\n%s", c.LogTail(20))
	}
}

// TestBuildShim reports whether the hardened shim builds; the shim is not
// the harness's, so a failure skips.
func TestBuildShim(t *testing.T) {
	dir, err := harness.BuildShim(t)
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, harness.ShimBinary)); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("%s in %s: %v", harness.ShimBinary, dir, err)
	}
	if again, _ := harness.BuildShim(t); again != dir {
		t.Errorf("BuildShim again = %s, want the same %s", again, dir)
	}
}
