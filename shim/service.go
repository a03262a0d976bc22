package shim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/pkg/namespaces"
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
	"github.com/hardened-runtime/hardened/profiles"
	"github.com/hardened-runtime/hardened/spec"
	"github.com/hardened-runtime/hardened/verify/verdict"
)

// PolicyEnv overrides the policy path for every container of the shim
// (tests use it); a runtime's ConfigPath option still wins.
const PolicyEnv = "HARDENED_POLICY"

// ChangesAnnotation summarises in the hardened spec what the shim changed.
const ChangesAnnotation = "hardened.dev/changes"

// CacheDirEnv overrides where the shim caches image facts by digest
// (default /run/hardened/images; "off" disables the cache).
const CacheDirEnv = "HARDENED_CACHE_DIR"

func imageCacheDir() string {
	switch d := os.Getenv(CacheDirEnv); d {
	case "":
		return "/run/hardened/images"
	case "off":
		return ""
	default:
		return d
	}
}

// LevelAnnotationApplied names the level and mode the shim applied.
const LevelAnnotationApplied = "hardened.dev/applied"

// RecordFile is the file in the bundle that holds the full record of what
// the shim did (level, mode, rule, changes or violations).
const RecordFile = "hardened.json"

// service is the runc task service with Create and Exec hardened.
type service struct {
	taskAPI.TTRPCTaskService

	// address is containerd's gRPC address, for image look-ups.
	address string
	host    *hostProbe

	// mu guards policies and containers.
	mu       sync.Mutex
	policies map[string]policyResult
	// containers remembers, per container id, where its hardened spec is
	// and which level it got, for its execs.
	containers map[string]*hardenedContainer

	// events logs and publishes the exec audit (see execaudit); set by
	// the plugin, nil in tests (then it only logs).
	events *execaudit.Publisher
}

type policyResult struct {
	p   *policy.Policy
	err error
}

type hardenedContainer struct {
	bundle     string
	mode       policy.Mode
	policyPath string
	levelName  string

	// level and host are known when Create hardened the bundle; for a
	// bundle `shim start` hardened, the first exec looks them up (by the
	// level's name in the policy), so Create does not parse the policy.
	level *profiles.Level
	host  spec.Host
}

var _ taskAPI.TTRPCTaskService = (*service)(nil)

func newService(runc taskAPI.TTRPCTaskService, containerdAddress string) *service {

	return &service{
		TTRPCTaskService: runc,
		address:          containerdAddress,
		host:             newHostProbe(containerdAddress),
		policies:         map[string]policyResult{},
		containers:       map[string]*hardenedContainer{},
	}
}

// RegisterTTRPC registers the wrapper, not the runc service it embeds.
func (s *service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTTRPCTaskService(server, s)
	return nil
}

// policyAt loads the policy at path once per shim process.
func (s *service) policyAt(path string) (*policy.Policy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.policies[path]; ok {
		return r.p, r.err
	}
	p, err := policy.Load(path)
	s.policies[path] = policyResult{p, err}
	return p, err
}

func policyPath(fromOptions string) string {
	if fromOptions != "" {
		return fromOptions
	}
	if env := os.Getenv(PolicyEnv); env != "" {
		return env
	}
	return policy.DefaultPath
}

// record is what the shim writes to <bundle>/hardened.json.
type record struct {
	Level      string           `json:"level"`
	Mode       policy.Mode      `json:"mode"`
	Rule       string           `json:"rule"`
	Reason     string           `json:"reason"`
	Policy     string           `json:"policy"`
	PolicyHash string           `json:"policyHash,omitempty"`
	Image      string           `json:"image,omitempty"`
	Changes    []spec.Change    `json:"changes,omitempty"`
	Violations []spec.Violation `json:"violations,omitempty"`
	// PolicyPath is the file the policy was read from (Policy may say
	// "built-in default").
	PolicyPath string `json:"policyPath"`
	// ConfigDigest is the sha256 of the config.json written with this
	// record: Create trusts a bundle `shim start` hardened only if
	// config.json still has it.
	ConfigDigest string `json:"configDigest"`
	// Signature is the signature policy's verdict on the image.
	Signature *verdict.Verdict `json:"signature,omitempty"`
	// By says which process hardened the bundle: "start" (the short-lived
	// `shim start`, ahead of Create), "prepare" (a short-lived child of the
	// shim, for a container that joins a pod's shim) or "create" (the shim
	// itself, when those could not).
	By string `json:"by"`
}

