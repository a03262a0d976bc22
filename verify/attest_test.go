package verify

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hardened-runtime/hardened/verify/signtest"
)

// Predicates as builders and scanners write them; BUILT and SCANNED are
// replaced by times.
const (
	slsaV1Predicate = `{"buildDefinition":{"buildType":"https://actions.github.io/buildtypes/workflow/v1",
  "externalParameters":{"workflow":{"ref":"refs/heads/main","repository":"https://github.com/org/app","path":".github/workflows/build.yml"}}},
 "runDetails":{"builder":{"id":"https://github.com/org/app/.github/workflows/build.yml@refs/heads/main"},"metadata":{"startedOn":"BUILT","finishedOn":"BUILT"}}}`
	slsaV02Predicate = `{"builder":{"id":"https://ci.example.com/builder@v1"},"buildType":"https://example.com/build/v1",
 "invocation":{"configSource":{"uri":"git+https://github.com/org/app@refs/heads/main","entryPoint":"build.yml"}},
 "metadata":{"buildStartedOn":"BUILT","buildFinishedOn":"BUILT"}}`
	vulnPredicate = `{"invocation":{"uri":"","event_id":"","builder.id":""},
 "scanner":{"uri":"pkg:github/aquasecurity/trivy@v0.57.0","version":"0.57.0","db":{"uri":"","version":""},
  "result":{"Results":[{"Target":"app","Vulnerabilities":[{"VulnerabilityID":"CVE-2026-1","Severity":"SEVERITY"}]}]}},
 "metadata":{"scanStartedOn":"SCANNED","scanFinishedOn":"SCANNED"}}`
)

// attestPolicy requires a signature by a.pub, SLSA v1 provenance from the
// org's workflow built within 30 days, and a scan within 7 days with no
// finding of severity HIGH or more (by b.pub, the scanner's key).
const attestPolicy = `  default: [{type: reject}]
  scopes:
    REGISTRY/signed:
      - {type: sigstoreSigned, keyPath: KEYS/a.pub}
      - type: sigstoreAttested
        predicateType: slsaprovenance1
        conditions:
          - expression: predicate.runDetails.builder.id == "https://github.com/org/app/.github/workflows/build.yml@refs/heads/main"
          - expression: predicate.buildDefinition.externalParameters.workflow.repository.matchesGlob("https://github.com/org/*")
          - expression: now - timestamp(predicate.runDetails.metadata.finishedOn) <= duration("720h")
            message: built within 30 days
      - type: sigstoreAttested
        keyPath: KEYS/b.pub
        predicateType: https://cosign.sigstore.dev/attestation/vuln/v1
        conditions:
          - expression: now - timestamp(predicate.metadata.scanFinishedOn) <= duration("168h")
          - expression: predicate.scanner.result.Results.all(r, !has(r.Vulnerabilities) || r.Vulnerabilities.all(v, !(v.Severity in ["HIGH", "CRITICAL"])))
            messageExpression: '"findings: " + predicate.scanner.result.Results.map(r, r.Vulnerabilities.map(v, v.VulnerabilityID + " " + v.Severity)).flatten().join(", ")'
`

// attestFormat attests subject in one of cosign's formats.
type attestFormat struct {
	name          string
	statementType string
	attest        func(ctx context.Context, repo name.Repository, subject v1.Descriptor, statement []byte, k *signtest.Key) error
}

var attestFormats = []attestFormat{
	{"cosign-v2-att", signtest.InTotoStatementV01, func(ctx context.Context, repo name.Repository, subject v1.Descriptor, st []byte, k *signtest.Key) error {
		return signtest.AttestClassic(ctx, repo, subject.Digest, st, k)
	}},
	{"cosign-v3-bundle", signtest.InTotoStatementType, func(ctx context.Context, repo name.Repository, subject v1.Descriptor, st []byte, k *signtest.Key) error {
		return signtest.AttestBundle(ctx, repo, subject, st, k)
	}},
}

