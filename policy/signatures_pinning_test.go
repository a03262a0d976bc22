package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestSignaturesPinning(t *testing.T) {
	p := mustParse(t, `
signatures:
  default: [{type: insecureAcceptAnything}]
  scopes:
    "r.io/digest": [{type: pinned, requireDigest: true}]
    "r.io/tags": [{type: pinned}]
    "r.io/globs": [{type: pinned, movingTags: [latest, main, "*-dev"]}]
`)
	d := "sha256:" + strings.Repeat("a", 64)
	other := "sha256:" + strings.Repeat("b", 64)
	for _, tc := range []struct {
		ref  string
		want string // "" accepted, else in the error
	}{
		{"r.io/digest/app@" + d, ""},
		{"r.io/digest/app:v1@" + d, ""},
		{"r.io/digest/app:v1", `created from r.io/digest/app:v1, a reference by tag, and signatures.scopes["r.io/digest"] requires a digest (pinned: requireDigest); fix: create the container from its digest, r.io/digest/app@` + d},
		{"r.io/digest/app@" + other, "but the image that runs is " + d},
		{"r.io/tags/app:v1", ""},
		{"r.io/tags/app:latest", `tag "latest" moves (signatures.scopes["r.io/tags"] pinned: movingTags latest)`},
		{"r.io/tags/app", `(no tag: latest)`},
		{"r.io/tags/app@" + d, ""},
		{"r.io/globs/app:v1", ""},
		{"r.io/globs/app:main", `tag "main" moves`},
		{"r.io/globs/app:feature-dev", `tag "feature-dev" moves`},
		{"r.io/other/app:latest", ""},
	} {
		sc, err := p.Signatures.Match(tc.ref, d)
		if err != nil {
			t.Fatal(err)
		}
		err = sc.CheckPinning(tc.ref, d)
		var pe *PinningError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckPinning(%s) = %v, want accepted", tc.ref, err)
		case tc.want != "" && (err == nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckPinning(%s) = %v, want %q", tc.ref, err, tc.want)
		}
	}
	if sc, _ := p.Signatures.Match("r.io/tags/app:v1"); sc.NeedsVerifier() || sc.AcceptsAnything() || sc.Rejects() {
		t.Errorf("a pinned-only scope: needs verifier %v, accepts anything %v, rejects %v", sc.NeedsVerifier(), sc.AcceptsAnything(), sc.Rejects())
	}
	// The platform manifest of an index is what runs too.
	sc, _ := p.Signatures.Match("r.io/digest/app@"+other, d, other)
	if err := sc.CheckPinning("r.io/digest/app@"+other, d, other); err != nil {
		t.Errorf("digest of the platform manifest: %v", err)
	}
	for text, want := range map[string]string{
		"{type: pinned, keyPath: /k}":                               "pinned takes no keys",
		"{type: pinned, movingTags: ['[']}":                         "is not a glob",
		"{type: pinned, requireDigest: true, movingTags: [latest]}": "drop movingTags",
		"{type: reject, requireDigest: true}":                       "requireDigest and movingTags belong to type pinned",
	} {
		_, err := Parse([]byte("signatures:\n  default: [" + text + "]\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Parse = %v, want %q", text, err, want)
		}
	}
}

func TestSignaturesNamespaces(t *testing.T) {
	p := mustParse(t, `
signatures:
  default: [{type: insecureAcceptAnything}]
  scopes:
    "r.io/team": [{type: reject}]
  namespaces:
    prod:
      default: [{type: reject}]
      scopes:
        "r.io/team": [{type: pinned, requireDigest: true}]
`)
	s := p.Signatures
	if _, err := s.Match("r.io/team/app:v1"); !errors.Is(err, ErrNamespaceNeeded) {
		t.Errorf("Match without a namespace = %v, want ErrNamespaceNeeded", err)
	}
	for _, tc := range []struct{ ns, image, scope, section, typ, field string }{
		{"", "r.io/team/app:v1", "r.io/team", "", Reject, `signatures.scopes["r.io/team"]`},
		{"dev", "r.io/team/app:v1", "r.io/team", "", Reject, `signatures.scopes["r.io/team"]`},
		{"prod", "r.io/team/app:v1", "r.io/team", "prod", Pinned, `signatures.namespaces["prod"].scopes["r.io/team"]`},
		{"prod", "r.io/other:v1", "default", "prod", Reject, `signatures.namespaces["prod"].default`},
		{"dev", "r.io/other:v1", "default", "", InsecureAcceptAnything, `signatures.default`},
	} {
		sc, err := s.MatchIn(tc.ns, tc.image)
		if err != nil {
			t.Fatal(err)
		}
		if sc.Name != tc.scope || sc.Namespace != tc.section || sc.Requirements[0].Type != tc.typ || sc.Field() != tc.field {
			t.Errorf("MatchIn(%q, %s) = %s in %q (%s, %s), want %s in %q (%s, %s)", tc.ns, tc.image, sc.Name, sc.Namespace, sc.Requirements[0].Type, sc.Field(), tc.scope, tc.section, tc.typ, tc.field)
		}
	}
	h := s.Hash
	p2 := mustParse(t, strings.Replace(`
signatures:
  default: [{type: insecureAcceptAnything}]
  scopes:
    "r.io/team": [{type: reject}]
  namespaces:
    prod:
      default: [{type: reject}]
      scopes:
        "r.io/team": [{type: pinned, requireDigest: true}]
`, "requireDigest: true", "movingTags: [latest]", 1))
	if p2.Signatures.Hash == h {
		t.Error("the hash does not cover the namespaces")
	}
	for text, want := range map[string]string{
		"  namespaces: {Prod: {default: [{type: reject}]}}\n":                                      `signatures.namespaces["Prod"]: "Prod" is not a Kubernetes namespace name`,
		"  namespaces: {prod: {}}\n":                                                               `signatures.namespaces["prod"].default: must list at least one requirement`,
		"  namespaces: {prod: {default: [{type: sigstoreSigned}]}}\n":                              `signatures.namespaces["prod"].default[0]: sigstoreSigned needs keyPath`,
		"  namespaces: {prod: {default: [{type: reject}], scopes: {busybox: [{type: reject}]}}}\n": `signatures.namespaces["prod"].scopes["busybox"]: "busybox" is not a registry host`,
		"  namespaces: {prod: {policyFile: /nonexistent.json}}\n":                                  `signatures.namespaces["prod"].policyFile: open /nonexistent.json`,
		"  namespaces: {prod: {default: [{type: reject}], bogus: 1}}\n":                            "field bogus not found",
	} {
		_, err := Parse([]byte("signatures:\n  default: [{type: reject}]\n" + text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want %q", text, err, want)
		}
	}
}
