package signtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/sign"
)

// What cosign v3 writes for a signature in the new bundle format.
const (
	// BundleMediaType is the Sigstore bundle v0.3 media type: the referrer
	// manifest's artifactType and its one layer's media type.
	BundleMediaType types.MediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// SignPredicateType is the predicate type of cosign v3's image
	// signature statement.
	SignPredicateType = "https://sigstore.dev/cosign/sign/v1"
	// InTotoStatementType is the statement's _type.
	InTotoStatementType = "https://in-toto.io/Statement/v1"
	// InTotoPayloadType is the DSSE payload type of an in-toto statement.
	InTotoPayloadType = "application/vnd.in-toto+json"
	// Annotations of the referrer manifest (and so of its entry in the
	// referrers index).
	BundleContentAnnotation       = "dev.sigstore.bundle.content"
	BundlePredicateTypeAnnotation = "dev.sigstore.bundle.predicateType"
	CreatedAnnotation             = "org.opencontainers.image.created"
)

// emptyJSON is the content of the OCI empty descriptor.
var emptyJSON = []byte("{}")

// ReferrersTag is the referrers tag schema's tag for d (`sha256-<hex>`
// in repo): on a registry without the referrers API it holds an OCI index
// of the manifests whose subject is d.
func ReferrersTag(repo name.Repository, d v1.Hash) name.Tag {
	return repo.Tag(d.Algorithm + "-" + d.Hex)
}

// statement is an in-toto v1 statement.
type statement struct {
	Type          string           `json:"_type"`
	Subject       []statementEntry `json:"subject"`
	PredicateType string           `json:"predicateType"`
	Predicate     map[string]any   `json:"predicate"`
}

type statementEntry struct {
	Name   string            `json:"name,omitempty"`
	Digest map[string]string `json:"digest"`
}

// Statement is the in-toto statement cosign v3 signs for an image: subject
// digest {"sha256": hex of subjectDigest}, predicateType SignPredicateType,
// predicate {}, and subject name dockerReference. cosign v3 itself names
// no subject (`cosign sign` sets the digest only): pass "" for that.
func Statement(subjectDigest v1.Hash, dockerReference string) ([]byte, error) {
	if subjectDigest.Algorithm == "" || subjectDigest.Hex == "" {
		return nil, fmt.Errorf("statement: no subject digest")
	}
	s := statement{
		Type: InTotoStatementType,
		Subject: []statementEntry{{
			Name:   dockerReference,
			Digest: map[string]string{subjectDigest.Algorithm: subjectDigest.Hex},
		}},
		PredicateType: SignPredicateType,
		Predicate:     map[string]any{},
	}
	return json.Marshal(s)
}

// BundleJSON is the Sigstore bundle (v0.3 JSON) cosign v3 makes for
// subjectDigest claimed as dockerReference and signed with k: a DSSE
// envelope of Statement, the public key's hint (Key.Hint) as verification
// material, no transparency log entry, no timestamp. It is what SignBundle
// pushes, and what a local signature directory would hold.
func BundleJSON(subjectDigest v1.Hash, dockerReference string, k *Key) ([]byte, error) {
	st, err := Statement(subjectDigest, dockerReference)
	if err != nil {
		return nil, err
	}
	return StatementBundleJSON(st, k)
}

// StatementBundleJSON signs statement (any bytes: tests make statements
// about other digests or with other predicate types) into a bundle as
// BundleJSON does.
func StatementBundleJSON(statement []byte, k *Key) ([]byte, error) {
	kp, err := k.keypair()
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	pb, err := sign.Bundle(&sign.DSSEData{Data: statement, PayloadType: InTotoPayloadType}, kp, sign.BundleOptions{})
	if err != nil {
		return nil, fmt.Errorf("bundle: sign with %s: %w", k.Name, err)
	}
	out, err := (&bundle.Bundle{Bundle: pb}).MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return out, nil
}

