package policy

import (
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// A requirement of a scope: its type, its keys, its signed identity,
// validated and loaded.

// load validates one requirement and reads its keys.
func (r *Requirement) load(field, base string, readFile func(string) ([]byte, error), h interface{ Write([]byte) (int, error) }) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(field+format, args...)) }
	hasKeys := r.hasKeys()
	types := strings.Join(requirementTypes, ", ")
	if r.Type != Pinned && (r.RequireDigest || len(r.MovingTags) > 0) {
		bad(": requireDigest and movingTags belong to type %s", Pinned)
	}
	if r.Type != SigstoreAttested && (r.PredicateType != "" || len(r.Conditions) > 0) {
		bad(": predicateType and conditions belong to type %s", SigstoreAttested)
	}
	switch r.Type {
	case InsecureAcceptAnything, Reject:
		if hasKeys || r.SignedIdentity != nil || r.Fulcio != nil {
			bad(".type: %s takes no keys or signedIdentity", r.Type)
		}
		return errs
	case Pinned:
		if hasKeys || r.SignedIdentity != nil {
			bad(".type: %s takes no keys or signedIdentity (list a %s requirement beside it)", r.Type, SigstoreSigned)
		}
		for i, g := range r.MovingTags {
			if _, err := path.Match(g, ""); err != nil || g == "" {
				bad(".movingTags[%d]: %q is not a glob like latest or *-dev", i, g)
			}
		}
		if r.RequireDigest && len(r.MovingTags) > 0 {
			bad(": requireDigest refuses every tag already; drop movingTags")
		}
		return errs
	case SigstoreSigned:
	case SigstoreAttested:
		if r.SignedIdentity != nil {
			bad(".signedIdentity: not checked for attestations (their subject is the digest that runs)")
		}
		if uri, ok := PredicateTypes[r.PredicateType]; ok {
			r.PredicateType = uri
		} else if !strings.Contains(r.PredicateType, "://") {
			bad(".predicateType: %q is not a URI nor one of cosign's names (%s)", r.PredicateType, strings.Join(slices.Sorted(maps.Keys(PredicateTypes)), ", "))
		}
		for i, c := range r.Conditions {
			if strings.TrimSpace(c.Expression) == "" {
				bad(".conditions[%d].expression: missing (a CEL expression that must be true)", i)
			}
		}
		if !hasKeys && r.Fulcio == nil {
			r.Keys, r.Keyless = nil, nil
			if r.hasRekorKeys() || r.TrustedRootPath != "" {
				bad(": rekorPublicKey* and trustedRootPath belong to keyless requirements (with fulcio)")
			}
			return errs // the scope's sigstoreSigned keys (inheritKeys)
		}
	case "":
		bad(".type: missing; one of %s", types)
		return errs
	case "signedBy":
		bad(".type: signedBy (GPG simple signing) is not supported; sign with cosign and use %s", SigstoreSigned)
		return errs
	default:
		bad(".type: %q is not supported; one of %s", r.Type, types)
		return errs
	}
	r.loadKeyless(base, readFile, h, bad)
	if !hasKeys && r.Fulcio == nil {
		bad(": %s needs keyPath, keyPaths, keyData or keyDatas, or fulcio (keyless)", SigstoreSigned)
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
