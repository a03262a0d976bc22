package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNamespaceFlagRequired: under a policy with per-namespace sections a
// caller must say the container's namespace, even "" for none.
func TestNamespaceFlagRequired(t *testing.T) {
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(policyFile, []byte("signatures:\n  default: [{type: reject}]\n  namespaces:\n    prod: {default: [{type: reject}]}\n"), 0o644)
	args := []string{"--policy", policyFile, "--image", "r.io/app:v1", "--digest", "sha256:" + strings.Repeat("a", 64)}
	stderr := captureStderr(t, func() {
		if code := run(args); code != 2 {
			t.Errorf("without --kubernetes-namespace: exit %d, want 2", code)
		}
	})
	if !strings.Contains(stderr, "gave no --kubernetes-namespace") {
		t.Errorf("stderr %q", stderr)
	}
	for _, ns := range []string{"", "prod"} {
		stderr = captureStderr(t, func() {
			if code := run(append(args, "--kubernetes-namespace", ns)); code != 1 {
				t.Errorf("--kubernetes-namespace %q: exit %d, want 1 (refused by reject)", ns, code)
			}
		})
		want := `scope "default": the scope's requirements include reject`
		if ns == "prod" {
			want = `scope "default" of namespace "prod"`
		}
		if !strings.Contains(stderr, want) {
			t.Errorf("--kubernetes-namespace %q: stderr %q, want %q", ns, stderr, want)
		}
	}
}

func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	f()
	os.Stderr = old
	w.Close()
	data := make([]byte, 1<<16)
	n, _ := r.Read(data)
	return string(data[:n])
}
