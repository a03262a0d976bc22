package shim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/spec"
	"github.com/hardened-runtime/hardened/verify/verdict"
)

// pipeline hardens one container. Every path runs it: `shim start` for a
// container that gets a shim of its own (while the long-running shim it
// spawns starts up), Create in the long-running shim for a container that
// joins a pod's shim (containerd runs no `shim start` for those) or whose
// `shim start` could not finish. Its steps, in order:
//
//  1. containerd: the container's record, its image's record and config
//     (containerd.go, images.go), the CRI pod it claims (podclaim.go);
//     beside them, the node policy (policy.go) and the bundle's spec;
//  2. policy: the level and mode for the workload;
//  3. verify: the image's signature, bound to the container's rootfs
//     (signature.go);
//  4. spec: spec.Harden (enforce) or spec.Check (audit), with what the
//     node and containerd say about the host and the container;
//  5. bundle: the record and the hardened config.json (bundle.go).
//
// Create then checks the task it is asked to create against the record
// (checkTask) and hands it to runc. Any error refuses the container: a
// refusal (the policy's decision) is recorded in the bundle; any other
// error (containerd unreachable) leaves the bundle as it was.
type pipeline struct {
	// by is recorded in the record: "shim start" or "create".
	by string
	// records reads containerd's records.
	records *records
	// host answers what the rules ask about this node.
	host *hostProbe
	// imageCache holds image facts by digest; verdictDir signature
	// verdicts ("" disables either).
	imageCache imageCache
	verdictDir string
	// runCommand runs hardened-verify.
	runCommand commandRunner
}

func newPipeline(by, address string, run commandRunner) *pipeline {
	return &pipeline{by: by, records: newRecords(address), host: newHostProbe(address),
		imageCache: imageCache(imageCacheDir()), verdictDir: verdictCacheDir(), runCommand: run}
}

// request is one container to harden.
type request struct {
	Namespace, ID, Bundle string
	Policy                policySource
}

// run hardens the container of req and returns its record, as written to
// the bundle.
func (p *pipeline) run(ctx context.Context, req request) (*record, error) {
	t := newTimer()
	rec := &record{Version: recordVersion, By: p.by, PolicyPath: req.Policy.Path,
		Container: containerFacts{ID: req.ID, Namespace: req.Namespace}}
	out, err := p.harden(ctx, req, rec, t)
	var r *refusal
	if errors.As(err, &r) {
		// The policy's decision: recorded, so that Create returns it as
		// it is, without deciding again.
		rec.Refusal = r
		rec.Timing = t.String()
		_ = writeHardened(req.Bundle, rec, nil)
		return rec, err
	}
	if err != nil {
		return nil, err
	}
	t.mark("harden")
	rec.Timing = t.String()
	if err := writeHardened(req.Bundle, rec, out); err != nil {
		if u := rec.UserNamespace; u != nil && taskStateGone(req.Bundle, req.Namespace, req.ID) {
			dropHold(ctx, u.Owner, req.ID) // no record says it holds the range
		}
		return nil, err
	}
	return rec, nil
}

