// Command containerd-shim-hardened-v2 is the hardened runtime's shim:
// containerd's runc shim with every container's spec hardened first.
package main

import (
	"context"

	containerdshim "github.com/containerd/containerd/v2/pkg/shim"

	"github.com/hardened-runtime/hardened/shim"
)

func main() {
	containerdshim.RunShim(context.Background(), shim.NewManager())
}
