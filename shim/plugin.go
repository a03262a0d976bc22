package shim

import (
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/task"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"

	"github.com/hardened-runtime/hardened/observe/execaudit"
)

// init registers the shim's TTRPC task service: the runc task service,
// wrapped. It takes the place of containerd's task/plugin package, which
// must not be imported as well (a second "task" registration panics).
func init() {
	registry.Register(&plugin.Registration{
		Type:     plugins.TTRPCPlugin,
		ID:       "task",
		Requires: []plugin.Type{plugins.EventPlugin, plugins.InternalPlugin},
		InitFn: func(ic *plugin.InitContext) (any, error) {
			pp, err := ic.GetByID(plugins.EventPlugin, "publisher")
			if err != nil {
				return nil, err
			}
			ss, err := ic.GetByID(plugins.InternalPlugin, "shutdown")
			if err != nil {
				return nil, err
			}
			// The task service's events pass the exit watch, which
			// explains early exits before containerd hears of them.
			exits := newExitWatch(pp.(shim.Publisher))
			runc, err := task.NewTaskService(ic.Context, exits, ss.(shutdown.Service))
			if err != nil {
				return nil, err
			}
			s := newService(runc, ic.Properties[plugins.PropertyGRPCAddress])
			s.events = execaudit.NewPublisher(pp.(shim.Publisher))
			exits.lookup = s.lookup
			return s, nil
		},
	})
}
