package verify

import (
	"encoding/base64"
	"fmt"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
)

// cosign v2: signatures in the sha256-<hex>.sig tag.

func tagFor(d digest.Digest) string { return d.Algorithm().String() + "-" + d.Encoded() }

func classicFromImage(img v1.Image, tag string) ([]candidate, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("read tag %s: %w", tag, err)
	}
	var out []candidate
	for i, l := range m.Layers {
		if i >= maxSignatures {
			break
		}
		where := fmt.Sprintf("tag %s layer %d", tag, i)
		b64, ok := l.Annotations[SignatureAnnotation]
		if !ok || l.MediaType != SimpleSigningMediaType {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			out = append(out, candidate{kind: kindClassic, where: where})
			continue
		}
		if l.Size > maxBlob {
			return nil, fmt.Errorf("%s: payload of %d bytes", where, l.Size)
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		payload, err := readBlob(layer.Compressed)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		c := candidate{kind: kindClassic, where: where, payload: payload, sig: sig}
		for field, ann := range map[*[]byte]string{&c.cert: CertificateAnnotation, &c.chain: ChainAnnotation, &c.rekorBundle: RekorBundleAnnotation, &c.timestamp: TimestampAnnotation} {
			if v, ok := l.Annotations[ann]; ok && len(v) <= maxBlob {
				*field = []byte(v)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// readSigTag reads the classic signatures of d: the layers of the image
// tagged sha256-<hex>.sig. A missing tag is no error.
func readSigTag(repo name.Repository, d digest.Digest, ropts []remote.Option) ([]candidate, error) {
	tag := repo.Tag(tagFor(d) + ".sig")
	img, err := remote.Image(tag, ropts...)
	switch {
	case isNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read tag %s: %w", tag.TagStr(), conciseError(err))
	}
	return classicFromImage(img, tag.TagStr())
}
