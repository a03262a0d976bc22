package shim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/runc"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/internal/userns"
	"github.com/hardened-runtime/hardened/spec"
)

// usernsEnv is the test environment with a user namespace range window of
// two ranges and containers whose rootfs layers are real directories.
type usernsEnv struct {
	*testEnv
	alloc *userns.Allocator
}

const testWindowFirst = 1 << 24

func newUsernsEnv(t *testing.T) *usernsEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: the bundle is given to the range's group (needs root)")
	}
	if !newHostProbe("").host("").IDMappedMounts {
		t.Skip("skipping: the kernel has no idmapped overlay layers")
	}
	e := newTestEnv(t)
	t.Setenv(userns.RangeEnv, "16777216:131072") // two ranges
	a, err := userns.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	return &usernsEnv{testEnv: e, alloc: a}
}

// rootfs gives container id's snapshot layers and upper directory on the
// disk, and returns its mounts as the task gets them.
func (e *usernsEnv) rootfs(id string) []*types.Mount {
	dir := e.t.TempDir()
	for _, d := range []string{"lower", "upper", "work"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
	m := []*types.Mount{{Type: "overlay", Source: "overlay", Options: []string{"index=off", "workdir=" + filepath.Join(dir, "work"),
		"upperdir=" + filepath.Join(dir, "upper"), "lowerdir=" + filepath.Join(dir, "lower")}}}
	e.fake.mu.Lock()
	e.fake.mounts["overlayfs/"+id+"-snap"] = m
	e.fake.mu.Unlock()
	return m
}

// member makes the bundle and snapshot of container id of pod sandbox
// (uid, Kubernetes namespace apps), its spec edited by edit, and returns
// the bundle and the task's rootfs mounts.
func (e *usernsEnv) member(sandbox, uid, id string, edit func(*specs.Spec)) (string, []*types.Mount) {
	b := e.bundle(testNS, id, e.image, func(sp *specs.Spec) {
		criSpec("container", sandbox, uid, "apps")(sp)
		if edit != nil {
			edit(sp)
		}
	})
	e.fake.containers[id].Sandbox = sandbox
	openBundle(e.t, b)
	return b, e.rootfs(id)
}

// openBundle lets others through the directories above a bundle, as
// containerd's state directory is on a node (0711).
func openBundle(t testing.TB, bundle string) {
	t.Helper()
	for d := filepath.Dir(bundle); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
}

func copyMounts(ms []*types.Mount) []*types.Mount {
	out := make([]*types.Mount, len(ms))
	for i, m := range ms {
		out[i] = &types.Mount{Type: m.Type, Source: m.Source, Target: m.Target, Options: slices.Clone(m.Options)}
	}
	return out
}

// TestUserNamespaceGivenAndReleased: a root container gets a range, its
// bundle is opened to it, its rootfs is idmapped at Create (upper
// directory given to the range's root), and the range is released when
// its task is deleted.
func TestUserNamespaceGivenAndReleased(t *testing.T) {
	e := newUsernsEnv(t)
	s, runc := e.service()
	bundle := e.bundle(testNS, "u1", e.image, nil)
	openBundle(t, bundle)
	mounts := e.rootfs("u1")
	if _, err := e.create(s, testNS, "u1", bundle, func(r *taskAPI.CreateTaskRequest) { r.Rootfs = copyMounts(mounts) }); err != nil {
		t.Fatal(err)
	}
	rec, ok := readRecord(bundle, e.policy.Path)
	if !ok || rec.UserNamespace == nil || !rec.UserNamespace.Given || rec.UserNamespace.HostID != testWindowFirst ||
		rec.UserNamespace.Owner != (userns.Owner{Namespace: testNS, ID: "u1"}) || !strings.Contains(rec.UserNamespace.Rootfs, "idmapped") {
		t.Fatalf("record's user namespace = %+v", rec.UserNamespace)
	}
	cfg := readBundleSpec(t, bundle)
	want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: testWindowFirst, Size: userns.Size}}
	if cfg.Process.User.UID != 0 || !slices.Equal(cfg.Linux.UIDMappings, want) {
		t.Errorf("config.json: uid %d mappings %v, want 0 in %v", cfg.Process.User.UID, cfg.Linux.UIDMappings, want)
	}
	fi, err := os.Stat(bundle)
	if err != nil || fi.Mode().Perm() != 0o710 || fi.Sys().(*syscall.Stat_t).Gid != testWindowFirst {
		t.Errorf("bundle %v %v: want mode 0710, group %d", fi.Mode(), err, testWindowFirst)
	}
	got := runc.creates[0].Rootfs[0].Options
	for _, o := range []string{"uidmap=0:16777216:65536", "gidmap=0:16777216:65536"} {
		if !slices.Contains(got, o) {
			t.Errorf("runc's rootfs options %v lack %s", got, o)
		}
	}
	fi, err = os.Stat(optionValue(mounts[0].Options, "upperdir"))
	if err != nil || fi.Sys().(*syscall.Stat_t).Uid != testWindowFirst {
		t.Errorf("upper directory %v %v: want it owned by %d", fi, err, testWindowFirst)
	}
	// Create again (a restart of the task): the same range.
	if e, _ := e.alloc.Entries(); len(e) != 1 {
		t.Errorf("entries %v", e)
	}
	ctx := namespaces.WithNamespace(context.Background(), testNS)
	if _, err := s.Delete(ctx, &taskAPI.DeleteRequest{ID: "u1"}); err != nil {
		t.Fatal(err)
	}
	if entries, err := e.alloc.Entries(); err != nil || len(entries) != 0 {
		t.Errorf("after Delete: entries %v %v, want none", entries, err)
	}
}

