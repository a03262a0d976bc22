package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hardened-runtime/hardened/e2e"
	"github.com/hardened-runtime/hardened/integration/harness"
)

// Env enables TestConformance (`make conformance` sets it): it takes an
// hour or more, and is never part of `make test`.
const Env = "HARDENED_CONFORMANCE"

// Optional environment: CONFORMANCE_RUNS (comma-separated run names, all
// by default), CRITEST_FOCUS and CRITEST_SKIP (ginkgo regular
// expressions), CRITEST (the critest binary).
const (
	runsEnv    = "CONFORMANCE_RUNS"
	focusEnv   = "CRITEST_FOCUS"
	skipEnv    = "CRITEST_SKIP"
	critestEnv = "CRITEST"
)

// critestSeed fixes the order of the specs, the same for every run.
const critestSeed = "20260101"

// run is one pass of critest against a fresh private containerd.
type run struct {
	Name    string `json:"name"`
	Handler string `json:"handler"`
	// Policy describes the hardened handler's policy ("" for runc).
	Policy string `json:"policy,omitempty"`

	policyPath string
	// configPath gives the handler ConfigPath options instead of none.
	configPath bool
	Specs      map[string]spec `json:"specs"`
}

// spec is one critest spec's outcome.
type spec struct {
	State   string `json:"state"` // passed, failed, skipped, pending, ...
	Failure string `json:"failure,omitempty"`
}

