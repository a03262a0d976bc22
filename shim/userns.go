package shim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/internal/userns"
	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/spec"
)

// Root in a user namespace of its own (level key user.namespace): the
// engine decides it (spec/userns.go); the shim does what only the node
// can:
//
//   - reserve the pod's range of host ids (internal/userns), before the
//     engine runs, for a root container of a level that wants one;
//   - record a range a pod brought itself (hostUsers: false), so that
//     none is handed out over it, and refuse one over another pod's;
//   - let the container's root reach its bundle (group of the range, mode
//     0710, as containerd does for a user-namespaced pod);
//   - at Create, after the task was checked against the record, show the
//     container its root filesystem through an idmapped mount: the
//     rootfs mounts get containerd's uidmap= and gidmap= options (its mount
//     code then idmaps the overlay's lower layers), and the overlay's upper
//     directory, which holds the root directory's owner, is given the
//     range's root;
//   - release the range when the pod's sandbox, or the container outside a
//     pod, is deleted.

// usernsRecord is the user namespace of a container, in its record.
type usernsRecord struct {
	// Owner is who the range belongs to: the pod (its sandbox's id) or the
	// container outside a pod.
	Owner userns.Owner `json:"owner"`
	// HostID and Size are the range: the container's ids 0 to Size-1.
	HostID uint32 `json:"hostID"`
	Size   uint32 `json:"size"`
	// Given is true when the shim gave the container this user namespace:
	// Create idmaps its root filesystem.
	Given bool `json:"given,omitempty"`
	// Own is true for a pod's own (hostUsers: false), which containerd set
	// up and the shim only recorded.
	Own bool `json:"own,omitempty"`
	// Rootfs says what Create does to the task's root filesystem.
	Rootfs string `json:"rootfs,omitempty"`
}

func (u *usernsRecord) mapping() string {
	return "0:" + strconv.FormatUint(uint64(u.HostID), 10) + ":" + strconv.FormatUint(uint64(u.Size), 10)
}

// ownerOf is who a container's range belongs to: its pod, or itself.
func ownerOf(ns string, c containerFacts) userns.Owner {
	if c.SandboxID != "" {
		return userns.Owner{Namespace: ns, ID: c.SandboxID}
	}
	return userns.Owner{Namespace: ns, ID: c.ID}
}

// allocator returns the node's range allocator, which reclaims a leaked
// range only when containerd's records no longer have its owner.
func (p *pipeline) allocator(ctx context.Context, bundle string) (*userns.Allocator, error) {
	a, err := userns.FromEnv()
	if err != nil {
		return nil, err
	}
	// Alive: the container's bundle in containerd's task directory (there
	// while its task is, whatever runc options it was given), or its
	// record (a client may delete a record whose task runs on).
	taskDir := filepath.Dir(filepath.Dir(bundle))
	a.Alive = func(o userns.Owner) (bool, error) {
		if spec.IsPathElement(o.Namespace) && spec.IsPathElement(o.ID) {
			if _, err := os.Lstat(filepath.Join(taskDir, o.Namespace, o.ID)); err == nil {
				return true, nil
			}
		}
		_, err := p.records.container(ctx, o.Namespace, o.ID)
		if err != nil && errdefs.IsNotFound(errgrpc.ToNative(errors.Unwrap(err))) {
			return false, nil
		}
		return err == nil, err
	}
	return a, nil
}

// reserveUserNamespace runs before the engine: for a root process of a
// level that runs root in a user namespace, it reserves the pod's range
// (or says in inputs why there is none), or records and checks the range
// a pod brought itself. It returns a refusal only for a pod's own range
// that collides with another's.
//
// Under audit, which changes nothing, a range is reserved only for the
// engine to say what enforce would do (settleUserNamespace releases it),
// and a pod's own range that collides is a violation, not a refusal.
func (p *pipeline) reserveUserNamespace(ctx context.Context, req request, rec *record, d *policy.Decision, in *specs.Spec, inputs *spec.Inputs) error {
	level := d.Level
	if in.Linux == nil {
		return nil
	}
	owner := ownerOf(req.Namespace, rec.Container)
	// A pod's own user namespace is recorded whoever runs in it and
	// whatever the level, so that no range is handed out over it.
	if len(in.Linux.UIDMappings) > 0 || len(in.Linux.GIDMappings) > 0 {
		v, err := p.recordOwnUserNamespace(ctx, owner, rec, in, req.Bundle)
		if v == nil || err != nil {
			return err
		}
		if d.Mode == policy.Audit {
			rec.Violations = append(rec.Violations, *v)
			return nil
		}
		return refuse(errFailedPrecondition, "%v", &spec.RefusedError{Level: level.Name, Violations: []spec.Violation{*v}})
	}
	c := &inputs.Container
	if c.SandboxID != "" && c.SandboxID == c.ID {
		// The sandbox keeps the host's user namespace, but holds the pod's
		// range for the pod's life: a container of the pod that restarts
		// gets it again, with the owners of the files it left in the
		// pod's volumes. Only the sandbox's own delete lets go of it.
		if level.User.UsesUserNamespace() && inputs.Host.IDMappedMounts && d.Mode != policy.Audit {
			a, err := p.allocator(ctx, req.Bundle)
			if err == nil {
				_, err = a.Reserve(owner, req.ID)
			}
			if err != nil {
				log.G(ctx).WithError(err).WithField("id", req.ID).Warn("hardened: reserve the pod's range of host ids")
			}
		}
		return nil
	}
	if !level.User.UsesUserNamespace() || in.Process == nil || in.Process.User.UID != 0 {
		return nil
	}
	if !inputs.Host.IDMappedMounts {
		return nil // the engine says why
	}
	if why := p.idmappableRootfs(ctx, req, rec); why != "" {
		c.UserNamespaceUnavailable = why
		return nil
	}
	if why := searchableBy(req.Bundle); why != "" {
		c.UserNamespaceUnavailable = why
		return nil
	}
	a, err := p.allocator(ctx, req.Bundle)
	if err == nil {
		var e userns.Entry
		if e, err = a.Reserve(owner, req.ID); err == nil {
			c.UserNamespace = spec.IDRange{HostID: e.HostID, Size: e.Size}
			rec.UserNamespace = &usernsRecord{Owner: owner, HostID: e.HostID, Size: e.Size}
			return nil
		}
	}
	c.UserNamespaceUnavailable = "no range of host ids: " + err.Error()
	return nil
}

// recordOwnUserNamespace records the range of a pod that brought its own
// user namespace (hostUsers: false: the kubelet picks it). A range that
// overlaps one reserved for another pod or holds a host user's id is not
// recorded: it returns the violation (rule user-namespace), which the
// caller refuses.
func (p *pipeline) recordOwnUserNamespace(ctx context.Context, owner userns.Owner, rec *record, in *specs.Spec, bundle string) (*spec.Violation, error) {
	a, err := p.allocator(ctx, bundle)
	if err != nil {
		return nil, refuse(errFailedPrecondition, "user namespace: %v", err)
	}
	all := slices.Concat(in.Linux.UIDMappings, in.Linux.GIDMappings)
	if slices.ContainsFunc(all, func(m specs.LinuxIDMapping) bool { return m.HostID == 0 }) {
		return nil, nil // the engine refuses it (rule user-namespace)
	}
	for i, ms := range [][]specs.LinuxIDMapping{in.Linux.UIDMappings, in.Linux.GIDMappings} {
		field := [...]string{"linux.uidMappings", "linux.gidMappings"}[i]
		for _, m := range ms {
			if err := a.Record(owner, m.HostID, m.Size, rec.Container.ID); err != nil {
				_ = a.Drop(owner, rec.Container.ID) // what this container recorded before
				return &spec.Violation{Rule: "user-namespace", Field: field, Value: fmt.Sprintf("%d:%d:%d", m.ContainerID, m.HostID, m.Size), Refused: true,
					Reason: "the pod's own user namespace would share host ids with another: " + err.Error(),
					Fix:    "give the kubelet subordinate ids for pods (/etc/subuid and /etc/subgid entries for user kubelet) that hold no host user's id and lie outside the runtime's window (" + userns.RangeEnv + "), or narrow that window"}, nil
			}
		}
	}
	m := in.Linux.UIDMappings
	if len(m) > 0 {
		rec.UserNamespace = &usernsRecord{Owner: owner, HostID: m[0].HostID, Size: m[0].Size, Own: true}
	}
	return nil, nil
}

// idmappableRootfs reads the container's rootfs snapshot and says why it
// cannot be shown through an idmapped mount, or "".
func (p *pipeline) idmappableRootfs(ctx context.Context, req request, rec *record) string {
	img := &rec.Image
	if img.SnapshotKey == "" {
		return "the container has no rootfs snapshot of containerd's to idmap"
	}
	if img.SnapshotMounts == nil {
		parent, mounts, err := p.records.snapshot(ctx, req.Namespace, img.Snapshotter, img.SnapshotKey)
		if err != nil {
			return "its rootfs snapshot cannot be read: " + err.Error()
		}
		img.SnapshotParent, img.SnapshotMounts = parent, mounts
	}
	if len(img.SnapshotMounts) != 1 {
		return fmt.Sprintf("its rootfs is %d mounts (snapshotter %s); the runtime idmaps one overlay or bind mount", len(img.SnapshotMounts), img.Snapshotter)
	}
	m := img.SnapshotMounts[0]
	var dirs []string
	switch {
	case m.Type == "overlay":
		for _, o := range m.Options {
			if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
				dirs = append(dirs, strings.Split(v, ":")...)
			}
			if strings.HasPrefix(o, "uidmap=") || strings.HasPrefix(o, "gidmap=") {
				return "its rootfs snapshot is idmapped already"
			}
		}
	case m.Type == "bind" || slices.Contains(m.Options, "rbind") || slices.Contains(m.Options, "bind"):
		dirs = []string{m.Source}
	}
	if len(dirs) == 0 {
		return "its rootfs is a " + m.Type + " mount (snapshotter " + img.Snapshotter + "); the runtime idmaps overlay and bind mounts"
	}
	for _, d := range dirs {
		var st syscall.Statfs_t
		if err := syscall.Statfs(d, &st); err != nil {
			return "its rootfs layer " + d + " cannot be read: " + err.Error()
		}
		if !idmapFS[int64(st.Type)] {
			return fmt.Sprintf("its rootfs layers are on a filesystem (type %#x) that has no idmapped mounts", st.Type)
		}
	}
	return ""
}

// idmapFS are the filesystems (statfs f_type) a snapshot's layers may be
// on to be idmapped: those that support idmapped mounts on Linux 6.x.
var idmapFS = map[int64]bool{
	0xef53:     true, // ext2/3/4
	0x58465342: true, // xfs
	0x9123683e: true, // btrfs
	0x01021994: true, // tmpfs
	0xf2f52010: true, // f2fs
	0xe0f5e1e2: true, // erofs
}

// searchableBy says why the container's root, a host id of its range,
// could not reach the bundle's rootfs, or "": every directory above the
// bundle must let others through (containerd's state directory at mode
// 0711, as a user-namespaced pod needs it too).
func searchableBy(bundle string) string {
	for d := filepath.Dir(filepath.Clean(bundle)); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return "its bundle's directory " + d + " cannot be read: " + err.Error()
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Sprintf("the directory %s above its bundle has mode %#o: the container's root, a host id of its own, could not reach its root filesystem (give containerd's state directory mode 0711)", d, fi.Mode().Perm())
		}
		if d == "/" {
			return ""
		}
	}
}

// settleUserNamespace runs after the engine: the container that got the
// range gets its bundle opened to it and its record says what Create will
// do; a range reserved for a container that did not take it is released
// (a pod's stays for its other containers).
func (p *pipeline) settleUserNamespace(ctx context.Context, req request, rec *record, out *specs.Spec) error {
	u := rec.UserNamespace
	if u == nil || u.Own {
		return nil
	}
	want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: u.HostID, Size: u.Size}}
	if out != nil && out.Linux != nil && slices.Equal(out.Linux.UIDMappings, want) && slices.Equal(out.Linux.GIDMappings, want) &&
		slices.ContainsFunc(out.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace && n.Path == "" }) {
		u.Given = true
		u.Rootfs = "idmapped: uidmap=" + u.mapping() + " gidmap=" + u.mapping()
		if m := rec.Image.SnapshotMounts[0]; m.Type == "overlay" {
			u.Rootfs += "; its upper directory owned by " + strconv.FormatUint(uint64(u.HostID), 10)
		}
		// As containerd prepares a user-namespaced pod's bundle
		// (core/runtime/v2/bundle_linux.go): the range's root group may
		// enter it.
		if err := os.Chown(req.Bundle, -1, int(u.HostID)); err != nil {
			return fmt.Errorf("open the bundle to the container's user namespace: %w", err)
		}
		if err := os.Chmod(req.Bundle, 0o710); err != nil {
			return fmt.Errorf("open the bundle to the container's user namespace: %w", err)
		}
		return nil
	}
	rec.UserNamespace = nil
	if !taskStateGone(req.Bundle, req.Namespace, req.ID) {
		return nil // a task of that id runc still has holds it
	}
	a, err := p.allocator(ctx, req.Bundle)
	if err == nil {
		err = a.Drop(u.Owner, req.ID) // a pod's stays for its other holders
	}
	if err != nil {
		return fmt.Errorf("release the unused range of host ids %d: %w", u.HostID, err)
	}
	return nil
}

func optionValue(opts []string, key string) string {
	for _, o := range opts {
		if v, ok := strings.CutPrefix(o, key+"="); ok {
			return v
		}
	}
	return ""
}

// idmapRootfs makes the task's root filesystem the snapshot's seen
// through an idmapped mount for the container's user namespace. It runs
// after checkTask: the rootfs mounts must be the snapshot's the record
// names (a client may send others), and are changed only here.
func idmapRootfs(rec *record, r *taskAPI.CreateTaskRequest) error {
	u := rec.UserNamespace
	if u == nil || !u.Given {
		return nil
	}
	same := len(r.Rootfs) == len(rec.Image.SnapshotMounts)
	for i := 0; same && i < len(r.Rootfs); i++ {
		m, w := r.Rootfs[i], rec.Image.SnapshotMounts[i]
		same = m.Type == w.Type && m.Source == w.Source && m.Target == w.Target && slices.Equal(m.Options, w.Options)
	}
	if !same {
		return refuse(errFailedPrecondition, "the task's rootfs mounts are not those of snapshot %s, which the container's user namespace (host ids %d-%d) would see through an idmapped mount; fix: create the task with the container's snapshot mounts",
			rec.Image.SnapshotKey, u.HostID, uint64(u.HostID)+uint64(u.Size)-1)
	}
	for _, m := range r.Rootfs {
		if m.Type == "overlay" {
			if upper := optionValue(m.Options, "upperdir"); upper != "" {
				// The overlay's root directory is the upper directory's:
				// owned by the range's root, the container's root owns /
				// (runc creates mount points there).
				if err := os.Lchown(upper, int(u.HostID), int(u.HostID)); err != nil {
					return fmt.Errorf("give the rootfs's upper directory to the container's user namespace: %w", err)
				}
			}
		}
		m.Options = append(slices.Clip(m.Options), "uidmap="+u.mapping(), "gidmap="+u.mapping())
	}
	return nil
}

// dropHold lets container id go of the range of owner (its pod, or itself
// outside a pod), which goes with its last holder (service.drop, and
// releaseAfterDeadShim after a shim died). Errors are logged: the range is
// then reclaimed when no other is free and containerd has neither the
// owner nor a holder.
func dropHold(ctx context.Context, owner userns.Owner, id string) {
	if owner.Namespace == "" || owner.ID == "" {
		return
	}
	a, err := userns.FromEnv()
	if err == nil {
		err = a.Drop(owner, id)
	}
	if err != nil {
		log.G(ctx).WithError(err).WithField("id", id).Warn("hardened: release the user namespace range of " + owner.String())
	}
}
