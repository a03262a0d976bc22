package shim

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/hardened-runtime/hardened/internal/userns"
	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/profiles"
	"github.com/hardened-runtime/hardened/spec"
	"github.com/hardened-runtime/hardened/verify/verdict"
)

func goarch() string { return runtime.GOARCH }

// testNS is the containerd namespace of the unit tests.
const testNS = "k8s.io"

// testEnv is a fake containerd (containerd's generated gRPC services on a
// unix socket), a containerd root and state laid out as containerd lays
// them out, and a node policy.
type testEnv struct {
	t           testing.TB
	fake        *fakeContainerd
	address     string
	root, state string
	policy      policySource
	image       testImage
	verifier    fakeVerifier
}

const testPolicyYAML = `mode: enforce
defaultLevel: restricted
rules:
  - name: web pods
    match:
      kubernetesNamespaces: ["web"]
    level: baseline
  - name: strict pods
    match:
      kubernetesNamespaces: ["vault"]
    level: strict
  - name: audit namespace
    match:
      containerdNamespaces: [audit]
    level: restricted
    mode: audit
`

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	t.Setenv(CacheDirEnv, filepath.Join(t.TempDir(), "images"))
	dir := t.TempDir()
	t.Setenv(userns.DirEnv, filepath.Join(dir, "userns"))
	e := &testEnv{t: t, fake: newFakeContainerd(testNS), root: filepath.Join(dir, "root"), state: filepath.Join(dir, "state")}
	e.address = e.fake.serve(t)
	e.policy = policySource{Path: filepath.Join(dir, "policy.yaml"), Explicit: true, Marker: filepath.Join(dir, "marker")}
	e.writePolicy(testPolicyYAML)
	e.image = e.fake.addImage(t, "docker.io/library/busybox:1", "", []string{"/data"}, true)
	return e
}

