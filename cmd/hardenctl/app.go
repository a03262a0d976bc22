package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

// exitError carries an exit code without more to print (the command has
// printed what went wrong).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// run builds the app, runs it and returns the exit code: 0 on success, 1 on
// failure or violations, 2 on usage errors.
func run(args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.Run(args)
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(stderr, "hardenctl: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:  "hardenctl",
		Usage: "see and test what the hardened runtime does to a container",
		Description: `hardenctl runs the same hardening engine as containerd-shim-hardened-v2 on
a config.json (an OCI runtime spec, as in a containerd bundle), so a profile
author can see every change and its reason before a container runs.

EXAMPLES:
   hardenctl harden --explain config.json > hardened.json
   hardenctl check --level strict config.json
   hardenctl profiles list
   hardenctl policy validate /etc/hardened/policy.yaml
   hardenctl verify registry.example.com/team/app:v1`,
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		Flags: []cli.Flag{
			outputFlag, apparmorFlag, portSysctlFlag, idmapFlag,
		},
		Before:   checkOutput,
		Commands: []*cli.Command{hardenCommand(), checkCommand(), profilesCommand(), policyCommand(), installCommand(), uninstallCommand(), runCommand(), learnCommand(), verifyCommand(), eventsCommand(), observeCommand()},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err.Error()}
		},
		ExitErrHandler: func(*cli.Context, error) {}, // run decides the exit code
	}
}

// Host facts: accepted before and after the command name.
var (
	apparmorFlag   = &cli.StringFlag{Name: "apparmor", Value: "auto", Usage: "does the host have AppArmor: auto (probe this machine), true or false"}
	portSysctlFlag = &cli.StringFlag{Name: "unprivileged-port-sysctl", Value: "auto", Usage: "does the kernel have net.ipv4.ip_unprivileged_port_start: auto, true or false"}
	idmapFlag      = &cli.StringFlag{Name: "idmapped-mounts", Value: "auto", Usage: "does the kernel have idmapped mounts of overlayfs layers (Linux 5.19+), which a root image in a user namespace needs: auto, true or false"}
)

// lineageString is a flag's value from the innermost command that set it.
func lineageString(c *cli.Context, name, def string) string {
	for _, ctx := range c.Lineage() {
		if ctx.IsSet(name) {
			return ctx.String(name)
		}
	}
	return def
}

// outputFlag is accepted before and after the command name.
var outputFlag = &cli.StringFlag{Name: "output", Value: "text", Usage: "output format: text (tables for people) or json (for machines)"}

func output(c *cli.Context) string { return lineageString(c, "output", "text") }

func checkOutput(c *cli.Context) error {
	if o := output(c); o != "text" && o != "json" {
		return usageError{fmt.Sprintf("--output %q: want text or json", o)}
	}
	return nil
}

func jsonOutput(c *cli.Context) bool { return output(c) == "json" }
