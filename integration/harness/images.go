package harness

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BusyboxPath is Debian's busybox-static, the only binary in the test images.
const BusyboxPath = "/bin/busybox"

// The test images, built by the harness (see Import).
const (
	// Busybox is busybox with a link in /bin for each applet, users root
	// (0), app (1000) and nobody (65534); Env PATH=/bin, Cmd ["sh"],
	// VOLUME /data.
	Busybox = "hardened.test/busybox:latest"
	// BusyboxApp is Busybox with USER app (uid 1000).
	BusyboxApp = "hardened.test/busybox-app:latest"
	// Pause is the CRI sandbox image (pinned_images.sandbox): Busybox's
	// layer with Entrypoint ["sleep", "2147483647"].
	Pause = "hardened.test/pause:latest"
)

// CRINamespace is the containerd namespace of the CRI plugin's images,
// containers and pods.
const CRINamespace = "k8s.io"

// TestImages lists the images Import knows, the default of ImportImages.
var TestImages = []string{Busybox, BusyboxApp, Pause}

// imageConfig is each test image's configuration.
func imageConfig(image string) (v1.Config, bool) {
	base := v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"sh"}, Volumes: map[string]struct{}{"/data": {}}}
	switch image {
	case Busybox:
		return base, true
	case BusyboxApp:
		base.User = "app"
		return base, true
	case Pause:
		return v1.Config{Env: []string{"PATH=/bin"}, Entrypoint: []string{"sleep", "2147483647"}}, true
	}
	return v1.Config{}, false
}

// The files of the images, besides /bin.
const (
	passwd = "root:x:0:0:root:/root:/bin/sh\n" +
		"app:x:1000:1000::/home/app:/bin/sh\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	group = "root:x:0:\nwheel:x:10:root\napp:x:1000:\nnogroup:x:65534:\n"
)

// layerTime is the files' mtime, fixed so the layer's digest is stable.
var layerTime = time.Unix(1700000000, 0)

// rootfsTar is the one layer of every test image: /bin/busybox with a
// symlink per applet of `busybox --list`, /etc/passwd and /etc/group, and
// the usual directories.
func rootfsTar() ([]byte, error) {
	bb, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, err
	}
	list, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", BusyboxPath, err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var errs []error
	add := func(h *tar.Header, data []byte) {
		h.ModTime, h.Size = layerTime, int64(len(data))
		errs = append(errs, tw.WriteHeader(h))
		if len(data) > 0 {
			_, err := tw.Write(data)
			errs = append(errs, err)
		}
	}
	dir := func(name string, mode int64, id int) {
		add(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: id, Gid: id}, nil)
	}
	for _, d := range []string{"bin", "dev", "etc", "home", "proc", "run", "sys", "var", "var/run"} {
		dir(d, 0o755, 0)
	}
	dir("root", 0o700, 0)
	dir("home/app", 0o755, 1000)
	dir("tmp", 0o1777, 0)
	dir("var/tmp", 0o1777, 0)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755}, bb)
	for _, applet := range strings.Fields(string(list)) {
		if applet != "busybox" && !strings.Contains(applet, "/") {
			add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777}, nil)
		}
	}
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/passwd", Mode: 0o644}, []byte(passwd))
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/group", Mode: 0o644}, []byte(group))
	errs = append(errs, tw.Close())
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("write the image layer: %w", err)
		}
	}
	return buf.Bytes(), nil
}

var (
	layerOnce sync.Once
	layer     v1.Layer
	layerErr  error

	// archivesMu guards archives: each image's docker-archive tar, built
	// once per test binary.
	archivesMu sync.Mutex
	archives   = map[string][]byte{}
)

// rootfsLayer returns the (cached) layer of the test images.
func rootfsLayer() (v1.Layer, error) {
	layerOnce.Do(func() {
		data, err := rootfsTar()
		if err != nil {
			layerErr = err
			return
		}
		layer, layerErr = tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		})
	})
	return layer, layerErr
}