// TestUserNamespaceRootfsBinding: the task's rootfs must be the
// snapshot's to be idmapped.
func TestUserNamespaceRootfsBinding(t *testing.T) {
	e := newUsernsEnv(t)
	s, _ := e.service()
	bundle := e.bundle(testNS, "u2", e.image, nil)
	openBundle(t, bundle)
	e.rootfs("u2")
	other := e.rootfs("elsewhere")
	_, err := e.create(s, testNS, "u2", bundle, func(r *taskAPI.CreateTaskRequest) { r.Rootfs = copyMounts(other) })
	if err == nil || !strings.Contains(err.Error(), "not those of the container's snapshot") {
		t.Fatalf("Create with another rootfs = %v, want a refusal", err)
	}
}

// TestUserNamespaceFallbacks: what gives a root container no range, and
// the range it does not use goes back.
func TestUserNamespaceFallbacks(t *testing.T) {
	e := newUsernsEnv(t)
	// Non-root: nothing reserved (the snapshot is read all the same: the
	// rules read the image's files through it).
	b := e.bundle(testNS, "n1", e.image, func(s *specs.Spec) { s.Process.User = specs.User{UID: 1000, GID: 1000} })
	openBundle(t, b)
	e.rootfs("n1")
	if rec, err := e.run(e.pipeline("create"), testNS, "n1", b); err != nil || rec.UserNamespace != nil {
		t.Errorf("non-root: %v %+v", err, rec)
	}
	// A bundle the range could not reach: the reason noted, 65534.
	b = e.bundle("closed-ns", "closed", e.image, nil)
	e.rootfs("closed")
	rec, err := e.run(e.pipeline("create"), "closed-ns", "closed", b)
	if err != nil || rec.UserNamespace != nil || !noted(rec, "give containerd's state directory mode 0711") || readBundleSpec(t, b).Process.User.UID != 65534 {
		t.Errorf("closed bundle: %v %+v", err, rec.Changes)
	}
	// Audit mode changes nothing: the range goes back.
	b = e.bundle("audit", "a1", e.image, nil)
	openBundle(t, b)
	e.rootfs("a1")
	if rec, err := e.run(e.pipeline("create"), "audit", "a1", b); err != nil || rec.UserNamespace != nil {
		t.Errorf("audit: %v %+v", err, rec)
	}
	if entries, _ := e.alloc.Entries(); len(entries) != 0 {
		t.Errorf("entries %v after audit, want none", entries)
	}
	// The window full of live owners: the reason noted.
	var x1 userns.Entry
	for _, id := range []string{"x1", "x2"} {
		e.fake.addContainer(id, e.image, e.image.chainID)
		x, err := e.alloc.Reserve(userns.Owner{Namespace: testNS, ID: id})
		if err != nil {
			t.Fatal(err)
		}
		if id == "x1" {
			x1 = x
		}
	}
	b = e.bundle(testNS, "full", e.image, nil)
	openBundle(t, b)
	e.rootfs("full")
	if rec, err := e.run(e.pipeline("create"), testNS, "full", b); err != nil || rec.UserNamespace != nil || !noted(rec, "no free range") {
		t.Errorf("full window: %v %+v", err, rec.Changes)
	}
	// One of them gone from containerd's records: its range is reclaimed.
	e.fake.mu.Lock()
	delete(e.fake.containers, "x1")
	e.fake.mu.Unlock()
	b = e.bundle(testNS, "after", e.image, nil)
	openBundle(t, b)
	e.rootfs("after")
	if rec, err := e.run(e.pipeline("create"), testNS, "after", b); err != nil || rec.UserNamespace == nil || rec.UserNamespace.HostID != x1.HostID {
		t.Errorf("after x1 went: %v %+v", err, rec.UserNamespace)
	}
}

