package userns

import (
	"fmt"
	"strings"
	"syscall"
)

// KernelIDMapsOverlay reports whether the running kernel idmaps
// overlayfs's lower layers (Linux 5.19 or later), which containerd's
// mount code needs to show a container its root filesystem through an
// idmapped mount.
func KernelIDMapsOverlay() bool {
	return kernelAtLeast(5, 19)
}

// kernelAtLeast reports whether the running kernel's release is at least
// major.minor.
func kernelAtLeast(major, minor int) bool {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return false
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return releaseAtLeast(b.String(), major, minor)
}

// releaseAtLeast reports whether a kernel release string (6.18.0-1-amd64)
// is at least major.minor.
func releaseAtLeast(release string, major, minor int) bool {
	var maj, min int
	if n, _ := fmt.Sscanf(release, "%d.%d", &maj, &min); n != 2 {
		return false
	}
	return maj > major || (maj == major && min >= minor)
}