// imageArchive returns a docker-archive tar (`docker save` format) of one
// test image, built with go-containerregistry and cached.
func imageArchive(image string) ([]byte, error) {
	archivesMu.Lock()
	defer archivesMu.Unlock()
	if data, ok := archives[image]; ok {
		return data, nil
	}
	img, err := testImage(image)
	if err != nil {
		return nil, err
	}
	tag, err := name.NewTag(image)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		return nil, err
	}
	archives[image] = buf.Bytes()
	return buf.Bytes(), nil
}

// WriteOCILayout writes a test image as an OCI image layout in dir, as
// `ctr image export` and skopeo write them (without the tar).
func WriteOCILayout(dir, image string) error {
	img, err := testImage(image)
	if err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{ocispec.AnnotationRefName: image}))
}

// testImage builds one test image.
func testImage(image string) (v1.Image, error) {
	cfg, ok := imageConfig(image)
	if !ok {
		return nil, fmt.Errorf("%s is not a test image (%s)", image, strings.Join(TestImages, ", "))
	}
	l, err := rootfsLayer()
	if err != nil {
		return nil, err
	}
	return imageOf(cfg, l)
}

// imageOf is an image of the layers with config cfg, for this machine's
// architecture, created at layerTime (so its digest is the same each run).
func imageOf(cfg v1.Config, layers ...v1.Layer) (v1.Image, error) {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: layerTime}
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}

// ImportImages imports the test images (TestImages when none are named)
// into namespace and unpacks them for the overlayfs snapshotter. It is
// Import for TestMain.
func (c *Containerd) ImportImages(namespace string, names ...string) error {
	_, err := c.importImages(namespace, names)
	return err
}

func (c *Containerd) importImages(namespace string, names []string) ([]containerd.Image, error) {
	c.mu.Lock()
	client := c.client
	c.mu.Unlock()
	if client == nil {
		return nil, fmt.Errorf("import images: containerd %s is stopped", c.Address)
	}
	if len(names) == 0 {
		names = TestImages
	}
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), namespace), 2*time.Minute)
	defer cancel()
	var out []containerd.Image
	for _, image := range names {
		data, err := imageArchive(image)
		if err != nil {
			return nil, fmt.Errorf("build test image %s: %w", image, err)
		}
		imported, err := client.Import(ctx, bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("import %s into namespace %s: %w", image, namespace, err)
		}
		i := slices.IndexFunc(imported, func(img images.Image) bool { return img.Name == image })
		if i < 0 {
			return nil, fmt.Errorf("import %s into namespace %s: the archive held %v", image, namespace, imported)
		}
		img := containerd.NewImage(client, imported[i])
		if err := img.Unpack(ctx, "overlayfs"); err != nil {
			return nil, fmt.Errorf("unpack %s in namespace %s: %w", image, namespace, err)
		}
		out = append(out, img)
	}
	return out, nil
}

// Import imports and unpacks the named test images into namespace (use
// CRINamespace for CRI), all of TestImages when none are named, and returns
// them in that order.
func Import(t testing.TB, c *Containerd, namespace string, names ...string) []containerd.Image {
	t.Helper()
	imgs, err := c.importImages(namespace, names)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return imgs
}

// ImportBusybox imports Busybox into c.Namespace.
func ImportBusybox(t testing.TB, c *Containerd) containerd.Image {
	t.Helper()
	return Import(t, c, c.Namespace, Busybox)[0]
}

// ImportBusyboxApp imports BusyboxApp (USER app) into c.Namespace.
func ImportBusyboxApp(t testing.TB, c *Containerd) containerd.Image {
	t.Helper()
	return Import(t, c, c.Namespace, BusyboxApp)[0]
}

// ImportPause imports Pause into c.Namespace.
func ImportPause(t testing.TB, c *Containerd) containerd.Image {
	t.Helper()
	return Import(t, c, c.Namespace, Pause)[0]
}
