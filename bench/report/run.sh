#!/usr/bin/env bash
# Benchmark `rollsafe report` against `rollsafe logs`, side by side in one run
# on the same generated evidence (bench/report/gen): N probe request records
# with the pod and target records of three rollouts (probe.ndjson) and the
# ALB access log of the same N requests (alb.log, uncompressed):
#   (a) rollsafe logs alb.log -o json
#   (b) rollsafe report probe.ndjson alb.log -o json --html ''
# each under /usr/bin/time -v. Targets (the issue's): report's max RSS
# <= 1 GiB, and report's wall time <= 3x that of logs on the log alone.
# The JSON goes to files rather than /dev/null so the script can check that
# both saw all N requests and that report attributed every failure.
#
# Env: N (requests, default 1000000), SEED (1), RUNS (default 3, taken in
#      turns; the best wall time and the largest RSS of each command count:
#      the machines are shared and noisy, and logs takes well under a second),
#      MODE=timeline runs report on probe.ndjson alone (for a report that
#      cannot read access logs yet), KEEP=1 keeps the work dir,
#      STRICT=1 exits 1 when a target is missed, ROLLSAFE=path uses that
#      binary instead of building ./cmd/rollsafe.
set -euo pipefail

N=${N:-1000000}
SEED=${SEED:-1}
RUNS=${RUNS:-3}
MODE=${MODE:-combined}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
case $MODE in
combined | timeline) ;;
*) echo "bench/report: MODE=$MODE: want combined or timeline" >&2; exit 2 ;;
esac

for tool in /usr/bin/time python3; do
	command -v "$tool" >/dev/null || { echo "bench/report: $tool not found (Debian: apt-get install time python3)" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/rollsafe-bench-report.XXXXXX")
[[ ${KEEP:-} == 1 ]] && echo "work dir: $work" >&2 || trap 'rm -rf "$work"' EXIT

echo "building rollsafe and gen..." >&2
if [[ -n ${ROLLSAFE:-} ]]; then
	cp "$ROLLSAFE" "$work/rollsafe"
else
	go build -o "$work/rollsafe" ./cmd/rollsafe
fi
go build -o "$work/gen" ./bench/report/gen

echo "generating $N request records and $N access-log lines..." >&2
"$work/gen" -dir "$work" -n "$N" -seed "$SEED"
records=$(wc -l <"$work/probe.ndjson")
lines=$(wc -l <"$work/alb.log")

report_inputs=("$work/probe.ndjson" "$work/alb.log")
[[ $MODE == timeline ]] && report_inputs=("$work/probe.ndjson")

# measure NAME CMD...: run CMD under /usr/bin/time -v with stdout to
# $work/NAME.json; append "seconds rss_kb" to $work/NAME.times.
measure() {
	local name=$1
	shift
	/usr/bin/time -v -o "$work/$name.time" "$@" >"$work/$name.json" ||
		{ echo "bench/report: $name exited $? (its error is above)" >&2; exit 1; }
	python3 - "$work/$name.time" >>"$work/$name.times" <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
wall = re.search(r"Elapsed \(wall clock\) time .*: (\S+)", t).group(1)
secs = 0.0
for part in wall.split(":"):
    secs = secs * 60 + float(part)
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
print(secs, rss)
EOF
}

echo "timing rollsafe logs and rollsafe report ($MODE), $RUNS run(s) each..." >&2
for _ in $(seq "$RUNS"); do
	measure logs "$work/rollsafe" logs "$work/alb.log" -o json
	measure report "$work/rollsafe" report "${report_inputs[@]}" -o json --html ''
done

python3 - "$work" "$N" "$records" "$lines" "$MODE" "${STRICT:-}" <<'EOF'
import json, sys
work, n, records, lines, mode, strict = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6] == "1"

def best(name):
    runs = [tuple(map(float, l.split())) for l in open(f"{work}/{name}.times")]
    if len(runs) > 1:
        print(f"{name} runs: " + ", ".join(f"{s:.2f}s {kb/1024:.0f}MB" for s, kb in runs))
    return min(r[0] for r in runs), int(max(r[1] for r in runs))

print(f"data: {records} timeline records (probe.ndjson), {lines} access-log lines (alb.log)")
logs_s, logs_kb = best("logs")
rep_s, rep_kb = best("report")
logs_j, rep_j = json.load(open(f"{work}/logs.json")), json.load(open(f"{work}/report.json"))
logs_n, logs_f = logs_j["requests"], logs_j["failures"]
runs = rep_j["runs"]
rep_n = sum(r["summary"]["requests"] for r in runs)
rep_f = sum(r["summary"]["requests"] - r["summary"]["ok"] for r in runs)
attributed = sum(len(r["failures"]) for r in runs)
if attributed != rep_f:
    sys.exit(f"bench/report: report attributed {attributed} of {rep_f} failures")
inputs = "probe.ndjson alb.log" if mode == "combined" else "probe.ndjson (MODE=timeline)"
print(f"{'command':<44}{'seconds':>9}{'max RSS MB':>12}{'requests':>10}{'failed':>8}")
print(f"{'rollsafe logs alb.log':<44}{logs_s:>9.2f}{logs_kb/1024:>12.0f}{logs_n:>10}{logs_f:>8}")
print(f"{'rollsafe report ' + inputs:<44}{rep_s:>9.2f}{rep_kb/1024:>12.0f}{rep_n:>10}{rep_f:>8}")
ratio = rep_s / logs_s
ok_rss, ok_ratio = rep_kb <= 1 << 20, ratio <= 3.0
print(f"report / logs wall time: {ratio:.2f}")
print(f"{'PASS' if ok_rss else 'FAIL'}: report max RSS {rep_kb/1024:.0f} MB (target <= 1024 MB)")
print(f"{'PASS' if ok_ratio else 'FAIL'}: report / logs time {ratio:.2f} (target <= 3.00)")
if mode != "combined":
    print("NOTE: MODE=timeline: report did not read alb.log; the targets are for the combined run")
status = 0
# Both must have seen every request and every failure, or the times mean nothing.
if logs_n != n or rep_n != n or logs_f != rep_f:
    print(f"FAIL: counts differ: generated {n} requests; logs saw {logs_n} ({logs_f} failed), report {rep_n} ({rep_f} failed)")
    status = 1
if strict and not (ok_rss and ok_ratio):
    status = 1
sys.exit(status)
EOF
