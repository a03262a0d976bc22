package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hardened-runtime/hardened/integration/harness"
	"github.com/hardened-runtime/hardened/verify/signtest"
)

// signatureEnv is a private containerd whose node policy requires
// signatures, and a registry on loopback that it pulls from through
// hosts.toml (plain HTTP).
type signatureEnv struct {
	c         *harness.Containerd
	reg       *harness.Registry
	trusted   *signtest.Key
	untrusted *signtest.Key
	base      v1.Image
	// policyFile is the node policy; keyFile the trusted key's cosign.pub.
	policyFile, keyFile string
}

// setPolicy replaces the node policy's signatures section (the shim reads
// the policy at every container start): section is YAML under
// "signatures:", with CERTS, REGISTRY, KEYDIR (the directory of KEY) and
// KEY replaced.
func (e *signatureEnv) setPolicy(t *testing.T, section string) {
	t.Helper()
	section = strings.NewReplacer("CERTS", e.c.CertsDir(), "REGISTRY", e.reg.Addr(), "KEYDIR", filepath.Dir(e.keyFile), "KEY", e.keyFile).Replace(section)
	if err := os.WriteFile(e.policyFile, []byte(testPolicy+"signatures:\n"+section), 0o644); err != nil {
		t.Fatal(err)
	}
}

// signaturePolicy is testPolicy with a signatures section: images of
// <registry>/signed must be signed by the trusted key, <registry>/open is
// exempt, the locally imported CRI sandbox image is exempt (it comes from
// no registry), everything else is rejected.
const signaturePolicy = testPolicy + `signatures:
  registryConfigPath: %s
  timeout: 3s
  default: [{type: reject}]
  scopes:
    "%[2]s/signed": [{type: sigstoreSigned, keyPath: %[3]s}]
    "%[2]s/open": [{type: insecureAcceptAnything}]
    "hardened.test/pause": [{type: insecureAcceptAnything}]
`

func newSignatureEnv(t *testing.T) *signatureEnv {
	t.Helper()
	return newSignatureEnvWith(t, nil)
}

// newSignatureEnvWith is newSignatureEnv with the containerd options
// changed by opts first.
func newSignatureEnvWith(t *testing.T, opts func(*harness.Options)) *signatureEnv {
	t.Helper()
	shimDir, err := harness.BuildShim(t)
	if err != nil {
		t.Fatal(err)
	}
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	o := harness.Options{ShimDir: shimDir, PolicyPath: policyFile, RegistryHosts: []string{reg.Addr()}}
	if opts != nil {
		opts(&o)
	}
	c := harness.Start(t, o)
	e := &signatureEnv{c: c, reg: reg, policyFile: policyFile}
	if e.trusted, err = signtest.NewKey(signtest.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	if e.untrusted, err = signtest.NewKey(signtest.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "cosign.pub")
	e.keyFile = key
	if err := e.trusted.WritePublic(key); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(policyFile, []byte(fmt.Sprintf(signaturePolicy, c.CertsDir(), reg.Addr(), key)), 0o644); err != nil {
		t.Fatal(err)
	}
	if e.base, err = harness.TestImage(harness.Busybox); err != nil {
		t.Fatal(err)
	}
	harness.Import(t, c, harness.CRINamespace, harness.Pause)
	return e
}

// push pushes a variant of busybox (a digest of its own) as repo:tag.
func (e *signatureEnv) push(t *testing.T, repoTag string) (string, v1.Descriptor) {
	t.Helper()
	ref := e.reg.Ref(repoTag)
	return ref, e.reg.Push(t, ref, harness.Variant(e.base, repoTag+time.Now().String()))
}

// repoOf is the repository of a reference with a tag.
func (e *signatureEnv) repoOf(t *testing.T, ref string) string {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i]
	}
	return ref
}

