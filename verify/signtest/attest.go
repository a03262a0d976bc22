package signtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
)

// What cosign writes for an attestation (cosign attest).
const (
	// InTotoStatementV01 is the statement _type cosign v2's attest writes
	// (cosign v3 writes InTotoStatementType, v1).
	InTotoStatementV01 = "https://in-toto.io/Statement/v0.1"
	// DSSEMediaType is the media type of each layer of the .att image.
	DSSEMediaType types.MediaType = "application/vnd.dsse.envelope.v1+json"
	// AttestationTagSuffix ends the tag of the attestations of a digest.
	AttestationTagSuffix = ".att"
	// PredicateTypeAnnotation is the .att layer annotation naming the
	// predicate type.
	PredicateTypeAnnotation = "predicateType"
)

// Predicate types cosign attest --type writes.
const (
	SLSAProvenanceV02 = "https://slsa.dev/provenance/v0.2"
	SLSAProvenanceV1  = "https://slsa.dev/provenance/v1"
	VulnV1            = "https://cosign.sigstore.dev/attestation/vuln/v1"
)

// AttestationTag is the tag cosign v2 stores the attestations of digest d
// in: `sha256-<hex>.att` in repo.
func AttestationTag(repo name.Repository, d v1.Hash) name.Tag {
	return repo.Tag(d.Algorithm + "-" + d.Hex + AttestationTagSuffix)
}

// AttestationStatement is the in-toto statement cosign attest makes:
// _type statementType (InTotoStatementV01 for cosign v2,
// InTotoStatementType for v3), one subject {name: subjectName (cosign
// names the repository), digest: {sha256: hex of d}}, predicateType, and
// predicate (JSON, as --predicate's file holds it).
func AttestationStatement(statementType, subjectName string, d v1.Hash, predicateType string, predicate []byte) ([]byte, error) {
	if !json.Valid(predicate) {
		return nil, fmt.Errorf("attestation statement: the predicate is not JSON")
	}
	return json.Marshal(struct {
		Type          string           `json:"_type"`
		PredicateType string           `json:"predicateType"`
		Subject       []statementEntry `json:"subject"`
		Predicate     json.RawMessage  `json:"predicate"`
	}{statementType, predicateType, []statementEntry{{Name: subjectName, Digest: map[string]string{d.Algorithm: d.Hex}}}, predicate})
}

// Envelope signs statement as cosign v2's attest does: sigstore's
// dsse.WrapSigner over the key's classic signer (SHA-256; Ed25519 pure),
// payload type InTotoPayloadType. It returns the envelope's JSON.
func Envelope(statement []byte, k *Key) ([]byte, error) {
	s, err := k.classicSigner()
	if err != nil {
		return nil, err
	}
	env, err := dsse.WrapSigner(s, InTotoPayloadType).SignMessage(bytes.NewReader(statement))
	if err != nil {
		return nil, fmt.Errorf("key %s: DSSE: %w", k.Name, err)
	}
	return env, nil
}

// AttestClassic attests d as cosign v2 does (`cosign attest --key
// cosign.key --type T --predicate P --tlog-upload=false repo@d`): the
// Envelope of statement, appended as one more layer (DSSEMediaType,
// annotations dev.cosignproject.cosign/signature "" and predicateType) to
// the image tagged AttestationTag(repo, d).
func AttestClassic(ctx context.Context, repo name.Repository, d v1.Hash, statement []byte, k *Key, opts ...remote.Option) error {
	var st struct {
		PredicateType string `json:"predicateType"`
	}
	if err := json.Unmarshal(statement, &st); err != nil {
		return fmt.Errorf("attest %s@%s: %w", repo, d, err)
	}
	env, err := Envelope(statement, k)
	if err != nil {
		return fmt.Errorf("attest %s@%s: %w", repo, d, err)
	}
	tag := AttestationTag(repo, d)
	opts = append(opts, remote.WithContext(ctx))
	base, err := signatureImage(tag, opts)
	if err != nil {
		return fmt.Errorf("attest %s@%s: %w", repo, d, err)
	}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:       static.NewLayer(env, DSSEMediaType),
		Annotations: map[string]string{SignatureAnnotation: "", PredicateTypeAnnotation: st.PredicateType},
	})
	if err != nil {
		return fmt.Errorf("attest %s@%s: %w", repo, d, err)
	}
	if err := remote.Write(tag, img, opts...); err != nil {
		return fmt.Errorf("attest %s@%s: push %s: %w", repo, d, tag, err)
	}
	return nil
}

// AttestBundle attests subject as cosign v3 does (`cosign attest --key
// cosign.key --new-bundle-format --tlog-upload=false --type T --predicate P
// repo@digest`): a Sigstore bundle of the DSSE-signed statement, pushed as
// a referrer with the dev.sigstore.bundle.predicateType annotation.
func AttestBundle(ctx context.Context, repo name.Repository, subject v1.Descriptor, statement []byte, k *Key, opts ...remote.Option) error {
	return SignBundleStatement(ctx, repo, subject, statement, k, opts...)
}
