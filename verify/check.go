package verify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/hardened-runtime/hardened/verify/conditions"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/verify/verdict"
)

// check verifies one signature against one sigstoreSigned requirement for
// the image named and the digest d: made by one of the requirement's keys,
// over a payload that names d, and an identity the requirement accepts.
func check(c candidate, r policy.Requirement, ts *trustStore, named reference.Named, d digest.Digest) (*verdict.Satisfied, error) {
	var (
		key      *policy.PublicKey
		identity string
		err      error
	)
	switch c.kind {
	case kindClassic:
		if c.sig == nil {
			return nil, errors.New("signature annotation is not base64")
		}
		key, identity, err = checkClassic(c, r, ts, d)
	case kindBundle:
		key, identity, err = checkBundle(c, r, ts, d)
	default:
		err = fmt.Errorf("unknown signature kind %q", c.kind)
	}
	if err != nil {
		return nil, err
	}
	if err := matchIdentity(r.SignedIdentity, named, identity); err != nil {
		return nil, err
	}
	return &verdict.Satisfied{Type: r.Type, Key: key.Source, Signature: c.where, Identity: identity}, nil
}

// hashesFor lists the hash functions to try for a key: cosign signs with
// SHA-256 by default and, for P-384 and P-521 keys, newer releases with
// SHA-384 and SHA-512.
func hashesFor(key crypto.PublicKey) []crypto.Hash {
	if ec, ok := key.(*ecdsa.PublicKey); ok {
		switch ec.Curve {
		case elliptic.P384():
			return []crypto.Hash{crypto.SHA384, crypto.SHA256}
		case elliptic.P521():
			return []crypto.Hash{crypto.SHA512, crypto.SHA256}
		}
	}
	return []crypto.Hash{crypto.SHA256}
}

