package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
)

func TestSignaturesAttested(t *testing.T) {
	dir := t.TempDir()
	a, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ka, kb := writeKey(t, dir, "a.pub", &a.PublicKey), writeKey(t, dir, "b.pub", &b.PublicKey)
	p := mustParse(t, `
signatures:
  default: [{type: reject}]
  scopes:
    "r.io/app":
      - {type: sigstoreSigned, keyPath: `+ka+`}
      - {type: sigstoreAttested, predicateType: slsaprovenance1, conditions: [{expression: "true"}]}
      - {type: sigstoreAttested, keyPath: `+kb+`, predicateType: vuln}
      - {type: sigstoreAttested, predicateType: "https://example.com/custom/v1"}
`)
	reqs := p.Signatures.Scopes["r.io/app"]
	for i, want := range []struct{ typ, key string }{{"https://slsa.dev/provenance/v1", ka}, {"https://cosign.sigstore.dev/attestation/vuln/v1", kb}, {"https://example.com/custom/v1", ka}} {
		r := reqs[i+1]
		if r.PredicateType != want.typ || len(r.Keys) != 1 || r.Keys[0].Source != "keyPath "+want.key {
			t.Errorf("requirement %d: predicate %q keys %+v, want %s by %s", i+1, r.PredicateType, r.Keys, want.typ, want.key)
		}
	}
	for text, want := range map[string]string{
		"[{type: sigstoreAttested, predicateType: vuln}]":                                                          "sigstoreAttested needs keyPath, keyPaths, keyData or keyDatas, fulcio, or a sigstoreSigned requirement in the same scope",
		"[{type: sigstoreAttested, keyPath: " + ka + ", predicateType: slsa}]":                                     `.predicateType: "slsa" is not a URI nor one of cosign's names`,
		"[{type: sigstoreAttested, keyPath: " + ka + ", predicateType: vuln, conditions: [{message: x}]}]":         ".conditions[0].expression: missing",
		"[{type: sigstoreSigned, keyPath: " + ka + ", predicateType: vuln}]":                                       "predicateType and conditions belong to type sigstoreAttested",
		"[{type: sigstoreAttested, keyPath: " + ka + ", predicateType: vuln, signedIdentity: {type: matchExact}}]": "signedIdentity: not checked for attestations",
	} {
		_, err := Parse([]byte("signatures:\n  default: " + text + "\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Parse = %v, want %q", text, err, want)
		}
	}
}
