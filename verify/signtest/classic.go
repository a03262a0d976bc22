package signtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// What cosign v2 writes for a classic signature.
const (
	// SimpleSigningMediaType is the media type of each signature layer.
	SimpleSigningMediaType types.MediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// SignatureAnnotation is the layer annotation holding the standard
	// base64 of the signature over the layer's content.
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
	// SignatureTagSuffix ends the tag of the signatures of a digest.
	SignatureTagSuffix = ".sig"
)

// SignatureTag is the tag cosign v2 stores the signatures of digest d in:
// `sha256-<hex>.sig` in repo.
func SignatureTag(repo name.Repository, d v1.Hash) name.Tag {
	return repo.Tag(d.Algorithm + "-" + d.Hex + SignatureTagSuffix)
}

// Payload is cosign's "simple signing" payload for manifestDigest claimed
// as dockerReference (cosign v2 uses the repository, e.g.
// "127.0.0.1:5000/test/busybox"; --sign-container-identity sets another):
//
//	{"critical":{"identity":{"docker-reference":"…"},"image":{"docker-manifest-digest":"sha256:…"},"type":"cosign container image signature"},"optional":null}
func Payload(dockerReference string, manifestDigest v1.Hash) ([]byte, error) {
	if dockerReference == "" {
		return nil, errors.New("payload: empty docker reference")
	}
	// payload.Cosign takes the digest from Image and, with ClaimedIdentity
	// set, nothing else: the repository here never shows.
	img, err := name.NewDigest("signtest.invalid/image@" + manifestDigest.String())
	if err != nil {
		return nil, fmt.Errorf("payload: digest %q: %w", manifestDigest, err)
	}
	p, err := payload.Cosign{Image: img, ClaimedIdentity: dockerReference}.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	return p, nil
}

// SignClassic signs d as cosign v2 does (`cosign sign --key cosign.key
// --tlog-upload=false repo@d`): the Payload of d claimed as dockerReference,
// signed with k, added as one more layer to the image tagged
// SignatureTag(repo, d). opts go to go-containerregistry's remote calls
// (ctx is added).
func SignClassic(ctx context.Context, repo name.Repository, d v1.Hash, dockerReference string, k *Key, opts ...remote.Option) error {
	p, err := Payload(dockerReference, d)
	if err != nil {
		return fmt.Errorf("sign %s@%s: %w", repo, d, err)
	}
	return SignClassicPayload(ctx, repo, d, p, k, opts...)
}

// SignClassicPayload is SignClassic with the payload given verbatim: tests
// use it to store under d's tag a signature whose payload names another
// digest or identity, or is not a cosign payload at all.
func SignClassicPayload(ctx context.Context, repo name.Repository, d v1.Hash, payload []byte, k *Key, opts ...remote.Option) error {
	tag := SignatureTag(repo, d)
	sig, err := signClassic(payload, k)
	if err != nil {
		return fmt.Errorf("sign %s@%s: %w", repo, d, err)
	}
	opts = append(opts, remote.WithContext(ctx))
	base, err := signatureImage(tag, opts)
	if err != nil {
		return fmt.Errorf("sign %s@%s: %w", repo, d, err)
	}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:       static.NewLayer(payload, SimpleSigningMediaType),
		Annotations: map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)},
	})
	if err != nil {
		return fmt.Errorf("sign %s@%s: %w", repo, d, err)
	}
	if err := remote.Write(tag, img, opts...); err != nil {
		return fmt.Errorf("sign %s@%s: push %s: %w", repo, d, tag, err)
	}
	return nil
}

// signClassic signs payload as cosign v2 does with a key file.
func signClassic(payload []byte, k *Key) ([]byte, error) {
	s, err := k.classicSigner()
	if err != nil {
		return nil, err
	}
	sig, err := s.SignMessage(bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("key %s: sign: %w", k.Name, err)
	}
	return sig, nil
}

// signatureImage returns the signatures image at tag, or cosign's empty
// one (OCI manifest and config media types) when the tag does not exist.
func signatureImage(tag name.Tag, opts []remote.Option) (v1.Image, error) {
	img, err := remote.Image(tag, opts...)
	var terr *transport.Error
	switch {
	case err == nil:
		return img, nil
	case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
		base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		return mutate.ConfigMediaType(base, types.OCIConfigJSON), nil
	default:
		return nil, fmt.Errorf("read %s: %w", tag, err)
	}
}
