package shim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-runtime/hardened/internal/atomicfile"
	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/profiles"
	"github.com/hardened-runtime/hardened/spec"
	"github.com/hardened-runtime/hardened/verify/verdict"
)

// Everything the shim writes to a container's bundle is defined in this
// file. containerd creates the bundle (<state>/io.containerd.runtime.v2.task
// /<namespace>/<id>, root's, mode 0700) with the spec in config.json; the
// shim writes:
//
//   - config.json: the hardened spec, replacing containerd's (atomically);
//   - hardened.json (RecordFile): the record of what the shim decided and
//     did, which binds config.json by its sha256;
//   - s: a symbolic link to the shim's socket directory (linkSocketDir).
//
// The record is written first: a config.json without its record is
// hardened again (Harden is idempotent), a record without its config.json
// does not match the digest. Create runs a container only with a record
// whose digest is that of config.json as runc will read it.

// RecordFile is the file in the bundle that holds the record.
const RecordFile = "hardened.json"

// recordVersion is the version of the record's format: a record of
// another version is not trusted (the container is hardened again).
const recordVersion = 2

// record is what the shim decided and did for one container.
type record struct {
	Version int `json:"version"`
	// By says which process ran the pipeline: "shim start" (the
	// short-lived process containerd runs for a container that gets a shim
	// of its own, ahead of Create) or "create" (the long-running shim, for
	// a container that joins a pod's shim).
	By string `json:"by"`

	// Container is who the container is, from containerd's records.
	Container containerFacts `json:"container"`
	// Image is the image it runs, from containerd's records.
	Image imageRecord `json:"image"`

	// Policy is where the policy came from ("built-in default" without a
	// file); PolicyPath the file Create would read; PolicyHash its sha256.
	Policy     string `json:"policy"`
	PolicyPath string `json:"policyPath"`
	PolicyHash string `json:"policyHash,omitempty"`
	// Level is the name of the level applied, Mode enforce or audit, Rule
	// and Reason why (policy.Decision).
	Level  string      `json:"level"`
	Mode   policy.Mode `json:"mode"`
	Rule   string      `json:"rule"`
	Reason string      `json:"reason"`
	// LevelData is the level itself, as applied: execs and updates are
	// judged by it, whatever the policy says by then.
	LevelData *profiles.Level `json:"levelData,omitempty"`
	// Signature is the signature policy's verdict on the image.
	Signature *verdict.Verdict `json:"signature,omitempty"`
	// Changes (enforce) or Violations (audit) of the spec.
	Changes    []spec.Change    `json:"changes,omitempty"`
	Violations []spec.Violation `json:"violations,omitempty"`
	// UserNamespace is the container's user namespace range, when root
	// runs in one (userns.go): the one the shim gave it, whose rootfs
	// Create idmaps, or the pod's own.
	UserNamespace *usernsRecord `json:"userNamespace,omitempty"`
	// Writable is what the hardening made writable (writable.go).
	Writable *writableFacts `json:"writable,omitempty"`
	// EarlyExit explains an exit with an error soon after the start
	// (exitwatch.go); written when it happens.
	EarlyExit *earlyExit `json:"earlyExit,omitempty"`

	// Refusal, when set, is why the container was refused; nothing else
	// in the record then counts.
	Refusal *refusal `json:"refusal,omitempty"`
	// ConfigDigest is the sha256 of the config.json written with the
	// record.
	ConfigDigest string `json:"configDigest,omitempty"`
	// Timing is the time of each step of the pipeline, for diagnostics.
	Timing string `json:"timing,omitempty"`
}

// containerFacts identify the container, from containerd's records.
type containerFacts struct {
	ID        string `json:"id"`
	Namespace string `json:"namespace"`
	// SandboxID, PodUID and KubernetesNamespace are the CRI pod claimed by
	// the spec's annotations, set only when containerd's records confirm
	// the claim (checkPodClaim); Claim says what was checked.
	SandboxID           string `json:"sandboxID,omitempty"`
	PodUID              string `json:"podUID,omitempty"`
	KubernetesNamespace string `json:"kubernetesNamespace,omitempty"`
	Claim               string `json:"claim,omitempty"`
	// SupplementalGroups are the groups a CRI container's config asked for
	// (containerd's record of it); Known says whether there was one.
	SupplementalGroups      []uint32 `json:"supplementalGroups,omitempty"`
	SupplementalGroupsKnown bool     `json:"supplementalGroupsKnown,omitempty"`
	// Reference is the image reference a CRI container's config named (the
	// pod spec's image, as the kubelet sends it); "" otherwise.
	Reference string `json:"reference,omitempty"`
	// LogPath is a CRI container's log file and TerminationMessagePath the
	// kubelet's terminationMessagePath in it: an early exit is explained
	// from the one and into the other (exitwatch.go).
	LogPath                string `json:"logPath,omitempty"`
	TerminationMessagePath string `json:"terminationMessagePath,omitempty"`
}

