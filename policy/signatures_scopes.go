package policy

import (
	"errors"
	"fmt"
	"github.com/opencontainers/go-digest"
	"strings"
)

// Scopes: which requirements apply to an image reference.

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
	// Namespace is the Kubernetes namespace whose section of
	// signatures.namespaces applied; "" for the section's own scopes.
	Namespace string
	// Image is the image reference, normalised (docker.io/library/...).
	Image        string
	Requirements []Requirement
}

// Field is where the scope is in the policy, for messages:
// signatures.default, signatures.scopes["registry.example.com"],
// signatures.namespaces["prod"].scopes["registry.example.com"].
func (sc Scope) Field() string { return ScopeField(sc.Namespace, sc.Name) }

// ScopeField is Scope.Field for a namespace and scope name ("default" or
// "-" for the default).
func ScopeField(namespace, scope string) string {
	prefix := "signatures"
	if namespace != "" {
		prefix = fmt.Sprintf("signatures.namespaces[%q]", namespace)
	}
	if scope == "default" || scope == "-" || scope == "" {
		return prefix + ".default"
	}
	return fmt.Sprintf("%s.scopes[%q]", prefix, scope)
}

// AcceptsAnything reports whether every requirement of the scope is
// insecureAcceptAnything: nothing to check.
func (sc Scope) AcceptsAnything() bool {
	for _, r := range sc.Requirements {
		if r.Type != InsecureAcceptAnything {
			return false
		}
	}
	return true
}

// NeedsVerifier reports whether a requirement of the scope needs the
// verifier (hardened-verify): a signature or an attestation to check.
// Without one, the scope is decided here: Rejects, else CheckPinning.
func (sc Scope) NeedsVerifier() bool {
	for _, r := range sc.Requirements {
		if r.Type == SigstoreSigned || r.Type == SigstoreAttested {
			return true
		}
	}
	return false
}

// Rejects reports whether the scope's requirements include reject.
func (sc Scope) Rejects() bool {
	for _, r := range sc.Requirements {
		if r.Type == Reject {
			return true
		}
	}
	return false
}

// ErrNamespaceNeeded is Match's error for a section with namespaces: the
// caller must say which Kubernetes namespace the container is in (MatchIn).
var ErrNamespaceNeeded = errors.New("the signatures section has per-namespace requirements (signatures.namespaces): the caller must give the container's Kubernetes namespace")

// Match is MatchIn for a container in no Kubernetes namespace. It fails
// closed, with ErrNamespaceNeeded, when the section has namespaces: a
// caller that does not know of them must not apply the wrong requirements.
func (s *Signatures) Match(image string, digests ...string) (Scope, error) {
	if len(s.Namespaces) > 0 {
		return Scope{}, ErrNamespaceNeeded
	}
	return s.MatchIn("", image, digests...)
}

// MatchIn returns the requirements for an image reference run by a
// container of a pod in Kubernetes namespace ns ("" for a container that
// is not in a pod): those of signatures.namespaces[ns] if listed, else of
// the section's own default and scopes. Within them, the most specific
// scope that matches wins: the reference with its tag or digest, the
// repository, each enclosing namespace, the registry host, wildcard hosts
// (*.example.com), then default. docker.io, index.docker.io and short
// names are normalised the way docker and containerd do.
//
// digests are the digests the image is known to run (containerd's record
// of an image named by tag has them): scopes of repo@digest apply to them
// first, whatever tag the image was pulled by.
func (s *Signatures) MatchIn(ns, image string, digests ...string) (Scope, error) {
	named, err := parseMatchRef(image)
	if err != nil {
		return Scope{}, err
	}
	// Host names are case-insensitive: "INDEX.DOCKER.IO/x" is pulled from
	// Docker Hub as docker.io/library/x is, and must meet its scopes.
	named.Domain = strings.ToLower(named.Domain)
	if named.Domain == "index.docker.io" {
		named.Domain = "docker.io"
	}
	if named.Domain == "docker.io" && !strings.Contains(named.Path, "/") {
		named.Path = "library/" + named.Path
	}
	norm := named.String()
	def, scopes, section := s.Default, s.Scopes, ""
	if sec, ok := s.Namespaces[ns]; ok && ns != "" && sec != nil {
		def, scopes, section = sec.Default, sec.Scopes, ns
	}
	var cands []string
	for _, d := range digests {
		if d != "" {
			cands = append(cands, named.Name()+"@"+d)
		}
	}
	for _, c := range append(cands, scopeCandidates(named)...) {
		if reqs, ok := scopes[c]; ok {
			return Scope{Name: c, Namespace: section, Image: norm, Requirements: reqs}, nil
		}
	}
	return Scope{Name: "default", Namespace: section, Image: norm, Requirements: def}, nil
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

// parseMatchRef parses the image reference a container record names. An
// image id ("sha256:<hex>", as CRI names images too) is refused, where the
// reference grammar would read it as repository docker.io/library/sha256
// with a tag.
func parseMatchRef(image string) (imageRef, error) {
	if d, err := digest.Parse(image); err == nil && d.Algorithm() == digest.SHA256 {
		return imageRef{}, fmt.Errorf("%q is not an image reference: an image id; the container names no image reference", image)
	}
	return parseImageRef(image)
}
