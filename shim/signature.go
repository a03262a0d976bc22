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
	"slices"
	"strings"
	"time"

	"github.com/containerd/containerd/api/types"
	"github.com/containerd/errdefs"

	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/verify/verdict"
)

// VerifyBinary is the signature verifier the shim runs on a cache miss
// (cmd/hardened-verify). It is looked for in VerifyBinEnv, then next to
// the shim's own binary, then on $PATH.
const VerifyBinary = "hardened-verify"

// VerifyBinEnv names the verifier binary explicitly.
const VerifyBinEnv = "HARDENED_VERIFY_BIN"

// RefusalFile is where a short-lived process leaves a signature refusal
// for Create to return.
const RefusalFile = "hardened-refused.txt"

// signatureError is a refusal by the signature policy.
type signatureError struct{ msg string }

func (e *signatureError) Error() string { return e.msg }

func verdictCacheDir() string {
	d := imageCacheDir()
	if d == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(d), "verdicts")
}

// checkSignature decides whether the node policy accepts the image the
// container runs, before anything is hardened or started. Built-in policy
// (no signatures section): accepted, recorded as not verified. A scope
// that rejects or accepts anything is decided here; one that needs a
// signature is answered from the verdict cache or, on a miss, by the
// hardened-verify binary, which talks to the registry.
//
// The image is the one containerd's records name; the container's rootfs
// snapshot must descend from that image's layers, so that a container
// record cannot name a signed image and run another.
func checkSignature(ctx context.Context, pol *policy.Policy, policyPath string, img imageRecord, rootPath, bundle string) (*verdict.Verdict, error) {
	sigs := pol.Signatures
	if sigs == nil || sigs.Builtin {
		return &verdict.Verdict{Image: img.Name, Digest: img.Digest, Scope: "default", Builtin: true,
			Requirements: []verdict.Satisfied{{Type: policy.InsecureAcceptAnything}}}, nil
	}
	refuseFix := func(scope, fix, format string, args ...any) error {
		r := &verdict.Refusal{Image: img.Name, Digest: img.Digest, Scope: scope, Reason: fmt.Sprintf(format, args...), Fix: fix}
		return &signatureError{r.Error()}
	}
	if img.Name == "" {
		sc := policy.Scope{Name: "default", Requirements: sigs.Default}
		if allAccept(sc) {
			return &verdict.Verdict{Scope: "default", PolicyHash: sigs.Hash, Requirements: satisfiedAll(sc)}, nil
		}
		return nil, &signatureError{"container has no image (made from a root filesystem): the signature policy's default requires a signed image"}
	}
	sc, err := sigs.Match(img.Name, img.Digest, img.PlatformDigest)
	if err != nil {
		return nil, refuseFix("-", verdict.NameFix, "%v", err)
	}
	for _, r := range sc.Requirements {
		if r.Type == policy.Reject {
			return nil, refuseFix(sc.Name, verdict.RejectFix, "the scope's requirements include reject")
		}
	}
	// What runs must be the image the record names, whatever its scope
	// requires: its rootfs (Create checks the task's mounts against the
	// snapshot's), no other root path.
	if rootPath != "rootfs" && filepath.Clean(rootPath) != filepath.Join(bundle, "rootfs") {
		return nil, refuseFix(sc.Name, verdict.BindingFix, "root.path is %q, not the bundle's rootfs: the container would not run its image", rootPath)
	}
	if img.SnapshotKey == "" {
		return nil, refuseFix(sc.Name, verdict.BindingFix, "the container's rootfs is not a snapshot of the image, so it cannot be bound to the signed digest")
	}
	if img.ChainID == "" || img.SnapshotParent != img.ChainID {
		return nil, refuseFix(sc.Name, verdict.BindingFix, "the container's rootfs snapshot %s has parent %q, not the image's layers %s: it does not run the image its record names",
			img.SnapshotKey, img.SnapshotParent, img.ChainID)
	}
	if allAccept(sc) {
		return &verdict.Verdict{Image: img.Name, Digest: img.Digest, PlatformDigest: img.PlatformDigest, Scope: sc.Name, PolicyHash: sigs.Hash, Requirements: satisfiedAll(sc)}, nil
	}
	cache := verdict.Cache{Dir: verdictCacheDir(), TTL: time.Duration(sigs.VerdictTTL)}
	if v, ok := cache.Load(sigs.Hash, img.Name, img.Digest, img.PlatformDigest); ok {
		return v, nil
	}
	return runVerifier(ctx, policyPath, sigs.Hash, img, cache.Dir)
}

