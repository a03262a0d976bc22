// Package harness runs a private containerd (pinned v2.4.2, with runc v1.5.2
// from .tools/bin) for the end-to-end tests, and builds the test images from
// Debian's busybox-static: there is no registry, no Docker engine and no CNI
// on the build machines.
//
// A test asks for what it needs and gets it cleaned up with t.Cleanup:
//
//	func TestSomething(t *testing.T) {
//		harness.Require(t) // skip when not root; fail on CI=true
//		c := harness.Start(t, harness.Options{})
//		img := harness.ImportBusybox(t, c)
//		client, ctx := c.Client(t), c.Context(t)
//		...
//	}
//
// Each containerd has its own root, state (a tmpfs), sockets and config file
// under a short directory /tmp/hd-*, runtimes "runc" and "hardened" for the
// CRI plugin, NRI off and no TCP listener but the CRI streaming server on
// 127.0.0.1. Stopping it removes every container and pod, stops containerd
// by PID, kills the shims (and their containers) that served it, unmounts
// what is left below its directory and removes the directory. Nothing is
// found or stopped by name, so tests and test binaries may run in parallel.
//
// Images can also come from a registry, as on a node: StartRegistry runs an
// in-memory OCI registry (integration/testregistry, plain HTTP on
// 127.0.0.1, with or without the referrers API) stopped by PID at cleanup;
// Registry.Push puts TestImage, Variant or Index there; Options.RegistryHosts
// (or AddRegistryHost) writes <CertsDir>/<host:port>/hosts.toml, which the
// CRI plugin reads through its registry config_path and Containerd.Pull
// through a `ctr image pull --hosts-dir` resolver. verify/signtest signs
// what was pushed as cosign v2 and v3 do.
//
// TestMain, which has no *testing.T, uses the error-returning forms:
// [CanRun], [BuildShimDir], [Launch], [Containerd.ImportImages] and
// [Containerd.Stop].
package harness
