package verify

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hardened-runtime/hardened/verify/signtest"
	"github.com/hardened-runtime/hardened/verify/verdict"
)

// BenchmarkVerify times a verification as the shim pays it, against a
// registry on loopback: cold (a new verifier, as each hardened-verify
// process is, with no cached verdict: registry reads and signature checks)
// and warm (the verdict cached on disk, read by a new verifier, and as the
// shim reads it itself before it would start hardened-verify); for a
// signature alone, and for a signature with SLSA provenance and a
// vulnerability scan required, with CEL conditions (attested/...).
// Targets: cold ≤ 50 ms (≤ 80 ms with attestations), warm ≤ 1 ms.
func BenchmarkVerify(b *testing.B) {
	b.Run("signature", func(b *testing.B) { benchmarkVerify(b, false) })
	b.Run("attested", func(b *testing.B) { benchmarkVerify(b, true) })
}

// benchAttested requires a signature, SLSA v1 provenance and a scan.
const benchAttested = `  default: [{type: reject}]
  scopes:
    REGISTRY/signed:
      - {type: sigstoreSigned, keyPath: KEYS/a.pub}
      - type: sigstoreAttested
        predicateType: slsaprovenance1
        conditions:
          - expression: predicate.runDetails.builder.id == "https://github.com/org/app/.github/workflows/build.yml@refs/heads/main"
          - expression: now - timestamp(predicate.runDetails.metadata.finishedOn) <= duration("720h")
      - type: sigstoreAttested
        predicateType: vuln
        conditions:
          - expression: now - timestamp(predicate.metadata.scanFinishedOn) <= duration("168h")
          - expression: predicate.scanner.result.Results.all(r, !has(r.Vulnerabilities) || r.Vulnerabilities.all(v, !(v.Severity in ["HIGH", "CRITICAL"])))
`

func benchmarkVerify(b *testing.B, attested bool) {
	ctx := context.Background()
	t := &testing.T{}
	e := newEnv(t, signtest.RegistryOptions{})
	e.t = t
	k, err := signtest.NewKey(signtest.ECDSAP256)
	if err != nil {
		b.Fatal(err)
	}
	k.WritePublic(e.keysDir + "/a.pub")
	repo, desc := e.push("signed/app", "v1")
	if err := signtest.SignClassic(ctx, repo, desc.Digest, repo.String(), k, remote.WithContext(ctx)); err != nil {
		b.Fatal(err)
	}
	if err := signtest.SignBundle(ctx, repo, desc, repo.String(), k); err != nil {
		b.Fatal(err)
	}
	section := trustA
	if attested {
		section = benchAttested
		recent := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
		for _, a := range []struct{ typ, pred string }{
			{signtest.SLSAProvenanceV1, strings.ReplaceAll(slsaV1Predicate, "BUILT", recent)},
			{signtest.VulnV1, strings.NewReplacer("SCANNED", recent, "SEVERITY", "LOW").Replace(vulnPredicate)},
		} {
			st, _ := signtest.AttestationStatement(signtest.InTotoStatementType, repo.String(), desc.Digest, a.typ, []byte(a.pred))
			if err := signtest.AttestBundle(ctx, repo, desc, st, k); err != nil {
				b.Fatal(err)
			}
		}
	}
	im := img(repo, "v1", desc)
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.verifier(section, "").Verify(ctx, im); err != nil {
				b.Fatal(err)
			}
		}
	})
	// What the shim pays on a miss: a hardened-verify process (its start
	// and the policy parse included) against the registry.
	b.Run("cold-process", func(b *testing.B) {
		bin := filepath.Join(b.TempDir(), "hardened-verify")
		if out, err := exec.Command("go", "build", "-o", bin, "../cmd/hardened-verify").CombinedOutput(); err != nil {
			b.Fatalf("build hardened-verify: %v\n%s", err, out)
		}
		policyFile := filepath.Join(b.TempDir(), "policy.yaml")
		text := strings.NewReplacer("KEYS", e.keysDir, "REGISTRY", e.host).Replace(section)
		os.WriteFile(policyFile, []byte(fmt.Sprintf("signatures:\n  registryConfigPath: %s\n  timeout: 2s\n%s", e.certs, text)), 0o644)
		b.ResetTimer()
		for b.Loop() {
			out, err := exec.Command(bin, "--policy", policyFile, "--image", im.Name, "--digest", im.Digest.String()).CombinedOutput()
			if err != nil {
				b.Fatalf("hardened-verify: %v\n%s", err, out)
			}
		}
	})
	cache := b.TempDir()
	first := e.verifier(section, cache)
	v, err := first.Verify(ctx, im)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("warm", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.verifier(section, cache).Verify(ctx, im); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("warm-shim", func(b *testing.B) {
		c := verdict.Cache{Dir: cache}
		for b.Loop() {
			if _, ok := c.Load(v.PolicyHash, v.Image, v.Digest, v.PlatformDigest); !ok {
				b.Fatal("no cached verdict")
			}
		}
	})
}