func (e *testEnv) writePolicy(yaml string) {
	e.t.Helper()
	if err := os.WriteFile(e.policy.Path, []byte(yaml), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// pipeline is the pipeline as a process of the shim builds it, on the
// fake containerd and verifier.
func (e *testEnv) pipeline(by string) *pipeline {
	p := newPipeline(by, e.address, e.verifier.run)
	p.verdictDir = filepath.Join(e.t.TempDir(), "verdicts")
	e.t.Cleanup(p.records.close)
	return p
}

// bundle creates container id's bundle as containerd does (the spec in
// config.json, a rootfs directory, a work link into the root) and its
// record in the fake containerd; edit changes the spec first.
func (e *testEnv) bundle(ns, id string, img testImage, edit func(*specs.Spec)) string {
	e.t.Helper()
	bundle := filepath.Join(e.state, taskPlugin, ns, id)
	work := filepath.Join(e.root, taskPlugin, ns, id)
	for _, d := range []string{filepath.Join(bundle, "rootfs"), work} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := os.Symlink(work, filepath.Join(bundle, "work")); err != nil {
		e.t.Fatal(err)
	}
	s := loadTestSpec(e.t)
	s.Linux.CgroupsPath = "/" + ns + "/" + id // as containerd's client writes it
	if edit != nil {
		edit(s)
	}
	writeTestSpec(e.t, bundle, s)
	e.fake.ns = ns
	e.fake.addContainer(id, img, img.chainID)
	return bundle
}

func loadTestSpec(t testing.TB) *specs.Spec {
	t.Helper()
	data, err := os.ReadFile("../spec/testdata/ctr-run.in.json")
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func writeTestSpec(t testing.TB, bundle string, s *specs.Spec) {
	t.Helper()
	data, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (e *testEnv) run(p *pipeline, ns, id, bundle string) (*record, error) {
	return p.run(context.Background(), request{Namespace: ns, ID: id, Bundle: bundle, Policy: e.policy})
}

// fakeVerifier stands in for the hardened-verify process.
type fakeVerifier struct {
	stdout, stderr string
	code           int
	err            error
	args           []string
	calls          int
}

func (f *fakeVerifier) run(_ context.Context, cmd *exec.Cmd) ([]byte, []byte, int, error) {
	f.calls++
	f.args = cmd.Args
	return []byte(f.stdout), []byte(f.stderr), f.code, f.err
}

func readBundleSpec(t testing.TB, bundle string) *specs.Spec {
	t.Helper()
	s, err := readSpec(bundle)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPipelineHardens: the pipeline reads the image from containerd's
// records, hardens config.json under the policy's level and leaves a
// record that binds it.
func TestPipelineHardens(t *testing.T) {
	e := newTestEnv(t)
	bundle := e.bundle(testNS, "c1", e.image, nil)
	rec, err := e.run(e.pipeline("shim start"), testNS, "c1", bundle)
	if err != nil {
		t.Fatal(err)
	}
	s := readBundleSpec(t, bundle)
	if s.Process.User.UID != 65534 || !s.Root.Readonly || s.Annotations[LevelAnnotationApplied] != "restricted (enforce)" {
		t.Errorf("config.json not hardened: user %+v readonly %v annotations %v", s.Process.User, s.Root.Readonly, s.Annotations)
	}
	if rec.Level != "restricted" || rec.LevelData == nil || rec.LevelData.Name != "restricted" || rec.Mode != policy.Enforce || rec.By != "shim start" || len(rec.Changes) < 5 {
		t.Errorf("record: level %s mode %s by %s, %d changes", rec.Level, rec.Mode, rec.By, len(rec.Changes))
	}
	img := rec.Image
	if img.Name != e.image.name || img.Digest != e.image.target.Digest.String() || img.PlatformDigest != e.image.manifest.Digest.String() ||
		img.ChainID != e.image.chainID || len(img.Volumes) != 1 || img.Volumes[0] != "/data" {
		t.Errorf("image facts %+v, want those of containerd's records %+v", img, e.image)
	}
	// The snapshot is read for the root container's user namespace (its
	// rootfs would be idmapped; this one's layers are not on the disk:
	// no user namespace), not for a signature.
	if img.SnapshotParent == "" || rec.UserNamespace != nil || !slices.ContainsFunc(rec.Changes, func(c spec.Change) bool {
		return c.Note && c.Rule == "user" && strings.Contains(c.Reason, "no user namespace of its own")
	}) {
		t.Errorf("snapshot parent %q, user namespace %+v: want the snapshot read and no user namespace, with the reason noted", img.SnapshotParent, rec.UserNamespace)
	}
	// The snapshot's mounts are read (the rules read the image's files
	// through them), beside the image.
	if len(img.SnapshotMounts) != 1 || !strings.Contains(rec.Timing, "snapshot=") {
		t.Errorf("the snapshot's mounts were not read: %+v (timing %s)", img.SnapshotMounts, rec.Timing)
	}
	if rec.Signature == nil || !rec.Signature.Builtin || rec.Policy != e.policy.Path || rec.PolicyHash == "" || !strings.Contains(rec.Timing, "container=") {
		t.Errorf("record: signature %+v policy %q hash %q timing %q", rec.Signature, rec.Policy, rec.PolicyHash, rec.Timing)
	}
	got, ok := readRecord(bundle, e.policy.Path)
	if !ok || got.ConfigDigest != rec.ConfigDigest || got.Level != "restricted" {
		t.Fatalf("readRecord = %+v %v", got, ok)
	}
	// The image facts are cached by digest: the next container of the
	// image reads no blob.
	reads := e.fake.callCount("content.Read")
	bundle2 := e.bundle(testNS, "c2", e.image, nil)
	if _, err := e.run(e.pipeline("create"), testNS, "c2", bundle2); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.callCount("content.Read"); n != reads {
		t.Errorf("%d blob reads for the second container of the image, want none", n-reads)
	}
	// Hardening again a hardened bundle changes nothing but the summary
	// (idempotent): Create may find config.json hardened without its
	// record.
	before := readBundleSpec(t, bundle)
	again, err := e.run(e.pipeline("create"), testNS, "c1", bundle)
	if err != nil {
		t.Fatal(err)
	}
	after := readBundleSpec(t, bundle)
	if after.Annotations[ChangesAnnotation] != "0 changes" || countChanges(again.Changes) != 0 {
		t.Errorf("hardening again: %q, %d changes", after.Annotations[ChangesAnnotation], countChanges(again.Changes))
	}
	delete(before.Annotations, ChangesAnnotation)
	delete(after.Annotations, ChangesAnnotation)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("hardening a hardened config.json changed it (-before +after):\n%s", diff)
	}
}

// TestPipelineWithoutImage: a container made from a root filesystem has
// no image; it is hardened all the same.
func TestPipelineWithoutImage(t *testing.T) {
	e := newTestEnv(t)
	bundle := e.bundle(testNS, "rootfs", testImage{}, nil)
	rec, err := e.run(e.pipeline("create"), testNS, "rootfs", bundle)
	if err != nil || rec.Image.Name != "" || readBundleSpec(t, bundle).Process.User.UID != 65534 {
		t.Fatalf("rec %+v err %v", rec, err)
	}
	if e.fake.callCount("images.Get") != 0 {
		t.Error("an image was looked up for a container without one")
	}
}

// TestPipelineAudit: in audit mode the violations are recorded and the
// spec is only annotated.
func TestPipelineAudit(t *testing.T) {
	e := newTestEnv(t)
	bundle := e.bundle("audit", "a1", e.image, nil)
	rec, err := e.run(e.pipeline("create"), "audit", "a1", bundle)
	if err != nil {
		t.Fatal(err)
	}
	s := readBundleSpec(t, bundle)
	if rec.Mode != policy.Audit || len(rec.Violations) == 0 || len(rec.Changes) != 0 || s.Process.User.UID != 0 ||
		!strings.HasPrefix(s.Annotations[ChangesAnnotation], "audit: ") {
		t.Errorf("audit: mode %s, %d violations, %d changes, uid %d, annotation %q", rec.Mode, len(rec.Violations), len(rec.Changes), s.Process.User.UID, s.Annotations[ChangesAnnotation])
	}
}

// TestPipelineRefusals: what the policy refuses is recorded as a refusal,
// config.json is left as it was; what cannot be looked up is an error and
// leaves no record.
func TestPipelineRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(*specs.Spec)
		policy string
		want   []string
		kind   error
	}{
		{"privileged", func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
			s.Process.Capabilities.Effective = append(s.Process.Capabilities.Effective, "CAP_SYS_ADMIN")
			s.Process.Capabilities.Permitted = append(s.Process.Capabilities.Permitted, "CAP_SYS_ADMIN")
		}, "", []string{"rule capabilities", "CAP_SYS_ADMIN"}, errdefs.ErrFailedPrecondition},
		{"looser annotation level", func(s *specs.Spec) { s.Annotations = map[string]string{policy.LevelAnnotation: "baseline"} }, "",
			[]string{"may not replace level restricted"}, errdefs.ErrInvalidArgument},
		{"invalid policy", nil, "defaultLevel: lax\n", []string{"invalid node policy", `unknown level "lax"`, "hardenctl policy validate"}, errdefs.ErrFailedPrecondition},
		{"unknown spec field", func(s *specs.Spec) { s.Annotations = map[string]string{"x": "y"} }, "", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			if tc.policy != "" {
				e.writePolicy(tc.policy)
			}
			bundle := e.bundle(testNS, "r1", e.image, tc.edit)
			before, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
			rec, err := e.run(e.pipeline("shim start"), testNS, "r1", bundle)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				return
			}
			if err == nil || !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want a refusal (%v)", err, tc.kind)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal %q lacks %q", err, w)
				}
			}
			after, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
			if !bytes.Equal(before, after) {
				t.Error("config.json changed")
			}
			got, ok := readRecord(bundle, e.policy.Path)
			if !ok || got.Refusal == nil || got.Refusal.Error() != err.Error() || rec.Refusal == nil {
				t.Errorf("recorded refusal %+v %v, want %q", got, ok, err)
			}
		})
	}
	t.Run("broken config.json", func(t *testing.T) {
		e := newTestEnv(t)
		bundle := e.bundle(testNS, "b1", e.image, nil)
		os.WriteFile(filepath.Join(bundle, "config.json"), []byte(`{"process":{"args":["sh"]},"bogus":1}`), 0o644)
		_, err := e.run(e.pipeline("create"), testNS, "b1", bundle)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "unknown field") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("containerd has no record", func(t *testing.T) {
		e := newTestEnv(t)
		bundle := e.bundle(testNS, "n1", e.image, nil)
		delete(e.fake.containers, "n1")
		_, err := e.run(e.pipeline("create"), testNS, "n1", bundle)
		var r *refusal
		if err == nil || errors.As(err, &r) || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("err = %v, want the look-up's error, not a refusal", err)
		}
		if _, err := os.Stat(filepath.Join(bundle, RecordFile)); err == nil {
			t.Error("a record was written after a failed look-up")
		}
	})
	t.Run("image record gone", func(t *testing.T) {
		e := newTestEnv(t)
		bundle := e.bundle(testNS, "i1", e.image, nil)
		delete(e.fake.images, e.image.name)
		if _, err := e.run(e.pipeline("create"), testNS, "i1", bundle); err == nil || !strings.Contains(err.Error(), "read image") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("bundle not containerd's", func(t *testing.T) {
		e := newTestEnv(t)
		e.bundle(testNS, "d1", e.image, nil)
		other := t.TempDir()
		os.Mkdir(filepath.Join(other, "rootfs"), 0o700)
		writeTestSpec(t, other, loadTestSpec(t))
		if _, err := e.run(e.pipeline("create"), testNS, "d1", other); err == nil || !strings.Contains(err.Error(), "containerd's state directory") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestPipelinePolicyFile: a missing policy file weakens nothing.
func TestPipelinePolicyFile(t *testing.T) {
	e := newTestEnv(t)
	bundle := e.bundle(testNS, "p1", e.image, nil)
	p := e.pipeline("create")
	os.Remove(e.policy.Path)
	// Named by ConfigPath or $HARDENED_POLICY: refused.
	_, err := e.run(p, testNS, "p1", bundle)
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), e.policy.Path+" does not exist") || !strings.Contains(err.Error(), "fix:") {
		t.Errorf("explicit policy missing: %v", err)
	}
	// The default path on a node that never had a policy: built-in default.
	e.policy.Explicit = false
	rec, err := e.run(p, testNS, "p1", bundle)
	if err != nil || !strings.HasPrefix(rec.Policy, "built-in default") || rec.Level != "restricted" {
		t.Fatalf("default path, no policy ever: %+v %v", rec, err)
	}
	if _, err := os.Stat(e.policy.Marker); err == nil {
		t.Fatal("the built-in default marked the node as configured")
	}
	// Once a policy was read from the default path, the node is marked...
	e.writePolicy(testPolicyYAML)
	if _, err := e.run(p, testNS, "p1", bundle); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(e.policy.Marker); err != nil || string(data) != policy.MarkerContent {
		t.Fatalf("marker: %q %v", data, err)
	}
	// ... and its loss refuses every container.
	os.Remove(e.policy.Path)
	_, err = e.run(p, testNS, "p1", bundle)
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "a policy was configured on this node ("+e.policy.Marker+")") {
		t.Errorf("default policy deleted on a configured node: %v", err)
	}
	// An unreadable policy is refused too.
	os.Mkdir(e.policy.Path, 0o700)
	if _, err := e.run(p, testNS, "p1", bundle); err == nil || !strings.Contains(err.Error(), "invalid node policy") {
		t.Errorf("unreadable policy: %v", err)
	}
}

// TestPolicySourceFor: the options' path wins over the environment, which
// wins over the default path; only the default path is not explicit.
func TestPolicySourceFor(t *testing.T) {
	t.Setenv(PolicyEnv, "")
	if s := policySourceFor(""); s.Path != policy.DefaultPath || s.Explicit || s.Marker != policy.MarkerPath {
		t.Errorf("default: %+v", s)
	}
	if s := policySourceFor("/x"); s.Path != "/x" || !s.Explicit {
		t.Errorf("options: %+v", s)
	}
	t.Setenv(PolicyEnv, "/env")
	if s := policySourceFor(""); s.Path != "/env" || !s.Explicit {
		t.Errorf("environment: %+v", s)
	}
	if s := policySourceFor("/x"); s.Path != "/x" {
		t.Errorf("the options' path must win: %+v", s)
	}
}

// criSpec makes a spec carry the CRI annotations of a pod's container.
func criSpec(typ, sandbox, uid, kns string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Annotations = map[string]string{criContainerType: typ, criSandboxID: sandbox, criSandboxUID: uid, criSandboxNamespace: kns}
	}
}

