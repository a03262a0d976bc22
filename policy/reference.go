package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// imageRef is an image reference split and normalised the way docker and
// containerd do it ("busybox" is docker.io/library/busybox).
//
// It is parsed by hand rather than with github.com/distribution/reference,
// whose package initialisation compiles its regular expressions (measured
// with GODEBUG=inittrace=1: 0.9-2.9 ms and 415 KB in every process that
// links it, and the shim starts one or more per container); the verifier
// (package verify) checks identities with distribution/reference. Two
// parsers in one decision are safe only if they agree:
// FuzzImageRefDifferential (make fuzz) holds them equal on every input,
// accepted or refused.
type imageRef struct {
	Domain string
	Path   string
	Tag    string
	Digest string
}

// Name is the repository: domain/path (the path alone for the rare name
// distribution/reference finds no domain in, e.g. "a_b.c/x").
func (r imageRef) Name() string {
	if r.Domain == "" {
		return r.Path
	}
	return r.Domain + "/" + r.Path
}

// String is the normalised reference.
func (r imageRef) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// maxPathLength is distribution/reference's RepositoryNameTotalLengthMax.
const maxPathLength = 255

// parseImageRef is distribution/reference's ParseNormalizedNamed, step by
// step, without regular expressions (FuzzImageRefDifferential holds the
// two equal): refuse an image id (64 hex), split off the domain as docker
// does (splitDockerDomain), refuse an uppercase repository, then parse
// "domain/remainder" with the reference grammar.
func parseImageRef(s string) (imageRef, error) {
	bad := func(why string) (imageRef, error) {
		return imageRef{}, fmt.Errorf("%q is not an image reference: %s", s, why)
	}
	if s == "" || len(s) > 4096 {
		return bad("empty or too long")
	}
	if isIdentifier(s) {
		return bad("an image id; the container names no image reference")
	}
	domain, remainder := splitDockerDomain(s)
	remote := remainder
	if i := strings.IndexByte(remainder, ':'); i >= 0 {
		remote = remainder[:i]
	}
	if strings.ToLower(remote) != remote {
		return bad("repository names are lowercase")
	}
	full := domain + "/" + remainder
	var r imageRef
	name := full
	if i := strings.IndexByte(full, '@'); i >= 0 {
		d, err := digest.Parse(full[i+1:])
		if err != nil {
			return bad("bad digest")
		}
		r.Digest, name = d.String(), full[:i]
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		r.Tag, name = name[i+1:], name[:i]
		if !validTag(r.Tag) {
			return bad("bad tag")
		}
	}
	// The grammar's name: an optional domain, then the path; the domain
	// is taken when it parses as one, else the whole name is the path.
	if first, rest, ok := strings.Cut(name, "/"); ok && validDomain(first) && validPath(rest) == nil {
		r.Domain, r.Path = first, rest
	} else if err := validPath(name); err == nil {
		r.Path = name
	} else {
		return bad(err.Error())
	}
	if len(r.Path) > maxPathLength {
		return bad("repository name longer than 255")
	}
	return r, nil
}

// splitDockerDomain is distribution/reference's: a first component is a
// domain if it is localhost, has a "." or ":", or is not lowercase;
// index.docker.io is docker.io; a Docker Hub repository without a
// namespace is in library/.
func splitDockerDomain(name string) (domain, remainder string) {
	first, rest, ok := strings.Cut(name, "/")
	if !ok {
		return "docker.io", "library/" + name
	}
	switch {
	case first == "localhost":
		domain, remainder = first, rest
	case first == "index.docker.io":
		domain, remainder = "docker.io", rest
	case strings.ContainsAny(first, ".:"), strings.ToLower(first) != first:
		domain, remainder = first, rest
	default:
		domain, remainder = "docker.io", name
	}
	if domain == "docker.io" && !strings.Contains(remainder, "/") {
		remainder = "library/" + remainder
	}
	return domain, remainder
}

// isIdentifier: 64 lowercase hex digits, an image id.
func isIdentifier(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// validTag: [\w][\w.-]{0,127}.
func validTag(t string) bool {
	if t == "" || len(t) > 128 || t[0] == '.' || t[0] == '-' {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// validDomain: a host (components of letters, digits and inner hyphens
// joined by dots, or an IPv6 address in brackets) with an optional port.
func validDomain(d string) bool {
	host, port := d, ""
	if i := strings.LastIndexByte(d, ':'); i >= 0 && i > strings.LastIndexByte(d, ']') {
		host, port = d[:i], d[i+1:]
		if port == "" {
			return false
		}
		for _, c := range port {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	if strings.HasPrefix(host, "[") {
		in, ok := strings.CutSuffix(host[1:], "]")
		if !ok || in == "" {
			return false
		}
		for _, c := range in {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':') {
				return false
			}
		}
		return true
	}
	for _, comp := range strings.Split(host, ".") {
		if comp == "" || comp[0] == '-' || comp[len(comp)-1] == '-' {
			return false
		}
		for _, c := range comp {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validPath checks the repository path: components of lowercase letters
// and digits joined by exactly one of ".", "_", "__" or a run of "-".
func validPath(p string) error {
	if p == "" {
		return errors.New("no repository")
	}
	for _, comp := range strings.Split(p, "/") {
		if comp == "" {
			return errors.New("empty path component")
		}
		sep := ""
		for i, c := range comp {
			alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
			if alnum {
				if sep != "" && sep != "." && sep != "_" && sep != "__" && strings.Trim(sep, "-") != "" {
					return fmt.Errorf("separator %q in %q", sep, comp)
				}
				sep = ""
				continue
			}
			if !(c == '.' || c == '_' || c == '-') {
				return fmt.Errorf("character %q in %q", c, comp)
			}
			if i == 0 {
				return fmt.Errorf("%q must start with a letter or digit", comp)
			}
			sep += string(c)
		}
		if sep != "" {
			return fmt.Errorf("%q must end with a letter or digit", comp)
		}
	}
	return nil
}