func verifiers(key crypto.PublicKey) []signature.Verifier {
	var out []signature.Verifier
	if key == nil {
		return nil
	}
	if ed, ok := key.(ed25519.PublicKey); ok {
		// cosign before 2.6 signs images with pure Ed25519, newer
		// releases with Ed25519ph.
		if v, err := signature.LoadED25519Verifier(ed); err == nil {
			out = append(out, v)
		}
		if v, err := signature.LoadED25519phVerifier(ed); err == nil {
			out = append(out, v)
		}
		return out
	}
	for _, h := range hashesFor(key) {
		if v, err := signature.LoadVerifier(key, h); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// checkClassic checks a cosign simple signing signature.
func checkClassic(c candidate, r policy.Requirement, ts *trustStore, d digest.Digest) (*policy.PublicKey, string, error) {
	var key *policy.PublicKey
	if r.Keyless != nil {
		kt := ts.keyless[r.Keyless]
		if kt == nil {
			return nil, "", errors.New("keyless trust material not loaded")
		}
		b, err := classicKeylessBundle(c)
		if err != nil {
			return nil, "", fmt.Errorf("not a keyless signature: %v", err)
		}
		if _, err := kt.verify(b, sgverify.WithArtifact(bytes.NewReader(c.payload))); err != nil {
			return nil, "", keylessError(kt, err)
		}
		key = &policy.PublicKey{Source: kt.who}
	}
	for i := 0; key == nil && i < len(r.Keys); i++ {
		for _, v := range verifiers(ts.keys[string(r.Keys[i].PEM)]) {
			if v.VerifySignature(bytes.NewReader(c.sig), bytes.NewReader(c.payload)) == nil {
				key = &r.Keys[i]
				break
			}
		}
		if key != nil {
			break
		}
	}
	if key == nil {
		return nil, "", errors.New("not signed by a trusted key (" + keyList(r) + ")")
	}
	var p payload.SimpleContainerImage
	if err := json.Unmarshal(c.payload, &p); err != nil {
		return nil, "", fmt.Errorf("payload is not a simple signing payload: %v", err)
	}
	if p.Critical.Type != payload.CosignSignatureType {
		return nil, "", fmt.Errorf("payload type %q is not %q", p.Critical.Type, payload.CosignSignatureType)
	}
	if p.Critical.Image.DockerManifestDigest != d.String() {
		return nil, "", fmt.Errorf("payload names digest %s, not %s that runs", short(digest.Digest(p.Critical.Image.DockerManifestDigest)), short(d))
	}
	return key, p.Critical.Identity.DockerReference, nil
}

// checkBundle checks a Sigstore bundle made with a key (no certificate,
// transparency log or timestamp needed: the key is the trust) whose DSSE
// statement is cosign's signature statement over d.
func checkBundle(c candidate, r policy.Requirement, ts *trustStore, d digest.Digest) (*policy.PublicKey, string, error) {
	key, st, err := bundleStatement(c, r, ts, d)
	if err != nil {
		return nil, "", err
	}
	if st.PredicateType != CosignSignPredicate {
		return nil, "", fmt.Errorf("statement predicate %q is not cosign's signature %q (an attestation is not a signature)", st.PredicateType, CosignSignPredicate)
	}
	return key, st.subjectName(d), nil
}

// statement is a verified in-toto statement about the digest that runs.
type statement struct {
	Type          string `json:"_type"`
	PredicateType string `json:"predicateType"`
	Subject       []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	// raw is the statement's JSON, decoded, for conditions.
	raw map[string]any
}

// in-toto statement types cosign writes (v0.1 by cosign v2's attest, v1
// by cosign v3).
var statementTypes = map[string]bool{"https://in-toto.io/Statement/v0.1": true, "https://in-toto.io/Statement/v1": true}

// parseStatement decodes a DSSE payload as an in-toto statement about d.
func parseStatement(payload []byte, d digest.Digest) (*statement, error) {
	var st statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("payload is not an in-toto statement: %v", err)
	}
	if !statementTypes[st.Type] {
		return nil, fmt.Errorf("statement _type %q is not an in-toto statement", st.Type)
	}
	if err := json.Unmarshal(payload, &st.raw); err != nil {
		return nil, err
	}
	if st.subjectName(d) == "" && !st.about(d) {
		return nil, fmt.Errorf("statement does not name %s", short(d))
	}
	return &st, nil
}

// about reports whether a subject of the statement is d.
func (st *statement) about(d digest.Digest) bool {
	for _, s := range st.Subject {
		if s.Digest[d.Algorithm().String()] == d.Encoded() {
			return true
		}
	}
	return false
}

// subjectName is the name of the subject that is d ("" for none).
func (st *statement) subjectName(d digest.Digest) string {
	for _, s := range st.Subject {
		if s.Digest[d.Algorithm().String()] == d.Encoded() {
			return s.Name
		}
	}
	return ""
}

// bundleStatement verifies a Sigstore bundle made with one of r's keys
// whose DSSE statement is about d, and returns the key and the statement.
func bundleStatement(c candidate, r policy.Requirement, ts *trustStore, d digest.Digest) (*policy.PublicKey, *statement, error) {
	var b bundle.Bundle
	if err := b.UnmarshalJSON(c.bundle); err != nil {
		return nil, nil, fmt.Errorf("not a Sigstore bundle: %v", err)
	}
	if d.Algorithm() != digest.SHA256 {
		return nil, nil, fmt.Errorf("digest algorithm %s is not supported", d.Algorithm())
	}
	want, err := hex.DecodeString(d.Encoded())
	if err != nil {
		return nil, nil, err
	}
	if r.Keyless != nil {
		kt := ts.keyless[r.Keyless]
		if kt == nil {
			return nil, nil, errors.New("keyless trust material not loaded")
		}
		if _, err := kt.verify(&b, sgverify.WithArtifactDigest("sha256", want)); err != nil {
			if strings.Contains(err.Error(), "artifact digest") {
				return nil, nil, fmt.Errorf("signed statement names another digest, not %s that runs", short(d))
			}
			return nil, nil, keylessError(kt, err)
		}
		if b.GetDsseEnvelope() == nil {
			return nil, nil, errors.New("bundle has no in-toto statement (a message signature is not a cosign image signature)")
		}
		st, err := parseStatement(b.GetDsseEnvelope().GetPayload(), d)
		if err != nil {
			return nil, nil, err
		}
		return &policy.PublicKey{Source: kt.who}, st, nil
	}
	var lastErr error
	for i := range r.Keys {
		for _, v := range verifiers(ts.keys[string(r.Keys[i].PEM)]) {
			tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
				return root.NewExpiringKey(v, time.Time{}, time.Time{}), nil
			})
			sv, err := sgverify.NewVerifier(tm, sgverify.WithNoObserverTimestamps())
			if err != nil {
				return nil, nil, err
			}
			res, err := sv.Verify(&b, sgverify.NewPolicy(sgverify.WithArtifactDigest("sha256", want), sgverify.WithKey()))
			if err != nil {
				lastErr = err
				continue
			}
			if res.Statement == nil || b.GetDsseEnvelope() == nil {
				return nil, nil, errors.New("bundle has no in-toto statement (a message signature is not a cosign image signature)")
			}
			st, err := parseStatement(b.GetDsseEnvelope().GetPayload(), d)
			if err != nil {
				return nil, nil, err
			}
			return &r.Keys[i], st, nil
		}
	}
	if lastErr != nil && strings.Contains(lastErr.Error(), "artifact digest") {
		return nil, nil, fmt.Errorf("signed statement names another digest, not %s that runs", short(d))
	}
	if lastErr != nil && !strings.Contains(lastErr.Error(), "verif") {
		return nil, nil, fmt.Errorf("not signed by a trusted key (%s): %v", keyList(r), lastErr)
	}
	return nil, nil, errors.New("not signed by a trusted key (" + keyList(r) + ")")
}

