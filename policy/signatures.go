package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"
)

// Requirement types, as containers/image's policy.json names them.
const (
	// InsecureAcceptAnything accepts any image, signed or not.
	InsecureAcceptAnything = "insecureAcceptAnything"
	// Reject refuses every image.
	Reject = "reject"
	// SigstoreSigned requires a signature, made with one of the listed
	// public keys, over the exact digest that runs (cosign's formats).
	SigstoreSigned = "sigstoreSigned"
)

// Requirement types of hardened's own, beyond containers/image's.
const (
	// Pinned requires that the container was created from a reference
	// that cannot move: by digest (RequireDigest), or at least not by one
	// of MovingTags (default: latest).
	Pinned = "pinned"
	// SigstoreAttested requires an in-toto attestation of PredicateType
	// about the digest that runs, signed as cosign attest signs it (the
	// .att tag, or a Sigstore bundle referrer) by one of the listed keys,
	// whose predicate meets every one of Conditions.
	SigstoreAttested = "sigstoreAttested"
)

// requirementTypes lists the requirement types, for errors.
var requirementTypes = []string{InsecureAcceptAnything, Reject, SigstoreSigned, SigstoreAttested, Pinned}

// Predicate types cosign attest writes (cosign attest --type NAME), by
// the names cosign gives them; a requirement may use a name or any URI.
var PredicateTypes = map[string]string{
	"slsaprovenance":   "https://slsa.dev/provenance/v0.2",
	"slsaprovenance02": "https://slsa.dev/provenance/v0.2",
	"slsaprovenance1":  "https://slsa.dev/provenance/v1",
	"vuln":             "https://cosign.sigstore.dev/attestation/vuln/v1",
	"spdx":             "https://spdx.dev/Document",
	"spdxjson":         "https://spdx.dev/Document",
	"cyclonedx":        "https://cyclonedx.org/bom",
	"link":             "https://in-toto.io/Link/v1",
	"openvex":          "https://openvex.dev/ns",
	"custom":           "https://cosign.sigstore.dev/attestation/v1",
}

// Signed identity types: what repository a signature must name.
const (
	// MatchRepository: the signature names the image's repository (any
	// tag). The default.
	MatchRepository = "matchRepository"
	// MatchExact: the signature names the image's reference exactly
	// (repository and tag; a reference by digest never matches).
	MatchExact = "matchExact"
	// MatchRepoDigestOrExact: matchRepository for a reference by digest,
	// matchExact for one by tag (containers/image's default).
	MatchRepoDigestOrExact = "matchRepoDigestOrExact"
	// ExactRepository: the signature names DockerRepository.
	ExactRepository = "exactRepository"
	// ExactReference: the signature names DockerReference.
	ExactReference = "exactReference"
)

// Defaults of the signatures section.
const (
	DefaultRegistryConfigPath = "/etc/containerd/certs.d"
	DefaultSignatureDir       = "/var/lib/hardened/signatures"
	DefaultRegistryTimeout    = 10 * time.Second
	DefaultVerdictTTL         = 24 * time.Hour
)

