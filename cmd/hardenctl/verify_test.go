package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hardened-runtime/hardened/verify/signtest"
)

func TestVerify(t *testing.T) {
	srv := httptest.NewServer(signtest.NewRegistry(signtest.RegistryOptions{}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs.d")
	os.MkdirAll(filepath.Join(certs, host), 0o755)
	os.WriteFile(filepath.Join(certs, host, "hosts.toml"), []byte(fmt.Sprintf("server = %q\n", srv.URL)), 0o644)
	k, _ := signtest.NewKey(signtest.Ed25519)
	keyFile := filepath.Join(dir, "cosign.pub")
	k.WritePublic(keyFile)
	repo, _ := name.NewRepository(host+"/team/app", name.Insecure)
	push := func(tag string) string {
		img, _ := random.Image(64, 1)
		if err := remote.Write(repo.Tag(tag), img); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		if tag == "signed" {
			if err := signtest.SignClassic(context.Background(), repo, d, repo.String(), k); err != nil {
				t.Fatal(err)
			}
		}
		return d.String()
	}
	signed, unsigned := push("signed"), push("unsigned")
	policyFile := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policyFile, []byte(fmt.Sprintf("signatures:\n  registryConfigPath: %s\n  default: [{type: reject}]\n  scopes:\n    %s/team: [{type: sigstoreSigned, keyPath: %s}]\n", certs, host, keyFile)), 0o644)

	code, out, errOut := hardenctl(t, "verify", "--policy", policyFile, repo.Tag("signed").String())
	if code != 0 || !strings.Contains(out, "ACCEPTED "+repo.Tag("signed").String()+" ("+signed+")") ||
		!strings.Contains(out, "scope:   "+host+"/team") || !strings.Contains(out, "sigstoreSigned  keyPath "+keyFile) {
		t.Errorf("signed: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = hardenctl(t, "verify", "--key", keyFile, "--registry-config", certs, "--digest", unsigned, repo.Tag("unsigned").String())
	if code != 1 || !strings.Contains(errOut, "REFUSED image "+repo.Tag("unsigned").String()) || !strings.Contains(errOut, "no signature found") {
		t.Errorf("unsigned: %d\n%s%s", code, out, errOut)
	}
	code, out, _ = hardenctl(t, "--output", "json", "verify", "--policy", policyFile, repo.Tag("signed").String())
	var res struct {
		Accepted bool
		Digest   string
		Verdict  struct{ Scope string }
	}
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || !res.Accepted || res.Digest != signed || res.Verdict.Scope != host+"/team" {
		t.Errorf("json: %d %v\n%s", code, err, out)
	}
	code, out, _ = hardenctl(t, "--output", "json", "verify", "--policy", policyFile, host+"/other/app:v1")
	if code != 1 || !strings.Contains(out, `"accepted": false`) && !strings.Contains(out, `"accepted":false`) {
		t.Errorf("json refusal: %d\n%s", code, out)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"verify"}, 2, "give one image reference"},
		{[]string{"verify", "--key", filepath.Join(dir, "missing.pub"), "x/y:1"}, 1, "cannot read the key"},
		{[]string{"verify", "--policy", policyFile, repo.Tag("nonexistent").String()}, 1, "resolve " + repo.Tag("nonexistent").String()},
	} {
		code, _, errOut := hardenctl(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: %d %s, want %d %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

// TestPolicyValidateConditions: `hardenctl policy validate` compiles the
// CEL conditions the shim's policy loader cannot.
func TestPolicyValidateConditions(t *testing.T) {
	dir := t.TempDir()
	k, _ := signtest.NewKey(signtest.ECDSAP256)
	keyFile := filepath.Join(dir, "cosign.pub")
	k.WritePublic(keyFile)
	policyFile := filepath.Join(dir, "policy.yaml")
	write := func(expr string) {
		os.WriteFile(policyFile, []byte(fmt.Sprintf("signatures:\n  default:\n    - {type: sigstoreSigned, keyPath: %s}\n    - {type: sigstoreAttested, predicateType: slsaprovenance1, conditions: [{expression: '%s'}]}\n", keyFile, expr)), 0o644)
	}
	write(`predicate.runDetails.builder.id == "x"`)
	if code, out, errOut := hardenctl(t, "policy", "validate", policyFile); code != 0 {
		t.Errorf("valid condition: %d\n%s%s", code, out, errOut)
	}
	write(`predicate.runDetails.builder.id ==`)
	code, out, errOut := hardenctl(t, "policy", "validate", policyFile)
	if code == 0 || !strings.Contains(errOut, `signatures.default[1].conditions[0]: expression "predicate.runDetails.builder.id ==": ERROR`) {
		t.Errorf("invalid condition: %d\n%s%s", code, out, errOut)
	}
}
