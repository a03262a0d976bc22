// Package verdict holds the outcome of an image signature verification and
// its on-disk cache. It is small on purpose: the shim reads cached verdicts
// itself and starts the verifier (package verify, with the registry and
// sigstore libraries) only on a miss.
package verdict

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hardened-runtime/hardened/internal/atomicfile"
)

// Verdict says why an image was accepted.
type Verdict struct {
	// Image is the reference containerd records for the container.
	Image string `json:"image"`
	// Digest is the manifest (or index) digest containerd runs.
	Digest string `json:"digest"`
	// PlatformDigest is, for an index, the platform manifest that runs:
	// part of the cache key, since a signature may be on it.
	PlatformDigest string `json:"platformDigest,omitempty"`
	// SignedDigest is the digest the accepted signatures are on: Digest,
	// or the platform manifest of an index.
	SignedDigest string `json:"signedDigest,omitempty"`
	// Scope is the policy scope that matched ("default" for none).
	Scope string `json:"scope"`
	// KubernetesNamespace is the namespace whose section of
	// signatures.namespaces applied ("" for the section's own scopes):
	// part of the cache key.
	KubernetesNamespace string `json:"kubernetesNamespace,omitempty"`
	// Reference is the reference the container was created from, when it
	// is not Image (a pod spec's image under CRI): part of the cache key,
	// since pinning is decided on it.
	Reference string `json:"reference,omitempty"`
	// PolicyHash is the hash of the policy's signatures section.
	PolicyHash string `json:"policyHash"`
	// Requirements lists each requirement and what satisfied it.
	Requirements []Satisfied `json:"requirements"`
	// Builtin is true when the policy has no signatures section.
	Builtin bool `json:"builtin,omitempty"`
	// Cached says the verdict came from the cache.
	Cached bool `json:"cached,omitempty"`
	// VerifiedAt is when the signatures were checked.
	VerifiedAt time.Time `json:"verifiedAt"`
}

// Satisfied is one satisfied requirement.
type Satisfied struct {
	Type string `json:"type"`
	// Key is the trusted key that verified the signature.
	Key string `json:"key,omitempty"`
	// Signature says where the signature was found.
	Signature string `json:"signature,omitempty"`
	// Identity is the reference the signature names.
	Identity string `json:"identity,omitempty"`
}

// Summary is the verdict in one line, for logs and records.
func (v *Verdict) Summary() string {
	if v.Builtin {
		return "not verified: the node policy has no signatures section (built-in insecureAcceptAnything)"
	}
	s := "scope " + v.Scope + ":"
	for _, r := range v.Requirements {
		s += " " + r.Type
		if r.Key != "" {
			s += " by " + r.Key + " (" + r.Signature + ")"
		}
	}
	if v.SignedDigest != "" && v.SignedDigest != v.Digest {
		s += " on platform manifest " + v.SignedDigest
	}
	if v.Cached {
		s += " [cached]"
	}
	return s
}

