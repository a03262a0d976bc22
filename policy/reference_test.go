package policy

import (
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
