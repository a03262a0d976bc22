package verify

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hardened-runtime/hardened/verify/signtest"
	"github.com/hardened-runtime/hardened/verify/verdict"
)

// BenchmarkVerify times a verification as the shim pays it, against a
// registry on loopback: cold (a new verifier, as each hardened-verify
// process is, with no cached verdict: registry reads and signature checks)
// and warm (the verdict cached on disk, read by a new verifier, and as the
// shim reads it itself before it would start hardened-verify). Targets:
// cold ≤ 50 ms, warm ≤ 1 ms.
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	t := &testing.T{}
	e := newEnv(t, signtest.RegistryOptions{})
	e.t = t
	k, err := signtest.NewKey(signtest.ECDSAP256)
	if err != nil {
		b.Fatal(err)
	}
	k.WritePublic(e.keysDir + "/a.pub")
	repo, desc := e.push("signed/app", "v1")
	if err := signtest.SignClassic(ctx, repo, desc.Digest, repo.String(), k, remote.WithContext(ctx)); err != nil {
		b.Fatal(err)
	}
	if err := signtest.SignBundle(ctx, repo, desc, repo.String(), k); err != nil {
		b.Fatal(err)
	}
	im := img(repo, "v1", desc)
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.verifier(trustA, "").Verify(ctx, im); err != nil {
				b.Fatal(err)
			}
		}
	})
	// What the shim pays on a miss: a hardened-verify process (its start
	// and the policy parse included) against the registry.
	b.Run("cold-process", func(b *testing.B) {
		bin := filepath.Join(b.TempDir(), "hardened-verify")
		if out, err := exec.Command("go", "build", "-o", bin, "../cmd/hardened-verify").CombinedOutput(); err != nil {
			b.Fatalf("build hardened-verify: %v\n%s", err, out)
		}
		policyFile := filepath.Join(b.TempDir(), "policy.yaml")
		section := strings.NewReplacer("KEYS", e.keysDir, "REGISTRY", e.host).Replace(trustA)
		os.WriteFile(policyFile, []byte(fmt.Sprintf("signatures:\n  registryConfigPath: %s\n  timeout: 2s\n%s", e.certs, section)), 0o644)
		b.ResetTimer()
		for b.Loop() {
			out, err := exec.Command(bin, "--policy", policyFile, "--image", im.Name, "--digest", im.Digest.String()).CombinedOutput()
			if err != nil {
				b.Fatalf("hardened-verify: %v\n%s", err, out)
			}
		}
	})
	cache := b.TempDir()
	first := e.verifier(trustA, cache)
	v, err := first.Verify(ctx, im)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("warm", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.verifier(trustA, cache).Verify(ctx, im); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("warm-shim", func(b *testing.B) {
		c := verdict.Cache{Dir: cache}
		for b.Loop() {
			if _, ok := c.Load(v.PolicyHash, v.Image, v.Digest, v.PlatformDigest); !ok {
				b.Fatal("no cached verdict")
			}
		}
	})
}
