#!/usr/bin/env bash
# Builds crictl and critest (sigs.k8s.io/cri-tools $CRI_TOOLS_VERSION) from the Go module proxy
# into .tools/cri-tools/bin, for `make conformance` and `make demo`. critest is a Go test binary
# (cmd/critest is a _test.go package): it is compiled with `go test -c` in a writable copy of the
# module, since the module cache is read-only. Idempotent: a version stamp; nothing is rebuilt
# when it matches.
set -euo pipefail

CRI_TOOLS_VERSION=${CRI_TOOLS_VERSION:-v1.37.0}
top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/.tools/cri-tools"
bin="$dir/bin"
mkdir -p "$bin"
export GOFLAGS=-mod=mod GOTOOLCHAIN=${GOTOOLCHAIN:-local} CGO_ENABLED=0

if [ "$(cat "$bin/.cri-tools.version" 2>/dev/null)" != "$CRI_TOOLS_VERSION" ] || [ ! -x "$bin/crictl" ] || [ ! -x "$bin/critest" ]; then
  echo "cri-tools: building crictl and critest $CRI_TOOLS_VERSION into .tools/cri-tools/bin"
  mod=$(cd "$dir" && go mod download -json "sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  src="$dir/src/cri-tools-$CRI_TOOLS_VERSION"
  rm -rf "$src"
  mkdir -p "$(dirname "$src")"
  cp -r "$mod" "$src"
  chmod -R u+w "$src"
  cd "$src"
  ldflags="-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRI_TOOLS_VERSION"
  go build -trimpath -ldflags "$ldflags" -o "$bin/crictl" ./cmd/crictl
  go test -c -trimpath -ldflags "$ldflags" -o "$bin/critest" ./cmd/critest
  echo "$CRI_TOOLS_VERSION" >"$bin/.cri-tools.version"
fi
"$bin/crictl" --version