// Cache keeps verdicts in a directory, one file per (policy hash, image,
// digest). Only accepted images are cached: a refusal is checked again
// next time. The directory belongs to root (the shim's state root).
type Cache struct {
	// Dir is the cache directory; "" disables the cache.
	Dir string
	// TTL is how long a verdict is trusted after the check (a signature
	// removed from the registry stops counting then); 0: forever.
	TTL time.Duration
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// Subject is what a verdict is about: its cache key.
type Subject struct {
	PolicyHash, Image, Digest, PlatformDigest string
	// KubernetesNamespace is the section of signatures.namespaces that
	// applies ("" for none): policy.Scope.Namespace.
	KubernetesNamespace string
	// Reference is the reference the container was created from when it
	// is not Image ("" otherwise).
	Reference string
}

// Subject is the verdict's subject.
func (v *Verdict) Subject() Subject {
	return Subject{PolicyHash: v.PolicyHash, Image: v.Image, Digest: v.Digest, PlatformDigest: v.PlatformDigest, KubernetesNamespace: v.KubernetesNamespace, Reference: v.Reference}
}

// CacheDirEnv names the shim's image cache directory (the shim's
// CacheDirEnv); verdicts live in "verdicts" beside it.
const CacheDirEnv = "HARDENED_CACHE_DIR"

// DefaultDir is where verdicts are cached without CacheDirEnv.
const DefaultDir = "/run/hardened/verdicts"

// DirFromEnv is the verdict cache directory of the shim and of every
// process that warms it (the pull-time gate): DefaultDir, or "verdicts"
// beside $HARDENED_CACHE_DIR; "" (no cache) when that is "off".
func DirFromEnv() string {
	switch d := os.Getenv(CacheDirEnv); d {
	case "":
		return DefaultDir
	case "off":
		return ""
	default:
		return filepath.Join(filepath.Dir(d), "verdicts")
	}
}

// Key is the cache key of a verdict (Subject.Key without a namespace or a
// reference).
func Key(policyHash, image, digest, platformDigest string) string {
	return Subject{PolicyHash: policyHash, Image: image, Digest: digest, PlatformDigest: platformDigest}.Key()
}

// Key is the cache key of the subject. Without a namespace or a reference
// it is what it was before they existed.
func (s Subject) Key() string {
	in := s.PolicyHash + "\x00" + s.Image + "\x00" + s.Digest + "\x00" + s.PlatformDigest
	if s.KubernetesNamespace != "" || s.Reference != "" {
		in += "\x00namespace\x00" + s.KubernetesNamespace + "\x00reference\x00" + s.Reference
	}
	sum := sha256.Sum256([]byte(in))
	return hex.EncodeToString(sum[:])
}

func (c Cache) file(s Subject) string {
	if c.Dir == "" {
		return ""
	}
	return filepath.Join(c.Dir, s.Key()+".json")
}

// Load returns the cached verdict of an image outside any per-namespace
// section, created from its own reference (LoadSubject).
func (c Cache) Load(policyHash, image, digest, platformDigest string) (*Verdict, bool) {
	return c.LoadSubject(Subject{PolicyHash: policyHash, Image: image, Digest: digest, PlatformDigest: platformDigest})
}

// LoadSubject returns the cached verdict of the subject, if any.
func (c Cache) LoadSubject(s Subject) (*Verdict, bool) {
	file := c.file(s)
	if file == "" {
		return nil, false
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, false
	}
	var v Verdict
	if json.Unmarshal(data, &v) != nil || v.Subject() != s {
		return nil, false
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	if age := now().Sub(v.VerifiedAt); c.TTL > 0 && (age > c.TTL || age < -time.Minute) {
		return nil, false
	}
	v.Cached = true
	return &v, true
}

// Store caches an accepted verdict; a failure only costs a later check.
func (c Cache) Store(v *Verdict) error {
	file := c.file(v.Subject())
	if file == "" {
		return nil
	}
	cp := *v
	cp.Cached = false
	data, err := json.Marshal(&cp)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(file, data, 0o600)
}

// Refusal is an image the signature policy does not accept. Its message is
// one line (what the kubelet shows in the pod's events): the image, the
// scope, the failure and what would allow it.
type Refusal struct {
	Image  string
	Digest string
	Scope  string
	// Namespace is the Kubernetes namespace whose section of
	// signatures.namespaces the scope is in ("" for none).
	Namespace string
	Reason    string
	// Fix says what would allow the image; empty: sign the digest with a
	// key the scope trusts, or change the scope.
	Fix string
}

// RejectFix is the Fix of a refusal by a reject requirement.
const RejectFix = "list the image's repository under signatures.scopes of the node policy with the requirements it must meet"

// NameFix is the Fix of a refusal because the container's image name is
// not a reference the policy can match.
const NameFix = "create the container from an image reference (registry/repository:tag)"

// BindingFix is the Fix of a refusal because the container would not run
// the image its record names: nothing in the policy allows that.
const BindingFix = "run the container from its image's own snapshot (as ctr and the CRI plugin do)"

func (e *Refusal) Error() string {
	d := e.Digest
	if len(d) > 19 {
		d = d[:19] + "…"
	}
	field := "signatures"
	if e.Namespace != "" {
		field = fmt.Sprintf("signatures.namespaces[%q]", e.Namespace)
	}
	if e.Scope == "default" || e.Scope == "-" {
		field += ".default"
	} else {
		field += fmt.Sprintf(".scopes[%q]", e.Scope)
	}
	fix := e.Fix
	if fix == RejectFix && e.Namespace != "" {
		fix = strings.Replace(fix, "signatures.scopes", fmt.Sprintf("signatures.namespaces[%q].scopes", e.Namespace), 1)
	}
	if fix == "" {
		fix = fmt.Sprintf("sign this digest with a key %s trusts (cosign sign --key), or change %s in the node policy", field, field)
	}
	scope := fmt.Sprintf("scope %q", e.Scope)
	if e.Namespace != "" {
		scope += fmt.Sprintf(" of namespace %q", e.Namespace)
	}
	return fmt.Sprintf("image %s (%s) refused by signature policy %s: %s; fix: %s", e.Image, d, scope, e.Reason, fix)
}
