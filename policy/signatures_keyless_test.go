package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSignaturesKeyless(t *testing.T) {
	dir := t.TempDir()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fulcio"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	caFile := filepath.Join(dir, "fulcio.pem")
	os.WriteFile(caFile, caPEM, 0o644)
	rekor := writeKey(t, dir, "rekor.pub", &k.PublicKey)
	root := filepath.Join(dir, "trusted_root.json")
	os.WriteFile(root, []byte(`{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "certificateAuthorities": [{}], "tlogs": [{}]}`), 0o644)

	p := mustParse(t, `
signatures:
  default: [{type: reject}]
  scopes:
    "r.io/a": [{type: sigstoreSigned, fulcio: {caPath: `+caFile+`, oidcIssuer: "https://issuer.example.com", subjectEmail: a@example.com}, rekorPublicKeyPath: `+rekor+`}]
    "r.io/b": [{type: sigstoreSigned, fulcio: {oidcIssuer: "https://token.actions.githubusercontent.com", subject: "https://github.com/org/app/.github/workflows/build.yml@refs/heads/main"}, trustedRootPath: `+root+`}]
`)
	a := p.Signatures.Scopes["r.io/a"][0].Keyless
	if a == nil || string(a.CAPEM) != string(caPEM) || len(a.RekorKeys) != 1 || a.Identity() != "a@example.com (https://issuer.example.com)" {
		t.Errorf("caPath keyless = %+v", a)
	}
	if b := p.Signatures.Scopes["r.io/b"][0].Keyless; b == nil || b.TrustedRoot == nil || b.Subject != "https://github.com/org/app/.github/workflows/build.yml@refs/heads/main" {
		t.Errorf("trusted root keyless = %+v", b)
	}
	h := p.Signatures.Hash
	os.WriteFile(root, []byte(`{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "certificateAuthorities": [{}], "timestampAuthorities": [{}]}`), 0o644)
	if p2, err := Parse([]byte(`
signatures:
  default: [{type: reject}]
  scopes:
    "r.io/a": [{type: sigstoreSigned, fulcio: {caPath: ` + caFile + `, oidcIssuer: "https://issuer.example.com", subjectEmail: a@example.com}, rekorPublicKeyPath: ` + rekor + `}]
    "r.io/b": [{type: sigstoreSigned, fulcio: {oidcIssuer: "https://token.actions.githubusercontent.com", subject: "https://github.com/org/app/.github/workflows/build.yml@refs/heads/main"}, trustedRootPath: ` + root + `}]
`)); err != nil || p2.Signatures.Hash == h {
		t.Errorf("the hash does not follow the trusted root: %v", err)
	}

	ful := `fulcio: {caPath: ` + caFile + `, oidcIssuer: "https://i.example.com", subjectEmail: a@example.com}`
	for text, want := range map[string]string{
		"{type: sigstoreSigned, fulcio: {caPath: " + caFile + ", subjectEmail: a@example.com}, rekorPublicKeyPath: " + rekor + "}": ".fulcio.oidcIssuer: missing",
		"{type: sigstoreSigned, fulcio: {caPath: " + caFile + ", oidcIssuer: issuer}, rekorPublicKeyPath: " + rekor + "}":          `"issuer" is not a URL`,
		"{type: sigstoreSigned, fulcio: {caPath: " + caFile + ", oidcIssuer: 'https://i'}, rekorPublicKeyPath: " + rekor + "}":     "subjectEmail or subject missing",
		"{type: sigstoreSigned, " + ful + "}": "fulcio needs rekorPublicKeyPath",
		"{type: sigstoreSigned, fulcio: {oidcIssuer: 'https://i', subjectEmail: a@b}, rekorPublicKeyPath: " + rekor + "}":              "caPath or caData missing",
		"{type: sigstoreSigned, fulcio: {caData: 'x', oidcIssuer: 'https://i', subjectEmail: a@b}, rekorPublicKeyPath: " + rekor + "}": "fulcio CA: not PEM certificates",
		"{type: sigstoreSigned, " + ful + ", trustedRootPath: " + root + "}":                                                           "give trustedRootPath, or fulcio.caPath/caData with rekorPublicKey*, not both",
		"{type: sigstoreSigned, keyPath: " + rekor + ", rekorPublicKeyPath: " + rekor + "}":                                            "rekorPublicKey* and trustedRootPath belong to keyless requirements",
		"{type: sigstoreSigned, fulcio: {oidcIssuer: 'https://i', subjectEmail: a@b}, trustedRootPath: " + caFile + "}":                "not a Sigstore trusted root",
	} {
		_, err := Parse([]byte("signatures:\n  default: [" + text + "]\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Parse = %v, want %q", text, err, want)
		}
	}

	// containers/image's policy.json spelling.
	pj := filepath.Join(dir, "policy.json")
	os.WriteFile(pj, []byte(`{"default": [{"type": "reject"}], "transports": {"docker": {"r.io/a": [{"type": "sigstoreSigned",
  "fulcio": {"caData": "`+base64.StdEncoding.EncodeToString(caPEM)+`", "oidcIssuer": "https://issuer.example.com", "subjectEmail": "a@example.com"},
  "rekorPublicKeyPath": "rekor.pub", "signedIdentity": {"type": "matchRepository"}}]}}}`), 0o644)
	p = mustParse(t, "signatures:\n  policyFile: "+pj+"\n")
	if a := p.Signatures.Scopes["r.io/a"][0].Keyless; a == nil || string(a.CAPEM) != string(caPEM) || len(a.RekorKeys) != 1 || a.RekorKeys[0].Source != "rekorPublicKeyPath "+rekor {
		t.Errorf("policy.json keyless = %+v", a)
	}
}