// Create hardens <bundle>/config.json, then lets runc create the container.
func (s *service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	runcOptions, prepared, err := s.harden(ctx, r)
	if err != nil {
		log.G(ctx).WithError(err).WithField("id", r.ID).Error("hardened: container refused")
		return nil, errgrpc.ToGRPC(err)
	}
	r.Options = runcOptions
	// What `shim start` changed goes to the log once runc has the
	// container: a dozen log lines are not worth delaying it for. Audit
	// findings, the point of audit mode, go first.
	if prepared != nil && prepared.Mode == policy.Audit {
		logRecord(log.G(ctx).WithField("id", r.ID), prepared)
		prepared = nil
	}
	resp, err := s.TTRPCTaskService.Create(ctx, r)
	if prepared != nil {
		logRecord(log.G(ctx).WithField("id", r.ID), prepared)
	}
	releaseMemorySoon()
	if err != nil {
		s.forget(r.ID)
	}
	return resp, err
}

// harden returns the runc options for the container and, when a
// short-lived process hardened its bundle, that process's record, for
// Create to log.
func (s *service) harden(ctx context.Context, r *taskAPI.CreateTaskRequest) (_ *anypbAny, prepared *record, err error) {
	t0 := time.Now()
	phases := []string{}
	mark := func(name string) {
		phases = append(phases, fmt.Sprintf("%s=%s", name, time.Since(t0).Round(10*time.Microsecond)))
	}
	defer func() { log.G(ctx).WithField("id", r.ID).Debug("hardened: timing " + strings.Join(phases, " ")) }()
	defer func() {
		if err != nil {
			err = fmt.Errorf("hardened: container %s: %w", r.ID, err)
		}
	}()
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, nil, err
	}
	opts, err := decodeOptions(r.Options)
	if err != nil {
		return nil, nil, classify(errdefs.ErrInvalidArgument, err)
	}
	path := policyPath(opts.PolicyPath)

	// A short-lived process usually hardened the bundle already: `shim
	// start` while this process was starting, or, for a container that
	// joins a pod's shim (containerd runs no `shim start` for those), a
	// PrepareCommand child. Then only check that it did, and for what.
	// This process so never parses the policy or the spec, nor computes a
	// seccomp profile, nor talks gRPC: it stays small for as long as the
	// pod runs.
	if err := readRefusal(r.Bundle); err != nil {
		return nil, nil, err
	}
	rec, ok := preparedRecord(r.Bundle, path)
	var childErr error
	if !ok {
		// `shim start` could not finish (or did not run: a container that
		// joins a pod's shim): a child does it all again and says why not.
		childErr = prepareInChild(s.address, ns, r.ID, r.Bundle, path)
		mark("prepare process")
		if err := readRefusal(r.Bundle); err != nil {
			return nil, nil, err
		}
		rec, ok = preparedRecord(r.Bundle, path)
	}
	if ok {
		mark("prepared by " + rec.By)
		if err := checkTaskRootfs(r.Bundle, rec.Signature, r.Rootfs, r.Checkpoint); err != nil {
			return nil, nil, err
		}
		s.remember(r.ID, &hardenedContainer{bundle: r.Bundle, mode: rec.Mode, policyPath: path, levelName: rec.Level})
		return opts.Runc, rec, nil
	}

	// Neither short-lived process could harden the bundle, and only they
	// check signatures: the container is refused. Harden here only to
	// refuse it with the reason, classified, where that is possible.
	if childErr == nil {
		childErr = fmt.Errorf("the bundle was not prepared")
	}
	img, found, err := fromBundle(r.Bundle)
	if err != nil {
		return nil, nil, classify(errdefs.ErrFailedPrecondition, err)
	}
	if !found {
		return nil, nil, classify(errdefs.ErrFailedPrecondition, childErr)
	}
	pol, err := s.policyAt(path)
	if err != nil {
		return nil, nil, policyError(path, err)
	}
	mark("policy")
	in, err := readSpec(r.Bundle)
	if err != nil {
		return nil, nil, classify(errdefs.ErrInvalidArgument, err)
	}
	mark("read")
	if _, _, err := decideAndHarden(pol, path, s.host, ns, in, img.ImageInfo, nil); err != nil {
		return nil, nil, err
	}
	return nil, nil, classify(errdefs.ErrFailedPrecondition, childErr)
}

func policyError(path string, err error) error {
	return classify(errdefs.ErrFailedPrecondition, fmt.Errorf("invalid node policy, fix it and run `hardenctl policy validate %s`: %w", path, err))
}

// hardening is the outcome of hardenBundle.
type hardening struct {
	rec      record
	decision *policy.Decision
	host     spec.Host
}

