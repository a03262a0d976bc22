#!/usr/bin/env bash
# Builds crictl and critest (sigs.k8s.io/cri-tools $CRI_TOOLS_VERSION) from the Go module proxy
# into .tools/cri-tools/bin, for `make conformance` and `make demo`. critest is a Go test binary
# (cmd/critest is a _test.go package): it is compiled with `go test -c` in a writable copy of the
# module, since the module cache is read-only. Idempotent: a version stamp per binary; nothing
# is rebuilt when they match. `scripts/cri-tools.sh crictl` builds crictl only (what `make demo` needs).
set -euo pipefail

CRI_TOOLS_VERSION=${CRI_TOOLS_VERSION:-v1.37.0}
top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/.tools/cri-tools"
bin="$dir/bin"
mkdir -p "$bin"
export GOFLAGS=-mod=mod GOTOOLCHAIN=${GOTOOLCHAIN:-local} CGO_ENABLED=0

only=${1:-}
stamp() { cat "$bin/.$1.version" 2>/dev/null || true; }
need_crictl=false need_critest=false
{ [ "$(stamp crictl)" != "$CRI_TOOLS_VERSION" ] || [ ! -x "$bin/crictl" ]; } && need_crictl=true
{ [ "$only" != crictl ] && { [ "$(stamp critest)" != "$CRI_TOOLS_VERSION" ] || [ ! -x "$bin/critest" ]; }; } && need_critest=true
if $need_crictl || $need_critest; then
  mod=$(cd "$dir" && go mod download -json "sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  src="$dir/src/cri-tools-$CRI_TOOLS_VERSION"
  if [ ! -f "$src/go.mod" ]; then
    rm -rf "$src"
    mkdir -p "$(dirname "$src")"
    cp -r "$mod" "$src"
    chmod -R u+w "$src"
  fi
  cd "$src"
  ldflags="-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRI_TOOLS_VERSION"
  if $need_crictl; then
    echo "cri-tools: building crictl $CRI_TOOLS_VERSION into .tools/cri-tools/bin"
    go build -trimpath -ldflags "$ldflags" -o "$bin/crictl" ./cmd/crictl
    echo "$CRI_TOOLS_VERSION" >"$bin/.crictl.version"
  fi
  if $need_critest; then
    echo "cri-tools: building critest $CRI_TOOLS_VERSION (go test -c ./cmd/critest) into .tools/cri-tools/bin"
    go test -c -trimpath -ldflags "$ldflags" -o "$bin/critest" ./cmd/critest
    echo "$CRI_TOOLS_VERSION" >"$bin/.critest.version"
  fi
fi
"$bin/crictl" --version