// run runs idProbe in a new hardened container of image (pulled before),
// the way `ctr run --rm` does, and says who it ran as (whoAmI); the error
// is NewTask's.
func (e *signatureEnv) run(t *testing.T, image string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.c.Context(t), time.Minute)
	defer cancel()
	client := e.c.Client(t)
	img, err := client.GetImage(ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	id := newID("sig")
	ctr, err := client.NewContainer(ctx, id, containerd.WithImage(img), containerd.WithNewSnapshot(id, img),
		containerd.WithRuntime(hardenedRT, nil), containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("sh", "-c", idProbe)))
	if err != nil {
		t.Fatal(err)
	}
	defer ctr.Delete(context.WithoutCancel(ctx), containerd.WithSnapshotCleanup)
	var stdout, stderr bytes.Buffer
	task, err := ctr.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, &stdout, &stderr), cio.WithFIFODir(filepath.Join(e.c.Dir, "fifo"))))
	if err != nil {
		return "", err
	}
	defer task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
	exitCh, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var st containerd.ExitStatus
	select {
	case st = <-exitCh:
	case <-ctx.Done():
		task.Kill(context.WithoutCancel(ctx), syscall.SIGKILL)
		t.Fatalf("container %s did not exit", id)
	}
	task.IO().Wait()
	if st.ExitCode() != 0 || stdout.Len() == 0 {
		t.Logf("container %s of %s: exit %d, stdout %q, stderr %q", id, image, st.ExitCode(), stdout.String(), stderr.String())
	}
	return whoAmI(stdout.String()), nil
}

