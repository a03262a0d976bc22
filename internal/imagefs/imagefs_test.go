package imagefs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"golang.org/x/sys/unix"
)

// layers builds layer directories from "layer:path" specs: a path ending
// in / is a directory, "->target" makes a link, "!wh" a whiteout, "!opq"
// an opaque directory; anything else a file holding its path.
func layers(t *testing.T, specs ...string) []string {
	t.Helper()
	base := t.TempDir()
	dirs := map[string]string{}
	var order []string
	for _, s := range specs {
		layer, p, _ := strings.Cut(s, ":")
		d, ok := dirs[layer]
		if !ok {
			d = filepath.Join(base, layer)
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			dirs[layer] = d
			order = append(order, d)
		}
		if p == "" {
			continue
		}
		full := filepath.Join(d, strings.SplitN(p, "->", 2)[0])
		os.MkdirAll(filepath.Dir(strings.TrimSuffix(strings.TrimSuffix(full, "!wh"), "!opq")), 0o755)
		switch {
		case strings.Contains(p, "->"):
			if err := os.Symlink(strings.SplitN(p, "->", 2)[1], full); err != nil {
				t.Fatal(err)
			}
		case strings.HasSuffix(p, "!wh"):
			if err := unix.Mknod(strings.TrimSuffix(full, "!wh"), unix.S_IFCHR|0o000, 0); err != nil {
				t.Skipf("skipping: mknod of a whiteout: %v (needs root)", err)
			}
		case strings.HasSuffix(p, "!opq"):
			dir := strings.TrimSuffix(full, "!opq")
			os.MkdirAll(dir, 0o755)
			if err := unix.Setxattr(dir, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
				t.Skipf("skipping: trusted xattr: %v (needs root)", err)
			}
		case strings.HasSuffix(p, "/"):
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(full, []byte(p), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return order
}

func names(t *testing.T, f fs.FS, dir string) []string {
	t.Helper()
	entries, err := fs.ReadDir(f, dir)
	if err != nil {
		t.Fatalf("ReadDir(%s) = %v", dir, err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestMerge(t *testing.T) {
	ls := layers(t,
		"upper:",
		"upper:var/log/app.log",
		"upper:etc/gone!wh",
		"upper:var/cache!opq",
		"upper:var/cache/new/",
		"l1:var/lib/app/data",
		"l1:var/lib/dpkg!wh",
		"l1:usr/bin/sh",
		"l2:etc/gone",
		"l2:etc/passwd",
		"l2:var/cache/old/x",
		"l2:var/lib/dpkg/status",
		"l2:var/lib/app/",
		"l2:var/log/",
		"l2:var/run->/run",
		"l2:run/lock/",
	)
	f, err := New(ls...)
	if err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string][]string{
		".":         {"etc", "run", "usr", "var"},
		"etc":       {"passwd"},
		"var":       {"cache", "lib", "log", "run"},
		"var/cache": {"new"},
		"var/lib":   {"app"},
		"var/log":   {"app.log"},
		"var/run":   {"lock"},
	} {
		if got := names(t, f, dir); !slices.Equal(got, want) {
			t.Errorf("ReadDir(%s) = %v, want %v", dir, got, want)
		}
	}
	if fi, err := f.Lstat("var/run"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(var/run) = %v %v, want a link", fi, err)
	}
	if fi, err := f.Stat("var/run"); err != nil || !fi.IsDir() {
		t.Errorf("Stat(var/run) = %v %v, want a directory", fi, err)
	}
	for _, gone := range []string{"etc/gone", "var/lib/dpkg/status", "var/cache/old"} {
		if _, err := f.Stat(gone); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%s) = %v, want not found", gone, err)
		}
	}
	if err := fstest.TestFS(f, "etc/passwd", "var/lib/app/data", "var/log/app.log", "usr/bin/sh"); err != nil {
		t.Error(err)
	}
}

// Links resolve inside the root, whatever they say.
func TestLinksStayInside(t *testing.T) {
	ls := layers(t,
		"l:etc/passwd",
		"l:abs->/etc",
		"l:up->../../../../../../../etc",
		"l:a/b/rel->../../etc/passwd",
		"l:loop->loop",
	)
	f, _ := New(ls...)
	for _, name := range []string{"abs/passwd", "up/passwd", "a/b/rel"} {
		data, err := fs.ReadFile(f, name)
		if err != nil || string(data) != "etc/passwd" {
			t.Errorf("ReadFile(%s) = %q %v, want the image's etc/passwd", name, data, err)
		}
	}
	if _, err := f.Stat("loop"); err == nil {
		t.Error("Stat(loop) resolved a link loop")
	}
	if _, err := f.Open("/etc/passwd"); err == nil {
		t.Error("Open accepted an absolute name")
	}
	if target, err := f.ReadLink("abs"); err != nil || target != "/etc" {
		t.Errorf("ReadLink(abs) = %q %v", target, err)
	}
}

func TestFromMounts(t *testing.T) {
	ls := layers(t, "up:a", "lo1:b", "lo2:c")
	f, err := FromMounts([]Mount{{Type: "overlay", Source: "overlay", Options: []string{"index=off", "workdir=/x", "upperdir=" + ls[0], "lowerdir=" + ls[1] + ":" + ls[2]}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(t, f, "."); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("overlay: %v", got)
	}
	f, err = FromMounts([]Mount{{Type: "bind", Source: ls[1], Options: []string{"rbind", "rw"}}})
	if err != nil || !slices.Equal(names(t, f, "."), []string{"b"}) {
		t.Errorf("bind: %v", err)
	}
	for _, bad := range [][]Mount{nil, {{Type: "erofs", Source: "/dev/x"}}, {{Type: "overlay", Options: []string{"upperdir=/x"}}}} {
		if _, err := FromMounts(bad); err == nil {
			t.Errorf("FromMounts(%v) = nil error", bad)
		}
	}
	if got := splitLowerdir(`/a\:b:/c`); !slices.Equal(got, []string{"/a:b", "/c"}) {
		t.Errorf("splitLowerdir = %v", got)
	}
}
