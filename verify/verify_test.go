package verify

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/verify/signtest"
)

// env is a registry on loopback with containerd's hosts.toml for it.
type env struct {
	t       *testing.T
	srv     *httptest.Server
	host    string
	certs   string
	keysDir string
	sigDir  string
}

func newEnv(t *testing.T, opts signtest.RegistryOptions) *env {
	t.Helper()
	srv := httptest.NewServer(signtest.NewRegistry(opts))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs.d")
	os.MkdirAll(filepath.Join(certs, host), 0o755)
	os.WriteFile(filepath.Join(certs, host, "hosts.toml"), []byte(fmt.Sprintf("server = %q\n", srv.URL)), 0o644)
	os.MkdirAll(filepath.Join(dir, "keys"), 0o755)
	return &env{t: t, srv: srv, host: host, certs: certs, keysDir: filepath.Join(dir, "keys"), sigDir: filepath.Join(dir, "signatures")}
}

// push writes a random image to repo:tag and returns its descriptor.
func (e *env) push(repo, tag string) (name.Repository, v1.Descriptor) {
	e.t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := name.NewRepository(e.host+"/"+repo, name.Insecure)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := remote.Write(r.Tag(tag), img); err != nil {
		e.t.Fatal(err)
	}
	d, _ := img.Digest()
	m, _ := img.RawManifest()
	mt, _ := img.MediaType()
	return r, v1.Descriptor{Digest: d, Size: int64(len(m)), MediaType: mt}
}

func (e *env) key(alg, file string) *signtest.Key {
	e.t.Helper()
	k, err := signtest.NewKey(alg)
	if err != nil {
		e.t.Fatal(err)
	}
	if file != "" {
		if err := k.WritePublic(filepath.Join(e.keysDir, file)); err != nil {
			e.t.Fatal(err)
		}
	}
	return k
}