// TestConformance runs Kubernetes' CRI validation suite, critest, four
// times, each against a fresh private containerd (integration/harness)
// with pods on a CNI bridge in this run's own network namespace and the
// images the suite pulls served by a loopback registry: with the runc
// handler, with the hardened handler under the shipped policy
// (deploy/policy.yaml) configured as deploy/containerd-hardened.toml does,
// with hardened under that policy in audit mode, and with the policy given
// as the handler's ConfigPath option.
// It writes results/conformance.md and .json: the counts per run, every
// spec whose outcome differs from runc's and why.
func TestConformance(t *testing.T) {
	if os.Getenv(Env) == "" {
		t.Skipf("skipping: set %s=1 or run `make conformance`", Env)
	}
	harness.Require(t)
	e2e.RequirePrivateNetwork(t)
	critest := os.Getenv(critestEnv)
	if critest == "" {
		critest = filepath.Join(harness.RepoRoot(), ".tools", "cri-tools", "bin", "critest")
	}
	if _, err := os.Stat(critest); err != nil {
		t.Fatalf("critest: %v (run scripts/cri-tools.sh; make conformance does)", err)
	}
	resultsDir := filepath.Join(harness.RepoRoot(), "e2e", "conformance", "results")
	logDir := filepath.Join(resultsDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}

	images, err := e2e.Images(e2e.BuildPrograms(t))
	if err != nil {
		t.Fatal(err)
	}
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	e2e.Push(t, reg, images)
	shimDir, err := harness.BuildShimDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(harness.RemoveShim)

	shipped := filepath.Join(harness.RepoRoot(), "deploy", "policy.yaml")
	data, err := os.ReadFile(shipped)
	if err != nil {
		t.Fatal(err)
	}
	audit := bytes.Replace(data, []byte("\nmode: enforce\n"), []byte("\nmode: audit\n"), 1)
	if bytes.Equal(audit, data) {
		t.Fatalf("%s has no top-level `mode: enforce` to turn into audit", shipped)
	}
	auditPath := filepath.Join(t.TempDir(), "policy-audit.yaml")
	if err := os.WriteFile(auditPath, audit, 0o644); err != nil {
		t.Fatal(err)
	}
	// hardened as deploy/containerd-hardened.toml configures it (no
	// options: the shim reads the policy at its path, $HARDENED_POLICY
	// here); once more with the policy given as ConfigPath.
	runs := []*run{
		{Name: "runc", Handler: "runc"},
		{Name: "hardened", Handler: "hardened", Policy: "deploy/policy.yaml (enforce, level restricted)", policyPath: shipped},
		{Name: "hardened-audit", Handler: "hardened", Policy: "deploy/policy.yaml with mode: audit", policyPath: auditPath},
		{Name: "hardened-configpath", Handler: "hardened", Policy: "deploy/policy.yaml, given as ConfigPath", policyPath: shipped, configPath: true},
	}
	if only := os.Getenv(runsEnv); only != "" {
		runs = slices.DeleteFunc(runs, func(r *run) bool { return !slices.Contains(strings.Split(only, ","), r.Name) })
	}
	for _, r := range runs {
		t.Run(r.Name, func(t *testing.T) {
			c := harness.Start(t, harness.Options{PolicyPath: r.policyPath, NoConfigPath: !r.configPath, ShimDir: shimDir, BeforeStart: e2e.CNIFor, SandboxImage: e2e.SandboxImage})
			// A user-namespaced pod's processes (host uids of their own
			// range) must reach their bundle below the state directory.
			for _, d := range []string{c.Dir, c.State} {
				if err := os.Chmod(d, 0o711); err != nil {
					t.Fatal(err)
				}
			}
			e2e.Mirror(t, c, reg.Addr())
			report := filepath.Join(t.TempDir(), "report.json")
			logPath := filepath.Join(logDir, r.Name+".log")
			args := []string{
				"--runtime-endpoint", "unix://" + c.Address, "--image-endpoint", "unix://" + c.Address,
				"--runtime-handler", r.Handler, "--config", "/dev/null",
				"--ginkgo.no-color", "--ginkgo.seed", critestSeed, "--ginkgo.timeout", "4h",
				"--ginkgo.json-report", report,
			}
			if f := os.Getenv(focusEnv); f != "" {
				args = append(args, "--ginkgo.focus", f)
			}
			if s := os.Getenv(skipEnv); s != "" {
				args = append(args, "--ginkgo.skip", s)
			}
			begin := time.Now()
			logFile, err := os.Create(logPath)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(t.Context(), critest, args...)
			cmd.Stdout, cmd.Stderr = logFile, logFile
			runErr := cmd.Run()
			logFile.Close()
			t.Logf("critest --runtime-handler %s: %v in %v (log %s)", r.Handler, runErr, time.Since(begin).Round(time.Second), logPath)
			if r.Specs, err = readReport(report); err != nil {
				t.Fatalf("critest report: %v (critest: %v; see %s)", err, runErr, logPath)
			}
			if err := c.Stop(); err != nil {
				t.Errorf("stop containerd: %v", err)
			}
		})
	}
	md, js := summarize(runs)
	if err := os.WriteFile(filepath.Join(resultsDir, "conformance.md"), []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(resultsDir, "conformance.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Println(md)
}

// readReport reads ginkgo's JSON report (--ginkgo.json-report): the
// outcome of every It, by its full text.
func readReport(path string) (map[string]spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var reports []struct {
		SpecReports []struct {
			ContainerHierarchyTexts []string
			LeafNodeText            string
			LeafNodeType            string
			State                   string
			Failure                 struct{ Message string }
		}
	}
	if err := json.Unmarshal(data, &reports); err != nil {
		return nil, err
	}
	out := map[string]spec{}
	for _, r := range reports {
		for _, s := range r.SpecReports {
			if s.LeafNodeType != "It" {
				continue
			}
			name := strings.Join(append(slices.Clone(s.ContainerHierarchyTexts), s.LeafNodeText), " ")
			out[name] = spec{State: s.State, Failure: oneLine(s.Failure.Message)}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s lists no specs", path)
	}
	return out, nil
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}

// refusal finds the engine's refusal in a failure message: "refused by
// level L: rule R: field=value: ...".
var refusal = regexp.MustCompile(`refused by level (\S+): rule (\S+): ([^:;=]+)`)

// byDesign are the specs that fail under the hardened handler without a
// refusal, because a rule changes what the spec checks (the container
// runs, differently). Each names the rule and why.
var byDesign = []struct {
	spec         *regexp.Regexp
	rule, reason string
}{
	{regexp.MustCompile(`should allow privilege escalation when false`), "no-new-privileges",
		"noNewPrivileges is forced on: the set-uid binary keeps the caller's uid"},
	{regexp.MustCompile(`RunAsUser|RunAsUserName|RunAsGroup|runAsUser`), "user",
		"a root user or group becomes the level's (65534)"},
	{regexp.MustCompile(`ReadOnlyRootfs`), "rootfs",
		"the root filesystem is read-only whatever the container asks"},
	{regexp.MustCompile(`should support nil profile, which is unconfined|should support seccomp unconfined on the container`), "seccomp",
		"an unconfined (or absent) seccomp profile gets the level's RuntimeDefault"},
}

// containerdLimits are failures that are neither hardened's nor this
// environment's, but containerd's, and their reason.
var containerdLimits = []struct {
	failure *regexp.Regexp
	reason  string
}{
	{regexp.MustCompile(`can't unmarshal type \\?"runtimeoptions.v1.Options\\?" to output \\?"containerd.runc.v1.Options`),
		"containerd v2.4.2 converts a non-runc runtime's options (here ConfigPath) into runc's type for a user-namespaced pod, and fails; the shipped drop-in has no options"},
}

func classify(name string, s spec) (rule, why string) {
	if m := refusal.FindStringSubmatch(s.Failure); m != nil {
		return m[2], "refused: " + strings.TrimSpace(m[3])
	}
	for _, c := range containerdLimits {
		if c.failure.MatchString(s.Failure) {
			return "(containerd)", c.reason
		}
	}
	for _, d := range byDesign {
		if d.spec.MatchString(name) {
			return d.rule, d.reason
		}
	}
	return "", ""
}

// summarize renders the runs as Markdown and JSON.
func summarize(runs []*run) (string, []byte) {
	var b strings.Builder
	fmt.Fprintf(&b, "critest (cri-tools v1.37.0) against containerd v2.4.2 + runc v1.5.2, %s\n\n", time.Now().UTC().Format("2006-01-02"))
	b.WriteString("| run | handler | policy | specs | passed | failed | skipped |\n| --- | --- | --- | ---: | ---: | ---: | ---: |\n")
	count := func(r *run, state string) int {
		n := 0
		for _, s := range r.Specs {
			if s.State == state {
				n++
			}
		}
		return n
	}
	byName := map[string]*run{}
	for _, r := range runs {
		byName[r.Name] = r
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %d |\n", r.Name, r.Handler, r.Policy, len(r.Specs),
			count(r, "passed"), count(r, "failed"), count(r, "skipped"))
	}
	runc := byName["runc"]
	names := func(r *run) []string {
		var ns []string
		for n := range r.Specs {
			ns = append(ns, n)
		}
		sort.Strings(ns)
		return ns
	}
	for _, r := range runs {
		if r == runc || runc == nil {
			continue
		}
		fmt.Fprintf(&b, "\n**%s: specs whose outcome differs from runc's**\n\n", r.Name)
		b.WriteString("| spec | runc | " + r.Name + " | rule | why |\n| --- | --- | --- | --- | --- |\n")
		diff := 0
		for _, n := range names(r) {
			s, base := r.Specs[n], runc.Specs[n]
			if s.State == base.State {
				continue
			}
			diff++
			rule, why := "", ""
			if s.State == "failed" {
				rule, why = classify(n, s)
				if rule == "" {
					why = "NOT A DOCUMENTED REFUSAL: " + s.Failure
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", n, base.State, s.State, rule, strings.ReplaceAll(why, "|", "\\|"))
		}
		if diff == 0 {
			b.WriteString("| (none) | | | | |\n")
		}
	}
	for _, r := range runs {
		var failed []string
		for _, n := range names(r) {
			if s := r.Specs[n]; s.State == "failed" && (runc == nil || r == runc || runc.Specs[n].State == "failed") {
				if rule, why := classify(n, s); rule != "" {
					n += " (rule " + rule + ": " + why + ")"
				}
				failed = append(failed, n)
			}
		}
		what := "failed"
		if runc != nil && r != runc {
			what = "failed under runc too (this environment)"
		}
		if len(failed) > 0 {
			fmt.Fprintf(&b, "\n%s: %s: %s\n", r.Name, what, strings.Join(failed, "; "))
		}
	}
	js, _ := json.MarshalIndent(runs, "", "  ")
	return b.String(), js
}