// refused checks that image is refused at Create with one line naming
// the image, the scope and want, and that no shim or task is left.
func (e *signatureEnv) refused(t *testing.T, image, scope string, want ...string) {
	t.Helper()
	shims := len(e.c.ShimPIDs())
	out, err := e.run(t, image)
	if err == nil {
		t.Fatalf("%s ran (%q); want it refused", image, out)
	}
	msg := err.Error()
	t.Logf("refused: %s", msg)
	if strings.Contains(msg, "\n") {
		t.Errorf("refusal is not one line: %q", msg)
	}
	for _, w := range append([]string{"image " + image, fmt.Sprintf("scope %q", scope)}, want...) {
		if !strings.Contains(msg, w) {
			t.Errorf("refusal %q does not say %q", msg, w)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(e.c.ShimPIDs()) > shims && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(e.c.ShimPIDs()); n > shims {
		t.Errorf("%d shim processes after the refusal, %d before", n, shims)
	}
	if out, err := e.c.Ctr(t, "task", "ls", "-q"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("tasks left after the refusal: %q %v", out, err)
	}
}

// TestSignatures: the shim runs only images signed by a key the node
// trusts, for the exact digest containerd runs, from a registry on
// loopback that containerd pulls from through hosts.toml.
func TestSignatures(t *testing.T) {
	require(t)
	e := newSignatureEnv(t)
	ctx := context.Background()
	signedScope := e.reg.Addr() + "/signed"

	// Signed with cosign v2's format (tag) and v3's (bundle referrer).
	classic, classicDesc := e.push(t, "signed/classic:v1")
	if err := signtest.SignClassic(ctx, e.reg.Repository(t, "signed/classic"), classicDesc.Digest, e.repoOf(t, classic), e.trusted); err != nil {
		t.Fatal(err)
	}
	bundle, bundleDesc := e.push(t, "signed/bundle:v1")
	// cosign v3 names the digest only, no repository.
	if err := signtest.SignBundle(ctx, e.reg.Repository(t, "signed/bundle"), bundleDesc, "", e.trusted); err != nil {
		t.Fatal(err)
	}
	// Signed, but pulled and run only after the registry has gone.
	later, laterDesc := e.push(t, "signed/later:v1")
	signtest.SignClassic(ctx, e.reg.Repository(t, "signed/later"), laterDesc.Digest, e.repoOf(t, later), e.trusted)

	unsigned, _ := e.push(t, "signed/unsigned:v1")
	untrusted, untrustedDesc := e.push(t, "signed/untrusted:v1")
	signtest.SignClassic(ctx, e.reg.Repository(t, "signed/untrusted"), untrustedDesc.Digest, e.repoOf(t, untrusted), e.untrusted)
	signtest.SignBundle(ctx, e.reg.Repository(t, "signed/untrusted"), untrustedDesc, e.repoOf(t, untrusted), e.untrusted)
	wrong, wrongDesc := e.push(t, "signed/wrong-digest:v1")
	_, otherDesc := e.push(t, "signed/wrong-digest:other")
	payload, _ := signtest.Payload(e.repoOf(t, wrong), otherDesc.Digest)
	signtest.SignClassicPayload(ctx, e.reg.Repository(t, "signed/wrong-digest"), wrongDesc.Digest, payload, e.trusted)
	moved, movedDesc := e.push(t, "signed/moved:v1")
	signtest.SignClassic(ctx, e.reg.Repository(t, "signed/moved"), movedDesc.Digest, e.repoOf(t, moved), e.trusted)
	open, _ := e.push(t, "open/app:v1")
	elsewhere, elsewhereDesc := e.push(t, "elsewhere/app:v1")
	signtest.SignClassic(ctx, e.reg.Repository(t, "elsewhere/app"), elsewhereDesc.Digest, e.repoOf(t, elsewhere), e.trusted)

	// A multi-platform image signed on its platform manifest only (the
	// node runs the index digest).
	multi := e.reg.Ref("signed/multi:v1")
	platformImg := harness.Variant(e.base, "multi")
	idx, err := harness.Index(platformImg)
	if err != nil {
		t.Fatal(err)
	}
	e.reg.PushIndex(t, multi, idx)
	pd, _ := platformImg.Digest()
	pm, _ := platformImg.RawManifest()
	pmt, _ := platformImg.MediaType()
	if err := signtest.SignBundle(ctx, e.reg.Repository(t, "signed/multi"), v1.Descriptor{Digest: pd, Size: int64(len(pm)), MediaType: pmt}, e.repoOf(t, multi), e.trusted); err != nil {
		t.Fatal(err)
	}

	// Other layers (another chain id), unsigned.
	extra, err := random.Layer(512, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	otherLayers, err := mutate.AppendLayers(e.base, extra)
	if err != nil {
		t.Fatal(err)
	}
	otherRootfs := e.reg.Ref("signed/other-layers:v1")
	e.reg.Push(t, otherRootfs, otherLayers)

	for _, ref := range []string{classic, bundle, unsigned, untrusted, wrong, moved, open, elsewhere, later, multi, otherRootfs} {
		e.c.Pull(t, e.c.Namespace, ref)
	}

	t.Run("signed images run", func(t *testing.T) {
		for _, image := range []string{classic, bundle} {
			out, err := e.run(t, image)
			if err != nil {
				t.Fatalf("%s: %v", image, err)
			}
			if out != rootInItsUserNamespace {
				t.Errorf("%s runs as %q, want %s (hardened)", image, out, rootInItsUserNamespace)
			}
		}
		log := e.c.Log()
		for _, want := range []string{"hardened: signature: scope " + signedScope + ": sigstoreSigned by keyPath", "(tag sha256-", "(referrer sha256:"} {
			if !strings.Contains(log, want) {
				t.Errorf("shim log lacks %q", want)
			}
		}
	})

	t.Run("platform manifest of an index", func(t *testing.T) {
		out, err := e.run(t, multi)
		if err != nil || out != rootInItsUserNamespace {
			t.Fatalf("%s: %q %v", multi, out, err)
		}
		if !strings.Contains(e.c.Log(), "on platform manifest "+pd.String()) {
			t.Error("the shim log does not say the signature was on the platform manifest")
		}
	})

	t.Run("rootfs of another image", func(t *testing.T) {
		// A container record that names the signed image but whose rootfs
		// is a snapshot of an unsigned image with other layers.
		cctx, cancel := context.WithTimeout(e.c.Context(t), time.Minute)
		defer cancel()
		client := e.c.Client(t)
		signedImg, _ := client.GetImage(cctx, classic)
		unsignedImg, _ := client.GetImage(cctx, otherRootfs)
		id := newID("sig-swap")
		ctr, err := client.NewContainer(cctx, id, containerd.WithNewSnapshot(id, unsignedImg), containerd.WithImage(signedImg),
			containerd.WithRuntime(hardenedRT, nil), containerd.WithNewSpec(oci.WithImageConfig(signedImg), oci.WithProcessArgs("true")))
		if err != nil {
			t.Fatal(err)
		}
		defer ctr.Delete(context.WithoutCancel(cctx), containerd.WithSnapshotCleanup)
		task, err := ctr.NewTask(cctx, cio.NullIO)
		if err == nil {
			task.Delete(cctx, containerd.WithProcessKill)
			t.Fatal("a container whose rootfs is another image's ran")
		}
		if !strings.Contains(err.Error(), "does not run the image its record names") {
			t.Errorf("refusal %q does not name the snapshot mismatch", err)
		}
		t.Logf("refused: %v", err)
	})

	t.Run("rootfs mounts of the task", func(t *testing.T) {
		// The record and the snapshot are the signed image's, but the
		// client sends other rootfs mounts with the task (containerd
		// takes them from the client): the host's root, read-only.
		cctx, cancel := context.WithTimeout(e.c.Context(t), time.Minute)
		defer cancel()
		client := e.c.Client(t)
		signedImg, _ := client.GetImage(cctx, classic)
		id := newID("sig-rootfs")
		ctr, err := client.NewContainer(cctx, id, containerd.WithNewSnapshot(id, signedImg), containerd.WithImage(signedImg),
			containerd.WithRuntime(hardenedRT, nil), containerd.WithNewSpec(oci.WithImageConfig(signedImg), oci.WithProcessArgs("true")))
		if err != nil {
			t.Fatal(err)
		}
		defer ctr.Delete(context.WithoutCancel(cctx), containerd.WithSnapshotCleanup)
		task, err := ctr.NewTask(cctx, cio.NullIO, containerd.WithRootFS([]mount.Mount{{Type: "bind", Source: "/", Options: []string{"rbind", "ro"}}}))
		if err == nil {
			task.Delete(cctx, containerd.WithProcessKill)
			t.Fatal("a task with the host's root as its rootfs ran")
		}
		if !strings.Contains(err.Error(), "the task's rootfs mounts are not those of snapshot") {
			t.Errorf("refusal %q does not name the rootfs mounts", err)
		}
		t.Logf("refused: %v", err)
	})

	t.Run("refused at create", func(t *testing.T) {
		e.refused(t, unsigned, signedScope, "no signature found")
		e.refused(t, untrusted, signedScope, "not signed by a trusted key", "cosign.pub")
		e.refused(t, wrong, signedScope, "payload names digest "+otherDesc.Digest.String()[:19])
		// The tag moves to an unsigned manifest after signing; the node
		// pulls the new one.
		e.reg.Push(t, moved, harness.Variant(e.base, "moved"))
		e.c.Pull(t, e.c.Namespace, moved)
		e.refused(t, moved, signedScope, "no signature found")
	})

	t.Run("scopes", func(t *testing.T) {
		if out, err := e.run(t, open); err != nil || out != rootInItsUserNamespace {
			t.Errorf("%s (insecureAcceptAnything scope): %q %v", open, out, err)
		}
		// Signed by the trusted key, but the default is reject.
		e.refused(t, elsewhere, "default", "reject")
	})

	t.Run("CRI", func(t *testing.T) {
		rs, _ := e.c.CRI(t)
		e.c.CRIPull(t, classic)
		e.c.CRIPull(t, unsigned)
		podID, podCfg, err := podWith(t, rs, "signed", "hardened", false)
		if err != nil {
			t.Fatalf("RunPodSandbox: %v", err)
		}
		id, err := startImage(t, rs, podID, podCfg, "app", classic, nil)
		if err != nil {
			t.Fatalf("signed image: %v", err)
		}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		out, err := rs.ExecSync(cctx, &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"id", "-u"}, Timeout: 30})
		if err != nil || strings.TrimSpace(string(out.Stdout)) != "65534" {
			t.Errorf("ExecSync in the signed container: %q %v", out.GetStdout(), err)
		}
		_, err = startImage(t, rs, podID, podCfg, "unsigned", unsigned, nil)
		if err == nil || !strings.Contains(err.Error(), "image "+unsigned) || !strings.Contains(err.Error(), "no signature found") {
			t.Errorf("unsigned image under CRI: %v, want a refusal naming the image", err)
		} else {
			t.Logf("refused: %v", err)
		}
	})

	t.Run("registry gone", func(t *testing.T) {
		if err := e.reg.Stop(); err != nil {
			t.Fatal(err)
		}
		// Verified before: the cached verdict keeps it working.
		if out, err := e.run(t, classic); err != nil || out != rootInItsUserNamespace {
			t.Errorf("%s with the registry gone: %q %v, want it to run from the cached verdict", classic, out, err)
		}
		// Never verified: fail closed.
		e.refused(t, later, signedScope, "connection refused")
	})
}