// verifier makes a verifier of a signatures section written in YAML, with
// KEYS, REGISTRY and CERTS replaced.
func (e *env) verifier(section, cacheDir string) *Verifier {
	e.t.Helper()
	section = strings.NewReplacer("KEYS", e.keysDir, "REGISTRY", e.host).Replace(section)
	text := fmt.Sprintf("signatures:\n  registryConfigPath: %s\n  signatureDir: %s\n  timeout: 2s\n%s", e.certs, e.sigDir, section)
	p, err := policy.Parse([]byte(text))
	if err != nil {
		e.t.Fatalf("policy: %v\n%s", err, text)
	}
	v, err := New(p.Signatures, cacheDir)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func img(r name.Repository, tag string, d v1.Descriptor) Image {
	return Image{Name: r.Tag(tag).String(), Digest: digest.Digest(d.Digest.String())}
}

const trustA = `  default: [{type: reject}]
  scopes:
    REGISTRY/signed: [{type: sigstoreSigned, keyPath: KEYS/a.pub}]
    REGISTRY/open: [{type: insecureAcceptAnything}]
`

func TestVerifyEveryKeyTypeBothFormats(t *testing.T) {
	ctx := context.Background()
	for _, alg := range signtest.Algorithms {
		for _, format := range []string{"classic", "bundle", "bundle-tag-schema"} {
			t.Run(alg+"/"+format, func(t *testing.T) {
				e := newEnv(t, signtest.RegistryOptions{NoReferrers: format == "bundle-tag-schema"})
				k := e.key(alg, "a.pub")
				repo, desc := e.push("signed/app", "v1")
				var err error
				if format == "classic" {
					err = signtest.SignClassic(ctx, repo, desc.Digest, repo.String(), k, remote.WithContext(ctx))
				} else {
					err = signtest.SignBundle(ctx, repo, desc, repo.String(), k)
				}
				if err != nil {
					t.Fatal(err)
				}
				v := e.verifier(trustA, "")
				res, err := v.Verify(ctx, img(repo, "v1", desc))
				if err != nil {
					t.Fatalf("Verify = %v", err)
				}
				r := res.Requirements[0]
				if res.Scope != e.host+"/signed" || r.Type != policy.SigstoreSigned || !strings.HasSuffix(r.Key, "a.pub") || r.Identity != repo.String() {
					t.Errorf("verdict = %+v", res)
				}
				wantWhere := "referrer "
				if format == "classic" {
					wantWhere = "tag sha256-"
				}
				if !strings.HasPrefix(r.Signature, wantWhere) {
					t.Errorf("signature found at %q, want %s…", r.Signature, wantWhere)
				}
			})
		}
	}
}

func TestVerifyRefusals(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, signtest.RegistryOptions{})
	trusted := e.key(signtest.ECDSAP256, "a.pub")
	untrusted := e.key(signtest.ECDSAP256, "")
	v := e.verifier(trustA, "")

	check := func(name string, im Image, want ...string) {
		t.Helper()
		_, err := v.Verify(ctx, im)
		if err == nil {
			t.Errorf("%s: accepted, want refused", name)
			return
		}
		if !IsRefused(err) {
			t.Errorf("%s: %v is not a refusal", name, err)
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") {
			t.Errorf("%s: refusal is not one line: %q", name, msg)
		}
		for _, w := range append([]string{"image " + im.Name, "scope "}, want...) {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: refusal %q does not say %q", name, msg, w)
			}
		}
	}

	repo, unsigned := e.push("signed/unsigned", "v1")
	check("unsigned", img(repo, "v1", unsigned), "no signature found", "sha256-",
		`; fix: sign this digest with a key signatures.scopes["`+e.host+`/signed"] trusts`)

	repo, byOther := e.push("signed/other-key", "v1")
	signtest.SignClassic(ctx, repo, byOther.Digest, repo.String(), untrusted)
	signtest.SignBundle(ctx, repo, byOther, repo.String(), untrusted)
	check("untrusted key", img(repo, "v1", byOther), "not signed by a trusted key", "a.pub")

	repo, wrong := e.push("signed/wrong-digest", "v1")
	_, other := e.push("signed/wrong-digest", "other")
	payload, _ := signtest.Payload(repo.String(), other.Digest)
	signtest.SignClassicPayload(ctx, repo, wrong.Digest, payload, trusted)
	check("classic payload names another digest", img(repo, "v1", wrong), "payload names digest "+other.Digest.String()[:19])

	repo, wrongB := e.push("signed/wrong-digest-bundle", "v1")
	_, otherB := e.push("signed/wrong-digest-bundle", "other")
	st, _ := signtest.Statement(otherB.Digest, repo.String())
	signtest.SignBundleStatement(ctx, repo, wrongB, st, trusted)
	check("bundle statement names another digest", img(repo, "v1", wrongB), "names another digest")

	// The tag moved to an unsigned manifest after the first was signed.
	repo, first := e.push("signed/moved", "v1")
	signtest.SignClassic(ctx, repo, first.Digest, repo.String(), trusted)
	if _, err := v.Verify(ctx, img(repo, "v1", first)); err != nil {
		t.Fatalf("before the move: %v", err)
	}
	_, moved := e.push("signed/moved", "v1")
	check("moved tag", img(repo, "v1", moved), "no signature found")

	repo, elsewhere := e.push("signed/identity", "v1")
	signtest.SignClassic(ctx, repo, elsewhere.Digest, e.host+"/signed/somewhere-else", trusted)
	check("signature for another repository", img(repo, "v1", elsewhere), "signed/somewhere-else, which matchRepository does not accept")

	repo, att := e.push("signed/attestation", "v1")
	stmt := fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":%q,"digest":{"sha256":%q}}],"predicateType":"https://spdx.dev/Document","predicate":{}}`, repo.String(), att.Digest.Hex)
	signtest.SignBundleStatement(ctx, repo, att, []byte(stmt), trusted)
	check("an attestation is not a signature", img(repo, "v1", att), "an attestation is not a signature")

	repo, rej := e.push("elsewhere/app", "v1")
	signtest.SignClassic(ctx, repo, rej.Digest, repo.String(), trusted)
	check("reject default", img(repo, "v1", rej), `scope "default"`, "reject", "fix: list the image's repository under signatures.scopes")

	if _, err := v.Verify(ctx, Image{Name: e.host + "/signed/x:v1", Digest: "sha256:nothex"}); err == nil || !strings.Contains(err.Error(), "no valid digest") {
		t.Errorf("bad digest: %v", err)
	}
	if _, err := v.Verify(ctx, Image{}); err == nil || !strings.Contains(err.Error(), "root filesystem") {
		t.Errorf("no image: %v", err)
	}
}

func TestVerifyScopes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, signtest.RegistryOptions{})
	e.key(signtest.ECDSAP256, "a.pub")
	v := e.verifier(trustA, "")
	repo, d := e.push("open/app", "v1")
	res, err := v.Verify(ctx, img(repo, "v1", d))
	if err != nil || res.Scope != e.host+"/open" || res.Requirements[0].Type != policy.InsecureAcceptAnything {
		t.Errorf("insecureAcceptAnything scope: %+v, %v", res, err)
	}
	builtin, _ := New(nil, "")
	res, err = builtin.Verify(ctx, img(repo, "v1", d))
	if err != nil || !res.Builtin || !strings.Contains(res.Summary(), "not verified") {
		t.Errorf("built-in: %+v, %v", res, err)
	}
}

