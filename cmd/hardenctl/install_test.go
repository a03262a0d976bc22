package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hardened-runtime/hardened/policy"
)

// node is a fake node in a temp dir: install's flags point every path
// into it.
type node struct {
	dir, config, confDir, bin, policyPath, record, shim string
}

func newNode(t *testing.T, config string) node {
	t.Helper()
	d := t.TempDir()
	n := node{dir: d, config: filepath.Join(d, "etc/containerd/config.toml"), confDir: filepath.Join(d, "etc/containerd/conf.d"),
		bin: filepath.Join(d, "bin"), policyPath: filepath.Join(d, "etc/hardened/policy.yaml"), record: filepath.Join(d, "etc/hardened/install.json"),
		shim: filepath.Join(d, "src", shimBinary)}
	os.MkdirAll(filepath.Dir(n.shim), 0o755)
	os.WriteFile(n.shim, []byte("#!/bin/sh\n# a shim\n"), 0o755)
	os.WriteFile(filepath.Join(filepath.Dir(n.shim), verifierBinary), []byte("#!/bin/sh\n# a verifier\n"), 0o755)
	if config != "" {
		os.MkdirAll(filepath.Dir(n.config), 0o755)
		os.WriteFile(n.config, []byte(config), 0o600)
	}
	return n
}

func (n node) args(cmd string, extra ...string) []string {
	a := []string{cmd, "--containerd-config", n.config, "--conf-dir", n.confDir, "--record", n.record, "--skip-validate"}
	if cmd == "install" {
		a = append(a, "--shim", n.shim, "--bin-dir", n.bin, "--policy-path", n.policyPath)
	}
	return append(a, extra...)
}

// files maps every file below the node to its content.
func (n node) files(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.Walk(n.dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			data, _ := os.ReadFile(p)
			m[strings.TrimPrefix(p, n.dir)] = string(data)
		}
		return nil
	})
	return m
}

