package policy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func pubPEM(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func writeKey(t *testing.T, dir, name string, pub crypto.PublicKey) string {
	t.Helper()
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, pubPEM(t, pub), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestSignaturesBuiltin(t *testing.T) {
	p := mustParse(t, "mode: enforce\n")
	s := p.Signatures
	if !s.Builtin || len(s.Default) != 1 || s.Default[0].Type != InsecureAcceptAnything || s.Hash == "" {
		t.Fatalf("no section: %+v, want the built-in insecureAcceptAnything", s)
	}
	if !Default().Signatures.Builtin {
		t.Error("Default() has no built-in signatures")
	}
	sc, err := s.Match("busybox")
	if err != nil || sc.Name != "default" || sc.Image != "docker.io/library/busybox" {
		t.Errorf("Match = %+v, %v", sc, err)
	}
}

func TestSignaturesScopes(t *testing.T) {
	dir := t.TempDir()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key := writeKey(t, dir, "cosign.pub", &ec.PublicKey)
	p := mustParse(t, fmt.Sprintf(`
signatures:
  default: [{type: reject}]
  timeout: 3s
  scopes:
    "registry.example.com": [{type: sigstoreSigned, keyPath: %[1]s}]
    "registry.example.com/team": [{type: insecureAcceptAnything}]
    "registry.example.com/team/app": [{type: reject}]
    "registry.example.com/team/app:dev": [{type: insecureAcceptAnything}]
    "*.example.org": [{type: sigstoreSigned, keyPath: %[1]s, signedIdentity: {type: matchExact}}]
    "docker.io/library/busybox": [{type: insecureAcceptAnything}]
    "docker.io/library/nginx": [{type: insecureAcceptAnything}]
    "registry.example.com/team/app@sha256:%[2]s": [{type: reject}]
    "127.0.0.1:5000/signed": [{type: sigstoreSigned, keyPaths: [%[1]s]}]
`, key, strings.Repeat("b", 64)))
	s := p.Signatures
	if s.Builtin || time.Duration(s.Timeout) != 3*time.Second || s.RegistryConfigPath != DefaultRegistryConfigPath || s.SignatureDir != DefaultSignatureDir {
		t.Errorf("section = %+v", s)
	}
	if k := s.Scopes["registry.example.com"][0].Keys; len(k) != 1 || k[0].Source != "keyPath "+key {
		t.Errorf("keys = %+v", k)
	}
	for _, tc := range []struct{ image, scope, typ string }{
		{"registry.example.com/other/x:1", "registry.example.com", SigstoreSigned},
		{"registry.example.com/team/x:1", "registry.example.com/team", InsecureAcceptAnything},
		{"registry.example.com/team/sub/x:1", "registry.example.com/team", InsecureAcceptAnything},
		{"registry.example.com/team/app:v1", "registry.example.com/team/app", Reject},
		{"registry.example.com/team/app@sha256:" + strings.Repeat("a", 64), "registry.example.com/team/app", Reject},
		{"registry.example.com/team/app:dev", "registry.example.com/team/app:dev", InsecureAcceptAnything},
		{"a.b.example.org/x:1", "*.example.org", SigstoreSigned},
		{"example.org/x:1", "default", Reject},
		{"busybox", "docker.io/library/busybox", InsecureAcceptAnything},
		{"docker.io/library/busybox:1.36", "docker.io/library/busybox", InsecureAcceptAnything},
		{"nginx:1.27", "docker.io/library/nginx", InsecureAcceptAnything},
		{"index.docker.io/library/nginx:1.27", "docker.io/library/nginx", InsecureAcceptAnything},
		{"REGISTRY.example.com/other/x:1", "registry.example.com", SigstoreSigned},
		{"127.0.0.1:5000/signed/busybox:v1", "127.0.0.1:5000/signed", SigstoreSigned},
		{"127.0.0.1:5000/other:v1", "default", Reject},
		{"quay.io/x/y:1", "default", Reject},
	} {
		sc, err := s.Match(tc.image)
		if err != nil {
			t.Errorf("Match(%s) = %v", tc.image, err)
			continue
		}
		if sc.Name != tc.scope || sc.Requirements[0].Type != tc.typ {
			t.Errorf("Match(%s) = scope %s %s, want %s %s", tc.image, sc.Name, sc.Requirements[0].Type, tc.scope, tc.typ)
		}
	}
	if _, err := s.Match("not a/reference"); err == nil {
		t.Error("Match of an invalid reference: no error")
	}
	if _, err := s.Match("sha256:" + strings.Repeat("a", 64)); err == nil || !strings.Contains(err.Error(), "an image id") {
		t.Errorf("Match of a bare image id = %v", err)
	}
	// A digest scope applies to the image that runs it, whatever tag it
	// was pulled by.
	bad := "sha256:" + strings.Repeat("b", 64)
	if sc, _ := s.Match("registry.example.com/team/app:dev", bad, ""); sc.Name != "registry.example.com/team/app@"+bad {
		t.Errorf("digest scope for a tagged name: %s", sc.Name)
	}
	if sc, _ := s.Match("registry.example.com/team/app:dev", "sha256:"+strings.Repeat("c", 64)); sc.Name != "registry.example.com/team/app:dev" {
		t.Errorf("another digest: %s", sc.Name)
	}
}

func TestSignaturesKeyTypes(t *testing.T) {
	dir := t.TempDir()
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	good := []string{
		writeKey(t, dir, "p256.pub", &p256.PublicKey),
		writeKey(t, dir, "p384.pub", &p384.PublicKey),
		writeKey(t, dir, "ed.pub", edPub),
		writeKey(t, dir, "rsa.pub", &rsa2048.PublicKey),
	}
	p := mustParse(t, fmt.Sprintf("signatures:\n  default: [{type: sigstoreSigned, keyPaths: [%s], keyData: %q}]\n",
		strings.Join(good, ", "), pubPEM(t, &p256.PublicKey)))
	var algs []string
	for _, k := range p.Signatures.Default[0].Keys {
		algs = append(algs, k.Algorithm)
	}
	if got := strings.Join(algs, ","); got != "ECDSA P-256,ECDSA P-384,Ed25519,RSA 2048,ECDSA P-256" {
		t.Errorf("keys = %s", got)
	}
	priv, _ := x509.MarshalPKCS8PrivateKey(p256)
	privFile := filepath.Join(dir, "cosign.key")
	os.WriteFile(privFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}), 0o600)
	unreadable := filepath.Join(dir, "missing.pub")
	for name, tc := range map[string]struct{ policy, want string }{
		"p-224":         {"keyPath: " + writeKey(t, dir, "p224.pub", &p224.PublicKey), "ECDSA curve 1.3.132.0.33 is not supported"},
		"short rsa":     {"keyPath: " + writeKey(t, dir, "rsa1024.pub", &rsa1024.PublicKey), "RSA key of 1024 bits is too short"},
		"private key":   {"keyPath: " + privFile, "this is a private key"},
		"missing key":   {"keyPath: " + unreadable, "signatures.default[0].keyPath: cannot read the key: open " + unreadable},
		"not pem":       {"keyData: hello", "signatures.default[0].keyData[0]: not a PEM public key"},
		"no keys":       {"", "sigstoreSigned needs keyPath"},
		"signedBy":      {"", ""},
		"bad identity":  {"keyPath: " + good[0] + ", signedIdentity: {type: remapIdentity}", "remapIdentity is not supported"},
		"unknown ident": {"keyPath: " + good[0] + ", signedIdentity: {type: nope}", `"nope" is not one of`},
		"exactRepo tag": {"keyPath: " + good[0] + ", signedIdentity: {type: exactRepository, dockerRepository: 'r.io/a:1'}", "is not a repository"},
		"fulcio":        {"keyPath: " + good[0] + ", fulcio: {}", "give either keys (keyPath, ...) or fulcio, not both"},
	} {
		typ := SigstoreSigned
		if name == "signedBy" {
			typ, tc.want = "signedBy", "signedBy (GPG simple signing) is not supported"
		}
		text := fmt.Sprintf("signatures:\n  default: [{type: %s", typ)
		if tc.policy != "" {
			text += ", " + tc.policy
		}
		text += "}]\n"
		_, err := Parse([]byte(text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Parse = %v, want %q", name, err, tc.want)
		}
	}
	for text, want := range map[string]string{
		"signatures: {}\n": "signatures.default: must list at least one requirement",
		"signatures:\n  default: [{type: reject}]\n  scopes: {'a/*': [{type: reject}]}\n":                     "only a leading *.",
		"signatures:\n  default: [{type: reject}]\n  scopes: {busybox: [{type: reject}]}\n":                   "would never match; for a Docker Hub image write docker.io/library/busybox",
		"signatures:\n  default: [{type: reject}]\n  scopes: {docker.io/busybox: [{type: reject}]}\n":         `write "docker.io/library/busybox"`,
		"signatures:\n  default: [{type: reject}]\n  scopes: {Registry.Example.com/prod: [{type: reject}]}\n": `registry hosts are lowercase: write "registry.example.com/prod"`,
		"signatures:\n  default: [{type: reject}]\n  scopes: {Registry.Example.com: [{type: reject}]}\n":      `registry hosts are lowercase`,
		"signatures:\n  default: [{type: reject}]\n  scopes: {'r.io/a': []}\n":                                `signatures.scopes["r.io/a"]: must list at least one requirement`,
		"signatures:\n  default: [{type: reject, keyPath: /x}]\n":                                             "reject takes no keys",
		"signatures:\n  default: [{type: reject}]\n  timeout: soon\n":                                         "not a duration",
		"signatures:\n  policyFile: /nonexistent/policy.json\n":                                               "signatures.policyFile: open /nonexistent/policy.json",
		"signatures:\n  default: [{}]\n":                                                                      "type: missing",
		"signatures:\n  default: [{type: insecureAcceptAnything}]\n  bogus: 1\n":                              "field bogus not found",
		"signatures:\n  default: [{type: insecureAcceptAnything}]\n  policyFile: /etc/containers/p.json":      "policyFile or default/scopes, not both",
	} {
		_, err := Parse([]byte(text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want %q", text, err, want)
		}
	}
}

func TestSignaturesHashFollowsKeys(t *testing.T) {
	dir := t.TempDir()
	a, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key := writeKey(t, dir, "cosign.pub", &a.PublicKey)
	text := "signatures:\n  default: [{type: sigstoreSigned, keyPath: " + key + "}]\nrules: []\n"
	h1 := mustParse(t, text).Signatures.Hash
	if h := mustParse(t, text+"defaultLevel: strict\n").Signatures.Hash; h != h1 {
		t.Error("the signatures hash changed with a level setting")
	}
	writeKey(t, dir, "cosign.pub", &b.PublicKey)
	if h := mustParse(t, text).Signatures.Hash; h == h1 {
		t.Error("the signatures hash did not change when the key file did")
	}
}

func TestSignaturesPolicyJSON(t *testing.T) {
	dir := t.TempDir()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	writeKey(t, dir, "team.pub", &ec.PublicKey)
	data := base64.StdEncoding.EncodeToString(pubPEM(t, &ec.PublicKey))
	pj := filepath.Join(dir, "policy.json")
	os.WriteFile(pj, []byte(`{
  "default": [{"type": "reject"}],
  "transports": {
    "docker": {
      "registry.example.com/team": [{"type": "sigstoreSigned", "keyPath": "team.pub", "signedIdentity": {"type": "matchRepository"}}],
      "registry.example.com/data": [{"type": "sigstoreSigned", "keyData": "`+data+`"}],
      "registry.example.com/open": [{"type": "insecureAcceptAnything"}]
    },
    "docker-daemon": {"": [{"type": "insecureAcceptAnything"}]}
  }
}`), 0o600)
	p := mustParse(t, "signatures:\n  policyFile: "+pj+"\n")
	s := p.Signatures
	if s.Default[0].Type != Reject || len(s.Scopes) != 3 {
		t.Fatalf("policy.json read as %+v", s)
	}
	if k := s.Scopes["registry.example.com/team"][0].Keys; len(k) != 1 || k[0].Source != "keyPath "+filepath.Join(dir, "team.pub") {
		t.Errorf("relative keyPath read as %+v", k)
	}
	if k := s.Scopes["registry.example.com/data"][0].Keys; len(k) != 1 {
		t.Errorf("keyData read as %+v", k)
	}
	// containers/image's default identity for sigstoreSigned.
	if id := s.Scopes["registry.example.com/data"][0].SignedIdentity; id == nil || id.Type != MatchRepoDigestOrExact {
		t.Errorf("default signedIdentity from policy.json = %+v, want matchRepoDigestOrExact", id)
	}
	for body, want := range map[string]string{
		`{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg"}]}`:                   "signedBy (GPG simple signing) is not supported",
		`{"default": [{"type": "sigstoreSigned", "fulcio": {"caPath": "/ca"}}]}`:                           `fulcio.oidcIssuer: missing`,
		`{"default": [{"type": "sigstoreSigned", "keyPath": "team.pub", "rekorPublicKeyPath": "/r.pub"}]}`: `rekorPublicKey* and trustedRootPath belong to keyless requirements`,
		`{"default": [{"type": "sigstoreSigned", "pki": {}}]}`:                                             `unknown field "pki"`,
		`{"default": []}`: "default: must list at least one requirement",
		`{"default": [{"type": "reject"}], "transports": {"docker": {"r.io": [{"type": "prSignedBaseLayer"}]}}}`: `"prSignedBaseLayer" is not supported`,
		`not json`: "not a policy.json",
		`{"default": [{"type": "reject", "Type": "insecureAcceptAnything"}]}`:                                                                         `key "Type" given twice`,
		`{"default": [{"type": "reject", "type": "insecureAcceptAnything"}]}`:                                                                         `key "type" given twice`,
		`{"default": [{"type": "reject"}], "Transports": {"docker": {"": [{"type": "insecureAcceptAnything"}]}}}`:                                     `key "Transports": write "transports"`,
		`{"default": [{"TYPE": "insecureAcceptAnything"}]}`:                                                                                           `key "TYPE": write "type"`,
		`{"default": [{"type": "sigstoreSigned", "keyType": "GPGKeys", "keyPath": "team.pub"}]}`:                                                      "keyType: not a field of sigstoreSigned",
		`{"default": [{"type": "sigstoreSigned", "keyPath": "team.pub", "keyPaths": ["team.pub"]}]}`:                                                  "exactly one of keyPath",
		`{"default": [{"type": "sigstoreSigned", "keyPath": "team.pub", "signedIdentity": {"type": "exactReference", "dockerReference": "r.io/a"}}]}`: "is not a reference like",
	} {
		os.WriteFile(pj, []byte(body), 0o600)
		_, err := Parse([]byte("signatures:\n  policyFile: " + pj + "\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("policy.json %s: Parse = %v, want %q", body, err, want)
		}
	}
}
