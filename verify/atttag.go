package verify

// cosign v2: attestations in the sha256-<hex>.att tag (cosign attest --key
// --type T --predicate P IMAGE): one layer per attestation, of media type
// application/vnd.dsse.envelope.v1+json, holding a DSSE envelope of an
// in-toto statement, with the predicate type as the layer's predicateType
// annotation (a hint only: the signed statement is what counts).

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
)

// DSSEMediaType is the media type of a cosign v2 attestation layer.
const DSSEMediaType = "application/vnd.dsse.envelope.v1+json"

// InTotoPayloadType is the DSSE payload type of an in-toto statement.
const InTotoPayloadType = "application/vnd.in-toto+json"

// readAttTag reads the attestations of d from the tag sha256-<hex>.att. A
// missing tag is no error.
func readAttTag(repo name.Repository, d digest.Digest, ropts []remote.Option) ([]candidate, error) {
	tag := repo.Tag(tagFor(d) + ".att")
	img, err := remote.Image(tag, ropts...)
	switch {
	case isNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read tag %s: %w", tag.TagStr(), conciseError(err))
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("read tag %s: %w", tag.TagStr(), err)
	}
	var out []candidate
	for i, l := range m.Layers {
		if len(out) >= maxSignatures {
			break
		}
		if string(l.MediaType) != DSSEMediaType {
			continue
		}
		where := fmt.Sprintf("tag %s layer %d", tag.TagStr(), i)
		if l.Size > maxBlob {
			return out, fmt.Errorf("%s: envelope of %d bytes", where, l.Size)
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return out, fmt.Errorf("%s: %w", where, err)
		}
		env, err := readBlob(layer.Compressed)
		if err != nil {
			return out, fmt.Errorf("%s: %w", where, err)
		}
		out = append(out, candidate{kind: kindDSSE, where: where, envelope: env})
	}
	return out, nil
}
