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
	"strings"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// BusyboxPath is Debian's busybox-static, the only binary of the test images.
const BusyboxPath = "/bin/busybox"

// Test image names.
const (
	Busybox    = "hardened.test/busybox:latest"
	BusyboxApp = "hardened.test/busybox-app:latest" // USER app (1000)
	Pause      = "hardened.test/pause:latest"
)

// rootfsLayer is busybox with a link per applet, passwd and group files and
// the usual directories.
func rootfsLayer() (v1.Layer, error) {
	bb, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Unix(1700000000, 0)
	dir := func(name string, mode int64) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: now})
	}
	file := func(name string, mode int64, data []byte) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: now})
		tw.Write(data)
	}
	for _, d := range []string{"bin", "etc", "root", "home", "proc", "sys", "dev", "run", "var", "var/run", "home/app"} {
		dir(d, 0o755)
	}
	dir("tmp", 0o1777)
	dir("var/tmp", 0o1777)
	file("bin/busybox", 0o755, bb)
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777, ModTime: now})
	}
	file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
	file("etc/group", 0o644, []byte("root:x:0:\nwheel:x:10:root\napp:x:1000:\nnogroup:x:65534:\n"))
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}

var (
	archiveOnce sync.Once
	archive     []byte
	archiveErr  error
)

// imageArchive is a docker-archive tar with the three test images.
func imageArchive() ([]byte, error) {
	archiveOnce.Do(func() {
		layer, err := rootfsLayer()
		if err != nil {
			archiveErr = err
			return
		}
		base, err := mutate.AppendLayers(empty.Image, layer)
		if err != nil {
			archiveErr = err
			return
		}
		mk := func(cfg v1.Config) (v1.Image, error) {
			cf, err := base.ConfigFile()
			if err != nil {
				return nil, err
			}
			cf = cf.DeepCopy()
			cf.OS, cf.Architecture = "linux", runtime.GOARCH
			cf.Config = cfg
			cf.Config.Env = []string{"PATH=/bin"}
			return mutate.ConfigFile(base, cf)
		}
		imgs := map[string]v1.Config{
			Busybox:    {Cmd: []string{"sh"}, Volumes: map[string]struct{}{"/data": {}}},
			BusyboxApp: {Cmd: []string{"sh"}, User: "app"},
			Pause:      {Entrypoint: []string{"sleep", "2147483647"}},
		}
		refs := map[name.Reference]v1.Image{}
		for n, cfg := range imgs {
			img, err := mk(cfg)
			if err != nil {
				archiveErr = err
				return
			}
			tag, err := name.NewTag(n)
			if err != nil {
				archiveErr = err
				return
			}
			refs[tag] = img
		}
		var buf bytes.Buffer
		if archiveErr = tarball.MultiRefWrite(refs, &buf); archiveErr == nil {
			archive = buf.Bytes()
		}
	})
	return archive, archiveErr
}

// ImportImages imports and unpacks the test images into namespace ns.
func (c *Containerd) ImportImages(ns string) error {
	data, err := imageArchive()
	if err != nil {
		return fmt.Errorf("build test images: %w", err)
	}
	ctx := namespaces.WithNamespace(context.Background(), ns)
	imgs, err := c.Client.Import(ctx, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("import test images: %w", err)
	}
	for _, i := range imgs {
		if err := containerd.NewImage(c.Client, i).Unpack(ctx, "overlayfs"); err != nil {
			return fmt.Errorf("unpack %s: %w", i.Name, err)
		}
	}
	return nil
}
