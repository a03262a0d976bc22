package conditions

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hardened-runtime/hardened/policy"
)

var now = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func statement(t *testing.T, predicateType, predicate string) map[string]any {
	t.Helper()
	var st map[string]any
	text := `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"r.io/app","digest":{"sha256":"ab"}}],"predicateType":"` + predicateType + `","predicate":` + predicate + `}`
	if err := json.Unmarshal([]byte(text), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// SLSA provenance v1 as GitHub's generator writes it.
const slsaV1 = `{"buildDefinition":{"buildType":"https://actions.github.io/buildtypes/workflow/v1",
  "externalParameters":{"workflow":{"ref":"refs/heads/main","repository":"https://github.com/org/app","path":".github/workflows/build.yml"}}},
 "runDetails":{"builder":{"id":"https://github.com/org/app/.github/workflows/build.yml@refs/heads/main"},
  "metadata":{"invocationId":"1","startedOn":"2026-12-01T10:00:00Z","finishedOn":"2026-12-01T10:05:00Z"}}}`

// SLSA provenance v0.2.
const slsaV02 = `{"builder":{"id":"https://ci.example.com/builder@v1"},"buildType":"https://example.com/build/v1",
 "invocation":{"configSource":{"uri":"git+https://git.example.com/team/app@refs/heads/main","entryPoint":"build.yml"}},
 "metadata":{"buildStartedOn":"2026-11-01T10:00:00Z","buildFinishedOn":"2026-11-01T10:05:00Z"}}`

// A cosign vuln/v1 predicate with Trivy's report.
const vuln = `{"invocation":{"uri":"","event_id":"","builder.id":""},
 "scanner":{"uri":"pkg:github/aquasecurity/trivy@v0.57.0","version":"0.57.0","db":{"uri":"","version":""},
  "result":{"Results":[{"Target":"app","Vulnerabilities":[{"VulnerabilityID":"CVE-2026-1","Severity":"MEDIUM"},{"VulnerabilityID":"CVE-2026-2","Severity":"HIGH"}]},{"Target":"os"}]}},
 "metadata":{"scanStartedOn":"2026-12-02T09:00:00Z","scanFinishedOn":"2026-12-02T09:01:00Z"}}`

const noHigh = `predicate.scanner.result.Results.all(r, !has(r.Vulnerabilities) || r.Vulnerabilities.all(v, !(v.Severity in ["HIGH", "CRITICAL"])))`

func TestConditions(t *testing.T) {
	for _, tc := range []struct {
		name, predicateType, predicate string
		conds                          []policy.Condition
		want                           string // "" holds
	}{
		{"builder id", "https://slsa.dev/provenance/v1", slsaV1, []policy.Condition{
			{Expression: `predicate.runDetails.builder.id == "https://github.com/org/app/.github/workflows/build.yml@refs/heads/main"`}}, ""},
		{"builder id differs", "https://slsa.dev/provenance/v1", slsaV1, []policy.Condition{
			{Expression: `predicate.runDetails.builder.id == "https://github.com/org/other/.github/workflows/build.yml@refs/heads/main"`}},
			`is false (seen: predicate.runDetails.builder.id = "https://github.com/org/app/.github/workflows/build.yml@refs/heads/main")`},
		{"source glob", "https://slsa.dev/provenance/v1", slsaV1, []policy.Condition{
			{Expression: `predicate.buildDefinition.externalParameters.workflow.repository.matchesGlob("https://github.com/org/*")`}}, ""},
		{"source glob v0.2", "https://slsa.dev/provenance/v0.2", slsaV02, []policy.Condition{
			{Expression: `predicate.invocation.configSource.uri.matchesGlob("git+https://github.com/org/*")`, Message: "built from the org's repositories"}},
			`condition "built from the org's repositories" (predicate.invocation.configSource.uri.matchesGlob("git+https://github.com/org/*")) is false (seen: predicate.invocation.configSource.uri = "git+https://git.example.com/team/app@refs/heads/main")`},
		{"built within 30 days", "https://slsa.dev/provenance/v1", slsaV1, []policy.Condition{
			{Expression: `now - timestamp(predicate.runDetails.metadata.finishedOn) <= duration("720h")`}}, ""},
		{"built too long ago", "https://slsa.dev/provenance/v0.2", slsaV02, []policy.Condition{
			{Expression: `now - timestamp(predicate.metadata.buildFinishedOn) <= duration("720h")`}},
			`(seen: predicate.metadata.buildFinishedOn = "2026-11-01T10:05:00Z")`},
		{"scanned within a week", "https://cosign.sigstore.dev/attestation/vuln/v1", vuln, []policy.Condition{
			{Expression: `now - timestamp(predicate.metadata.scanFinishedOn) <= duration("168h")`}}, ""},
		{"no high finding", "https://cosign.sigstore.dev/attestation/vuln/v1", vuln, []policy.Condition{
			{Expression: noHigh, MessageExpression: `"findings of severity HIGH or more: " + predicate.scanner.result.Results.map(r, has(r.Vulnerabilities) ? r.Vulnerabilities.filter(v, v.Severity in ["HIGH", "CRITICAL"]).map(v, v.VulnerabilityID) : []).flatten().join(", ")`}},
			`is false: findings of severity HIGH or more: CVE-2026-2`},
		{"missing field", "https://slsa.dev/provenance/v1", slsaV1, []policy.Condition{
			{Expression: `predicate.builder.id == "x"`}}, `cannot be evaluated: no such key: builder (seen: predicate.builder.id absent)`},
		{"predicate type and subject", "https://slsa.dev/provenance/v1", slsaV1, []policy.Condition{
			{Expression: `predicateType == "https://slsa.dev/provenance/v1" && subject.exists(s, s.digest.sha256 == "ab") && image == "r.io/app:v1"`}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := Compile("signatures.default[0]", tc.conds)
			if err != nil {
				t.Fatal(err)
			}
			err = set.Check(Input{Statement: statement(t, tc.predicateType, tc.predicate), Image: "r.io/app:v1", Digest: "sha256:ab", Now: now})
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Check = %v, want it to hold", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Check = %v, want %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("not one line: %q", err)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	for expr, want := range map[string]string{
		`predicate.builder.id ==`:    `signatures.default[0].conditions[0]: expression "predicate.builder.id ==": ERROR`,
		`predicate.builder.id`:       "is of type dyn, want bool",
		`"text"`:                     "is of type string, want bool",
		`nosuchvar == 1`:             "undeclared reference to 'nosuchvar'",
		`predicate.x.matchesGlob(1)`: "found no matching overload for 'matchesGlob'",
	} {
		_, err := Compile("signatures.default[0]", []policy.Condition{{Expression: expr}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Compile(%s) = %v, want %q", expr, err, want)
		}
	}
	_, err := Compile("f", []policy.Condition{{Expression: "true", MessageExpression: "1"}})
	if err == nil || !strings.Contains(err.Error(), "messageExpression \"1\" is of type int, want string") {
		t.Errorf("messageExpression of type int: %v", err)
	}
}

// TestCostLimit: an expression that would run for long is stopped.
func TestCostLimit(t *testing.T) {
	set, err := Compile("f", []policy.Condition{{Expression: `lists.range(2000).all(i, lists.range(2000).all(j, i + j >= 0))`}})
	if err != nil {
		t.Fatal(err)
	}
	err = set.Check(Input{Statement: map[string]any{}, Now: now})
	if err == nil || !strings.Contains(err.Error(), "cost limit") {
		t.Errorf("Check = %v, want the cost limit", err)
	}
}

func TestMatchGlob(t *testing.T) {
	for _, tc := range []struct {
		p, v string
		ok   bool
	}{
		{"https://github.com/org/*", "https://github.com/org/app", true},
		{"https://github.com/org/*", "https://github.com/org/app/sub", true},
		{"https://github.com/org/*", "https://github.com/orgx/app", false},
		{"*-dev", "feature-dev", true},
		{"v?.*", "v1.2", true},
		{"v?.*", "v10.2", false},
		{"", "", true},
		{"*", "", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
	} {
		if got := MatchGlob(tc.p, tc.v); got != tc.ok {
			t.Errorf("MatchGlob(%q, %q) = %v, want %v", tc.p, tc.v, got, tc.ok)
		}
	}
}
