package policy

import (
	"strings"
	"testing"

	"github.com/distribution/reference"
)

// TestParseImageRefAgreesWithDistribution: the hand-written parser
// normalises as github.com/distribution/reference does.
func TestParseImageRefAgreesWithDistribution(t *testing.T) {
	d := "@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, s := range []string{
		"busybox", "busybox:1.36", "library/busybox", "docker.io/busybox", "index.docker.io/library/busybox:latest",
		"user/app", "docker.io/user/app:v1", "quay.io/org/app", "quay.io/org/team/app:v1.2-rc_3", "localhost/app",
		"localhost:5000/app:v1", "127.0.0.1:5000/signed/busybox:v1", "registry.example.com/a/b/c" + d,
		"registry.example.com/a:v1" + d, "busybox" + d, "my-registry.local:443/x.y/z__w-v",
	} {
		got, err := parseImageRef(s)
		want, werr := reference.ParseNormalizedNamed(s)
		if err != nil || werr != nil {
			t.Errorf("%s: parseImageRef = %v, distribution = %v", s, err, werr)
			continue
		}
		if got.String() != want.String() || got.Name() != want.Name() || got.Domain != reference.Domain(want) {
			t.Errorf("%s: parsed %s (%s), distribution %s (%s)", s, got, got.Name(), want, want.Name())
		}
	}
	for _, s := range []string{"", "a b", "Busybox", "busybox:", "busybox@sha256:abc", "r.io//x", "r.io/x/", "r.io/-x", "r.io/x:-tag", "r.io:port/x", "/x"} {
		if got, err := parseImageRef(s); err == nil {
			t.Errorf("%q parsed as %s, want an error", s, got)
		}
		if _, err := reference.ParseNormalizedNamed(s); err == nil {
			t.Errorf("%q: distribution accepts it", s)
		}
	}
}

// FuzzImageRefDifferential proves the hand-written parser (which the shim
// uses, to spare every shim process distribution/reference's 1-3 ms and
// 400 KB of regular expression compilation at init) equal to
// github.com/distribution/reference (which containerd and the verifier
// use): the same strings are accepted, and an accepted one splits and
// normalises into the same domain, path, tag and digest.
func FuzzImageRefDifferential(f *testing.F) {
	d := "@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, s := range []string{
		"busybox", "busybox:1.36", "library/busybox", "docker.io/busybox", "index.docker.io/library/busybox:latest",
		"user/app", "quay.io/org/team/app:v1.2-rc_3", "localhost/app", "localhost:5000/app:v1", "127.0.0.1:5000/signed/busybox:v1",
		"registry.example.com/a:v1" + d, "busybox" + d, "my-registry.local:443/x.y/z__w-v", "[::1]:5000/app", "Foo.io/app",
		"a__b", "a___b", "a..b", "a-_b", "app:" + strings.Repeat("t", 129), "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"x/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "app@sha512:abc", "r.io:/x", "r.io./x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseImageRef(s)
		want, werr := reference.ParseNormalizedNamed(s)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: parseImageRef = %v, %v; distribution = %v, %v", s, got, err, want, werr)
		}
		if err != nil {
			return
		}
		wantTag, wantDigest := "", ""
		if tg, ok := want.(reference.Tagged); ok {
			wantTag = tg.Tag()
		}
		if dg, ok := want.(reference.Digested); ok {
			wantDigest = dg.Digest().String()
		}
		if got.Domain != reference.Domain(want) || got.Path != reference.Path(want) || got.Tag != wantTag || got.Digest != wantDigest || got.String() != want.String() {
			t.Fatalf("%q: parseImageRef = %+v (%s); distribution = %s (domain %q path %q tag %q digest %q)", s, got, got, want, reference.Domain(want), reference.Path(want), wantTag, wantDigest)
		}
	})
}
