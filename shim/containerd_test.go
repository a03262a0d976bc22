package shim

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	contentapi "github.com/containerd/containerd/api/services/content/v1"
	imagesapi "github.com/containerd/containerd/api/services/images/v1"
	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hardened-runtime/hardened/internal/h2grpc"
)

// fakeContainerd serves, with containerd's generated gRPC services, the
// records the shim reads: what it decodes is checked against the
// generated types, field by field.
type fakeContainerd struct {
	blob []byte
	// corrupt makes Read answer wrong bytes, gap skip a chunk.
	corrupt, gap bool
}

type (
	containersFake struct {
		containersapi.UnimplementedContainersServer
		*fakeContainerd
	}
	imagesFake struct {
		imagesapi.UnimplementedImagesServer
		*fakeContainerd
	}
	contentFake struct {
		contentapi.UnimplementedContentServer
		*fakeContainerd
	}
	snapshotsFake struct {
		snapshotsapi.UnimplementedSnapshotsServer
		*fakeContainerd
	}
)

func (f *fakeContainerd) checkNS(ctx context.Context) error {
	if ns, _ := namespaces.Namespace(ctx); ns != "k8s.io" {
		return status.Errorf(codes.FailedPrecondition, "namespace %q", ns)
	}
	return nil
}

func (f containersFake) Get(ctx context.Context, r *containersapi.GetContainerRequest) (*containersapi.GetContainerResponse, error) {
	if err := f.checkNS(ctx); err != nil {
		return nil, err
	}
	if r.ID != "c1" {
		return nil, status.Errorf(codes.NotFound, "container %q in namespace %q: not found", r.ID, "k8s.io")
	}
	spec, _ := anypb.New(timestamppb.Now()) // any message: the shim skips it
	return &containersapi.GetContainerResponse{Container: &containersapi.Container{
		ID: "c1", Labels: map[string]string{"a": "b"}, Image: "docker.io/library/nginx:1",
		Runtime: &containersapi.Container_Runtime{Name: "io.containerd.hardened.v2"}, Spec: spec,
		Snapshotter: "overlayfs", SnapshotKey: "c1-snap", CreatedAt: timestamppb.Now(),
		Extensions: map[string]*anypb.Any{"x": spec, CRIMetadataExtension: {TypeUrl: "github.com/containerd/cri/pkg/store/container/Metadata", Value: []byte(`{"Version":"v1"}`)}, "y": spec}, Sandbox: "sb",
	}}, nil
}

func (f imagesFake) Get(ctx context.Context, r *imagesapi.GetImageRequest) (*imagesapi.GetImageResponse, error) {
	if err := f.checkNS(ctx); err != nil {
		return nil, err
	}
	if r.Name != "docker.io/library/nginx:1" {
		return nil, status.Errorf(codes.NotFound, "image %q: not found", r.Name)
	}
	return &imagesapi.GetImageResponse{Image: &imagesapi.Image{
		Name: r.Name, Labels: map[string]string{"l": "v"},
		Target: &types.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(f.blob).String(), Size: int64(len(f.blob)),
			Annotations: map[string]string{"k": "v"}},
		CreatedAt: timestamppb.Now(),
	}}, nil
}

func (f contentFake) Read(r *contentapi.ReadContentRequest, stream contentapi.Content_ReadServer) error {
	if err := f.checkNS(stream.Context()); err != nil {
		return err
	}
	if r.Digest != digest.FromBytes(f.blob).String() {
		return status.Errorf(codes.NotFound, "content digest %s: not found", r.Digest)
	}
	if r.Offset != 0 || r.Size != int64(len(f.blob)) {
		return status.Errorf(codes.InvalidArgument, "read at %d, %d bytes: want all %d", r.Offset, r.Size, len(f.blob))
	}
	blob := f.blob
	if f.corrupt {
		blob = bytes.ToUpper(blob)
	}
	for off := 0; off < len(blob); off += 1000 { // in chunks, as containerd sends them
		if f.gap && off == 1000 {
			continue
		}
		end := min(off+1000, len(blob))
		if err := stream.Send(&contentapi.ReadContentResponse{Offset: int64(off), Data: blob[off:end]}); err != nil {
			return err
		}
	}
	return nil
}

func (f snapshotsFake) Stat(ctx context.Context, r *snapshotsapi.StatSnapshotRequest) (*snapshotsapi.StatSnapshotResponse, error) {
	if err := f.checkNS(ctx); err != nil {
		return nil, err
	}
	if r.Snapshotter != "overlayfs" || r.Key != "c1-snap" {
		return nil, status.Errorf(codes.NotFound, "snapshot %s/%s", r.Snapshotter, r.Key)
	}
	return &snapshotsapi.StatSnapshotResponse{Info: &snapshotsapi.Info{Name: r.Key, Parent: "sha256:chain", Kind: snapshotsapi.Kind_ACTIVE,
		CreatedAt: timestamppb.Now(), Labels: map[string]string{"x": "y"}}}, nil
}

func (f snapshotsFake) Mounts(ctx context.Context, r *snapshotsapi.MountsRequest) (*snapshotsapi.MountsResponse, error) {
	if err := f.checkNS(ctx); err != nil {
		return nil, err
	}
	if r.Snapshotter != "overlayfs" || r.Key != "c1-snap" {
		return nil, status.Errorf(codes.NotFound, "snapshot %s/%s", r.Snapshotter, r.Key)
	}
	return &snapshotsapi.MountsResponse{Mounts: []*types.Mount{
		{Type: "overlay", Source: "overlay", Options: []string{"index=off", "lowerdir=/a:/b"}},
		{Type: "bind", Source: "/x", Target: "/y"},
	}}, nil
}

