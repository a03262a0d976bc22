package harness_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/hex"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	toml "github.com/pelletier/go-toml/v2"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/hardened-runtime/hardened/integration/harness"
	"github.com/hardened-runtime/hardened/verify/signtest"
)

// testImages returns the busybox test image, a variant of it and a
// one-platform index of it.
func testImages(t *testing.T) (img, variant v1.Image, idx v1.ImageIndex) {
	t.Helper()
	img, err := harness.TestImage(harness.Busybox)
	if err != nil {
		t.Fatal(err)
	}
	variant = harness.Variant(img, "v2")
	idx, err = harness.Index(img)
	if err != nil {
		t.Fatal(err)
	}
	return img, variant, idx
}

// TestRegistryPull pushes the test images to a test registry and pulls
// them through containerd's client and through CRI, by the registry's
// address and by an alias that only the hosts.toml in CertsDir resolves.
func TestRegistryPull(t *testing.T) {
	harness.Require(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	c := harness.Start(t, harness.Options{RegistryHosts: []string{reg.Addr()}})
	img, variant, idx := testImages(t)

	ref, variantRef, indexRef := reg.Ref("test/busybox:v1"), reg.Ref("test/busybox:v2"), reg.Ref("test/busybox:multi")
	desc := reg.Push(t, ref, img)
	variantDesc := reg.Push(t, variantRef, variant)
	indexDesc := reg.PushIndex(t, indexRef, idx)
	if desc.Digest == variantDesc.Digest || desc.Digest == indexDesc.Digest {
		t.Fatalf("digests not distinct: image %s, variant %s, index %s", desc.Digest, variantDesc.Digest, indexDesc.Digest)
	}
	if indexDesc.MediaType != types.OCIImageIndex {
		t.Errorf("index media type %s, want %s", indexDesc.MediaType, types.OCIImageIndex)
	}
	// The harness's import and the registry hold the same image (the same
	// config, so the same CRI image id; containerd's import writes its own
	// manifest).
	imported := harness.ImportBusybox(t, c)
	importedConfig, err := imported.Config(c.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	if configName, _ := img.ConfigName(); importedConfig.Digest.String() != configName.String() {
		t.Errorf("imported %s has config %s, pushed %s", harness.Busybox, importedConfig.Digest, configName)
	}

	alias := "mirror.hardened.test"
	if err := c.AddRegistryAlias(alias, reg.Addr()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref  string
		want v1.Descriptor
	}{
		{ref, desc},
		{variantRef, variantDesc},
		{indexRef, indexDesc},
		{alias + "/test/busybox:v1", desc},
	} {
		t.Run("client/"+tc.ref, func(t *testing.T) {
			pulled := c.Pull(t, c.Namespace, tc.ref)
			if got := pulled.Target(); got.Digest.String() != tc.want.Digest.String() || got.MediaType != string(tc.want.MediaType) {
				t.Errorf("Pull(%s) = %s %s, want %s %s", tc.ref, got.MediaType, got.Digest, tc.want.MediaType, tc.want.Digest)
			}
			ctx := namespaces.WithNamespace(t.Context(), c.Namespace)
			if ok, err := pulled.IsUnpacked(ctx, "overlayfs"); !ok || err != nil {
				t.Errorf("%s unpacked for overlayfs = %v, %v; want true", tc.ref, ok, err)
			}
		})
		t.Run("cri/"+tc.ref, func(t *testing.T) {
			st := c.CRIPull(t, tc.ref)
			repo, _, _ := strings.Cut(tc.ref[strings.LastIndex(tc.ref, "/"):], ":")
			wantRepoDigest := tc.ref[:strings.LastIndex(tc.ref, "/")] + repo + "@" + tc.want.Digest.String()
			if !slices.Contains(st.RepoDigests, wantRepoDigest) {
				t.Errorf("CRI image %s repo digests %v, want %s", tc.ref, st.RepoDigests, wantRepoDigest)
			}
			ctx := namespaces.WithNamespace(t.Context(), harness.CRINamespace)
			got, err := c.Client(t).GetImage(ctx, tc.ref)
			if err != nil {
				t.Fatalf("GetImage(%s) in %s: %v", tc.ref, harness.CRINamespace, err)
			}
			if got.Target().Digest.String() != tc.want.Digest.String() {
				t.Errorf("CRI pulled %s as %s, want %s", tc.ref, got.Target().Digest, tc.want.Digest)
			}
		})
	}
	// The alias reached the registry through hosts.toml (containerd adds
	// ?ns= to mirror requests).
	if !strings.Contains(reg.Log(), "?ns="+alias) {
		t.Errorf("registry log has no request for %s:\n%s", alias, reg.Log())
	}
	// A name with no hosts.toml does not resolve.
	if _, err := c.PullImage(t.Context(), c.Namespace, "nowhere.hardened.test/test/busybox:v1"); err == nil {
		t.Errorf("pulling from a registry with no hosts.toml succeeded")
	}
	checkConfigPath(t, c)
}

// checkConfigPath checks containerd's effective config (config dump) has
// CertsDir as the CRI registry config_path.
func checkConfigPath(t *testing.T, c *harness.Containerd) {
	t.Helper()
	out, err := exec.Command(filepath.Join(harness.ToolsBin(), "containerd"), "--config", c.Config, "config", "dump").Output()
	if err != nil {
		t.Fatalf("containerd config dump: %v", err)
	}
	var dump struct {
		Plugins map[string]struct {
			Registry struct {
				ConfigPath string `toml:"config_path"`
			} `toml:"registry"`
		} `toml:"plugins"`
	}
	if err := toml.Unmarshal(out, &dump); err != nil {
		t.Fatalf("containerd config dump: %v\n%s", err, out)
	}
	if got := dump.Plugins["io.containerd.cri.v1.images"].Registry.ConfigPath; got != c.CertsDir() {
		t.Errorf("config dump: io.containerd.cri.v1.images registry config_path = %q, want %q", got, c.CertsDir())
	}
}

// TestRegistryGoesAway pulls from a paused registry (it hangs) and a
// stopped one (connection refused).
func TestRegistryGoesAway(t *testing.T) {
	harness.Require(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	c := harness.Start(t, harness.Options{RegistryHosts: []string{reg.Addr()}})
	img, _, _ := testImages(t)
	ref := reg.Ref("test/busybox:v1")
	reg.Push(t, ref, img)

	if err := reg.Pause(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	_, err := c.PullImage(ctx, c.Namespace, ref)
	cancel()
	if err == nil {
		t.Errorf("pull from a paused registry succeeded")
	}
	if err := reg.Resume(); err != nil {
		t.Fatal(err)
	}
	c.Pull(t, c.Namespace, ref)

	if err := reg.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := reg.Stop(); err != nil {
		t.Errorf("Stop again: %v", err)
	}
	if _, err := c.PullImage(t.Context(), c.Namespace, reg.Ref("test/busybox:other")); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("pull from a stopped registry = %v, want connection refused", err)
	}
	if !strings.Contains(reg.Log(), "HEAD /v2/test/busybox/manifests/v1 200") {
		t.Errorf("registry log after Stop lacks the pull:\n%s", reg.Log())
	}
}

// TestRegistrySignatures signs the busybox test image with signtest's
// cosign v2 and v3 formats in test registries with and without the
// referrers API, and reads the signatures back with go-containerregistry.
func TestRegistrySignatures(t *testing.T) {
	k, err := signtest.NewKey(signtest.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(k.PublicPEM)
	if err != nil {
		t.Fatal(err)
	}
	img, _, _ := testImages(t)
	for _, noReferrers := range []bool{false, true} {
		name := "referrers"
		if noReferrers {
			name = "no-referrers"
		}
		t.Run(name, func(t *testing.T) {
			reg := harness.StartRegistry(t, harness.RegistryOptions{NoReferrers: noReferrers})
			desc := reg.Push(t, reg.Ref("test/busybox:v1"), img)
			repo := reg.Repository(t, "test/busybox")
			ctx := t.Context()

			if err := signtest.SignClassic(ctx, repo, desc.Digest, repo.Name(), k); err != nil {
				t.Fatalf("SignClassic: %v", err)
			}
			checkClassic(t, repo, desc.Digest, pub)

			if err := signtest.SignBundle(ctx, repo, desc, repo.Name(), k); err != nil {
				t.Fatalf("SignBundle: %v", err)
			}
			idx, err := remote.Referrers(repo.Digest(desc.Digest.String()), remote.WithContext(ctx),
				remote.WithFilter("artifactType", string(signtest.BundleMediaType)))
			if err != nil {
				t.Fatalf("Referrers: %v", err)
			}
			im, err := idx.IndexManifest()
			if err != nil || len(im.Manifests) != 1 {
				t.Fatalf("bundle referrers of %s = %v, %v; want one", desc.Digest, im, err)
			}
			_, err = remote.Head(signtest.ReferrersTag(repo, desc.Digest), remote.WithContext(ctx))
			if noReferrers != (err == nil) {
				t.Errorf("HEAD %s = %v; want it to exist only without the referrers API", signtest.ReferrersTag(repo, desc.Digest), err)
			}
			checkBundle(t, repo, im.Manifests[0], desc.Digest, k, pub)
		})
	}
}

func checkClassic(t *testing.T, repo name.Repository, d v1.Hash, pub crypto.PublicKey) {
	t.Helper()
	sigImg, err := remote.Image(signtest.SignatureTag(repo, d), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("read %s: %v", signtest.SignatureTag(repo, d), err)
	}
	m, err := sigImg.Manifest()
	if err != nil || len(m.Layers) != 1 {
		t.Fatalf("signature manifest %v, %v; want one layer", m, err)
	}
	layer, err := sigImg.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	payload := readAll(t, layer)
	sig, _ := base64.StdEncoding.DecodeString(m.Layers[0].Annotations[signtest.SignatureAnnotation])
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload)); err != nil {
		t.Errorf("classic signature does not verify: %v", err)
	}
	if !strings.Contains(string(payload), `"docker-manifest-digest":"`+d.String()+`"`) {
		t.Errorf("payload %s does not name %s", payload, d)
	}
}

func checkBundle(t *testing.T, repo name.Repository, referrer v1.Descriptor, d v1.Hash, k *signtest.Key, pub crypto.PublicKey) {
	t.Helper()
	art, err := remote.Image(repo.Digest(referrer.Digest.String()), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	layers, err := art.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("bundle manifest layers %v, %v; want one", layers, err)
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(readAll(t, layers[0])); err != nil {
		t.Fatal(err)
	}
	hint, _ := k.Hint()
	material := root.NewTrustedPublicKeyMaterialFromMapping(map[string]*root.ExpiringKey{hint: expiringKey(t, pub)})
	verifier, err := verify.NewVerifier(material, verify.WithNoObserverTimestamps())
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := hex.DecodeString(d.Hex)
	if _, err := verifier.Verify(&b, verify.NewPolicy(verify.WithArtifactDigest("sha256", digest), verify.WithKey())); err != nil {
		t.Errorf("bundle does not verify: %v", err)
	}
}

func expiringKey(t *testing.T, pub crypto.PublicKey) *root.ExpiringKey {
	t.Helper()
	v, err := signature.LoadDefaultVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	return root.NewExpiringKey(v, time.Time{}, time.Time{})
}

func readAll(t *testing.T, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
