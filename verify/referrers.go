package verify

import (
	"errors"
	"fmt"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	"strings"
)

// cosign v3: Sigstore bundles stored as OCI 1.1 referrers.

// Where cosign puts signatures.
const (
	// SimpleSigningMediaType is the layer media type of a classic
	// sha256-<hex>.sig image.
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// SignatureAnnotation holds a layer's base64 signature.
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
	// BundleMediaType is the artifact type of a Sigstore bundle referrer.
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// CosignSignPredicate is the predicate type of cosign's signature
	// statement (cosign sign with the bundle format).
	CosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"
)

// bundleMediaTypes are the bundle artifact types accepted as referrers.
var bundleMediaTypes = map[string]bool{
	BundleMediaType: true,
	"application/vnd.dev.sigstore.bundle+json;version=0.3": true,
	"application/vnd.dev.sigstore.bundle.v0.2+json":        true,
	"application/vnd.dev.sigstore.bundle+json;version=0.2": true,
}

func bundleFromReferrer(repo name.Repository, m v1.Descriptor, ropts []remote.Option) ([]byte, error) {
	img, err := remote.Image(repo.Digest(m.Digest.String()), ropts...)
	if err != nil {
		return nil, err
	}
	mf, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if mf.ArtifactType != "" && !bundleMediaTypes[mf.ArtifactType] {
		return nil, errNotBundle
	}
	for _, l := range mf.Layers {
		if !bundleMediaTypes[string(l.MediaType)] {
			continue
		}
		if l.Size > maxBlob {
			return nil, fmt.Errorf("bundle of %d bytes", l.Size)
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return nil, err
		}
		return readBlob(layer.Compressed)
	}
	return nil, errNotBundle
}

var errNotBundle = errors.New("no bundle layer")

// readReferrers reads the Sigstore bundles among the referrers of d (ggcr
// falls back to the sha256-<hex> tag schema when the registry has no
// referrers API). A broken entry does not hide the others; it is the error
// only when no bundle was read.
func readReferrers(repo name.Repository, d digest.Digest, ropts []remote.Option) ([]candidate, error) {
	idx, err := remote.Referrers(repo.Digest(d.String()), ropts...)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read referrers of %s: %w", short(d), conciseError(err))
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read referrers of %s: %w", short(d), err)
	}
	var out []candidate
	seen := map[v1.Hash]bool{}
	read := 0
	var skipped []string
	for _, m := range im.Manifests {
		// The registry's filter is not trusted (some ignore it). Some
		// registries list a referrer's config media type as its artifact
		// type: look at the manifest of those.
		maybe := m.ArtifactType == "" || m.ArtifactType == "application/vnd.oci.empty.v1+json"
		if (!bundleMediaTypes[m.ArtifactType] && !maybe) || seen[m.Digest] || m.Size > maxBlob {
			continue
		}
		if len(out) >= maxSignatures || read >= maxReferrers {
			break
		}
		seen[m.Digest] = true
		read++
		b, err := bundleFromReferrer(repo, m, ropts)
		if errors.Is(err, errNotBundle) && maybe {
			continue
		}
		if err != nil {
			// A dangling or broken entry (common in the tag schema's
			// index) does not hide the others.
			skipped = append(skipped, fmt.Sprintf("referrer %s: %v", short(digest.Digest(m.Digest.String())), conciseError(err)))
			continue
		}
		out = append(out, candidate{kind: kindBundle, where: "referrer " + short(digest.Digest(m.Digest.String())), bundle: b})
	}
	if len(out) == 0 && len(skipped) > 0 {
		return nil, errors.New(strings.Join(skipped, "; "))
	}
	return out, nil
}
