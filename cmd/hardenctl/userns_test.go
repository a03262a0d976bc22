package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestHardenUserNamespace: hardenctl shows what the shim does to a root
// image under restricted on a kernel with idmapped mounts (root in a user
// namespace on the range it would reserve), and why not without.
func TestHardenUserNamespace(t *testing.T) {
	base := []string{"--apparmor", "false", "--unprivileged-port-sysctl", "true", "--policy", "/nonexistent/policy.yaml"}
	out := filepath.Join(t.TempDir(), "hardened.json")
	code, stdout, stderr := hardenctl(t, append(append([]string{"harden", "--explain", "--idmapped-mounts", "true", "--userns-range", "1879113728:65536", "-o", out}, base...), ctrSpec)...)
	if code != 0 || !strings.Contains(stdout, "linux.uidMappings") || !strings.Contains(stdout, "[0:1879113728:65536]") {
		t.Fatalf("harden --idmapped-mounts true = %d:\n%s%s", code, stdout, stderr)
	}
	if code, stdout, _ := hardenctl(t, append(append([]string{"check", "--idmapped-mounts", "true", "--userns-range", "1879113728:65536"}, base...), out)...); code != 0 {
		t.Errorf("check of the hardened spec = %d: %s", code, stdout)
	}
	for _, tc := range []struct {
		args []string
		why  string
	}{
		{[]string{"--idmapped-mounts", "false"}, "no idmapped mounts"},
		{[]string{"--idmapped-mounts", "true", "--userns-range", "none"}, "--userns-range none"},
	} {
		code, stdout, _ := hardenctl(t, append(append(append([]string{"harden", "--explain", "-o", filepath.Join(t.TempDir(), "h.json")}, tc.args...), base...), ctrSpec)...)
		if code != 0 || !strings.Contains(stdout, tc.why) || !strings.Contains(stdout, "65534") {
			t.Errorf("harden %v = %d, want 65534 and why (%s):\n%s", tc.args, code, tc.why, stdout)
		}
	}
	if code, _, stderr := hardenctl(t, append(append([]string{"harden", "--userns-range", "1:2"}, base...), ctrSpec)...); code == 0 || !strings.Contains(stderr, "--userns-range") {
		t.Errorf("harden --userns-range 1:2 = %d %s, want a usage error", code, stderr)
	}
}