func allAccept(sc policy.Scope) bool {
	for _, r := range sc.Requirements {
		if r.Type != policy.InsecureAcceptAnything {
			return false
		}
	}
	return true
}

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
	return "", fmt.Errorf("%s is not installed next to the shim nor on $PATH: the policy requires signatures, so containers cannot start (install it with `hardenctl install`)", VerifyBinary)
}

// runVerifier runs hardened-verify for the image: exit 0 and a verdict on
// stdout, 1 a refusal on stderr, anything else an error.
func runVerifier(ctx context.Context, policyPath, hash string, img imageRecord, cacheDir string) (*verdict.Verdict, error) {
	bin, err := verifierPath()
	if err != nil {
		return nil, err
	}
	args := []string{"--policy", policyPath, "--policy-hash", hash, "--image", img.Name, "--digest", img.Digest}
	if img.PlatformDigest != "" {
		args = append(args, "--platform-digest", img.PlatformDigest)
	}
	if cacheDir != "" {
		args = append(args, "--cache-dir", cacheDir)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	msg := strings.TrimSpace(stderr.String())
	var exit *exec.ExitError
	switch {
	case err == nil:
		var v verdict.Verdict
		if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
			return nil, fmt.Errorf("%s: bad verdict: %w", VerifyBinary, err)
		}
		if v.Image != img.Name || v.Digest != img.Digest || v.PlatformDigest != img.PlatformDigest || v.PolicyHash != hash {
			return nil, fmt.Errorf("%s answered for another image or policy", VerifyBinary)
		}
		return &v, nil
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return nil, &signatureError{msg}
	case ctx.Err() != nil:
		return nil, &signatureError{fmt.Sprintf("image %s: signature check timed out: %v", img.Name, ctx.Err())}
	default:
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("signature check of image %s: %s", img.Name, msg)
	}
}

// writeRefusal leaves a signature refusal in the bundle for Create.
func writeRefusal(bundle string, err error) {
	var se *signatureError
	if errors.As(err, &se) {
		_ = writeFileAtomic(filepath.Join(bundle, RefusalFile), []byte(se.msg+"\n"), 0o600)
	}
}

// checkTaskRootfs refuses a task whose root filesystem or checkpoint is
// not what the verdict was about: containerd's clients send the rootfs
// mounts with Create (and may add their own), and a checkpoint restores a
// process image no signature covers. Only under a signatures section.
func checkTaskRootfs(bundle string, v *verdict.Verdict, rootfs []*types.Mount, checkpoint string) error {
	if v == nil || v.Builtin {
		return nil
	}
	if checkpoint != "" {
		return classify(errdefs.ErrFailedPrecondition, errors.New("restoring a checkpoint is refused under the node's signatures policy: no signature covers its memory"))
	}
	img, ok, err := fromBundle(bundle)
	if err != nil || !ok {
		return classify(errdefs.ErrFailedPrecondition, fmt.Errorf("no image facts in the bundle to check the rootfs against (%v)", err))
	}
	if img.Name == "" {
		return nil // no image: the policy's default allowed that (checkSignature)
	}
	same := len(rootfs) == len(img.SnapshotMounts)
	for i := 0; same && i < len(rootfs); i++ {
		m, w := rootfs[i], img.SnapshotMounts[i]
		same = m.Type == w.Type && m.Source == w.Source && m.Target == w.Target && slices.Equal(m.Options, w.Options)
	}
	if !same {
		return classify(errdefs.ErrFailedPrecondition, fmt.Errorf("the task's rootfs mounts are not those of snapshot %s of image %s: the container would not run the image whose signature was checked", img.SnapshotKey, img.Name))
	}
	return nil
}

// readRefusal returns the refusal a short-lived process left, if any.
func readRefusal(bundle string) error {
	data, err := os.ReadFile(filepath.Join(bundle, RefusalFile))
	if err != nil {
		return nil
	}
	return classify(errdefs.ErrFailedPrecondition, errors.New(strings.TrimSpace(string(data))))
}