// TestPodsOwnUserNamespace: a pod that brings its user namespace
// (hostUsers: false) keeps root; its range is recorded, one over another
// pod's is refused, and it goes back with the pod.
func TestPodsOwnUserNamespace(t *testing.T) {
	e := newUsernsEnv(t)
	own := func(host uint32) func(*specs.Spec) {
		return func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: host, Size: 65536}}
			s.Linux.UIDMappings, s.Linux.GIDMappings = m, m
		}
	}
	b := e.bundle(testNS, "k1", e.image, own(1<<30))
	rec, err := e.run(e.pipeline("create"), testNS, "k1", b)
	if err != nil || rec.UserNamespace == nil || !rec.UserNamespace.Own || rec.UserNamespace.Given || readBundleSpec(t, b).Process.User.UID != 0 {
		t.Fatalf("own user namespace: %v %+v", err, rec)
	}
	// Another container whose mapping is over a range the shim reserved.
	if _, err := e.alloc.Reserve(userns.Owner{Namespace: testNS, ID: "mine"}); err != nil {
		t.Fatal(err)
	}
	b = e.bundle(testNS, "k2", e.image, own(testWindowFirst))
	if _, err := e.run(e.pipeline("create"), testNS, "k2", b); err == nil || !strings.Contains(err.Error(), "kubelet") ||
		!strings.Contains(err.Error(), userns.RangeEnv) || !strings.Contains(err.Error(), testNS+"/mine") {
		t.Errorf("colliding own range = %v, want a refusal naming the owner and the fix", err)
	} else if want := fmt.Sprintf("refused by level restricted: rule user-namespace: linux.uidMappings=0:%d:65536", testWindowFirst); !strings.Contains(err.Error(), want) {
		t.Errorf("colliding own range = %v, want the engine's form %q", err, want)
	}
	// Under audit: recorded as a violation, not refused, nothing reserved.
	b = e.bundle("audit", "k3", e.image, own(testWindowFirst))
	rec3, err := e.run(e.pipeline("create"), "audit", "k3", b)
	if err != nil || rec3.UserNamespace != nil || !slices.ContainsFunc(rec3.Violations, func(v spec.Violation) bool {
		return v.Rule == "user-namespace" && v.Field == "linux.uidMappings" && strings.Contains(v.Reason, testNS+"/mine")
	}) {
		t.Errorf("audit, colliding own range: %v %+v", err, rec3)
	}
	// Whoever runs in it: a non-root process in a pod's own user namespace
	// over another pod's range is refused too, and a fitting one recorded.
	nonRoot := func(host uint32) func(*specs.Spec) {
		return func(s *specs.Spec) { own(host)(s); s.Process.User = specs.User{UID: 1000, GID: 1000} }
	}
	b = e.bundle(testNS, "k5", e.image, nonRoot(testWindowFirst))
	if _, err := e.run(e.pipeline("create"), testNS, "k5", b); err == nil || !strings.Contains(err.Error(), "rule user-namespace") {
		t.Errorf("non-root, colliding own range = %v, want a refusal", err)
	}
	b = e.bundle(testNS, "k6", e.image, nonRoot(1<<29))
	if rec6, err := e.run(e.pipeline("create"), testNS, "k6", b); err != nil || rec6.UserNamespace == nil || !rec6.UserNamespace.Own {
		t.Errorf("non-root, own range: %v %+v", err, rec6)
	}
	// Under audit, a root container gets no range.
	b = e.bundle("audit", "k4", e.image, nil)
	e.rootfs("k4")
	if rec4, err := e.run(e.pipeline("create"), "audit", "k4", b); err != nil || rec4.UserNamespace != nil {
		t.Errorf("audit, root container: %v %+v", err, rec4.UserNamespace)
	}
	dropHold(context.Background(), ownerOf(testNS, rec.Container), "k1")
	entries, _ := e.alloc.Entries()
	if slices.ContainsFunc(entries, func(x userns.Entry) bool { return x.Owner.ID == "k1" }) {
		t.Errorf("entries %v: k1's range kept after release", entries)
	}
}

