// Package verify checks that the image digest a container runs is signed
// and attested as the node policy's signatures section requires, the way
// cosign signs and attests: the classic `sha256-<hex>.sig` and `.att` tags
// (simple signing payloads, DSSE envelopes) and Sigstore bundles stored as
// OCI 1.1 referrers, from the registry (through containerd's hosts.toml) or
// a local signature directory; by keys, or keylessly (Fulcio certificates,
// Rekor entries, a trusted root), offline. Attestations' CEL conditions are
// evaluated by verify/conditions. Verified verdicts are cached by policy
// hash, image, digest, namespace section and reference.
//
// Registry access is go-containerregistry's, signature checks are the
// sigstore libraries'; this package only decides what to look for and what
// must match.
package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/verify/conditions"
	"github.com/hardened-runtime/hardened/verify/verdict"
)

// Image is what is verified: the reference containerd records for the
// container and the digest it runs.
type Image struct {
	// Name is the image reference (registry/repo:tag or @digest).
	Name string
	// Digest is the manifest or index digest containerd's image record
	// points at: what signatures must name.
	Digest digest.Digest
	// PlatformDigest is, for an index, the manifest of the platform that
	// runs; a signature on it is accepted too.
	PlatformDigest digest.Digest
	// KubernetesNamespace is the namespace of the pod the container is in
	// ("" for a container not in a pod): it picks the section of
	// signatures.namespaces that applies.
	KubernetesNamespace string
	// Reference is the reference the container was created from, if not
	// Name (a pod spec's image under CRI): pinned requirements are decided
	// on it. Default: Name.
	Reference string
}

// reference is the reference pinning is decided on.
func (img Image) reference() string {
	if img.Reference != "" {
		return img.Reference
	}
	return img.Name
}

// subject is the cache key of the image's verdict under scope sc.
func (img Image) subject(policyHash string, sc policy.Scope) verdict.Subject {
	s := verdict.Subject{PolicyHash: policyHash, Image: img.Name, Digest: img.Digest.String(), PlatformDigest: img.PlatformDigest.String(), KubernetesNamespace: sc.Namespace}
	if img.Reference != img.Name {
		s.Reference = img.Reference
	}
	return s
}

// RefusedError is a refusal: the image is not accepted by the policy. Its
// message is one line that names the image, the scope and the failure.
type RefusedError = verdict.Refusal

// Verifier checks images against one signatures section.
type Verifier struct {
	sigs  *policy.Signatures
	cache verdict.Cache
	reg   *registries
	// Now is the clock (tests).
	Now func() time.Time

	// trust is the policy's trusted keys and keyless trust material.
	trust *trustStore

	// down lists registry hosts found unreachable: the second digest of
	// an index does not wait for them again.
	down map[string]bool

	mu  sync.Mutex
	mem map[string]*verdict.Verdict
	// conds are the compiled conditions of each sigstoreAttested
	// requirement, by its field (policy.ScopeField + "[i]").
	conds map[string]conditions.Set
}

