package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ToolsBinEnv overrides where the pinned binaries are (see ToolsBin).
const ToolsBinEnv = "HARDENED_TOOLS_BIN"

// ShimBinary is the hardened shim's binary name, the one containerd looks
// up on $PATH for the runtime type io.containerd.hardened.v2.
const ShimBinary = "containerd-shim-hardened-v2"

// VerifyBinary is the signature verifier the shim runs, built next to it.
const VerifyBinary = "hardened-verify"

// tools are the pinned binaries the harness runs from ToolsBin.
var tools = []string{"containerd", "ctr", "containerd-shim-runc-v2", "runc"}

// RepoRoot returns the directory holding go.mod, found by walking up from
// the working directory (a test's package directory), or the working
// directory itself if there is none.
func RepoRoot() string {
	wd, _ := os.Getwd()
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if d == filepath.Dir(d) {
			return wd
		}
	}
}

// ToolsBin returns where `make tools` puts containerd, ctr,
// containerd-shim-runc-v2 and runc: <RepoRoot>/.tools/bin, or
// $HARDENED_TOOLS_BIN when set.
func ToolsBin() string {
	if d := os.Getenv(ToolsBinEnv); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), ".tools", "bin")
}

// CanRun says why the end-to-end tests cannot run on this machine, or ""
// when they can: they need root, the pinned binaries and busybox-static.
func CanRun() string {
	if os.Geteuid() != 0 {
		return "needs root"
	}
	for _, b := range tools {
		if _, err := exec.LookPath(filepath.Join(ToolsBin(), b)); err != nil {
			return fmt.Sprintf("%s missing in %s: run `make tools`", b, ToolsBin())
		}
	}
	if _, err := os.Stat(BusyboxPath); err != nil {
		return fmt.Sprintf("%s missing: run `make tools` (it installs busybox-static)", BusyboxPath)
	}
	return ""
}

// Require skips the test when it cannot run here (see CanRun), with
// "skipping: needs root" for a non-root user. With CI=true it fails the test
// instead: CI must run the end-to-end tests, never skip them.
func Require(t testing.TB) {
	t.Helper()
	why := CanRun()
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("harness: CI=true and the end-to-end tests cannot run: %s", why)
	}
	t.Skipf("skipping: %s", why)
}

var (
	shimOnce sync.Once
	shimDir  string
	shimErr  error
)

// BuildShim builds ./cmd/containerd-shim-hardened-v2 once per test binary
// and returns the directory holding it, for Options.ShimDir. The error says
// why the shim could not be built (missing, or not compiling); every call
// returns the same directory or error. The directory lives until the test
// binary exits; a later BuildShim removes those of test binaries that have
// exited.
func BuildShim(t testing.TB) (string, error) {
	t.Helper()
	start := time.Now()
	dir, err := BuildShimDir()
	if err == nil {
		t.Logf("harness: %s in %s (%v)", ShimBinary, dir, time.Since(start).Round(time.Millisecond))
	}
	return dir, err
}

// BuildShimDir is BuildShim for TestMain, which has no *testing.T.
func BuildShimDir() (string, error) {
	shimOnce.Do(func() { shimDir, shimErr = buildShim() })
	return shimDir, shimErr
}

func buildShim() (string, error) {
	pkg := "./cmd/" + ShimBinary
	if _, err := os.Stat(filepath.Join(RepoRoot(), pkg)); err != nil {
		return "", fmt.Errorf("build %s: %s does not exist yet", ShimBinary, pkg)
	}
	// The shim and, next to it where the shim looks for it, the signature
	// verifier it runs.
	return buildInto("hardened-shim-", ShimBinary, pkg, "./cmd/"+VerifyBinary)
}

// buildInto builds pkgs into a new directory <tmp>/<prefix><pid>-*, named
// after this test binary's PID so that a later build removes it once this
// binary has exited; what names the binary built is only for errors.
func buildInto(prefix, what string, pkgs ...string) (string, error) {
	removeStaleBuildDirs(prefix)
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", prefix, os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("build %s: %w", what, err)
	}
	cmd := exec.Command("go", append([]string{"build", "-buildvcs=false", "-o", dir + "/"}, pkgs...)...)
	cmd.Dir = RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("build %s: go build %s: %w\n%s", what, strings.Join(pkgs, " "), err, out)
	}
	return dir, nil
}

// removeStaleBuildDirs removes the build directories <prefix><pid>-* of
// test binaries that have exited.
func removeStaleBuildDirs(prefix string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*-*"))
	for _, d := range dirs {
		pidText, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), prefix), "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			os.RemoveAll(d)
		}
	}
}

// RemoveShim removes the directory BuildShim built the shim in, and
// BuildRegistry's (RemoveRegistry); TestMain calls it when every test is
// done (shims still running keep their binary).
func RemoveShim() {
	if shimDir != "" {
		os.RemoveAll(shimDir)
	}
	RemoveRegistry()
}
