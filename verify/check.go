package verify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
func check(c candidate, r policy.Requirement, keys map[string]crypto.PublicKey, named reference.Named, d digest.Digest) (*verdict.Satisfied, error) {
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
		key, identity, err = checkClassic(c, r, keys, d)
	case kindBundle:
		key, identity, err = checkBundle(c, r, keys, d)
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
func checkClassic(c candidate, r policy.Requirement, keys map[string]crypto.PublicKey, d digest.Digest) (*policy.PublicKey, string, error) {
	var key *policy.PublicKey
	for i := range r.Keys {
		for _, v := range verifiers(keys[string(r.Keys[i].PEM)]) {
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
func checkBundle(c candidate, r policy.Requirement, keys map[string]crypto.PublicKey, d digest.Digest) (*policy.PublicKey, string, error) {
	var b bundle.Bundle
	if err := b.UnmarshalJSON(c.bundle); err != nil {
		return nil, "", fmt.Errorf("not a Sigstore bundle: %v", err)
	}
	if d.Algorithm() != digest.SHA256 {
		return nil, "", fmt.Errorf("digest algorithm %s is not supported", d.Algorithm())
	}
	want, err := hex.DecodeString(d.Encoded())
	if err != nil {
		return nil, "", err
	}
	var lastErr error
	for i := range r.Keys {
		for _, v := range verifiers(keys[string(r.Keys[i].PEM)]) {
			tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
				return root.NewExpiringKey(v, time.Time{}, time.Time{}), nil
			})
			sv, err := sgverify.NewVerifier(tm, sgverify.WithNoObserverTimestamps())
			if err != nil {
				return nil, "", err
			}
			res, err := sv.Verify(&b, sgverify.NewPolicy(sgverify.WithArtifactDigest("sha256", want), sgverify.WithKey()))
			if err != nil {
				lastErr = err
				continue
			}
			st := res.Statement
			if st == nil {
				return nil, "", errors.New("bundle has no in-toto statement (a message signature is not a cosign image signature)")
			}
			if st.GetPredicateType() != CosignSignPredicate {
				return nil, "", fmt.Errorf("statement predicate %q is not cosign's signature %q (an attestation is not a signature)", st.GetPredicateType(), CosignSignPredicate)
			}
			for _, s := range st.GetSubject() {
				if s.GetDigest()["sha256"] == d.Encoded() {
					return &r.Keys[i], s.GetName(), nil
				}
			}
			return nil, "", fmt.Errorf("statement does not name %s", short(d))
		}
	}
	if lastErr != nil && strings.Contains(lastErr.Error(), "artifact digest") {
		return nil, "", fmt.Errorf("signed statement names another digest, not %s that runs", short(d))
	}
	if lastErr != nil && !strings.Contains(lastErr.Error(), "verif") {
		return nil, "", fmt.Errorf("not signed by a trusted key (%s): %v", keyList(r), lastErr)
	}
	return nil, "", errors.New("not signed by a trusted key (" + keyList(r) + ")")
}

func keyList(r policy.Requirement) string {
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
