package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/integration/harness"
	"github.com/hardened-runtime/hardened/profiles"
)

// needRunc skips unless root with the pinned runc (fails on CI instead).
func needRunc(t *testing.T) string {
	t.Helper()
	runc := filepath.Join(harness.ToolsBin(), "runc")
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root"
	} else if _, err := os.Stat(runc); err != nil {
		why = "no runc in .tools/bin (make tools)"
	}
	if why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot run on CI: %s", why)
		}
		t.Skipf("skipping: %s", why)
	}
	return runc
}

func busyboxLayout(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "busybox")
	if err := harness.WriteOCILayout(dir, harness.Busybox); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRunHardened(t *testing.T) {
	runc := needRunc(t)
	layout := busyboxLayout(t)
	code, out, errOut := hardenctl(t, "run", "--runc", runc, layout, "--", "id", "-u")
	if code != 0 || strings.TrimSpace(out) != "65534" {
		t.Errorf("run id -u: %d %q %s", code, out, errOut)
	}
	code, _, errOut = hardenctl(t, "run", "--runc", runc, layout, "--", "sh", "-c", "exit 7")
	if code != 7 {
		t.Errorf("run sh -c 'exit 7': exit %d, want 7 (%s)", code, errOut)
	}
	// A tar of the layout, as ctr image export writes it.
	tarFile := filepath.Join(t.TempDir(), "busybox.tar")
	if out, err := exec.Command("tar", "-C", layout, "-cf", tarFile, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	code, out, errOut = hardenctl(t, "run", "--runc", runc, "--explain", tarFile, "--", "id", "-u")
	if code != 0 || strings.TrimSpace(out) != "65534" || !strings.Contains(errOut, "process.user.uid") {
		t.Errorf("run --explain of a tar: %d %q %s", code, out, errOut)
	}
}

func TestRunCompare(t *testing.T) {
	runc := needRunc(t)
	code, out, errOut := hardenctl(t, "run", "--runc", runc, "--compare", busyboxLayout(t), "--", "sh", "-c", "id -u; grep -E '^(CapEff|Seccomp):' /proc/self/status")
	if code != 0 {
		t.Fatalf("run --compare: %d %s %s", code, out, errOut)
	}
	for _, want := range []string{"plain (exit 0)", "hardened, level restricted (exit 0)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[1] == "0":
			if f[0] != "≠" || f[2] != "65534" {
				t.Errorf("uid line %q: want ≠ 0 65534", line)
			}
		case len(f) == 5 && f[1] == "CapEff:":
			if f[0] != "≠" || f[4] != "0000000000000000" {
				t.Errorf("CapEff line %q", line)
			}
		}
	}
}

