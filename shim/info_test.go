package shim

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// fakeRuntime writes an executable that answers `features` with the given
// mount options, the way `runc features` does.
func fakeRuntime(t *testing.T, dir, name, mountOption string) string {
	t.Helper()
	script := `#!/bin/sh
[ "$1" = features ] || exit 2
echo '{"ociVersionMin":"1.0.0","ociVersionMax":"1.3.0","mountOptions":["ro","` + mountOption + `"],"linux":{"namespaces":["user","mount"],"mountExtensions":{"idmap":{"enabled":true}}}}'
`
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func marshalOptions(t *testing.T, v any) []byte {
	t.Helper()
	a, err := typeurl.MarshalAnyToProto(v)
	if err != nil {
		t.Fatal(err)
	}
	data, err := proto.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func infoFeatures(t *testing.T, stdin []byte) (*features.Features, *anypb.Any, error) {
	t.Helper()
	info, err := NewManager().Info(context.Background(), bytes.NewReader(stdin))
	if err != nil {
		return nil, nil, err
	}
	if info.GetName() != RuntimeName {
		t.Errorf("Info name %q, want %q", info.GetName(), RuntimeName)
	}
	if info.GetFeatures() == nil {
		t.Fatalf("Info reported no features")
	}
	v, err := typeurl.UnmarshalAny(info.GetFeatures())
	if err != nil {
		t.Fatal(err)
	}
	f, ok := v.(*features.Features)
	if !ok {
		t.Fatalf("features of type %T", v)
	}
	return f, info.GetOptions(), nil
}

func TestInfo(t *testing.T) {
	dir := t.TempDir()
	fakeRuntime(t, dir, "runc", "rro")
	other := fakeRuntime(t, dir, "other-runc", "rbind")
	t.Setenv("PATH", dir)

	cri := marshalOptions(t, &runtimeoptions.Options{TypeUrl: "io.containerd.hardened.v2.options", ConfigPath: "/etc/hardened/policy.yaml"})
	f, opts, err := infoFeatures(t, cri)
	if err != nil {
		t.Fatalf("Info(runtimeoptions.Options) = %v, want runc's features (what the CRI plugin sends for ConfigPath)", err)
	}
	if !slices.Contains(f.MountOptions, "rro") || !slices.Contains(f.Linux.Namespaces, "user") {
		t.Errorf("Info(runtimeoptions.Options) features %+v, want those of `runc features`", f)
	}
	var ro runtimeoptions.Options
	if err := typeurl.UnmarshalTo(opts, &ro); err != nil || ro.ConfigPath != "/etc/hardened/policy.yaml" {
		t.Errorf("Info(runtimeoptions.Options) options %v (%v), want the ones given", opts, err)
	}

	f, opts, err = infoFeatures(t, nil)
	if err != nil || !slices.Contains(f.MountOptions, "rro") || opts != nil {
		t.Errorf("Info(no options) = %+v, %v, %v; want runc's features and no options", f, opts, err)
	}

	f, opts, err = infoFeatures(t, marshalOptions(t, &runcoptions.Options{BinaryName: other}))
	if err != nil || !slices.Contains(f.MountOptions, "rbind") || slices.Contains(f.MountOptions, "rro") {
		t.Errorf("Info(runc options with BinaryName) = %+v, %v; want the features of that binary", f, err)
	}
	var rc runcoptions.Options
	if err := typeurl.UnmarshalTo(opts, &rc); err != nil || rc.BinaryName != other {
		t.Errorf("Info(runc options) options %v (%v), want them reported back", opts, err)
	}

	if _, _, err := infoFeatures(t, marshalOptions(t, durationpb.New(5))); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("Info(other options type) = %v, want an error", err)
	}
	if _, _, err := infoFeatures(t, []byte{0xff, 0x01}); err == nil {
		t.Error("Info(garbage on stdin) succeeded")
	}
}
