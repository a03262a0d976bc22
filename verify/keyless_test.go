package verify

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hardened-runtime/hardened/verify/signtest"
)

const (
	testIssuer   = "https://issuer.example.com"
	testIdentity = "builder@example.com"
)

// keylessPolicy trusts builder@example.com of testIssuer, through a
// trusted root (REGISTRY/root) or containers/image's caPath and Rekor key
// (REGISTRY/capath), and requires a keyless SLSA attestation too
// (REGISTRY/attested).
const keylessPolicy = `  default: [{type: reject}]
  scopes:
    REGISTRY/root:
      - type: sigstoreSigned
        fulcio: {oidcIssuer: "https://issuer.example.com", subjectEmail: builder@example.com}
        trustedRootPath: KEYS/trusted_root.json
    REGISTRY/capath:
      - type: sigstoreSigned
        fulcio: {caPath: KEYS/fulcio.pem, oidcIssuer: "https://issuer.example.com", subjectEmail: builder@example.com}
        rekorPublicKeyPath: KEYS/rekor.pub
    REGISTRY/attested:
      - type: sigstoreSigned
        fulcio: {oidcIssuer: "https://issuer.example.com", subjectEmail: builder@example.com}
        trustedRootPath: KEYS/trusted_root.json
      - type: sigstoreAttested
        predicateType: slsaprovenance1
        conditions: [{expression: 'predicate.runDetails.builder.id.startsWith("https://github.com/org/")'}]
`

func writeKeyless(t *testing.T, k *signtest.Keyless, dir string) {
	t.Helper()
	tr, err := k.TrustedRootJSON()
	if err != nil {
		t.Fatal(err)
	}
	ca, err := k.CAPEM()
	if err != nil {
		t.Fatal(err)
	}
	rekor, err := k.RekorPublicKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"trusted_root.json": tr, "fulcio.pem": ca, "rekor.pub": rekor} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestVerifyKeyless: keyless signatures in cosign v3's bundle format and
// cosign v2's .sig layers (certificate, chain and Rekor bundle
// annotations), checked offline against a trusted root or a CA and Rekor
// key: accepted for the identity required, refused for another identity,
// another issuer, or another Sigstore deployment.
func TestVerifyKeyless(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, signtest.RegistryOptions{})
	sigstore, err := signtest.NewKeyless()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := signtest.NewKeyless()
	writeKeyless(t, sigstore, e.keysDir)
	v := e.verifier(keylessPolicy, "")

	for _, scope := range []string{"root", "capath"} {
		for _, format := range []string{"v2", "v3"} {
			t.Run(scope+"/"+format, func(t *testing.T) {
				sign := func(tag string, k *signtest.Keyless, identity, issuer string) Image {
					t.Helper()
					repo, desc := e.push(scope+"/"+format, tag)
					var err error
					if format == "v2" {
						err = k.SignClassic(ctx, repo, desc.Digest, repo.String(), identity, issuer)
					} else {
						err = k.SignBundle(ctx, repo, desc, identity, issuer)
					}
					if err != nil {
						t.Fatal(err)
					}
					return img(repo, tag, desc)
				}
				res, err := v.Verify(ctx, sign("good", sigstore, testIdentity, testIssuer))
				if err != nil {
					t.Fatalf("keyless signature of the identity: %v", err)
				}
				if got := res.Requirements[0].Key; !strings.HasPrefix(got, "keyless builder@example.com (https://issuer.example.com) via ") {
					t.Errorf("verdict key = %q", got)
				}
				for _, tc := range []struct {
					name, identity, issuer string
					k                      *signtest.Keyless
					want                   string
				}{
					{"other identity", "mallory@example.com", testIssuer, sigstore, `expected SAN value "builder@example.com", got "mallory@example.com"`},
					{"other issuer", testIdentity, "https://other.example.com", sigstore, `got "https://other.example.com"`},
					{"other deployment", testIdentity, testIssuer, other, "keyless signature not acceptable"},
				} {
					_, err := v.Verify(ctx, sign(strings.ReplaceAll(tc.name, " ", "-"), tc.k, tc.identity, tc.issuer))
					t.Logf("%s: %v", tc.name, err)
					if err == nil || !IsRefused(err) || !strings.Contains(err.Error(), tc.want) {
						t.Errorf("%s: %v, want refused with %q", tc.name, err, tc.want)
					} else if strings.Contains(err.Error(), "\n") {
						t.Errorf("%s: refusal not one line", tc.name)
					}
				}
			})
		}
	}

	t.Run("attestation", func(t *testing.T) {
		repo, desc := e.push("attested/app", "v1")
		if err := sigstore.SignBundle(ctx, repo, desc, testIdentity, testIssuer); err != nil {
			t.Fatal(err)
		}
		im := img(repo, "v1", desc)
		if _, err := v.Verify(ctx, im); err == nil || !strings.Contains(err.Error(), "no attestation of predicate type https://slsa.dev/provenance/v1 signed by a trusted key (keyless builder@example.com (https://issuer.example.com))") {
			t.Errorf("without the attestation: %v", err)
		}
		st, _ := signtest.AttestationStatement(signtest.InTotoStatementType, repo.String(), desc.Digest, signtest.SLSAProvenanceV1,
			[]byte(`{"runDetails":{"builder":{"id":"https://github.com/org/app/.github/workflows/build.yml@refs/heads/main"}}}`))
		b, err := sigstore.BundleJSON(st, testIdentity, testIssuer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := signtest.PushBundle(ctx, repo, desc, b, signtest.SLSAProvenanceV1); err != nil {
			t.Fatal(err)
		}
		res, err := v.Verify(ctx, im)
		if err != nil {
			t.Fatalf("keyless signature and attestation: %v", err)
		}
		t.Logf("accepted: %s", res.Summary())
	})
}
