#!/usr/bin/env bash
# Typed-table throughput on a single node: starts a fresh gcsd (durable, data
# in a temp dir) and runs bench_tables against it with 50 concurrent clients:
# actor lifecycles per second (ACTOR.REGISTER, then ACTOR.UPDATE to
# PENDING_CREATION, ALIVE and DEAD) and placement groups created (placed at
# once) and removed per second.
#
# Usage: bench/tables.sh [seconds-per-workload] [clients]   (default 10, 50)
# Needs: a built tree (ninja -C build): build/gcs/gcsd, build/bench/bench_tables.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${1:-10}
CLIENTS=${2:-50}
BUILD=${BUILD_DIR:-build}
GCSD=${GCSD_BIN:-$BUILD/gcs/gcsd}
BENCH=$BUILD/bench/bench_tables
PORT=${GCSD_BENCH_PORT:-16479}
WORK=$(mktemp -d /tmp/gcsd-bench-tables-XXXXXX)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

[ -x "$GCSD" ] && [ -x "$BENCH" ] || { echo "build first (ninja -C $BUILD)"; exit 1; }

"$GCSD" --data-dir "$WORK" --port "$PORT" --raft-port $((PORT + 1000)) \
  --log-level warning 2>"$WORK/gcsd.log" &
pid=$!
for _ in $(seq 1 200); do
  redis-cli -p "$PORT" PING >/dev/null 2>&1 && break
  sleep 0.05
done
"$BENCH" -p "$PORT" -c "$CLIENTS" -d "$SECONDS_EACH"
