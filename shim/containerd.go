package shim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	contentapi "github.com/containerd/containerd/api/services/content/v1"
	imagesapi "github.com/containerd/containerd/api/services/images/v1"
	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/dialer"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
)

// lookupTimeout bounds each look-up in containerd: a slow containerd fails
// one create clearly instead of hanging it.
const lookupTimeout = 10 * time.Second

// records reads containerd's own records of a container (the container,
// its image, the image's content, the rootfs snapshot, the CRI sandbox)
// through containerd's gRPC API, with containerd's generated clients, the
// way containerd's own client does: one connection on containerd's unix
// socket, dialled on first use, the namespace in every call's metadata
// (namespaces.WithNamespace), a deadline on every look-up.
type records struct {
	address string

	// mu guards conn and inflight.
	mu   sync.Mutex
	conn *grpc.ClientConn
	// inflight counts the calls under way on conn.
	inflight int
}

func newRecords(address string) *records {
	return &records{address: strings.TrimPrefix(address, "unix://")}
}

// client returns the connection, creating it on first use (grpc.NewClient
// connects on the first call), for one call: done must follow.
func (r *records) client() (*grpc.ClientConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil {
		r.inflight++
		return r.conn, nil
	}
	if r.address == "" {
		return nil, errors.New("the shim was not given containerd's address")
	}
	// As containerd's client.New dials (client/client.go, v2.4.2).
	bo := backoff.DefaultConfig
	bo.MaxDelay = lookupTimeout
	conn, err := grpc.NewClient(dialer.DialAddress(r.address),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: lookupTimeout}),
		grpc.WithContextDialer(dialer.ContextDialer),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(defaults.DefaultMaxRecvMsgSize), grpc.MaxCallSendMsgSize(defaults.DefaultMaxSendMsgSize)))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", r.address, err)
	}
	r.conn = conn
	r.inflight++
	return conn, nil
}

// done ends a call client began.
func (r *records) done() {
	r.mu.Lock()
	r.inflight--
	r.mu.Unlock()
}

// close closes the connection unless a call is under way on it (the
// long-running shim closes it when idle, which a Create may have ended
// meanwhile); the next look-up dials again.
func (r *records) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil && r.inflight == 0 {
		r.conn.Close()
		r.conn = nil
	}
}

// call runs one look-up in namespace ns under lookupTimeout.
func call[T any](ctx context.Context, r *records, ns string, fn func(context.Context, *grpc.ClientConn) (T, error)) (T, error) {
	var zero T
	conn, err := r.client()
	if err != nil {
		return zero, err
	}
	defer r.done()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(ctx, ns), lookupTimeout)
	defer cancel()
	return fn(ctx, conn)
}

// container returns containerd's record of container id.
func (r *records) container(ctx context.Context, ns, id string) (*containersapi.Container, error) {
	resp, err := call(ctx, r, ns, func(ctx context.Context, c *grpc.ClientConn) (*containersapi.GetContainerResponse, error) {
		return containersapi.NewContainersClient(c).Get(ctx, &containersapi.GetContainerRequest{ID: id})
	})
	if err != nil {
		return nil, fmt.Errorf("read container %s/%s from containerd: %w", ns, id, err)
	}
	if resp.GetContainer() == nil {
		return nil, fmt.Errorf("read container %s/%s from containerd: no record", ns, id)
	}
	return resp.GetContainer(), nil
}

// imageTarget returns the descriptor containerd's image record points at.
func (r *records) imageTarget(ctx context.Context, ns, name string) (ocispec.Descriptor, error) {
	resp, err := call(ctx, r, ns, func(ctx context.Context, c *grpc.ClientConn) (*imagesapi.GetImageResponse, error) {
		return imagesapi.NewImagesClient(c).Get(ctx, &imagesapi.GetImageRequest{Name: name})
	})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("read image %s from containerd: %w", name, err)
	}
	t := resp.GetImage().GetTarget()
	if t == nil {
		return ocispec.Descriptor{}, fmt.Errorf("read image %s from containerd: the record has no target", name)
	}
	return ocispec.Descriptor{MediaType: t.MediaType, Digest: digest.Digest(t.Digest), Size: t.Size}, nil
}

