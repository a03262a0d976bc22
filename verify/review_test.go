package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
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
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"

	"github.com/hardened-runtime/hardened/verify/signtest"
)

// Cases found in review: what cosign really writes, and what a hostile or
// broken registry does.

// TestCosignV3BundleNamesNoSubject: cosign v3's statement names the digest
// only; matchRepository accepts it, identity rules that need a name refuse
// it with the reason.
func TestCosignV3BundleNamesNoSubject(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, signtest.RegistryOptions{})
	k := e.key(signtest.ECDSAP256, "a.pub")
	repo, d := e.push("signed/app", "v1")
	if err := signtest.SignBundle(ctx, repo, d, "", k); err != nil {
		t.Fatal(err)
	}
	res, err := e.verifier(trustA, "").Verify(ctx, img(repo, "v1", d))
	if err != nil || res.Requirements[0].Identity != "" {
		t.Fatalf("nameless cosign v3 bundle under matchRepository: %+v, %v", res, err)
	}
	_, err = e.verifier("  default: [{type: sigstoreSigned, keyPath: KEYS/a.pub, signedIdentity: {type: matchExact}}]\n", "").Verify(ctx, img(repo, "v1", d))
	if err == nil || !strings.Contains(err.Error(), "signature names no image (cosign v3 signs the digest only), and matchExact needs one") {
		t.Errorf("nameless bundle under matchExact: %v", err)
	}
}

// ed25519phKeypair signs bundles the way cosign ≥ 2.6 does with an
// Ed25519 key: Ed25519ph.
type ed25519phKeypair struct {
	priv    ed25519.PrivateKey
	signer  signature.Signer
	details signature.AlgorithmDetails
}

func (p *ed25519phKeypair) GetHashAlgorithm() protocommon.HashAlgorithm {
	return p.details.GetProtoHashType()
}
func (p *ed25519phKeypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return p.details.GetSignatureAlgorithm()
}
func (p *ed25519phKeypair) GetHint() []byte                { return []byte("hint") }
func (p *ed25519phKeypair) GetKeyAlgorithm() string        { return "ED25519" }
func (p *ed25519phKeypair) GetPublicKey() crypto.PublicKey { return p.priv.Public() }
func (p *ed25519phKeypair) GetPublicKeyPem() (string, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(p.priv.Public())
	return string(b), err
}
func (p *ed25519phKeypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	sig, err := p.signer.SignMessage(bytes.NewReader(data))
	h := p.details.GetHashType().New()
	h.Write(data)
	return sig, h.Sum(nil), err
}

// TestEd25519ph: cosign ≥ 2.6 signs images with Ed25519ph, in both formats.
func TestEd25519ph(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, signtest.RegistryOptions{})
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	pemBytes, _ := cryptoutils.MarshalPublicKeyToPEM(pub)
	os.WriteFile(filepath.Join(e.keysDir, "a.pub"), pemBytes, 0o644)
	v := e.verifier(trustA, "")

	repo, d := e.push("signed/classic", "v1")
	payload, _ := signtest.Payload(repo.String(), d.Digest)
	sv, err := signature.LoadDefaultSignerVerifier(priv, options.WithED25519ph())
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := sv.SignMessage(bytes.NewReader(payload))
	dir := filepath.Join(e.sigDir, "sha256-"+d.Digest.Hex)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "cosign.payload"), payload, 0o644)
	os.WriteFile(filepath.Join(dir, "cosign.sig"), sig, 0o644)
	if _, err := v.Verify(ctx, img(repo, "v1", d)); err != nil {
		t.Errorf("Ed25519ph classic signature: %v", err)
	}

	repo, d = e.push("signed/bundle", "v1")
	details, _ := signature.GetDefaultAlgorithmDetails(pub, options.WithED25519ph())
	signer, _ := signature.LoadSignerFromAlgorithmDetails(priv, details, options.WithED25519ph())
	st, _ := signtest.Statement(d.Digest, "")
	pb, err := sign.Bundle(&sign.DSSEData{Data: st, PayloadType: signtest.InTotoPayloadType}, &ed25519phKeypair{priv, signer, details}, sign.BundleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := (&bundle.Bundle{Bundle: pb}).MarshalJSON()
	if _, err := signtest.PushBundle(ctx, repo, d, b, signtest.SignPredicateType); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, img(repo, "v1", d)); err != nil {
		t.Errorf("Ed25519ph bundle: %v", err)
	}
}