func TestVerifyIdentities(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, signtest.RegistryOptions{})
	k := e.key(signtest.Ed25519, "a.pub")
	repo, d := e.push("signed/app", "v1")
	signtest.SignClassic(ctx, repo, d.Digest, e.host+"/mirror/app:v1", k)
	for _, tc := range []struct {
		identity string
		image    string
		ok       bool
	}{
		{"{type: matchRepository}", repo.Tag("v1").String(), false},
		{"{type: exactRepository, dockerRepository: REGISTRY/mirror/app}", repo.Tag("v1").String(), true},
		{"{type: exactReference, dockerReference: 'REGISTRY/mirror/app:v1'}", repo.Tag("v1").String(), true},
		{"{type: exactReference, dockerReference: 'REGISTRY/mirror/app:v2'}", repo.Tag("v1").String(), false},
		{"{type: matchExact}", repo.Tag("v1").String(), false},
	} {
		v := e.verifier("  default: [{type: sigstoreSigned, keyPath: KEYS/a.pub, signedIdentity: "+tc.identity+"}]\n", "")
		_, err := v.Verify(ctx, Image{Name: tc.image, Digest: digest.Digest(d.Digest.String())})
		if (err == nil) != tc.ok {
			t.Errorf("%s: Verify = %v, want ok=%v", tc.identity, err, tc.ok)
		}
	}
	// matchExact and matchRepoDigestOrExact against a signature of repo:v1.
	repo2, d2 := e.push("signed/exact", "v1")
	signtest.SignClassic(ctx, repo2, d2.Digest, repo2.Tag("v1").String(), k)
	for _, tc := range []struct {
		typ, image string
		ok         bool
	}{
		{"matchExact", repo2.Tag("v1").String(), true},
		{"matchExact", repo2.Tag("v2").String(), false},
		{"matchRepoDigestOrExact", repo2.Tag("v1").String(), true},
		{"matchRepoDigestOrExact", repo2.Digest(d2.Digest.String()).String(), true},
		{"matchRepository", repo2.Tag("v9").String(), true},
	} {
		v := e.verifier("  default: [{type: sigstoreSigned, keyPath: KEYS/a.pub, signedIdentity: {type: "+tc.typ+"}}]\n", "")
		_, err := v.Verify(ctx, Image{Name: tc.image, Digest: digest.Digest(d2.Digest.String())})
		if (err == nil) != tc.ok {
			t.Errorf("%s %s: Verify = %v, want ok=%v", tc.typ, tc.image, err, tc.ok)
		}
	}
}

func TestVerifyPlatformManifestOfIndex(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, signtest.RegistryOptions{})
	k := e.key(signtest.ECDSAP384, "a.pub")
	im, _ := random.Image(128, 1)
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: im, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	repo, _ := name.NewRepository(e.host+"/signed/multi", name.Insecure)
	if err := remote.WriteIndex(repo.Tag("v1"), idx); err != nil {
		t.Fatal(err)
	}
	id, _ := idx.Digest()
	pd, _ := im.Digest()
	m, _ := im.RawManifest()
	mt, _ := im.MediaType()
	if err := signtest.SignBundle(ctx, repo, v1.Descriptor{Digest: pd, Size: int64(len(m)), MediaType: mt}, repo.String(), k); err != nil {
		t.Fatal(err)
	}
	v := e.verifier(trustA, "")
	res, err := v.Verify(ctx, Image{Name: repo.Tag("v1").String(), Digest: digest.Digest(id.String()), PlatformDigest: digest.Digest(pd.String())})
	if err != nil || res.SignedDigest != pd.String() || res.Digest != id.String() {
		t.Fatalf("signature on the platform manifest: %+v, %v", res, err)
	}
	// Without the platform digest only the index counts: refused.
	if _, err := e.verifier(trustA, "").Verify(ctx, Image{Name: repo.Tag("v1").String(), Digest: digest.Digest(id.String())}); err == nil {
		t.Error("index without a signature accepted")
	}
	got, err := v.Resolve(ctx, repo.Tag("v1").String())
	if err != nil || got.Digest.String() != id.String() || got.PlatformDigest.String() != pd.String() {
		t.Errorf("Resolve = %+v, %v", got, err)
	}
}

