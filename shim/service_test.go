package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/spec"
	"github.com/hardened-runtime/hardened/verify/verdict"
)

// fakeRunc stands in for the runc task service the shim wraps: it records
// what it is asked to do.
type fakeRunc struct {
	taskAPI.TTRPCTaskService // nil: any other call panics

	mu      sync.Mutex
	creates []*taskAPI.CreateTaskRequest
	execs   []*taskAPI.ExecProcessRequest
	updates []*taskAPI.UpdateTaskRequest
	deletes []*taskAPI.DeleteRequest
	err     error
	// gave records what the service gave to the process user after
	// create (the pid, the paths); giveErr fails it.
	gave    []string
	giveErr error
}

func (f *fakeRunc) giveFiles(w *writableFacts, pid uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if w == nil {
		return f.giveErr
	}
	for _, p := range w.Paths {
		if p.Medium == "tmpfs" && p.CopyUp && p.Chown {
			f.gave = append(f.gave, fmt.Sprintf("%d:%s", pid, p.Path))
		}
	}
	return f.giveErr
}

func (f *fakeRunc) Create(_ context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates = append(f.creates, r)
	if f.err != nil {
		return nil, f.err
	}
	return &taskAPI.CreateTaskResponse{Pid: 42}, nil
}

func (f *fakeRunc) Exec(_ context.Context, r *taskAPI.ExecProcessRequest) (*emptypb.Empty, error) {
	f.execs = append(f.execs, r)
	return &emptypb.Empty{}, nil
}

func (f *fakeRunc) Update(_ context.Context, r *taskAPI.UpdateTaskRequest) (*emptypb.Empty, error) {
	f.updates = append(f.updates, r)
	return &emptypb.Empty{}, nil
}

func (f *fakeRunc) Delete(_ context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	f.deletes = append(f.deletes, r)
	return &taskAPI.DeleteResponse{}, nil
}

// newTestService is the shim's task service on the fake runc and the test
// environment's containerd.
func (e *testEnv) service() (*service, *fakeRunc) {
	runc := &fakeRunc{}
	s := newService(runc, e.address)
	s.giveFiles = runc.giveFiles
	s.pipeline.verdictDir = filepath.Join(e.t.TempDir(), "verdicts")
	s.pipeline.runCommand = e.verifier.run
	e.t.Cleanup(s.pipeline.records.close)
	return s, runc
}

// options are the runtime options CRI sends: the policy file.
func (e *testEnv) options() *anypb.Any {
	a, err := typeurl.MarshalAnyToProto(&runtimeoptions.Options{ConfigPath: e.policy.Path})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *testEnv) create(s *service, ns, id, bundle string, edit func(*taskAPI.CreateTaskRequest)) (*taskAPI.CreateTaskResponse, error) {
	r := &taskAPI.CreateTaskRequest{ID: id, Bundle: bundle, Options: e.options(),
		Rootfs: []*types.Mount{{Type: "overlay", Source: "overlay", Options: []string{"index=off", "lowerdir=/l/" + id}}}}
	if edit != nil {
		edit(r)
	}
	return s.Create(namespaces.WithNamespace(context.Background(), ns), r)
}

// captureLog returns the shim's log output from now on.
func captureLog(t *testing.T) *syncBuffer {
	t.Helper()
	var buf syncBuffer
	old := log.L.Logger.Out
	log.L.Logger.SetOutput(&buf)
	t.Cleanup(func() { log.L.Logger.SetOutput(old) })
	return &buf
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestCreateRunsThePipeline: a container that joins a pod's shim (no
// `shim start` ran for it) is hardened in Create, from containerd's
// records, before runc sees it; runc gets no options it would panic on.
func TestCreateRunsThePipeline(t *testing.T) {
	e := newTestEnv(t)
	logs := captureLog(t)
	s, runc := e.service()
	bundle := e.bundle(testNS, "j1", e.image, nil)
	resp, err := e.create(s, testNS, "j1", bundle, nil)
	if err != nil || resp.Pid != 42 || len(runc.creates) != 1 {
		t.Fatalf("Create = %+v %v; runc creates %d", resp, err, len(runc.creates))
	}
	if runc.creates[0].Options != nil {
		t.Error("runc got CRI's runtime options (it panics on them)")
	}
	rec, ok := readRecord(bundle, e.policy.Path)
	if !ok || rec.By != "create" || readBundleSpec(t, bundle).Process.User.UID != 65534 {
		t.Fatalf("record %+v %v", rec, ok)
	}
	// The record is logged beside runc's create.
	for _, want := range []string{"hardened: 0 -> 65534", "IMAGE SIGNATURES ARE NOT VERIFIED", `by=create`} {
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(logs.String(), want) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if c, err := s.container("j1"); err != nil || c.rec.Level != "restricted" {
		t.Errorf("container not remembered: %v", err)
	}
}

// TestCreateTrustsTheRecordOfShimStart: for a container whose `shim start`
// ran the pipeline, Create reads the record and nothing else: no look-up,
// no policy.
func TestCreateTrustsTheRecordOfShimStart(t *testing.T) {
	e := newTestEnv(t)
	bundle := e.bundle(testNS, "s1", e.image, nil)
	if _, err := e.run(e.pipeline("shim start"), testNS, "s1", bundle); err != nil {
		t.Fatal(err)
	}
	calls := len(e.fake.calls)
	s, runc := e.service()
	os.Remove(e.policy.Path) // Create must not need it
	if _, err := e.create(s, testNS, "s1", bundle, nil); err != nil {
		t.Fatal(err)
	}
	if len(e.fake.calls) != calls || len(runc.creates) != 1 {
		t.Errorf("Create made %d look-ups, runc creates %d", len(e.fake.calls)-calls, len(runc.creates))
	}
	// config.json changed since: the record no longer binds it, so Create
	// hardens again (and here refuses: the policy is gone).
	s2, runc2 := e.service()
	spec := readBundleSpec(t, bundle)
	spec.Process.Args = []string{"other"}
	writeTestSpec(t, bundle, spec)
	_, err := e.create(s2, testNS, "s1", bundle, nil)
	if err == nil || !strings.Contains(err.Error(), "does not exist") || len(runc2.creates) != 0 {
		t.Errorf("Create of a config.json the record does not bind = %v (runc creates %d)", err, len(runc2.creates))
	}
}

// TestCreateRefuses: a refusal, recorded by `shim start` or made in
// Create, reaches containerd as one classified line; runc is not asked.
func TestCreateRefuses(t *testing.T) {
	e := newTestEnv(t)
	s, runc := e.service()
	privileged := func(s *specs.Spec) {
		s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
	}

	bundle := e.bundle(testNS, "p1", e.image, privileged)
	if _, err := e.run(e.pipeline("shim start"), testNS, "p1", bundle); err == nil {
		t.Fatal("shim start accepted a privileged container")
	}
	calls := len(e.fake.calls)
	_, err := e.create(s, testNS, "p1", bundle, nil)
	if !errdefs.IsFailedPrecondition(errgrpc.ToNative(err)) || !strings.Contains(err.Error(), "hardened: container p1") || !strings.Contains(err.Error(), "CAP_SYS_ADMIN") {
		t.Errorf("recorded refusal: %v", err)
	}
	if len(e.fake.calls) != calls {
		t.Error("Create looked up again a container shim start refused")
	}

	for _, tc := range []struct {
		name string
		edit func(*taskAPI.CreateTaskRequest)
		kind func(error) bool
		want string
	}{
		{"unknown options", func(r *taskAPI.CreateTaskRequest) { r.Options, _ = anypb.New(&emptypb.Empty{}) }, errdefs.IsInvalidArgument, "not supported"},
		{"checkpoint", func(r *taskAPI.CreateTaskRequest) { r.Checkpoint = "/ckpt" }, errdefs.IsFailedPrecondition, "checkpoint"},
	} {
		bundle := e.bundle(testNS, "r-"+tc.name[:3], e.image, nil)
		_, err := e.create(s, testNS, "r-"+tc.name[:3], bundle, tc.edit)
		if !tc.kind(errgrpc.ToNative(err)) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if _, err := s.Create(context.Background(), &taskAPI.CreateTaskRequest{ID: "nons", Bundle: t.TempDir()}); err == nil {
		t.Error("Create without a namespace succeeded")
	}
	if len(runc.creates) != 0 {
		t.Errorf("runc was asked to create %d refused containers", len(runc.creates))
	}
	// runc failing: the container is not remembered.
	runc.err = errors.New("runc: boom")
	bundle = e.bundle(testNS, "f1", e.image, nil)
	if _, err := e.create(s, testNS, "f1", bundle, nil); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("runc failure: %v", err)
	}
	if _, err := s.container("f1"); err == nil {
		t.Error("a container runc failed to create is remembered")
	}
}

// TestCreatePassesRuncOptions: runc's own options go to runc as they are
// (the policy then comes from $HARDENED_POLICY).
func TestCreatePassesRuncOptions(t *testing.T) {
	e := newTestEnv(t)
	t.Setenv(PolicyEnv, e.policy.Path)
	s, runc := e.service()
	opts, _ := typeurl.MarshalAnyToProto(&runcoptions.Options{SystemdCgroup: false, Root: "/run/x"})
	bundle := e.bundle(testNS, "o1", e.image, nil)
	if _, err := e.create(s, testNS, "o1", bundle, func(r *taskAPI.CreateTaskRequest) { r.Options = opts }); err != nil {
		t.Fatal(err)
	}
	if runc.creates[0].Options != opts {
		t.Error("runc's options were not passed through")
	}
}

// TestCreateChecksTheRootfs: under a signatures policy the task's rootfs
// must be the snapshot's, whichever process ran the pipeline.
func TestCreateChecksTheRootfs(t *testing.T) {
	e := newTestEnv(t)
	e.writePolicy(testPolicyYAML + "signatures:\n  default: [{type: insecureAcceptAnything}]\n")
	s, runc := e.service()
	bundle := e.bundle(testNS, "m1", e.image, nil)
	if _, err := e.create(s, testNS, "m1", bundle, nil); err != nil {
		t.Fatalf("the snapshot's own mounts: %v", err)
	}
	bundle = e.bundle(testNS, "m2", e.image, nil)
	if _, err := e.run(e.pipeline("shim start"), testNS, "m2", bundle); err != nil {
		t.Fatal(err)
	}
	_, err := e.create(s, testNS, "m2", bundle, func(r *taskAPI.CreateTaskRequest) {
		r.Rootfs = []*types.Mount{{Type: "bind", Source: "/", Options: []string{"rbind", "ro"}}}
	})
	if !errdefs.IsFailedPrecondition(errgrpc.ToNative(err)) || !strings.Contains(err.Error(), "rootfs mounts are not those of snapshot m2-snap") {
		t.Errorf("the host's root as rootfs: %v", err)
	}
	if len(runc.creates) != 1 {
		t.Errorf("runc creates %d, want 1", len(runc.creates))
	}
}

// TestExecIsHardened: an exec arrives as containerd's stored spec builds
// it (root, default capabilities) and leaves with the container's level.
func TestExecIsHardened(t *testing.T) {
	e := newTestEnv(t)
	s, runc := e.service()
	ctx := namespaces.WithNamespace(context.Background(), testNS)
	bundle := e.bundle(testNS, "x1", e.image, nil)
	if _, err := e.create(s, testNS, "x1", bundle, nil); err != nil {
		t.Fatal(err)
	}
	root := loadTestSpec(t).Process
	root.User = specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0}}
	root.Args = []string{"sh"}
	ps, _ := typeurl.MarshalAnyToProto(root)
	if _, err := s.Exec(ctx, &taskAPI.ExecProcessRequest{ID: "x1", ExecID: "e1", Spec: ps}); err != nil {
		t.Fatal(err)
	}
	v, err := typeurl.UnmarshalAny(runc.execs[0].Spec)
	if err != nil {
		t.Fatal(err)
	}
	p := v.(*specs.Process)
	if p.User.UID != 65534 || len(p.Capabilities.Effective) != 0 || !p.NoNewPrivileges || len(p.User.AdditionalGids) != 0 {
		t.Errorf("exec process: user %+v caps %v nnp %v", p.User, p.Capabilities.Effective, p.NoNewPrivileges)
	}
	// Judged by the level of the record, whatever the policy says now.
	e.writePolicy("defaultLevel: baseline\n")
	if _, err := s.Exec(ctx, &taskAPI.ExecProcessRequest{ID: "x1", ExecID: "e2", Spec: ps}); err != nil {
		t.Fatal(err)
	}
	v, _ = typeurl.UnmarshalAny(runc.execs[1].Spec)
	if v.(*specs.Process).User.UID != 65534 {
		t.Error("the exec was judged by the policy of now, not the container's level")
	}

	for name, r := range map[string]*taskAPI.ExecProcessRequest{
		"unknown container":  {ID: "nope", ExecID: "e", Spec: ps},
		"not a process spec": {ID: "x1", ExecID: "e", Spec: mustAny(t, &runtimeoptions.Options{})},
		"undecodable spec":   {ID: "x1", ExecID: "e", Spec: &anypb.Any{TypeUrl: "nope", Value: []byte{1}}},
	} {
		if _, err := s.Exec(ctx, r); err == nil {
			t.Errorf("%s: exec accepted", name)
		}
	}
	os.Remove(filepath.Join(bundle, "config.json"))
	if _, err := s.Exec(ctx, &taskAPI.ExecProcessRequest{ID: "x1", ExecID: "e3", Spec: ps}); !errdefs.IsFailedPrecondition(errgrpc.ToNative(err)) {
		t.Errorf("exec without the container's spec: %v", err)
	}
	// Audit mode changes no exec.
	e.writePolicy(testPolicyYAML)
	ab := e.bundle("audit", "a1", e.image, nil)
	if _, err := e.create(s, "audit", "a1", ab, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Exec(ctx, &taskAPI.ExecProcessRequest{ID: "a1", ExecID: "e", Spec: ps}); err != nil {
		t.Fatal(err)
	}
	if runc.execs[len(runc.execs)-1].Spec != ps {
		t.Error("an exec in audit mode was changed")
	}
	// Deleted, the container is forgotten.
	if _, err := s.Delete(ctx, &taskAPI.DeleteRequest{ID: "x1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Exec(ctx, &taskAPI.ExecProcessRequest{ID: "x1", ExecID: "e4", Spec: ps}); !errdefs.IsNotFound(errgrpc.ToNative(err)) {
		t.Errorf("exec after delete: %v", err)
	}
}

func mustAny(t *testing.T, v any) *anypb.Any {
	t.Helper()
	a, err := typeurl.MarshalAnyToProto(v)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestUpdateIsChecked: an update may not lift what the level limits.
func TestUpdateIsChecked(t *testing.T) {
	e := newTestEnv(t)
	s, runc := e.service()
	ctx := namespaces.WithNamespace(context.Background(), testNS)
	if _, err := e.create(s, testNS, "u1", e.bundle(testNS, "u1", e.image, nil), nil); err != nil {
		t.Fatal(err)
	}
	pids := func(n int64) *anypb.Any {
		return mustAny(t, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &n}})
	}
	for _, tc := range []struct {
		name string
		r    *taskAPI.UpdateTaskRequest
		want string
	}{
		{"pids unlimited", &taskAPI.UpdateTaskRequest{ID: "u1", Resources: pids(-1)}, "linux.resources.pids.limit=-1"},
		{"pids 0 (runc writes 1: stricter)", &taskAPI.UpdateTaskRequest{ID: "u1", Resources: pids(0)}, ""},
		{"pids above the level's", &taskAPI.UpdateTaskRequest{ID: "u1", Resources: pids(100000)}, "linux.resources.pids.limit=100000"},
		{"pids 100", &taskAPI.UpdateTaskRequest{ID: "u1", Resources: pids(100)}, ""},
		{"memory only", &taskAPI.UpdateTaskRequest{ID: "u1", Resources: mustAny(t, &specs.LinuxResources{Memory: &specs.LinuxMemory{}})}, ""},
		{"annotations only", &taskAPI.UpdateTaskRequest{ID: "u1", Annotations: map[string]string{"a": "b"}}, ""},
		{"not JSON", &taskAPI.UpdateTaskRequest{ID: "u1", Resources: &anypb.Any{TypeUrl: "x", Value: []byte("{")}}, "resources"},
		{"unknown container", &taskAPI.UpdateTaskRequest{ID: "nope", Resources: pids(-1)}, "not created by this shim"},
	} {
		n := len(runc.updates)
		_, err := s.Update(ctx, tc.r)
		if tc.want == "" {
			if err != nil || len(runc.updates) != n+1 {
				t.Errorf("%s: %v (runc updates %d)", tc.name, err, len(runc.updates)-n)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || len(runc.updates) != n {
			t.Errorf("%s: %v, want a refusal saying %q (runc updates %d)", tc.name, err, tc.want, len(runc.updates)-n)
		}
	}
	// In audit mode the violation is logged and the update goes through.
	logs := captureLog(t)
	if _, err := e.create(s, "audit", "a1", e.bundle("audit", "a1", e.image, nil), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, &taskAPI.UpdateTaskRequest{ID: "a1", Resources: pids(-1)}); err != nil || !strings.Contains(logs.String(), "hardened audit: update") {
		t.Errorf("audit update: %v\n%s", err, logs)
	}
}

// fakeShim stands in for the runc manager whose Start spawns the
// long-running shim.
type fakeShim struct {
	shim.Shim
	params *bootapi.BootstrapParams
	err    error
}

func (f *fakeShim) Start(_ context.Context, p *bootapi.BootstrapParams) (*bootapi.BootstrapResult, error) {
	f.params = p
	if f.err != nil {
		return nil, f.err
	}
	return &bootapi.BootstrapResult{Version: 3, Address: "unix://" + p.GetSocketDir() + "/x", Protocol: "ttrpc"}, nil
}

// TestShimStartRunsThePipeline: `shim start` spawns the long-running shim
// into a socket directory of hardened shims only and hardens the bundle
// meanwhile.
func TestShimStartRunsThePipeline(t *testing.T) {
	e := newTestEnv(t)
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	bundle := e.bundle(testNS, "st1", e.image, nil)
	t.Chdir(bundle)
	socketDir := filepath.Join(t.TempDir(), "s")
	params := &bootapi.BootstrapParams{InstanceID: "st1", Namespace: testNS, ContainerdGrpcAddress: e.address, SocketDir: &socketDir}
	if err := params.AddExtension(&runtimeoptions.Options{ConfigPath: e.policy.Path}); err != nil {
		t.Fatal(err)
	}
	spawner := &fakeShim{}
	m := &groupingManager{Shim: spawner}
	res, err := m.Start(context.Background(), params)
	if err != nil || res.GetAddress() != "unix://"+socketDir+"/hardened/x" || spawner.params.GetSocketDir() != socketDir+"/hardened" {
		t.Fatalf("Start = %+v %v; spawned with socket dir %q", res, err, spawner.params.GetSocketDir())
	}
	if link, err := os.Readlink(filepath.Join(bundle, socketDirLink)); err != nil || link != socketDir+"/hardened" {
		t.Errorf("socket dir link %q %v", link, err)
	}
	rec, ok := readRecord(bundle, e.policy.Path)
	if !ok || rec.By != "shim start" {
		t.Fatalf("record %+v %v", rec, ok)
	}
	// Options that cannot be read: the shim still starts; Create decides.
	os.Remove(filepath.Join(bundle, RecordFile))
	params.Extensions[0].Value.Value = []byte{0xff}
	if _, err := m.Start(context.Background(), params); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(bundle, RecordFile)); err == nil {
		t.Error("the pipeline ran with options it could not read")
	}
}

// TestIdleRelease: once no Create has come for a while, the connection
// to containerd is closed (and memory released).
func TestIdleRelease(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(HeapProfileEnv, dir)
	done := make(chan struct{})
	releaseMemorySoon(func() { close(done) })
	releaseMemorySoon(func() { close(done) }) // the last one counts; the timer is reset
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the idle hook did not run")
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m, _ := filepath.Glob(filepath.Join(dir, "heap-*.pprof")); len(m) > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Error("no heap profile written")
}

// TestLogRecord: what was changed, found and verified reaches the log.
func TestLogRecord(t *testing.T) {
	logs := captureLog(t)
	rec := &record{Level: "restricted", Mode: policy.Audit, Rule: "defaultLevel", Reason: "no rule matched",
		Container: containerFacts{SandboxID: "sb", Claim: "pod claim verified"}}
	rec.Violations = append(rec.Violations, specViolation("user"))
	rec.Changes = append(rec.Changes, specNote("apparmor"))
	rec.Signature = verdictOf("scope x: sigstoreSigned")
	logRecord(log.L, rec)
	for _, want := range []string{"hardened audit: rule user", "hardened: host has no AppArmor", "pod claim verified", "hardened: signature: scope"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	data, _ := json.Marshal(rec)
	if !bytes.Contains(data, []byte(`"claim":"pod claim verified"`)) {
		t.Errorf("record JSON %s", data)
	}
}

func specViolation(rule string) spec.Violation {
	return spec.Violation{Rule: rule, Field: "process.user.uid", Value: "0", Reason: "runs as root", Fix: "run as non-root"}
}

func specNote(rule string) spec.Change {
	return spec.Change{Rule: rule, Field: "process.apparmorProfile", Reason: "host has no AppArmor", Note: true}
}

func verdictOf(scope string) *verdict.Verdict {
	return &verdict.Verdict{Image: "example.com/app:1", Digest: "sha256:x", Scope: strings.TrimPrefix(strings.SplitN(scope, ":", 2)[0], "scope "),
		Requirements: []verdict.Satisfied{{Type: policy.SigstoreSigned, Key: "keyPath /k.pub", Signature: "tag sha256-x.sig"}}}
}
