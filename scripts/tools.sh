#!/usr/bin/env bash
# Installs what the tests and the demo need, idempotently:
#   - Debian packages: libseccomp-dev (runc's seccomp, libseccomp-golang), busybox-static
#     (test images), apparmor (apparmor_parser -Q for the profile test), pkg-config;
#   - pinned containerd (containerd, ctr) and runc built from the Go module proxy into .tools/bin;
#   - the CNI plugins loopback, tap and static into .tools/cni/bin (the integration tests' pod network).
# Quick when everything is already there: it only checks versions.
set -euo pipefail

CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
RUNC_VERSION=${RUNC_VERSION:-v1.5.2}
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/.tools/bin"
mkdir -p "$bin"

need_pkgs=()
dpkg -s libseccomp-dev >/dev/null 2>&1 || need_pkgs+=(libseccomp-dev)
dpkg -s pkg-config >/dev/null 2>&1 || need_pkgs+=(pkg-config)
[ -x /bin/busybox ] || need_pkgs+=(busybox-static)
command -v apparmor_parser >/dev/null 2>&1 || need_pkgs+=(apparmor)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "tools: missing Debian packages ${need_pkgs[*]}; run as root or: apt-get install ${need_pkgs[*]}" >&2
    exit 1
  fi
  echo "tools: apt-get install ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

stamp() { cat "$bin/.$1.version" 2>/dev/null || true; }

if [ "$(stamp containerd)" != "$CONTAINERD_VERSION" ] || [ ! -x "$bin/containerd" ] || [ ! -x "$bin/ctr" ] || [ ! -x "$bin/containerd-shim-runc-v2" ]; then
  echo "tools: building containerd $CONTAINERD_VERSION (containerd, ctr, containerd-shim-runc-v2) into .tools/bin"
  GOBIN="$bin" GOFLAGS=-buildvcs=false go install -tags no_btrfs \
    "github.com/containerd/containerd/v2/cmd/containerd@$CONTAINERD_VERSION" \
    "github.com/containerd/containerd/v2/cmd/ctr@$CONTAINERD_VERSION" \
    "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION"
  echo "$CONTAINERD_VERSION" >"$bin/.containerd.version"
fi

if [ "$(stamp runc)" != "$RUNC_VERSION" ] || [ ! -x "$bin/runc" ]; then
  echo "tools: building runc $RUNC_VERSION (-tags seccomp) into .tools/bin"
  GOBIN="$bin" GOFLAGS=-buildvcs=false go install -tags seccomp "github.com/opencontainers/runc@$RUNC_VERSION"
  echo "$RUNC_VERSION" >"$bin/.runc.version"
fi
"$bin/runc" --version | grep -q 'libseccomp' || { echo "tools: runc was built without seccomp" >&2; exit 1; }

# CNI plugins for the integration tests' pod network: every pod a network namespace of its own
# with lo and a tap eth0 (static address), nothing on the host (a user-namespaced pod needs a
# network namespace; containerd's CRI wants an address on eth0). Same version as
# scripts/e2e-tools.sh builds (it adds the bridge network's plugins there).
CNI_PLUGINS_VERSION=${CNI_PLUGINS_VERSION:-v1.9.1}
cni="$top/.tools/cni/bin"
if [ ! -x "$cni/loopback" ] || [ ! -x "$cni/tap" ] || [ ! -x "$cni/static" ]; then
  echo "tools: building the CNI plugins loopback, tap, static $CNI_PLUGINS_VERSION into .tools/cni/bin"
  mkdir -p "$cni"
  GOBIN="$cni" GOFLAGS=-buildvcs=false CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" \
    "github.com/containernetworking/plugins/plugins/main/loopback@$CNI_PLUGINS_VERSION" \
    "github.com/containernetworking/plugins/plugins/main/tap@$CNI_PLUGINS_VERSION" \
    "github.com/containernetworking/plugins/plugins/ipam/static@$CNI_PLUGINS_VERSION"
fi
