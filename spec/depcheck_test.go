package spec

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPureCore keeps spec/, profiles/ (with profiles/seccompmodel) and policy/ free of side effects: no
// containerd, no process execution, no network, no cgo (transitively), and
// no raw syscalls of their own. (Tests may use them; the packages may not.)
func TestPureCore(t *testing.T) {
	for _, pkg := range []string{"github.com/hardened-runtime/hardened/spec", "github.com/hardened-runtime/hardened/profiles",
		"github.com/hardened-runtime/hardened/profiles/seccompmodel", "github.com/hardened-runtime/hardened/policy"} {
		checkImports(t, pkg, true, []string{"github.com/containerd/", "os/exec", "net/http", "net", "github.com/seccomp/libseccomp-golang", "google.golang.org/grpc", "runtime/cgo"})
		checkImports(t, pkg, false, []string{"golang.org/x/sys/unix"})
	}
}

func checkImports(t *testing.T, pkg string, deps bool, forbidden []string) {
	t.Helper()
	args := []string{"list", "-f", `{{join .Imports "\n"}}`, pkg}
	if deps {
		args = []string{"list", "-deps", "-f", "{{.ImportPath}}", pkg}
	}
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", pkg, err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || (strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f)) {
				t.Errorf("%s imports %s", pkg, dep)
			}
		}
	}
}
