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
	in, err := loadInput(c)
	if err != nil {
		return err
	}
	level, why := in.level, in.why
	vs, err := spec.Check(in.spec, level, in.inputs)
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
