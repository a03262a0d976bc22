package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hardened-runtime/hardened/internal/atomicfile"
	"github.com/hardened-runtime/hardened/internal/h2grpc"
	"github.com/hardened-runtime/hardened/spec"
)

// lookupTimeout bounds each look-up in containerd: a slow containerd fails
// one create clearly instead of hanging it.
const lookupTimeout = 10 * time.Second

// imageResolver reads, from containerd's own records, which image a
// container runs: the container record names it, the image record and the
// content store give its config. Annotations, which a pod author controls,
// are not consulted.
type imageResolver struct {
	address string
	// cacheDir holds imageFacts by digest; "" disables the cache.
	cacheDir string
	// t, when set, records the time of each step.
	t *timer

	mu   sync.Mutex
	conn *h2grpc.Conn
}

// api returns the client of containerd's API for namespace ns, connecting
// on first use.
func (r *imageResolver) api(ctx context.Context, ns string) (containerdAPI, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn == nil {
		if r.address == "" {
			return containerdAPI{}, fmt.Errorf("the shim was not given containerd's address")
		}
		conn, err := h2grpc.Dial(ctx, r.address)
		if err != nil {
			return containerdAPI{}, fmt.Errorf("connect to containerd at %s: %w", r.address, err)
		}
		r.conn = conn
	}
	return containerdAPI{conn: r.conn, ns: ns}, nil
}

func (r *imageResolver) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
}

// imageRecord is what Prepare leaves in the bundle (ImageFile): the image
// facts the engine uses, and what binds the container to the image whose
// signature is checked.
type imageRecord struct {
	spec.ImageInfo
	// PlatformDigest is, when Digest is an index, the manifest of this
	// node's platform.
	PlatformDigest string `json:",omitempty"`
	// ChainID is the chain id of the image's layers for this platform:
	// the parent a container's rootfs snapshot must have.
	ChainID string `json:",omitempty"`
	// Snapshotter, SnapshotKey and SnapshotParent describe the
	// container's rootfs snapshot, from containerd's records.
	Snapshotter    string `json:",omitempty"`
	SnapshotKey    string `json:",omitempty"`
	SnapshotParent string `json:",omitempty"`
	// SnapshotMounts are the snapshot's mounts: what the task's rootfs
	// must be (containerd's clients compute it and send it with Create).
	SnapshotMounts []rootfsMount `json:",omitempty"`
	// SupplementalGroups and SupplementalGroupsKnown are what a CRI
	// container's config asked for (criSupplementalGroups); for
	// spec.ContainerInfo. Never cached with the image facts.
	SupplementalGroups      []uint32 `json:",omitempty"`
	SupplementalGroupsKnown bool     `json:",omitempty"`
}

// rootfsMount is a mount of a container's root filesystem.
type rootfsMount struct {
	Type    string   `json:"type"`
	Source  string   `json:"source"`
	Target  string   `json:"target,omitempty"`
	Options []string `json:"options,omitempty"`
}

// fromBundle reads the facts Start left in the bundle. ok is false when
// there are none (a shim started by another binary): then resolve.
func fromBundle(bundle string) (img imageRecord, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(bundle, ImageFile))
	if errors.Is(err, fs.ErrNotExist) {
		return img, false, nil
	}
	if err != nil {
		return img, false, err
	}
	if err := json.Unmarshal(data, &img); err != nil {
		return img, false, fmt.Errorf("%s: %w", ImageFile, err)
	}
	return img, true, nil
}

