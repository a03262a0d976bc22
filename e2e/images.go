package e2e

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/hardened-runtime/hardened/integration/harness"
)

// Registries are the registry hosts whose names the suites pull: each is
// mirrored to the loopback registry (Mirror).
var Registries = []string{"registry.k8s.io", "k8s.gcr.io", "gcr.io", "docker.io", "ghcr.io"}

// Image is one image the suites pull, under each of its names.
type Image struct {
	// Names are full references (registry.k8s.io/e2e-test-images/nginx:1.14-2).
	Names []string
	img   v1.Image
}

// The programs of the images, built by BuildPrograms.
const (
	webserverProgram = "webserver"
	nnpProgram       = "nnp"
	procpsProgram    = "procps"
	pauseProgram     = "pause"
)

// SandboxImage is the CRI sandbox image the suites' containerd runs
// (SandboxImage of the harness): the pause program alone, as
// registry.k8s.io/pause is.
const SandboxImage = "registry.k8s.io/pause:3.10"

// BuildPrograms builds the stand-in programs (e2e/webserver, e2e/nnp,
// e2e/procps, e2e/pause),
// static, into a temporary directory the test removes.
func BuildPrograms(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-buildvcs=false", "-trimpath", "-ldflags=-s -w", "-o", dir+"/", "./e2e/"+webserverProgram, "./e2e/"+nnpProgram, "./e2e/"+procpsProgram, "./e2e/"+pauseProgram)
	cmd.Dir = harness.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("e2e: build the image programs: %v\n%s", err, out)
	}
	return dir
}

// busybox's own /etc/passwd and /etc/group (the busybox image's), so
// that the users the suites name (www-data) exist.
const (
	passwd = "root:x:0:0:root:/root:/bin/sh\n" +
		"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n" +
		"bin:x:2:2:bin:/bin:/bin/false\n" +
		"sys:x:3:3:sys:/dev:/bin/false\n" +
		"sync:x:4:100:sync:/bin:/bin/sync\n" +
		"mail:x:8:8:mail:/var/spool/mail:/bin/false\n" +
		"www-data:x:33:33:www-data:/var/www:/bin/false\n" +
		"operator:x:37:37:Operator:/var:/bin/false\n" +
		"nobody:x:65534:65534:nobody:/home:/bin/false\n"
	group = "root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nadm:x:4:\ntty:x:5:\ndisk:x:6:\nlp:x:7:\n" +
		"mail:x:8:\nkmem:x:9:\nwheel:x:10:root\ncdrom:x:11:\ndialout:x:18:\nfloppy:x:19:\nvideo:x:28:\n" +
		"audio:x:29:\ntape:x:32:\nwww-data:x:33:\noperator:x:37:\nutmp:x:43:\nusers:x:100:\nstaff:x:50:\n" +
		"nogroup:x:65534:\n"
)

// file is one entry of a layer.
type file struct {
	name string // without a leading /
	mode int64  // with the set-uid bit where wanted
	uid  int
	data []byte
	dir  bool
	link string // a symbolic link to this
	hard string // a hard link to this file of the layer
}

func layer(files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.uid, ModTime: mtime, Typeflag: tar.TypeReg, Size: int64(len(f.data))}
		switch {
		case f.dir:
			h.Typeflag, h.Name, h.Size = tar.TypeDir, f.name+"/", 0
		case f.link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.link, 0o777
		case f.hard != "":
			h.Typeflag, h.Linkname = tar.TypeLink, f.hard
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}

// platform sets the image's os and architecture (this machine's) and a
// fixed creation time.
func platform(img v1.Image) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: time.Unix(1700000000, 0)}
	return mutate.ConfigFile(img, cf)
}

