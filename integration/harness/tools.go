package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// RepoRoot is the directory holding go.mod.
func RepoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return dir
}

// ToolsBin is where `make tools` puts containerd, ctr and runc
// ($HARDENED_TOOLS_BIN overrides it).
func ToolsBin() string {
	if d := os.Getenv("HARDENED_TOOLS_BIN"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), ".tools", "bin")
}

// CanRun says why the integration tests cannot run here, or "" if they can.
func CanRun() string {
	if os.Getuid() != 0 {
		return "needs root"
	}
	for _, b := range []string{"containerd", "ctr", "runc", "containerd-shim-runc-v2"} {
		if _, err := os.Stat(filepath.Join(ToolsBin(), b)); err != nil {
			return fmt.Sprintf("%s missing in %s: run make tools", b, ToolsBin())
		}
	}
	if _, err := os.Stat(BusyboxPath); err != nil {
		return BusyboxPath + " missing: run make tools (apt-get install busybox-static)"
	}
	return ""
}

// Require skips the test when the integration tests cannot run here, or
// fails it when CI=true: CI must run them.
func Require(t testing.TB) {
	t.Helper()
	if why := CanRun(); why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("integration tests cannot run on CI: %s", why)
		}
		t.Skipf("skipping: %s", why)
	}
}

var (
	shimOnce sync.Once
	shimDir  string
	shimErr  error
)

// BuildShim builds containerd-shim-hardened-v2 once per test binary and
// returns the directory that holds it.
func BuildShim() (string, error) {
	shimOnce.Do(func() {
		shimDir, shimErr = os.MkdirTemp("", "hardened-shim-")
		if shimErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(shimDir, "containerd-shim-hardened-v2"), "./cmd/containerd-shim-hardened-v2")
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			shimErr = fmt.Errorf("build the shim: %v\n%s", err, out)
		}
	})
	return shimDir, shimErr
}

// BuildHardenctl builds hardenctl into dir and returns its path.
func BuildHardenctl(dir string) (string, error) {
	bin := filepath.Join(dir, "hardenctl")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/hardenctl")
	cmd.Dir = RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build hardenctl: %v\n%s", err, out)
	}
	return bin, nil
}
