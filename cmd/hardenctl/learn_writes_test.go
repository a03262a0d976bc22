package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestWrittenPaths: from an overlay's upper directory, the directories a
// workload wrote in (a file made, changed or removed) and the directories
// it made, each once, the root left out.
func TestWrittenPaths(t *testing.T) {
	lower, upper := t.TempDir(), t.TempDir()
	for _, d := range []string{"app", "var/cache", "var/log", "srv", "etc"} {
		os.MkdirAll(filepath.Join(lower, d), 0o755)
	}
	os.WriteFile(filepath.Join(lower, "app/data.db"), []byte("v1"), 0o644)
	os.WriteFile(filepath.Join(lower, "var/log/old"), nil, 0o644)
	for _, d := range []string{"app", "var/cache/app/sub", "srv/new/deeper", "etc"} {
		os.MkdirAll(filepath.Join(upper, d), 0o755)
	}
	os.WriteFile(filepath.Join(upper, "app/data.db"), []byte("v2"), 0o644) // changed
	os.WriteFile(filepath.Join(upper, "var/cache/app/sub/x"), nil, 0o644)  // below a made directory
	os.WriteFile(filepath.Join(upper, "srv/new/deeper/y"), nil, 0o644)
	os.WriteFile(filepath.Join(upper, "rootfile"), nil, 0o644) // at the root: cannot be writable
	os.MkdirAll(filepath.Join(upper, "var/log"), 0o755)
	if err := unix.Mknod(filepath.Join(upper, "var/log/old"), unix.S_IFCHR, 0); err != nil { // removed
		t.Skipf("skipping: a whiteout needs root: %v", err)
	}
	w := &writeWatch{upper: upper, lower: lower}
	got, err := w.paths()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/app", "/srv/new", "/var/cache/app", "/var/log"}; !slices.Equal(got, want) {
		t.Errorf("paths = %v, want %v", got, want)
	}
	var b strings.Builder
	reportWrites(&b, got)
	if !strings.Contains(b.String(), "writablePaths: [/app, /srv/new, /var/cache/app, /var/log]") {
		t.Errorf("report %q", b.String())
	}
}

// TestLearnWrites: learn runs a workload that writes outside its level's
// writable paths and prints them as a writablePaths list; a run under a
// level with that list writes without error.
func TestLearnWrites(t *testing.T) {
	runc := needRunc(t)
	layout := busyboxLayout(t)
	profile := filepath.Join(t.TempDir(), "learned.json")
	script := "mkdir -p /srv/app/cache && echo x > /srv/app/cache/y && echo z > /etc/motd && echo ok"
	code, out, errOut := hardenctl(t, "learn", "--runc", runc, "--out", profile, layout, "--", "sh", "-c", script)
	if code != 0 {
		t.Fatalf("learn: %d %s %s", code, out, errOut)
	}
	if !strings.Contains(errOut, "writablePaths: [/etc, /srv]") {
		t.Errorf("learn did not list the written paths:\n%s", errOut)
	}
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(policyFile, []byte("levels:\n  learned:\n    extends: restricted\n    rootfs:\n      writablePaths: [/etc, /srv]\n"), 0o644)
	code, out, errOut = hardenctl(t, "run", "--runc", runc, "--policy", policyFile, "--level", "learned", layout, "--", "sh", "-c", script)
	if code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("run under the learned writable paths: %d %s %s", code, out, errOut)
	}
}
