package conditions

import (
	"os/exec"
	"strings"
	"testing"
)

// TestShimLinksNoCEL: conditions are evaluated by hardened-verify only; the
// shim, which runs for every container, links neither CEL nor this
// package (nor the registry client and sigstore libraries).
func TestShimLinksNoCEL(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/hardened-runtime/hardened/cmd/containerd-shim-hardened-v2").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/google/cel-go/", "cel.dev/expr", "github.com/hardened-runtime/hardened/verify/conditions", "github.com/sigstore/", "github.com/google/go-containerregistry/"} {
			if dep+"/" == bad || strings.HasPrefix(dep, bad) {
				t.Errorf("the shim links %s", dep)
			}
		}
	}
	out, err = exec.Command("go", "list", "-deps", "github.com/hardened-runtime/hardened/cmd/hardened-verify").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "github.com/google/cel-go/cel\n") {
		t.Errorf("hardened-verify does not link cel-go (%v)", err)
	}
}
