package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hardened-runtime/hardened/integration/harness"
	"github.com/hardened-runtime/hardened/verify/signtest"
)

// TestPullGate: hardened-image-verifier in containerd's image verifier
// bin_dir makes CRI pulls (containerd's transfer service) of an image the
// policy refuses fail with the refusal, and caches the verdict of an
// accepted one, so that its first container starts with the registry gone.
func TestPullGate(t *testing.T) {
	require(t)
	gateDir := filepath.Join(t.TempDir(), "verifiers")
	if err := os.MkdirAll(gateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(gateDir, "hardened"), "./cmd/hardened-image-verifier")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build hardened-image-verifier: %v\n%s", err, out)
	}
	e := newSignatureEnvWith(t, func(o *harness.Options) {
		// What hardenctl install --pull-gate --pull-gate-dir writes.
		o.ExtraConfig = "[plugins.\"io.containerd.image-verifier.v1.bindir\"]\n  bin_dir = \"" + gateDir + "\"\n"
	})
	ctx := context.Background()
	signed, signedDesc := e.push(t, "signed/gated:v1")
	if err := signtest.SignClassic(ctx, e.reg.Repository(t, "signed/gated"), signedDesc.Digest, e.repoOf(t, signed), e.trusted); err != nil {
		t.Fatal(err)
	}
	unsigned, _ := e.push(t, "signed/unsigned-gated:v1")
	rs, is := e.c.CRI(t)

	t.Run("refused at pull", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_, err := is.PullImage(cctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: unsigned}})
		if err == nil {
			t.Fatalf("%s was pulled; want the pull refused", unsigned)
		}
		for _, w := range []string{"image verifier bindir blocked pull of " + unsigned, "image " + unsigned, "no signature found", "fix: sign this digest"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("pull error %q does not say %q", err, w)
			}
		}
		t.Logf("refused: %v", err)
		if st, err := is.ImageStatus(cctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: unsigned}}); err != nil || st.Image != nil {
			t.Errorf("the refused image is in the image store: %v %v", st, err)
		}
	})

	t.Run("accepted at pull, started from the cached verdict", func(t *testing.T) {
		e.c.CRIPull(t, signed)
		verdicts, _ := os.ReadDir(filepath.Join(e.c.State, "verdicts"))
		if len(verdicts) == 0 {
			t.Errorf("no verdict cached in %s by the pull", filepath.Join(e.c.State, "verdicts"))
		}
		if err := e.reg.Stop(); err != nil {
			t.Fatal(err)
		}
		podID, podCfg, err := podWith(t, rs, "gated", "hardened", false)
		if err != nil {
			t.Fatalf("RunPodSandbox: %v", err)
		}
		id, err := startImage(t, rs, podID, podCfg, "app", signed, nil)
		if err != nil {
			t.Fatalf("first start of %s with the registry gone: %v (the pull should have cached its verdict)", signed, err)
		}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if out, err := rs.ExecSync(cctx, &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"id", "-u"}, Timeout: 30}); err != nil || strings.TrimSpace(string(out.Stdout)) != "65534" {
			t.Errorf("ExecSync: %q %v", out.GetStdout(), err)
		}
	})
}
