package spec

import (
	"slices"
	"sort"
	"strings"
)

// runcUnsafeAnnotations are the annotations runc v1.5.2 reads as settings
// (its `runc features` lists them as potentiallyUnsafeConfigAnnotations):
// "bundle" overrides the bundle path runc tells hooks and CRIU,
// org.systemd.property.* become properties of the container's systemd unit
// (DeviceAllow=, limits, ...) with the systemd cgroup driver, and
// org.criu.config names a CRIU configuration file (which can run scripts
// as root) for checkpoint and restore.
var runcUnsafeAnnotations = []string{"bundle", "org.criu.config"}

const systemdPropertyPrefix = "org.systemd.property."

// ruleAnnotations refuses the annotations runc reads as privileged settings.
//
// Restricted fields: annotations.
//
// Allowed values: any annotation but bundle, org.criu.config and
// org.systemd.property.* (Kubernetes' and containerd's own annotations are
// metadata to runc).
//
// Otherwise: refused. No level allows them.
func ruleAnnotations(h *hardening) {
	var keys []string
	for k := range h.spec.Annotations {
		if strings.HasPrefix(k, systemdPropertyPrefix) || slices.Contains(runcUnsafeAnnotations, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		h.refuse("annotations["+k+"]", h.spec.Annotations[k], "runc reads this annotation as a privileged setting, not as metadata",
			"remove the annotation; no level allows it")
	}
}
