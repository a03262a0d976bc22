package verify

import (
	"context"
	"fmt"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	"net/http"
	"runtime"
	"strings"
)

// Resolve asks the image's registry (through hosts.toml, as containerd
// would pull it) which digest a reference points at, and for an index the
// manifest of this node's platform: for `hardenctl verify IMAGE:TAG`.
func (v *Verifier) Resolve(ctx context.Context, image string) (Image, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return Image{}, fmt.Errorf("image %q: %v", image, err)
	}
	img := Image{Name: image}
	if c, ok := named.(reference.Canonical); ok {
		img.Digest = c.Digest()
	}
	domain, path := reference.Domain(named), reference.Path(named)
	hosts, err := v.reg.registryHosts(domain)
	if err != nil {
		return img, err
	}
	var errs []string
	for _, h := range hosts {
		if h.Capabilities&docker.HostCapabilityResolve == 0 && img.Digest == "" {
			continue
		}
		var opts []name.Option
		if h.Scheme == "http" {
			opts = append(opts, name.Insecure)
		}
		ref := h.Host + "/" + path
		if img.Digest != "" {
			ref += "@" + img.Digest.String()
		} else if t, ok := named.(reference.Tagged); ok {
			ref += ":" + t.Tag()
		} else {
			ref += ":latest"
		}
		r, err := name.ParseReference(ref, opts...)
		if err != nil {
			return img, err
		}
		base := http.RoundTripper(http.DefaultTransport)
		if h.Client != nil && h.Client.Transport != nil {
			base = h.Client.Transport
		}
		cctx, cancel := context.WithTimeout(ctx, 2*v.reg.timeout)
		desc, err := remote.Get(r, remote.WithContext(cctx), remote.WithTransport(&schemeTransport{scheme: h.Scheme, next: base, timeout: v.reg.timeout}),
			remote.WithAuthFromKeychain(&aliasKeychain{keys: v.reg.keys, domain: domain}), remote.WithRetryBackoff(remote.Backoff{Steps: 1}))
		if err != nil {
			cancel()
			errs = append(errs, fmt.Sprintf("%s://%s: %v", h.Scheme, h.Host, conciseError(err)))
			continue
		}
		img.Digest = digest.Digest(desc.Digest.String())
		if desc.MediaType.IsIndex() {
			if idx, err := desc.ImageIndex(); err == nil {
				if im, err := idx.IndexManifest(); err == nil {
					for _, m := range im.Manifests {
						if m.Platform != nil && m.Platform.OS == runtime.GOOS && m.Platform.Architecture == runtime.GOARCH {
							img.PlatformDigest = digest.Digest(m.Digest.String())
							break
						}
					}
				}
			}
		}
		cancel()
		return img, nil
	}
	if len(errs) == 0 {
		return img, fmt.Errorf("no registry host of %s may resolve references", domain)
	}
	return img, fmt.Errorf("resolve %s: %s", image, strings.Join(errs, "; "))
}