// Signatures is the policy's image signature section: which images must be
// signed by which keys. Its semantics are those of containers/image's
// policy.json (CRI-O, Podman) for the docker transport: the requirements
// of the most specific matching scope apply, else Default; an image is
// accepted only if every requirement in the list is satisfied.
type Signatures struct {
	// Default applies to images that no scope matches.
	Default []Requirement `yaml:"default,omitempty" json:"default,omitempty"`
	// Scopes map a registry ("registry.example.com", "*.example.com"), a
	// namespace or repository ("registry.example.com/team/app") or a
	// reference ("registry.example.com/team/app:v1") to requirements.
	Scopes map[string][]Requirement `yaml:"scopes,omitempty" json:"scopes,omitempty"`
	// PolicyFile names an existing containers/image policy.json to use
	// instead of Default and Scopes (its "docker" transport).
	PolicyFile string `yaml:"policyFile,omitempty" json:"policyFile,omitempty"`
	// Namespaces give the containers of pods in a Kubernetes namespace
	// their own default, scopes or policy file, used instead of the ones
	// above (as CRI-O's per-namespace policy.json). The namespace is the
	// pod sandbox's, as CRI records it; other containers, and pods of
	// namespaces not listed, get the ones above.
	Namespaces map[string]*NamespaceSignatures `yaml:"namespaces,omitempty" json:"namespaces,omitempty"`

	// RegistryConfigPath is containerd's registry host directory
	// (hosts.toml per registry: mirrors, plain HTTP, CA files).
	RegistryConfigPath string `yaml:"registryConfigPath,omitempty" json:"registryConfigPath,omitempty"`
	// AuthFile is a docker-style config.json with registry credentials.
	AuthFile string `yaml:"authFile,omitempty" json:"authFile,omitempty"`
	// SignatureDir holds signatures for air-gapped nodes, looked at first:
	// <dir>/sha256-<hex>/ with *.sigstore.json bundles or NAME.sig +
	// NAME.payload pairs (cosign sign --output-signature/--output-payload).
	SignatureDir string `yaml:"signatureDir,omitempty" json:"signatureDir,omitempty"`
	// Timeout bounds each registry request (default 10s).
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// VerdictTTL is how long an accepted verdict is reused without asking
	// the registry again (default 24h): a signature deleted to revoke it
	// stops counting then, and a registry outage shorter than that does
	// not stop verified images.
	VerdictTTL Duration `yaml:"verdictTTL,omitempty" json:"verdictTTL,omitempty"`

	// Builtin is true when the policy has no signatures section.
	Builtin bool `yaml:"-" json:"builtin,omitempty"`
	// Hash covers this section, the key material and the policy file it
	// names: verdicts are cached under it.
	Hash string `yaml:"-" json:"hash"`
}

// NamespaceSignatures are the requirements of one Kubernetes namespace.
type NamespaceSignatures struct {
	// Default applies to images that no scope of the namespace matches.
	Default []Requirement `yaml:"default,omitempty" json:"default,omitempty"`
	// Scopes are as Signatures.Scopes.
	Scopes map[string][]Requirement `yaml:"scopes,omitempty" json:"scopes,omitempty"`
	// PolicyFile is a containers/image policy.json used instead of
	// Default and Scopes.
	PolicyFile string `yaml:"policyFile,omitempty" json:"policyFile,omitempty"`
}

