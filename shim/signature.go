package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/spec"
	"github.com/hardened-runtime/hardened/verify/verdict"
)

// VerifyBinary is the signature verifier the shim runs on a cache miss
// (cmd/hardened-verify). It is looked for in VerifyBinEnv, then next to
// the shim's own binary, then on $PATH.
const VerifyBinary = "hardened-verify"

// VerifyBinEnv names the verifier binary explicitly.
const VerifyBinEnv = "HARDENED_VERIFY_BIN"

func verdictCacheDir() string {
	d := imageCacheDir()
	if d == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(d), "verdicts")
}

// verifySignature decides whether the node policy accepts the image the
// container runs, before anything is hardened or started. Built-in policy
// (no signatures section): accepted, recorded as not verified. A scope
// that rejects or accepts anything is decided here; one that needs a
// signature is answered from the verdict cache or, on a miss, by the
// hardened-verify binary, which talks to the registry (so the shim never
// loads the registry client or the sigstore libraries).
//
// What binds the verdict to what runs: the digest is containerd's image
// record's, the container's rootfs snapshot must have that image's layers
// (chain id) as its parent, root.path must be the bundle's rootfs, and
// Create checks the task's rootfs mounts against the snapshot's
// (checkTask). So a container record cannot name a signed image and run
// another.
//
// The scope comes from the section of the pod's Kubernetes namespace
// (kubernetesNamespace, a claim containerd's records confirmed; "" outside
// Kubernetes) when the policy has per-namespace sections; pinned
// requirements judge reference, the reference the container was created
// from (for CRI, the pod spec's image).
func (p *pipeline) verifySignature(ctx context.Context, pol *policy.Policy, req request, img imageRecord, rootPath, kubernetesNamespace, reference string) (*verdict.Verdict, error) {
	sigs := pol.Signatures
	if sigs == nil || sigs.Builtin {
		return &verdict.Verdict{Image: img.Name, Digest: img.Digest, Scope: "default", Builtin: true,
			Requirements: []verdict.Satisfied{{Type: policy.InsecureAcceptAnything}}}, nil
	}
	section := ""
	refuseFix := func(scope, fix, format string, args ...any) error {
		r := &verdict.Refusal{Image: img.Name, Digest: img.Digest, Scope: scope, Namespace: section, Reason: fmt.Sprintf(format, args...), Fix: fix}
		return refuse(errFailedPrecondition, "%s", r.Error())
	}
	if img.Name == "" {
		sc := policy.Scope{Name: "default", Requirements: sigs.Default}
		if allAccept(sc) {
			return &verdict.Verdict{Scope: "default", PolicyHash: sigs.Hash, Requirements: satisfiedAll(sc)}, nil
		}
		return nil, refuse(errFailedPrecondition, "container has no image (made from a root filesystem): the signature policy's default requires a signed image")
	}
	if reference == "" {
		reference = img.Name
	}
	sc, err := sigs.MatchIn(kubernetesNamespace, img.Name, img.Digest, img.PlatformDigest)
	if errors.Is(err, policy.ErrNamespaceNeeded) {
		return nil, refuseFix("-", "create the container through the CRI plugin (a pod), or give the policy's signatures a section that applies outside Kubernetes", "%v", err)
	}
	if err != nil {
		return nil, refuseFix("-", verdict.NameFix, "%v", err)
	}
	section = sc.Namespace
	if sc.Rejects() {
		return nil, refuseFix(sc.Name, verdict.RejectFix, "the scope's requirements include reject")
	}
	// What runs must be the image the record names, whatever its scope
	// requires: its rootfs (Create checks the task's mounts against the
	// snapshot's), no other root path.
	if rootPath != "rootfs" && filepath.Clean(rootPath) != filepath.Join(req.Bundle, "rootfs") {
		return nil, refuseFix(sc.Name, verdict.BindingFix, "root.path is %q, not the bundle's rootfs: the container would not run its image", rootPath)
	}
	if img.SnapshotKey == "" {
		return nil, refuseFix(sc.Name, verdict.BindingFix, "the container's rootfs is not a snapshot of the image, so it cannot be bound to the signed digest")
	}
	if img.ChainID == "" || img.SnapshotParent != img.ChainID {
		return nil, refuseFix(sc.Name, verdict.BindingFix, "the container's rootfs snapshot %s has parent %q, not the image's layers %s: it does not run the image its record names",
			img.SnapshotKey, img.SnapshotParent, img.ChainID)
	}
	// Pinning is decided here, on the reference the container was created
	// from, before any cached verdict counts.
	if err := sc.CheckPinning(reference, img.Digest, img.PlatformDigest); err != nil {
		var pe *policy.PinningError
		if errors.As(err, &pe) {
			return nil, refuseFix(sc.Name, pe.Fix, "%s", pe.Reason)
		}
		return nil, refuseFix(sc.Name, verdict.NameFix, "%v", err)
	}
	subject := verdict.Subject{PolicyHash: sigs.Hash, Image: img.Name, Digest: img.Digest, PlatformDigest: img.PlatformDigest, KubernetesNamespace: sc.Namespace}
	if reference != img.Name {
		subject.Reference = reference
	}
	if !sc.NeedsVerifier() {
		return &verdict.Verdict{Image: img.Name, Digest: img.Digest, PlatformDigest: img.PlatformDigest, Scope: sc.Name, PolicyHash: sigs.Hash,
			KubernetesNamespace: sc.Namespace, Reference: subject.Reference, Requirements: satisfiedAll(sc)}, nil
	}
	cache := verdict.Cache{Dir: p.verdictDir, TTL: time.Duration(sigs.VerdictTTL)}
	if v, ok := cache.LoadSubject(subject); ok {
		return v, nil
	}
	return p.runVerifier(ctx, req.Policy.Path, subject, kubernetesNamespace)
}

