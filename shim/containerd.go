package shim

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/hardened-runtime/hardened/internal/h2grpc"
)

// The calls `shim start` makes to containerd's API, and the fields of their
// messages it reads. The messages are containerd's (containerd/api v1.12,
// field numbers from its .proto files); containerd_test.go checks every
// encoding and decoding here against the generated types. The generated
// types themselves are not used: building their descriptors costs a
// short-lived process more than the calls (see package h2grpc).

const (
	methodGetContainer  = "/containerd.services.containers.v1.Containers/Get"
	methodGetImage      = "/containerd.services.images.v1.Images/Get"
	methodReadContent   = "/containerd.services.content.v1.Content/Read"
	methodStatSnapshot  = "/containerd.services.snapshots.v1.Snapshots/Stat"
	methodSnapshotMount = "/containerd.services.snapshots.v1.Snapshots/Mounts"
)

// containerdAPI makes those calls on one connection, in one namespace.
type containerdAPI struct {
	conn *h2grpc.Conn
	ns   string
}

func (a containerdAPI) invoke(ctx context.Context, method string, req []byte) ([][]byte, error) {
	return a.conn.Invoke(ctx, method, map[string]string{namespaces.GRPCHeader: a.ns}, req)
}

func (a containerdAPI) unary(ctx context.Context, method string, req []byte) ([]byte, error) {
	msgs, err := a.invoke(ctx, method, req)
	if err != nil {
		return nil, err
	}
	if len(msgs) != 1 {
		return nil, fmt.Errorf("%s: %d answers to a unary call", method, len(msgs))
	}
	return msgs[0], nil
}

// containerRecord is what the shim reads of containerd's container record.
type containerRecord struct {
	Image, Snapshotter, SnapshotKey string
	// CRIMetadata is the value of the CRIMetadataExtension extension
	// (what the CRI plugin recorded of the container); nil when absent.
	CRIMetadata []byte
}

func (a containerdAPI) container(ctx context.Context, id string) (containerRecord, error) {
	var c containerRecord
	// GetContainerRequest{id = 1} -> GetContainerResponse{container = 1}
	resp, err := a.unary(ctx, methodGetContainer, appendString(nil, 1, id))
	if err != nil {
		return c, err
	}
	msg, err := messageField(resp, 1)
	if err != nil {
		return c, fmt.Errorf("container record: %w", err)
	}
	// Container{image = 3, snapshotter = 6, snapshot_key = 7,
	// extensions = 10 (map<string, Any>: entries {key = 1, value = 2})}
	err = eachField(msg, func(num protowire.Number, v value) error {
		switch num {
		case 3:
			c.Image = v.str()
		case 6:
			c.Snapshotter = v.str()
		case 7:
			c.SnapshotKey = v.str()
		case 10:
			var key string
			var val []byte
			err := eachField(v.bytes, func(num protowire.Number, v value) error {
				switch num {
				case 1:
					key = v.str()
				case 2:
					val = v.bytes
				}
				return nil
			})
			if err != nil || key != CRIMetadataExtension {
				return err
			}
			// Any{type_url = 1, value = 2}
			return eachField(val, func(num protowire.Number, v value) error {
				if num == 2 {
					c.CRIMetadata = v.bytes
				}
				return nil
			})
		}
		return nil
	})
	return c, err
}

// imageTarget returns the descriptor an image record points at.
func (a containerdAPI) imageTarget(ctx context.Context, name string) (ocispec.Descriptor, error) {
	var d ocispec.Descriptor
	// GetImageRequest{name = 1} -> GetImageResponse{image = 1}
	resp, err := a.unary(ctx, methodGetImage, appendString(nil, 1, name))
	if err != nil {
		return d, err
	}
	img, err := messageField(resp, 1)
	if err == nil {
		img, err = messageField(img, 3) // Image{target = 3}
	}
	if err != nil {
		return d, fmt.Errorf("image record: %w", err)
	}
	// Descriptor{media_type = 1, digest = 2, size = 3}
	err = eachField(img, func(num protowire.Number, v value) error {
		switch num {
		case 1:
			d.MediaType = v.str()
		case 2:
			d.Digest = digest.Digest(v.str())
		case 3:
			d.Size = int64(v.varint)
		}
		return nil
	})
	return d, err
}

// maxBlob bounds the manifests, indexes and configs the shim reads (a
// descriptor in an index could name a layer of gigabytes).
const maxBlob = 8 << 20

