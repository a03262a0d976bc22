// Package integration holds the end-to-end tests: a private containerd
// (pinned v2.4.2) with runc v1.5.2 and the hardened shim, driven through the
// containerd Go client (what ctr does), ctr itself and the CRI API (what
// the kubelet does). They need root; on CI (CI=true) they must run.
package integration