func TestVerifyAttestations(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()
	recent, old := now.Add(-48*time.Hour).Format(time.RFC3339), now.Add(-60*24*time.Hour).Format(time.RFC3339)
	for _, f := range attestFormats {
		t.Run(f.name, func(t *testing.T) {
			e := newEnv(t, signtest.RegistryOptions{})
			a := e.key(signtest.ECDSAP256, "a.pub")
			b := e.key(signtest.Ed25519, "b.pub")
			other := e.key(signtest.ECDSAP256, "")
			v := e.verifier(attestPolicy, "")
			// image pushes repo:tag, signs it with a.pub, and attests it
			// with the predicates given (type, predicate, key).
			type att struct {
				typ, predicate string
				k              *signtest.Key
			}
			image := func(tag string, atts ...att) Image {
				t.Helper()
				repo, desc := e.push("signed/app", tag)
				if err := signtest.SignClassic(ctx, repo, desc.Digest, repo.String(), a); err != nil {
					t.Fatal(err)
				}
				for _, at := range atts {
					st, err := signtest.AttestationStatement(f.statementType, repo.String(), desc.Digest, at.typ, []byte(at.predicate))
					if err != nil {
						t.Fatal(err)
					}
					if err := f.attest(ctx, repo, desc, st, at.k); err != nil {
						t.Fatal(err)
					}
				}
				return img(repo, tag, desc)
			}
			prov := func(built string) string { return strings.ReplaceAll(slsaV1Predicate, "BUILT", built) }
			scan := func(scanned, severity string) string {
				return strings.NewReplacer("SCANNED", scanned, "SEVERITY", severity).Replace(vulnPredicate)
			}
			good := []att{{signtest.SLSAProvenanceV1, prov(recent), a}, {signtest.VulnV1, scan(recent, "LOW"), b}}

			res, err := v.Verify(ctx, image("good", good...))
			if err != nil {
				t.Fatalf("every requirement holds: %v", err)
			}
			if len(res.Requirements) != 3 || res.Requirements[1].Identity != signtest.SLSAProvenanceV1 || !strings.HasSuffix(res.Requirements[2].Key, "b.pub") {
				t.Errorf("verdict = %+v", res.Requirements)
			}
			t.Logf("accepted: %s", res.Summary())

			for _, tc := range []struct {
				name string
				atts []att
				want []string
			}{
				{"no provenance", good[1:], []string{"no attestation of predicate type https://slsa.dev/provenance/v1 signed by a trusted key", "a.pub", "not acceptable: https://cosign.sigstore.dev/attestation/vuln/v1 by another key", "fix: attest this digest as signatures.scopes[", "(cosign attest --key KEY --type https://slsa.dev/provenance/v1)"}},
				{"provenance by another key", []att{{signtest.SLSAProvenanceV1, prov(recent), other}, good[1]}, []string{"no attestation of predicate type https://slsa.dev/provenance/v1", "not acceptable"}},
				{"scan by the image key", []att{good[0], {signtest.VulnV1, scan(recent, "LOW"), a}}, []string{"no attestation of predicate type https://cosign.sigstore.dev/attestation/vuln/v1 signed by a trusted key (keyPath " + e.keysDir + "/b.pub)"}},
				{"built too long ago", []att{{signtest.SLSAProvenanceV1, prov(old), a}, good[1]}, []string{`condition "built within 30 days"`, "is false (seen: predicate.runDetails.metadata.finishedOn = \"" + old + "\")"}},
				{"other builder", []att{{signtest.SLSAProvenanceV1, strings.Replace(prov(recent), "org/app/.github", "evil/app/.github", 1), a}, good[1]}, []string{`predicate.runDetails.builder.id = "https://github.com/evil/app/.github/workflows/build.yml@refs/heads/main"`}},
				{"high finding", []att{good[0], {signtest.VulnV1, scan(recent, "HIGH"), b}}, []string{"attestation https://cosign.sigstore.dev/attestation/vuln/v1", "is false: findings: CVE-2026-1 HIGH"}},
				{"old scan", []att{good[0], {signtest.VulnV1, scan(old, "LOW"), b}}, []string{`predicate.metadata.scanFinishedOn = "` + old + `"`}},
				{"SLSA v0.2 is not v1", []att{{signtest.SLSAProvenanceV02, strings.ReplaceAll(slsaV02Predicate, "BUILT", recent), a}, good[1]}, []string{"found other predicate types: https://slsa.dev/provenance/v0.2"}},
			} {
				im := image(strings.ReplaceAll(tc.name, " ", "-"), tc.atts...)
				_, err := v.Verify(ctx, im)
				if err == nil || !IsRefused(err) {
					t.Errorf("%s: %v, want refused", tc.name, err)
					continue
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: refusal %q does not say %q", tc.name, err, w)
					}
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("%s: refusal is not one line", tc.name)
				}
			}
		})
	}
}