// Requirement is one requirement of a scope.
type Requirement struct {
	Type string `yaml:"type" json:"type"`
	// KeyPath, KeyPaths, KeyData and KeyDatas give the trusted public
	// keys (PEM, as cosign writes cosign.pub); a signature by any of them
	// satisfies the requirement.
	KeyPath  string   `yaml:"keyPath,omitempty" json:"keyPath,omitempty"`
	KeyPaths []string `yaml:"keyPaths,omitempty" json:"keyPaths,omitempty"`
	KeyData  string   `yaml:"keyData,omitempty" json:"keyData,omitempty"`
	KeyDatas []string `yaml:"keyDatas,omitempty" json:"keyDatas,omitempty"`
	// SignedIdentity says which repository the signature must name.
	SignedIdentity *SignedIdentity `yaml:"signedIdentity,omitempty" json:"signedIdentity,omitempty"`

	// Fulcio, instead of keys, trusts keyless signatures: a short-lived
	// certificate issued by the Fulcio CA to an OIDC identity, logged in
	// Rekor (containers/image's fields).
	Fulcio *Fulcio `yaml:"fulcio,omitempty" json:"fulcio,omitempty"`
	// RekorPublicKeyPath(s) and RekorPublicKeyData(s) are the Rekor
	// transparency log's public keys (PEM): a keyless signature must have
	// an entry in the log (its signed entry timestamp is checked offline).
	RekorPublicKeyPath  string   `yaml:"rekorPublicKeyPath,omitempty" json:"rekorPublicKeyPath,omitempty"`
	RekorPublicKeyPaths []string `yaml:"rekorPublicKeyPaths,omitempty" json:"rekorPublicKeyPaths,omitempty"`
	RekorPublicKeyData  string   `yaml:"rekorPublicKeyData,omitempty" json:"rekorPublicKeyData,omitempty"`
	RekorPublicKeyDatas []string `yaml:"rekorPublicKeyDatas,omitempty" json:"rekorPublicKeyDatas,omitempty"`
	// TrustedRootPath is a Sigstore trusted root (trusted_root.json, as
	// sigstore's TUF repository serves it, or a private deployment's):
	// Fulcio CAs, Rekor logs, timestamp authorities, instead of fulcio's
	// caPath and the Rekor keys. Read when the policy is loaded; never
	// fetched.
	TrustedRootPath string `yaml:"trustedRootPath,omitempty" json:"trustedRootPath,omitempty"`

	// RequireDigest (pinned): the reference must name a digest
	// (repo@sha256:... or repo:tag@sha256:...).
	RequireDigest bool `yaml:"requireDigest,omitempty" json:"requireDigest,omitempty"`
	// MovingTags (pinned): tags refused, as globs ("latest", "*-dev");
	// default [latest]. A reference by digest is never refused for its tag.
	MovingTags []string `yaml:"movingTags,omitempty" json:"movingTags,omitempty"`

	// PredicateType (sigstoreAttested): the in-toto predicate type
	// required, a URI or one of cosign's names (PredicateTypes); the
	// loader replaces a name with its URI.
	PredicateType string `yaml:"predicateType,omitempty" json:"predicateType,omitempty"`
	// Conditions (sigstoreAttested) must all hold for one attestation of
	// PredicateType. Without keys, a sigstoreAttested requirement trusts
	// the keys of the scope's sigstoreSigned requirements.
	Conditions []Condition `yaml:"conditions,omitempty" json:"conditions,omitempty"`

	// Keys are the parsed keys, filled by the policy's loader.
	Keys []PublicKey `yaml:"-" json:"-"`
	// Keyless is the keyless trust material, filled by the loader when
	// Fulcio is set.
	Keyless *Keyless `yaml:"-" json:"-"`
}

// Condition is a check of an attestation, written in CEL (the expression
// language of Kubernetes' ValidatingAdmissionPolicy), evaluated by the
// verifier (hardened-verify), never by the shim. The expression sees:
//
//	predicateType string      the statement's predicate type
//	predicate     map          the predicate (JSON)
//	subject       list         the statement's subjects
//	statement     map          the whole in-toto statement
//	image, digest string       what runs
//	now           timestamp    the time of the check
//
// with CEL's standard library, the Kubernetes extension libraries for
// strings, lists and sets, and string.matchesGlob(pattern) (* any run of
// characters, ? one).
type Condition struct {
	// Expression must evaluate to true, e.g.
	// predicate.builder.id == "https://github.com/org/repo/.github/workflows/build.yml@refs/heads/main".
	Expression string `yaml:"expression" json:"expression"`
	// Message is said when the expression is false (default: the
	// expression).
	Message string `yaml:"message,omitempty" json:"message,omitempty"`
	// MessageExpression is a CEL expression of type string said when the
	// expression is false, e.g. to show the value found.
	MessageExpression string `yaml:"messageExpression,omitempty" json:"messageExpression,omitempty"`
}

// SignedIdentity is a requirement's identity rule.
type SignedIdentity struct {
	Type             string `yaml:"type" json:"type"`
	DockerReference  string `yaml:"dockerReference,omitempty" json:"dockerReference,omitempty"`
	DockerRepository string `yaml:"dockerRepository,omitempty" json:"dockerRepository,omitempty"`
}

