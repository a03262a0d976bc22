package kubernetes

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/hardened-runtime/hardened/e2e"
	"github.com/hardened-runtime/hardened/integration/harness"
)

// The two lines of deploy/kubernetes/daemonset.yaml that cannot run on the
// build machines, and what the e2e puts instead: the host's root directory
// (the installer would write the machine's /usr/local/bin and
// /etc/containerd) becomes a node root of the run's own, and the restart
// (nsenter into PID 1's namespaces, systemctl) becomes `true`: PID 1 here
// is no systemd, its namespaces are not even readable, and the node's
// containerd is the tests' own.
const (
	shippedHostPath = "/"
	shippedRestart  = "--restart-command=nsenter --target 1 --mount --uts --ipc --net --pid -- systemctl restart containerd"
	e2eRestart      = "--restart-command=true"
)

// installerImageName reads the installer image's name from the DaemonSet.
func installerImageName() (string, error) {
	data, err := os.ReadFile(filepath.Join(harness.RepoRoot(), "deploy", "kubernetes", "daemonset.yaml"))
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`(?m)^\s*image:\s*(\S*hardened-installer\S*)\s*$`).FindSubmatch(data)
	if m == nil {
		return "", fmt.Errorf("daemonset.yaml names no hardened-installer image")
	}
	return string(m[1]), nil
}

// InstallerImage builds the image of deploy/installer/Dockerfile from what
// it copies (hardenctl, with libseccomp; the shim and its verifier,
// static; kubectl; nsenter and chroot), on the suites' busybox instead of
// debian-slim (the build machines reach no registry), as USER 65534.
func InstallerImage(t *testing.T, progDir string) e2e.Image {
	t.Helper()
	name, err := installerImageName()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, b := range []struct {
		pkg string
		cgo string
	}{{"./cmd/hardenctl", "1"}, {"./cmd/containerd-shim-hardened-v2", "0"}, {"./cmd/hardened-verify", "0"}} {
		cmd := exec.Command("go", "build", "-buildvcs=false", "-trimpath", "-o", dir+"/", b.pkg)
		cmd.Dir = harness.RepoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+b.cgo)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", b.pkg, err, out)
		}
	}
	base, err := e2e.BaseImage(progDir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := e2e.WithHostBinaries(base, map[string]string{
		"/usr/local/bin/hardenctl":                   filepath.Join(dir, "hardenctl"),
		"/usr/local/bin/containerd-shim-hardened-v2": filepath.Join(dir, "containerd-shim-hardened-v2"),
		"/usr/local/bin/hardened-verify":             filepath.Join(dir, "hardened-verify"),
		"/usr/local/bin/kubectl":                     filepath.Join(ToolsDir(), "kubectl"),
		"/usr/bin/nsenter":                           "/usr/bin/nsenter",
		"/usr/sbin/chroot":                           "/usr/sbin/chroot",
	})
	if err == nil {
		var cf *v1.ConfigFile
		if cf, err = img.ConfigFile(); err == nil {
			cf = cf.DeepCopy()
			cf.Config.User = "65534:65534"
			cf.Config.Entrypoint = nil
			cf.Config.Cmd = []string{"hardenctl", "--help"}
			img, err = mutate.ConfigFile(img, cf)
		}
	}
	if err != nil {
		t.Fatalf("installer image: %v", err)
	}
	return e2e.NewImage(img, name)
}

// NodeRoot makes the root directory the installer is given as the host's
// (/host): containerd (which hardenctl runs there, chrooted, to validate
// the configuration it writes) and an /etc/containerd/config.toml.
func NodeRoot(t *testing.T) string {
	t.Helper()
	root, err := os.MkdirTemp("", "hardened-node-root-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := copyHostBinary(root, filepath.Join(harness.ToolsBin(), "containerd"), "/usr/local/bin/containerd"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"etc/containerd", "tmp", "usr/local/bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/containerd/config.toml"), []byte("version = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// copyHostBinary copies a host binary to path below root, and the shared
// libraries it loads to their own paths.
func copyHostBinary(root, host, path string) error {
	files := map[string]string{path: host}
	if out, err := exec.Command("ldd", host).Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
				files[f[2]] = f[2]
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				files[f[0]] = f[0]
			}
		}
	}
	for dst, src := range files {
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		p := filepath.Join(root, dst)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// InstallerOverlay writes a kustomization that applies deploy/kubernetes
// as it is, but for the two lines that cannot run here (see
// shippedHostPath): JSON patches that first test the shipped values, so a
// change of the manifest fails here instead of being patched blindly.
//
// The observer is given the tests' containerd in place of the node's
// /run/containerd (its socket and state directory, mounted at the same
// path, as task events name bundles by their host path).
func InstallerOverlay(t *testing.T, nodeRoot string, cd *harness.Containerd) string {
	t.Helper()
	dir := t.TempDir()
	base := filepath.Join(dir, "base")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(harness.RepoRoot(), "deploy", "kubernetes")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kustomization := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [base]
patches:
- target: {kind: DaemonSet, name: hardened-installer}
  patch: |-
    - {op: test, path: /spec/template/spec/volumes/0/name, value: host}
    - {op: test, path: /spec/template/spec/volumes/0/hostPath/path, value: %q}
    - {op: replace, path: /spec/template/spec/volumes/0/hostPath/path, value: %q}
    - {op: test, path: /spec/template/spec/initContainers/0/command/5, value: %q}
    - {op: replace, path: /spec/template/spec/initContainers/0/command/5, value: %q}
    - {op: test, path: /spec/template/spec/containers/0/command/3, value: "--address=/run/containerd/containerd.sock"}
    - {op: replace, path: /spec/template/spec/containers/0/command/3, value: %q}
    - {op: test, path: /spec/template/spec/containers/0/command/4, value: "--containerd-state=/run/containerd"}
    - {op: replace, path: /spec/template/spec/containers/0/command/4, value: %q}
    - {op: test, path: /spec/template/spec/containers/0/volumeMounts/0/mountPath, value: /run/containerd}
    - {op: replace, path: /spec/template/spec/containers/0/volumeMounts/0/mountPath, value: %q}
    - {op: test, path: /spec/template/spec/volumes/2/name, value: containerd-run}
    - {op: test, path: /spec/template/spec/volumes/2/hostPath/path, value: /run/containerd}
    - {op: replace, path: /spec/template/spec/volumes/2/hostPath/path, value: %q}
`, shippedHostPath, nodeRoot, shippedRestart, e2eRestart, "--address="+cd.Address, "--containerd-state="+cd.State, cd.Dir, cd.Dir)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
