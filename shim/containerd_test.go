package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	contentapi "github.com/containerd/containerd/api/services/content/v1"
	imagesapi "github.com/containerd/containerd/api/services/images/v1"
	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// fakeContainerd serves, with containerd's generated gRPC services on a
// unix socket, the records the shim reads, in one namespace: containers,
// images, content, snapshots and the sandbox store. It records every call.
type fakeContainerd struct {
	ns string

	mu         sync.Mutex
	containers map[string]*containersapi.Container
	images     map[string]*imagesapi.Image
	blobs      map[digest.Digest][]byte
	snapshots  map[string]*snapshotsapi.Info // by snapshotter/key
	mounts     map[string][]*types.Mount
	// corrupt makes Read answer other bytes, gap skip a chunk, extra send
	// more than asked.
	corrupt, gap, extra bool
	// fail makes every call fail with this code (codes.OK: no failure).
	fail  codes.Code
	calls []string
	// hold, when set, runs before each call (outside the lock): a test
	// holds a look-up there.
	hold func(method string)
}

func newFakeContainerd(ns string) *fakeContainerd {
	return &fakeContainerd{ns: ns, containers: map[string]*containersapi.Container{}, images: map[string]*imagesapi.Image{},
		blobs: map[digest.Digest][]byte{}, snapshots: map[string]*snapshotsapi.Info{}, mounts: map[string][]*types.Mount{}}
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

// enter records the call and checks the namespace the client sent.
func (f *fakeContainerd) enter(ctx context.Context, method string) error {
	f.mu.Lock()
	hold := f.hold
	f.mu.Unlock()
	if hold != nil {
		hold(method)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, method)
	if f.fail != codes.OK {
		return status.Errorf(f.fail, "%s: injected failure", method)
	}
	if ns, _ := namespaces.Namespace(ctx); ns != f.ns {
		return status.Errorf(codes.FailedPrecondition, "namespace %q", ns)
	}
	return nil
}

func (f *fakeContainerd) callCount(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == method {
			n++
		}
	}
	return n
}

func (f containersFake) Get(ctx context.Context, r *containersapi.GetContainerRequest) (*containersapi.GetContainerResponse, error) {
	if err := f.enter(ctx, "containers.Get"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[r.ID]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "container %q in namespace %q: not found", r.ID, f.ns)
	}
	return &containersapi.GetContainerResponse{Container: c}, nil
}

func (f imagesFake) Get(ctx context.Context, r *imagesapi.GetImageRequest) (*imagesapi.GetImageResponse, error) {
	if err := f.enter(ctx, "images.Get"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.images[r.Name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "image %q: not found", r.Name)
	}
	return &imagesapi.GetImageResponse{Image: img}, nil
}

func (f contentFake) Read(r *contentapi.ReadContentRequest, stream contentapi.Content_ReadServer) error {
	if err := f.enter(stream.Context(), "content.Read"); err != nil {
		return err
	}
	f.mu.Lock()
	blob, ok := f.blobs[digest.Digest(r.Digest)]
	corrupt, gap, extra := f.corrupt, f.gap, f.extra
	f.mu.Unlock()
	if !ok {
		return status.Errorf(codes.NotFound, "content digest %s: not found", r.Digest)
	}
	if r.Offset != 0 || r.Size != int64(len(blob)) {
		return status.Errorf(codes.InvalidArgument, "read at %d, %d bytes: want all %d", r.Offset, r.Size, len(blob))
	}
	if corrupt {
		blob = bytes.ToUpper(blob)
	}
	if extra {
		blob = append(bytes.Clone(blob), "more"...)
	}
	for off := 0; off < len(blob); off += 1000 { // in chunks, as containerd sends them
		if gap && off == 1000 {
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
	if err := f.enter(ctx, "snapshots.Stat"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	info, ok := f.snapshots[r.Snapshotter+"/"+r.Key]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "snapshot %s/%s", r.Snapshotter, r.Key)
	}
	return &snapshotsapi.StatSnapshotResponse{Info: info}, nil
}

func (f snapshotsFake) Mounts(ctx context.Context, r *snapshotsapi.MountsRequest) (*snapshotsapi.MountsResponse, error) {
	if err := f.enter(ctx, "snapshots.Mounts"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.mounts[r.Snapshotter+"/"+r.Key]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "snapshot %s/%s", r.Snapshotter, r.Key)
	}
	return &snapshotsapi.MountsResponse{Mounts: m}, nil
}

