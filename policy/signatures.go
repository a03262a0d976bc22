package policy

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
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

// load validates one requirement and reads its keys.
func (r *Requirement) load(field, base string, readFile func(string) ([]byte, error), h interface{ Write([]byte) (int, error) }) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(field+format, args...)) }
	hasKeys := r.KeyPath != "" || len(r.KeyPaths) > 0 || r.KeyData != "" || len(r.KeyDatas) > 0
	switch r.Type {
	case InsecureAcceptAnything, Reject:
		if hasKeys || r.SignedIdentity != nil {
			bad(".type: %s takes no keys or signedIdentity", r.Type)
		}
		return errs
	case SigstoreSigned:
	case "":
		bad(".type: missing; one of %s, %s, %s", InsecureAcceptAnything, Reject, SigstoreSigned)
		return errs
	case "signedBy":
		bad(".type: signedBy (GPG simple signing) is not supported; sign with cosign and use %s", SigstoreSigned)
		return errs
	default:
		bad(".type: %q is not supported; one of %s, %s, %s", r.Type, InsecureAcceptAnything, Reject, SigstoreSigned)
		return errs
	}
	if !hasKeys {
		bad(": %s needs keyPath, keyPaths, keyData or keyDatas (keyless Fulcio/Rekor verification is not supported)", SigstoreSigned)
	}
	r.Keys = nil
	paths := append([]string{}, r.KeyPaths...)
	if r.KeyPath != "" {
		paths = append([]string{r.KeyPath}, paths...)
	}
	for _, p := range paths {
		file := p
		if base != "" && !filepath.IsAbs(file) {
			file = filepath.Join(base, file)
		}
		data, err := readFile(file)
		if err != nil {
			bad(".keyPath: cannot read the key: %v", err)
			continue
		}
		alg, err := CheckPublicKey(data)
		if err != nil {
			bad(".keyPath %s: %v", file, err)
			continue
		}
		h.Write(data)
		r.Keys = append(r.Keys, PublicKey{Source: "keyPath " + file, Algorithm: alg, PEM: data})
	}
	datas := append([]string{}, r.KeyDatas...)
	if r.KeyData != "" {
		datas = append([]string{r.KeyData}, datas...)
	}
	for i, d := range datas {
		alg, err := CheckPublicKey([]byte(d))
		if err != nil {
			bad(".keyData[%d]: %v", i, err)
			continue
		}
		h.Write([]byte(d))
		r.Keys = append(r.Keys, PublicKey{Source: fmt.Sprintf("keyData[%d]", i), Algorithm: alg, PEM: []byte(d)})
	}
	if id := r.SignedIdentity; id != nil {
		switch id.Type {
		case MatchRepository, MatchExact, MatchRepoDigestOrExact:
			if id.DockerReference != "" || id.DockerRepository != "" {
				bad(".signedIdentity: %s takes no dockerReference or dockerRepository", id.Type)
			}
		case ExactRepository:
			if n, err := parseImageRef(id.DockerRepository); err != nil || n.Tag != "" || n.Digest != "" {
				bad(".signedIdentity.dockerRepository: %q is not a repository like registry.example.com/team/app", id.DockerRepository)
			}
		case ExactReference:
			if n, err := parseImageRef(id.DockerReference); err != nil || n.Tag == "" && n.Digest == "" {
				bad(".signedIdentity.dockerReference: %q is not a reference like registry.example.com/team/app:v1", id.DockerReference)
			}
		case "remapIdentity":
			bad(".signedIdentity.type: remapIdentity is not supported")
		default:
			bad(".signedIdentity.type: %q is not one of %s, %s, %s, %s, %s", id.Type, MatchRepository, MatchExact, MatchRepoDigestOrExact, ExactRepository, ExactReference)
		}
	}
	return errs
}

