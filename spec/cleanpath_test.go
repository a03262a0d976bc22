package spec

import (
	"path"
	"testing"
)

// cleanPath must be path.Clean whatever the input: its fast path may only
// take paths that path.Clean leaves as they are.
func TestCleanPathIsPathClean(t *testing.T) {
	elems := []string{"", ".", "..", "a", "...", ".a", "a.", "ab", "/"}
	var all []string
	var walk func(prefix string, depth int)
	walk = func(prefix string, depth int) {
		all = append(all, prefix)
		if depth == 0 {
			return
		}
		for _, e := range elems {
			walk(prefix+"/"+e, depth-1)
			walk(prefix+e, depth-1)
		}
	}
	walk("", 4)
	for _, p := range all {
		if got, want := cleanPath(p), path.Clean(p); got != want {
			t.Fatalf("cleanPath(%q) = %q, path.Clean: %q", p, got, want)
		}
		if isCleanAbs(p) && (path.Clean(p) != p || !path.IsAbs(p)) {
			t.Fatalf("isCleanAbs(%q) but path.Clean gives %q", p, path.Clean(p))
		}
	}
}

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/", "//", "/a/./b", "/a/../b", "/a/b/", "a/b", "/..", "/a//b", "/var/lib/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if got, want := cleanPath(p), path.Clean(p); got != want {
			t.Fatalf("cleanPath(%q) = %q, path.Clean: %q", p, got, want)
		}
	})
}

// joinElements must be path.Join for what hostPaths gives it: a clean
// absolute base and single path elements.
func TestJoinElementsIsPathJoin(t *testing.T) {
	for _, base := range []string{"/", "/var/lib/containerd", "/run/containerd"} {
		for _, elems := range [][]string{nil, {"a"}, {criPlugin, "sandboxes", "0123abc", "hosts"}, {"pods", "9f1c-uid"}, {"..."}} {
			want := path.Join(append([]string{base}, elems...)...)
			if got := joinElements(base, elems); got != want {
				t.Errorf("joinElements(%q, %q) = %q, path.Join: %q", base, elems, got, want)
			}
		}
	}
}