// maxBlob bounds the manifests, indexes and configs the shim reads (a
// descriptor in an index could name a layer of gigabytes).
const maxBlob = 8 << 20

// readBlob reads a blob of the content store whole and checks that it is
// what desc says.
func (r *records) readBlob(ctx context.Context, ns string, desc ocispec.Descriptor) ([]byte, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("blob %q: %w", desc.Digest, err)
	}
	if desc.Size < 0 || desc.Size > maxBlob {
		return nil, fmt.Errorf("blob %s: size %d is not that of an image manifest or config", desc.Digest, desc.Size)
	}
	data, err := call(ctx, r, ns, func(ctx context.Context, c *grpc.ClientConn) ([]byte, error) {
		stream, err := contentapi.NewContentClient(c).Read(ctx, &contentapi.ReadContentRequest{Digest: desc.Digest.String(), Size: desc.Size})
		if err != nil {
			return nil, err
		}
		data := make([]byte, 0, desc.Size)
		for {
			m, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return data, nil
			}
			if err != nil {
				return nil, err
			}
			if m.Offset != int64(len(data)) {
				return nil, fmt.Errorf("data at offset %d after %d bytes", m.Offset, len(data))
			}
			if int64(len(data)+len(m.Data)) > desc.Size {
				return nil, fmt.Errorf("more than the %d bytes of the descriptor", desc.Size)
			}
			data = append(data, m.Data...)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", desc.Digest, err)
	}
	if int64(len(data)) != desc.Size || desc.Digest.Algorithm().FromBytes(data) != desc.Digest {
		return nil, fmt.Errorf("read blob %s: the content store returned %d bytes that are not it", desc.Digest, len(data))
	}
	return data, nil
}

// snapshot returns the parent and the mounts of a snapshot.
func (r *records) snapshot(ctx context.Context, ns, snapshotter, key string) (string, []rootfsMount, error) {
	info, err := call(ctx, r, ns, func(ctx context.Context, c *grpc.ClientConn) (*snapshotsapi.StatSnapshotResponse, error) {
		return snapshotsapi.NewSnapshotsClient(c).Stat(ctx, &snapshotsapi.StatSnapshotRequest{Snapshotter: snapshotter, Key: key})
	})
	if err != nil {
		return "", nil, fmt.Errorf("read rootfs snapshot %s/%s: %w", snapshotter, key, err)
	}
	resp, err := call(ctx, r, ns, func(ctx context.Context, c *grpc.ClientConn) (*snapshotsapi.MountsResponse, error) {
		return snapshotsapi.NewSnapshotsClient(c).Mounts(ctx, &snapshotsapi.MountsRequest{Snapshotter: snapshotter, Key: key})
	})
	if err != nil {
		return "", nil, fmt.Errorf("read the mounts of rootfs snapshot %s/%s: %w", snapshotter, key, err)
	}
	var mounts []rootfsMount
	for _, m := range resp.GetMounts() {
		mounts = append(mounts, rootfsMount{Type: m.Type, Source: m.Source, Target: m.Target, Options: m.Options})
	}
	return info.GetInfo().GetParent(), mounts, nil
}

// sandboxContainer returns containerd's record of the container of CRI
// sandbox id (its pause container: the CRI plugin's podsandbox controller
// gives it the sandbox's id), or nil when there is none.
func (r *records) sandboxContainer(ctx context.Context, ns, id string) (*containersapi.Container, error) {
	c, err := r.container(ctx, ns, id)
	if errdefs.IsNotFound(errgrpc.ToNative(errors.Unwrap(err))) {
		return nil, nil
	}
	return c, err
}
