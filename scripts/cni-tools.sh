#!/usr/bin/env bash
# Builds the CNI plugins `make conformance` and `make e2e-kubernetes` give their private
# containerd (bridge, host-local, loopback, portmap: pods with their own network namespace and
# port mappings, inside the run's own network namespace) from the Go module proxy into
# .tools/cni/bin: github.com/containernetworking/plugins $CNI_PLUGINS_VERSION, the version
# containerd v2.4.2 is built against. portmap needs iptables (Debian's package; installed here).
# Idempotent: a version stamp.
set -euo pipefail

CNI_PLUGINS_VERSION=${CNI_PLUGINS_VERSION:-v1.9.1}
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/.tools/cni/bin"
mkdir -p "$bin"
export GOTOOLCHAIN=${GOTOOLCHAIN:-local} CGO_ENABLED=0 GOFLAGS=-buildvcs=false

if ! command -v iptables >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "cni-tools: iptables missing; run as root or: apt-get install iptables" >&2
    exit 1
  fi
  echo "cni-tools: apt-get install iptables"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables >/dev/null
fi

plugins=(main/bridge main/loopback ipam/host-local meta/portmap)
have_all() {
  for p in "${plugins[@]}"; do [ -x "$bin/$(basename "$p")" ] || return 1; done
}
if [ "$(cat "$bin/.cni.version" 2>/dev/null)" != "$CNI_PLUGINS_VERSION" ] || ! have_all; then
  echo "cni-tools: building CNI plugins $CNI_PLUGINS_VERSION (${plugins[*]}) into .tools/cni/bin"
  pkgs=()
  for p in "${plugins[@]}"; do pkgs+=("github.com/containernetworking/plugins/plugins/$p@$CNI_PLUGINS_VERSION"); done
  GOBIN="$bin" go install -trimpath -ldflags "-s -w" "${pkgs[@]}"
  echo "$CNI_PLUGINS_VERSION" >"$bin/.cni.version"
fi
