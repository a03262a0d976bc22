package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/profiles"
	"github.com/hardened-runtime/hardened/verify"
)

func policyCommand() *cli.Command {
	return &cli.Command{
		Name:  "policy",
		Usage: "work with the node policy file",
		Subcommands: []*cli.Command{{
			Name:      "validate",
			Usage:     "check a policy file; print every problem (exit 1 if any)",
			ArgsUsage: "[FILE]",
			Description: `Parses the policy strictly (unknown keys are errors with line numbers) and
validates every level and rule, as the shim does when it loads the file.

EXAMPLES:
   hardenctl policy validate                      # ` + policy.DefaultPath + `
   hardenctl policy validate ./policy.yaml`,
			Flags:  []cli.Flag{outputFlag},
			Before: checkOutput,
			Action: validatePolicy,
		}},
	}
}

func validatePolicy(c *cli.Context) error {
	file := policy.DefaultPath
	if c.NArg() > 0 {
		file = c.Args().First()
	}
	p, err := policy.Load(file)
	if err == nil {
		// CEL conditions are compiled by the verifier only (the shim's
		// policy package does not link CEL): check them here too.
		if cerr := verify.CompileConditions(p.Signatures); cerr != nil {
			err = fmt.Errorf("policy %s: %w", file, cerr)
		}
	}
	if err != nil {
		if jsonOutput(c) {
			writeJSON(c.App.Writer, map[string]any{"file": file, "valid": false, "error": err.Error()})
			return exitError{1}
		}
		return err
	}
	var warnings []string
	if p.Signatures.Builtin {
		warnings = append(warnings, "no signatures section: every image is accepted without a signature check (add signatures: with a default and scopes; see `hardenctl verify --help`)")
	}
	warnings = append(warnings, namespaceClaimWarnings(p)...)
	if jsonOutput(c) {
		return writeJSON(c.App.Writer, map[string]any{"file": file, "valid": true, "source": p.Source, "mode": p.Mode,
			"defaultLevel": p.DefaultLevel, "rules": len(p.Rules), "levels": p.LevelNames(),
			"signatures": signaturesSummary(p.Signatures), "warnings": warnings})
	}
	fmt.Fprintf(c.App.Writer, "policy %s is valid: mode %s, default level %s, %d rules, %d levels (%s); signatures: %s\n",
		p.Source, p.Mode, p.DefaultLevel, len(p.Rules), len(p.LevelNames()), joinNames(p.LevelNames()), signaturesSummary(p.Signatures))
	for _, w := range warnings {
		fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", w)
	}
	return nil
}

func signaturesSummary(s *policy.Signatures) string {
	if s.Builtin {
		return "none (built-in insecureAcceptAnything)"
	}
	kinds := []string{}
	for _, r := range s.Default {
		kinds = append(kinds, r.Type)
	}
	return fmt.Sprintf("default %s, %d scopes", joinNames(kinds), len(s.Scopes))
}

func joinNames(names []string) string {
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}

// namespaceClaimWarnings warns about rules that loosen for Kubernetes
// namespaces: the namespace is the pod's claim (the CRI annotation
// io.kubernetes.cri.sandbox-namespace), which the shim takes only when
// containerd's records of the pod say the same, but which any client of
// containerd's socket can make, records included.
func namespaceClaimWarnings(p *policy.Policy) []string {
	var out []string
	for i, r := range p.Rules {
		if len(r.Match.KubernetesNamespaces) == 0 {
			continue
		}
		what := fmt.Sprintf("rules[%d] (%s) matches kubernetesNamespaces %s", i, r.Name, joinNames(r.Match.KubernetesNamespaces))
		why := "a pod's Kubernetes namespace is a claim any client of containerd's socket can make (with the CRI records to match it), so loosen only for what you would run that way anyway"
		if r.Mode == policy.Audit && p.Mode != policy.Audit {
			out = append(out, fmt.Sprintf("%s with mode: audit (nothing is hardened): %s", what, why))
		}
		if looser(r.Level, p.DefaultLevel) {
			out = append(out, fmt.Sprintf("%s with level %s, not as strict as defaultLevel %s: %s", what, r.Level, p.DefaultLevel, why))
		}
		for _, l := range r.AllowAnnotationLevels {
			if looser(l, p.DefaultLevel) {
				out = append(out, fmt.Sprintf("%s and lets an annotation pick level %s, not as strict as defaultLevel %s: %s", what, l, p.DefaultLevel, why))
			}
		}
	}
	return out
}

// looser reports whether level may be looser than base: it is not base
// and not a built-in level stricter than base.
func looser(level, base string) bool {
	return level != base && !profiles.Stricter(level, base)
}
