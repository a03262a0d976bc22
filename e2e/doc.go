// Package e2e holds what the end-to-end suites run against real Kubernetes
// components share: the images they pull (built here from Debian's
// busybox-static and small static programs, served by the tests' loopback
// registry under the names the suites use, through containerd's hosts.toml
// mirrors) and the pod network (CNI bridge and portmap in the run's own
// network namespace).
//
// The suites, each started by its make target inside a private network
// and mount namespace (scripts/netns-run.sh), and never by `make test`:
//   - conformance: Kubernetes' CRI validation suite, critest (cri-tools
//     v1.37.0), against the tests' private containerd with the runc handler,
//     the hardened handler under the shipped policy and under that policy
//     in audit mode (`make conformance`);
//   - kubernetes: a single-node cluster (etcd, kube-apiserver,
//     kube-controller-manager, kube-scheduler, kubelet v1.37.2) on that
//     containerd, running pods on the hardened RuntimeClass
//     (`make e2e-kubernetes`).
package e2e