func TestVerifyCacheOutlivesRegistry(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, signtest.RegistryOptions{})
	k := e.key(signtest.RSA2048, "a.pub")
	repo, signed := e.push("signed/app", "v1")
	_, unverified := e.push("signed/app", "v2")
	signtest.SignClassic(ctx, repo, signed.Digest, repo.String(), k)
	signtest.SignClassic(ctx, repo, unverified.Digest, repo.String(), k)
	cache := t.TempDir()
	first, err := e.verifier(trustA, cache).Verify(ctx, img(repo, "v1", signed))
	if err != nil || first.Cached {
		t.Fatalf("first: %+v, %v", first, err)
	}
	e.srv.Close()
	// A new process (a new verifier) with the registry gone.
	v := e.verifier(trustA, cache)
	again, err := v.Verify(ctx, img(repo, "v1", signed))
	if err != nil || !again.Cached {
		t.Fatalf("cached: %+v, %v", again, err)
	}
	again, err = v.Verify(ctx, img(repo, "v1", signed))
	if err != nil || !again.Cached {
		t.Fatalf("memory: %+v, %v", again, err)
	}
	_, err = v.Verify(ctx, img(repo, "v2", unverified))
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("unverified digest with the registry gone: %v, want refused naming the connection", err)
	}
	// Another policy (another key) does not reuse the verdict.
	e.key(signtest.RSA2048, "a.pub")
	if _, err := e.verifier(trustA, cache).Verify(ctx, img(repo, "v1", signed)); err == nil {
		t.Error("a verdict cached under another policy was reused")
	}
}

func TestVerifySignatureDir(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, signtest.RegistryOptions{})
	k := e.key(signtest.ECDSAP256, "a.pub")
	repo, d := e.push("signed/airgap", "v1")
	_, d2 := e.push("signed/airgap", "v2")
	e.srv.Close() // air-gapped: only the directory
	dir := filepath.Join(e.sigDir, "sha256-"+d.Digest.Hex)
	os.MkdirAll(dir, 0o755)
	b, err := signtest.BundleJSON(d.Digest, repo.String(), k)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "cosign.sigstore.json"), b, 0o644)
	v := e.verifier(trustA, "")
	res, err := v.Verify(ctx, img(repo, "v1", d))
	if err != nil || !strings.HasPrefix(res.Requirements[0].Signature, "file ") {
		t.Fatalf("bundle file: %+v, %v", res, err)
	}

	dir2 := filepath.Join(e.sigDir, "sha256-"+d2.Digest.Hex)
	os.MkdirAll(dir2, 0o755)
	payload, _ := signtest.Payload(repo.String(), d2.Digest)
	sig, err := k.Signer.Sign(rand.Reader, sha256sum(payload), cryptoSHA256)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir2, "cosign.payload"), payload, 0o644)
	os.WriteFile(filepath.Join(dir2, "cosign.sig"), []byte(base64.StdEncoding.EncodeToString(sig)), 0o644)
	if _, err := v.Verify(ctx, img(repo, "v2", d2)); err != nil {
		t.Fatalf("sig + payload files: %v", err)
	}
}

var cryptoSHA256 = crypto.SHA256

func sha256sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func TestAuthFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(file, []byte(`{"auths": {"https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"}, "registry.example.com": {"username": "u", "password": "p"}}}`), 0o600)
	kc, err := loadAuthFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{"index.docker.io": "user:pass", "registry.example.com": "u:p", "other.example.com": ""} {
		reg, _ := name.NewRegistry(host)
		a, err := (&aliasKeychain{keys: kc, domain: host}).Resolve(reg)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := a.Authorization()
		got := ""
		if cfg.Auth != "" {
			b, _ := base64.StdEncoding.DecodeString(cfg.Auth)
			got = string(b)
		} else if cfg.Username != "" {
			got = cfg.Username + ":" + cfg.Password
		}
		if got != want {
			t.Errorf("%s: credentials %q, want %q", host, got, want)
		}
	}
	// A mirror without credentials of its own is asked with the mirrored registry's.
	mirror, _ := name.NewRegistry("mirror.example.com")
	a, _ := (&aliasKeychain{keys: kc, domain: "registry.example.com"}).Resolve(mirror)
	if cfg, _ := a.Authorization(); cfg.Username != "u" {
		t.Errorf("mirror credentials = %+v", cfg)
	}
	os.WriteFile(file, []byte(`not json`), 0o600)
	if _, err := loadAuthFile(file); err == nil || !strings.Contains(err.Error(), "not a docker config.json") {
		t.Errorf("bad file: %v", err)
	}
}

