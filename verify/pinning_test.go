package verify

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/hardened-runtime/hardened/verify/signtest"
	"github.com/hardened-runtime/hardened/verify/verdict"
)

// TestVerifyPinningAndNamespaces: a pinned scope refuses a moving tag with
// the pinned reference to use; a namespace's section applies to its pods
// only; verdicts of different sections or references are cached apart.
func TestVerifyPinningAndNamespaces(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, signtest.RegistryOptions{})
	k := e.key(signtest.ECDSAP256, "a.pub")
	repo, desc := e.push("signed/app", "latest")
	if err := signtest.SignClassic(ctx, repo, desc.Digest, repo.String(), k); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	v := e.verifier(`  default: [{type: reject}]
  scopes:
    REGISTRY/signed: [{type: sigstoreSigned, keyPath: KEYS/a.pub}]
  namespaces:
    prod:
      default: [{type: reject}]
      scopes:
        REGISTRY/signed:
          - {type: sigstoreSigned, keyPath: KEYS/a.pub}
          - {type: pinned, requireDigest: true}
`, cache)
	d := digest.Digest(desc.Digest.String())
	byTag := Image{Name: repo.Tag("latest").String(), Digest: d}
	byDigest := Image{Name: repo.Digest(d.String()).String(), Digest: d}

	// Outside prod: the tag is fine.
	res, err := v.Verify(ctx, byTag)
	if err != nil || res.KubernetesNamespace != "" {
		t.Fatalf("no namespace: %+v, %v", res, err)
	}
	// In prod: refused with the pinned reference, from the cache or not.
	inProd := byTag
	inProd.KubernetesNamespace = "prod"
	_, err = v.Verify(ctx, inProd)
	want := []string{`scope "` + e.host + `/signed" of namespace "prod"`, `signatures.namespaces["prod"].scopes["` + e.host + `/signed"] requires a digest (pinned: requireDigest)`,
		"fix: create the container from its digest, " + repo.String() + "@" + d.String()}
	if err == nil || !IsRefused(err) {
		t.Fatalf("prod by tag: %v, want refused", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal %q does not say %q", err, w)
		}
	}
	// A CRI container: the record names the tag, the pod spec the digest.
	cri := byTag
	cri.KubernetesNamespace, cri.Reference = "prod", byDigest.Name
	res, err = v.Verify(ctx, cri)
	if err != nil {
		t.Fatalf("prod, pod spec by digest: %v", err)
	}
	if res.KubernetesNamespace != "prod" || res.Reference != byDigest.Name || len(res.Requirements) != 2 || res.Requirements[1].Type != "pinned" {
		t.Errorf("verdict = %+v", res)
	}
	// Each verdict is cached under its own subject.
	files, _ := os.ReadDir(cache)
	if len(files) != 2 {
		t.Errorf("%d cached verdicts, want 2 (no namespace; prod by digest)", len(files))
	}
	c := verdict.Cache{Dir: cache}
	if _, ok := c.Load(res.PolicyHash, byTag.Name, d.String(), ""); !ok {
		t.Error("the verdict outside any namespace is not under the old key")
	}
	if _, ok := c.LoadSubject(verdict.Subject{PolicyHash: res.PolicyHash, Image: byTag.Name, Digest: d.String(), KubernetesNamespace: "prod"}); ok {
		t.Error("a verdict for prod by tag was cached")
	}
	// A fresh verifier (a new hardened-verify) refuses prod by tag although
	// a verdict for the same image is cached for another subject.
	v2 := e.verifier(strings.ReplaceAll(`  default: [{type: reject}]
  scopes:
    REGISTRY/signed: [{type: sigstoreSigned, keyPath: KEYS/a.pub}]
  namespaces:
    prod:
      default: [{type: reject}]
      scopes:
        REGISTRY/signed:
          - {type: sigstoreSigned, keyPath: KEYS/a.pub}
          - {type: pinned, requireDigest: true}
`, "\t", ""), cache)
	if _, err := v2.Verify(ctx, inProd); err == nil {
		t.Error("prod by tag accepted from the cache")
	}
	if r, err := v2.Verify(ctx, cri); err != nil || !r.Cached {
		t.Errorf("prod by digest again: %+v, %v; want the cached verdict", r, err)
	}
}