// serve starts the fake on a unix socket and returns its address.
func (f *fakeContainerd) serve(t testing.TB) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "containerd.sock")
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
	return sock
}

// addBlob puts a blob in the content store and returns its descriptor.
func (f *fakeContainerd) addBlob(mediaType string, data []byte) ocispec.Descriptor {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := digest.FromBytes(data)
	f.blobs[d] = data
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

// testImage is an image in the fake's content store.
type testImage struct {
	name     string
	target   ocispec.Descriptor // what the image record points at
	manifest ocispec.Descriptor
	chainID  string
}

// addImage adds an image (user, volumes, one layer) under name, and
// returns it; withIndex wraps the manifest in an index for this platform.
func (f *fakeContainerd) addImage(t testing.TB, name, user string, volumes []string, withIndex bool) testImage {
	t.Helper()
	cfg := ocispec.Image{Config: ocispec.ImageConfig{User: user, Volumes: map[string]struct{}{}},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromString(name + " layer")}}}
	for _, v := range volumes {
		cfg.Config.Volumes[v] = struct{}{}
	}
	cfgData, _ := json.Marshal(cfg)
	cfgDesc := f.addBlob(ocispec.MediaTypeImageConfig, cfgData)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc}
	m.SchemaVersion = 2
	mData, _ := json.Marshal(m)
	mDesc := f.addBlob(ocispec.MediaTypeImageManifest, mData)
	target := mDesc
	if withIndex {
		other := mDesc
		other.Platform = &ocispec.Platform{OS: "windows", Architecture: "arm"}
		here := mDesc
		here.Platform = &ocispec.Platform{OS: "linux", Architecture: goarch()}
		idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{other, here}}
		idx.SchemaVersion = 2
		iData, _ := json.Marshal(idx)
		target = f.addBlob(ocispec.MediaTypeImageIndex, iData)
	}
	f.mu.Lock()
	f.images[name] = &imagesapi.Image{Name: name, Target: &types.Descriptor{MediaType: target.MediaType, Digest: target.Digest.String(), Size: target.Size},
		CreatedAt: timestamppb.Now()}
	f.mu.Unlock()
	return testImage{name: name, target: target, manifest: mDesc, chainID: identity.ChainID(cfg.RootFS.DiffIDs).String()}
}

// addContainer records container id of image (none: "") with a rootfs
// snapshot whose parent is parent.
func (f *fakeContainerd) addContainer(id string, img testImage, parent string) *containersapi.Container {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := &containersapi.Container{ID: id, Image: img.name, Runtime: &containersapi.Container_Runtime{Name: RuntimeName},
		Snapshotter: "overlayfs", SnapshotKey: id + "-snap", CreatedAt: timestamppb.Now()}
	if img.name == "" {
		c.Snapshotter, c.SnapshotKey = "", ""
	}
	f.containers[id] = c
	if c.SnapshotKey != "" {
		f.snapshots["overlayfs/"+c.SnapshotKey] = &snapshotsapi.Info{Name: c.SnapshotKey, Parent: parent, Kind: snapshotsapi.Kind_ACTIVE}
		f.mounts["overlayfs/"+c.SnapshotKey] = []*types.Mount{{Type: "overlay", Source: "overlay", Options: []string{"index=off", "lowerdir=/l/" + id}}}
	}
	return c
}

// addSandbox makes container id (recorded already or not) a CRI sandbox
// of pod uid in Kubernetes namespace kns, as the CRI plugin's podsandbox
// controller records its pause container.
func (f *fakeContainerd) addSandbox(id, uid, kns string) {
	md, _ := json.Marshal(map[string]any{"Version": "v1", "Metadata": map[string]any{"ID": id, "Name": "pod",
		"Config": map[string]any{"metadata": map[string]any{"name": "pod", "uid": uid, "namespace": kns}}}})
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.containers[id]
	if c == nil {
		c = &containersapi.Container{ID: id, Runtime: &containersapi.Container_Runtime{Name: RuntimeName}}
		f.containers[id] = c
	}
	c.Labels = map[string]string{criKindLabel: "sandbox"}
	c.Extensions = map[string]*anypb.Any{criSandboxMetadataKey: {TypeUrl: criSandboxMetadataType, Value: md}}
}