// SignBundle signs subject as cosign v3 does (`cosign sign --key cosign.key
// --new-bundle-format --tlog-upload=false repo@digest`): BundleJSON of the
// subject's digest, pushed with PushBundle. subject needs only its Digest;
// a missing MediaType or Size is read from the registry.
func SignBundle(ctx context.Context, repo name.Repository, subject v1.Descriptor, dockerReference string, k *Key, opts ...remote.Option) error {
	b, err := BundleJSON(subject.Digest, dockerReference, k)
	if err != nil {
		return fmt.Errorf("sign %s@%s: %w", repo, subject.Digest, err)
	}
	_, err = PushBundle(ctx, repo, subject, b, SignPredicateType, opts...)
	return err
}

// SignBundleStatement is SignBundle with the statement given verbatim.
func SignBundleStatement(ctx context.Context, repo name.Repository, subject v1.Descriptor, statement []byte, k *Key, opts ...remote.Option) error {
	b, err := StatementBundleJSON(statement, k)
	if err != nil {
		return fmt.Errorf("sign %s@%s: %w", repo, subject.Digest, err)
	}
	var st struct {
		PredicateType string `json:"predicateType"`
	}
	json.Unmarshal(statement, &st) // the annotation is a hint only
	_, err = PushBundle(ctx, repo, subject, b, st.PredicateType, opts...)
	return err
}

// PushBundle pushes bundleJSON (any bytes) as cosign v3 does: blobs {} and
// bundleJSON, then, by digest, an OCI image manifest with artifactType
// BundleMediaType, config the OCI empty descriptor, one layer
// (BundleMediaType), subject, and annotations BundleContentAnnotation
// "dsse-envelope", BundlePredicateTypeAnnotation predicateType (left out
// when empty) and CreatedAnnotation (now). go-containerregistry then updates
// ReferrersTag(repo, subject) when the registry has no referrers API. It
// returns the referrer manifest's descriptor.
func PushBundle(ctx context.Context, repo name.Repository, subject v1.Descriptor, bundleJSON []byte, predicateType string, opts ...remote.Option) (v1.Descriptor, error) {
	fail := func(err error) (v1.Descriptor, error) {
		return v1.Descriptor{}, fmt.Errorf("push bundle for %s@%s: %w", repo, subject.Digest, err)
	}
	opts = append(opts, remote.WithContext(ctx))
	if subject.MediaType == "" || subject.Size == 0 {
		desc, err := remote.Head(repo.Digest(subject.Digest.String()), opts...)
		if err != nil {
			return fail(fmt.Errorf("subject: %w", err))
		}
		subject = *desc
	}
	config := static.NewLayer(emptyJSON, types.OCIEmptyJSON)
	layer := static.NewLayer(bundleJSON, BundleMediaType)
	var descs []v1.Descriptor
	for _, l := range []v1.Layer{config, layer} {
		if err := remote.WriteLayer(repo, l, opts...); err != nil {
			return fail(err)
		}
		d, err := l.Digest()
		if err != nil {
			return fail(err)
		}
		mt, _ := l.MediaType()
		descs = append(descs, v1.Descriptor{MediaType: mt, Digest: d, Size: mustSize(l)})
	}
	// cosign also names the artifact type on the config descriptor.
	descs[0].ArtifactType = string(BundleMediaType)
	annotations := map[string]string{
		BundleContentAnnotation: "dsse-envelope",
		CreatedAnnotation:       time.Now().UTC().Format(time.RFC3339),
	}
	if predicateType != "" {
		annotations[BundlePredicateTypeAnnotation] = predicateType
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  string(BundleMediaType),
		Config:        descs[0],
		Layers:        descs[1:],
		Subject:       &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations:   annotations,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return fail(err)
	}
	d, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return fail(err)
	}
	if err := remote.Put(repo.Digest(d.String()), rawManifest{raw: raw, mediaType: m.MediaType}, opts...); err != nil {
		return fail(err)
	}
	return v1.Descriptor{MediaType: m.MediaType, Digest: d, Size: size, ArtifactType: m.ArtifactType, Annotations: annotations}, nil
}

// mustSize is a static layer's size (static layers cannot fail).
func mustSize(l v1.Layer) int64 {
	n, _ := l.Size()
	return n
}

// rawManifest is a remote.Taggable of manifest bytes.
type rawManifest struct {
	raw       []byte
	mediaType types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }
