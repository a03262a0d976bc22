package shim

import (
	"context"
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

// releaseAfterDeadShim gives back the user namespace range that container
// id ran in (its pod's, or its own outside a pod) when its shim died
// before the task was deleted (after a normal delete the shim has released
// it, and this finds nothing to release), unless another container of the
// same owner is still known to runc in this namespace: the range goes back
// with the last of them, whichever `shim delete` comes last.
func releaseAfterDeadShim(ctx context.Context, id string) {
	cwd, err := os.Getwd()
	if err != nil {
		return
	}
	nsDir := filepath.Dir(cwd)
	rec := readRecordAnyPolicy(filepath.Join(nsDir, id))
	if rec == nil || rec.Refusal != nil {
		return
	}
	owner := ownerOf(rec.Container.Namespace, rec.Container)
	if owner.Namespace == "" || (owner.ID != id && rec.UserNamespace == nil) {
		return
	}
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return
	}
	a, err := userns.FromEnv()
	if err == nil {
		// After a normal delete the shim has released it: no scan.
		var has bool
		if has, err = a.Has(owner); err == nil && !has {
			return
		}
	}
	if other, ok := ownerStillRuns(nsDir, ns, id, owner); ok {
		log.G(ctx).WithField("id", id).WithField("still running", other).Info("hardened: the user namespace range of " + owner.String() + " is kept for the owner's other container")
		return
	}
	if err == nil {
		err = a.Release(owner)
	}
	if err != nil {
		log.G(ctx).WithError(err).WithField("id", id).Warn("hardened: release the user namespace range of " + owner.String())
	}
}

// ownerStillRuns returns a container other than id, of the same owner, of
// which runc still keeps state (a bundle in nsDir, containerd's state
// directory of namespace ns).
func ownerStillRuns(nsDir, ns, id string, owner userns.Owner) (string, bool) {
	entries, err := os.ReadDir(nsDir)
	if err != nil {
		return "", false
	}
	for _, e := range entries {
		if !e.IsDir() || e.Name() == id {
			continue
		}
		path := filepath.Join(nsDir, e.Name())
		rec := readRecordAnyPolicy(path)
		if rec == nil || ownerOf(rec.Container.Namespace, rec.Container) != owner {
			continue
		}
		if !runcStateGone(path, ns, e.Name()) {
			return e.Name(), true
		}
	}
	return "", false
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
	opts, err := runc.ReadOptions(path)
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