// harden is steps 1 to 4: it fills rec and returns the spec to write.
func (p *pipeline) harden(ctx context.Context, req request, rec *record, t *timer) (*specs.Spec, error) {
	// 1. containerd's records, and beside them what is on this node: the
	// policy, the spec, and the CRI sandbox the spec claims.
	type local struct {
		pol     *policy.Policy
		in      *specs.Spec
		claim   podClaim
		claimed bool
		sandbox *containersapi.Container
		sbErr   error
		err     error
	}
	lc := make(chan local, 1)
	lt := t.sub("local:")
	go func() {
		var l local
		defer func() { lc <- l }()
		if l.pol, l.err = loadPolicy(req.Policy); l.err != nil {
			return
		}
		lt.mark("policy")
		if l.in, l.err = readSpec(req.Bundle); l.err != nil {
			l.err = refuse(errInvalidArgument, "%v", l.err)
			return
		}
		lt.mark("spec")
		// A container of a pod: its sandbox's record, beside its own.
		if l.claim, l.claimed = podClaimOf(l.in.Annotations); l.claimed && l.claim.SandboxID != "" && l.claim.SandboxID != req.ID {
			l.sandbox, l.sbErr = p.records.sandboxContainer(ctx, req.Namespace, l.claim.SandboxID)
			lt.mark("sandbox")
		}
	}()
	ctr, lookErr := p.records.container(ctx, req.Namespace, req.ID)
	t.mark("container")
	if lookErr == nil {
		// What a CRI container's config asked for itself (the pod's
		// supplementalGroups and fsGroup); unreadable is unknown, which
		// only drops groups.
		c := &rec.Container
		md := ctr.GetExtensions()[CRIMetadataExtension].GetValue()
		c.SupplementalGroups, c.SupplementalGroupsKnown, _ = criSupplementalGroups(md)
		// The reference the pod spec named (pinned requirements judge it):
		// CRI records the kubelet's user_specified_image.
		c.Reference = criUserSpecifiedImage(md)
		c.LogPath, c.TerminationMessagePath = criExitFacts(md)
	}
	var snap chan snapshotFacts // the rootfs snapshot, beside the image
	if lookErr == nil && ctr.Image != "" {
		rec.Image = imageRecord{ImageInfo: spec.ImageInfo{Name: ctr.Image}, Snapshotter: ctr.Snapshotter, SnapshotKey: ctr.SnapshotKey}
		snap = p.snapshotSoon(ctx, req.Namespace, &rec.Image)
		lookErr = p.image(ctx, req.Namespace, &rec.Image)
		t.mark("image")
	}
	l := <-lc
	if l.err != nil {
		return nil, l.err
	}
	if lookErr != nil {
		return nil, lookErr
	}
	pol, in := l.pol, l.in
	rec.Policy, rec.PolicyHash = pol.Source, pol.Hash
	if l.claimed {
		// A claim any client could make: used only when containerd's
		// records say the same, refused otherwise (a rule for the claimed
		// Kubernetes namespace may be stricter than the default).
		if l.sbErr != nil {
			return nil, l.sbErr
		}
		sb := l.sandbox
		if l.claim.SandboxID == req.ID {
			sb = ctr // a pod's sandbox container is its own record
		}
		if err := checkPodClaim(l.claim, ctr, sb); err != nil {
			return nil, refuse(errFailedPrecondition, "the spec's annotations claim CRI pod %s (uid %q, Kubernetes namespace %q), which containerd's records do not confirm: %v; fix: create the container through the CRI plugin, or leave out the io.kubernetes.cri.* annotations",
				l.claim.SandboxID, l.claim.PodUID, l.claim.Namespace, err)
		}
		c := &rec.Container
		c.SandboxID, c.PodUID, c.KubernetesNamespace = l.claim.SandboxID, l.claim.PodUID, l.claim.Namespace
		c.Claim = "pod claim verified against containerd's container and sandbox records"
	}

	// 2. The level, from what containerd's records say.
	d, err := pol.Resolve(policy.Workload{
		KubernetesNamespace: rec.Container.KubernetesNamespace,
		ContainerdNamespace: req.Namespace,
		Image:               rec.Image.Name,
		Annotations:         in.Annotations,
	})
	if err != nil {
		return nil, refuse(errInvalidArgument, "%v", err)
	}
	rec.Level, rec.LevelData, rec.Mode, rec.Rule, rec.Reason = d.Level.Name, d.Level, d.Mode, d.Rule, d.Reason

	// 3. The signature of the image that runs (bound to the snapshot,
	// whose mounts also show the rules the image's files: imageFS).
	if snap != nil {
		if err := (<-snap).into(&rec.Image, !pol.Signatures.Builtin); err != nil {
			return nil, err
		}
		t.mark("snapshot")
	}
	rootPath := ""
	if in.Root != nil {
		rootPath = in.Root.Path
	}
	if rec.Signature, err = p.verifySignature(ctx, pol, req, rec.Image, rootPath, rec.Container.KubernetesNamespace, rec.Container.Reference); err != nil {
		return nil, err
	}
	t.mark("signature")

	// 4. The spec, under the level.
	host := p.host.host(d.Level.AppArmor.Profile)
	if host.ContainerdRoot, host.ContainerdState, err = containerdDirs(req.Bundle, req.Namespace, req.ID); err != nil {
		return nil, err
	}
	host.KubeletRoot = pol.KubeletRoot
	inputs := spec.Inputs{Image: rec.Image.ImageInfo, Host: host, Container: spec.ContainerInfo{
		ID: req.ID, Namespace: req.Namespace, Bundle: req.Bundle, SandboxID: rec.Container.SandboxID, PodUID: rec.Container.PodUID,
		SupplementalGroups: rec.Container.SupplementalGroups, SupplementalGroupsKnown: rec.Container.SupplementalGroupsKnown,
		VolumeDir: volumeDirOf(pol, host.ContainerdRoot, req.Namespace, req.ID)}}
	// Root in a user namespace: the pod's range (userns.go).
	if err := p.reserveUserNamespace(ctx, req, rec, d, in, &inputs); err != nil {
		return nil, err
	}
	t.mark("userns")
	out, err := p.hardenSpec(req, rec, d, in, inputs, pol.VolumesDir)
	if serr := p.settleUserNamespace(ctx, req, rec, out); serr != nil && err == nil {
		return nil, serr
	}
	return out, err
}

