package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/sys/reaper"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/hardened-runtime/hardened/observe/event"
	"github.com/hardened-runtime/hardened/observe/execaudit"
	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/spec"
)

// ChangesAnnotation summarises in the hardened spec what the shim changed.
const ChangesAnnotation = "hardened.dev/changes"

// LevelAnnotationApplied names the level and mode the shim applied.
const LevelAnnotationApplied = "hardened.dev/applied"

// service is the runc task service with Create, Exec and Update hardened.
type service struct {
	taskAPI.TTRPCTaskService

	// pipeline hardens the containers whose `shim start` did not.
	pipeline *pipeline

	// events logs and publishes the exec audit (observe/execaudit); set by
	// the plugin, nil in unit tests (then it only logs).
	events *execaudit.Publisher

	// giveFiles gives copied-up files to the process user after runc's
	// create (writable.go); giveCopiedFiles unless a test replaces it.
	giveFiles func(w *writableFacts, pid uint32) error

	// mu guards containers.
	mu sync.Mutex
	// containers holds, per container id, the record of its hardening:
	// the bundle whose spec its execs are hardened from and the level its
	// execs and updates are judged by.
	containers map[string]*hardenedContainer
}

type hardenedContainer struct {
	bundle string
	rec    *record
}

var _ taskAPI.TTRPCTaskService = (*service)(nil)

func newService(runc taskAPI.TTRPCTaskService, containerdAddress string) *service {
	return &service{
		TTRPCTaskService: runc,
		pipeline:         newPipeline("create", containerdAddress, reaperRunner),
		containers:       map[string]*hardenedContainer{},
	}
}

// RegisterTTRPC registers the wrapper, not the runc service it embeds.
func (s *service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTTRPCTaskService(server, s)
	return nil
}

// Create runs the container only with a record of its hardening: the one
// `shim start` left in the bundle, or, for a container that joins a pod's
// shim (containerd runs no `shim start` for it) or whose `shim start`
// could not finish, the one the pipeline makes here. The task must then
// be what the record is about (checkTask); runc creates it from the
// hardened config.json.
func (s *service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	rec, err := s.admit(ctx, r)
	if err != nil {
		err = fmt.Errorf("hardened: container %s: %w", r.ID, err)
		log.G(ctx).WithError(err).WithField("id", r.ID).Error("hardened: container refused")
		return nil, errgrpc.ToGRPC(err)
	}
	// What was changed goes to the log beside runc's create, not before
	// it: a dozen log lines are not worth delaying the container for.
	// Audit findings, the point of audit mode, go first.
	logger := log.G(ctx).WithField("id", r.ID)
	logged := make(chan struct{})
	if rec.Mode == policy.Audit {
		logRecord(logger, rec)
		close(logged)
	} else {
		go func() {
			defer close(logged)
			logRecord(logger, rec)
		}()
	}
	resp, err := s.createWritable(ctx, r, rec)
	if err != nil {
		<-logged // the record, then why runc failed
		s.drop(ctx, r.ID)
	}
	s.idleSoon()
	return resp, err
}

// admit returns the record of the container's hardening and sets the
// task's options to what runc may get.
func (s *service) admit(ctx context.Context, r *taskAPI.CreateTaskRequest) (*record, error) {
	rec, seen, err := s.admitRecord(ctx, r)
	if err != nil {
		// A hold the pipeline took for a container that will not run
		// (unless a task of that id runc still has holds it).
		if ns, _ := namespaces.Namespace(ctx); seen != nil && seen.UserNamespace != nil && taskStateGone(r.Bundle, ns, r.ID) {
			dropHold(ctx, seen.UserNamespace.Owner, r.ID)
		}
		return nil, err
	}
	s.mu.Lock()
	s.containers[r.ID] = &hardenedContainer{bundle: r.Bundle, rec: rec}
	s.mu.Unlock()
	return rec, nil
}

// admitRecord is admit's decision: the record, and the record seen even
// when the container is refused (whose hold on a range goes back).
func (s *service) admitRecord(ctx context.Context, r *taskAPI.CreateTaskRequest) (rec, seen *record, err error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, nil, err
	}
	opts, err := decodeOptions(r.Options)
	if err != nil {
		return nil, nil, refuse(errInvalidArgument, "%v", err)
	}
	r.Options = opts.Runc
	src := policySourceFor(opts.PolicyPath)
	rec, ok := readRecord(r.Bundle, src.Path)
	if !ok {
		rec, err = s.pipeline.run(ctx, request{Namespace: ns, ID: r.ID, Bundle: r.Bundle, Policy: src})
		if err != nil {
			return nil, rec, err
		}
	}
	if rec.Refusal != nil {
		return nil, rec, rec.Refusal
	}
	if err := checkTask(rec, r); err != nil {
		return nil, rec, err
	}
	if err := idmapRootfs(rec, r); err != nil {
		return nil, rec, err
	}
	return rec, rec, nil
}