// derive returns base with a layer of files and the config changed by cfg.
func derive(base v1.Image, files []file, cfg func(*v1.Config)) (v1.Image, error) {
	img := base
	if len(files) > 0 {
		l, err := layer(files)
		if err != nil {
			return nil, err
		}
		if img, err = mutate.AppendLayers(base, l); err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	if cfg != nil {
		cfg(&cf.Config)
	}
	return mutate.ConfigFile(img, cf)
}

// BaseImage is the suites' busybox, as the busybox image has it: each
// applet a hard link to /bin/busybox (a masked /bin/ls must not mask the
// shell), busybox's users, no VOLUME, Cmd sh; plus pgrep and ipcs from
// e2e/procps (in dir, see BuildPrograms), which Debian's busybox lacks.
// The busybox is Debian's dynamic build (scripts/e2e-tools.sh), with the
// libraries it loads: its shell runs external commands, as the busybox
// image's does (busybox-static's runs its own applets, so a masked /bin/ls
// would still run).
func BaseImage(dir string) (v1.Image, error) {
	busybox := filepath.Join(harness.RepoRoot(), ".tools", "e2e", "busybox")
	if _, err := os.Stat(busybox); err != nil {
		return nil, fmt.Errorf("%s: %w (run scripts/e2e-tools.sh; the make targets do)", busybox, err)
	}
	applets, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", busybox, err)
	}
	bbFiles, err := binaryFiles("/bin/busybox", busybox)
	if err != nil {
		return nil, err
	}
	procps, err := os.ReadFile(filepath.Join(dir, procpsProgram))
	if err != nil {
		return nil, err
	}
	files := []file{}
	for _, d := range []string{"bin", "dev", "etc", "home", "proc", "root", "run", "sys", "usr", "usr/bin", "usr/sbin", "usr/local", "usr/local/bin", "var", "var/cache", "var/run", "var/spool", "var/www"} {
		files = append(files, file{name: d, mode: 0o755, dir: true})
	}
	files = append(files, file{name: "tmp", mode: 0o1777, dir: true}, file{name: "var/tmp", mode: 0o1777, dir: true})
	for _, f := range bbFiles {
		if !(f.dir && slices.ContainsFunc(files, func(g file) bool { return g.name == f.name })) {
			files = append(files, f)
		}
	}
	for _, a := range strings.Fields(string(applets)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			files = append(files, file{name: "bin/" + a, mode: 0o755, hard: "bin/busybox"})
		}
	}
	files = append(files, file{name: "bin/pgrep", mode: 0o755, data: procps}, file{name: "bin/ipcs", mode: 0o755, hard: "bin/pgrep"},
		file{name: "etc/passwd", mode: 0o644, data: []byte(passwd)}, file{name: "etc/group", mode: 0o644, data: []byte(group)})
	l, err := layer(files)
	if err != nil {
		return nil, err
	}
	base, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return nil, err
	}
	path := "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	base, err = derive(base, nil, func(c *v1.Config) { *c = v1.Config{Env: []string{path}, Cmd: []string{"sh"}} })
	if err != nil {
		return nil, err
	}
	return platform(base)
}

