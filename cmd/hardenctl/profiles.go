package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/profiles"
	"github.com/hardened-runtime/hardened/profiles/seccompbpf"
)

func profilesCommand() *cli.Command {
	pol := &cli.StringFlag{Name: "policy", Aliases: []string{"p"}, Value: policy.DefaultPath, Usage: "node policy file, for its own levels"}
	return &cli.Command{
		Name:  "profiles",
		Usage: "list, show and export the hardening levels",
		Description: `EXAMPLES:
   hardenctl profiles list
   hardenctl profiles show restricted
   hardenctl profiles export-seccomp strict > strict.json
   hardenctl profiles export-apparmor restricted | apparmor_parser -r`,
		Subcommands: []*cli.Command{
			{Name: "list", Usage: "list the levels", Flags: []cli.Flag{pol, outputFlag}, Before: checkOutput, Action: profilesList},
			{Name: "show", Usage: "print a level as YAML (JSON with --output json), defaults filled in", ArgsUsage: "LEVEL", Flags: []cli.Flag{pol, outputFlag}, Before: checkOutput, Action: profilesShow},
			{Name: "export-seccomp", Usage: "print a level's seccomp profile (OCI JSON), checked with libseccomp", ArgsUsage: "LEVEL", Flags: []cli.Flag{pol,
				&cli.StringSliceFlag{Name: "caps", Usage: "capabilities the container keeps (the profile depends on them); default: the level's allowlist"}}, Action: exportSeccomp},
			{Name: "export-apparmor", Usage: "print a level's AppArmor profile text", ArgsUsage: "LEVEL", Flags: []cli.Flag{pol}, Action: exportAppArmor},
		},
	}
}

func levelArg(c *cli.Context) (*profiles.Level, *policy.Policy, error) {
	pol, err := policy.Load(c.String("policy"))
	if err != nil {
		return nil, nil, err
	}
	if c.NArg() != 1 {
		return nil, nil, usageError{fmt.Sprintf("%s: want one LEVEL (one of %s)", c.Command.Name, strings.Join(pol.LevelNames(), ", "))}
	}
	l, ok := pol.Level(c.Args().First())
	if !ok {
		return nil, nil, usageError{fmt.Sprintf("unknown level %q (known: %s)", c.Args().First(), strings.Join(pol.LevelNames(), ", "))}
	}
	return l, pol, nil
}

func profilesList(c *cli.Context) error {
	pol, err := policy.Load(c.String("policy"))
	if err != nil {
		return err
	}
	type row struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		Source      string `json:"source"`
	}
	var rows []row
	for _, n := range pol.LevelNames() {
		l, _ := pol.Level(n)
		src := "built-in"
		if !slices.Contains(profiles.BuiltinNames(), n) {
			src = pol.Source
		}
		rows = append(rows, row{n, l.Description, src})
	}
	if jsonOutput(c) {
		return writeJSON(c.App.Writer, rows)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSOURCE\tDESCRIPTION")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, r.Source, r.Description)
	}
	return tw.Flush()
}

func profilesShow(c *cli.Context) error {
	l, _, err := levelArg(c)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return writeJSON(c.App.Writer, l)
	}
	enc := yaml.NewEncoder(c.App.Writer)
	enc.SetIndent(2)
	return enc.Encode(l)
}

func exportSeccomp(c *cli.Context) error {
	l, _, err := levelArg(c)
	if err != nil {
		return err
	}
	caps := l.Capabilities.Allow
	if c.IsSet("caps") {
		caps = nil
		for _, cp := range c.StringSlice("caps") {
			if !strings.HasPrefix(cp, "CAP_") {
				cp = "CAP_" + strings.ToUpper(cp)
			}
			if !profiles.IsCapability(cp) {
				return usageError{fmt.Sprintf("--caps: %q is not a capability", cp)}
			}
			caps = append(caps, cp)
		}
	}
	p, err := profiles.Seccomp(l, caps)
	if err != nil {
		return err
	}
	newer, err := seccompbpf.Validate(p)
	if err != nil {
		return fmt.Errorf("level %s: seccomp profile does not compile: %w", l.Name, err)
	}
	if len(newer) > 0 {
		fmt.Fprintf(c.App.ErrWriter, "hardenctl: note: this machine's libseccomp does not know %s; runc skips them here\n", strings.Join(newer, ", "))
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.App.Writer, string(data))
	return err
}

func exportAppArmor(c *cli.Context) error {
	l, _, err := levelArg(c)
	if err != nil {
		return err
	}
	text, err := profiles.AppArmorProfile(l.AppArmor.Profile, "")
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(c.App.Writer, text)
	return err
}
