package shim

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/process"
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/runc"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/shim"
	runcC "github.com/containerd/go-runc"
	"github.com/containerd/log"
	"golang.org/x/sys/unix"

	"github.com/hardened-runtime/hardened/internal/userns"
	"github.com/hardened-runtime/hardened/spec"
)

// Stop is `shim delete`, which containerd runs after every task once its
// shim has gone (containerd's cleanupAfterDeadShim), on the path of every
// container's deletion. The runc manager's Stop starts with `runc delete
// --force`: a whole runc process (16 ms here) that, after a normal task
// delete, finds nothing to delete, because the task service's Delete
// already had runc remove the container. So when runc keeps no state for
// the container, Stop skips that call and does the rest as the runc
// manager does (unmount the rootfs, report the recorded exit). When runc
// has state (a shim that died with its container running, a create cut
// short), the runc manager's Stop runs unchanged and kills and removes it.
func (m *groupingManager) Stop(ctx context.Context, id string) (shim.StopStatus, error) {
	defer releaseAfterDeadShim(ctx, id)
	defer removeVolumesOfBundle(ctx, id)
	if st, ok := stopWithoutRunc(ctx, id); ok {
		return st, nil
	}
	return m.Shim.Stop(ctx, id)
}

// releaseAfterDeadShim lets container id go of its hold on the range of
// its user namespace (its pod's, or its own outside a pod) after its task
// is gone: `shim delete` runs after every task, and after a normal delete
// the shim has let go already (service.drop), but after a shim died only
// this does. The range goes with its last holder (userns.Allocator.Drop).
func releaseAfterDeadShim(ctx context.Context, id string) {
	cwd, err := os.Getwd()
	if err != nil {
		return
	}
	bundle := filepath.Join(filepath.Dir(cwd), id)
	owner, ok := recordOwner(bundle)
	if !ok || owner.Namespace == "" {
		return
	}
	if ns, err := namespaces.NamespaceRequired(ctx); err != nil || !taskStateGone(bundle, ns, id) {
		log.G(ctx).WithField("id", id).Warn("hardened: runc still has the container: its hold on the range of its user namespace is kept")
		return
	}
	dropHold(ctx, owner, id)
}

// taskStateGone reports whether the runtime keeps no state of container
// id of namespace ns under the root the bundle's runc options name (the
// default one without): the container's processes are gone, whatever
// runtime binary it was given (go-runc passes --root to any). Unreadable
// options: not gone.
func taskStateGone(bundle, ns, id string) bool {
	if !spec.IsPathElement(ns) || !spec.IsPathElement(id) {
		return false
	}
	opts, err := runc.ReadOptions(bundle)
	if err != nil {
		return false
	}
	root := process.RuncRoot
	if opts != nil && opts.Root != "" {
		root = opts.Root
	}
	_, err = os.Lstat(filepath.Join(root, ns, id))
	return errors.Is(err, fs.ErrNotExist)
}

// recordOwner is the owner of the range of the container of bundle, read
// from its record whatever the record's version (ok is false without a
// readable record: not a container of this runtime, or one it refused).
func recordOwner(bundle string) (owner userns.Owner, ok bool) {
	data, err := os.ReadFile(filepath.Join(bundle, RecordFile))
	if err != nil {
		return userns.Owner{}, false
	}
	var rec struct {
		Container containerFacts `json:"container"`
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return userns.Owner{}, false
	}
	return ownerOf(rec.Container.Namespace, rec.Container), true
}

// stopWithoutRunc is the runc manager's Stop (containerd v2.4.2,
// cmd/containerd-shim-runc-v2/manager) without its `runc delete --force`,
// for a container of which runc has no state; ok is false whenever that is
// not certain.
func stopWithoutRunc(ctx context.Context, id string) (shim.StopStatus, bool) {
	cwd, err := os.Getwd()
	if err != nil {
		return shim.StopStatus{}, false
	}
	path := filepath.Join(filepath.Dir(cwd), id)
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return shim.StopStatus{}, false
	}
	if !runcStateGone(path, ns, id) {
		return shim.StopStatus{}, false
	}
	exitedAt := time.Now()
	if err := mount.UnmountRecursive(filepath.Join(path, "rootfs"), 0); err != nil {
		log.G(ctx).WithError(err).Warn("failed to cleanup rootfs mount")
	}
	if exit, err := runc.ReadExitStatus(path); err == nil {
		return shim.StopStatus{ExitedAt: exit.Timestamp, ExitStatus: exit.Status, Pid: exit.Pid}, true
	} else if !errors.Is(err, os.ErrNotExist) {
		log.G(ctx).WithError(err).Warn("failed to read recorded exit status")
	}
	pid, err := runcC.ReadPidFile(filepath.Join(path, process.InitPidFile))
	if err != nil {
		log.G(ctx).WithError(err).Warn("failed to read init pid file")
		pid = 0
	}
	return shim.StopStatus{ExitedAt: exitedAt, ExitStatus: 128 + int(unix.SIGKILL), Pid: pid}, true
}

// runcStateGone reports whether runc certainly has no state for container
// id of namespace ns whose bundle is at path: the runtime binary is runc
// (options can name another, whose state may live elsewhere), and runc's
// state directory, <root>/<ns>/<id> with root from the bundle's runtime
// options as the runc manager reads it, does not exist.
func runcStateGone(path, ns, id string) bool {
	binary, err := runc.ReadRuntime(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if binary = strings.TrimSpace(binary); binary != "" && filepath.Base(binary) != "runc" {
		return false
	}
	return taskStateGone(path, ns, id)
}
