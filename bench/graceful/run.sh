#!/usr/bin/env bash
# Overhead of graceful's wrapper: the same handler bare and wrapped, runs
# interleaved (bare, wrapped, bare, ...) so machine noise hits both alike,
# medians compared. Target: wrapped ≤ 2 % slower. Exits 1 past the target.
#   LEVEL=Handler (default): in-process handler path.
#   LEVEL=loopback: full HTTP round trips over loopback keep-alive (noisier).
set -euo pipefail
cd "$(dirname "$0")/../.."
count=${COUNT:-10}
case "${LEVEL:-Handler}" in
  loopback) bare=Bare; wrapped=Graceful ;;
  *)        bare=HandlerBare; wrapped=HandlerGraceful ;;
esac
bin=$(mktemp -d)/graceful.test
trap 'rm -rf "$(dirname "$bin")"' EXIT
go test -c -o "$bin" ./graceful
for _ in $(seq "$count"); do
  for b in "$bare" "$wrapped"; do
    "$bin" -test.run '^$' -test.bench "^Benchmark$b\$" -test.benchtime "${BENCHTIME:-1s}" | grep -E '^Benchmark'
  done
done | tee /dev/stderr | awk -v bare="Benchmark$bare" -v wrapped="Benchmark$wrapped" '
  { name = $1; sub(/-[0-9]+$/, "", name) }
  name == bare    { b[++nb] = $3 }
  name == wrapped { w[++nw] = $3 }
  function median(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  END {
    mb = median(b, nb); mw = median(w, nw); o = (mw / mb - 1) * 100
    printf "median ns/op: bare %.1f, graceful %.1f; overhead %+.2f%% (target <= 2%%)\n", mb, mw, o
    exit (o > 2) ? 1 : 0
  }'
