package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hardened-runtime/hardened/verify/signtest"
)

// supplyPolicy: REGISTRY/pinned must be run by digest; REGISTRY/attested
// must be signed and carry SLSA v1 provenance from the org's workflow,
// built within 30 days, and a vulnerability scan of the last 7 days with no
// finding of severity HIGH or more; all by the trusted key.
const supplyPolicy = `  registryConfigPath: CERTS
  timeout: 3s
  default: [{type: reject}]
  scopes:
    "REGISTRY/pinned":
      - {type: sigstoreSigned, keyPath: KEY}
      - {type: pinned, requireDigest: true}
    "REGISTRY/tagged":
      - {type: sigstoreSigned, keyPath: KEY}
      - {type: pinned}
    "REGISTRY/attested":
      - {type: sigstoreSigned, keyPath: KEY}
      - type: sigstoreAttested
        predicateType: slsaprovenance1
        conditions:
          - expression: predicate.runDetails.builder.id == "https://github.com/org/app/.github/workflows/build.yml@refs/heads/main"
          - expression: now - timestamp(predicate.runDetails.metadata.finishedOn) <= duration("720h")
            message: built within 30 days
      - type: sigstoreAttested
        predicateType: vuln
        conditions:
          - expression: now - timestamp(predicate.metadata.scanFinishedOn) <= duration("168h")
          - expression: predicate.scanner.result.Results.all(r, !has(r.Vulnerabilities) || r.Vulnerabilities.all(v, !(v.Severity in ["HIGH", "CRITICAL"])))
            messageExpression: '"findings: " + predicate.scanner.result.Results.map(r, r.Vulnerabilities.map(v, v.VulnerabilityID + " " + v.Severity)).flatten().join(", ")'
    "REGISTRY/keyless":
      - type: sigstoreSigned
        fulcio: {oidcIssuer: "https://issuer.example.com", subjectEmail: builder@example.com}
        trustedRootPath: KEYDIR/trusted_root.json
    "hardened.test/pause": [{type: insecureAcceptAnything}]
`

// Predicates as GitHub's SLSA generator and cosign's vuln attestation
// (with a Trivy report) write them.
const (
	provenanceV1 = `{"buildDefinition":{"buildType":"https://actions.github.io/buildtypes/workflow/v1",
  "externalParameters":{"workflow":{"ref":"refs/heads/main","repository":"https://github.com/org/app","path":".github/workflows/build.yml"}}},
 "runDetails":{"builder":{"id":"https://github.com/org/app/.github/workflows/build.yml@refs/heads/main"},"metadata":{"startedOn":"BUILT","finishedOn":"BUILT"}}}`
	vulnScan = `{"invocation":{"uri":"","event_id":"","builder.id":""},
 "scanner":{"uri":"pkg:github/aquasecurity/trivy@v0.57.0","version":"0.57.0","db":{"uri":"","version":""},
  "result":{"Results":[{"Target":"app","Vulnerabilities":[{"VulnerabilityID":"CVE-2026-1","Severity":"SEVERITY"}]}]}},
 "metadata":{"scanStartedOn":"SCANNED","scanFinishedOn":"SCANNED"}}`
)

