package shim

import (
	"fmt"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/anypb"
)

// createOptions is what Create takes from a request's options.
type createOptions struct {
	// PolicyPath is runtimeoptions' ConfigPath; "" otherwise.
	PolicyPath string
	// Runc is what the runc task service gets: its own options type or
	// nothing. Anything else makes it panic (v.(*options.Options)).
	Runc *anypb.Any
}

// decodeOptions accepts what containerd sends a shim:
//   - runtimeoptions.Options{TypeUrl, ConfigPath, ConfigBody}, which the CRI
//     plugin (and ctr --runtime-config-path) send to a runtime type other
//     than runc: ConfigPath is the policy file; runc gets no options;
//   - runc's own options.Options (ctr, or CRI with runc-style options such
//     as SystemdCgroup): passed to runc as they are; the policy file then
//     comes from $HARDENED_POLICY or the default path;
//   - nothing.
//
// Any other type is an error: failing closed beats guessing.
func decodeOptions(opts *anypb.Any) (createOptions, error) {
	if opts.GetValue() == nil && opts.GetTypeUrl() == "" {
		return createOptions{}, nil
	}
	v, err := typeurl.UnmarshalAny(opts)
	if err != nil {
		return createOptions{}, fmt.Errorf("runtime options of type %q: %w", opts.GetTypeUrl(), err)
	}
	switch o := v.(type) {
	case *runtimeoptions.Options:
		return createOptions{PolicyPath: o.ConfigPath}, nil
	case *runcoptions.Options:
		return createOptions{Runc: opts}, nil
	case nil:
		return createOptions{}, nil
	}
	return createOptions{}, fmt.Errorf("runtime options of type %T are not supported (want runtimeoptions.Options with ConfigPath, or runc options)", v)
}