// hardenSpec is step 4 proper: the engine under the level.
func (p *pipeline) hardenSpec(req request, rec *record, d *policy.Decision, in *specs.Spec, inputs spec.Inputs, volumesDir string) (*specs.Spec, error) {
	if d.Mode == policy.Audit {
		vs, err := spec.Check(in, d.Level, inputs)
		if err != nil {
			return nil, refuse(errInvalidArgument, "%v", err)
		}
		rec.Violations = append(rec.Violations, vs...)
		vs = rec.Violations
		out := deepCopySpec(in)
		annotate(out, fmt.Sprintf("audit: %d violations%s", len(vs), ruleList(violationRules(vs))), d)
		return out, nil
	}
	res, err := spec.Harden(in, d.Level, inputs)
	var refused *spec.RefusedError
	if errors.As(err, &refused) {
		return nil, refuse(errFailedPrecondition, "%v", err)
	}
	if err != nil {
		return nil, refuse(errInvalidArgument, "%v", err)
	}
	rec.Changes = res.Changes
	rec.Writable = newWritableFacts(inputs.Container.VolumeDir, volumesDir, res)
	annotate(res.Spec, fmt.Sprintf("%d changes%s", countChanges(res.Changes), ruleList(changeRules(res.Changes))), d)
	return res.Spec, nil
}