// hardenBundle decides the level of the container whose bundle it is,
// hardens (or, in audit mode, checks) <bundle>/config.json and writes it
// back with the record. It logs nothing: `shim start` cannot (its output
// is the bootstrap protocol), so the caller logs the record.
func hardenBundle(pol *policy.Policy, path string, probe *hostProbe, ns, bundle string, in *specs.Spec, img spec.ImageInfo, v *verdict.Verdict, by string, t *timer) (*hardening, error) {
	h, out, err := decideAndHarden(pol, path, probe, ns, in, img, t)
	if err != nil {
		return nil, err
	}
	h.rec.By, h.rec.Signature = by, v
	data, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	t.mark("marshal")
	sum := sha256.Sum256(data)
	h.rec.ConfigDigest = hex.EncodeToString(sum[:])
	// The record first: a config.json without its record is hardened again
	// by Create (Harden is idempotent); a record without its config.json
	// does not match the digest.
	if err := writeJSONAtomic(filepath.Join(bundle, RecordFile), h.rec); err != nil {
		return nil, fmt.Errorf("write %s: %w", RecordFile, err)
	}
	if err := writeFileAtomic(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		return nil, fmt.Errorf("write config.json: %w", err)
	}
	t.mark("write")
	return h, nil
}

// decideAndHarden picks the container's level and hardens (or, in audit
// mode, checks) its spec in memory.
func decideAndHarden(pol *policy.Policy, path string, probe *hostProbe, ns string, in *specs.Spec, img spec.ImageInfo, t *timer) (*hardening, *specs.Spec, error) {
	w := policy.Workload{
		KubernetesNamespace: in.Annotations["io.kubernetes.cri.sandbox-namespace"],
		ContainerdNamespace: ns,
		Image:               img.Name,
		Annotations:         in.Annotations,
	}
	d, err := pol.Resolve(w)
	if err != nil {
		return nil, nil, classify(errdefs.ErrInvalidArgument, err)
	}
	host := probe.host(d.Level.AppArmor.Profile)
	t.mark("host")
	inputs := spec.Inputs{Image: img, Host: host}
	rec := record{Level: d.Level.Name, Mode: d.Mode, Rule: d.Rule, Reason: d.Reason, Policy: pol.Source, PolicyHash: pol.Hash,
		PolicyPath: path, Image: img.Name}

	var out *specs.Spec
	if d.Mode == policy.Audit {
		vs, err := spec.Check(in, d.Level, inputs)
		if err != nil {
			return nil, nil, classify(errdefs.ErrInvalidArgument, err)
		}
		rec.Violations = vs
		out = deepCopySpec(in)
		annotate(out, fmt.Sprintf("audit: %d violations%s", len(vs), ruleList(violationRules(vs))), d)
	} else {
		res, err := spec.Harden(in, d.Level, inputs)
		var refused *spec.RefusedError
		if errors.As(err, &refused) {
			return nil, nil, classify(errdefs.ErrFailedPrecondition, err)
		}
		if err != nil {
			return nil, nil, classify(errdefs.ErrInvalidArgument, err)
		}
		rec.Changes = res.Changes
		out = res.Spec
		annotate(out, fmt.Sprintf("%d changes%s", countChanges(res.Changes), ruleList(changeRules(res.Changes))), d)
	}
	t.mark("harden")
	return &hardening{rec: rec, decision: d, host: host}, out, nil
}

// preparedRecord returns the record `shim start` left, if the bundle's
// config.json is the one it hardened, under the policy file Create would
// use. Anything else (no record, another digest, another policy, a record
// Create wrote) means: harden here.
func preparedRecord(bundle, policyPath string) (*record, bool) {
	data, err := os.ReadFile(filepath.Join(bundle, RecordFile))
	if err != nil {
		return nil, false
	}
	var rec record
	if json.Unmarshal(data, &rec) != nil || (rec.By != "start" && rec.By != "prepare") || rec.PolicyPath != policyPath || rec.ConfigDigest == "" || rec.Signature == nil {
		return nil, false
	}
	config, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, false
	}
	sum := sha256.Sum256(config)
	if hex.EncodeToString(sum[:]) != rec.ConfigDigest {
		return nil, false
	}
	return &rec, true
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
	logger.WithField("rule", rec.Rule).Info("hardened: " + rec.Reason)
	if v := rec.Signature; v != nil {
		entry := logger.WithField("image", v.Image).WithField("digest", v.Digest)
		if v.Builtin {
			entry.Warn("hardened: IMAGE SIGNATURES ARE NOT VERIFIED: the node policy has no signatures section, so every image is accepted; add one (see `hardenctl policy validate`)")
		} else {
			entry.Info("hardened: signature: " + v.Summary())
		}
	}
}

func (s *service) remember(id string, c *hardenedContainer) {
	s.mu.Lock()
	s.containers[id] = c
	s.mu.Unlock()
}