func noted(rec *record, words string) bool {
	return rec != nil && slices.ContainsFunc(rec.Changes, func(c spec.Change) bool { return c.Note && strings.Contains(c.Reason, words) })
}

// TestPodRangeOutlivesItsSandboxTask: the CRI plugin deletes a sandbox's
// task as soon as pause exits, while the pod's containers still run in
// its user namespace; the range stays reserved until the last of them is
// deleted, and no other pod can be given it meanwhile.
func TestPodRangeOutlivesItsSandboxTask(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: the allocator's directory is root's")
	}
	e := newTestEnv(t)
	t.Setenv(userns.RangeEnv, "16777216:65536") // one range
	t.Setenv(userns.DirEnv, t.TempDir())
	a, err := userns.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := e.service()
	pod := userns.Owner{Namespace: "k8s.io", ID: "sb"}
	for _, id := range []string{"sb", "app", "sidecar"} { // as their pipelines reserve it
		if _, err := a.Reserve(pod, id); err != nil {
			t.Fatal(err)
		}
	}
	member := func(id string) *hardenedContainer {
		return &hardenedContainer{bundle: t.TempDir(), rec: &record{Version: recordVersion,
			Container: containerFacts{ID: id, Namespace: "k8s.io", SandboxID: "sb"}}}
	}
	s.containers = map[string]*hardenedContainer{"sb": member("sb"), "app": member("app"), "sidecar": member("sidecar")}
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	reserved := func() bool {
		entries, err := a.Entries()
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(entries, func(en userns.Entry) bool { return en.Owner == pod })
	}
	for _, id := range []string{"sb", "app"} {
		if _, err := s.Delete(ctx, &taskAPI.DeleteRequest{ID: id}); err != nil {
			t.Fatal(err)
		}
		if !reserved() {
			t.Fatalf("after %s's task is deleted, with the pod's sidecar still running: the range is released", id)
		}
		if _, err := a.Reserve(userns.Owner{Namespace: "k8s.io", ID: "other-pod"}); err == nil {
			t.Fatalf("after %s's task is deleted: another pod was given the range of a pod still running", id)
		}
	}
	if _, err := s.Delete(ctx, &taskAPI.DeleteRequest{ID: "sidecar"}); err != nil {
		t.Fatal(err)
	}
	if reserved() {
		t.Error("after the pod's last container is deleted: the range is still reserved")
	}
}

