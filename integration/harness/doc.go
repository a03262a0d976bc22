// Package harness runs a private containerd (pinned v2.4.2, with runc
// v1.5.2) for the integration tests: its own root, state, socket and config
// under a short temporary directory, the plain runc runtime and the hardened
// shim side by side, and test images built from Debian's busybox-static.
// It stops what it started by PID and unmounts what is left.
package harness