// TestSupplyChain: pinning, attestations in cosign v2's and v3's formats,
// and per-namespace sections, end to end through the real containerd:
// accepted when every requirement holds, refused at create with the named
// reason otherwise, and with the registry gone only a cached verdict runs.
func TestSupplyChain(t *testing.T) {
	require(t)
	e := newSignatureEnv(t)
	sigstore, err := signtest.NewKeyless()
	if err != nil {
		t.Fatal(err)
	}
	trustedRoot, err := sigstore.TrustedRootJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(e.keyFile), "trusted_root.json"), trustedRoot, 0o644); err != nil {
		t.Fatal(err)
	}
	e.setPolicy(t, supplyPolicy)
	ctx := context.Background()
	now := time.Now().UTC()
	recent, old := now.Add(-48*time.Hour).Format(time.RFC3339), now.Add(-60*24*time.Hour).Format(time.RFC3339)
	sign := func(ref, repo string, desc v1.Descriptor) {
		t.Helper()
		if err := signtest.SignClassic(ctx, e.reg.Repository(t, repo), desc.Digest, e.repoOf(t, ref), e.trusted); err != nil {
			t.Fatal(err)
		}
	}

	// Pinning: the same signed digest, by tag and by digest.
	pinnedTag, pinnedDesc := e.push(t, "pinned/app:v1")
	sign(pinnedTag, "pinned/app", pinnedDesc)
	pinnedDigest := e.repoOf(t, pinnedTag) + "@" + pinnedDesc.Digest.String()
	latest, latestDesc := e.push(t, "tagged/app:latest")
	sign(latest, "tagged/app", latestDesc)
	release, releaseDesc := e.push(t, "tagged/app:1.0")
	sign(release, "tagged/app", releaseDesc)

	// Attestations, in both of cosign's formats.
	type attestation struct{ typ, predicate string }
	prov := func(built string) attestation {
		return attestation{signtest.SLSAProvenanceV1, strings.ReplaceAll(provenanceV1, "BUILT", built)}
	}
	scan := func(scanned, severity string) attestation {
		return attestation{signtest.VulnV1, strings.NewReplacer("SCANNED", scanned, "SEVERITY", severity).Replace(vulnScan)}
	}
	attested := func(format, name string, atts ...attestation) string {
		t.Helper()
		ref, desc := e.push(t, "attested/"+format+":"+name)
		repo := e.reg.Repository(t, "attested/"+format)
		sign(ref, "attested/"+format, desc)
		for _, a := range atts {
			typ := signtest.InTotoStatementV01
			if format == "v3" {
				typ = signtest.InTotoStatementType
			}
			st, err := signtest.AttestationStatement(typ, e.repoOf(t, ref), desc.Digest, a.typ, []byte(a.predicate))
			if err != nil {
				t.Fatal(err)
			}
			if format == "v3" {
				err = signtest.AttestBundle(ctx, repo, desc, st, e.trusted)
			} else {
				err = signtest.AttestClassic(ctx, repo, desc.Digest, st, e.trusted)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		return ref
	}
	type attCase struct {
		name  string
		atts  []attestation
		wants []string // nil: accepted
	}
	attCases := []attCase{
		{"good", []attestation{prov(recent), scan(recent, "LOW")}, nil},
		{"no-provenance", []attestation{scan(recent, "LOW")}, []string{"no attestation of predicate type https://slsa.dev/provenance/v1 signed by a trusted key", "fix: attest this digest"}},
		{"high-finding", []attestation{prov(recent), scan(recent, "CRITICAL")}, []string{"attestation https://cosign.sigstore.dev/attestation/vuln/v1", "findings: CVE-2026-1 CRITICAL"}},
		{"old-build", []attestation{prov(old), scan(recent, "LOW")}, []string{`condition "built within 30 days"`, "finishedOn = \"" + old + "\""}},
	}
	refs := map[string]string{}
	for _, format := range []string{"v2", "v3"} {
		for _, c := range attCases {
			refs[format+"/"+c.name] = attested(format, c.name, c.atts...)
		}
	}
	neverVerified := attested("v2", "never-verified", prov(recent), scan(recent, "LOW"))

	// Keyless, in both formats, by the identity the scope trusts and by
	// another one.
	keyless := map[string]string{}
	for _, format := range []string{"v2", "v3"} {
		for _, who := range []string{"builder@example.com", "mallory@example.com"} {
			ref, desc := e.push(t, "keyless/"+format+":"+strings.Split(who, "@")[0])
			repo := e.reg.Repository(t, "keyless/"+format)
			var err error
			if format == "v2" {
				err = sigstore.SignClassic(ctx, repo, desc.Digest, e.repoOf(t, ref), who, "https://issuer.example.com")
			} else {
				err = sigstore.SignBundle(ctx, repo, desc, who, "https://issuer.example.com")
			}
			if err != nil {
				t.Fatal(err)
			}
			keyless[format+"/"+who] = ref
			e.c.Pull(t, e.c.Namespace, ref)
		}
	}

	for _, ref := range []string{pinnedTag, pinnedDigest, latest, release, neverVerified} {
		e.c.Pull(t, e.c.Namespace, ref)
	}
	for _, ref := range refs {
		e.c.Pull(t, e.c.Namespace, ref)
	}

	t.Run("pinning", func(t *testing.T) {
		e.refused(t, pinnedTag, e.reg.Addr()+"/pinned", "a reference by tag", "requires a digest (pinned: requireDigest)",
			"fix: create the container from its digest, "+pinnedDigest)
		if out, err := e.run(t, pinnedDigest); err != nil || out != rootInItsUserNamespace {
			t.Errorf("%s: %q %v, want it to run", pinnedDigest, out, err)
		}
		e.refused(t, latest, e.reg.Addr()+"/tagged", `tag "latest" moves`, "@"+latestDesc.Digest.String())
		if out, err := e.run(t, release); err != nil || out != rootInItsUserNamespace {
			t.Errorf("%s: %q %v, want it to run", release, out, err)
		}
	})

	t.Run("attestations", func(t *testing.T) {
		for _, format := range []string{"v2", "v3"} {
			for _, c := range attCases {
				ref := refs[format+"/"+c.name]
				if c.wants == nil {
					if out, err := e.run(t, ref); err != nil || out != rootInItsUserNamespace {
						t.Errorf("%s: %q %v, want it to run", ref, out, err)
					}
					continue
				}
				e.refused(t, ref, e.reg.Addr()+"/attested", c.wants...)
			}
		}
		if log := e.c.Log(); !strings.Contains(log, "sigstoreAttested by keyPath") {
			t.Error("the shim log does not record the attestations that were accepted")
		}
	})

	t.Run("keyless", func(t *testing.T) {
		for _, format := range []string{"v2", "v3"} {
			good := keyless[format+"/builder@example.com"]
			if out, err := e.run(t, good); err != nil || out != rootInItsUserNamespace {
				t.Errorf("%s: %q %v, want it to run", good, out, err)
			}
			e.refused(t, keyless[format+"/mallory@example.com"], e.reg.Addr()+"/keyless", `got "mallory@example.com"`,
				"fix: sign this digest keylessly as builder@example.com (https://issuer.example.com)")
		}
		if !strings.Contains(e.c.Log(), "sigstoreSigned by keyless builder@example.com (https://issuer.example.com) via trustedRootPath") {
			t.Error("the shim log does not record the keyless identity")
		}
	})

	t.Run("CRI", func(t *testing.T) {
		rs, _ := e.c.CRI(t)
		good, bad := refs["v3/good"], refs["v2/high-finding"]
		e.c.CRIPull(t, good)
		e.c.CRIPull(t, bad)
		podID, podCfg, err := podWith(t, rs, "attested", "hardened", false)
		if err != nil {
			t.Fatalf("RunPodSandbox: %v", err)
		}
		id, err := startImage(t, rs, podID, podCfg, "app", good, nil)
		if err != nil {
			t.Fatalf("attested image: %v", err)
		}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if out, err := rs.ExecSync(cctx, &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"id", "-u"}, Timeout: 30}); err != nil || strings.TrimSpace(string(out.Stdout)) != "65534" {
			t.Errorf("ExecSync: %q %v", out.GetStdout(), err)
		}
		_, err = startImage(t, rs, podID, podCfg, "bad", bad, nil)
		if err == nil || !strings.Contains(err.Error(), "findings: CVE-2026-1 CRITICAL") {
			t.Errorf("image with a critical finding under CRI: %v, want a refusal naming the finding", err)
		} else {
			t.Logf("refused: %v", err)
		}
	})

	t.Run("per-namespace sections", func(t *testing.T) {
		// A pod's Kubernetes namespace (a claim the shim checked against
		// containerd's records) picks its section; a container outside
		// Kubernetes gets the policy's own.
		open, _ := e.push(t, "open/app:v1") // unsigned
		e.c.Pull(t, e.c.Namespace, open)
		defer e.setPolicy(t, supplyPolicy) // the cached verdicts below are keyed by its hash
		e.setPolicy(t, supplyPolicy+`  namespaces:
    hostnet-nsopen:
      default: [{type: reject}]
      scopes:
        "hardened.test/pause": [{type: insecureAcceptAnything}]
        "REGISTRY/open": [{type: insecureAcceptAnything}]
    hostnet-nsclosed:
      default: [{type: reject}]
      scopes:
        "hardened.test/pause": [{type: insecureAcceptAnything}]
`)
		if _, err := e.run(t, open); err == nil || !strings.Contains(err.Error(), "reject") {
			t.Errorf("%s outside Kubernetes: %v, want the policy's own default (reject)", open, err)
		}
		rs, _ := e.c.CRI(t)
		e.c.CRIPull(t, open)
		podID, podCfg, err := podWith(t, rs, "nsopen", "hardened", false)
		if err != nil {
			t.Fatalf("RunPodSandbox in hostnet-nsopen: %v", err)
		}
		if _, err := startImage(t, rs, podID, podCfg, "app", open, nil); err != nil {
			t.Errorf("%s in namespace hostnet-nsopen, whose section accepts it: %v", open, err)
		}
		podID, podCfg, err = podWith(t, rs, "nsclosed", "hardened", false)
		if err != nil {
			t.Fatalf("RunPodSandbox in hostnet-nsclosed: %v", err)
		}
		_, err = startImage(t, rs, podID, podCfg, "app", open, nil)
		if err == nil || !strings.Contains(err.Error(), `namespace "hostnet-nsclosed"`) || !strings.Contains(err.Error(), `signatures.namespaces["hostnet-nsclosed"].scopes`) {
			t.Errorf("%s in namespace hostnet-nsclosed: %v, want a refusal by that namespace's section", open, err)
		} else {
			t.Logf("refused: %v", err)
		}
	})

	t.Run("registry gone", func(t *testing.T) {
		if err := e.reg.Stop(); err != nil {
			t.Fatal(err)
		}
		for _, ref := range []string{refs["v2/good"], refs["v3/good"], pinnedDigest} {
			if out, err := e.run(t, ref); err != nil || out != rootInItsUserNamespace {
				t.Errorf("%s with the registry gone: %q %v, want it to run from the cached verdict", ref, out, err)
			}
		}
		e.refused(t, neverVerified, e.reg.Addr()+"/attested", "connection refused")
	})

}
