package harness

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// AppImage is a test image of an application: the test images' busybox
// layer, then a layer with the application's files (its scripts, the
// directories its packages would create), and its own config.
type AppImage struct {
	// Name is the image's reference, e.g. hardened.test/nginx-like:1.
	Name string
	// Config is the image config; Env defaults to PATH=/bin.
	Config v1.Config
	// Files are the application's layer, in order (parents first).
	Files []File
}

// File is one entry of an application's layer.
type File struct {
	// Path is relative to the root (etc/nginx/nginx.conf).
	Path string
	// Dir makes a directory; Link a symbolic link to it; otherwise a
	// regular file holding Data.
	Dir  bool
	Link string
	Data string
	// Mode is the permission bits (default 0755 for directories and
	// files, 0777 for links); UID and GID the owner.
	Mode     int64
	UID, GID int
}

// appLayer is the tar of an application's files.
func appLayer(files []File) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.Path, Mode: f.Mode, Uid: f.UID, Gid: f.GID, ModTime: layerTime}
		switch {
		case f.Dir:
			h.Typeflag, h.Name = tar.TypeDir, f.Path+"/"
		case f.Link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.Link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Data))
		}
		if h.Mode == 0 {
			h.Mode = 0o755
			if f.Link != "" {
				h.Mode = 0o777
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, f.Data); err != nil {
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

// ImportApp builds app, imports it into namespace and unpacks it for the
// overlayfs snapshotter.
func ImportApp(t testing.TB, c *Containerd, namespace string, app AppImage) containerd.Image {
	t.Helper()
	img, err := c.importApp(namespace, app)
	if err != nil {
		t.Fatalf("harness: image %s: %v", app.Name, err)
	}
	return img
}

func (c *Containerd) importApp(namespace string, app AppImage) (containerd.Image, error) {
	base, err := rootfsLayer()
	if err != nil {
		return nil, err
	}
	top, err := appLayer(app.Files)
	if err != nil {
		return nil, err
	}
	cfg := app.Config
	if len(cfg.Env) == 0 {
		cfg.Env = []string{"PATH=/bin"}
	}
	img, err := imageOf(cfg, base, top)
	if err != nil {
		return nil, err
	}
	tag, err := name.NewTag(app.Name)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		return nil, err
	}
	c.mu.Lock()
	client := c.client
	c.mu.Unlock()
	if client == nil {
		return nil, fmt.Errorf("containerd %s is stopped", c.Address)
	}
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), namespace), 2*time.Minute)
	defer cancel()
	imported, err := client.Import(ctx, &buf)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(imported, func(img images.Image) bool { return img.Name == app.Name })
	if i < 0 {
		return nil, fmt.Errorf("the archive held %v", imported)
	}
	out := containerd.NewImage(client, imported[i])
	if err := out.Unpack(ctx, "overlayfs"); err != nil {
		return nil, err
	}
	return out, nil
}
