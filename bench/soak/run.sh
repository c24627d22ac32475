#!/usr/bin/env bash
# soak's memory over many rollouts: runs `rollsafe soak` for ROLLOUTS (≥ 50)
# rollouts against a real control plane with soak's pod and load-balancer
# stand-ins (bench/soak/harness), samples soak's VmRSS after every rollout
# and prints first, last, max and the least-squares slope (KiB per rollout).
# Memory must stay flat: requests stream to the --record file and each
# rollout's state is dropped once reported.
#
#   bench/soak/run.sh                # 60 rollouts at 100 req/s
#   ROLLOUTS=200 RATE=200 bench/soak/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROLLOUTS=${ROLLOUTS:-60}
RATE=${RATE:-100}
work=$(mktemp -d)
harness_pid=
cleanup() {
  [ -n "$harness_pid" ] && kill "$harness_pid" 2>/dev/null && wait "$harness_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

export ROLLSAFE_CONTROLPLANE_BIN=${ROLLSAFE_CONTROLPLANE_BIN:-$(scripts/controlplane.sh | tail -n 1)}
go build -o "$work/rollsafe" ./cmd/rollsafe
go build -o "$work/harness" ./bench/soak/harness

mkfifo "$work/ready"
"$work/harness" >"$work/ready" 2>"$work/harness.log" &
harness_pid=$!
read -r kubeconfig namespace url <"$work/ready" || { cat "$work/harness.log"; exit 1; }
echo "control plane up: namespace $namespace, url $url"

"$work/rollsafe" soak --kubeconfig "$kubeconfig" -n "$namespace" --deployment web --url "$url" \
  --trigger env:VERSION --version-header X-Version --rollouts "$ROLLOUTS" --rate "$RATE" \
  --settle 0s --timeout 2s --output json --record "$work/soak.ndjson" >"$work/out.fifo" 2>"$work/soak.err" &
soak_pid=$!
# out.fifo is a plain file; follow it so every rollout line is seen as it lands.
n=0
: >"$work/rss"
tail -n +1 -F --pid="$soak_pid" "$work/out.fifo" 2>/dev/null | while read -r line; do
  case "$line" in
    '{"rollout"'*)
      n=$((n + 1))
      rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$soak_pid/status" 2>/dev/null || echo "")
      [ -n "$rss" ] && echo "$n $rss" >>"$work/rss"
      ;;
  esac
done
wait "$soak_pid" && code=0 || code=$?
tail -n 1 "$work/out.fifo"
echo "soak exit status $code; record $(wc -l <"$work/soak.ndjson") lines, $(du -h "$work/soak.ndjson" | cut -f1)"
awk '
  { x[NR] = $1; y[NR] = $2; if (NR == 1 || $2 > max) max = $2 }
  END {
    if (NR < 2) { print "too few samples"; exit 1 }
    for (i = 1; i <= NR; i++) { sx += x[i]; sy += y[i]; sxx += x[i] * x[i]; sxy += x[i] * y[i] }
    slope = (NR * sxy - sx * sy) / (NR * sxx - sx * sx)
    # Second half only: the first rollouts include warm-up (caches, pools).
    h = int(NR / 2); sx = sy = sxx = sxy = 0; m = NR - h
    for (i = h + 1; i <= NR; i++) { sx += x[i]; sy += y[i]; sxx += x[i] * x[i]; sxy += x[i] * y[i] }
    slope2 = (m * sxy - sx * sy) / (m * sxx - sx * sx)
    printf "RSS samples %d: first %d KiB, last %d KiB, max %d KiB\n", NR, y[1], y[NR], max
    printf "slope %.1f KiB/rollout overall, %.1f KiB/rollout over the second half\n", slope, slope2
  }' "$work/rss"
exit "$code"
