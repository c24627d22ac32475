#!/usr/bin/env bash
# Probe benchmark, one run on loopback against one Go server:
#  1. max throughput, side by side at equal connections: rollsafe probe and
#     vegeta with recording on (both write every result to disk), and wrk,
#     which records nothing (the ceiling of this machine and server); prints
#     rollsafe's ratio to each (target >= 1.5 to vegeta), and each client's
#     CPU time per request, which other load on the machine disturbs less;
#  2. peak RSS of rollsafe probe while recording 1,000,000 requests to disk
#     (target <= 150 MB).
# vegeta is installed into a temporary GOBIN that is removed afterwards;
# wrk comes from the system (Debian: apt-get install wrk).
# Knobs: CONNS (16), DURATION (10s), ROUNDS (2), N (1000000), WRK_THREADS (2).
set -euo pipefail

CONNS=${CONNS:-16}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-2}
N=${N:-1000000}
WRK_THREADS=${WRK_THREADS:-2}
VEGETA=github.com/tsenart/vegeta/v12@v12.13.0

root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (Debian package: time)" >&2; exit 3; }
command -v python3 >/dev/null || { echo "needs python3 to read JSON" >&2; exit 3; }
command -v wrk >/dev/null || { echo "needs wrk (Debian package: wrk)" >&2; exit 3; }

echo "building rollsafe, server, vegeta ($VEGETA) ..." >&2
(cd "$root" && go build -o "$tmp/rollsafe" ./cmd/rollsafe && go build -o "$tmp/server" ./bench/probe/server)
GOBIN="$tmp/bin" GOFLAGS= go install "$VEGETA"

"$tmp/server" >"$tmp/addr" 2>"$tmp/server.log" &
server_pid=$!
for _ in $(seq 100); do [[ -s $tmp/addr ]] && break; sleep 0.05; done
url="http://$(head -1 "$tmp/addr")/"
echo "server $url, $CONNS connections, $DURATION per client, $ROUNDS rounds" >&2

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# cpu FILE N: CPU microseconds (user + sys, from /usr/bin/time -f '%U %S')
# per request. Less sensitive than req/s to other load on a shared machine.
cpu() { awk -v n="$2" '{printf "%.1f", ($1 + $2) * 1e6 / n}' "$1"; }

best_v=0 best_r=0 best_w=0 cpu_v=1e9 cpu_r=1e9 cpu_w=1e9
for round in $(seq "$ROUNDS"); do
  echo "GET $url" | /usr/bin/time -f '%U %S' -o "$tmp/cpu.vegeta" "$tmp/bin/vegeta" attack -rate=0 -max-workers="$CONNS" -workers="$CONNS" \
    -connections="$CONNS" -max-connections="$CONNS" -duration="$DURATION" >"$tmp/vegeta.bin"
  "$tmp/bin/vegeta" report -type=json "$tmp/vegeta.bin" >"$tmp/vegeta.json"
  v=$(json "$tmp/vegeta.json" "d['rate']")
  v_ok=$(json "$tmp/vegeta.json" "d['success']")
  v_cpu=$(cpu "$tmp/cpu.vegeta" "$(json "$tmp/vegeta.json" "d['requests']")")
  rm -f "$tmp/vegeta.bin"

  /usr/bin/time -f '%U %S' -o "$tmp/cpu.rollsafe" "$tmp/rollsafe" probe "$url" --rate 0 -c "$CONNS" -d "$DURATION" --record "$tmp/probe.ndjson" --output json >"$tmp/probe.json"
  r=$(json "$tmp/probe.json" "d['rate']")
  r_ok=$(json "$tmp/probe.json" "d['ok']/max(d['requests'],1)")
  r_cpu=$(cpu "$tmp/cpu.rollsafe" "$(json "$tmp/probe.json" "d['requests']")")
  rm -f "$tmp/probe.ndjson"

  /usr/bin/time -f '%U %S' -o "$tmp/cpu.wrk" wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" "$url" >"$tmp/wrk.txt"
  w=$(awk '/^Requests\/sec:/ {print $2}' "$tmp/wrk.txt")
  w_cpu=$(cpu "$tmp/cpu.wrk" "$(awk '/requests in/ {print $1}' "$tmp/wrk.txt")")
  printf 'round %d: rollsafe %.0f req/s (ok %.4f, %s µs CPU/req)   vegeta %.0f req/s (success %.4f, %s µs)   wrk %.0f req/s (records nothing, %s µs)\n' \
    "$round" "$r" "$r_ok" "$r_cpu" "$v" "$v_ok" "$v_cpu" "$w" "$w_cpu"
  best_v=$(python3 -c "print(max($best_v, $v))")
  best_r=$(python3 -c "print(max($best_r, $r))")
  best_w=$(python3 -c "print(max($best_w, $w))")
  cpu_v=$(python3 -c "print(min($cpu_v, $v_cpu))")
  cpu_r=$(python3 -c "print(min($cpu_r, $r_cpu))")
  cpu_w=$(python3 -c "print(min($cpu_w, $w_cpu))")
done
ratio=$(python3 -c "print(f'{$best_r/$best_v:.3f}')")
ratio_w=$(python3 -c "print(f'{$best_r/$best_w:.3f}')")
printf 'throughput, best of %d:  rollsafe %.0f req/s   vegeta %.0f req/s   wrk %.0f req/s\n' "$ROUNDS" "$best_r" "$best_v" "$best_w"
echo "ratios: rollsafe/vegeta $ratio (target >= 1.5; both recording)   rollsafe/wrk $ratio_w (wrk records nothing)"
printf 'client CPU per request, best of %d: rollsafe %s µs   vegeta %s µs   wrk %s µs; vegeta/rollsafe %.3f, wrk/rollsafe %.3f\n' \
  "$ROUNDS" "$cpu_r" "$cpu_v" "$cpu_w" "$(python3 -c "print($cpu_v/$cpu_r)")" "$(python3 -c "print($cpu_w/$cpu_r)")"

/usr/bin/time -v -o "$tmp/time.txt" "$tmp/rollsafe" probe "$url" --rate 0 -c "$CONNS" --requests "$N" \
  --record "$tmp/big.ndjson" --output json >"$tmp/big.json"
lines=$(wc -l <"$tmp/big.ndjson")
size=$(du -m "$tmp/big.ndjson" | cut -f1)
rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/time.txt")
echo "recorded $lines requests ($size MB on disk, $(json "$tmp/big.json" "round(d['rate'])") req/s): peak RSS $((rss_kb / 1024)) MB (target <= 150 MB)"

status=0
python3 -c "import sys; sys.exit(0 if $ratio >= 1.5 else 1)" || { echo "MISSED: throughput ratio $ratio < 1.5"; status=1; }
(( rss_kb <= 150 * 1024 )) || { echo "MISSED: RSS $((rss_kb / 1024)) MB > 150 MB"; status=1; }
(( lines == N )) || { echo "MISSED: $lines records for $N requests"; status=1; }
exit $status