// resolve returns what containerd knows about the image of container id.
func (r *imageResolver) resolve(ctx context.Context, ns, id string) (imageRecord, error) {
	var info imageRecord
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	api, err := r.api(ctx, ns)
	if err != nil {
		return info, err
	}
	r.t.mark("connect")
	c, err := api.container(ctx, id)
	r.t.mark("container")
	if err != nil {
		return info, fmt.Errorf("read container %s/%s from containerd: %w", ns, id, err)
	}
	// Unreadable: unknown, which only drops groups.
	info.SupplementalGroups, info.SupplementalGroupsKnown, _ = criSupplementalGroups(c.CRIMetadata)
	info.Name = c.Image
	if info.Name == "" {
		return info, nil // a container made from a root filesystem, not an image
	}
	info.Snapshotter, info.SnapshotKey = c.Snapshotter, c.SnapshotKey
	target, err := api.imageTarget(ctx, info.Name)
	r.t.mark("image")
	if err != nil {
		return info, fmt.Errorf("read image %s of container %s from containerd: %w", info.Name, id, err)
	}
	info.Digest = target.Digest.String()
	cached, ok := r.cached(target.Digest)
	r.t.mark("cache")
	if ok && cached.ChainID != "" {
		info.User, info.Volumes = cached.User, cached.Volumes
		info.PlatformDigest, info.ChainID = cached.PlatformDigest, cached.ChainID
		return info, nil
	}
	cfg, platform, err := imageConfig(ctx, api.readBlob, target)
	if err != nil {
		return info, fmt.Errorf("read config of image %s: %w", info.Name, err)
	}
	info.User = cfg.Config.User
	for v := range cfg.Config.Volumes {
		info.Volumes = append(info.Volumes, v)
	}
	sort.Strings(info.Volumes)
	if platform != target.Digest {
		info.PlatformDigest = platform.String()
	}
	info.ChainID = identity.ChainID(cfg.RootFS.DiffIDs).String()
	r.store(target.Digest, imageFacts{User: info.User, Volumes: info.Volumes, PlatformDigest: info.PlatformDigest, ChainID: info.ChainID})
	return info, nil
}

// snapshotFacts adds what binds the container to its image's layers: the
// parent and the mounts of its rootfs snapshot. Only a policy that checks
// signatures needs them (checkSignature, checkTaskRootfs).
func (r *imageResolver) snapshotFacts(ctx context.Context, ns, id string, info *imageRecord) error {
	if info.SnapshotKey == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	api, err := r.api(ctx, ns)
	if err != nil {
		return err
	}
	parent, err := api.snapshotParent(ctx, info.Snapshotter, info.SnapshotKey)
	if err != nil {
		return fmt.Errorf("read rootfs snapshot %s of container %s: %w", info.SnapshotKey, id, err)
	}
	mounts, err := api.snapshotMounts(ctx, info.Snapshotter, info.SnapshotKey)
	if err != nil {
		return fmt.Errorf("read the mounts of rootfs snapshot %s of container %s: %w", info.SnapshotKey, id, err)
	}
	info.SnapshotParent, info.SnapshotMounts = parent, mounts
	return nil
}

// imageFacts is what the shim needs from an image's config. It is cached
// on the node by the image's manifest (or index) digest: content-addressed,
// so an entry never goes stale, and it saves each later container of the
// image the manifest and config reads (every container has a shim process
// of its own, so an in-memory cache would not).
type imageFacts struct {
	User           string   `json:"user,omitempty"`
	Volumes        []string `json:"volumes,omitempty"`
	PlatformDigest string   `json:"platformDigest,omitempty"`
	ChainID        string   `json:"chainID,omitempty"`
}

func (r *imageResolver) cachePath(d digest.Digest) string {
	if r.cacheDir == "" || d.Validate() != nil {
		return ""
	}
	return filepath.Join(r.cacheDir, d.Algorithm().String()+"-"+d.Encoded()+".json")
}

func (r *imageResolver) cached(d digest.Digest) (imageFacts, bool) {
	var f imageFacts
	file := r.cachePath(d)
	if file == "" {
		return f, false
	}
	data, err := os.ReadFile(file)
	if err != nil || json.Unmarshal(data, &f) != nil {
		return f, false
	}
	return f, true
}

// store records the facts; a failure only costs the next container a fetch.
func (r *imageResolver) store(d digest.Digest, f imageFacts) {
	file := r.cachePath(d)
	if file == "" {
		return
	}
	data, err := json.Marshal(f)
	if err != nil || os.MkdirAll(r.cacheDir, 0o700) != nil {
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
