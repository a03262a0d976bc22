package main

import (
	"bytes"
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
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hardened-runtime/hardened/verify/signtest"
	"github.com/hardened-runtime/hardened/verify/verdict"
)

// TestPullGate: containerd's bindir protocol in and out; a signed image
// passes and its verdict lands in the shim's cache, an unsigned one fails
// with the refusal on stdout; with per-namespace sections, any may accept.
func TestPullGate(t *testing.T) {
	srv := httptest.NewServer(signtest.NewRegistry(signtest.RegistryOptions{}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs.d")
	os.MkdirAll(filepath.Join(certs, host), 0o755)
	os.WriteFile(filepath.Join(certs, host, "hosts.toml"), []byte(fmt.Sprintf("server = %q\n", srv.URL)), 0o644)
	k, _ := signtest.NewKey(signtest.ECDSAP256)
	keyFile := filepath.Join(dir, "cosign.pub")
	k.WritePublic(keyFile)
	policyFile := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policyFile, []byte(fmt.Sprintf(`signatures:
  registryConfigPath: %s
  default: [{type: reject}]
  scopes:
    %[2]s/team: [{type: sigstoreSigned, keyPath: %[3]s}]
  namespaces:
    dev:
      default: [{type: reject}]
      scopes:
        %[2]s/dev: [{type: insecureAcceptAnything}]
`, certs, host, keyFile)), 0o644)
	t.Setenv(PolicyEnv, policyFile)
	t.Setenv(verdict.CacheDirEnv, filepath.Join(dir, "state", "images"))

	push := func(repoName string, sign bool) (string, ocispec.Descriptor) {
		t.Helper()
		repo, _ := name.NewRepository(host+"/"+repoName, name.Insecure)
		img, _ := random.Image(64, 1)
		if err := remote.Write(repo.Tag("v1"), img); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		raw, _ := img.RawManifest()
		if sign {
			if err := signtest.SignClassic(context.Background(), repo, d, repo.String(), k); err != nil {
				t.Fatal(err)
			}
		}
		return repo.Tag("v1").String(), ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.Digest(d.String()), Size: int64(len(raw))}
	}
	gate := func(ref string, desc ocispec.Descriptor) (int, string) {
		t.Helper()
		in, _ := json.Marshal(desc)
		var out bytes.Buffer
		code := run([]string{"-name", ref, "-digest", desc.Digest.String(), "-stdin-media-type", ocispec.MediaTypeDescriptor}, bytes.NewReader(in), &out)
		return code, strings.TrimSpace(out.String())
	}

	signed, signedDesc := push("team/app", true)
	code, out := gate(signed, signedDesc)
	if code != 0 || !strings.HasPrefix(out, "hardened: accepted: scope "+host+"/team: sigstoreSigned by keyPath") {
		t.Errorf("signed: %d %q", code, out)
	}
	c := verdict.Cache{Dir: filepath.Join(dir, "state", "verdicts")}
	if files, _ := os.ReadDir(c.Dir); len(files) != 1 {
		t.Errorf("%d verdicts cached in %s, want 1", len(files), c.Dir)
	}

	unsigned, unsignedDesc := push("team/unsigned", false)
	code, out = gate(unsigned, unsignedDesc)
	if code != 1 || !strings.Contains(out, "image "+unsigned) || !strings.Contains(out, "no signature found") || strings.Contains(out, "\n") {
		t.Errorf("unsigned: %d %q", code, out)
	}

	devOnly, devDesc := push("dev/tool", false)
	code, out = gate(devOnly, devDesc)
	if code != 0 || !strings.Contains(out, "accepted (for pods of namespace dev)") {
		t.Errorf("accepted by a namespace's section: %d %q", code, out)
	}

	in, _ := json.Marshal(unsignedDesc)
	var buf bytes.Buffer
	code = run([]string{"-name", signed, "-digest", signedDesc.Digest.String(), "-stdin-media-type", ocispec.MediaTypeDescriptor}, bytes.NewReader(in), &buf)
	out = buf.String()
	if code != 1 || !strings.Contains(out, "is of "+unsignedDesc.Digest.String()) {
		t.Errorf("descriptor of another digest: %d %q", code, out)
	}
	os.WriteFile(policyFile, []byte("signatures: {bogus: 1}\n"), 0o644)
	if code, out = gate(signed, signedDesc); code != 1 || !strings.Contains(out, "invalid node policy") {
		t.Errorf("invalid policy: %d %q", code, out)
	}
	os.WriteFile(policyFile, []byte("mode: enforce\n"), 0o644)
	if code, out = gate(unsigned, unsignedDesc); code != 0 || !strings.Contains(out, "no signatures section") {
		t.Errorf("no signatures section: %d %q", code, out)
	}
}
