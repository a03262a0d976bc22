package seccompbpf

import (
	"testing"

	"github.com/hardened-runtime/hardened/profiles"
)

func TestSeccompModesCompile(t *testing.T) {
	for _, name := range profiles.BuiltinNames() {
		for _, mode := range profiles.SeccompModes {
			l, _ := profiles.Builtin(name)
			l.Seccomp.Mode = mode
			p, err := profiles.Seccomp(l, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Validate(p); err != nil {
				t.Errorf("level %s mode %s: %v", name, mode, err)
			}
		}
	}
}
