package shim

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/containerd/containerd/api/types"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Info answers `shim -info`, which containerd runs to learn a runtime's
// features (the CRI plugin once per handler at start-up, for `crictl info`
// and the kubelet; the task manager again before a task with idmapped
// mounts). containerd writes the handler's options to stdin: for our
// handler the CRI plugin sends runtimeoptions.Options (ConfigPath, the
// policy file), which the runc manager's Info cannot decode
// (ReadRuntimeOptions[*options.Options] fails with "invalid type"), so the
// handler would report no features and the kubelet would refuse
// `hostUsers: false` and `recursiveReadOnly` pods on it.
//
// The containers run with runc exactly as runc's shim runs them, so Info
// reports what runc's shim reports: its name, version and `runc features`:
//   - runtimeoptions.Options: the runc manager is asked without options
//     (runc's default binary, as Create runs it for such a handler), and
//     the options are reported back as they came, as runc's shim does
//     with its own;
//   - runc's options.Options (BinaryName, ...): passed to the runc manager
//     unchanged;
//   - no options: the runc manager's answer unchanged;
//   - anything else fails, as Create would refuse it.
func (m *groupingManager) Info(ctx context.Context, optionsR io.Reader) (*types.RuntimeInfo, error) {
	data, err := io.ReadAll(optionsR)
	if err != nil {
		return nil, fmt.Errorf("hardened: read runtime options from stdin: %w", err)
	}
	if len(data) == 0 {
		return m.Shim.Info(ctx, bytes.NewReader(nil))
	}
	var a anypb.Any
	if err := proto.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("hardened: runtime options on stdin: %w", err)
	}
	v, err := typeurl.UnmarshalAny(&a)
	if err != nil {
		return nil, fmt.Errorf("hardened: runtime options of type %q: %w", a.GetTypeUrl(), err)
	}
	switch v.(type) {
	case *runcoptions.Options:
		return m.Shim.Info(ctx, bytes.NewReader(data))
	case *runtimeoptions.Options:
		info, err := m.Shim.Info(ctx, bytes.NewReader(nil))
		if err != nil {
			return nil, err
		}
		info.Options = &a
		return info, nil
	}
	return nil, fmt.Errorf("hardened: runtime options of type %T are not supported (want runtimeoptions.Options with ConfigPath, or runc options): %w", v, errdefs.ErrInvalidArgument)
}