// Images returns the images the CRI validation suite (critest) and the
// kubelet e2e pull, built from Debian's busybox-static and the programs of
// BuildPrograms (dir):
//   - e2e-test-images/busybox, the suites' default image (pgrep and ipcs
//     from e2e/procps);
//   - nginx, httpd and cri-tools' hostnet-nginx: the webserver program
//     under those names (port 80, or 12003 for hostnet-nginx); /var/run
//     links to /run, as in nginx's Alpine images;
//   - nonewprivs: the nnp program, set-uid root;
//   - cri-tools' image tests: images with USER uid, name, uid:gid,
//     name:gid; one whose user is in a group of its /etc/group; one image
//     per distinct name (a file of that name makes each different), and
//     one under several tags;
//   - pause under registry.k8s.io and k8s.gcr.io (the same image);
//   - docker.io/library/busybox for plain manifests.
//
// The one reference no local image can serve is cri-tools'
// test-image-digest@sha256:9700f9a2…, pinned to upstream content.
func Images(dir string) ([]Image, error) {
	base, err := BaseImage(dir)
	if err != nil {
		return nil, err
	}
	webserver, err := os.ReadFile(filepath.Join(dir, webserverProgram))
	if err != nil {
		return nil, err
	}
	nnp, err := os.ReadFile(filepath.Join(dir, nnpProgram))
	if err != nil {
		return nil, err
	}
	pauseBin, err := os.ReadFile(filepath.Join(dir, pauseProgram))
	if err != nil {
		return nil, err
	}
	pl, err := layer([]file{{name: "pause", mode: 0o755, data: pauseBin}})
	if err != nil {
		return nil, err
	}
	sandbox, err := mutate.AppendLayers(empty.Image, pl)
	if err == nil {
		sandbox, err = derive(sandbox, nil, func(c *v1.Config) { *c = v1.Config{Entrypoint: []string{"/pause"}, User: "65535:65535"} })
	}
	if err == nil {
		sandbox, err = platform(sandbox)
	}
	if err != nil {
		return nil, err
	}
	// The pause images the suites pull are not the sandbox image (another
	// config, so another image id): the suites remove theirs by id.
	pause := harness.Variant(sandbox, "e2e-pause")
	var out []Image
	var errs []string
	add := func(img v1.Image, err error, names ...string) {
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", names[0], err))
			return
		}
		out = append(out, Image{Names: names, img: img})
	}
	user := func(u string) func(*v1.Config) { return func(c *v1.Config) { c.User = u } }
	named := func(n string) (v1.Image, error) {
		return derive(base, []file{{name: n, mode: 0o644, data: []byte(n + "\n")}}, nil)
	}
	const e2eImages, criTools = "registry.k8s.io/e2e-test-images/", "gcr.io/k8s-staging-cri-tools/"

	add(base, nil, e2eImages+"busybox:1.29-2", e2eImages+"busybox:1.29-4", e2eImages+"busybox:1.36.1-1", "docker.io/library/busybox:latest", "docker.io/library/busybox:1.37")
	nginx, err := derive(base, []file{
		{name: "usr/sbin/nginx", mode: 0o755, data: webserver},
		{name: "var/cache/nginx", mode: 0o755, dir: true},
		// As in nginx's Alpine images: the pid file goes to /run.
		{name: "var/run", link: "/run"},
	}, func(c *v1.Config) {
		c.Cmd = []string{"nginx", "-g", "daemon off;"}
		c.ExposedPorts = map[string]struct{}{"80/tcp": {}}
		c.StopSignal = "SIGQUIT"
	})
	add(nginx, err, e2eImages+"nginx:1.14-2", e2eImages+"nginx:1.15-4", "docker.io/library/nginx:latest")
	hostnet, err := derive(nginx, nil, func(c *v1.Config) { c.Env = append(c.Env, "LISTEN=:12003") })
	add(hostnet, err, criTools+"hostnet-nginx-"+runtime.GOARCH+":latest")
	httpd, err := derive(base, []file{
		{name: "usr/local/apache2", mode: 0o755, dir: true},
		{name: "usr/local/apache2/bin", mode: 0o755, dir: true},
		{name: "usr/local/apache2/bin/httpd", mode: 0o755, data: webserver},
	}, func(c *v1.Config) {
		c.Env = []string{"PATH=/usr/local/apache2/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
		c.Cmd = []string{"httpd"}
		c.ExposedPorts = map[string]struct{}{"80/tcp": {}}
		c.StopSignal = "SIGWINCH"
	})
	add(httpd, err, e2eImages+"httpd:2.4.39-4", e2eImages+"httpd:2.4.38-4")
	nonewprivs, err := derive(base, []file{{name: "usr/local/bin/nnp", mode: 0o4755, data: nnp}}, func(c *v1.Config) { c.Cmd = []string{"nnp"} })
	add(nonewprivs, err, e2eImages+"nonewprivs:1.3")

	for img, u := range map[string]string{
		"test-image-user-uid": "1002", "test-image-user-username": "www-data",
		"test-image-user-uid-group": "1003:1004", "test-image-user-username-group": "www-data:1004",
	} {
		i, err := derive(base, nil, user(u))
		add(i, err, criTools+img+":latest")
	}
	predefined, err := derive(base, []file{
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd + "default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n")},
		{name: "etc/group", mode: 0o644, data: []byte(group + "default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n")},
		{name: "home/default-user", mode: 0o755, uid: 1000, dir: true},
	}, user("1000"))
	add(predefined, err, criTools+"test-image-predefined-group:latest")
	for _, n := range []string{"test-image-latest", "test-image-1", "test-image-2", "test-image-3"} {
		i, err := named(n)
		add(i, err, criTools+n+":latest")
	}
	tag, err := named("test-image-tag")
	add(tag, err, criTools+"test-image-tag:test", criTools+"test-image-tag:all")
	tags, err := named("test-image-tags")
	add(tags, err, criTools+"test-image-tags:1", criTools+"test-image-tags:2", criTools+"test-image-tags:3")
	add(pause, nil, "registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.10.1", "k8s.gcr.io/pause:3.9")
	// The sandbox image, which containerd pulls (again, if a suite removes
	// it) from the registry.
	add(sandbox, nil, SandboxImage)
	if len(errs) > 0 {
		return nil, fmt.Errorf("build the e2e images: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

// Push pushes every image to the loopback registry under each of its
// names, the registry host replaced by the registry's own (the path is
// kept: e2e-test-images/nginx:1.14-2), which Mirror makes containerd use.
func Push(t testing.TB, reg *harness.Registry, images []Image) {
	t.Helper()
	for _, img := range images {
		for _, n := range img.Names {
			_, path, ok := strings.Cut(n, "/")
			if !ok {
				t.Fatalf("e2e: image name %q has no registry host", n)
			}
			reg.Push(t, reg.Ref(path), img.img)
		}
	}
}

// Mirror makes containerd c pull every name of Registries from the loopback
// registry at addr (hosts.toml in its registry config directory).
func Mirror(t testing.TB, c *harness.Containerd, addr string) {
	t.Helper()
	for _, r := range Registries {
		if err := c.AddRegistryAlias(r, addr); err != nil {
			t.Fatalf("e2e: %v", err)
		}
	}
}

// NewImage names an image for Push.
func NewImage(img v1.Image, names ...string) Image { return Image{Names: names, img: img} }

// WithHostBinaries returns img with a layer holding host binaries, each at
// the path it is given (image path → host path), and every shared library
// they load (ldd), at its host path: how a Dockerfile's COPY of a
// dynamically linked program works when the base image has the same libc.
func WithHostBinaries(img v1.Image, bins map[string]string) (v1.Image, error) {
	var files []file
	seen := map[string]bool{}
	paths := make([]string, 0, len(bins))
	for p := range bins {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fs, err := binaryFiles(p, bins[p])
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			if !seen[f.name] {
				seen[f.name] = true
				files = append(files, f)
			}
		}
	}
	return derive(img, files, nil)
}

// binaryFiles are the layer entries of a host binary at imagePath and of
// the shared libraries it loads (ldd) at their host paths, with their
// parent directories.
func binaryFiles(imagePath, hostPath string) ([]file, error) {
	var files []file
	seen := map[string]bool{}
	add := func(imagePath, hostPath string) error {
		imagePath = strings.TrimPrefix(filepath.Clean(imagePath), "/")
		if seen[imagePath] {
			return nil
		}
		data, err := os.ReadFile(hostPath) // follows links: the library itself
		if err != nil {
			return err
		}
		var parents []string
		for d := filepath.Dir(imagePath); d != "." && d != "/"; d = filepath.Dir(d) {
			parents = append(parents, d)
		}
		for i := len(parents) - 1; i >= 0; i-- {
			if !seen[parents[i]] {
				seen[parents[i]] = true
				files = append(files, file{name: parents[i], mode: 0o755, dir: true})
			}
		}
		seen[imagePath] = true
		files = append(files, file{name: imagePath, mode: 0o755, data: data})
		return nil
	}
	if err := add(imagePath, hostPath); err != nil {
		return nil, err
	}
	out, err := exec.Command("ldd", hostPath).Output()
	if err != nil {
		return files, nil // static: "not a dynamic executable"
	}
	for _, line := range strings.Split(string(out), "\n") {
		// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
		// "/lib64/ld-linux-x86-64.so.2 (0x...)"
		f := strings.Fields(line)
		var lib string
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			lib = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			lib = f[0]
		}
		if lib != "" {
			if err := add(lib, lib); err != nil {
				return nil, err
			}
		}
	}
	return files, nil
}
