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
// whose package initialisation compiles its regular expressions (2.7 ms
// and 400 KB in every shim process, three of them per container); the
// verifier (package verify) still checks identities with it.
type imageRef struct {
	Domain string
	Path   string
	Tag    string
	Digest string
}

// Name is the repository: domain/path.
func (r imageRef) Name() string { return r.Domain + "/" + r.Path }

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

func parseImageRef(s string) (imageRef, error) {
	var r imageRef
	bad := func(why string) (imageRef, error) {
		return imageRef{}, fmt.Errorf("%q is not an image reference: %s", s, why)
	}
	if s == "" || len(s) > 4096 {
		return bad("empty or too long")
	}
	if d, err := digest.Parse(s); err == nil && d.Algorithm() == digest.SHA256 {
		return bad("an image id; the container names no image reference")
	}
	name := s
	if i := strings.IndexByte(name, '@'); i >= 0 {
		d, err := digest.Parse(name[i+1:])
		if err != nil {
			return bad("bad digest")
		}
		r.Digest, name = d.String(), name[:i]
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		r.Tag, name = name[i+1:], name[:i]
		if !validTag(r.Tag) {
			return bad("bad tag")
		}
	}
	first, rest, found := strings.Cut(name, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost" || first != strings.ToLower(first)) {
		r.Domain, r.Path = first, rest
		if !validDomain(r.Domain) {
			return bad("bad registry host")
		}
	} else {
		r.Domain, r.Path = "docker.io", name
	}
	if r.Domain == "index.docker.io" {
		r.Domain = "docker.io"
	}
	if r.Domain == "docker.io" && !strings.Contains(r.Path, "/") {
		r.Path = "library/" + r.Path
	}
	if err := validPath(r.Path); err != nil {
		return bad(err.Error())
	}
	return r, nil
}

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

func validDomain(d string) bool {
	host, port, hasPort := strings.Cut(d, ":")
	if host == "" || hasPort && port == "" {
		return false
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// validPath checks the repository path: lowercase components of letters
// and digits joined by ".", "_", "__" or "-".
func validPath(p string) error {
	if p == "" {
		return errors.New("no repository")
	}
	for _, comp := range strings.Split(p, "/") {
		if comp == "" {
			return errors.New("empty path component")
		}
		for i, c := range comp {
			alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
			if !alnum && !(c == '.' || c == '_' || c == '-') {
				return fmt.Errorf("character %q in %q", c, comp)
			}
			if !alnum && (i == 0 || i == len(comp)-1) {
				return fmt.Errorf("%q must start and end with a letter or digit", comp)
			}
		}
	}
	return nil
}
