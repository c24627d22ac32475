#!/usr/bin/env bash
# The zero-downtime gate: probe the service through its load balancer for the
# whole rollout and fail the pipeline if a single request fails.
#
#   rollout-gate.sh NAMESPACE DEPLOYMENT
#
# Environment:
#   PROBE_URL        URL behind the ALB to probe (required)
#   PROBE_RATE       requests per second (default 20)
#   ROLLOUT_TIMEOUT  how long `kubectl rollout status` may take (default 10m)
#   SETTLE           keep probing this long after the rollout is complete
#                    (default 60s). `rollout status` returns as soon as the
#                    new pods are available, while the last old pod is still
#                    in its preStop sleep and draining: the moment rollouts
#                    drop requests. SETTLE must cover terminationGracePeriod.
#   PROBE_RECORD     NDJSON file with every request (default probe.ndjson),
#                    for `rollsafe report` or as a CI artifact.
#
# Exit status, rollsafe's own codes: 0 no request failed; 1 a request failed
# (the probe's summary says which and why) or the rollout did not complete;
# 2 bad usage or input (the arguments, PROBE_URL or PROBE_RATE); 3 the probe
# could not run (e.g. PROBE_URL never answered a single request), so the
# rollout was not judged at all (also when the probe died of a signal).
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: rollout-gate.sh NAMESPACE DEPLOYMENT" >&2
  exit 2
fi
namespace=$1 deployment=$2
: "${PROBE_URL:?PROBE_URL must name the URL to probe behind the load balancer}"
rate=${PROBE_RATE:-20}
timeout=${ROLLOUT_TIMEOUT:-10m}
settle=${SETTLE:-60s}
record=${PROBE_RECORD:-probe.ndjson}

# The probe has no end of its own (--duration 0): it stops on SIGTERM,
# flushes its record and summary, and exits 1 if any request failed.
rollsafe probe "$PROBE_URL" --rate "$rate" --max-failures 0 --record "$record" &
probe=$!
stop_probe() {
  kill -TERM "$probe" 2>/dev/null || true
  probe_rc=0
  wait "$probe" || probe_rc=$?
}
# A cancelled job must not leave the probe running.
trap 'kill -TERM "$probe" 2>/dev/null || true' EXIT

rollout_rc=0
kubectl rollout status "deployment/$deployment" --namespace "$namespace" --timeout "$timeout" || rollout_rc=$?
if [ "$rollout_rc" -eq 0 ]; then
  echo "rollout-gate: rollout complete; probing $settle more while the old pods drain"
  sleep "$settle"
fi
stop_probe
trap - EXIT

if [ "$rollout_rc" -ne 0 ]; then
  echo "rollout-gate: FAILED: kubectl rollout status exited $rollout_rc (consider: kubectl rollout undo deployment/$deployment -n $namespace)" >&2
  exit 1
fi
case "$probe_rc" in
  0) ;;
  1)
    echo "rollout-gate: FAILED: requests failed during the rollout (probe exited 1; every request is in $record)" >&2
    exit 1 ;;
  2)
    echo "rollout-gate: FAILED: the probe refused its input (probe exited 2: bad PROBE_URL or PROBE_RATE; its message is above)" >&2
    exit 2 ;;
  3)
    echo "rollout-gate: FAILED: the probe could not run (probe exited 3: e.g. $PROBE_URL never answered), so the rollout was not judged" >&2
    exit 3 ;;
  *)
    echo "rollout-gate: FAILED: the probe exited $probe_rc, none of rollsafe's codes (above 128: killed by a signal); the rollout was not judged" >&2
    exit 3 ;;
esac
echo "rollout-gate: zero failed requests during the rollout of deployment/$deployment"