// TestHostileRegistry: a registry that serves huge manifests or indexes
// is refused after a bounded read, and a broken referrer entry does not
// hide a good signature.
func TestHostileRegistry(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, signtest.RegistryOptions{})
	e.key(signtest.ECDSAP256, "a.pub")
	huge := bytes.Repeat([]byte(" "), 64<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
		case strings.Contains(r.URL.Path, "/referrers/"):
			w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
			w.Write(huge) // no Content-Length: streamed
		case strings.HasSuffix(r.URL.Path, ".sig"):
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			w.Header().Set("Content-Length", fmt.Sprint(len(huge)))
			w.Write(huge)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	os.MkdirAll(filepath.Join(e.certs, host), 0o755)
	os.WriteFile(filepath.Join(e.certs, host, "hosts.toml"), []byte(fmt.Sprintf("server = %q\n", srv.URL)), 0o644)
	v := e.verifier("  default: [{type: sigstoreSigned, keyPath: KEYS/a.pub}]\n", "")
	d := digest.FromString("x")
	_, err := v.Verify(ctx, Image{Name: host + "/team/app:v1", Digest: d})
	if err == nil || !strings.Contains(err.Error(), "more than the 4194304") && !strings.Contains(err.Error(), "longer than 4194304") {
		t.Errorf("huge responses: %v, want a bounded refusal", err)
	}

	// A referrer entry whose manifest is gone (the tag schema's index is
	// kept by clients and goes stale), next to a good classic signature.
	e2 := newEnv(t, signtest.RegistryOptions{NoReferrers: true})
	k2 := e2.key(signtest.ECDSAP256, "a.pub")
	repo, good := e2.push("signed/app", "v1")
	signtest.SignClassic(ctx, repo, good.Digest, repo.String(), k2)
	ghost, _ := random.Image(16, 1)
	gd, _ := ghost.Digest()
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: ghost, Descriptor: v1.Descriptor{ArtifactType: string(signtest.BundleMediaType)}})
	if err := remote.WriteIndex(signtest.ReferrersTag(repo, good.Digest), idx); err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(repo.Digest(gd.String())); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Get(repo.Digest(gd.String())); err == nil {
		t.Fatal("the referrer is still there")
	}
	if _, err := e2.verifier(trustA, "").Verify(ctx, img(repo, "v1", good)); err != nil {
		t.Errorf("good signature next to a dangling referrer: %v", err)
	}
	// Only the dangling referrer: refused, naming it.
	repo, lone := e2.push("signed/lone", "v1")
	if err := remote.WriteIndex(signtest.ReferrersTag(repo, lone.Digest), idx); err != nil {
		t.Fatal(err)
	}
	remote.Delete(repo.Digest(gd.String()))
	if _, err := e2.verifier(trustA, "").Verify(ctx, img(repo, "v1", lone)); err == nil || !strings.Contains(err.Error(), "referrer "+gd.String()[:19]) {
		t.Errorf("only a dangling referrer: %v", err)
	}
}

// TestLocalSignaturesFirst: a signature in the local directory is
// accepted without waiting for a registry that does not answer.
func TestLocalSignaturesFirst(t *testing.T) {
	ctx := context.Background()
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer slow.Close()
	defer close(hang)
	e := newEnv(t, signtest.RegistryOptions{})
	host := strings.TrimPrefix(slow.URL, "http://")
	os.MkdirAll(filepath.Join(e.certs, host), 0o755)
	os.WriteFile(filepath.Join(e.certs, host, "hosts.toml"), []byte(fmt.Sprintf("server = %q\n", slow.URL)), 0o644)
	k := e.key(signtest.ECDSAP256, "a.pub")
	d := digest.FromString("air-gapped")
	h := v1.Hash{Algorithm: "sha256", Hex: d.Encoded()}
	dir := filepath.Join(e.sigDir, "sha256-"+h.Hex)
	os.MkdirAll(dir, 0o755)
	b, _ := signtest.BundleJSON(h, "", k)
	os.WriteFile(filepath.Join(dir, "cosign.sigstore.json"), b, 0o644)
	start := time.Now()
	if _, err := e.verifier("  default: [{type: sigstoreSigned, keyPath: KEYS/a.pub}]\n", "").Verify(ctx, Image{Name: host + "/team/app:v1", Digest: d}); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("took %v: the registry was asked before the local directory", el)
	}
}

// TestCacheKeyHasPlatform: a verdict earned by one platform manifest of an
// index is not reused for another.
func TestCacheKeyHasPlatform(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, signtest.RegistryOptions{})
	k := e.key(signtest.ECDSAP256, "a.pub")
	p1, _ := random.Image(64, 1)
	p2, _ := random.Image(64, 1)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: p1, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: p2, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64", Variant: "v3"}}})
	repo, _ := name.NewRepository(e.host+"/signed/multi", name.Insecure)
	remote.WriteIndex(repo.Tag("v1"), idx)
	id, _ := idx.Digest()
	d1, _ := p1.Digest()
	d2, _ := p2.Digest()
	signtest.SignClassic(ctx, repo, d1, repo.String(), k)
	cache := t.TempDir()
	n := repo.Tag("v1").String()
	if _, err := e.verifier(trustA, cache).Verify(ctx, Image{Name: n, Digest: digest.Digest(id.String()), PlatformDigest: digest.Digest(d1.String())}); err != nil {
		t.Fatal(err)
	}
	if res, err := e.verifier(trustA, cache).Verify(ctx, Image{Name: n, Digest: digest.Digest(id.String()), PlatformDigest: digest.Digest(d2.String())}); err == nil {
		t.Errorf("unsigned platform manifest accepted (cached=%v)", res.Cached)
	}
}
