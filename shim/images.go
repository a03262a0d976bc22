package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hardened-runtime/hardened/internal/atomicfile"
)

// CacheDirEnv overrides where the shim caches image facts by digest
// (default /run/hardened/images; "off" disables the cache).
const CacheDirEnv = "HARDENED_CACHE_DIR"

func imageCacheDir() string {
	switch d := os.Getenv(CacheDirEnv); d {
	case "":
		return "/run/hardened/images"
	case "off":
		return ""
	default:
		return d
	}
}

// image fills in what containerd's records say about the image the
// container record names: the image record's target (the digest that
// runs) and, from its config for this node's platform, USER, VOLUMEs and
// the chain id of its layers. Annotations, which a pod author controls,
// are not consulted.
func (p *pipeline) image(ctx context.Context, ns string, img *imageRecord) error {
	target, err := p.records.imageTarget(ctx, ns, img.Name)
	if err != nil {
		return err
	}
	img.Digest = target.Digest.String()
	if f, ok := p.imageCache.load(target.Digest); ok && f.ChainID != "" {
		img.User, img.Volumes, img.PlatformDigest, img.ChainID, img.WorkingDir = f.User, f.Volumes, f.PlatformDigest, f.ChainID, f.WorkingDir
		return nil
	}
	read := func(ctx context.Context, d ocispec.Descriptor) ([]byte, error) { return p.records.readBlob(ctx, ns, d) }
	cfg, platform, err := imageConfig(ctx, read, target)
	if err != nil {
		return fmt.Errorf("read config of image %s: %w", img.Name, err)
	}
	img.User, img.WorkingDir = cfg.Config.User, cfg.Config.WorkingDir
	img.Volumes = nil
	for v := range cfg.Config.Volumes {
		img.Volumes = append(img.Volumes, v)
	}
	sort.Strings(img.Volumes)
	if platform != target.Digest {
		img.PlatformDigest = platform.String()
	}
	img.ChainID = identity.ChainID(cfg.RootFS.DiffIDs).String()
	p.imageCache.store(target.Digest, imageFacts{User: img.User, Volumes: img.Volumes, PlatformDigest: img.PlatformDigest, ChainID: img.ChainID, WorkingDir: img.WorkingDir})
	return nil
}

// imageFacts is what the shim needs from an image's config. It is cached
// on the node by the image's manifest (or index) digest: content-addressed,
// so an entry never goes stale, and it saves each later container of the
// image the manifest and config reads.
type imageFacts struct {
	User           string   `json:"user,omitempty"`
	Volumes        []string `json:"volumes,omitempty"`
	PlatformDigest string   `json:"platformDigest,omitempty"`
	ChainID        string   `json:"chainID,omitempty"`
	WorkingDir     string   `json:"workingDir,omitempty"`
}

// imageCache is a directory of imageFacts by digest; "" disables it.
type imageCache string

func (c imageCache) path(d digest.Digest) string {
	if c == "" || d.Validate() != nil {
		return ""
	}
	return filepath.Join(string(c), d.Algorithm().String()+"-"+d.Encoded()+".json")
}

func (c imageCache) load(d digest.Digest) (imageFacts, bool) {
	var f imageFacts
	file := c.path(d)
	if file == "" {
		return f, false
	}
	data, err := os.ReadFile(file)
	if err != nil || json.Unmarshal(data, &f) != nil {
		return f, false
	}
	return f, true
}

// store records the facts; a failure only costs the next container a read.
func (c imageCache) store(d digest.Digest, f imageFacts) {
	file := c.path(d)
	if file == "" {
		return
	}
	data, err := json.Marshal(f)
	if err != nil || os.MkdirAll(string(c), 0o700) != nil {
		return
	}
	_ = atomicfile.Write(file, data, 0o600)
}

// imageConfig reads the config of the image for this node's platform, and
// the digest of the manifest it is in (target's, unless target is an
// index).
func imageConfig(ctx context.Context, readBlob func(context.Context, ocispec.Descriptor) ([]byte, error), target ocispec.Descriptor) (*ocispec.Image, digest.Digest, error) {
	manifest := target
	if isIndex(target.MediaType) {
		data, err := readBlob(ctx, target)
		if err != nil {
			return nil, "", err
		}
		var idx ocispec.Index
		if err := json.Unmarshal(data, &idx); err != nil {
			return nil, "", err
		}
		// As containerd picks: the best match of this platform; a manifest
		// without a platform only when none has one that matches.
		match := platforms.Default()
		found := false
		for _, m := range idx.Manifests {
			if isManifest(m.MediaType) && m.Platform != nil && match.Match(*m.Platform) {
				if !found || match.Less(*m.Platform, *manifest.Platform) {
					manifest, found = m, true
				}
			}
		}
		for _, m := range idx.Manifests {
			if !found && isManifest(m.MediaType) && m.Platform == nil {
				manifest, found = m, true
			}
		}
		if !found {
			return nil, "", fmt.Errorf("index %s has no manifest for %s", target.Digest, platforms.DefaultString())
		}
	}
	if !isManifest(manifest.MediaType) {
		return nil, "", fmt.Errorf("%s has media type %q, not an image manifest", manifest.Digest, manifest.MediaType)
	}
	data, err := readBlob(ctx, manifest)
	if err != nil {
		return nil, "", err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, "", fmt.Errorf("manifest %s: %w", manifest.Digest, err)
	}
	data, err = readBlob(ctx, m.Config)
	if err != nil {
		return nil, "", err
	}
	var img ocispec.Image
	if err := json.Unmarshal(data, &img); err != nil {
		return nil, "", err
	}
	return &img, manifest.Digest, nil
}

// Media types of indexes and manifests, OCI and Docker's. (containerd's
// core/images has these, but importing it brings its decompressors'
// initialisation into every shim process.)
func isIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == "application/vnd.docker.distribution.manifest.list.v2+json"
}

func isManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == "application/vnd.docker.distribution.manifest.v2+json"
}
