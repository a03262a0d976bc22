// Command hardened-verify checks an image's signature against the node
// policy for containerd-shim-hardened-v2, which runs it when it has no
// cached verdict. It is a program of its own so that the shim, which runs
// once per container and stays for as long as the container runs, never
// loads the registry client and the sigstore libraries.
//
//	hardened-verify --policy /etc/hardened/policy.yaml --image REF --digest sha256:... [--platform-digest sha256:...]
//	    [--kubernetes-namespace NS] [--reference REF] [--cache-dir DIR] [--policy-hash H]
//
// --kubernetes-namespace is the namespace of the container's pod as CRI
// records it ("" for a container that is not in a pod): it picks the
// section of signatures.namespaces that applies. When the policy has such
// sections the flag must be given (even empty): a caller that does not
// know of namespaces must not get the requirements of none. --reference is
// the reference the container was created from when containerd's record
// names another (CRI records the image's first name; the pod spec's image
// is what pinned requirements are about).
//
// It prints the verdict as JSON and exits 0 when the image is accepted;
// otherwise it prints one line, the reason, on stderr and exits 1 (refused
// by the policy) or 2 (it could not check).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/verify"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	fs := flag.NewFlagSet("hardened-verify", flag.ContinueOnError)
	policyFile := fs.String("policy", policy.DefaultPath, "the node policy file")
	image := fs.String("image", "", "the image reference containerd records for the container")
	dgst := fs.String("digest", "", "the manifest or index digest containerd runs")
	platform := fs.String("platform-digest", "", "for an index, the platform manifest that runs")
	cacheDir := fs.String("cache-dir", "", "directory of cached verdicts (none if empty)")
	policyHash := fs.String("policy-hash", "", "refuse to answer if the policy's signatures hash is not this one")
	var namespace string
	namespaceGiven := false
	fs.Func("kubernetes-namespace", "the Kubernetes namespace of the container's pod (\"\" for none); required when the policy has signatures.namespaces", func(s string) error {
		namespace, namespaceGiven = s, true
		return nil
	})
	reference := fs.String("reference", "", "the reference the container was created from, if not --image (pinned requirements are decided on it)")
	timeout := fs.Duration("timeout", time.Minute, "overall time limit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// One check, then exit: collect garbage only if a registry's answers
	// (bounded by the verifier) come near the limit.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(256 << 20)
	fail := func(code int, err error) int {
		fmt.Fprintln(os.Stderr, err)
		return code
	}
	pol, err := policy.Load(*policyFile)
	if err != nil {
		return fail(2, fmt.Errorf("invalid node policy %s: %w", *policyFile, err))
	}
	if *policyHash != "" && pol.Signatures.Hash != *policyHash {
		return fail(2, fmt.Errorf("the signatures section of %s changed while the container was being created; retry", *policyFile))
	}
	if len(pol.Signatures.Namespaces) > 0 && !namespaceGiven {
		return fail(2, fmt.Errorf("the node policy has per-namespace signature requirements (signatures.namespaces) and the caller gave no --kubernetes-namespace; update the shim"))
	}
	v, err := verify.New(pol.Signatures, *cacheDir)
	if err != nil {
		return fail(2, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	res, err := v.Verify(ctx, verify.Image{Name: *image, Digest: digest.Digest(*dgst), PlatformDigest: digest.Digest(*platform), KubernetesNamespace: namespace, Reference: *reference})
	if err != nil {
		if verify.IsRefused(err) {
			return fail(1, err)
		}
		return fail(2, err)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return fail(2, err)
	}
	return 0
}