// logRecord puts what was changed (or, in audit mode, found) in the log.
func logRecord(logger *log.Entry, rec *record) {
	logger = logger.WithField("level", rec.Level).WithField("mode", string(rec.Mode))
	for _, v := range rec.Violations {
		logger.WithField("rule", v.Rule).Warn("hardened audit: " + v.String())
	}
	for _, c := range rec.Changes {
		entry := logger.WithField("rule", c.Rule).WithField("field", c.Field)
		if c.Note {
			entry.Info("hardened: " + c.Reason)
			continue
		}
		entry.Infof("hardened: %s -> %s (%s)", c.From, c.To, c.Reason)
	}
	if c := rec.Container; c.Claim != "" {
		logger.WithField("sandbox", c.SandboxID).WithField("pod-uid", c.PodUID).WithField("kubernetes-namespace", c.KubernetesNamespace).Info("hardened: " + c.Claim)
	}
	logger.WithField("rule", rec.Rule).WithField("by", rec.By).WithField("timing", rec.Timing).Info("hardened: " + rec.Reason)
	if v := rec.Signature; v != nil {
		entry := logger.WithField("image", v.Image).WithField("digest", v.Digest)
		if v.Builtin {
			entry.Warn("hardened: IMAGE SIGNATURES ARE NOT VERIFIED: the node policy has no signatures section, so every image is accepted; add one (see `hardenctl policy validate`)")
		} else {
			entry.Info("hardened: signature: " + v.Summary())
		}
	}
}

// idleSoon releases, once no Create has come for a while, what Creates
// used: the connection to containerd and the memory (specs, seccomp
// profiles, JSON buffers). The shim lives as long as its containers, and
// its resident size is paid per pod on every node.
func (s *service) idleSoon() {
	releaseMemorySoon(s.pipeline.records.close)
}

// Exec hardens the exec'd process like the container's own: containerd
// builds it from its stored, unhardened spec (root, default capabilities).
func (s *service) Exec(ctx context.Context, r *taskAPI.ExecProcessRequest) (*emptypb.Empty, error) {
	audit, err := s.hardenExec(ctx, r)
	if err != nil {
		err = fmt.Errorf("hardened: exec %s in container %s: %w", r.ExecID, r.ID, err)
		if audit != nil { // refused by the level: its event is the one line
			s.events.Publish(ctx, audit)
		} else {
			log.G(ctx).WithError(err).WithField("id", r.ID).WithField("exec", r.ExecID).Error("hardened: exec refused")
		}
		return nil, errgrpc.ToGRPC(err)
	}
	resp, err := s.TTRPCTaskService.Exec(ctx, r)
	if err == nil && audit != nil {
		s.events.Publish(ctx, audit)
	}
	return resp, err
}

func (s *service) container(id string) (*hardenedContainer, error) {
	s.mu.Lock()
	c := s.containers[id]
	s.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("%w: the container was not created by this shim", errdefs.ErrNotFound)
	}
	return c, nil
}

// hardenExec hardens the process with the container's level, against the
// container's hardened spec in the bundle, and returns the exec's audit
// event (execaudit); with an error, the event of the refusal when the
// level refused it (exec: deny).
func (s *service) hardenExec(ctx context.Context, r *taskAPI.ExecProcessRequest) (*event.Event, error) {
	c, err := s.container(r.ID)
	if err != nil {
		return nil, err
	}
	v, err := typeurl.UnmarshalAny(r.Spec)
	if err != nil {
		return nil, refuse(errInvalidArgument, "process spec: %v", err)
	}
	p, ok := v.(*specs.Process)
	if !ok {
		return nil, refuse(errInvalidArgument, "process spec of type %T", v)
	}
	container, err := readSpec(c.bundle)
	if err != nil {
		return nil, refuse(errFailedPrecondition, "%v", err)
	}
	ns, _ := namespaces.Namespace(ctx)
	named := execaudit.ContainerOf(ns, r.ID, c.rec.Level, container.Annotations)
	level := c.rec.LevelData
	if err := execaudit.Check(level, r.ID, r.ExecID, p); err != nil {
		if c.rec.Mode != policy.Audit {
			return execaudit.Refused(named, r.ExecID, p, err), err
		}
		log.G(ctx).WithField("id", r.ID).WithField("exec", r.ExecID).Warn("hardened audit: " + err.Error())
	}
	if c.rec.Mode == policy.Audit {
		return execaudit.Record(named, r.ExecID, p, p, nil), nil
	}
	host := s.pipeline.host.host(level.AppArmor.Profile)
	hp, changes, err := spec.HardenProcess(p, container, level, spec.Inputs{Host: host})
	if err != nil {
		return nil, refuse(errFailedPrecondition, "%v", err)
	}
	a, err := typeurl.MarshalAnyToProto(hp)
	if err != nil {
		return nil, err
	}
	r.Spec = a
	return execaudit.Record(named, r.ExecID, p, hp, changes), nil
}

// Update changes a running container's resources only within what its
// level would have allowed at create: otherwise a client could lift, say,
// the pids limit of a running container.
func (s *service) Update(ctx context.Context, r *taskAPI.UpdateTaskRequest) (*emptypb.Empty, error) {
	if err := s.checkUpdate(r); err != nil {
		err = fmt.Errorf("hardened: update of container %s: %w", r.ID, err)
		log.G(ctx).WithError(err).WithField("id", r.ID).Error("hardened: update refused")
		return nil, errgrpc.ToGRPC(err)
	}
	return s.TTRPCTaskService.Update(ctx, r)
}

func (s *service) checkUpdate(r *taskAPI.UpdateTaskRequest) error {
	c, err := s.container(r.ID)
	if err != nil {
		return err
	}
	if r.Resources == nil || len(r.Resources.GetValue()) == 0 {
		return nil
	}
	// The runc task service reads the resources as JSON, whatever the
	// type URL says (process.Init.Update); so do we.
	var res specs.LinuxResources
	if err := json.Unmarshal(r.Resources.GetValue(), &res); err != nil {
		return refuse(errInvalidArgument, "resources: %v", err)
	}
	if c.rec.LevelData == nil {
		return refuse(errFailedPrecondition, "the record of level %s has no level data to judge the update by", c.rec.Level)
	}
	container, err := readSpec(c.bundle)
	if err != nil {
		return refuse(errFailedPrecondition, "read the container's hardened spec: %v", err)
	}
	vs := spec.CheckUpdate(container, &res, c.rec.LevelData)
	if len(vs) == 0 {
		return nil
	}
	if c.rec.Mode == policy.Audit {
		for _, v := range vs {
			log.L.WithField("id", r.ID).WithField("rule", v.Rule).Warn("hardened audit: update: " + v.String())
		}
		return nil
	}
	return refuse(errFailedPrecondition, "%v", &spec.RefusedError{Level: c.rec.Level, Violations: vs})
}

// Delete forgets the container once runc has deleted it, and lets go of
// its hold on the range of its user namespace (drop).
func (s *service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	resp, err := s.TTRPCTaskService.Delete(ctx, r)
	if err == nil && r.ExecID == "" {
		s.deleteWritable(ctx, r.ID)
		s.drop(ctx, r.ID)
	}
	return resp, err
}

// drop forgets container id and lets go of its hold on its owner's range
// (a pod's sandbox and the pod's containers in the range each hold it, in
// the node's allocator, whatever shim process serves them), once runc has
// no state of it left: the range goes with the last hold. The sandbox's
// task is not the pod's end: the CRI plugin deletes it as soon as pause
// exits, while the pod's containers run on in the range until the kubelet
// stops them.
func (s *service) drop(ctx context.Context, id string) {
	s.mu.Lock()
	c := s.containers[id]
	delete(s.containers, id)
	s.mu.Unlock()
	if c == nil || c.rec == nil {
		return
	}
	if ns, err := namespaces.NamespaceRequired(ctx); err != nil || !taskStateGone(c.bundle, ns, id) {
		log.G(ctx).WithField("id", id).Warn("hardened: runc may still have the container: its hold on the range of its user namespace is kept (shim delete lets go of it)")
		return
	}
	dropHold(ctx, ownerOf(c.rec.Container.Namespace, c.rec.Container), id)
}

// reaperRunner is the commandRunner of the long-running shim: its reaper
// collects every child, so the command is waited for through it.
func reaperRunner(ctx context.Context, cmd *exec.Cmd) ([]byte, []byte, int, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	ec, err := reaper.Default.Start(cmd)
	if err != nil {
		return nil, nil, 0, err
	}
	timeout := lookupTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	// Wait (inside WaitTimeout) waits for the output to be copied.
	status, err := reaper.Default.WaitTimeout(cmd, ec, timeout)
	if err != nil {
		return nil, nil, 0, err
	}
	return stdout.Bytes(), stderr.Bytes(), status, nil
}

// annotate summarises the hardening in the spec's annotations.
func annotate(s *specs.Spec, summary string, d *policy.Decision) {
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[ChangesAnnotation] = summary
	s.Annotations[LevelAnnotationApplied] = d.Level.Name + " (" + string(d.Mode) + ")"
}

// deepCopySpec copies a spec through JSON (audit mode only).
func deepCopySpec(s *specs.Spec) *specs.Spec {
	data, _ := json.Marshal(s)
	var c specs.Spec
	_ = json.Unmarshal(data, &c)
	return &c
}

func countChanges(cs []spec.Change) int {
	n := 0
	for _, c := range cs {
		if !c.Note {
			n++
		}
	}
	return n
}

func changeRules(cs []spec.Change) []string {
	var rules []string
	for _, c := range cs {
		if !c.Note {
			rules = append(rules, c.Rule)
		}
	}
	return rules
}

func violationRules(vs []spec.Violation) []string {
	var rules []string
	for _, v := range vs {
		rules = append(rules, v.Rule)
	}
	return rules
}

// ruleList renders " (rules: a, b)" with each rule once, sorted.
func ruleList(rules []string) string {
	if len(rules) == 0 {
		return ""
	}
	seen := map[string]bool{}
	var uniq []string
	for _, r := range rules {
		if !seen[r] {
			seen[r] = true
			uniq = append(uniq, r)
		}
	}
	sort.Strings(uniq)
	return " (rules: " + strings.Join(uniq, ", ") + ")"
}
