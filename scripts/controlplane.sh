#!/usr/bin/env bash
# Builds the real Kubernetes control plane that rollsafe's tests and
# `rollsafe lab --kube` run on loopback: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kubectl, all from the Go module
# proxy through the wrapper module in tools/controlplane (its own go.mod, so
# kubernetes' replace directives never touch rollsafe's).
#
# Binaries go into a cache OUTSIDE the repo and are built only when missing:
#   ${ROLLSAFE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rollsafe}/controlplane/v1.37.2/bin
# The last line printed on stdout is that directory; point
# ROLLSAFE_CONTROLPLANE_BIN at it to use another one.
#
# Cold build on 2 cores: about 10-15 minutes (kube-apiserver alone ~9).
set -euo pipefail

K8S_VERSION=v1.37.2
K8S_MINOR=37

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
wrapper="$repo/tools/controlplane"
cache="${ROLLSAFE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rollsafe}"
bin="$cache/controlplane/$K8S_VERSION/bin"
mkdir -p "$bin"

# kubectl refuses to talk to a server whose version it cannot parse, and an
# unstamped build reports v0.0.0-master; stamp every k8s binary alike.
vpkg=k8s.io/component-base/version
ldflags="-s -w -X $vpkg.gitVersion=$K8S_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$K8S_MINOR -X $vpkg.gitTreeState=clean"

# name -> package inside the wrapper module.
declare -A pkgs=(
  [etcd]=./etcd
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
  [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
  [kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
  [kubectl]=k8s.io/kubernetes/cmd/kubectl
)
# Build order: etcd first (seconds), then apiserver, which the tests need most.
order=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl)

cd "$wrapper"
for name in "${order[@]}"; do
  if [[ -x "$bin/$name" ]]; then
    echo "controlplane: $name present, skipping" >&2
    continue
  fi
  echo "controlplane: building $name ..." >&2
  start=$SECONDS
  # Build to a temp name and rename, so an interrupted build never leaves a
  # truncated binary that the next run would take as present.
  # No -trimpath: here it doubles the cold build time and the build cache.
  CGO_ENABLED=0 go build -mod=readonly -ldflags "$ldflags" -o "$bin/.$name.tmp" "${pkgs[$name]}"
  mv -f "$bin/.$name.tmp" "$bin/$name"
  echo "controlplane: built $name in $((SECONDS - start))s" >&2
done

echo "$bin"