// PublicKey is a trusted key and where it came from.
type PublicKey struct {
	// Source is "keyPath /etc/hardened/keys/cosign.pub" or "keyData[1]".
	Source string
	// Algorithm is "ECDSA P-256", "Ed25519", "RSA 4096", ...
	Algorithm string
	// PEM is the key as given.
	PEM []byte
}

// Duration is a time.Duration written as "10s" in the file.
type Duration time.Duration

// UnmarshalText parses "10s", "1m".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like 10s", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as "10s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// BuiltinSignatures is the section of a policy without one: accept any
// image. Installing the shim so breaks no node; the shim logs loudly that
// images are not verified, and `hardenctl policy validate` warns.
func BuiltinSignatures() *Signatures {
	s := &Signatures{Default: []Requirement{{Type: InsecureAcceptAnything}}, Builtin: true}
	s.fillDefaults()
	sum := sha256.Sum256([]byte("hardened built-in signatures: insecureAcceptAnything"))
	s.Hash = hex.EncodeToString(sum[:])
	return s
}

func (s *Signatures) fillDefaults() {
	if s.RegistryConfigPath == "" {
		s.RegistryConfigPath = DefaultRegistryConfigPath
	}
	if s.SignatureDir == "" {
		s.SignatureDir = DefaultSignatureDir
	}
	if s.Timeout == 0 {
		s.Timeout = Duration(DefaultRegistryTimeout)
	}
	if s.VerdictTTL == 0 {
		s.VerdictTTL = Duration(DefaultVerdictTTL)
	}
}

// Load reads the policy file and the keys a section made in code names,
// validates it and computes Hash, as Parse does for the section of a file.
func (s *Signatures) Load() error { return s.load(os.ReadFile) }

// load reads the policy files and the keys the section names, validates
// everything and computes Hash.
func (s *Signatures) load(readFile func(string) ([]byte, error)) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.Timeout < 0 {
		bad("signatures.timeout: must be positive")
	}
	if s.VerdictTTL < 0 {
		bad("signatures.verdictTTL: must be positive")
	}
	s.fillDefaults()
	h := sha256.New()
	canon, _ := json.Marshal(struct {
		Default            []Requirement
		Scopes             map[string][]Requirement
		PolicyFile         string
		Namespaces         map[string]*NamespaceSignatures `json:",omitempty"`
		RegistryConfigPath string
		AuthFile           string
		SignatureDir       string
		Timeout            Duration
		VerdictTTL         Duration
	}{s.Default, s.Scopes, s.PolicyFile, s.Namespaces, s.RegistryConfigPath, s.AuthFile, s.SignatureDir, s.Timeout, s.VerdictTTL})
	h.Write(canon)

	base := &NamespaceSignatures{Default: s.Default, Scopes: s.Scopes, PolicyFile: s.PolicyFile}
	if err := base.load("signatures", readFile, h, &errs); err != nil {
		return err
	}
	s.Default, s.Scopes = base.Default, base.Scopes
	for _, ns := range slices.Sorted(maps.Keys(s.Namespaces)) {
		field := fmt.Sprintf("signatures.namespaces[%q]", ns)
		if err := validNamespaceName(ns); err != nil {
			bad("%s: %v", field, err)
		}
		sec := s.Namespaces[ns]
		if sec == nil {
			bad("%s: empty; give default, scopes or policyFile", field)
			continue
		}
		h.Write([]byte("\x00namespace " + ns + "\x00"))
		if err := sec.load(field, readFile, h, &errs); err != nil {
			errs = append(errs, err)
		}
	}
	s.Hash = hex.EncodeToString(h.Sum(nil))
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// load reads the section's policy file, if any, and validates its
// requirements and scopes, appending problems to errs. field is where the
// section is ("signatures", `signatures.namespaces["prod"]`). It returns an
// error only when the section cannot be read at all.
func (n *NamespaceSignatures) load(field string, readFile func(string) ([]byte, error), h interface{ Write([]byte) (int, error) }, errs *[]error) error {
	bad := func(format string, args ...any) { *errs = append(*errs, fmt.Errorf(format, args...)) }
	if n.PolicyFile != "" {
		if len(n.Default) > 0 || len(n.Scopes) > 0 {
			return fmt.Errorf("%s.policyFile: set either policyFile or default/scopes, not both", field)
		}
		data, err := readFile(n.PolicyFile)
		if err != nil {
			return fmt.Errorf("%s.policyFile: %w", field, err)
		}
		h.Write(data)
		def, scopes, err := parsePolicyJSON(data)
		if err != nil {
			return fmt.Errorf("%s.policyFile %s: %w", field, n.PolicyFile, err)
		}
		n.Default, n.Scopes = def, scopes
	} else if len(n.Default) == 0 {
		bad("%s.default: must list at least one requirement (e.g. [{type: reject}] or [{type: insecureAcceptAnything}])", field)
	}
	where := n.PolicyFile
	if where != "" {
		where = filepath.Dir(where)
	}
	check := func(field string, reqs []Requirement) {
		if len(reqs) == 0 {
			bad("%s: must list at least one requirement", field)
		}
		for i := range reqs {
			*errs = append(*errs, reqs[i].load(fmt.Sprintf("%s[%d]", field, i), where, readFile, h)...)
		}
		inheritKeys(field, reqs, errs)
	}
	if len(n.Default) > 0 {
		check(field+".default", n.Default)
	}
	for _, scope := range slices.Sorted(maps.Keys(n.Scopes)) {
		sf := fmt.Sprintf("%s.scopes[%q]", field, scope)
		if err := validScope(scope); err != nil {
			bad("%s: %v", sf, err)
		}
		check(sf, n.Scopes[scope])
	}
	return nil
}

