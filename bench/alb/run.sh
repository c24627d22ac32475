#!/usr/bin/env bash
# Benchmark: the lab's ALB stand-in vs nginx as reverse proxy to the same Go
# backend, same load generators, on loopback. Needs Debian's nginx-light and wrk.
# Extra flags go to `benchalb run` (-duration, -connections, -rate, -strict).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/benchalb" ./bench/alb
"$bin/benchalb" run "$@"
