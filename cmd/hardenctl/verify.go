package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/urfave/cli/v2"

	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/verify"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check an image's signature as the shim would before it runs (exit 1 if refused)",
		ArgsUsage: "IMAGE[:TAG][@DIGEST]",
		Description: `Checks the image against the signatures section of the node policy (or
against --key alone): which scope matched, which requirement, which key
verified which signature, or exactly why not. Signatures are read as cosign
writes them: the sha256-<hex>.sig tag and Sigstore bundles attached as OCI
referrers, from the registry (through containerd's hosts.toml directory:
mirrors, plain HTTP, CA files) or from the policy's local signature
directory. Without a digest the tag is resolved in the registry first.
Nothing is cached unless --cache-dir is given.

EXAMPLES:
   hardenctl verify registry.example.com/team/app:v1
   hardenctl verify --policy ./policy.yaml registry.example.com/team/app@sha256:...
   hardenctl verify --kubernetes-namespace prod registry.example.com/team/app:v1
   hardenctl verify --key cosign.pub --registry-config /etc/containerd/certs.d 127.0.0.1:5000/app:v1
   hardenctl --output json verify registry.example.com/team/app:v1`,
		Flags: []cli.Flag{
			outputFlag,
			&cli.StringFlag{Name: "policy", Value: policy.DefaultPath, Usage: "the node policy file whose signatures section applies"},
			&cli.StringSliceFlag{Name: "key", Usage: "instead of the policy: require a signature by this public key (cosign.pub; repeat for several)"},
			&cli.StringFlag{Name: "digest", Usage: "the digest containerd runs, if the reference has none (default: resolve the tag)"},
			&cli.StringFlag{Name: "registry-config", Usage: "containerd's hosts.toml directory (default: the policy's, else " + policy.DefaultRegistryConfigPath + ")"},
			&cli.StringFlag{Name: "signature-dir", Usage: "a local signature directory (default: the policy's)"},
			&cli.StringFlag{Name: "cache-dir", Usage: "cache verdicts here, as the shim does (default: no cache)"},
			&cli.StringFlag{Name: "kubernetes-namespace", Usage: "check as for a pod in this Kubernetes namespace (signatures.namespaces)"},
			&cli.DurationFlag{Name: "timeout", Value: time.Minute, Usage: "overall time limit"},
		},
		Before: checkOutput,
		Action: verifyImage,
	}
}

func verifyImage(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError{"verify: give one image reference, e.g. registry.example.com/team/app:v1"}
	}
	ref := c.Args().First()
	sigs, source, err := signaturesFor(c)
	if err != nil {
		return err
	}
	v, err := verify.New(sigs, c.String("cache-dir"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	ns := c.String("kubernetes-namespace")
	img := verify.Image{Name: ref, KubernetesNamespace: ns}
	if d := c.String("digest"); d != "" {
		img.Digest = digest.Digest(d)
	} else if resolved, rerr := v.Resolve(ctx, ref); rerr == nil {
		img = resolved
		img.KubernetesNamespace = ns
	} else if _, verr := v.Verify(ctx, img); verr == nil || !strings.Contains(verr.Error(), "include reject") {
		// Only a rejecting scope is decided without the digest.
		if jsonOutput(c) {
			writeJSON(c.App.Writer, map[string]any{"image": ref, "policy": source, "accepted": false, "error": rerr.Error()})
			return exitError{1}
		}
		return rerr
	}
	res, err := v.Verify(ctx, img)
	out := map[string]any{"image": img.Name, "digest": img.Digest, "policy": source, "accepted": err == nil}
	if img.PlatformDigest != "" {
		out["platformDigest"] = img.PlatformDigest
	}
	if err != nil {
		if !verify.IsRefused(err) {
			return err
		}
		out["error"] = err.Error()
		if jsonOutput(c) {
			writeJSON(c.App.Writer, out)
			return exitError{1}
		}
		fmt.Fprintf(c.App.ErrWriter, "REFUSED %s\n", err)
		return exitError{1}
	}
	if jsonOutput(c) {
		out["verdict"] = res
		return writeJSON(c.App.Writer, out)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "ACCEPTED %s (%s)\n", img.Name, img.Digest)
	fmt.Fprintf(w, "policy:  %s\nscope:   %s\n", source, res.Scope)
	if res.Builtin {
		fmt.Fprintln(w, "note:    the policy has no signatures section: every image is accepted unverified")
	}
	if res.SignedDigest != "" && res.SignedDigest != res.Digest {
		fmt.Fprintf(w, "signed:  platform manifest %s\n", res.SignedDigest)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REQUIREMENT\tKEY\tSIGNATURE\tIDENTITY")
	for _, r := range res.Requirements {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Type, dash(r.Key), dash(r.Signature), dash(r.Identity))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// signaturesFor returns the signatures section to check against: the
// policy's, or one made of --key, with the flags' overrides.
func signaturesFor(c *cli.Context) (*policy.Signatures, string, error) {
	var sigs *policy.Signatures
	var source string
	if keys := c.StringSlice("key"); len(keys) > 0 {
		sigs = &policy.Signatures{Default: []policy.Requirement{{Type: policy.SigstoreSigned, KeyPaths: keys}}}
		source = "--key"
	} else {
		p, err := policy.Load(c.String("policy"))
		if err != nil {
			return nil, "", err
		}
		if p.Signatures.Builtin {
			return p.Signatures, p.Source, nil
		}
		cp := *p.Signatures
		sigs, source = &cp, p.Source
	}
	if d := c.String("registry-config"); d != "" {
		sigs.RegistryConfigPath = d
	}
	if d := c.String("signature-dir"); d != "" {
		sigs.SignatureDir = d
	}
	if source == "--key" {
		if err := sigs.Load(); err != nil {
			return nil, "", err
		}
	}
	return sigs, source, nil
}
