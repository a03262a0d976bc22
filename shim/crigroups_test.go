package shim

import (
	"encoding/json"
	"slices"
	"testing"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criRecord encodes a CRI config as containerd's CRI plugin records it
// (internal/cri/store/container.Metadata.MarshalJSON: a versioned wrapper
// around the metadata, the CRI types encoded by encoding/json).
func criRecord(t *testing.T, version string, cfg *runtime.ContainerConfig) []byte {
	t.Helper()
	data, err := json.Marshal(struct {
		Version  string
		Metadata struct {
			ID, Name, SandboxID string
			Config              *runtime.ContainerConfig
		}
	}{Version: version, Metadata: struct {
		ID, Name, SandboxID string
		Config              *runtime.ContainerConfig
	}{"c1", "app", "sb", cfg}})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestCRISupplementalGroups(t *testing.T) {
	withGroups := func(policy runtime.SupplementalGroupsPolicy, groups ...int64) *runtime.ContainerConfig {
		return &runtime.ContainerConfig{
			Metadata: &runtime.ContainerMetadata{Name: "app"},
			Image:    &runtime.ImageSpec{Image: "busybox"},
			Linux: &runtime.LinuxContainerConfig{SecurityContext: &runtime.LinuxContainerSecurityContext{
				SupplementalGroups: groups, SupplementalGroupsPolicy: policy,
				RunAsUser: &runtime.Int64Value{Value: 0},
			}},
		}
	}
	for _, tc := range []struct {
		name   string
		value  []byte
		groups []uint32
		known  bool
		err    bool
	}{
		{"not a CRI container", nil, nil, false, false},
		{"pod groups and fsGroup", criRecord(t, "v1", withGroups(runtime.SupplementalGroupsPolicy_Merge, 1234, 5678, 2000)), []uint32{1234, 5678, 2000}, true, false},
		{"strict policy", criRecord(t, "v1", withGroups(runtime.SupplementalGroupsPolicy_Strict, 1234)), []uint32{1234}, true, false},
		{"out of range", criRecord(t, "v1", withGroups(runtime.SupplementalGroupsPolicy_Merge, -1, 1<<32, 1<<32-1, 7)), []uint32{7}, true, false},
		{"no security context", criRecord(t, "v1", &runtime.ContainerConfig{Metadata: &runtime.ContainerMetadata{Name: "app"}}), nil, true, false},
		{"no config", criRecord(t, "v1", nil), nil, false, true},
		{"other version", criRecord(t, "v2", withGroups(runtime.SupplementalGroupsPolicy_Merge, 1)), nil, false, true},
		{"not JSON", []byte("{"), nil, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			groups, known, err := criSupplementalGroups(tc.value)
			if !slices.Equal(groups, tc.groups) || known != tc.known || (err != nil) != tc.err {
				t.Errorf("criSupplementalGroups(%s) = %v, %v, %v; want %v, %v, error %v", tc.value, groups, known, err, tc.groups, tc.known, tc.err)
			}
		})
	}
}
