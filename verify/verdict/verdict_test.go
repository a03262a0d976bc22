package verdict

import (
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	c := Cache{Dir: t.TempDir(), TTL: time.Hour, Now: func() time.Time { return now }}
	v := &Verdict{Image: "r.io/a:1", Digest: "sha256:aa", PlatformDigest: "sha256:bb", SignedDigest: "sha256:bb", Scope: "r.io", PolicyHash: "h",
		Requirements: []Satisfied{{Type: "sigstoreSigned", Key: "keyPath k", Signature: "tag x"}}, VerifiedAt: now}
	if err := c.Store(v); err != nil {
		t.Fatal(err)
	}
	got, ok := c.Load("h", "r.io/a:1", "sha256:aa", "sha256:bb")
	if !ok || !got.Cached || got.Scope != "r.io" {
		t.Fatalf("Load = %+v %v", got, ok)
	}
	for name, args := range map[string][4]string{
		"other policy":   {"h2", "r.io/a:1", "sha256:aa", "sha256:bb"},
		"other image":    {"h", "r.io/b:1", "sha256:aa", "sha256:bb"},
		"other digest":   {"h", "r.io/a:1", "sha256:cc", "sha256:bb"},
		"other platform": {"h", "r.io/a:1", "sha256:aa", "sha256:dd"},
	} {
		if _, ok := c.Load(args[0], args[1], args[2], args[3]); ok {
			t.Errorf("%s: cached verdict reused", name)
		}
	}
	now = now.Add(2 * time.Hour)
	if _, ok := c.Load("h", "r.io/a:1", "sha256:aa", "sha256:bb"); ok {
		t.Error("a verdict older than the TTL was reused")
	}
	c.TTL = 0
	if _, ok := c.Load("h", "r.io/a:1", "sha256:aa", "sha256:bb"); !ok {
		t.Error("TTL 0 should keep verdicts")
	}
	if s := got.Summary(); s != "scope r.io: sigstoreSigned by keyPath k (tag x) on platform manifest sha256:bb [cached]" {
		t.Errorf("Summary = %q", s)
	}
	if _, ok := (Cache{}).Load("h", "r.io/a:1", "sha256:aa", "sha256:bb"); ok {
		t.Error("a cache without a directory found something")
	}
}