// TestAuthFileHelpers: credsStore and credHelpers run docker's credential
// helpers (docker-credential-NAME on $PATH), as docker does.
func TestAuthFileHelpers(t *testing.T) {
	bin := t.TempDir()
	helper := func(name, user string) {
		script := "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread url\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"" + user + "\",\"Secret\":\"s3cret\"}' \"$url\"\n"
		if err := os.WriteFile(filepath.Join(bin, "docker-credential-"+name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	helper("store", "from-store")
	helper("ecr", "from-helper")
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	file := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(file, []byte(`{"credsStore": "store", "credHelpers": {"registry.example.com": "ecr"}}`), 0o600)
	kc, err := loadAuthFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{"registry.example.com": "from-helper", "other.example.com": "from-store", "docker.io": "from-store"} {
		reg, _ := name.NewRegistry(host)
		a, err := kc.Resolve(reg)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		cfg, _ := a.Authorization()
		if cfg.Username != want || cfg.Password != "s3cret" {
			t.Errorf("%s: credentials %+v, want %s", host, cfg, want)
		}
	}
}

// TestVerifyHostsTOML: the verifier reaches registries as containerd's
// hosts.toml says: a mirror for a registry name that resolves nowhere, a
// TLS registry with its CA file, and a time limit on a registry that hangs.
func TestVerifyHostsTOML(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, signtest.RegistryOptions{})
	k := e.key(signtest.ECDSAP256, "a.pub")

	// A mirror: images named registry.invalid/... are read from the test
	// registry. Signatures name the image's own repository.
	repo, d := e.push("team/app", "v1")
	signtest.SignClassic(ctx, repo, d.Digest, "registry.invalid/team/app", k)
	os.MkdirAll(filepath.Join(e.certs, "registry.invalid"), 0o755)
	os.WriteFile(filepath.Join(e.certs, "registry.invalid", "hosts.toml"), []byte(fmt.Sprintf(
		"server = \"https://registry.invalid\"\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", e.srv.URL)), 0o644)
	v := e.verifier("  default: [{type: sigstoreSigned, keyPath: KEYS/a.pub}]\n", "")
	res, err := v.Verify(ctx, Image{Name: "registry.invalid/team/app:v1", Digest: digest.Digest(d.Digest.String())})
	if err != nil || res.Requirements[0].Identity != "registry.invalid/team/app" {
		t.Errorf("through the mirror: %+v, %v", res, err)
	}

	// TLS with the registry's CA in hosts.toml.
	tlsSrv := httptest.NewTLSServer(signtest.NewRegistry(signtest.RegistryOptions{}))
	defer tlsSrv.Close()
	tlsHost := strings.TrimPrefix(tlsSrv.URL, "https://")
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o644)
	os.MkdirAll(filepath.Join(e.certs, tlsHost), 0o755)
	os.WriteFile(filepath.Join(e.certs, tlsHost, "hosts.toml"), []byte(fmt.Sprintf("server = %q\n[host.%q]\n  ca = %q\n", tlsSrv.URL, tlsSrv.URL, caFile)), 0o644)
	tlsRepo, _ := name.NewRepository(tlsHost + "/team/app")
	img, _ := random.Image(64, 1)
	if err := remote.Write(tlsRepo.Tag("v1"), img, remote.WithTransport(tlsSrv.Client().Transport)); err != nil {
		t.Fatal(err)
	}
	td, _ := img.Digest()
	if err := signtest.SignClassic(ctx, tlsRepo, td, tlsRepo.String(), k, remote.WithTransport(tlsSrv.Client().Transport)); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, Image{Name: tlsRepo.Tag("v1").String(), Digest: digest.Digest(td.String())}); err != nil {
		t.Errorf("TLS registry with its CA: %v", err)
	}
	os.WriteFile(filepath.Join(e.certs, tlsHost, "hosts.toml"), []byte(fmt.Sprintf("server = %q\n", tlsSrv.URL)), 0o644)
	if _, err := e.verifier("  default: [{type: sigstoreSigned, keyPath: KEYS/a.pub}]\n", "").Verify(ctx, Image{Name: tlsRepo.Tag("v1").String(), Digest: digest.Digest(td.String())}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("TLS registry without its CA: %v, want a certificate error", err)
	}

	// A registry that accepts connections and never answers.
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer slow.Close()
	defer close(hang)
	slowHost := strings.TrimPrefix(slow.URL, "http://")
	os.MkdirAll(filepath.Join(e.certs, slowHost), 0o755)
	os.WriteFile(filepath.Join(e.certs, slowHost, "hosts.toml"), []byte(fmt.Sprintf("server = %q\n", slow.URL)), 0o644)
	start := time.Now()
	_, err = v.Verify(ctx, Image{Name: slowHost + "/team/app:v1", Digest: digest.Digest(d.Digest.String())})
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("hanging registry: %v, want a time-out", err)
	}
	t.Logf("hanging registry refused after %v (timeout 2s per request)", time.Since(start).Round(time.Millisecond))
}
