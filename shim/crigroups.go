package shim

import (
	"encoding/json"
	"fmt"
	"math"
)

// CRIMetadataExtension is the extension of containerd's container record in
// which the CRI plugin keeps what it knows of a container it created,
// the kubelet's CRI ContainerConfig included (containerd's
// internal/cri/store/container.Metadata, JSON, version "v1").
const CRIMetadataExtension = "io.cri-containerd.container.metadata"

// criMetadata is the part of that record the shim reads: the CRI config's
// supplementalGroups (the pod's supplementalGroups and fsGroup, as the
// kubelet sends them, whatever its supplementalGroupsPolicy). The field
// names are those encoding/json gives the record (the CRI types' json
// tags); the CRI API's generated types are not imported, to keep their
// descriptors out of every shim process.
type criMetadata struct {
	Version  string
	Metadata struct {
		Config *struct {
			Image *struct {
				UserSpecifiedImage string `json:"user_specified_image"`
			} `json:"image"`
			Linux *struct {
				SecurityContext *struct {
					SupplementalGroups []int64 `json:"supplemental_groups"`
				} `json:"security_context"`
			} `json:"linux"`
		}
	}
}

// criSupplementalGroups returns the supplementary groups a CRI container's
// config asked for, from the value of its CRIMetadataExtension: what the
// user rule keeps when it moves a root process to the level's user
// (spec.ContainerInfo.SupplementalGroups). known is false when there is
// no such record (not a CRI container); then no group is kept. A record
// that cannot be read is an error: the caller treats the groups as
// unknown, which only drops groups.
func criSupplementalGroups(value []byte) (groups []uint32, known bool, err error) {
	if len(value) == 0 {
		return nil, false, nil
	}
	var md criMetadata
	if err := json.Unmarshal(value, &md); err != nil {
		return nil, false, fmt.Errorf("CRI container record %s: %w", CRIMetadataExtension, err)
	}
	if md.Version != "v1" {
		return nil, false, fmt.Errorf("CRI container record %s: version %q, want v1", CRIMetadataExtension, md.Version)
	}
	if md.Metadata.Config == nil {
		return nil, false, fmt.Errorf("CRI container record %s has no config", CRIMetadataExtension)
	}
	if md.Metadata.Config.Linux == nil || md.Metadata.Config.Linux.SecurityContext == nil {
		return nil, true, nil
	}
	for _, g := range md.Metadata.Config.Linux.SecurityContext.SupplementalGroups {
		// containerd converts with uint32(g): a value out of range would
		// name another group; such a group is not kept.
		if g < 0 || g > math.MaxUint32-1 {
			continue
		}
		groups = append(groups, uint32(g))
	}
	return groups, true, nil
}

// criUserSpecifiedImage returns the image reference a CRI container's config
// named (the pod spec's image, CRI's user_specified_image), from the value
// of its CRIMetadataExtension; "" when there is none or it cannot be read.
func criUserSpecifiedImage(value []byte) string {
	if len(value) == 0 {
		return ""
	}
	var md criMetadata
	if json.Unmarshal(value, &md) != nil || md.Version != "v1" || md.Metadata.Config == nil || md.Metadata.Config.Image == nil {
		return ""
	}
	return md.Metadata.Config.Image.UserSpecifiedImage
}
