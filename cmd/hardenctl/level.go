package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/profiles"
	"github.com/hardened-runtime/hardened/spec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var levelFlags = []cli.Flag{
	outputFlag, apparmorFlag, portSysctlFlag,
	&cli.StringFlag{Name: "level", Aliases: []string{"l"}, Usage: "level to apply (baseline, restricted, strict, or one of the policy's); default: what the policy picks"},
	&cli.StringFlag{Name: "policy", Aliases: []string{"p"}, Value: policy.DefaultPath, Usage: "node policy file; a missing file means the built-in default (restricted)"},
	&cli.StringFlag{Name: "image", Usage: "image reference, for the policy's image rules (default: the spec's io.kubernetes.cri.image-name annotation)"},
	&cli.StringFlag{Name: "namespace", Value: "default", Usage: "containerd namespace, for the policy's rules"},
	&cli.StringSliceFlag{Name: "image-volume", Usage: "a VOLUME the image declares (repeat); gets a tmpfs"},
}

// pickLevel resolves the level as the shim would, or takes --level.
func pickLevel(c *cli.Context, s *specs.Spec) (*profiles.Level, string, error) {
	pol, err := policy.Load(c.String("policy"))
	if err != nil {
		return nil, "", err
	}
	if name := c.String("level"); name != "" {
		l, ok := pol.Level(name)
		if !ok {
			return nil, "", usageError{fmt.Sprintf("--level %q: unknown level (known: %s)", name, strings.Join(pol.LevelNames(), ", "))}
		}
		return l, "--level " + name, nil
	}
	img := c.String("image")
	if img == "" {
		img = s.Annotations["io.kubernetes.cri.image-name"]
	}
	d, err := pol.Resolve(policy.Workload{
		KubernetesNamespace: s.Annotations["io.kubernetes.cri.sandbox-namespace"],
		ContainerdNamespace: c.String("namespace"),
		Image:               img,
		Annotations:         s.Annotations,
	})
	if err != nil {
		return nil, "", err
	}
	return d.Level, fmt.Sprintf("%s (%s, %s)", d.Reason, pol.Source, d.Mode), nil
}

// input is what harden and check work on.
type input struct {
	spec   *specs.Spec
	level  *profiles.Level
	why    string
	inputs spec.Inputs
}

// loadInput reads the CONFIG.JSON argument and resolves the level and the
// host facts, for harden and check alike.
func loadInput(c *cli.Context) (*input, error) {
	if c.NArg() != 1 {
		return nil, usageError{c.Command.Name + ": want one CONFIG.JSON (or - for stdin), after the flags"}
	}
	s, _, err := readSpecFile(c.Args().First(), c.App.Reader)
	if err != nil {
		return nil, err
	}
	level, why, err := pickLevel(c, s)
	if err != nil {
		return nil, err
	}
	host, err := hostFacts(c)
	if err != nil {
		return nil, err
	}
	// A config.json's bundle is its directory: rule root-path allows
	// <bundle>/rootfs as well as the relative rootfs.
	var ctr spec.ContainerInfo
	if name := c.Args().First(); name != "-" {
		if abs, err := filepath.Abs(name); err == nil {
			ctr.Bundle = filepath.Dir(abs)
		}
	}
	return &input{spec: s, level: level, why: why,
		inputs: spec.Inputs{Host: host, Image: spec.ImageInfo{Volumes: c.StringSlice("image-volume")}, Container: ctr}}, nil
}
