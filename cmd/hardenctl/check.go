package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hardened-runtime/hardened/spec"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "report how a config.json violates a level (exit 1 if it does)",
		ArgsUsage: "CONFIG.JSON|-",
		Description: `Reports every change the shim would make and every reason it would refuse
the spec, without changing anything: for CI pipelines and audit.

EXAMPLES:
   hardenctl check config.json
   hardenctl check --level strict --output json config.json | jq '.violations[].rule'`,
		Flags:  levelFlags,
		Before: checkOutput,
		Action: check,
	}
}

func check(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError{"check: want one CONFIG.JSON (or - for stdin), after the flags"}
	}
	s, _, err := readSpecFile(c.Args().First(), c.App.Reader)
	if err != nil {
		return err
	}
	level, why, err := pickLevel(c, s)
	if err != nil {
		return err
	}
	host, err := hostFacts(c)
	if err != nil {
		return err
	}
	vs, err := spec.Check(s, level, spec.Inputs{Host: host, Image: spec.ImageInfo{Volumes: c.StringSlice("image-volume")}})
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		if vs == nil {
			vs = []spec.Violation{}
		}
		writeJSON(c.App.Writer, map[string]any{"level": level.Name, "reason": why, "violations": vs})
	} else if len(vs) == 0 {
		fmt.Fprintf(c.App.Writer, "%s complies with level %s\n", c.Args().First(), level.Name)
	} else {
		fmt.Fprintf(c.App.Writer, "%s: %d violations of level %s (%s)\n", c.Args().First(), len(vs), level.Name, why)
		printViolations(c.App.Writer, vs)
	}
	if len(vs) > 0 {
		return exitError{1}
	}
	return nil
}