// TestVerifyAttestationPredicateTypes: SLSA v0.2 and a custom URI, keys
// inherited from the scope's sigstoreSigned requirement, and a statement
// about another digest refused.
func TestVerifyAttestationPredicateTypes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, signtest.RegistryOptions{NoReferrers: true})
	a := e.key(signtest.ECDSAP384, "a.pub")
	v := e.verifier(`  default: [{type: reject}]
  scopes:
    REGISTRY/signed:
      - {type: sigstoreSigned, keyPath: KEYS/a.pub}
      - type: sigstoreAttested
        predicateType: slsaprovenance02
        conditions:
          - expression: predicate.invocation.configSource.uri.matchesGlob("git+https://github.com/org/*")
      - type: sigstoreAttested
        predicateType: https://example.com/attestation/tests/v1
        conditions: [{expression: 'predicate.passed == true && predicate.suite == "e2e"'}]
`, "")
	repo, desc := e.push("signed/app", "v1")
	signtest.SignBundle(ctx, repo, desc, "", a)
	v02 := strings.ReplaceAll(slsaV02Predicate, "BUILT", time.Now().UTC().Format(time.RFC3339))
	for _, at := range []struct{ typ, pred string }{{signtest.SLSAProvenanceV02, v02}, {"https://example.com/attestation/tests/v1", `{"passed": true, "suite": "e2e"}`}} {
		st, _ := signtest.AttestationStatement(signtest.InTotoStatementV01, repo.String(), desc.Digest, at.typ, []byte(at.pred))
		if err := signtest.AttestClassic(ctx, repo, desc.Digest, st, a); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := v.Verify(ctx, img(repo, "v1", desc)); err != nil {
		t.Fatalf("Verify = %v", err)
	} else {
		t.Logf("accepted: %s", res.Summary())
	}
	// A statement about another digest, stored under this digest's tag.
	repo2, desc2 := e.push("signed/other", "v1")
	signtest.SignBundle(ctx, repo2, desc2, "", a)
	st, _ := signtest.AttestationStatement(signtest.InTotoStatementV01, repo2.String(), desc.Digest, signtest.SLSAProvenanceV02, []byte(v02))
	signtest.AttestClassic(ctx, repo2, desc2.Digest, st, a)
	_, err := v.Verify(ctx, img(repo2, "v1", desc2))
	if err == nil || !strings.Contains(err.Error(), "statement does not name "+desc2.Digest.String()[:19]) {
		t.Errorf("statement about another digest: %v", err)
	}
}

// TestVerifyBadCondition: a condition that does not compile is the
// policy's error (hardened-verify exits 2), not a refusal of the image.
func TestVerifyBadCondition(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, signtest.RegistryOptions{})
	e.key(signtest.ECDSAP256, "a.pub")
	v := e.verifier(`  default: [{type: reject}]
  scopes:
    REGISTRY/signed:
      - {type: sigstoreSigned, keyPath: KEYS/a.pub}
      - {type: sigstoreAttested, predicateType: vuln, conditions: [{expression: 'predicate.x ==' }]}
`, "")
	repo, desc := e.push("signed/app", "v1")
	_, err := v.Verify(ctx, img(repo, "v1", desc))
	if err == nil || IsRefused(err) || !strings.Contains(err.Error(), `invalid node policy: signatures.scopes["`+e.host+`/signed"][1].conditions[0]: expression "predicate.x =="`) {
		t.Errorf("Verify = %v, want the policy's error", err)
	}
	if err := CompileConditions(v.sigs); err == nil {
		t.Error("CompileConditions accepted the condition")
	}
}
