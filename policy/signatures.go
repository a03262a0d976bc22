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

	// Keys are the parsed keys, filled by the policy's loader.
	Keys []PublicKey `yaml:"-" json:"-"`
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

// load reads the policy file and the keys the section names, validates
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
		RegistryConfigPath string
		AuthFile           string
		SignatureDir       string
		Timeout            Duration
		VerdictTTL         Duration
	}{s.Default, s.Scopes, s.PolicyFile, s.RegistryConfigPath, s.AuthFile, s.SignatureDir, s.Timeout, s.VerdictTTL})
	h.Write(canon)

	if s.PolicyFile != "" {
		if len(s.Default) > 0 || len(s.Scopes) > 0 {
			return errors.New("signatures.policyFile: set either policyFile or default/scopes, not both")
		}
		data, err := readFile(s.PolicyFile)
		if err != nil {
			return fmt.Errorf("signatures.policyFile: %w", err)
		}
		h.Write(data)
		def, scopes, err := parsePolicyJSON(data)
		if err != nil {
			return fmt.Errorf("signatures.policyFile %s: %w", s.PolicyFile, err)
		}
		s.Default, s.Scopes = def, scopes
	} else if len(s.Default) == 0 {
		bad("signatures.default: must list at least one requirement (e.g. [{type: reject}] or [{type: insecureAcceptAnything}])")
	}
	where := s.PolicyFile
	if where != "" {
		where = filepath.Dir(where)
	}
	check := func(field string, reqs []Requirement) {
		if len(reqs) == 0 {
			bad("%s: must list at least one requirement", field)
		}
		for i := range reqs {
			for _, e := range reqs[i].load(fmt.Sprintf("%s[%d]", field, i), where, readFile, h) {
				errs = append(errs, e)
			}
		}
	}
	if len(s.Default) > 0 {
		check("signatures.default", s.Default)
	}
	for _, scope := range slices.Sorted(maps.Keys(s.Scopes)) {
		field := fmt.Sprintf("signatures.scopes[%q]", scope)
		if err := validScope(scope); err != nil {
			bad("%s: %v", field, err)
		}
		check(field, s.Scopes[scope])
	}
	s.Hash = hex.EncodeToString(h.Sum(nil))
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}
