#!/usr/bin/env bash
# Installs what the deploy steps need beyond Go, Docker and the AWS CLI into
# $TOOLS_BIN (default ./bin, gitignored), the same way on every CI system:
#   kubectl   release binary, checked against its published sha256
#   kustomize built with `go install` at a pinned version
#   rollsafe  built from this checkout (elsewhere: go install
#             github.com/rollsafe/rollsafe/cmd/rollsafe@<version>)
# Then: export PATH="$TOOLS_BIN:$PATH".
set -euo pipefail

KUBECTL_VERSION=${KUBECTL_VERSION:-v1.34.1}
KUSTOMIZE_VERSION=${KUSTOMIZE_VERSION:-v5.8.2}
TOOLS_BIN=${TOOLS_BIN:-$PWD/bin}
mkdir -p "$TOOLS_BIN"

case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "install-tools: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac

if ! command -v kubectl >/dev/null 2>&1; then
  url="https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${arch}/kubectl"
  curl -fsSLo "$TOOLS_BIN/kubectl" "$url"
  echo "$(curl -fsSL "$url.sha256")  $TOOLS_BIN/kubectl" | sha256sum --check --status ||
    { echo "install-tools: kubectl ${KUBECTL_VERSION} checksum mismatch" >&2; rm -f "$TOOLS_BIN/kubectl"; exit 1; }
  chmod +x "$TOOLS_BIN/kubectl"
fi

GOBIN="$TOOLS_BIN" go install "sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION}"
go build -o "$TOOLS_BIN/rollsafe" ./cmd/rollsafe

export PATH="$TOOLS_BIN:$PATH"
kubectl version --client
kustomize version
rollsafe version