// readBlob reads a blob of the content store whole and checks it is what
// desc says.
func (a containerdAPI) readBlob(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("blob %q: %w", desc.Digest, err)
	}
	if desc.Size < 0 || desc.Size > maxBlob {
		return nil, fmt.Errorf("blob %s: size %d is not that of an image manifest or config", desc.Digest, desc.Size)
	}
	// ReadContentRequest{digest = 1, offset = 2 (0), size = 3} ->
	// a stream of ReadContentResponse{offset = 1, data = 2}
	req := appendString(nil, 1, desc.Digest.String())
	req = protowire.AppendTag(req, 3, protowire.VarintType)
	req = protowire.AppendVarint(req, uint64(desc.Size))
	msgs, err := a.invoke(ctx, methodReadContent, req)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", desc.Digest, err)
	}
	var data []byte
	for _, m := range msgs {
		var offset int64
		var chunk []byte
		err := eachField(m, func(num protowire.Number, v value) error {
			switch num {
			case 1:
				offset = int64(v.varint)
			case 2:
				chunk = v.bytes
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read blob %s: %w", desc.Digest, err)
		}
		if offset != int64(len(data)) {
			return nil, fmt.Errorf("read blob %s: data at offset %d after %d bytes", desc.Digest, offset, len(data))
		}
		data = append(data, chunk...)
	}
	if int64(len(data)) != desc.Size || desc.Digest.Algorithm().FromBytes(data) != desc.Digest {
		return nil, fmt.Errorf("read blob %s: the content store returned %d bytes that are not it", desc.Digest, len(data))
	}
	return data, nil
}

// snapshotParent returns the parent of a snapshot.
func (a containerdAPI) snapshotParent(ctx context.Context, snapshotter, key string) (string, error) {
	// StatSnapshotRequest{snapshotter = 1, key = 2} -> StatSnapshotResponse{info = 1}
	resp, err := a.unary(ctx, methodStatSnapshot, appendString(appendString(nil, 1, snapshotter), 2, key))
	if err != nil {
		return "", err
	}
	info, err := messageField(resp, 1)
	if err != nil {
		return "", fmt.Errorf("snapshot info: %w", err)
	}
	var parent string
	// Info{name = 1, parent = 2}
	err = eachField(info, func(num protowire.Number, v value) error {
		if num == 2 {
			parent = v.str()
		}
		return nil
	})
	return parent, err
}

// snapshotMounts returns the mounts of a snapshot.
func (a containerdAPI) snapshotMounts(ctx context.Context, snapshotter, key string) ([]rootfsMount, error) {
	// MountsRequest{snapshotter = 1, key = 2} -> MountsResponse{repeated mounts = 1}
	resp, err := a.unary(ctx, methodSnapshotMount, appendString(appendString(nil, 1, snapshotter), 2, key))
	if err != nil {
		return nil, err
	}
	var mounts []rootfsMount
	err = eachField(resp, func(num protowire.Number, v value) error {
		if num != 1 {
			return nil
		}
		if v.typ != protowire.BytesType {
			return fmt.Errorf("mount: wire type %d", v.typ)
		}
		var m rootfsMount
		// Mount{type = 1, source = 2, target = 3, repeated options = 4}
		err := eachField(v.bytes, func(num protowire.Number, v value) error {
			switch num {
			case 1:
				m.Type = v.str()
			case 2:
				m.Source = v.str()
			case 3:
				m.Target = v.str()
			case 4:
				m.Options = append(m.Options, v.str())
			}
			return nil
		})
		mounts = append(mounts, m)
		return err
	})
	return mounts, err
}

// value is one field's value as it came on the wire.
type value struct {
	typ    protowire.Type
	bytes  []byte // BytesType
	varint uint64 // VarintType
}

func (v value) str() string { return string(v.bytes) }

// eachField calls fn with each field of msg, in order; a field repeated
// (or a repeated field) comes once per occurrence.
func eachField(msg []byte, fn func(protowire.Number, value) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return protowire.ParseError(n)
		}
		msg = msg[n:]
		v := value{typ: typ}
		switch typ {
		case protowire.BytesType:
			v.bytes, n = protowire.ConsumeBytes(msg)
		case protowire.VarintType:
			v.varint, n = protowire.ConsumeVarint(msg)
		default:
			n = protowire.ConsumeFieldValue(num, typ, msg)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		msg = msg[n:]
		if err := fn(num, v); err != nil {
			return err
		}
	}
	return nil
}

// messageField returns the embedded message in field num of msg (the last
// if there were several, which containerd never sends); absent is an
// error.
func messageField(msg []byte, num protowire.Number) ([]byte, error) {
	var found []byte
	ok := false
	err := eachField(msg, func(n protowire.Number, v value) error {
		if n == num && v.typ == protowire.BytesType {
			found, ok = v.bytes, true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("field %d missing", num)
	}
	return found, nil
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}