// checkTask is the last check before runc: the task Create is asked to
// create must be the container the record is about. containerd's clients
// send the rootfs mounts with the task (and may add their own), and a
// checkpoint restores a process image no check has seen.
func checkTask(rec *record, r *taskAPI.CreateTaskRequest) error {
	if vs := spec.CheckRestore(r.Checkpoint, rec.LevelData); len(vs) > 0 {
		return refuse(errFailedPrecondition, "%v", &spec.RefusedError{Level: rec.Level, Violations: vs})
	}
	if v := rec.Signature; r.Checkpoint != "" && v != nil && !v.Builtin {
		return refuse(errFailedPrecondition, "restoring a checkpoint is refused under the node's signatures policy: no signature covers the process image it restores; fix: start the container from its image")
	}
	same := len(r.Rootfs) == len(rec.Image.SnapshotMounts)
	for i := 0; same && i < len(r.Rootfs); i++ {
		m, w := r.Rootfs[i], rec.Image.SnapshotMounts[i]
		same = m.Type == w.Type && m.Source == w.Source && m.Target == w.Target && slices.Equal(m.Options, w.Options)
	}
	if v := rec.Signature; !same && v != nil && !v.Builtin && rec.Image.Name != "" {
		return refuse(errFailedPrecondition, "%s", (&verdict.Refusal{Image: rec.Image.Name, Digest: rec.Image.Digest, Scope: v.Scope, Fix: verdict.BindingFix,
			Reason: fmt.Sprintf("the task's rootfs mounts are not those of snapshot %s of the image: the container would not run the image whose signature was checked", rec.Image.SnapshotKey)}).Error())
	}
	// Whatever the signatures policy: the runtime copies files of the
	// rootfs into what the container may write (state paths, volumes on
	// disk) and gives them to its user, so the rootfs must be the
	// container's own snapshot, not any mount a client sends (a bind of
	// the host's / would hand out /etc/shadow). A task with no rootfs
	// mounts runs the spec's root.path, which the engine judged.
	if !same && len(r.Rootfs) > 0 {
		if rec.Image.SnapshotMounts == nil {
			return refuse(errFailedPrecondition, "the task's rootfs mounts (%s %s) are not a snapshot of containerd's that the runtime could read for container %s (snapshot key %q); fix: create the container with a snapshot (containerd's WithNewSnapshot, as ctr and the CRI plugin do), or give it a root.path",
				r.Rootfs[0].Type, r.Rootfs[0].Source, r.ID, rec.Image.SnapshotKey)
		}
		return refuse(errFailedPrecondition, "the task's rootfs mounts (%s %s) are not those of the container's snapshot %s; fix: create the task with the snapshot's mounts (as containerd's client does), not mounts of your own",
			r.Rootfs[0].Type, r.Rootfs[0].Source, rec.Image.SnapshotKey)
	}
	return nil
}

// refusal is the policy's decision not to run a container, as containerd
// and the kubelet show it: one line, classified.
type refusal struct {
	// Kind is "invalid argument" (the request cannot be judged: a broken
	// spec, an unknown level) or "failed precondition" (the policy does
	// not allow it).
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

var (
	errInvalidArgument    = errdefs.ErrInvalidArgument
	errFailedPrecondition = errdefs.ErrFailedPrecondition
)

// refuse returns a refusal of kind (errInvalidArgument or
// errFailedPrecondition).
func refuse(kind error, format string, args ...any) *refusal {
	return &refusal{Kind: kind.Error(), Message: fmt.Sprintf(format, args...)}
}

func (r *refusal) Error() string { return r.Kind + ": " + r.Message }

// Unwrap gives errdefs (and so errgrpc) the kind.
func (r *refusal) Unwrap() error {
	if r.Kind == errInvalidArgument.Error() {
		return errInvalidArgument
	}
	return errFailedPrecondition
}

// timer records the elapsed time at named steps.
type timer struct {
	t0       time.Time
	steps    []string
	children []*timer
}

func newTimer() *timer { return &timer{t0: time.Now()} }

func (t *timer) mark(name string) {
	if t != nil {
		t.steps = append(t.steps, fmt.Sprintf("%s=%s", name, time.Since(t.t0).Round(10*time.Microsecond)))
	}
}

func (t *timer) String() string {
	if t == nil {
		return ""
	}
	s := strings.Join(t.steps, " ")
	for _, c := range t.children {
		s += " [" + c.String() + "]"
	}
	return s
}

// sub is a timer with the same start for a concurrent part of the work,
// printed after t's steps.
func (t *timer) sub(name string) *timer {
	c := &timer{t0: t.t0, steps: []string{name}}
	t.children = append(t.children, c)
	return c
}
