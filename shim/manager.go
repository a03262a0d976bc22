package shim

import (
	"context"
	"path/filepath"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/manager"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/shim"
	"google.golang.org/protobuf/proto"
)

// RuntimeName is the runtime type containerd knows this shim by.
const RuntimeName = "io.containerd.hardened.v2"

// NewManager returns the shim manager: containerd's runc manager with our
// own socket directory.
func NewManager() shim.Shim {
	return &groupingManager{Shim: manager.NewShimManager(RuntimeName)}
}

// groupingManager keeps hardened shims apart from runc shims.
//
// The runc manager's Start puts every container that carries
// io.containerd.runc.v2.group or io.kubernetes.cri.sandbox-id into one shim
// process, found by a socket whose name hashes (containerd address,
// namespace, group id) without the runtime name. A hardened container whose
// group already had a plain runc shim would be handed to that shim and run
// unhardened. Start therefore gives the runc manager a socket directory of
// our own (<socket dir>/hardened): same hash, other directory, so hardened
// containers group only with hardened ones, and pod grouping among them
// keeps working. The spec and the rest of Start stay untouched.
type groupingManager struct {
	shim.Shim
}

// socketSubdir is the directory below containerd's shim socket directory
// that holds the sockets of hardened shims.
const socketSubdir = "hardened"

func (m *groupingManager) Start(ctx context.Context, params *bootapi.BootstrapParams) (*bootapi.BootstrapResult, error) {
	return m.Shim.Start(ctx, withOwnSocketDir(params))
}

func withOwnSocketDir(params *bootapi.BootstrapParams) *bootapi.BootstrapParams {
	p := proto.Clone(params).(*bootapi.BootstrapParams)
	dir := p.GetSocketDir()
	if dir == "" {
		dir = filepath.Join(defaults.DefaultStateDir, "s")
	}
	dir = filepath.Join(dir, socketSubdir)
	p.SocketDir = &dir
	return p
}
