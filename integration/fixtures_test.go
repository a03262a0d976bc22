package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hardened-runtime/hardened/integration/harness"
)

// TestCaptureFixtures writes the config.json files that the real
// containerd generates (`ctr run`, and the CRI plugin for a pod and its
// sandbox) to spec/testdata/real-*.in.json, for the engine's golden tests.
// Run with HARDENED_CAPTURE=1; the files are committed.
func TestCaptureFixtures(t *testing.T) {
	if os.Getenv("HARDENED_CAPTURE") != "1" {
		t.Skip("skipping: set HARDENED_CAPTURE=1 to regenerate spec/testdata/real-*.in.json")
	}
	require(t)
	out := filepath.Join(harness.RepoRoot(), "spec", "testdata")
	bundle := func(namespace, id string) string {
		return filepath.Join(cd.State, "io.containerd.runtime.v2.task", namespace, id, "config.json")
	}
	save := func(name, file string) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		enc.Encode(v)
		if err := os.WriteFile(filepath.Join(out, name+".in.json"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s from %s", name, file)
	}

	// ctr run, the binary, with the plain runc runtime.
	if o, err := cd.Ctr(t, "run", "-d", "--runtime", runcRT, harness.Busybox, "fixture-ctr", "sleep", "60"); err != nil {
		t.Fatalf("ctr run: %v\n%s", err, o)
	}
	save("real-ctr-run", bundle(ns, "fixture-ctr"))
	cd.Ctr(t, "task", "kill", "-s", "KILL", "fixture-ctr")
	time.Sleep(200 * time.Millisecond)
	cd.Ctr(t, "task", "rm", "-f", "fixture-ctr")
	cd.Ctr(t, "container", "rm", "fixture-ctr")

	// A CRI pod (runc handler, host network) and its container.
	rs, _ := cd.CRI(t)
	ctx := context.Background()
	cfg := &runtime.PodSandboxConfig{
		Metadata:     &runtime.PodSandboxMetadata{Name: "web", Uid: "fixture-uid", Namespace: "shop"},
		LogDirectory: t.TempDir(),
		Linux: &runtime.LinuxPodSandboxConfig{SecurityContext: &runtime.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtime.NamespaceOption{Network: runtime.NamespaceMode_NODE},
		}},
	}
	pod, err := rs.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: cfg, RuntimeHandler: "runc"})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: pod.PodSandboxId})
	defer rs.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: pod.PodSandboxId})
	c, err := rs.CreateContainer(ctx, &runtime.CreateContainerRequest{
		PodSandboxId: pod.PodSandboxId, SandboxConfig: cfg,
		Config: &runtime.ContainerConfig{
			Metadata: &runtime.ContainerMetadata{Name: "app"},
			Image:    &runtime.ImageSpec{Image: harness.Busybox},
			Command:  []string{"sleep", "60"},
			LogPath:  "app.log",
			Linux:    &runtime.LinuxContainerConfig{SecurityContext: kubeletDefaults(nil)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		t.Fatal(err)
	}
	save("real-cri-container", bundle("k8s.io", c.ContainerId))
	save("real-cri-sandbox", bundle("k8s.io", pod.PodSandboxId))
	rs.StopContainer(ctx, &runtime.StopContainerRequest{ContainerId: c.ContainerId})
	rs.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: c.ContainerId})
}
