package verify

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hardened-runtime/hardened/verify/signtest"
)

// cosignBinaries lists the real cosign CLIs to test against: `cosign` on
// $PATH and $HARDENED_COSIGN (a colon-separated list of paths), each with
// its major version.
func cosignBinaries(t *testing.T) map[string]string {
	t.Helper()
	var cands []string
	if p, err := exec.LookPath("cosign"); err == nil {
		cands = append(cands, p)
	}
	if env := os.Getenv("HARDENED_COSIGN"); env != "" {
		cands = append(cands, filepath.SplitList(env)...)
	}
	out := map[string]string{}
	re := regexp.MustCompile(`GitVersion:\s+v(\d+)\.`)
	for _, c := range cands {
		v, err := exec.Command(c, "version").CombinedOutput()
		if m := re.FindSubmatch(v); err == nil && m != nil {
			out[c] = "v" + string(m[1])
		}
	}
	return out
}

// TestCosignCLI signs and attests with the real cosign (v2 or v3), by
// key, without a transparency log, through a loopback registry, and checks
// that the verifier accepts what it wrote under a policy that requires the
// signature and a SLSA provenance attestation with a condition, and
// refuses when the condition does not hold. It runs only where a cosign
// binary is available (`cosign` on $PATH or $HARDENED_COSIGN); the format
// tests above build the same bytes cosign writes without it.
func TestCosignCLI(t *testing.T) {
	bins := cosignBinaries(t)
	if len(bins) == 0 {
		t.Skip("skipping: no cosign binary on $PATH or in $HARDENED_COSIGN")
	}
	for bin, major := range bins {
		formats := []string{"default"}
		if major == "v2" {
			formats = append(formats, "new-bundle-format")
		}
		for _, format := range formats {
			for _, noReferrers := range []bool{false, true} {
				name := major + "/" + format
				if noReferrers {
					name += "/no-referrers-api"
				}
				t.Run(name, func(t *testing.T) {
					ctx := context.Background()
					e := newEnv(t, signtest.RegistryOptions{NoReferrers: noReferrers})
					dir := t.TempDir()
					cosign := func(args ...string) string {
						t.Helper()
						cmd := exec.Command(bin, args...)
						cmd.Dir = dir
						cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=", "COSIGN_EXPERIMENTAL=0", "HOME="+dir)
						out, err := cmd.CombinedOutput()
						if err != nil {
							t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
						}
						return string(out)
					}
					cosign("generate-key-pair")
					if err := os.Rename(filepath.Join(dir, "cosign.pub"), filepath.Join(e.keysDir, "a.pub")); err != nil {
						t.Fatal(err)
					}
					v := e.verifier(`  default: [{type: reject}]
  scopes:
    REGISTRY/signed:
      - {type: sigstoreSigned, keyPath: KEYS/a.pub}
      - type: sigstoreAttested
        predicateType: slsaprovenance1
        conditions:
          - expression: predicate.runDetails.builder.id == "https://github.com/org/app/.github/workflows/build.yml@refs/heads/main"
`, "")
					pred := filepath.Join(dir, "provenance.json")
					extra := []string{"--tlog-upload=false", "--yes", "--key", filepath.Join(dir, "cosign.key")}
					if format == "new-bundle-format" {
						extra = append(extra, "--new-bundle-format")
					}
					if major == "v3" {
						extra = append(extra, "--use-signing-config=false")
					}
					for _, tc := range []struct {
						tag, builder string
						ok           bool
					}{{"good", "https://github.com/org/app/.github/workflows/build.yml@refs/heads/main", true}, {"bad", "https://github.com/evil/app", false}} {
						repo, desc := e.push("signed/app", tc.tag)
						ref := repo.String() + "@" + desc.Digest.String()
						os.WriteFile(pred, []byte(`{"buildDefinition":{"buildType":"x","externalParameters":{}},"runDetails":{"builder":{"id":"`+tc.builder+`"},"metadata":{"finishedOn":"`+time.Now().UTC().Format(time.RFC3339)+`"}}}`), 0o644)
						cosign(append([]string{"sign"}, append(extra, ref)...)...)
						cosign(append([]string{"attest", "--type", "slsaprovenance1", "--predicate", pred}, append(extra, ref)...)...)
						res, err := v.Verify(ctx, img(repo, tc.tag, desc))
						switch {
						case tc.ok && err != nil:
							t.Errorf("what %s %s wrote: %v", bin, format, err)
						case tc.ok:
							t.Logf("accepted: %s", res.Summary())
						case err == nil || !strings.Contains(err.Error(), `seen: predicate.runDetails.builder.id = "https://github.com/evil/app"`):
							t.Errorf("attested by another builder: %v, want refused with the builder seen", err)
						}
					}
				})
			}
		}
	}
}