// imageRecord is the image a container runs, as containerd's records say:
// the facts the engine uses and what binds the container to the image
// whose signature is checked.
type imageRecord struct {
	spec.ImageInfo
	// PlatformDigest is, when Digest is an index, the manifest of this
	// node's platform.
	PlatformDigest string `json:",omitempty"`
	// ChainID is the chain id of the image's layers for this platform:
	// the parent a container's rootfs snapshot must have.
	ChainID string `json:",omitempty"`
	// Snapshotter, SnapshotKey and SnapshotParent describe the
	// container's rootfs snapshot.
	Snapshotter    string `json:",omitempty"`
	SnapshotKey    string `json:",omitempty"`
	SnapshotParent string `json:",omitempty"`
	// SnapshotMounts are the snapshot's mounts: what the task's rootfs
	// must be (containerd's clients compute it and send it with Create).
	// Read only under a signatures policy, and for a root container that
	// may get a user namespace (its rootfs is then idmapped).
	SnapshotMounts []rootfsMount `json:",omitempty"`
}

// rootfsMount is a mount of a container's root filesystem.
type rootfsMount struct {
	Type    string   `json:"type"`
	Source  string   `json:"source"`
	Target  string   `json:"target,omitempty"`
	Options []string `json:"options,omitempty"`
}

// writeHardened leaves the outcome of the pipeline in the bundle: the
// record, then config.json. out is nil for a refusal: config.json is
// left as it was.
func writeHardened(bundle string, rec *record, out *specs.Spec) error {
	var data []byte
	if out != nil {
		var err error
		if data, err = json.Marshal(out); err != nil {
			return fmt.Errorf("encode the hardened spec: %w", err)
		}
		sum := sha256.Sum256(data)
		rec.ConfigDigest = hex.EncodeToString(sum[:])
	}
	recData, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode %s: %w", RecordFile, err)
	}
	if err := atomicfile.Write(filepath.Join(bundle, RecordFile), recData, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", RecordFile, err)
	}
	if out == nil {
		return nil
	}
	if err := atomicfile.Write(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		return fmt.Errorf("write config.json: %w", err)
	}
	return nil
}

// readRecord returns the bundle's record if Create may trust it: written
// in this format, for the policy file Create would use, and either a
// refusal or the record of the config.json runc will read (its digest).
// ok is false otherwise (no record, another digest, another policy file):
// then the pipeline runs again.
func readRecord(bundle, policyPath string) (*record, bool) {
	data, err := os.ReadFile(filepath.Join(bundle, RecordFile))
	if err != nil {
		return nil, false
	}
	var rec record
	if json.Unmarshal(data, &rec) != nil || rec.Version != recordVersion || rec.PolicyPath != policyPath {
		return nil, false
	}
	if rec.Refusal != nil {
		return &rec, true
	}
	if rec.ConfigDigest == "" || rec.Signature == nil || rec.LevelData == nil || rec.LevelData.Name != rec.Level {
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

// maxSpecSize bounds config.json: the shim holds a few copies of the spec
// in memory while it works, and a real one is a few KiB (with every
// environment variable of a large pod, well under 1 MiB).
var maxSpecSize int64 = 16 << 20

// readSpec reads <bundle>/config.json strictly: unknown fields are an
// error rather than silently dropped when the spec is written back.
func readSpec(bundle string) (*specs.Spec, error) {
	file := filepath.Join(bundle, "config.json")
	if fi, err := os.Stat(file); err == nil && fi.Size() > maxSpecSize {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d a spec may have here", file, fi.Size(), maxSpecSize)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s specs.Spec
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: trailing data after the spec", file)
	}
	return &s, nil
}

// socketDirLink is the symlink in the bundle by which the long-running shim
// finds its socket directory when it exits (pkg/shim's cleanupSockets). The
// shim package points it at containerd's directory, or leaves it out when
// containerd passes none and the default applies; either way the shim would
// look for its socket in the wrong place and leave ours behind, one per
// container. Pointing it at our directory makes the shim remove its own.
const socketDirLink = "s"

func linkSocketDir(bundle, dir string) error {
	link := filepath.Join(bundle, socketDirLink)
	if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace socket dir link: %w", err)
	}
	if err := os.Symlink(dir, link); err != nil {
		return fmt.Errorf("link socket dir: %w", err)
	}
	return nil
}
