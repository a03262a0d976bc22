package shim

import (
	"context"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/observe/event"
	"github.com/hardened-runtime/hardened/observe/execaudit"
)

// execContainer names the container of an exec for its audit event: the
// request's namespace, the id, the level and CRI's names from its spec.
func (s *service) execContainer(ctx context.Context, c *hardenedContainer, id string, container *specs.Spec) event.Container {
	ns, _ := namespaces.Namespace(ctx)
	return execaudit.ContainerOf(ns, id, c.levelName, container.Annotations)
}