func allAccept(sc policy.Scope) bool { return sc.AcceptsAnything() }

func satisfiedAll(sc policy.Scope) []verdict.Satisfied {
	var out []verdict.Satisfied
	for _, r := range sc.Requirements {
		out = append(out, verdict.Satisfied{Type: r.Type})
	}
	return out
}

// verifierPath finds the hardened-verify binary.
func verifierPath() (string, error) {
	if p := os.Getenv(VerifyBinEnv); p != "" {
		return p, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), VerifyBinary)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(VerifyBinary); err == nil {
		return p, nil
	}
	return "", refuse(errFailedPrecondition, "%s is not installed next to the shim nor on $PATH: the policy requires signatures, so containers cannot start (install it with `hardenctl install`)", VerifyBinary)
}

// runVerifier runs hardened-verify for the image: exit 0 and a verdict on
// stdout, 1 a refusal on stderr, anything else an error.
func (p *pipeline) runVerifier(ctx context.Context, policyPath string, sub verdict.Subject, kubernetesNamespace string) (*verdict.Verdict, error) {
	bin, err := verifierPath()
	if err != nil {
		return nil, err
	}
	hash := sub.PolicyHash
	img := imageRecord{ImageInfo: spec.ImageInfo{Name: sub.Image, Digest: sub.Digest}, PlatformDigest: sub.PlatformDigest}
	args := []string{"--policy", policyPath, "--policy-hash", hash, "--image", img.Name, "--digest", img.Digest,
		"--kubernetes-namespace", kubernetesNamespace}
	if img.PlatformDigest != "" {
		args = append(args, "--platform-digest", img.PlatformDigest)
	}
	if sub.Reference != "" {
		args = append(args, "--reference", sub.Reference)
	}
	if p.verdictDir != "" {
		args = append(args, "--cache-dir", p.verdictDir)
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	stdout, stderr, code, err := p.runCommand(ctx, exec.Command(bin, args...))
	msg := strings.TrimSpace(string(stderr))
	switch {
	case err == nil && code == 0:
		var v verdict.Verdict
		if err := json.Unmarshal(stdout, &v); err != nil {
			return nil, fmt.Errorf("%s: bad verdict: %w", VerifyBinary, err)
		}
		if v.Image != img.Name || v.Digest != img.Digest || v.PlatformDigest != img.PlatformDigest || v.PolicyHash != hash ||
			v.KubernetesNamespace != sub.KubernetesNamespace || v.Reference != sub.Reference {
			return nil, fmt.Errorf("%s answered for another image or policy", VerifyBinary)
		}
		return &v, nil
	case err == nil && code == 1:
		return nil, refuse(errFailedPrecondition, "%s", msg)
	case ctx.Err() != nil:
		return nil, refuse(errFailedPrecondition, "image %s: signature check timed out: %v", img.Name, ctx.Err())
	default:
		if msg == "" && err != nil {
			msg = err.Error()
		} else if msg == "" {
			msg = fmt.Sprintf("exit status %d", code)
		}
		return nil, fmt.Errorf("signature check of image %s: %s", img.Name, msg)
	}
}

// commandRunner runs a command to its end and returns what it wrote and
// its exit code. A short-lived process waits for it with exec.Cmd; the
// long-running shim, a subreaper whose reaper collects every child, must
// wait through containerd's reaper (reaperRunner).
type commandRunner func(ctx context.Context, cmd *exec.Cmd) (stdout, stderr []byte, code int, err error)

// execRunner is commandRunner for a process that reaps its own children.
func execRunner(ctx context.Context, cmd *exec.Cmd) ([]byte, []byte, int, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, 0, err
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			cmd.Process.Kill()
		case <-done:
		}
	}()
	err := cmd.Wait()
	close(done)
	if exit, ok := err.(*exec.ExitError); ok && exit.Exited() {
		return stdout.Bytes(), stderr.Bytes(), exit.ExitCode(), nil
	}
	if err != nil {
		return stdout.Bytes(), stderr.Bytes(), 0, err
	}
	return stdout.Bytes(), stderr.Bytes(), 0, nil
}
