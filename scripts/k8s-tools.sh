#!/usr/bin/env bash
# Builds what `make e2e-kubernetes` runs, from the Go module proxy, into .tools/k8s/bin:
#   - kubelet, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl of
#     k8s.io/kubernetes $KUBERNETES_VERSION: a scratch module requires it and replaces each of
#     its staging modules (k8s.io/api, k8s.io/client-go, ...: "v0.0.0 => ./staging/..." in its
#     go.mod, which a dependency's replace cannot use) with the matching v0.X.Y release;
#   - etcd from go.etcd.io/etcd/server/v3 $ETCD_VERSION (its go.mod replaces too, so again a
#     scratch module rather than go install).
# Idempotent: a version stamp per binary set; nothing is rebuilt when the stamps match.
# Slow the first time (about 10 minutes of two cores for Kubernetes), so start it early.
set -euo pipefail

KUBERNETES_VERSION=${KUBERNETES_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.7.0}
top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/.tools/k8s"
bin="$dir/bin"
mkdir -p "$bin"
export GOFLAGS=-mod=mod GOTOOLCHAIN=${GOTOOLCHAIN:-local} CGO_ENABLED=0

stamp() { cat "$bin/.$1.version" 2>/dev/null || true; }
k8s_bins=(kubelet kube-apiserver kube-controller-manager kube-scheduler kubectl)

have_all() {
  for b in "${k8s_bins[@]}"; do [ -x "$bin/$b" ] || return 1; done
}

if [ "$(stamp kubernetes)" != "$KUBERNETES_VERSION" ] || ! have_all; then
  echo "k8s-tools: building Kubernetes $KUBERNETES_VERSION (${k8s_bins[*]}) into .tools/k8s/bin"
  src="$dir/src/kubernetes-$KUBERNETES_VERSION"
  mkdir -p "$src"
  cd "$src"
  [ -f go.mod ] || go mod init hardened.local/k8s-tools >/dev/null 2>&1
  go mod download "k8s.io/kubernetes@$KUBERNETES_VERSION"
  kdir=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  staging_version="v0.${KUBERNETES_VERSION#v1.}"
  # Every "k8s.io/x => ./staging/src/k8s.io/x" of Kubernetes' go.mod becomes "k8s.io/x => k8s.io/x v0.Y.Z".
  edits=(-require="k8s.io/kubernetes@$KUBERNETES_VERSION")
  for m in $(sed -n 's#^\t\(k8s.io/[^ ]*\) => ./staging/src/.*#\1#p' "$kdir/go.mod"); do
    edits+=(-replace="$m=$m@$staging_version")
  done
  go mod edit "${edits[@]}"
  cat >tools.go <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
EOF
  go mod tidy -e >/dev/null 2>&1 || true
  pkg=k8s.io/component-base/version
  minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  ldflags="-s -w -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION"
  for b in "${k8s_bins[@]}"; do
    echo "k8s-tools:   $b"
    go build -trimpath -ldflags "$ldflags" -o "$bin/$b" "k8s.io/kubernetes/cmd/$b"
  done
  echo "$KUBERNETES_VERSION" >"$bin/.kubernetes.version"
fi

if [ "$(stamp etcd)" != "$ETCD_VERSION" ] || [ ! -x "$bin/etcd" ]; then
  echo "k8s-tools: building etcd $ETCD_VERSION into .tools/k8s/bin"
  src="$dir/src/etcd-$ETCD_VERSION"
  mkdir -p "$src"
  cd "$src"
  [ -f go.mod ] || go mod init hardened.local/etcd-tools >/dev/null 2>&1
  go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  cat >tools.go <<'EOF'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
EOF
  go mod tidy -e >/dev/null 2>&1 || true
  go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3
  echo "$ETCD_VERSION" >"$bin/.etcd.version"
fi

"$bin/kubelet" --version
"$bin/etcd" --version | sed -n 1p