func TestRecordsReadContainerdRecords(t *testing.T) {
	fake := newFakeContainerd("k8s.io")
	r := newRecords("unix://" + fake.serve(t))
	defer r.close()
	ctx := context.Background()
	img := fake.addImage(t, "docker.io/library/nginx:1", "nginx", []string{"/data"}, true)
	fake.addContainer("c1", img, img.chainID)
	fake.containers["c1"].Sandbox = "sb"

	c, err := r.container(ctx, "k8s.io", "c1")
	if err != nil || c.Image != img.name || c.SnapshotKey != "c1-snap" || c.Snapshotter != "overlayfs" || c.Sandbox != "sb" {
		t.Fatalf("container(c1) = %+v, %v", c, err)
	}
	_, err = r.container(ctx, "k8s.io", "nope")
	if err == nil || !strings.Contains(err.Error(), `container "nope" in namespace "k8s.io": not found`) || !strings.Contains(err.Error(), "k8s.io/nope") {
		t.Fatalf("container(nope) = %v, want NotFound with containerd's message", err)
	}
	d, err := r.imageTarget(ctx, "k8s.io", img.name)
	if err != nil || !cmp.Equal(d, img.target) {
		t.Fatalf("imageTarget = %+v, %v; want %+v", d, err, img.target)
	}
	if _, err := r.imageTarget(ctx, "k8s.io", "docker.io/library/other:1"); status.Code(errorsUnwrapAll(err)) != codes.NotFound {
		t.Errorf("imageTarget(other) = %v, want NotFound", err)
	}
	parent, mounts, err := r.snapshot(ctx, "k8s.io", "overlayfs", "c1-snap")
	want := []rootfsMount{{Type: "overlay", Source: "overlay", Options: []string{"index=off", "lowerdir=/l/c1"}}}
	if err != nil || parent != img.chainID || !cmp.Equal(mounts, want) {
		t.Fatalf("snapshot = %q %+v %v", parent, mounts, err)
	}
	if _, _, err := r.snapshot(ctx, "k8s.io", "overlayfs", "other"); err == nil {
		t.Error("snapshot(other) succeeded")
	}
	fake.addSandbox("sb", "uid-1", "web")
	sb, err := r.sandboxContainer(ctx, "k8s.io", "sb")
	if err != nil || sb == nil || sb.Labels[criKindLabel] != "sandbox" || !bytes.Contains(sb.Extensions[criSandboxMetadataKey].GetValue(), []byte("uid-1")) {
		t.Fatalf("sandboxContainer(sb) = %+v, %v", sb, err)
	}
	if sb, err := r.sandboxContainer(ctx, "k8s.io", "none"); sb != nil || err != nil {
		t.Errorf("sandboxContainer(none) = %+v, %v; want nothing and no error", sb, err)
	}

	// Another namespace is sent as such, to every service.
	for name, call := range map[string]func() error{
		"container": func() error { _, err := r.container(ctx, "default", "c1"); return err },
		"image":     func() error { _, err := r.imageTarget(ctx, "default", img.name); return err },
		"blob":      func() error { _, err := r.readBlob(ctx, "default", img.manifest); return err },
		"snapshot":  func() error { _, _, err := r.snapshot(ctx, "default", "overlayfs", "c1-snap"); return err },
		"sandbox":   func() error { _, err := r.sandboxContainer(ctx, "default", "sb"); return err },
	} {
		if err := call(); err == nil || !strings.Contains(err.Error(), `namespace "default"`) {
			t.Errorf("%s in namespace default = %v, want the fake's namespace refusal", name, err)
		}
	}
	// A failing containerd fails the look-up (no nil records).
	fake.fail = codes.Unavailable
	if _, err := r.sandboxContainer(ctx, "k8s.io", "sb"); err == nil {
		t.Error("sandbox look-up with containerd failing succeeded")
	}
}

func errorsUnwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