// classify marks err with an errdefs kind, so that containerd and the
// kubelet show it well. The cause is kept as text only: one line, once
// (errgrpc would otherwise carry each wrapped error again).
func classify(kind, err error) error {
	return fmt.Errorf("%w: %s", kind, err.Error())
}

func annotate(s *specs.Spec, summary string, d *policy.Decision) {
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[ChangesAnnotation] = summary
	s.Annotations[LevelAnnotationApplied] = d.Level.Name + " (" + string(d.Mode) + ")"
}

// Exec hardens the exec'd process like the container's own: containerd
// builds it from its stored, unhardened spec (root, default capabilities).
// Every exec is recorded (execaudit): one line in the log, one
// /hardened/exec event; a level with exec: deny refuses it.
func (s *service) Exec(ctx context.Context, r *taskAPI.ExecProcessRequest) (*emptypb.Empty, error) {
	audit, err := s.hardenExec(ctx, r)
	if err != nil {
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

// hardenExec hardens the exec's process and returns its audit event; with
// an error, the event of the refusal when the level refused it.
func (s *service) hardenExec(ctx context.Context, r *taskAPI.ExecProcessRequest) (*event.Event, error) {
	s.mu.Lock()
	c := s.containers[r.ID]
	s.mu.Unlock()
	if c == nil {
		// Not created by this shim process: nothing to exec into.
		return nil, fmt.Errorf("hardened: exec %s in container %s: %w: the container was not created by this shim", r.ExecID, r.ID, errdefs.ErrNotFound)
	}
	v, err := typeurl.UnmarshalAny(r.Spec)
	if err != nil {
		return nil, classify(errdefs.ErrInvalidArgument, fmt.Errorf("hardened: exec %s: %w", r.ExecID, err))
	}
	p, ok := v.(*specs.Process)
	if !ok {
		return nil, fmt.Errorf("hardened: exec %s: %w: process spec of type %T", r.ExecID, errdefs.ErrInvalidArgument, v)
	}
	container, err := readSpec(c.bundle)
	if err != nil {
		return nil, fmt.Errorf("hardened: exec %s: %w", r.ExecID, err)
	}
	named := s.execContainer(ctx, c, r.ID, container)
	level, host, err := s.levelOf(c)
	if err != nil {
		return nil, classify(errdefs.ErrFailedPrecondition, fmt.Errorf("hardened: exec %s in container %s: %w", r.ExecID, r.ID, err))
	}
	if err := execaudit.Check(level, r.ID, r.ExecID, p); err != nil {
		if c.mode != policy.Audit {
			return execaudit.Refused(named, r.ExecID, p, err), err
		}
		log.G(ctx).WithField("id", r.ID).WithField("exec", r.ExecID).Warn("hardened audit: " + err.Error())
	}
	if c.mode == policy.Audit {
		return execaudit.Record(named, r.ExecID, p, p, nil), nil
	}
	hp, changes, err := spec.HardenProcess(p, container, level, spec.Inputs{Host: host})
	if err != nil {
		return nil, classify(errdefs.ErrFailedPrecondition, fmt.Errorf("hardened: exec %s in container %s: %w", r.ExecID, r.ID, err))
	}
	any, err := typeurl.MarshalAnyToProto(hp)
	if err != nil {
		return nil, err
	}
	r.Spec = any
	return execaudit.Record(named, r.ExecID, p, hp, changes), nil
}

// levelOf returns the level and host facts of a container's execs.
func (s *service) levelOf(c *hardenedContainer) (*profiles.Level, spec.Host, error) {
	s.mu.Lock()
	level, host := c.level, c.host
	s.mu.Unlock()
	if level != nil {
		return level, host, nil
	}
	pol, err := s.policyAt(c.policyPath)
	if err != nil {
		return nil, host, fmt.Errorf("invalid node policy %s: %w", c.policyPath, err)
	}
	level, ok := pol.Level(c.levelName)
	if !ok {
		return nil, host, fmt.Errorf("level %q of the container is no longer in the node policy %s", c.levelName, c.policyPath)
	}
	host = s.host.host(level.AppArmor.Profile)
	s.mu.Lock()
	c.level, c.host = level, host
	s.mu.Unlock()
	return level, host, nil
}

// Delete forgets the container once runc has deleted it.
func (s *service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	resp, err := s.TTRPCTaskService.Delete(ctx, r)
	if err == nil && r.ExecID == "" {
		s.forget(r.ID)
	}
	return resp, err
}

func (s *service) forget(id string) {
	s.mu.Lock()
	delete(s.containers, id)
	s.mu.Unlock()
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
