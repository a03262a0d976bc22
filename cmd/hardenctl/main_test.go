package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hardenctl runs the app in process and returns exit code, stdout, stderr.
func hardenctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(append([]string{"hardenctl"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

const ctrSpec = "../../spec/testdata/ctr-run.in.json"

var host = []string{"--apparmor", "false", "--unprivileged-port-sysctl", "true", "--idmapped-mounts", "false", "--policy", "/nonexistent/policy.yaml"}

func TestHardenExplainThenCheck(t *testing.T) {
	out := filepath.Join(t.TempDir(), "hardened.json")
	code, stdout, stderr := hardenctl(t, append(append([]string{"harden", "--explain", "-o", out}, host...), ctrSpec)...)
	if code != 0 {
		t.Fatalf("harden = %d: %s", code, stderr)
	}
	for _, rule := range []string{"user", "capabilities", "seccomp", "apparmor", "rootfs", "sysctls", "limits"} {
		if !strings.Contains(stdout, "\n"+rule+" ") {
			t.Errorf("--explain lacks rule %s:\n%s", rule, stdout)
		}
	}
	if !strings.Contains(stdout, "host has no AppArmor") {
		t.Error("--explain lacks the AppArmor note")
	}
	code, stdout, _ = hardenctl(t, append(append([]string{"check"}, host...), out)...)
	if code != 0 || !strings.Contains(stdout, "complies with level restricted") {
		t.Errorf("check of the hardened spec = %d: %s", code, stdout)
	}
	code, stdout, _ = hardenctl(t, append(append([]string{"check"}, host...), ctrSpec)...)
	if code != 1 || !strings.Contains(stdout, "violations of level restricted") {
		t.Errorf("check of the input = %d: %s", code, stdout)
	}
}

func TestHardenJSONAndDiff(t *testing.T) {
	code, stdout, stderr := hardenctl(t, append(append([]string{"harden", "--output", "json", "--level", "strict"}, host...), ctrSpec)...)
	if code != 0 {
		t.Fatalf("harden = %d: %s", code, stderr)
	}
	var report struct {
		Level   string
		Changes []map[string]any
		Spec    map[string]any
	}
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("json output: %v", err)
	}
	if report.Level != "strict" || len(report.Changes) == 0 || report.Spec == nil {
		t.Errorf("report = %+v", report)
	}
	code, stdout, _ = hardenctl(t, append(append([]string{"harden", "--diff"}, host...), ctrSpec)...)
	if code != 0 || !strings.Contains(stdout, "--- ") || !strings.Contains(stdout, "-      \"uid\": 0,") || !strings.Contains(stdout, "+      \"uid\": 65534,") {
		t.Errorf("--diff = %d:\n%.2000s", code, stdout)
	}
	// --output json before the command works too.
	code, stdout, _ = hardenctl(t, append(append([]string{"--output", "json", "check"}, host...), ctrSpec)...)
	if code != 1 || !strings.Contains(stdout, `"violations"`) {
		t.Errorf("--output json check = %d: %s", code, stdout)
	}
}

func TestHardenRefusal(t *testing.T) {
	spec, _ := os.ReadFile(ctrSpec)
	bad := strings.Replace(string(spec), `"CAP_CHOWN",`, `"CAP_SYS_ADMIN", "CAP_CHOWN",`, 1)
	file := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(file, []byte(bad), 0o644)
	code, _, stderr := hardenctl(t, append(append([]string{"harden"}, host...), file)...)
	if code != 1 || !strings.Contains(stderr, "refused by level restricted") || !strings.Contains(stderr, "CAP_SYS_ADMIN") {
		t.Errorf("harden of a CAP_SYS_ADMIN spec = %d: %s", code, stderr)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	malformed := filepath.Join(dir, "bad.json")
	os.WriteFile(malformed, []byte("{\n  \"process\": {\n    \"args\": [\"sh\",]\n  }\n}\n"), 0o644)
	unknown := filepath.Join(dir, "unknown.json")
	os.WriteFile(unknown, []byte(`{"process":{"args":["sh"]},"root":{"path":"r"},"bogus":1}`), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"harden", malformed}, 1, "bad.json: line 3, column"},
		{[]string{"harden", unknown}, 1, `unknown field "bogus"`},
		{[]string{"harden", filepath.Join(dir, "missing.json")}, 1, "no such file"},
		{[]string{"harden", "--level", "lax", ctrSpec}, 2, `--level "lax": unknown level`},
		{[]string{"harden"}, 2, "want one CONFIG.JSON"},
		{[]string{"--output", "yaml", "profiles", "list"}, 2, "want text or json"},
		{[]string{"harden", "--apparmor", "maybe", ctrSpec}, 2, "want auto, true or false"},
		{[]string{"profiles", "show", "nope"}, 2, "unknown level"},
		{[]string{"profiles", "export-seccomp", "--caps", "FLY", "baseline"}, 2, "not a capability"},
		{[]string{"nonsense"}, 0, ""},
	} {
		code, _, stderr := hardenctl(t, tc.args...)
		if tc.want == "" {
			continue
		}
		if code != tc.code || !strings.Contains(stderr, tc.want) || !strings.HasPrefix(stderr, "hardenctl: ") {
			t.Errorf("hardenctl %v = %d %q, want %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

func TestProfilesAndPolicy(t *testing.T) {
	code, stdout, _ := hardenctl(t, "profiles", "list", "--policy", "../../policy/testdata/example.yaml")
	if code != 0 || !strings.Contains(stdout, "restricted") || !strings.Contains(stdout, "web-strict") {
		t.Errorf("profiles list = %d: %s", code, stdout)
	}
	code, stdout, _ = hardenctl(t, "--output", "json", "profiles", "list")
	if code != 0 || !strings.HasPrefix(stdout, "[") {
		t.Errorf("profiles list json = %d: %s", code, stdout)
	}
	code, stdout, _ = hardenctl(t, "profiles", "show", "strict")
	if code != 0 || !strings.Contains(stdout, "noExec: true") {
		t.Errorf("profiles show = %d: %s", code, stdout)
	}
	// The keys of issue 16 show, with their (refusing) defaults.
	for _, key := range []string{"hooks:\n  allow: []", "scheduling:\n  allowRealtime: false\n  minNice: 0", "cgroups:\n  parents: []",
		"checkpoint:\n  allowRestore: false", "maxMemlock: 8388608", "minOOMScoreAdj: 0"} {
		if !strings.Contains(stdout, key) {
			t.Errorf("profiles show strict lacks %q:\n%s", key, stdout)
		}
	}
	code, stdout, _ = hardenctl(t, "profiles", "show", "--output", "json", "strict")
	if code != 0 || !strings.Contains(stdout, `"name": "strict"`) {
		t.Errorf("profiles show json = %d: %s", code, stdout)
	}
	code, stdout, _ = hardenctl(t, "profiles", "export-seccomp", "restricted")
	if code != 0 || !strings.Contains(stdout, `"defaultErrnoRet": 38`) {
		t.Errorf("export-seccomp = %d: %.300s", code, stdout)
	}
	code, stdout, _ = hardenctl(t, "profiles", "export-apparmor", "restricted")
	if code != 0 || !strings.Contains(stdout, "profile hardened-default") {
		t.Errorf("export-apparmor = %d: %.300s", code, stdout)
	}
	code, stdout, stderr := hardenctl(t, "policy", "validate", "../../policy/testdata/example.yaml")
	if code != 0 || !strings.Contains(stdout, "is valid: mode enforce, default level restricted, 2 rules, 5 levels") ||
		!strings.Contains(stdout, "signatures: none (built-in insecureAcceptAnything)") ||
		!strings.Contains(stderr, "warning: no signatures section: every image is accepted without a signature check") {
		t.Errorf("policy validate = %d: %s%s", code, stdout, stderr)
	}
	// A rule that loosens for a Kubernetes namespace trusts a claim.
	for _, want := range []string{
		"warning: rules[0] (system pods) matches kubernetesNamespaces kube-system with mode: audit (nothing is hardened): a pod's Kubernetes namespace is a claim",
		"warning: rules[0] (system pods) matches kubernetesNamespaces kube-system with level baseline, not as strict as defaultLevel restricted",
		"and lets an annotation pick level baseline",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("policy validate: stderr lacks %q:\n%s", want, stderr)
		}
	}
	strictNS := filepath.Join(t.TempDir(), "strict-ns.yaml")
	os.WriteFile(strictNS, []byte("signatures: {default: [{type: insecureAcceptAnything}]}\nrules:\n  - {name: vault, match: {kubernetesNamespaces: [vault]}, level: strict}\n"), 0o644)
	if code, _, stderr := hardenctl(t, "policy", "validate", strictNS); code != 0 || stderr != "" {
		t.Errorf("a stricter level for a namespace warns: %d %s", code, stderr)
	}
	signed := filepath.Join(t.TempDir(), "signed.yaml")
	os.WriteFile(signed, []byte("signatures:\n  default: [{type: reject}]\n  scopes: {r.io/open: [{type: insecureAcceptAnything}]}\n"), 0o644)
	code, stdout, stderr = hardenctl(t, "policy", "validate", signed)
	if code != 0 || !strings.Contains(stdout, "signatures: default reject, 1 scopes") || stderr != "" {
		t.Errorf("policy validate with signatures = %d: %s%s", code, stdout, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("mode: enforce\nrulez: []\n"), 0o644)
	code, _, stderr = hardenctl(t, "policy", "validate", bad)
	if code != 1 || !strings.Contains(stderr, "line 2: field rulez not found") {
		t.Errorf("policy validate bad = %d: %s", code, stderr)
	}
	code, stdout, _ = hardenctl(t, "policy", "validate", "--output", "json", bad)
	if code != 1 || !strings.Contains(stdout, `"valid": false`) {
		t.Errorf("policy validate json = %d: %s", code, stdout)
	}
	code, stdout, _ = hardenctl(t, "--help")
	if code != 0 || !strings.Contains(stdout, "EXAMPLES") {
		t.Errorf("--help = %d", code)
	}
}

func TestStdin(t *testing.T) {
	data, _ := os.ReadFile(ctrSpec)
	var out, errOut bytes.Buffer
	app := newApp(&out, &errOut)
	app.Reader = bytes.NewReader(data)
	if err := app.Run(append(append([]string{"hardenctl", "harden"}, host...), "-")); err != nil {
		t.Fatalf("harden -: %v %s", err, errOut.String())
	}
	if !strings.Contains(out.String(), `"uid": 65534`) {
		t.Error("harden - did not harden stdin")
	}
}

// TestHardenCRISpec: a CRI config.json's own files (hosts, resolv.conf,
// shm) are judged as the shim judges them, from the node's directories and
// the spec's pod; under other directories they are not the container's.
func TestHardenCRISpec(t *testing.T) {
	cri := "../../spec/testdata/cri-container.in.json"
	out := filepath.Join(t.TempDir(), "hardened.json")
	code, _, stderr := hardenctl(t, append(append([]string{"harden", "--namespace", "k8s.io", "-o", out}, host...), cri)...)
	if code != 0 {
		t.Fatalf("harden of a CRI spec = %d: %s", code, stderr)
	}
	if code, stdout, _ := hardenctl(t, append(append([]string{"check", "--namespace", "k8s.io"}, host...), out)...); code != 0 {
		t.Errorf("check of the hardened CRI spec = %d: %s", code, stdout)
	}
	code, _, stderr = hardenctl(t, append(append([]string{"harden", "--namespace", "k8s.io", "--containerd-root", "/srv/containerd"}, host...), cri)...)
	if code == 0 || !strings.Contains(stderr, "mounts[/etc/resolv.conf].source") {
		t.Errorf("harden with another containerd root = %d: %s, want the CRI files refused", code, stderr)
	}
}