// TestPipelinePodClaims: a CRI pod is taken from the annotations only when
// containerd's records say the same; a claim they do not confirm is
// refused, so that neither a looser nor a skipped stricter rule follows
// from it.
func TestPipelinePodClaims(t *testing.T) {
	e := newTestEnv(t)
	e.fake.addSandbox("sb2", "uid-2", "vault")
	e.fake.addContainer("c0", e.image, e.image.chainID)

	// The pod's sandbox (pause) container and a container of the pod.
	sb := e.bundle(testNS, "sb1", e.image, criSpec("sandbox", "sb1", "uid-1", "web"))
	e.fake.addSandbox("sb1", "uid-1", "web")
	rec, err := e.run(e.pipeline("shim start"), testNS, "sb1", sb)
	if err != nil || rec.Level != "baseline" || rec.Container.SandboxID != "sb1" || rec.Container.PodUID != "uid-1" || rec.Container.KubernetesNamespace != "web" {
		t.Fatalf("sandbox: %+v %v", rec, err)
	}
	c := e.bundle(testNS, "app", e.image, criSpec("container", "sb2", "uid-2", "vault"))
	e.fake.containers["app"].Sandbox = "sb2"
	rec, err = e.run(e.pipeline("create"), testNS, "app", c)
	if err != nil || rec.Level != "strict" || rec.Container.PodUID != "uid-2" || !strings.Contains(rec.Container.Claim, "verified") {
		t.Fatalf("container: %+v %v", rec, err)
	}

	for _, tc := range []struct {
		name, id string
		edit     func(*specs.Spec)
		sandbox  string // the container record's sandbox field
		want     string
	}{
		{"namespace only (ctr --annotation)", "x1", func(s *specs.Spec) { s.Annotations = map[string]string{criSandboxNamespace: "web"} }, "", "must all be set"},
		{"sandbox that does not exist", "x2", criSpec("container", "nope", "uid-1", "web"), "nope", "no sandbox container nope"},
		{"sandbox that is a plain container", "x8", criSpec("container", "c0", "uid-1", "web"), "c0", "not a CRI sandbox"},
		{"other pod's uid", "x3", criSpec("container", "sb1", "uid-2", "web"), "sb1", `pod uid "uid-1", not "uid-2"`},
		{"other Kubernetes namespace", "x4", criSpec("container", "sb2", "uid-2", "web"), "sb2", `Kubernetes namespace "vault", not "web"`},
		{"record of another sandbox", "x5", criSpec("container", "sb1", "uid-1", "web"), "sb2", `names sandbox "sb2", not sb1`},
		{"sandbox claiming another id", "x6", criSpec("sandbox", "sb1", "uid-1", "web"), "", "not its own id"},
		{"unknown container type", "x7", criSpec("init", "sb1", "uid-1", "web"), "sb1", "not sandbox or container"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.bundle(testNS, tc.id, e.image, tc.edit)
			e.fake.containers[tc.id].Sandbox = tc.sandbox
			_, err := e.run(e.pipeline("create"), testNS, tc.id, b)
			if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "do not confirm") {
				t.Errorf("err = %v, want a refusal saying %q", err, tc.want)
			}
		})
	}
	t.Run("containerd failing", func(t *testing.T) {
		b := e.bundle(testNS, "x9", e.image, criSpec("container", "sb1", "uid-1", "web"))
		e.fake.containers["x9"].Sandbox = "sb1"
		p := e.pipeline("create")
		p.records.address = filepath.Join(t.TempDir(), "gone.sock")
		if _, err := e.run(p, testNS, "x9", b); err == nil {
			t.Error("a pod claim was accepted without containerd")
		}
	})
}

