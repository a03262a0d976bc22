package harness

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// pullTimeout bounds each pull the harness makes.
const pullTimeout = 2 * time.Minute

// CertsDir returns containerd's registry hosts directory, <Dir>/certs.d:
// the CRI images plugin's registry config_path, and the hosts directory of
// Pull (as `ctr image pull --hosts-dir`). It holds <host>/hosts.toml per
// registry host (AddRegistryHost); containerd reads them at each pull.
func (c *Containerd) CertsDir() string { return filepath.Join(c.Dir, "certs.d") }

// AddRegistryHost makes hostPort (e.g. a test Registry's Addr) a
// plain-HTTP registry for pulls: it writes <CertsDir>/<hostPort>/hosts.toml
// with server "http://<hostPort>" and capabilities pull and resolve.
// containerd needs no restart.
func (c *Containerd) AddRegistryHost(hostPort string) error {
	return c.AddRegistryAlias(hostPort, hostPort)
}

// AddRegistryAlias makes pulls of images named <name>/… go to the
// plain-HTTP registry at hostPort (a mirror, in hosts.toml's terms): it
// writes <CertsDir>/<name>/hosts.toml. Tests use it to pull a test image by
// a registry name that resolves nowhere, which works only if containerd
// reads CertsDir.
func (c *Containerd) AddRegistryAlias(name, hostPort string) error {
	if _, _, err := net.SplitHostPort(hostPort); err != nil || strings.ContainsAny(hostPort, "/ ") {
		return fmt.Errorf("registry host %q: want host:port", hostPort)
	}
	if name == "" || strings.ContainsAny(name, "/ ") {
		return fmt.Errorf("registry name %q: want a host or host:port", name)
	}
	server := "http://" + hostPort
	hostsTOML := fmt.Sprintf(`# Written by the hardened test harness: plain HTTP, no TLS.
server = %q

[host.%q]
  capabilities = ["pull", "resolve"]
`, server, server)
	dir := filepath.Join(c.CertsDir(), name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("registry host %s: %w", name, err)
	}
	tmp := filepath.Join(dir, ".hosts.toml.tmp")
	if err := os.WriteFile(tmp, []byte(hostsTOML), 0o600); err != nil {
		return fmt.Errorf("registry host %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "hosts.toml")); err != nil {
		return fmt.Errorf("registry host %s: %w", name, err)
	}
	return nil
}

// ResolverOptions are the resolver options `ctr image pull --hosts-dir CertsDir`
// uses: hosts from CertsDir (for docker.NewResolver).
func (c *Containerd) ResolverOptions(ctx context.Context) docker.ResolverOptions {
	return docker.ResolverOptions{
		Hosts: config.ConfigureHosts(ctx, config.HostOptions{HostDir: config.HostDirFromRoot(c.CertsDir())}),
	}
}

// Pull pulls ref into namespace through the containerd client, as `ctr
// image pull --hosts-dir CertsDir` does (platform: this machine's), and
// unpacks it for the overlayfs snapshotter. The image's Target is what ref
// resolved to: for a multi-arch image, the index.
func (c *Containerd) Pull(t testing.TB, namespace, ref string) containerd.Image {
	t.Helper()
	img, err := c.PullImage(t.Context(), namespace, ref)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return img
}

// PullImage is Pull for TestMain, or for a test that expects the pull to
// fail (a registry stopped or paused): it returns the error.
func (c *Containerd) PullImage(ctx context.Context, namespace, ref string) (containerd.Image, error) {
	c.mu.Lock()
	client := c.client
	c.mu.Unlock()
	if client == nil {
		return nil, fmt.Errorf("pull %s: containerd %s is stopped", ref, c.Address)
	}
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(ctx, namespace), pullTimeout)
	defer cancel()
	img, err := client.Pull(ctx, ref,
		containerd.WithResolver(docker.NewResolver(c.ResolverOptions(ctx))),
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter("overlayfs"))
	if err != nil {
		return nil, fmt.Errorf("pull %s into namespace %s: %w", ref, namespace, err)
	}
	return img, nil
}

// CRIPull pulls ref through the CRI image service, as the kubelet does
// (the CRI plugin reads CertsDir through its registry config_path), and
// returns the image's CRI status: Id is its config digest, RepoDigests hold
// <repository>@<manifest or index digest>.
func (c *Containerd) CRIPull(t testing.TB, ref string) *runtime.Image {
	t.Helper()
	_, is := c.CRI(t)
	ctx, cancel := context.WithTimeout(t.Context(), pullTimeout)
	defer cancel()
	pulled, err := is.PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: ref}})
	if err != nil {
		t.Fatalf("harness: CRI PullImage %s: %v", ref, err)
	}
	st, err := is.ImageStatus(ctx, &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: pulled.ImageRef}})
	if err != nil || st.Image == nil {
		t.Fatalf("harness: CRI ImageStatus %s (%s) = %v, %v", ref, pulled.ImageRef, st, err)
	}
	return st.Image
}