func serveFake(t *testing.T, f *fakeContainerd) containerdAPI {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "c.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	containersapi.RegisterContainersServer(s, containersFake{fakeContainerd: f})
	imagesapi.RegisterImagesServer(s, imagesFake{fakeContainerd: f})
	contentapi.RegisterContentServer(s, contentFake{fakeContainerd: f})
	snapshotsapi.RegisterSnapshotsServer(s, snapshotsFake{fakeContainerd: f})
	go s.Serve(l)
	t.Cleanup(s.Stop)
	conn, err := h2grpc.Dial(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return containerdAPI{conn: conn, ns: "k8s.io"}
}

func TestContainerdAPI(t *testing.T) {
	blob := bytes.Repeat([]byte(`{"manifests":[]}`), 300) // several chunks
	fake := &fakeContainerd{blob: blob}
	api := serveFake(t, fake)
	ctx := context.Background()

	c, err := api.container(ctx, "c1")
	if want := (containerRecord{Image: "docker.io/library/nginx:1", Snapshotter: "overlayfs", SnapshotKey: "c1-snap", CRIMetadata: []byte(`{"Version":"v1"}`)}); err != nil || !reflect.DeepEqual(c, want) {
		t.Fatalf("container(c1) = %+v, %v; want %+v", c, err, want)
	}
	_, err = api.container(ctx, "nope")
	if s, _ := status.FromError(err); s.Code() != codes.NotFound || s.Message() != `container "nope" in namespace "k8s.io": not found` {
		t.Fatalf("container(nope) = %v, want NotFound with containerd's message", err)
	}

	d, err := api.imageTarget(ctx, "docker.io/library/nginx:1")
	want := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	if err != nil || !cmp.Equal(d, want) {
		t.Fatalf("imageTarget = %+v, %v; want %+v", d, err, want)
	}

	got, err := api.readBlob(ctx, want)
	if err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("readBlob = %d bytes, %v; want the %d bytes", len(got), err, len(blob))
	}
	// Only descriptors that can be a manifest or a config are read.
	for _, bad := range []ocispec.Descriptor{
		{Digest: "sha256:short", Size: 5},
		{Digest: want.Digest, Size: 1 << 40},
		{Digest: want.Digest, Size: -1},
	} {
		if _, err := api.readBlob(ctx, bad); err == nil {
			t.Errorf("readBlob(%v) succeeded", bad)
		}
	}
	// The content store must return the blob asked for, whole.
	fake.corrupt = true
	if _, err := api.readBlob(ctx, want); err == nil || !strings.Contains(err.Error(), "not it") {
		t.Errorf("readBlob of other bytes = %v, want refused", err)
	}
	fake.corrupt, fake.gap = false, true
	if _, err := api.readBlob(ctx, want); err == nil || !strings.Contains(err.Error(), "offset") {
		t.Errorf("readBlob with a chunk missing = %v, want refused", err)
	}
	fake.gap = false
	if _, err := api.imageTarget(ctx, "docker.io/library/other:1"); status.Code(err) != codes.NotFound {
		t.Errorf("imageTarget(other) = %v, want the name sent and NotFound", err)
	}
	if _, err := api.snapshotMounts(ctx, "overlayfs", "other"); status.Code(err) != codes.NotFound {
		t.Errorf("snapshotMounts(other) = %v, want the key sent and NotFound", err)
	}

	parent, err := api.snapshotParent(ctx, "overlayfs", "c1-snap")
	if err != nil || parent != "sha256:chain" {
		t.Fatalf("snapshotParent = %q, %v", parent, err)
	}
	mounts, err := api.snapshotMounts(ctx, "overlayfs", "c1-snap")
	wantMounts := []rootfsMount{
		{Type: "overlay", Source: "overlay", Options: []string{"index=off", "lowerdir=/a:/b"}},
		{Type: "bind", Source: "/x", Target: "/y"},
	}
	if err != nil || !cmp.Equal(mounts, wantMounts) {
		t.Fatalf("snapshotMounts = %+v, %v; want %+v", mounts, err, wantMounts)
	}

	// Another namespace is sent as such, to every service.
	other := api
	other.ns = "default"
	if _, err := other.container(ctx, "c1"); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("container in namespace default = %v, want the fake's namespace refusal", err)
	}
	if _, err := other.imageTarget(ctx, "docker.io/library/nginx:1"); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("imageTarget in namespace default = %v, want the fake's namespace refusal", err)
	}
	if _, err := other.readBlob(ctx, want); status.Code(errors.Unwrap(err)) != codes.FailedPrecondition {
		t.Errorf("readBlob in namespace default = %v, want the fake's namespace refusal", err)
	}
	if _, err := other.snapshotParent(ctx, "overlayfs", "c1-snap"); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("snapshotParent in namespace default = %v, want the fake's namespace refusal", err)
	}
	if _, err := other.snapshotMounts(ctx, "overlayfs", "c1-snap"); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("snapshotMounts in namespace default = %v, want the fake's namespace refusal", err)
	}
}

func TestEachFieldMalformed(t *testing.T) {
	for _, msg := range [][]byte{
		{0x0a},             // field 1, bytes, no length
		{0x0a, 0x05, 'a'},  // length past the end
		{0x08},             // varint cut short
		{0xff, 0xff, 0xff}, // tag cut short
	} {
		if err := eachField(msg, func(protowire.Number, value) error { return nil }); err == nil {
			t.Errorf("eachField(%x) succeeded", msg)
		}
	}
}