// TestConcurrentDeletesReleaseThePodRange: after the sandbox's task is
// gone, the pod's last two containers deleted at once still give the range
// back (the decision and the forgetting are one step).
func TestConcurrentDeletesReleaseThePodRange(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: the allocator's directory is root's")
	}
	e := newTestEnv(t)
	t.Setenv(userns.RangeEnv, "16777216:65536")
	t.Setenv(userns.DirEnv, t.TempDir())
	a, err := userns.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	pod := userns.Owner{Namespace: "k8s.io", ID: "sb"}
	member := func(id string) *hardenedContainer {
		return &hardenedContainer{bundle: t.TempDir(), rec: &record{Version: recordVersion,
			Container: containerFacts{ID: id, Namespace: "k8s.io", SandboxID: "sb"}}}
	}
	for i := range 50 {
		for _, id := range []string{"sb", "app", "sidecar"} {
			if _, err := a.Reserve(pod, id); err != nil {
				t.Fatal(err)
			}
		}
		s, _ := e.service()
		s.containers = map[string]*hardenedContainer{"sb": member("sb"), "app": member("app"), "sidecar": member("sidecar")}
		if _, err := s.Delete(ctx, &taskAPI.DeleteRequest{ID: "sb"}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, id := range []string{"app", "sidecar"} {
			wg.Go(func() {
				if _, err := s.Delete(ctx, &taskAPI.DeleteRequest{ID: id}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if has, err := a.Has(pod); has || err != nil {
			t.Fatalf("round %d: the pod's range is still reserved (%v) after its last two containers were deleted at once", i, err)
		}
	}
}

// TestPodRangeHeldAcrossShims: a pod's containers served by two shim
// processes (containerd puts a container in its sandbox's shim only when
// the sandbox is in its sandbox store; any client can make records that
// split a pod) each hold the range in the node's allocator: deleting one
// in one shim does not release the range the other runs in, and a
// refused container lets go of the hold its pipeline took.
func TestPodRangeHeldAcrossShims(t *testing.T) {
	e := newUsernsEnv(t)
	pod := userns.Owner{Namespace: testNS, ID: "sb"}
	create := func(s *service, id string, edit func(*specs.Spec)) (*taskAPI.CreateTaskResponse, error) {
		b, m := e.member("sb", "uid-1", id, edit)
		return e.create(s, testNS, id, b, func(r *taskAPI.CreateTaskRequest) { r.Rootfs = copyMounts(m) })
	}
	// The sandbox's pipeline (shim start) takes the pod's hold.
	sbBundle := e.bundle(testNS, "sb", e.image, criSpec("sandbox", "sb", "uid-1", "apps"))
	e.fake.addSandbox("sb", "uid-1", "apps")
	openBundle(t, sbBundle)
	sbRec, err := e.run(e.pipeline("shim start"), testNS, "sb", sbBundle)
	if err != nil {
		t.Fatal(err)
	}
	if en, _ := e.alloc.Entries(); len(en) != 1 || !slices.Equal(en[0].Holders, []string{"sb"}) || sbRec.UserNamespace != nil {
		t.Fatalf("after the sandbox: %+v (its record's %+v), want the pod's range held by the sandbox, which does not run in it", en, sbRec.UserNamespace)
	}
	s1, _ := e.service()
	s2, _ := e.service()
	if _, err := create(s1, "c1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := create(s2, "c2", nil); err != nil {
		t.Fatal(err)
	}
	entries, _ := e.alloc.Entries()
	if len(entries) != 1 || entries[0].Owner != pod {
		t.Fatalf("entries %+v, want one range for the pod", entries)
	}
	// A container of the pod the level refuses (a hook): its hold goes.
	_, err = create(s2, "bad", func(sp *specs.Spec) {
		sp.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/true"}}}
	})
	if err == nil {
		t.Fatal("a container with a hook was not refused")
	}
	if en, _ := e.alloc.Entries(); slices.Contains(en[0].Holders, "bad") {
		t.Errorf("the refused container still holds the range: %v", en[0].Holders)
	}
	ctx := namespaces.WithNamespace(context.Background(), testNS)
	if _, err := s1.Delete(ctx, &taskAPI.DeleteRequest{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if has, _ := e.alloc.Has(pod); !has {
		t.Fatal("deleting c1 in one shim released the range c2 runs in in another")
	}
	if _, err := s2.Delete(ctx, &taskAPI.DeleteRequest{ID: "c2"}); err != nil {
		t.Fatal(err)
	}
	if en, _ := e.alloc.Entries(); len(en) != 1 || !slices.Equal(en[0].Holders, []string{"sb"}) {
		t.Fatalf("after both containers: %+v, want the range held by the sandbox alone", en)
	}
	// The sandbox's task (its record: the pod's claim) goes last.
	s1.containers["sb"] = &hardenedContainer{bundle: sbBundle, rec: sbRec}
	if _, err := s1.Delete(ctx, &taskAPI.DeleteRequest{ID: "sb"}); err != nil {
		t.Fatal(err)
	}
	if has, _ := e.alloc.Has(pod); has {
		t.Error("the pod's range outlived all its holders")
	}
}

// TestMembersHoldOnlyThemselves: a container of a pod holds the pod's
// range for itself only; the sandbox's hold is taken by the sandbox's own
// pipeline. So a pod whose sandbox never ran (records any client can
// write) keeps no range once its containers are gone or refused, and a
// container runc still has keeps its hold.
func TestMembersHoldOnlyThemselves(t *testing.T) {
	e := newUsernsEnv(t)
	mk := func(id string, edit func(*specs.Spec)) (string, []*types.Mount) {
		return e.member("ghost", "uid-9", id, edit)
	}
	e.bundle(testNS, "ghost", e.image, criSpec("sandbox", "ghost", "uid-9", "apps"))
	e.fake.addSandbox("ghost", "uid-9", "apps") // a record, never a task
	pod := userns.Owner{Namespace: testNS, ID: "ghost"}
	s, _ := e.service()
	b, m := mk("refused", func(sp *specs.Spec) { sp.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/true"}}} })
	if _, err := e.create(s, testNS, "refused", b, func(r *taskAPI.CreateTaskRequest) { r.Rootfs = copyMounts(m) }); err == nil {
		t.Fatal("a container with a hook was not refused")
	}
	if has, _ := e.alloc.Has(pod); has {
		t.Fatal("a refused container of a pod whose sandbox never ran left the pod's range reserved")
	}
	b, m = mk("m1", nil)
	if _, err := e.create(s, testNS, "m1", b, func(r *taskAPI.CreateTaskRequest) { r.Rootfs = copyMounts(m) }); err != nil {
		t.Fatal(err)
	}
	if en, _ := e.alloc.Entries(); len(en) != 1 || !slices.Equal(en[0].Holders, []string{"m1"}) {
		t.Fatalf("entries %+v, want the pod's range held by m1 alone", en)
	}
	// runc still has m1 (its Delete failed halfway): the hold stays.
	state := filepath.Join(t.TempDir(), "runc")
	if err := runc.WriteOptions(b, &options.Options{Root: state, BinaryName: "/usr/local/bin/crun"}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(state, testNS, "m1"), 0o700); err != nil {
		t.Fatal(err)
	}
	ctx := namespaces.WithNamespace(context.Background(), testNS)
	s.drop(ctx, "m1")
	if has, _ := e.alloc.Has(pod); !has {
		t.Fatal("the hold of a container runc still has was dropped")
	}
	// Its shim delete, once the runtime (any binary) has let it go, drops it.
	if err := os.RemoveAll(filepath.Join(state, testNS, "m1")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(b)
	releaseAfterDeadShim(ctx, "m1")
	if has, _ := e.alloc.Has(pod); has {
		t.Error("the pod's range outlived its only container")
	}
}

// TestAliveWhileTheBundleExists: a range's owner or holder counts as
// alive while its bundle is in containerd's task directory (containerd
// removes it only once the task is gone, whatever runc options the client
// chose), even when its containerd record is gone (any client may delete a
// record whose task runs on): reclaim never takes it.
func TestAliveWhileTheBundleExists(t *testing.T) {
	e := newTestEnv(t)
	tasks := t.TempDir()
	if err := os.MkdirAll(filepath.Join(tasks, "other-ns", "running"), 0o700); err != nil {
		t.Fatal(err)
	}
	a, err := e.pipeline("create").allocator(context.Background(), filepath.Join(tasks, testNS, "this"))
	if err != nil {
		t.Fatal(err)
	}
	if alive, err := a.Alive(userns.Owner{Namespace: "other-ns", ID: "running"}); !alive || err != nil {
		t.Errorf("a container whose bundle exists, without a containerd record: alive %v, %v", alive, err)
	}
	if alive, _ := a.Alive(userns.Owner{Namespace: testNS, ID: "gone"}); alive {
		t.Error("a container with neither a bundle nor a record counts as alive")
	}
	if alive, _ := a.Alive(userns.Owner{Namespace: "..", ID: ".."}); alive {
		t.Error("an id that is no path element counts as alive")
	}
}

// TestShimStartThatCannotSpawnDropsItsHold: when the long-running shim
// cannot be spawned, no Create and no shim delete follow: `shim start`
// gives back the hold its pipeline took.
func TestShimStartThatCannotSpawnDropsItsHold(t *testing.T) {
	e := newUsernsEnv(t)
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	bundle := e.bundle(testNS, "nospawn", e.image, nil)
	openBundle(t, bundle)
	e.rootfs("nospawn")
	t.Chdir(bundle)
	socketDir := filepath.Join(t.TempDir(), "s")
	params := &bootapi.BootstrapParams{InstanceID: "nospawn", Namespace: testNS, ContainerdGrpcAddress: e.address, SocketDir: &socketDir}
	if err := params.AddExtension(&runtimeoptions.Options{ConfigPath: e.policy.Path}); err != nil {
		t.Fatal(err)
	}
	m := &groupingManager{Shim: &fakeShim{err: errors.New("invalid shim cgroup")}}
	if _, err := m.Start(context.Background(), params); err == nil {
		t.Fatal("Start did not fail")
	}
	if rec, ok := readRecord(bundle, e.policy.Path); !ok || rec.UserNamespace == nil {
		t.Fatalf("the pipeline gave no range (%+v): the test proves nothing", rec)
	}
	if has, _ := e.alloc.Has(userns.Owner{Namespace: testNS, ID: "nospawn"}); has {
		t.Error("the range stayed held after shim start failed to spawn the shim")
	}
}
