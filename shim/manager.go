package shim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
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

// Start spawns the long-running shim, as the runc manager does, and runs
// the pipeline for the container while that shim starts up: this process
// lives for one container's start, and the long-running shim's Create
// then finds the record and the hardened config.json in the bundle, so
// that the shim that lives as long as the container never dials
// containerd nor parses the policy for it.
//
// If the pipeline fails (other than by a refusal, which is recorded),
// Create runs it again and returns the error where containerd and the
// kubelet show it: this process has no log (its output is the bootstrap
// protocol).
func (m *groupingManager) Start(ctx context.Context, params *bootapi.BootstrapParams) (*bootapi.BootstrapResult, error) {
	ns := params.GetNamespace()
	if ns == "" {
		ns, _ = namespaces.Namespace(ctx)
	}
	bundle, err := os.Getwd() // containerd starts the shim in the bundle
	if err != nil {
		return nil, err
	}
	// This process lives for one container's start: collecting garbage
	// would only cost it time.
	debug.SetGCPercent(-1)
	own := withOwnSocketDir(params)
	if err := linkSocketDir(bundle, own.GetSocketDir()); err != nil {
		return nil, fmt.Errorf("hardened: %w", err)
	}
	// The pipeline runs on this goroutine, the spawn (mostly a fork and
	// exec, waiting in the kernel) beside it.
	type started struct {
		res *bootapi.BootstrapResult
		err error
	}
	spawn := make(chan started, 1)
	go func() {
		res, err := m.Shim.Start(ctx, own)
		spawn <- started{res, err}
	}()
	var rec *record
	if src, err := startPolicySource(params); err == nil {
		p := newPipeline("shim start", params.GetContainerdGrpcAddress(), execRunner)
		rec, _ = p.run(ctx, request{Namespace: ns, ID: params.GetInstanceID(), Bundle: bundle, Policy: src})
		p.records.close()
	}
	st := <-spawn
	if st.err != nil && rec != nil {
		// No shim, so no Create and no shim delete: the hold the pipeline
		// took on a range is given back here.
		dropHold(namespaces.WithNamespace(ctx, ns), ownerOf(rec.Container.Namespace, rec.Container), params.GetInstanceID())
	}
	return st.res, st.err
}

// startPolicySource is the policy of the container `shim start` is for:
// the runtime options come with the bootstrap parameters.
func startPolicySource(params *bootapi.BootstrapParams) (policySource, error) {
	var ro runtimeoptions.Options
	found, err := params.FindExtension(&ro)
	if err != nil {
		return policySource{}, err
	}
	if found {
		return policySourceFor(ro.ConfigPath), nil
	}
	return policySourceFor(""), nil
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
