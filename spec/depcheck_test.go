package spec

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPureCore keeps spec/, profiles/ and policy/ free of side effects: no
// containerd, no process execution, no raw syscalls, no network. (Tests may
// use them; the packages may not.)
func TestPureCore(t *testing.T) {
	forbidden := []string{"github.com/containerd/", "os/exec", "golang.org/x/sys/unix", "net/http", "net", "github.com/seccomp/libseccomp-golang", "google.golang.org/grpc"}
	for _, pkg := range []string{"github.com/hardened-runtime/hardened/spec", "github.com/hardened-runtime/hardened/profiles", "github.com/hardened-runtime/hardened/policy"} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if dep == f || (strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f)) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
