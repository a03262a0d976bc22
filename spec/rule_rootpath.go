package spec

import (
	"path/filepath"
)

// ruleRootPath makes the container run the root filesystem containerd
// prepared in its bundle, not a directory of the host the spec names.
//
// Restricted fields: root.path.
//
// Allowed values: "rootfs" (relative paths are the bundle's for runc; this
// is what containerd writes) or <bundle>/rootfs, where <bundle> is the
// bundle the runtime was given (Inputs.Container.Bundle).
//
// Otherwise: refused, with every policy. A root.path elsewhere would make
// any host directory (/ included) the container's root filesystem, and
// run something other than the image whose signature was checked.
func ruleRootPath(h *hardening) {
	p := h.spec.Root.Path
	if filepath.Clean(p) == "rootfs" {
		return
	}
	bundle := h.in.Container.Bundle
	if bundle != "" && filepath.IsAbs(p) && filepath.Clean(p) == filepath.Join(bundle, "rootfs") {
		return
	}
	why := "the root filesystem must be the bundle's rootfs, which containerd prepared from the image"
	if bundle == "" && filepath.IsAbs(p) {
		why += " (the bundle is not known here, so only the relative path rootfs is)"
	}
	h.refuse("root.path", p, why, "let containerd prepare the root filesystem (no ctr run --rootfs); no level allows another root path")
}
