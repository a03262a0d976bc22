// Command hardened-image-verifier is the pull-time gate: an image verifier
// for containerd 2.x's bindir plugin (io.containerd.image-verifier.v1.bindir),
// which the transfer service, and so the CRI plugin's pulls, runs for every
// image it pulls. It checks the image against the node policy's signatures
// section as hardened-verify does at container start, so that a refused
// image fails its pull (the kubelet shows ErrImagePull at once, not a
// failed start later), and it caches accepted verdicts where the shim
// looks first, so the start that follows costs a file read. The check at
// start stays authoritative: it alone knows the pod's namespace and the
// container's rootfs.
//
// containerd runs it from bin_dir (default /opt/containerd/image-verifier/bin,
// where `hardenctl install --pull-gate` puts it) as
//
//	hardened-image-verifier -name REF -digest sha256:... -stdin-media-type application/vnd.oci.descriptor.v1+json
//
// with the image's descriptor on stdin, and lets the pull go on when it
// exits 0; its stdout is the reason containerd logs or reports. The policy
// is $HARDENED_POLICY or /etc/hardened/policy.yaml (the shim's default), the
// verdict cache the shim's (verdict.DirFromEnv).
//
// At pull time no pod namespace is known: with signatures.namespaces, the
// pull goes on when the base section or any namespace's section accepts the
// image; the start then checks the pod's own section.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/verify"
	"github.com/hardened-runtime/hardened/verify/verdict"
)

// PolicyEnv is the shim's policy path variable.
const PolicyEnv = "HARDENED_POLICY"

// budget bounds the whole check: containerd's per_verifier_timeout is 10s
// by default, and a verifier it has to kill fails the pull with no reason.
const budget = 9 * time.Second

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout)) }

func run(args []string, stdin io.Reader, stdout io.Writer) int {
	fs := flag.NewFlagSet("hardened-image-verifier", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "the image reference being pulled")
	dgst := fs.String("digest", "", "the digest being pulled")
	mediaType := fs.String("stdin-media-type", "", "the media type of stdin (an OCI descriptor)")
	say := func(code int, format string, a ...any) int {
		fmt.Fprintf(stdout, "hardened: "+format+"\n", a...)
		return code
	}
	if err := fs.Parse(args); err != nil {
		return say(1, "bad arguments from containerd: %v", err)
	}
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(256 << 20)
	img := verify.Image{Name: *name, Digest: digest.Digest(*dgst), Reference: *name}
	var desc ocispec.Descriptor
	if *mediaType == ocispec.MediaTypeDescriptor {
		if err := json.NewDecoder(io.LimitReader(stdin, 1<<20)).Decode(&desc); err != nil {
			return say(1, "bad descriptor on stdin: %v", err)
		}
		if desc.Digest != img.Digest {
			return say(1, "descriptor on stdin is of %s, not -digest %s", desc.Digest, img.Digest)
		}
	}
	file := policy.DefaultPath
	if p := os.Getenv(PolicyEnv); p != "" {
		file = p
	}
	pol, err := policy.Load(file)
	if err != nil {
		return say(1, "invalid node policy %s: %v", file, oneLine(err))
	}
	if pol.Signatures.Builtin {
		return say(0, "not verified: the node policy has no signatures section")
	}
	v, err := verify.New(pol.Signatures, verdict.DirFromEnv())
	if err != nil {
		return say(1, "%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	if desc.MediaType == ocispec.MediaTypeImageIndex || desc.MediaType == "application/vnd.docker.distribution.manifest.list.v2+json" {
		// A signature may be on this node's platform manifest, as the
		// shim accepts: look it up.
		if named, err := reference.ParseNormalizedNamed(img.Name); err == nil {
			if r, err := v.Resolve(ctx, named.Name()+"@"+img.Digest.String()); err == nil {
				img.PlatformDigest = r.PlatformDigest
			}
		}
	}
	sections := append([]string{""}, slices.Sorted(maps.Keys(pol.Signatures.Namespaces))...)
	var refusal error
	for _, ns := range sections {
		img.KubernetesNamespace = ns
		res, err := v.Verify(ctx, img)
		if err == nil {
			where := ""
			if ns != "" {
				where = fmt.Sprintf(" (for pods of namespace %s)", ns)
			}
			return say(0, "accepted%s: %s", where, res.Summary())
		}
		if refusal == nil || !verify.IsRefused(refusal) {
			refusal = err
		}
	}
	return say(1, "%s", oneLine(refusal))
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }
