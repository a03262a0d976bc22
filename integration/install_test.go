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
)

// TestInstall installs the runtime with `hardenctl install` into a private
// containerd's config before it starts (as an admin does, then restarts
// containerd), runs a pod through the installed runtime handler, and
// uninstalls: the config is byte for byte what it was.
func TestInstall(t *testing.T) {
	require(t)
	shimDir, err := harness.BuildShimDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hardenctl := filepath.Join(dir, "hardenctl")
	build := exec.Command("go", "build", "-o", hardenctl, "./cmd/hardenctl")
	build.Dir = harness.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build hardenctl: %v\n%s", err, out)
	}
	policyFile := filepath.Join(dir, "policy-src.yaml")
	os.WriteFile(policyFile, []byte(testPolicy), 0o644)
	bin := filepath.Join(dir, "bin")
	common := []string{"--conf-dir", filepath.Join(dir, "conf.d"), "--record", filepath.Join(dir, "install.json"),
		"--containerd", filepath.Join(harness.ToolsBin(), "containerd")}
	var config string
	var original []byte
	c := harness.Start(t, harness.Options{ShimDir: bin, BeforeStart: func(cfg string) error {
		config = cfg
		original, _ = os.ReadFile(cfg)
		args := append([]string{"install", "--containerd-config", cfg, "--shim", filepath.Join(shimDir, "containerd-shim-hardened-v2"),
			"--bin-dir", bin, "--policy", policyFile, "--policy-path", filepath.Join(dir, "policy.yaml"),
			"--runtime-name", "hardened-installed"}, common...)
		out, err := exec.Command(hardenctl, append(args, "--dry-run")...).CombinedOutput()
		if err != nil {
			t.Fatalf("install --dry-run: %v\n%s", err, out)
		}
		if now, _ := os.ReadFile(cfg); string(now) != string(original) {
			t.Error("install --dry-run changed config.toml")
		}
		out, err = exec.Command(hardenctl, args...).CombinedOutput()
		t.Logf("hardenctl install:\n%s", out)
		return err
	}})
	harness.Import(t, c, harness.CRINamespace, harness.Pause, harness.Busybox)
	rs, _ := c.CRI(t)
	podID, cfg, err := podWith(t, rs, "installed", "hardened-installed", false)
	if err != nil {
		t.Fatalf("pod with the installed handler: %v", err)
	}
	id, err := startContainer(t, rs, podID, cfg, "app", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := rs.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"id", "-u"}, Timeout: 30})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out.Stdout)); got != "65534" {
		t.Errorf("container of the installed runtime runs as %q, want 65534", got)
	}

	un, err := exec.Command(hardenctl, append([]string{"uninstall", "--containerd-config", config}, common...)...).CombinedOutput()
	t.Logf("hardenctl uninstall:\n%s", un)
	if err != nil {
		t.Fatal(err)
	}
	if now, _ := os.ReadFile(config); string(now) != string(original) {
		t.Errorf("config.toml after uninstall:\n%s\nwant byte for byte:\n%s", now, original)
	}
	for _, gone := range []string{filepath.Join(dir, "conf.d", "hardened.toml"), filepath.Join(bin, "containerd-shim-hardened-v2"), filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "install.json")} {
		if _, err := os.Stat(gone); err == nil {
			t.Errorf("%s left after uninstall", gone)
		}
	}
}