func TestInstallUninstallRestoresByteForByte(t *testing.T) {
	for name, config := range map[string]string{
		"no imports":         "# mine\nversion = 3\nroot = \"/var/lib/containerd\"\n\n[grpc]\n  address = \"/run/containerd/containerd.sock\"\n",
		"other imports":      "version = 3\nimports = [\"/etc/containerd/other.toml\"]  # keep\n",
		"empty imports":      "version = 3\nimports = []\n",
		"no version":         "root = \"/var/lib/containerd\"\n",
		"no config.toml":     "",
		"imports conf.d/*":   "version = 3\nimports = [\"CONFD/*.toml\"]\n",
		"version 2, comment": "# containerd 2.0 config\nversion = 2 # old but fine\n\n[plugins]\n",
	} {
		t.Run(name, func(t *testing.T) {
			n := newNode(t, config)
			if strings.Contains(config, "CONFD") {
				os.WriteFile(n.config, []byte(strings.ReplaceAll(config, "CONFD", n.confDir)), 0o600)
			}
			before := n.files(t)

			code, out, errOut := hardenctl(t, n.args("install", "--dry-run")...)
			if code != 0 || !strings.Contains(out, "dry run") {
				t.Fatalf("install --dry-run: %d %s %s", code, out, errOut)
			}
			if after := n.files(t); !mapsEqual(after, before) {
				t.Fatalf("--dry-run changed files")
			}
			code, out, errOut = hardenctl(t, n.args("install")...)
			if code != 0 {
				t.Fatalf("install: %d %s %s", code, out, errOut)
			}
			dropIn, err := os.ReadFile(filepath.Join(n.confDir, "hardened.toml"))
			if err != nil || !bytes.Contains(dropIn, []byte(`runtime_type = "io.containerd.hardened.v2"`)) || !bytes.Contains(dropIn, []byte(n.policyPath)) {
				t.Errorf("drop-in: %v\n%s", err, dropIn)
			}
			cfg, _ := os.ReadFile(n.config)
			if !bytes.Contains(cfg, []byte(n.confDir)) {
				t.Errorf("config.toml does not import %s:\n%s", n.confDir, cfg)
			}
			if fi, err := os.Stat(filepath.Join(n.bin, shimBinary)); err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("shim: %v", err)
			}
			installed := n.files(t)

			code, out, _ = hardenctl(t, n.args("install")...)
			if code != 0 || !strings.Contains(out, "nothing to change") || !mapsEqual(n.files(t), installed) {
				t.Errorf("second install: %d %s", code, out)
			}
			code, out, errOut = hardenctl(t, n.args("uninstall")...)
			if code != 0 {
				t.Fatalf("uninstall: %d %s %s", code, out, errOut)
			}
			if after := n.files(t); !mapsEqual(after, before) {
				t.Errorf("after uninstall:\n%v\nwant\n%v", after, before)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestInstallRefusesBadInput(t *testing.T) {
	n := newNode(t, "version = 3\n")
	bad := filepath.Join(n.dir, "bad.yaml")
	os.WriteFile(bad, []byte("defaultLevel: lax\n"), 0o644)
	before := n.files(t)
	code, _, errOut := hardenctl(t, n.args("install", "--policy", bad)...)
	if code != 1 || !strings.Contains(errOut, "invalid, nothing installed") || !strings.Contains(errOut, "lax") {
		t.Errorf("bad policy: %d %s", code, errOut)
	}
	code, _, errOut = hardenctl(t, n.args("install", "--shim", filepath.Join(n.dir, "missing"))...)
	if code != 1 || !strings.Contains(errOut, "--shim") {
		t.Errorf("missing shim: %d %s", code, errOut)
	}
	os.WriteFile(n.config, []byte("version = 3\nimports = [\n  \"/a.toml\",\n]\n"), 0o600)
	code, _, errOut = hardenctl(t, n.args("install")...)
	if code != 1 || !strings.Contains(errOut, "by hand") {
		t.Errorf("multi-line imports: %d %s", code, errOut)
	}
	os.WriteFile(n.config, []byte("version = 3\n"), 0o600)
	if after := n.files(t); !mapsEqual(after, before) {
		t.Errorf("refused installs changed files")
	}
}

// TestInstallRollsBackWhenContainerdRejects: the resulting config is
// checked by containerd; a rejection undoes everything.
func TestInstallRollsBackWhenContainerdRejects(t *testing.T) {
	n := newNode(t, "version = 3\n")
	fake := filepath.Join(n.dir, "containerd")
	os.WriteFile(fake, []byte("#!/bin/sh\necho 'failed to load plugin config: boom' >&2\nexit 1\n"), 0o755)
	before := n.files(t)
	args := append(slicesWithout(n.args("install"), "--skip-validate"), "--containerd", fake)
	code, _, errOut := hardenctl(t, args...)
	if code != 1 || !strings.Contains(errOut, "boom") || !strings.Contains(errOut, "nothing installed") {
		t.Errorf("install with a rejecting containerd: %d %s", code, errOut)
	}
	if after := n.files(t); !mapsEqual(after, before) {
		t.Errorf("files changed after the rollback:\n%v\nwant\n%v", after, before)
	}
}

func TestUninstallKeepsChangedFiles(t *testing.T) {
	n := newNode(t, "version = 3\n")
	if code, _, errOut := hardenctl(t, n.args("install")...); code != 0 {
		t.Fatal(errOut)
	}
	dropIn := filepath.Join(n.confDir, "hardened.toml")
	os.WriteFile(dropIn, []byte("# the admin's now\n"), 0o644)
	code, out, _ := hardenctl(t, n.args("uninstall")...)
	if code != 1 || !strings.Contains(out, "kept") {
		t.Errorf("uninstall with a changed drop-in: %d %s", code, out)
	}
	if data, _ := os.ReadFile(dropIn); string(data) != "# the admin's now\n" {
		t.Error("the changed drop-in was touched")
	}
	if code, out, _ = hardenctl(t, n.args("uninstall", "--force")...); code != 0 {
		t.Errorf("uninstall --force: %d %s", code, out)
	}
	if _, err := os.Stat(dropIn); err == nil {
		t.Error("uninstall --force kept the drop-in")
	}
	if code, out, _ = hardenctl(t, n.args("uninstall")...); code != 0 || !strings.Contains(out, "not installed") {
		t.Errorf("uninstall when not installed: %d %s", code, out)
	}
}

func slicesWithout(s []string, drop string) []string {
	var out []string
	for _, x := range s {
		if x != drop {
			out = append(out, x)
		}
	}
	return out
}

// TestInstallPullGate: --pull-gate puts the gate in containerd's image
// verifier directory (set as bin_dir in the drop-in when not the default)
// and uninstall takes it away.
func TestInstallPullGate(t *testing.T) {
	n := newNode(t, "version = 3\n")
	gate := filepath.Join(filepath.Dir(n.shim), pullGateBinary)
	os.WriteFile(gate, []byte("#!/bin/sh\n# a gate\n"), 0o755)
	before := n.files(t)
	dir := filepath.Join(n.dir, "opt/verifiers")
	code, out, errOut := hardenctl(t, n.args("install", "--pull-gate", "--pull-gate-dir", dir, "--policy-path", "/etc/hardened/policy.yaml")...)
	if code != 0 {
		t.Fatalf("install --pull-gate: %d %s %s", code, out, errOut)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "hardened")); err != nil || string(data) != "#!/bin/sh\n# a gate\n" {
		t.Errorf("gate not installed: %q %v", data, err)
	}
	dropIn, _ := os.ReadFile(filepath.Join(n.confDir, "hardened.toml"))
	if !strings.Contains(string(dropIn), "[plugins.\"io.containerd.image-verifier.v1.bindir\"]\n  bin_dir = \""+dir+"\"") {
		t.Errorf("drop-in does not set the verifier bin_dir:\n%s", dropIn)
	}
	if code, out, errOut := hardenctl(t, n.args("uninstall")...); code != 0 {
		t.Fatalf("uninstall: %d %s %s", code, out, errOut)
	}
	if after := n.files(t); !mapsEqual(after, before) {
		t.Errorf("uninstall left %v, had %v", keys(after), keys(before))
	}
	code, _, errOut = hardenctl(t, n.args("install", "--pull-gate")...)
	if code == 0 || !strings.Contains(errOut, "--pull-gate: the gate reads /etc/hardened/policy.yaml") {
		t.Errorf("--pull-gate with another policy path: %d %s", code, errOut)
	}
}

// TestInstallMarksThePolicy: installing a policy at the default path
// (here below --root) marks the node as having one, so that the shim
// refuses containers if it goes missing; uninstall removes the mark.
func TestInstallMarksThePolicy(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, shimBinary), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(src, verifierBinary), []byte("#!/bin/sh\n"), 0o755)
	pol := filepath.Join(src, "policy.yaml")
	os.WriteFile(pol, []byte("mode: enforce\n"), 0o644)
	marker := filepath.Join(root, policy.MarkerPath)
	if code, out, errOut := hardenctl(t, "install", "--root", root, "--skip-validate", "--shim", filepath.Join(src, shimBinary), "--policy", pol); code != 0 {
		t.Fatalf("install: %d %s %s", code, out, errOut)
	}
	if data, err := os.ReadFile(marker); err != nil || string(data) != policy.MarkerContent {
		t.Fatalf("marker %s: %q %v", marker, data, err)
	}
	if code, out, errOut := hardenctl(t, "uninstall", "--root", root, "--skip-validate"); code != 0 {
		t.Fatalf("uninstall: %d %s %s", code, out, errOut)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("uninstall left the marker")
	}
}
