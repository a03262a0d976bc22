package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hardened-runtime/hardened/internal/userns"
	"github.com/hardened-runtime/hardened/spec"
)

// hostFacts probes this machine, or takes the --apparmor and
// --unprivileged-port-sysctl and --idmapped-mounts flags.
func hostFacts(c *cli.Context) (spec.Host, error) {
	var h spec.Host
	var err error
	if h.AppArmor, err = boolFlag(c, "apparmor", func() bool {
		b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
		return err == nil && strings.TrimSpace(string(b)) == "Y"
	}); err != nil {
		return h, err
	}
	if h.UnprivilegedPortSysctl, err = boolFlag(c, "unprivileged-port-sysctl", func() bool {
		_, err := os.Stat("/proc/sys/net/ipv4/ip_unprivileged_port_start")
		return err == nil
	}); err != nil {
		return h, err
	}
	h.IDMappedMounts, err = boolFlag(c, "idmapped-mounts", userns.KernelIDMapsOverlay)
	// The shim's window of host ids for pods' user namespaces, as it
	// reads it ($HARDENED_USERNS_RANGE or the default).
	if a, werr := userns.FromEnv(); werr == nil {
		h.UsernsWindow = spec.IDRange{HostID: a.First, Size: a.Length}
	}
	return h, err
}

func boolFlag(c *cli.Context, name string, probe func() bool) (bool, error) {
	switch v := lineageString(c, name, "auto"); v {
	case "auto":
		return probe(), nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	default:
		return false, usageError{fmt.Sprintf("--%s %q: want auto, true or false", name, v)}
	}
}
