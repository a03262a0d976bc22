package spec

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestDeepCopy(t *testing.T) {
	for _, name := range fixtures {
		s := readSpec(t, name)
		s.Linux.Sysctl = map[string]string{"a": "b"}
		s.Linux.Resources.Unified = map[string]string{"x": "y"}
		c := deepCopy(s)
		if diff := cmp.Diff(s, c); diff != "" {
			t.Fatalf("deepCopy(%s) differs (-in +copy):\n%s", name, diff)
		}
		c.Process.Args[0] = "x"
		c.Linux.Sysctl["a"] = "c"
		c.Mounts[0].Options[0] = "x"
		c.Linux.Namespaces[0].Type = "x"
		if s.Process.Args[0] == "x" || s.Linux.Sysctl["a"] == "c" || s.Mounts[0].Options[0] == "x" || s.Linux.Namespaces[0].Type == "x" {
			t.Errorf("deepCopy(%s) shares memory with its input", name)
		}
	}
	if deepCopy[specs.Spec](nil) != nil {
		t.Error("deepCopy(nil) != nil")
	}
	type withAny struct {
		V any
		P *int
	}
	n := 3
	w := deepCopy(&withAny{V: []string{"a"}, P: &n})
	if w.V.([]string)[0] != "a" || *w.P != 3 || w.P == &n {
		t.Errorf("deepCopy of interface and pointer = %+v", w)
	}
	empty := deepCopy(&specs.Spec{Process: &specs.Process{Args: []string{}}})
	if empty.Process.Args == nil {
		t.Error("deepCopy turned an empty slice into nil")
	}
}
