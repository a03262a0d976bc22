package harness

import (
	"fmt"
	"maps"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// VariantLabel is the config label Variant sets.
const VariantLabel = "hardened.test/variant"

// TestImage returns one of the test images (Busybox, BusyboxApp, Pause)
// as a go-containerregistry image, to push to a test registry (Registry.Push).
// It is the image Import imports: same layer, config and digest.
func TestImage(name string) (v1.Image, error) {
	return testImage(name)
}

// Variant returns img with the config label VariantLabel=label: the same
// files, another config and so another manifest digest. An error reading
// img's config shows when the variant is used (pushed, digested).
func Variant(img v1.Image, label string) v1.Image {
	cf, err := img.ConfigFile()
	if err != nil {
		return errImage{fmt.Errorf("variant %q: config: %w", label, err)}
	}
	cf = cf.DeepCopy()
	labels := maps.Clone(cf.Config.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[VariantLabel] = label
	cf.Config.Labels = labels
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		return errImage{fmt.Errorf("variant %q: %w", label, err)}
	}
	return out
}

// Index returns an OCI image index of imgs, each entry with the platform
// (os, architecture, variant) of its config: a multi-arch image, whose
// digest is the one containerd records and runs by. The test images are
// linux/GOARCH, so Index(img) is a one-platform index containerd pulls as
// it pulls any multi-arch image.
func Index(imgs ...v1.Image) (v1.ImageIndex, error) {
	var adds []mutate.IndexAddendum
	for i, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("index: image %d: %w", i, err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant},
		}})
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...), nil
}

// errImage is a v1.Image whose every method fails with err.
type errImage struct{ err error }

func (e errImage) Layers() ([]v1.Layer, error)             { return nil, e.err }
func (e errImage) MediaType() (types.MediaType, error)     { return "", e.err }
func (e errImage) Size() (int64, error)                    { return 0, e.err }
func (e errImage) ConfigName() (v1.Hash, error)            { return v1.Hash{}, e.err }
func (e errImage) ConfigFile() (*v1.ConfigFile, error)     { return nil, e.err }
func (e errImage) RawConfigFile() ([]byte, error)          { return nil, e.err }
func (e errImage) Digest() (v1.Hash, error)                { return v1.Hash{}, e.err }
func (e errImage) Manifest() (*v1.Manifest, error)         { return nil, e.err }
func (e errImage) RawManifest() ([]byte, error)            { return nil, e.err }
func (e errImage) LayerByDigest(v1.Hash) (v1.Layer, error) { return nil, e.err }
func (e errImage) LayerByDiffID(v1.Hash) (v1.Layer, error) { return nil, e.err }

var _ v1.Image = errImage{}