func TestCheckPodClaimMetadata(t *testing.T) {
	ctr := &containersapi.Container{ID: "sb"}
	claim := podClaim{Type: "sandbox", SandboxID: "sb", PodUID: "u", Namespace: "n"}
	good := `{"Version":"v1","Metadata":{"ID":"sb","Config":{"metadata":{"uid":"u","namespace":"n"}}}}`
	for _, tc := range []struct {
		name, kind, typ, data, want string
	}{
		{"good", "sandbox", criSandboxMetadataType, good, ""},
		{"not labelled a sandbox", "container", criSandboxMetadataType, good, "not a CRI sandbox"},
		{"no CRI metadata", "sandbox", "", "", "no CRI metadata"},
		{"not JSON", "sandbox", criSandboxMetadataType, "{", "CRI metadata"},
		{"other version", "sandbox", criSandboxMetadataType, strings.Replace(good, `"v1"`, `"v9"`, 1), "version"},
		{"other id", "sandbox", criSandboxMetadataType, strings.Replace(good, `"ID":"sb"`, `"ID":"x"`, 1), `of sandbox "x"`},
	} {
		sb := &containersapi.Container{ID: "sb", Labels: map[string]string{criKindLabel: tc.kind}}
		if tc.typ != "" {
			sb.Extensions = map[string]*anypb.Any{criSandboxMetadataKey: {TypeUrl: tc.typ, Value: []byte(tc.data)}}
		}
		err := checkPodClaim(claim, ctr, sb)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, ok := podClaimOf(map[string]string{"other": "x"}); ok {
		t.Error("a spec without CRI annotations claims a pod")
	}
}

// TestPipelineSignatures: under a signatures section the verdict is bound
// to what runs: the image record's digest, a rootfs snapshot of the
// image's layers, the bundle's rootfs.
func TestPipelineSignatures(t *testing.T) {
	const sigPolicy = testPolicyYAML + `signatures:
  default: [{type: reject}]
  scopes:
    docker.io/library/busybox: [{type: insecureAcceptAnything}]
    docker.io/library/signed: [{type: sigstoreSigned, keyPath: %s}]
`
	e := newTestEnv(t)
	key := writePublicKey(t)
	e.writePolicy(fmt.Sprintf(sigPolicy, key))
	signed := e.fake.addImage(t, "docker.io/library/signed:1", "", nil, false)
	other := e.fake.addImage(t, "docker.io/library/other:1", "", nil, false)

	t.Run("accepted scope", func(t *testing.T) {
		b := e.bundle(testNS, "s1", e.image, nil)
		rec, err := e.run(e.pipeline("create"), testNS, "s1", b)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Signature == nil || rec.Signature.Builtin || rec.Signature.Scope != "docker.io/library/busybox" || rec.Image.SnapshotParent != e.image.chainID || len(rec.Image.SnapshotMounts) != 1 {
			t.Errorf("verdict %+v, image %+v", rec.Signature, rec.Image)
		}
	})
	refused := func(t *testing.T, id string, img testImage, edit func(*specs.Spec), want string) {
		t.Helper()
		b := e.bundle(testNS, id, img, edit)
		_, err := e.run(e.pipeline("create"), testNS, id, b)
		if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want a refusal saying %q", err, want)
		}
	}
	t.Run("rejected by the default", func(t *testing.T) { refused(t, "s2", other, nil, "reject") })
	t.Run("no image", func(t *testing.T) { refused(t, "s3", testImage{}, nil, "has no image") })
	t.Run("root path elsewhere", func(t *testing.T) {
		refused(t, "s4", e.image, func(s *specs.Spec) { s.Root.Path = "/" }, `root.path is "/"`)
	})
	t.Run("rootfs of other layers", func(t *testing.T) {
		b := e.bundle(testNS, "s5", e.image, nil)
		e.fake.snapshots["overlayfs/s5-snap"].Parent = other.chainID
		_, err := e.run(e.pipeline("create"), testNS, "s5", b)
		if err == nil || !strings.Contains(err.Error(), "does not run the image its record names") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("rootfs not a snapshot", func(t *testing.T) {
		b := e.bundle(testNS, "s6", e.image, nil)
		e.fake.containers["s6"].SnapshotKey = ""
		_, err := e.run(e.pipeline("create"), testNS, "s6", b)
		if err == nil || !strings.Contains(err.Error(), "not a snapshot of the image") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("snapshot gone", func(t *testing.T) {
		b := e.bundle(testNS, "s7", e.image, nil)
		delete(e.fake.snapshots, "overlayfs/s7-snap")
		if _, err := e.run(e.pipeline("create"), testNS, "s7", b); err == nil || !strings.Contains(err.Error(), "rootfs snapshot") {
			t.Errorf("err = %v", err)
		}
	})

	// A scope that needs a signature: the verifier decides, its verdict
	// must be about this image and policy.
	t.Setenv(VerifyBinEnv, "/usr/local/bin/hardened-verify-test")
	pol, err := loadPolicy(e.policy)
	if err != nil {
		t.Fatal(err)
	}
	good := verdict.Verdict{Image: signed.name, Digest: signed.target.Digest.String(), Scope: "docker.io/library/signed", PolicyHash: pol.Signatures.Hash}
	goodJSON, _ := json.Marshal(good)
	for _, tc := range []struct {
		name   string
		v      fakeVerifier
		want   string
		refuse bool
	}{
		{"verified", fakeVerifier{stdout: string(goodJSON)}, "", false},
		{"refused", fakeVerifier{stderr: "image x: no signature found\n", code: 1}, "no signature found", true},
		{"other image", fakeVerifier{stdout: strings.Replace(string(goodJSON), "signed:1", "other:1", 1)}, "another image", false},
		{"bad verdict", fakeVerifier{stdout: "{"}, "bad verdict", false},
		{"crashed", fakeVerifier{code: 2, stderr: "panic"}, "panic", false},
		{"not started", fakeVerifier{err: errors.New("exec: no such file")}, "no such file", false},
	} {
		t.Run("verifier "+tc.name, func(t *testing.T) {
			e.verifier = tc.v
			b := e.bundle(testNS, "v-"+strings.ReplaceAll(tc.name, " ", "-"), signed, nil)
			p := e.pipeline("create")
			rec, err := p.run(context.Background(), request{Namespace: testNS, ID: "v-" + strings.ReplaceAll(tc.name, " ", "-"), Bundle: b, Policy: e.policy})
			if e.verifier.calls != 1 || !strings.Contains(strings.Join(e.verifier.args, " "), "--digest "+good.Digest) {
				t.Errorf("verifier called %d times with %v", e.verifier.calls, e.verifier.args)
			}
			if tc.want == "" {
				if err != nil || rec.Signature.Scope != good.Scope {
					t.Fatalf("rec %+v err %v", rec, err)
				}
				return
			}
			var r *refusal
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, &r) != tc.refuse {
				t.Errorf("err = %v, want %q (refusal: %v)", err, tc.want, tc.refuse)
			}
		})
	}
	t.Run("cached verdict", func(t *testing.T) {
		e.verifier = fakeVerifier{}
		p := e.pipeline("create")
		cache := verdict.Cache{Dir: p.verdictDir, TTL: time.Hour}
		cached := good
		cached.VerifiedAt = time.Now()
		if err := cache.Store(&cached); err != nil {
			t.Skipf("verdict cache: %v", err)
		}
		b := e.bundle(testNS, "cached", signed, nil)
		if _, err := e.run(p, testNS, "cached", b); err != nil || e.verifier.calls != 0 {
			t.Errorf("err %v, verifier called %d times", err, e.verifier.calls)
		}
	})
	t.Run("verifier not installed", func(t *testing.T) {
		t.Setenv(VerifyBinEnv, "")
		t.Setenv("PATH", t.TempDir())
		e.verifier = fakeVerifier{}
		b := e.bundle(testNS, "noverifier", signed, nil)
		if _, err := e.run(e.pipeline("create"), testNS, "noverifier", b); err == nil || !strings.Contains(err.Error(), "hardenctl install") {
			t.Errorf("err = %v", err)
		}
	})
}

// writePublicKey writes a cosign-style ECDSA P-256 public key (nothing
// is signed with it here) and returns its path.
func writePublicKey(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCheckTask: the task must be what the record is about.
func TestCheckTask(t *testing.T) {
	mounts := []rootfsMount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/a"}}}
	signed := &record{Level: "restricted", Image: imageRecord{SnapshotMounts: mounts, SnapshotKey: "k"},
		Signature: &verdict.Verdict{Scope: "s"}}
	signed.Image.Name = "example.com/app:1"
	same := []*types.Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/a"}}}
	for _, tc := range []struct {
		name   string
		rec    *record
		rootfs []*types.Mount
		ckpt   string
		want   string
	}{
		{"the snapshot's mounts", signed, same, "", ""},
		{"other mounts", signed, []*types.Mount{{Type: "bind", Source: "/", Options: []string{"rbind"}}}, "", "rootfs mounts are not those of snapshot k"},
		{"one mount more", signed, append(same, &types.Mount{Type: "bind", Source: "/x"}), "", "rootfs mounts"},
		{"other options", signed, []*types.Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/b"}}}, "", "rootfs mounts"},
		{"checkpoint", signed, same, "/ckpt", "rule checkpoint: checkpoint=/ckpt"},
		{"checkpoint without signatures", &record{Level: "restricted", Signature: &verdict.Verdict{Builtin: true}}, nil, "/ckpt", "set checkpoint.allowRestore"},
		{"checkpoint the level allows, without signatures", &record{Level: "r", LevelData: &profiles.Level{Name: "r", Checkpoint: profiles.CheckpointControl{AllowRestore: true}},
			Signature: &verdict.Verdict{Builtin: true}}, nil, "/ckpt", ""},
		{"checkpoint the level allows, under signatures", &record{Level: "r", LevelData: &profiles.Level{Name: "r", Checkpoint: profiles.CheckpointControl{AllowRestore: true}},
			Signature: signed.Signature, Image: signed.Image}, same, "/ckpt", "no signature covers the process image"},
		// Without signatures too: the runtime copies the rootfs's files into
		// what the container may write, so the rootfs is the snapshot's.
		{"the snapshot's mounts without signatures", &record{Signature: &verdict.Verdict{Builtin: true}, Image: signed.Image}, same, "", ""},
		{"other mounts without signatures", &record{Signature: &verdict.Verdict{Builtin: true}, Image: signed.Image},
			[]*types.Mount{{Type: "bind", Source: "/", Options: []string{"rbind"}}}, "", "not those of the container's snapshot k"},
		{"any rootfs, no snapshot", &record{Signature: &verdict.Verdict{Builtin: true}}, []*types.Mount{{Type: "bind", Source: "/"}}, "", "not a snapshot of containerd's"},
		{"no rootfs mounts (root.path), no snapshot", &record{Signature: &verdict.Verdict{Builtin: true}}, nil, "", ""},
	} {
		err := checkTask(tc.rec, &taskAPI.CreateTaskRequest{Rootfs: tc.rootfs, Checkpoint: tc.ckpt})
		if (tc.want == "") != (err == nil) || err != nil && (!strings.Contains(err.Error(), tc.want) || !errors.Is(err, errdefs.ErrFailedPrecondition)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestContainerdDirs: containerd's root and state come from the bundle
// containerd made, never assumed.
func TestContainerdDirs(t *testing.T) {
	e := newTestEnv(t)
	bundle := e.bundle(testNS, "d1", e.image, nil)
	root, state, err := containerdDirs(bundle, testNS, "d1")
	if err != nil || root != e.root || state != e.state {
		t.Errorf("containerdDirs = %q %q %v, want %q %q", root, state, err, e.root, e.state)
	}
	if _, _, err := containerdDirs(bundle, "other", "d1"); err == nil {
		t.Error("a bundle of another namespace was accepted")
	}
	os.Remove(filepath.Join(bundle, "work"))
	if _, _, err := containerdDirs(bundle, testNS, "d1"); err == nil {
		t.Error("a bundle without its work link was accepted")
	}
	os.Symlink("/elsewhere", filepath.Join(bundle, "work"))
	if _, _, err := containerdDirs(bundle, testNS, "d1"); err == nil || !strings.Contains(err.Error(), "work links to /elsewhere") {
		t.Errorf("a work link elsewhere: %v", err)
	}
	if _, _, err := containerdDirs("/"+taskPlugin+"/"+testNS+"/d1", testNS, "d1"); err == nil {
		t.Error("a state directory of / was accepted")
	}
}
