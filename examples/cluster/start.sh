#!/usr/bin/env bash
# Starts a strata scheduler and N executors on this machine, waits until each listens,
# prints how to query them, and stops them all on Ctrl-C (or when one of them stops).
#
#   examples/cluster/start.sh [EXECUTORS] [PORT]
#
# EXECUTORS defaults to 2 and PORT (the scheduler's) to 50050. Environment:
#   STRATA      the strata binary [default: strata on PATH, else target/release/strata]
#   HOST        the address to listen on [default: 127.0.0.1]
#   CORES       tasks each executor runs at once [default: this machine's cores / EXECUTORS]
#   LOGS        a folder for the processes' output [default: a new temporary folder]
# Executors read S3 buckets with their own settings: export the AWS_* variables (or
# STRATA_CONFIG, a config file with an [s3] section) before starting them.
set -euo pipefail

executors=${1:-2}
port=${2:-50050}
host=${HOST:-127.0.0.1}
here=$(cd "$(dirname "$0")/../.." && pwd)
if [ -n "${STRATA:-}" ]; then
  strata=$STRATA
elif command -v strata >/dev/null 2>&1; then
  strata=$(command -v strata)
elif [ -x "$here/target/release/strata" ]; then
  strata=$here/target/release/strata
else
  echo "no strata binary: build one with 'cargo build --release' or set STRATA" >&2
  exit 1
fi
cores=${CORES:-$(( $(nproc) / executors ))}
[ "$cores" -ge 1 ] || cores=1
logs=${LOGS:-$(mktemp -d -t strata-cluster.XXXXXX)}
mkdir -p "$logs"

pids=()
stop() {
  trap - EXIT INT TERM
  [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop EXIT
trap 'stop; exit 130' INT TERM

# Starts `strata ARGS` with its output in LOG, waits for its "listening on" line and sets
# `address` to the address it prints.
address=
start() {
  local log=$1 what=$2
  shift 2
  "$strata" "$@" >"$log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 1 300); do
    if grep -q "^strata $what: listening on " "$log"; then
      address=$(sed -n "s/^strata $what: listening on //p" "$log" | head -1)
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "the $what stopped:" >&2
      cat "$log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "the $what did not start within 30 s; its output is in $log" >&2
  return 1
}

start "$logs/scheduler.log" scheduler scheduler --listen "$host:$port"
scheduler=$address
echo "scheduler on $scheduler"
for i in $(seq 1 "$executors"); do
  start "$logs/executor-$i.log" executor \
    executor --scheduler "$scheduler" --listen "$host:0" --cores "$cores"
  if [ "$cores" -eq 1 ]; then unit=core; else unit=cores; fi
  echo "executor $i on $address ($cores $unit)"
done
cat <<TEXT

Query it from another terminal:
  strata --cluster $scheduler --demo -c "SELECT region, count(*) FROM raw.sales JOIN raw.stores USING (store_id) GROUP BY region"
Output of each process: $logs
Ctrl-C stops them all.
TEXT
wait -n "${pids[@]}" || true
echo "a process of the cluster stopped; see $logs" >&2