// TestRunInterrupted: SIGINT to hardenctl while the container runs leaves
// no process, runc state, cgroup, mount or temp dir behind.
func TestRunInterrupted(t *testing.T) {
	runc := needRunc(t)
	bin := filepath.Join(t.TempDir(), "hardenctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v %s", err, out)
	}
	layout := busyboxLayout(t)
	tmp := t.TempDir()
	cmd := exec.Command(bin, "run", "--runc", runc, layout, "--", "sleep", "600")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	id := "hardenctl-" + itoa(cmd.Process.Pid)
	cgroup := "/sys/fs/cgroup/pids/" + id
	deadline := time.Now().Add(30 * time.Second)
	running := func() bool { out, _ := exec.Command("pgrep", "-f", "^sleep 600$").Output(); return len(out) > 0 }
	for !(exists(cgroup) && running()) && time.Now().Before(deadline) { // the container runs
		time.Sleep(50 * time.Millisecond)
	}
	if !exists(cgroup) || !running() {
		cmd.Process.Kill()
		t.Fatalf("the container did not start (no %s)", cgroup)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	t.Logf("hardenctl after SIGINT: %v", err)
	if exists(cgroup) {
		t.Errorf("cgroup %s left", cgroup)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "*")); len(left) > 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
	if out, _ := exec.Command("pgrep", "-f", "^sleep 600$").Output(); len(out) > 0 {
		t.Errorf("processes left: %s", out)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), tmp) {
		t.Errorf("mounts left below %s", tmp)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestLearn: a profile learned from one run of a command has far fewer
// syscalls than the runtime default, runs the same command again, and
// refuses a syscall the command did not make.
func TestLearn(t *testing.T) {
	runc := needRunc(t)
	layout := busyboxLayout(t)
	profile := filepath.Join(t.TempDir(), "learned.json")
	cmd := []string{"sh", "-c", "ls /; cat /etc/passwd"}
	code, out, errOut := hardenctl(t, append([]string{"learn", "--runc", runc, "--explain", "--out", profile, layout, "--"}, cmd...)...)
	if code != 0 {
		t.Fatalf("learn: %d %s %s", code, out, errOut)
	}
	var learned specs.LinuxSeccomp
	data, _ := os.ReadFile(profile)
	if err := json.Unmarshal(data, &learned); err != nil {
		t.Fatal(err)
	}
	def, ok := profiles.Builtin("restricted")
	if !ok {
		t.Fatal("no restricted level")
	}
	runtimeDefault, err := profiles.Seccomp(def, def.Capabilities.Allow)
	if err != nil {
		t.Fatal(err)
	}
	count := func(p *specs.LinuxSeccomp) int {
		n := 0
		for _, r := range p.Syscalls {
			if r.Action == specs.ActAllow {
				n += len(r.Names)
			}
		}
		return n
	}
	t.Logf("learned profile allows %d syscalls; the runtime default %d", count(&learned), count(runtimeDefault))
	if count(&learned) == 0 || count(&learned) > count(runtimeDefault)/4 {
		t.Errorf("learned profile allows %d syscalls, want far fewer than the runtime default's %d", count(&learned), count(runtimeDefault))
	}
	if !strings.Contains(errOut, "execve") || !strings.Contains(errOut, "SYSCALL") {
		t.Errorf("--explain lacks the syscall table:\n%s", errOut)
	}
	code, out, errOut = hardenctl(t, append([]string{"run", "--runc", runc, "--seccomp", profile, layout, "--"}, cmd...)...)
	if code != 0 || !strings.Contains(out, "nobody:x:65534") {
		t.Errorf("the same command under the learned profile: %d %s %s", code, out, errOut)
	}
	code, out, errOut = hardenctl(t, "run", "--runc", runc, "--seccomp", profile, layout, "--", "unshare", "-U", "true")
	if code == 0 || !(strings.Contains(errOut+out, "Operation not permitted") || strings.Contains(errOut+out, "not implemented")) {
		t.Errorf("unshare under the learned profile: %d %s %s; want EPERM or ENOSYS", code, out, errOut)
	}
}

// TestLoadWorkloadWhiteouts: layers are applied in order, and a whiteout
// in a later layer removes the file of an earlier one, as in containerd.
func TestLoadWorkloadWhiteouts(t *testing.T) {
	layer := func(files map[string]string) v1.Layer {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for name, content := range files {
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
			tw.Write([]byte(content))
		}
		tw.Close()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	img, err := mutate.AppendLayers(empty.Image,
		layer(map[string]string{"etc/keep": "1", "etc/gone": "2", "etc/changed": "old"}),
		layer(map[string]string{"etc/.wh.gone": "", "etc/changed": "new"}))
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Cmd: []string{"true"}, User: "1000"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	w, err := loadWorkload(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(w.dir)
	if _, err := os.Stat(filepath.Join(w.rootfs, "etc/gone")); err == nil {
		t.Error("etc/gone survived its whiteout")
	}
	if b, _ := os.ReadFile(filepath.Join(w.rootfs, "etc/changed")); string(b) != "new" {
		t.Errorf("etc/changed = %q, want the upper layer's", b)
	}
	if _, err := os.Stat(filepath.Join(w.rootfs, "etc/keep")); err != nil {
		t.Error(err)
	}
	if w.config.User != "1000" || len(w.config.Cmd) != 1 {
		t.Errorf("config %+v", w.config)
	}
}