func TestRecordsReadBlob(t *testing.T) {
	fake := newFakeContainerd("k8s.io")
	r := newRecords(fake.serve(t))
	defer r.close()
	ctx := context.Background()
	blob := bytes.Repeat([]byte(`{"manifests":[]}`), 300) // several chunks
	want := fake.addBlob(ocispec.MediaTypeImageIndex, blob)
	got, err := r.readBlob(ctx, "k8s.io", want)
	if err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("readBlob = %d bytes, %v; want the %d bytes", len(got), err, len(blob))
	}
	// Only descriptors that can be a manifest or a config are read.
	for _, bad := range []ocispec.Descriptor{
		{Digest: "sha256:short", Size: 5},
		{Digest: want.Digest, Size: 1 << 40},
		{Digest: want.Digest, Size: -1},
	} {
		if _, err := r.readBlob(ctx, "k8s.io", bad); err == nil {
			t.Errorf("readBlob(%v) succeeded", bad)
		}
	}
	// The content store must return the blob asked for, whole.
	for name, set := range map[string]func(bool){
		"other bytes":   func(b bool) { fake.corrupt = b },
		"chunk missing": func(b bool) { fake.gap = b },
		"too much":      func(b bool) { fake.extra = b },
	} {
		set(true)
		if _, err := r.readBlob(ctx, "k8s.io", want); err == nil {
			t.Errorf("readBlob with %s succeeded", name)
		}
		set(false)
	}
	if _, err := r.readBlob(ctx, "k8s.io", fake.addBlob("x", nil)); err != nil {
		t.Errorf("empty blob: %v", err)
	}
	delete(fake.blobs, want.Digest)
	if _, err := r.readBlob(ctx, "k8s.io", want); err == nil {
		t.Error("a blob the store does not have was read")
	}
}

func TestRecordsWithoutAddress(t *testing.T) {
	r := newRecords("")
	if _, err := r.container(context.Background(), "default", "c"); err == nil || !strings.Contains(err.Error(), "address") {
		t.Errorf("container() without an address = %v", err)
	}
	r.close() // nothing to close
}

func TestImageConfig(t *testing.T) {
	fake := newFakeContainerd("default")
	r := newRecords(fake.serve(t))
	defer r.close()
	ctx := context.Background()
	read := func(ctx context.Context, d ocispec.Descriptor) ([]byte, error) { return r.readBlob(ctx, "default", d) }
	img := fake.addImage(t, "example.com/app:1", "app", []string{"/b", "/a"}, true)
	cfg, platform, err := imageConfig(ctx, read, img.target)
	if err != nil || cfg.Config.User != "app" || platform != img.manifest.Digest {
		t.Fatalf("imageConfig(index) = %+v %s %v; want the linux manifest %s", cfg, platform, err, img.manifest.Digest)
	}
	// An index without this platform, or a target that is not an image.
	idx := ocispec.Index{Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest, Digest: img.manifest.Digest, Size: img.manifest.Size,
		Platform: &ocispec.Platform{OS: "plan9", Architecture: "mips"}}}}
	data, _ := json.Marshal(idx)
	if _, _, err := imageConfig(ctx, read, fake.addBlob(ocispec.MediaTypeImageIndex, data)); err == nil || !strings.Contains(err.Error(), "no manifest for") {
		t.Errorf("index without this platform: %v", err)
	}
	// A manifest without a platform counts when none matches.
	idx.Manifests[0].Platform = nil
	data, _ = json.Marshal(idx)
	if _, p, err := imageConfig(ctx, read, fake.addBlob(ocispec.MediaTypeImageIndex, data)); err != nil || p != img.manifest.Digest {
		t.Errorf("index with a platform-less manifest: %s %v", p, err)
	}
	if _, _, err := imageConfig(ctx, read, ocispec.Descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: img.manifest.Digest, Size: img.manifest.Size}); err == nil {
		t.Error("a layer was read as a manifest")
	}
	if _, _, err := imageConfig(ctx, read, fake.addBlob(ocispec.MediaTypeImageIndex, []byte("{"))); err == nil {
		t.Error("a broken index was accepted")
	}
	if _, _, err := imageConfig(ctx, read, fake.addBlob(ocispec.MediaTypeImageManifest, []byte("{"))); err == nil {
		t.Error("a broken manifest was accepted")
	}
}

// TestRecordsCloseSparesCallsUnderWay: the idle close of the long-running
// shim never cuts a look-up a Create has under way.
func TestRecordsCloseSparesCallsUnderWay(t *testing.T) {
	fake := newFakeContainerd("k8s.io")
	r := newRecords(fake.serve(t))
	conn, err := r.client()
	if err != nil {
		t.Fatal(err)
	}
	r.close()
	if r.conn != conn {
		t.Fatal("close closed the connection of a call under way")
	}
	r.done()
	r.close()
	if r.conn != nil {
		t.Fatal("close left an idle connection open")
	}
	img := fake.addImage(t, "example.com/a:1", "", nil, false)
	fake.addContainer("c", img, img.chainID)
	if _, err := r.container(context.Background(), "k8s.io", "c"); err != nil {
		t.Fatalf("a look-up after close: %v", err)
	}
	if r.inflight != 0 {
		t.Errorf("%d calls under way after the look-up", r.inflight)
	}
	r.close()
}
