#!/usr/bin/env bash
# What `make conformance` and `make e2e-kubernetes` need besides the Kubernetes binaries:
#   - the CNI plugins they give their private containerd (bridge, host-local, loopback, portmap:
#     pods with their own network namespace and port mappings, inside the run's own network
#     namespace), built from the Go module proxy into .tools/cni/bin:
#     github.com/containernetworking/plugins $CNI_PLUGINS_VERSION, the version containerd v2.4.2
#     is built against; portmap needs iptables (Debian's package; installed here);
#   - Debian's busybox (the dynamic build, fetched with apt-get download, not installed: it would
#     replace busybox-static) into .tools/e2e/busybox: its shell runs external commands as the
#     busybox image's does, where busybox-static's runs its own applets instead (a masked
#     /bin/ls would still run).
# Idempotent: version stamps.
set -euo pipefail

CNI_PLUGINS_VERSION=${CNI_PLUGINS_VERSION:-v1.9.1}
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/.tools/cni/bin"
mkdir -p "$bin"
export GOTOOLCHAIN=${GOTOOLCHAIN:-local} CGO_ENABLED=0 GOFLAGS=-buildvcs=false

if ! command -v iptables >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "e2e-tools: iptables missing; run as root or: apt-get install iptables" >&2
    exit 1
  fi
  echo "e2e-tools: apt-get install iptables"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables >/dev/null
fi

plugins=(main/bridge main/loopback ipam/host-local meta/portmap)
have_all() {
  for p in "${plugins[@]}"; do [ -x "$bin/$(basename "$p")" ] || return 1; done
}
if [ "$(cat "$bin/.cni.version" 2>/dev/null)" != "$CNI_PLUGINS_VERSION" ] || ! have_all; then
  echo "e2e-tools: building CNI plugins $CNI_PLUGINS_VERSION (${plugins[*]}) into .tools/cni/bin"
  pkgs=()
  for p in "${plugins[@]}"; do pkgs+=("github.com/containernetworking/plugins/plugins/$p@$CNI_PLUGINS_VERSION"); done
  GOBIN="$bin" go install -trimpath -ldflags "-s -w" "${pkgs[@]}"
  echo "$CNI_PLUGINS_VERSION" >"$bin/.cni.version"
fi

e2e="$top/.tools/e2e"
mkdir -p "$e2e"
if [ ! -x "$e2e/busybox" ]; then
  echo "e2e-tools: apt-get download busybox into .tools/e2e"
  tmp=$(mktemp -d)
  (cd "$tmp" && { apt-get download busybox >/dev/null 2>&1 || { apt-get update -qq && apt-get download busybox >/dev/null; }; } \
    && dpkg-deb -x busybox_*.deb x && cp x/bin/busybox "$e2e/busybox.tmp")
  rm -rf "$tmp"
  mv "$e2e/busybox.tmp" "$e2e/busybox"
fi