// validNamespaceName checks a Kubernetes namespace name (an RFC 1123
// label: lowercase letters, digits and inner hyphens, at most 63).
func validNamespaceName(ns string) error {
	ok := ns != "" && len(ns) <= 63 && ns[0] != '-' && ns[len(ns)-1] != '-'
	for _, c := range ns {
		ok = ok && (c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-')
	}
	if !ok {
		return fmt.Errorf("%q is not a Kubernetes namespace name (lowercase letters, digits and '-', at most 63)", ns)
	}
	return nil
}

// inheritKeys gives a sigstoreAttested requirement without keys of its own
// the keys of the scope's sigstoreSigned requirements.
func inheritKeys(field string, reqs []Requirement, errs *[]error) {
	var keys []PublicKey
	var keyless *Keyless
	for _, r := range reqs {
		if r.Type == SigstoreSigned {
			keys = append(keys, r.Keys...)
			if r.Keyless != nil && keyless == nil {
				keyless = r.Keyless
			}
		}
	}
	for i := range reqs {
		r := &reqs[i]
		if r.Type != SigstoreAttested || r.hasKeys() || r.Fulcio != nil {
			continue
		}
		if len(keys) == 0 && keyless == nil {
			*errs = append(*errs, fmt.Errorf("%s[%d]: %s needs keyPath, keyPaths, keyData or keyDatas, fulcio, or a %s requirement in the same scope whose keys it then trusts", field, i, SigstoreAttested, SigstoreSigned))
			continue
		}
		if len(keys) > 0 {
			r.Keys = slices.Clone(keys) // keys first: a requirement is checked by keys or keylessly, not both
		} else {
			r.Keyless = keyless
		}
	}
}

// hasKeys reports whether the requirement names keys of its own.
func (r *Requirement) hasKeys() bool {
	return r.KeyPath != "" || len(r.KeyPaths) > 0 || r.KeyData != "" || len(r.KeyDatas) > 0
}
