package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/hardened-runtime/hardened/spec"
)

func hardenCommand() *cli.Command {
	return &cli.Command{
		Name:      "harden",
		Usage:     "print the hardened version of a config.json",
		ArgsUsage: "CONFIG.JSON|-",
		Description: `Hardens an OCI runtime spec exactly as the shim does at container create,
and prints the result. The level is --level, or what the node policy picks
for the spec (its CRI annotations, --image, --namespace).

EXAMPLES:
   hardenctl harden --explain bundle/config.json > hardened.json
   hardenctl harden --diff --level strict config.json
   hardenctl harden -o hardened.json --output json config.json   # spec to a file, JSON report on stdout`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write the hardened spec to `FILE` (atomically) instead of stdout"},
			&cli.BoolFlag{Name: "diff", Usage: "print a unified diff of the input and the hardened spec"},
			&cli.BoolFlag{Name: "explain", Aliases: []string{"e"}, Usage: "print a table of the changes and their reasons (to stderr when the spec goes to stdout)"},
		}, levelFlags...),
		Before: checkOutput,
		Action: harden,
	}
}

func harden(c *cli.Context) error {
	in, err := loadInput(c)
	if err != nil {
		return err
	}
	s, level, why := in.spec, in.level, in.why
	res, err := spec.Harden(s, level, in.inputs)
	var refused *spec.RefusedError
	if errors.As(err, &refused) {
		if jsonOutput(c) {
			writeJSON(c.App.Writer, map[string]any{"level": level.Name, "refused": true, "violations": refused.Violations})
		} else {
			fmt.Fprintf(c.App.ErrWriter, "refused by level %s (%s):\n", level.Name, why)
			printViolations(c.App.ErrWriter, refused.Violations)
		}
		return exitError{1}
	}
	if err != nil {
		return err
	}
	out, err := specJSON(res.Spec)
	if err != nil {
		return err
	}
	specOut, reportOut := c.App.Writer, c.App.ErrWriter
	if file := c.String("out"); file != "" {
		if err := writeAtomic(file, out); err != nil {
			return err
		}
		specOut, reportOut = nil, c.App.Writer
	}
	if jsonOutput(c) {
		report := map[string]any{"level": level.Name, "reason": why, "changes": res.Changes}
		if specOut != nil {
			report["spec"] = res.Spec
		}
		return writeJSON(c.App.Writer, report)
	}
	if c.Bool("diff") {
		in, err := specJSON(s)
		if err != nil {
			return err
		}
		fmt.Fprint(c.App.Writer, unifiedDiff(c.Args().First(), "hardened", string(in), string(out)))
		specOut = nil
	}
	if c.Bool("explain") {
		fmt.Fprintf(reportOut, "level %s: %s\n", level.Name, why)
		printChanges(reportOut, res.Changes)
	}
	if specOut != nil {
		_, err = specOut.Write(out)
	}
	return err
}

func printChanges(w io.Writer, changes []spec.Change) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tFIELD\tFROM\tTO\tREASON")
	for _, c := range changes {
		from, to := short(c.From), short(c.To)
		if c.Note {
			from, to = "(note)", ""
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Rule, c.Field, from, to, c.Reason)
	}
	tw.Flush()
}

func printViolations(w io.Writer, vs []spec.Violation) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tFIELD\tVALUE\tREASON\tFIX")
	for _, v := range vs {
		reason := v.Reason
		if v.Refused {
			reason = "REFUSED: " + reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Rule, v.Field, short(v.Value), reason, v.Fix)
	}
	tw.Flush()
}

// short keeps table cells readable; JSON output has the full values.
func short(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// unifiedDiff is a line diff (longest common subsequence) with three lines
// of context, in unified format.
func unifiedDiff(aName, bName, a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	n, m := len(al), len(bl)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if al[i] == bl[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		kind byte
		text string
		ai   int
		bi   int
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && al[i] == bl[j]:
			ops = append(ops, op{' ', al[i], i, j})
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			ops = append(ops, op{'+', bl[j], i, j})
			j++
		default:
			ops = append(ops, op{'-', al[i], i, j})
			i++
		}
	}
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", aName, bName)
	const ctx = 3
	for k := 0; k < len(ops); {
		if ops[k].kind == ' ' {
			k++
			continue
		}
		start := max(k-ctx, 0)
		end := k
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run-end > 2*ctx || run == len(ops) {
				end = min(end+ctx, len(ops))
				break
			}
			end = run
		}
		var aCount, bCount int
		for _, o := range ops[start:end] {
			if o.kind != '+' {
				aCount++
			}
			if o.kind != '-' {
				bCount++
			}
		}
		fmt.Fprintf(&out, "@@ -%d,%d +%d,%d @@\n", ops[start].ai+1, aCount, ops[start].bi+1, bCount)
		for _, o := range ops[start:end] {
			out.WriteByte(o.kind)
			out.WriteString(o.text)
			out.WriteByte('\n')
		}
		k = end
	}
	return out.String()
}
