package shim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/manager"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/namespaces"
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

// Start also looks up, in this short-lived process, the image the
// container runs and leaves the facts in the bundle (ImageFile) for Create.
// The long-running shim then never loads the gRPC client: it stays smaller,
// and pays for nothing it does not need.
func (m *groupingManager) Start(ctx context.Context, params *bootapi.BootstrapParams) (*bootapi.BootstrapResult, error) {
	ns := params.GetNamespace()
	if ns == "" {
		ns, _ = namespaces.Namespace(ctx)
	}
	bundle, err := os.Getwd() // containerd starts the shim in the bundle
	if err != nil {
		return nil, err
	}
	if err := Prepare(ctx, params.GetContainerdGrpcAddress(), ns, params.GetInstanceID(), bundle); err != nil {
		return nil, fmt.Errorf("hardened: container %s: %w", params.GetInstanceID(), err)
	}
	own := withOwnSocketDir(params)
	if err := linkSocketDir(bundle, own.GetSocketDir()); err != nil {
		return nil, fmt.Errorf("hardened: %w", err)
	}
	return m.Shim.Start(ctx, own)
}

// socketDirLink is the symlink in the bundle by which the long-running shim
// finds its socket directory when it exits (pkg/shim's cleanupSockets). The
// shim package points it at containerd's directory, or leaves it out when
// containerd passes none and the default applies; either way the shim would
// look for its socket in the wrong place and leave ours behind, one per
// container. Pointing it at our directory makes the shim remove its own.
const socketDirLink = "s"

func linkSocketDir(bundle, dir string) error {
	link := filepath.Join(bundle, socketDirLink)
	if err := os.Remove(link); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("replace socket dir link: %w", err)
	}
	if err := os.Symlink(dir, link); err != nil {
		return fmt.Errorf("link socket dir: %w", err)
	}
	return nil
}

// ImageFile is where Start leaves the image facts in the bundle.
const ImageFile = "hardened-image.json"

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