// CompileConditions compiles the CEL conditions of every sigstoreAttested
// requirement of the section (as New does), for `hardenctl policy validate`.
func CompileConditions(sigs *policy.Signatures) error {
	var errs []error
	for field, rs := range requirementsOf(sigs) {
		for i, r := range rs {
			if r.Type == policy.SigstoreAttested {
				if _, err := conditions.Compile(fmt.Sprintf("%s[%d]", field, i), r.Conditions); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// requirementsOf lists every requirement list of the section by its field:
// signatures.default, signatures.scopes["x"], and those of each namespace.
func requirementsOf(s *policy.Signatures) map[string][]policy.Requirement {
	out := map[string][]policy.Requirement{policy.ScopeField("", "default"): s.Default}
	for scope, r := range s.Scopes {
		out[policy.ScopeField("", scope)] = r
	}
	for ns, sec := range s.Namespaces {
		if sec == nil {
			continue
		}
		out[policy.ScopeField(ns, "default")] = sec.Default
		for scope, r := range sec.Scopes {
			out[policy.ScopeField(ns, scope)] = r
		}
	}
	return out
}

// New returns a verifier for the section, caching verdicts in cacheDir
// ("" for memory only).
func New(sigs *policy.Signatures, cacheDir string) (*Verifier, error) {
	if sigs == nil {
		sigs = policy.BuiltinSignatures()
	}
	reg, err := newRegistries(sigs)
	if err != nil {
		return nil, err
	}
	v := &Verifier{sigs: sigs, cache: verdict.Cache{Dir: cacheDir, TTL: time.Duration(sigs.VerdictTTL)}, reg: reg, Now: time.Now, mem: map[string]*verdict.Verdict{}, trust: &trustStore{keys: map[string]crypto.PublicKey{}, keyless: map[*policy.Keyless]*keylessTrust{}}, down: map[string]bool{}, conds: map[string]conditions.Set{}}
	for field, rs := range requirementsOf(sigs) {
		for i, r := range rs {
			rf := fmt.Sprintf("%s[%d]", field, i)
			for _, k := range r.Keys {
				key, err := parseKey(k.PEM)
				if err != nil {
					return nil, fmt.Errorf("%s %s: %w", rf, k.Source, err)
				}
				v.trust.keys[string(k.PEM)] = key
			}
			if k := r.Keyless; k != nil && v.trust.keyless[k] == nil {
				kt, err := newKeylessTrust(k)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", rf, err)
				}
				v.trust.keyless[k] = kt
			}
		}
	}
	return v, nil
}

// conditionsOf returns the compiled conditions of the sigstoreAttested
// requirement at field. They are compiled on first use, not by New: a
// verifier that answers from the verdict cache (the pull gate, a warm
// hardened-verify) never pays for CEL.
func (v *Verifier) conditionsOf(field string, r policy.Requirement) (conditions.Set, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if set, ok := v.conds[field]; ok {
		return set, nil
	}
	set, err := conditions.Compile(field, r.Conditions)
	if err != nil {
		return nil, err
	}
	v.conds[field] = set
	return set, nil
}

// parseKey parses a cosign public key with crypto/x509 (the policy has
// checked its structure) and refuses curves and sizes cosign does not make.
func parseKey(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(bytes.TrimSpace(data))
	if block == nil {
		return nil, errors.New("not a PEM public key")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a public key: %v", err)
	}
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() && k.Curve != elliptic.P521() {
			return nil, fmt.Errorf("ECDSA curve %s is not supported", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits is too short (at least 2048)", k.N.BitLen())
		}
	default:
		return nil, fmt.Errorf("key type %T is not supported (ECDSA, Ed25519, RSA)", key)
	}
	return key, nil
}

// Verify accepts the image with a verdict or refuses it with a
// *RefusedError; any other error (a bad request) also means: do not run.
func (v *Verifier) Verify(ctx context.Context, img Image) (*verdict.Verdict, error) {
	if v.sigs.Builtin {
		return &verdict.Verdict{Image: img.Name, Digest: img.Digest.String(), Scope: "default", PolicyHash: v.sigs.Hash,
			Requirements: []verdict.Satisfied{{Type: policy.InsecureAcceptAnything}}, Builtin: true, VerifiedAt: v.Now().UTC()}, nil
	}
	if img.Name == "" {
		return nil, &RefusedError{Image: "(none)", Digest: "-", Scope: "default",
			Reason: "the container was made from a root filesystem, not an image, so there is no signature to check"}
	}
	sc, err := v.sigs.MatchIn(img.KubernetesNamespace, img.Name, img.Digest.String(), img.PlatformDigest.String())
	if err != nil {
		return nil, &RefusedError{Image: img.Name, Digest: img.Digest.String(), Scope: "-", Reason: err.Error(), Fix: verdict.NameFix}
	}
	refuse := func(format string, args ...any) error {
		return &RefusedError{Image: img.Name, Digest: img.Digest.String(), Scope: sc.Name, Namespace: sc.Namespace, Reason: fmt.Sprintf(format, args...)}
	}
	if sc.Rejects() {
		r := refuse("the scope's requirements include reject").(*RefusedError)
		r.Fix = verdict.RejectFix
		return nil, r
	}
	needCheck := sc.NeedsVerifier()
	if err := img.Digest.Validate(); err != nil {
		return nil, refuse("containerd's image record has no valid digest (%q): %v", img.Digest, err)
	}
	if img.PlatformDigest != "" && img.PlatformDigest.Validate() != nil {
		img.PlatformDigest = ""
	}
	if err := sc.CheckPinning(img.reference(), img.Digest.String(), img.PlatformDigest.String()); err != nil {
		r := refuse("%v", err).(*RefusedError)
		var pe *policy.PinningError
		if errors.As(err, &pe) {
			r.Reason, r.Fix = pe.Reason, pe.Fix
		}
		return nil, r
	}
	subject := img.subject(v.sigs.Hash, sc)
	out := &verdict.Verdict{Image: img.Name, Digest: img.Digest.String(), PlatformDigest: img.PlatformDigest.String(), Scope: sc.Name, PolicyHash: v.sigs.Hash,
		KubernetesNamespace: subject.KubernetesNamespace, Reference: subject.Reference}
	if !needCheck {
		for _, r := range sc.Requirements {
			out.Requirements = append(out.Requirements, satisfiedWithoutCheck(r, img))
		}
		out.VerifiedAt = v.Now().UTC()
		return out, nil
	}
	key := subject.Key()
	v.mu.Lock()
	cached := v.mem[key]
	v.mu.Unlock()
	if cached != nil {
		c := *cached
		c.Cached = true
		return &c, nil
	}
	if c, ok := v.cache.LoadSubject(subject); ok {
		return c, nil
	}

	named, err := reference.ParseNormalizedNamed(img.Name)
	if err != nil {
		return nil, refuse("%v", err)
	}
	digests := []digest.Digest{img.Digest}
	if img.PlatformDigest != "" && img.PlatformDigest != img.Digest {
		digests = append(digests, img.PlatformDigest)
	}
	att := false
	for i, r := range sc.Requirements {
		if r.Type == policy.SigstoreAttested {
			att = true
			// A condition that does not compile is the policy's error,
			// not a refusal of the image (hardened-verify exits 2).
			if _, err := v.conditionsOf(fmt.Sprintf("%s[%d]", sc.Field(), i), r); err != nil {
				return nil, fmt.Errorf("invalid node policy: %w", err)
			}
		}
	}
	var failures []string
	fix := "" // the default: sign the digest
	for _, d := range digests {
		// The local signature directory first: an air-gapped node does
		// not wait for registries it cannot reach.
		local, localErr := readSignatureDir(v.sigs.SignatureDir, d)
		sat, why, failed := v.satisfy(sc, img, named, d, local)
		if sat == nil {
			var sigs []candidate
			var lookErr error
			sigs, lookErr = v.collect(ctx, named, d, att, local, localErr)
			sat, why, failed = v.satisfy(sc, img, named, d, sigs)
			if lookErr != nil {
				why = append(why, lookErr.Error())
			}
		}
		if sat != nil {
			out.Requirements = sat
			out.SignedDigest = d.String()
			out.VerifiedAt = v.Now().UTC()
			v.mu.Lock()
			v.mem[key] = out
			v.mu.Unlock()
			_ = v.cache.Store(out)
			return out, nil
		}
		label := ""
		if len(digests) > 1 {
			label = "on " + short(d) + ": "
		}
		failures = append(failures, label+strings.Join(why, "; "))
		switch {
		case failed != nil && failed.Type == policy.SigstoreAttested && failed.Keyless != nil:
			fix = fmt.Sprintf("attest this digest as %s requires, keylessly as %s (cosign attest --new-bundle-format --type %s), or change %s in the node policy", sc.Field(), failed.Keyless.Identity(), failed.PredicateType, sc.Field())
		case failed != nil && failed.Type == policy.SigstoreAttested:
			fix = fmt.Sprintf("attest this digest as %s requires (cosign attest --key KEY --type %s), or change %s in the node policy", sc.Field(), failed.PredicateType, sc.Field())
		case failed != nil && failed.Keyless != nil:
			fix = fmt.Sprintf("sign this digest keylessly as %s (cosign sign with that OIDC identity), or change %s in the node policy", failed.Keyless.Identity(), sc.Field())
		}
	}
	r := refuse("%s", strings.Join(failures, " | ")).(*RefusedError)
	r.Fix = fix
	return nil, r
}

// satisfy checks every requirement of the scope against the signatures
// found for d; it returns what satisfied them, or why not.
func (v *Verifier) satisfy(sc policy.Scope, img Image, named reference.Named, d digest.Digest, sigs []candidate) ([]verdict.Satisfied, []string, *policy.Requirement) {
	var out []verdict.Satisfied
	for i, r := range sc.Requirements {
		var ok *verdict.Satisfied
		var why string
		switch r.Type {
		case policy.InsecureAcceptAnything, policy.Pinned:
			out = append(out, satisfiedWithoutCheck(r, img))
			continue
		case policy.SigstoreSigned:
			ok, why = v.signed(r, named, d, sigs)
		case policy.SigstoreAttested:
			in := conditions.Input{Image: img.Name, Digest: img.Digest.String(), Now: v.Now()}
			conds, err := v.conditionsOf(fmt.Sprintf("%s[%d]", sc.Field(), i), r)
			if err != nil {
				return nil, []string{fmt.Sprintf("invalid node policy: %v", err)}, &sc.Requirements[i]
			}
			ok, why = v.attested(r, conds, d, sigs, in)
		default:
			return nil, []string{fmt.Sprintf("requirement %d: type %q cannot be checked", i, r.Type)}, &sc.Requirements[i]
		}
		if ok == nil {
			return nil, []string{why}, &sc.Requirements[i]
		}
		out = append(out, *ok)
	}
	return out, nil, nil
}

// signed checks a sigstoreSigned requirement against the candidates.
func (v *Verifier) signed(r policy.Requirement, named reference.Named, d digest.Digest, sigs []candidate) (*verdict.Satisfied, string) {
	var n int
	var rejects []string
	for _, c := range sigs {
		if c.kind == kindDSSE {
			continue // a cosign v2 attestation is not a signature
		}
		n++
		s, err := check(c, r, v.trust, named, d)
		if err == nil {
			return s, ""
		}
		rejects = append(rejects, c.where+": "+err.Error())
	}
	if n == 0 {
		return nil, "no signature found"
	}
	return nil, fmt.Sprintf("%d signature(s), none acceptable: %s", n, strings.Join(dedupe(rejects), "; "))
}

// attested checks a sigstoreAttested requirement against the candidates:
// one attestation of its predicate type, signed by one of its keys, must
// meet every condition. Why not names the predicate type, what was found
// instead, or the condition that failed with the values seen.
func (v *Verifier) attested(r policy.Requirement, conds conditions.Set, d digest.Digest, sigs []candidate, in conditions.Input) (*verdict.Satisfied, string) {
	var failed, untrusted, others []string
	for _, c := range sigs {
		if c.kind == kindClassic {
			continue
		}
		s, err := checkAttestation(c, r, v.trust, d, conds, in)
		var op *otherPredicate
		switch {
		case err == nil:
			return s, ""
		case errors.As(err, &op):
			others = append(others, op.typ+" ("+c.where+")")
		case strings.Contains(err.Error(), "not signed by a trusted key"):
			// Said for the admin only: what the untrusted statement claims.
			if pt := unverifiedPredicateType(c); pt != "" {
				untrusted = append(untrusted, fmt.Sprintf("%s by another key (%s)", pt, c.where))
			} else {
				untrusted = append(untrusted, c.where+": not signed by a trusted key")
			}
		case strings.HasPrefix(err.Error(), "condition "):
			failed = append(failed, fmt.Sprintf("attestation %s (%s): %v", r.PredicateType, c.where, err))
		default:
			untrusted = append(untrusted, c.where+": "+err.Error())
		}
	}
	if len(failed) > 0 {
		return nil, strings.Join(dedupe(failed), "; ")
	}
	msg := fmt.Sprintf("no attestation of predicate type %s signed by a trusted key (%s)", r.PredicateType, keyList(r))
	if len(others) > 0 {
		msg += "; found other predicate types: " + strings.Join(dedupe(others), ", ")
	}
	if len(untrusted) > 0 {
		msg += "; not acceptable: " + strings.Join(dedupe(untrusted), ", ")
	}
	return nil, msg
}

// unverifiedPredicateType is the predicate type an attestation whose
// signature was not accepted claims: for messages only.
func unverifiedPredicateType(c candidate) string {
	var payload []byte
	switch c.kind {
	case kindDSSE:
		var env dsse.Envelope
		if json.Unmarshal(c.envelope, &env) != nil {
			return ""
		}
		payload, _ = env.DecodeB64Payload()
	case kindBundle:
		var b bundle.Bundle
		if b.UnmarshalJSON(c.bundle) != nil || b.GetDsseEnvelope() == nil {
			return ""
		}
		payload = b.GetDsseEnvelope().GetPayload()
	}
	var st struct {
		PredicateType string `json:"predicateType"`
	}
	if json.Unmarshal(payload, &st) != nil || len(st.PredicateType) > 200 {
		return ""
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(st.PredicateType, "?"))
}

// satisfiedWithoutCheck is the record of a requirement decided without
// a signature: insecureAcceptAnything, or pinned (checked before).
func satisfiedWithoutCheck(r policy.Requirement, img Image) verdict.Satisfied {
	if r.Type == policy.Pinned {
		return verdict.Satisfied{Type: r.Type, Identity: img.reference()}
	}
	return verdict.Satisfied{Type: r.Type}
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func short(d digest.Digest) string {
	s := d.String()
	if len(s) > 19 {
		return s[:19] + "…"
	}
	return s
}

// IsRefused reports whether err is a policy refusal.
func IsRefused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}