// OIDs of the public key algorithms and curves cosign keys use.
var (
	oidECPublicKey  = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidRSA          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidEd25519      = asn1.ObjectIdentifier{1, 3, 101, 112}
	namedCurvePoint = map[string]struct {
		name string
		size int // of the uncompressed point
	}{
		"1.2.840.10045.3.1.7": {"P-256", 65},
		"1.3.132.0.34":        {"P-384", 97},
		"1.3.132.0.35":        {"P-521", 133},
	}
)

// CheckPublicKey checks a PEM public key as cosign writes it (cosign.pub:
// a PKIX SubjectPublicKeyInfo) and says what it is: ECDSA P-256, P-384 or
// P-521, Ed25519, or RSA of at least 2048 bits. It checks the structure
// only, with encoding/asn1: this package stays free of crypto/x509 (which
// brings net and cgo); the verifier parses the key with crypto/x509.
func CheckPublicKey(data []byte) (string, error) {
	block, _ := pem.Decode(bytes.TrimSpace(data))
	if block == nil {
		return "", errors.New("not a PEM public key (want -----BEGIN PUBLIC KEY-----, as cosign.pub)")
	}
	if strings.Contains(block.Type, "PRIVATE") {
		return "", errors.New("this is a private key: give the public key (cosign.pub)")
	}
	if block.Type != "PUBLIC KEY" {
		return "", fmt.Errorf("PEM block %q is not a PUBLIC KEY", block.Type)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(block.Bytes, &spki); err != nil || len(rest) > 0 {
		return "", errors.New("not a public key: malformed SubjectPublicKeyInfo")
	}
	key := spki.PublicKey.RightAlign()
	switch alg := spki.Algorithm.Algorithm; {
	case alg.Equal(oidECPublicKey):
		var curve asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(spki.Algorithm.Parameters.FullBytes, &curve); err != nil {
			return "", errors.New("ECDSA key without a named curve")
		}
		c, ok := namedCurvePoint[curve.String()]
		if !ok {
			return "", fmt.Errorf("ECDSA curve %s is not supported (P-256, P-384, P-521)", curve)
		}
		if len(key) != c.size || key[0] != 4 {
			return "", fmt.Errorf("ECDSA %s key: malformed point", c.name)
		}
		return "ECDSA " + c.name, nil
	case alg.Equal(oidEd25519):
		if len(key) != 32 {
			return "", errors.New("Ed25519 key: not 32 bytes")
		}
		return "Ed25519", nil
	case alg.Equal(oidRSA):
		var pk struct {
			N *big.Int
			E int
		}
		if _, err := asn1.Unmarshal(key, &pk); err != nil || pk.N == nil {
			return "", errors.New("RSA key: malformed")
		}
		if pk.N.BitLen() < 2048 {
			return "", fmt.Errorf("RSA key of %d bits is too short (at least 2048)", pk.N.BitLen())
		}
		return fmt.Sprintf("RSA %d", pk.N.BitLen()), nil
	default:
		return "", fmt.Errorf("key algorithm %s is not supported (ECDSA, Ed25519, RSA)", alg)
	}
}

// validScope checks a scope key: a registry host (or *.domain), a
// repository or namespace, or a reference with a tag or digest.
func validScope(scope string) error {
	if scope == "" {
		return errors.New("empty scope; use default")
	}
	if scope != strings.ToLower(scope) && !strings.ContainsAny(scope, "/") {
		return fmt.Errorf("registry hosts are lowercase: write %q", strings.ToLower(scope))
	}
	if strings.HasPrefix(scope, "*.") {
		if strings.ContainsAny(scope[2:], "/*:@") || scope[2:] == "" {
			return errors.New("a wildcard scope is a host name like *.example.com")
		}
		return nil
	}
	if strings.Contains(scope, "*") {
		return errors.New("only a leading *. (host wildcard) is allowed")
	}
	if !strings.Contains(scope, "/") {
		if !strings.ContainsAny(scope, ".:") && scope != "localhost" {
			return fmt.Errorf("%q is not a registry host and would never match; for a Docker Hub image write docker.io/library/%s", scope, scope)
		}
		if !validDomain(scope) {
			return errors.New("not a registry host")
		}
		return nil
	}
	// A namespace, repository or reference: it matches only if written
	// the way image references are normalised.
	r, err := parseImageRef(scope)
	if err != nil {
		return err
	}
	if r.Domain != strings.ToLower(r.Domain) {
		return fmt.Errorf("registry hosts are lowercase: write %q", strings.Replace(scope, r.Domain, strings.ToLower(r.Domain), 1))
	}
	if r.String() != scope {
		return fmt.Errorf("would never match: image references are normalised, write %q", r.String())
	}
	return nil
}

// Scope is the outcome of matching an image against the section.
type Scope struct {
	// Name is the matched scope, or "default".
	Name string
	// Image is the image reference, normalised (docker.io/library/...).
	Image        string
	Requirements []Requirement
}

// Match returns the requirements for an image reference, from the most
// specific scope that matches it: the reference with its tag or digest,
// the repository, each enclosing namespace, the registry host, wildcard
// hosts (*.example.com), then default. docker.io, index.docker.io and
// short names are normalised the way docker and containerd do.
//
// digests are the digests the image is known to run (containerd's record
// of an image named by tag has them): scopes of repo@digest apply to them
// first, whatever tag the image was pulled by.
func (s *Signatures) Match(image string, digests ...string) (Scope, error) {
	named, err := parseImageRef(image)
	if err != nil {
		return Scope{}, err
	}
	named.Domain = strings.ToLower(named.Domain)
	norm := named.String()
	var cands []string
	for _, d := range digests {
		if d != "" {
			cands = append(cands, named.Name()+"@"+d)
		}
	}
	for _, c := range append(cands, scopeCandidates(named)...) {
		if reqs, ok := s.Scopes[c]; ok {
			return Scope{Name: c, Image: norm, Requirements: reqs}, nil
		}
	}
	return Scope{Name: "default", Image: norm, Requirements: s.Default}, nil
}

// scopeCandidates lists the scopes that match a reference, most specific
// first (containers/image's docker transport order).
func scopeCandidates(named imageRef) []string {
	var out []string
	repo := named.Name()
	if named.Digest != "" {
		out = append(out, repo+"@"+named.Digest)
	}
	if named.Tag != "" {
		out = append(out, repo+":"+named.Tag)
	}
	for p := repo; p != ""; {
		out = append(out, p)
		i := strings.LastIndex(p, "/")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	host := named.Domain
	h, _, _ := strings.Cut(host, ":")
	labels := strings.Split(h, ".")
	for i := 1; i < len(labels); i++ {
		out = append(out, "*."+strings.Join(labels[i:], "."))
	}
	return out
}

// policyJSON is containers/image's policy.json.
type policyJSON struct {
	Default    []json.RawMessage                       `json:"default"`
	Transports map[string]map[string][]json.RawMessage `json:"transports"`
}

// requirementJSON is a requirement as policy.json spells it: keyData and
// keyDatas are base64 of the PEM.
type requirementJSON struct {
	Type           string          `json:"type"`
	KeyType        string          `json:"keyType,omitempty"`
	KeyPath        string          `json:"keyPath,omitempty"`
	KeyPaths       []string        `json:"keyPaths,omitempty"`
	KeyData        []byte          `json:"keyData,omitempty"`
	KeyDatas       [][]byte        `json:"keyDatas,omitempty"`
	SignedIdentity *SignedIdentity `json:"signedIdentity,omitempty"`
}

// parsePolicyJSON reads a policy.json: its default and its "docker"
// transport scopes. Other transports (docker-daemon, atomic, ...) do not
// apply to images containerd pulls and are ignored. Requirement types or
// fields hardened cannot check (signedBy, keyless fulcio/rekor, pki,
// remapIdentity) are errors, never ignored.
func parsePolicyJSON(data []byte) ([]Requirement, map[string][]Requirement, error) {
	if err := strictJSONKeys(data); err != nil {
		return nil, nil, fmt.Errorf("not a policy.json: %v", err)
	}
	var pj policyJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pj); err != nil {
		return nil, nil, fmt.Errorf("not a policy.json: %v", err)
	}
	conv := func(field string, raws []json.RawMessage) ([]Requirement, error) {
		var out []Requirement
		for i, raw := range raws {
			var rj requirementJSON
			d := json.NewDecoder(bytes.NewReader(raw))
			d.DisallowUnknownFields()
			if err := d.Decode(&rj); err != nil {
				return nil, fmt.Errorf("%s[%d]: %v (supported: type, keyPath, keyPaths, keyData, keyDatas, signedIdentity)", field, i, cleanJSONError(err))
			}
			if rj.Type == SigstoreSigned {
				if rj.KeyType != "" {
					return nil, fmt.Errorf("%s[%d].keyType: not a field of sigstoreSigned", field, i)
				}
				n := 0
				for _, set := range []bool{rj.KeyPath != "", rj.KeyPaths != nil, rj.KeyData != nil, rj.KeyDatas != nil} {
					if set {
						n++
					}
				}
				if n > 1 {
					return nil, fmt.Errorf("%s[%d]: give exactly one of keyPath, keyPaths, keyData, keyDatas", field, i)
				}
				if rj.SignedIdentity == nil {
					// containers/image's default for sigstoreSigned.
					rj.SignedIdentity = &SignedIdentity{Type: MatchRepoDigestOrExact}
				}
			} else if rj.KeyType != "" && rj.KeyType != "GPGKeys" {
				return nil, fmt.Errorf("%s[%d].keyType: %q is not supported", field, i, rj.KeyType)
			}
			r := Requirement{Type: rj.Type, KeyPath: rj.KeyPath, KeyPaths: rj.KeyPaths, SignedIdentity: rj.SignedIdentity}
			if rj.KeyData != nil {
				r.KeyData = string(rj.KeyData)
			}
			for _, k := range rj.KeyDatas {
				r.KeyDatas = append(r.KeyDatas, string(k))
			}
			out = append(out, r)
		}
		return out, nil
	}
	def, err := conv("default", pj.Default)
	if err != nil {
		return nil, nil, err
	}
	if len(def) == 0 {
		return nil, nil, errors.New("default: must list at least one requirement")
	}
	scopes := map[string][]Requirement{}
	for scope, raws := range pj.Transports["docker"] {
		if scope == "" {
			continue // "" in a transport is that transport's default: use it as ours
		}
		reqs, err := conv(fmt.Sprintf("transports.docker[%q]", scope), raws)
		if err != nil {
			return nil, nil, err
		}
		scopes[scope] = reqs
	}
	if raws, ok := pj.Transports["docker"][""]; ok {
		reqs, err := conv(`transports.docker[""]`, raws)
		if err != nil {
			return nil, nil, err
		}
		def = reqs
	}
	return def, scopes, nil
}

// jsonFields are the keys a policy.json may have, spelled as
// containers/image spells them.
var jsonFields = map[string]string{}

func init() {
	for _, f := range []string{"default", "transports", "type", "keyType", "keyPath", "keyPaths", "keyData", "keyDatas",
		"signedIdentity", "dockerReference", "dockerRepository"} {
		jsonFields[strings.ToLower(f)] = f
	}
}

// strictJSONKeys refuses what encoding/json would quietly accept and
// containers/image refuses: a key given twice in an object (json keeps the
// last) and a known key in another case ("Type": json matches it).
func strictJSONKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k, _ := kt.(string)
				low := strings.ToLower(k)
				if seen[low] {
					return fmt.Errorf("key %q given twice", k)
				}
				seen[low] = true
				if want, ok := jsonFields[low]; ok && want != k {
					return fmt.Errorf("key %q: write %q", k, want)
				}
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for dec.More() {
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	return walk()
}

func cleanJSONError(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}