// dsseStatement verifies a cosign v2 attestation (a DSSE envelope signed
// over its pre-authentication encoding with one of r's keys) and returns
// the key and the statement, which must be about d.
func dsseStatement(c candidate, r policy.Requirement, ts *trustStore, d digest.Digest) (*policy.PublicKey, *statement, error) {
	if r.Keyless != nil {
		return nil, nil, errors.New("not signed by a trusted key: keyless attestations are checked in cosign v3's bundle format only (cosign attest --new-bundle-format)")
	}
	var env dsse.Envelope
	if err := json.Unmarshal(c.envelope, &env); err != nil {
		return nil, nil, fmt.Errorf("not a DSSE envelope: %v", err)
	}
	if env.PayloadType != InTotoPayloadType {
		return nil, nil, fmt.Errorf("envelope payload type %q is not %q", env.PayloadType, InTotoPayloadType)
	}
	payload, err := env.DecodeB64Payload()
	if err != nil {
		return nil, nil, fmt.Errorf("envelope payload: %v", err)
	}
	pae := dsse.PAE(env.PayloadType, payload)
	var key *policy.PublicKey
	for _, sig := range env.Signatures {
		raw, err := base64.StdEncoding.DecodeString(sig.Sig)
		if err != nil {
			if raw, err = base64.URLEncoding.DecodeString(sig.Sig); err != nil {
				continue
			}
		}
		for i := range r.Keys {
			for _, v := range verifiers(ts.keys[string(r.Keys[i].PEM)]) {
				if v.VerifySignature(bytes.NewReader(raw), bytes.NewReader(pae)) == nil {
					key = &r.Keys[i]
					break
				}
			}
			if key != nil {
				break
			}
		}
		if key != nil {
			break
		}
	}
	if key == nil {
		return nil, nil, errors.New("not signed by a trusted key (" + keyList(r) + ")")
	}
	st, err := parseStatement(payload, d)
	if err != nil {
		return nil, nil, err
	}
	return key, st, nil
}

// checkAttestation checks one candidate against a sigstoreAttested
// requirement: signed by one of its keys, a statement about d of the
// predicate type required, whose predicate meets every condition.
func checkAttestation(c candidate, r policy.Requirement, ts *trustStore, d digest.Digest, conds conditions.Set, in conditions.Input) (*verdict.Satisfied, error) {
	var (
		key *policy.PublicKey
		st  *statement
		err error
	)
	switch c.kind {
	case kindBundle:
		key, st, err = bundleStatement(c, r, ts, d)
	case kindDSSE:
		key, st, err = dsseStatement(c, r, ts, d)
	default:
		return nil, errNotAttestation
	}
	if err != nil {
		return nil, err
	}
	if st.PredicateType != r.PredicateType {
		return nil, &otherPredicate{st.PredicateType}
	}
	in.Statement = st.raw
	if err := conds.Check(in); err != nil {
		return nil, err
	}
	return &verdict.Satisfied{Type: r.Type, Key: key.Source, Signature: c.where, Identity: r.PredicateType}, nil
}

// errNotAttestation: a classic signature is not an attestation.
var errNotAttestation = errors.New("not an attestation")

// otherPredicate: a verified statement of another predicate type.
type otherPredicate struct{ typ string }

func (e *otherPredicate) Error() string { return "predicate type " + e.typ }

func keyList(r policy.Requirement) string {
	if r.Keyless != nil {
		return "keyless " + r.Keyless.Identity()
	}
	var s []string
	for _, k := range r.Keys {
		s = append(s, k.Source)
	}
	return strings.Join(s, ", ")
}

// matchIdentity checks the reference a signature names against the
// requirement's signedIdentity (default matchRepository).
func matchIdentity(id *policy.SignedIdentity, image reference.Named, signed string) error {
	typ := policy.MatchRepository
	if id != nil {
		typ = id.Type
	}
	if signed == "" {
		// cosign v3's statements name only the digest: the signature
		// then says nothing about the repository, which rules that
		// accept any repository of the signed digest can live with.
		_, byDigest := image.(reference.Canonical)
		if typ == policy.MatchRepository || typ == policy.MatchRepoDigestOrExact && byDigest {
			return nil
		}
		return fmt.Errorf("signature names no image (cosign v3 signs the digest only), and %s needs one; use matchRepository", typ)
	}
	s, err := reference.ParseNormalizedNamed(signed)
	if err != nil {
		return fmt.Errorf("signature names %q, not a reference", signed)
	}
	sameRepo := s.Name() == image.Name()
	exact := func() bool {
		_, imgTagged := image.(reference.Tagged)
		return imgTagged && s.String() == reference.TagNameOnly(image).String()
	}
	ok := false
	switch typ {
	case policy.MatchRepository:
		ok = sameRepo
	case policy.MatchExact:
		ok = exact()
	case policy.MatchRepoDigestOrExact:
		if _, byDigest := image.(reference.Canonical); byDigest {
			ok = sameRepo
		} else {
			ok = exact()
		}
	case policy.ExactRepository:
		want, err := reference.ParseNormalizedNamed(id.DockerRepository)
		ok = err == nil && s.Name() == want.Name()
	case policy.ExactReference:
		want, err := reference.ParseNormalizedNamed(id.DockerReference)
		ok = err == nil && s.String() == want.String()
	default:
		return fmt.Errorf("signedIdentity %q cannot be checked", typ)
	}
	if !ok {
		return fmt.Errorf("signature names %s, which %s does not accept for %s", s.String(), typ, image.String())
	}
	return nil
}
