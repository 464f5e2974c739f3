#!/usr/bin/env bash
# Typed-table throughput: starts fresh gcsd members (durable, data in a temp
# dir) and runs bench_tables against the leader with 50 concurrent clients:
# actor lifecycles per second (ACTOR.REGISTER, then ACTOR.UPDATE to
# PENDING_CREATION, ALIVE and DEAD) and placement groups created (placed at
# once) and removed per second.
#
# Usage: bench/tables.sh [seconds-per-workload] [clients] [members]
#        (default 10, 50, 1; members 1 or 3: a 3-member cluster on loopback)
# Needs: a built tree (ninja -C build): build/gcs/gcsd, build/bench/bench_tables.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${1:-10}
CLIENTS=${2:-50}
MEMBERS=${3:-1}
case $MEMBERS in 1 | 3) ;; *) echo "members: 1 or 3" >&2; exit 2 ;; esac
BUILD=${BUILD_DIR:-build}
GCSD=${GCSD_BIN:-$BUILD/gcs/gcsd}
BENCH=$BUILD/bench/bench_tables
PORT=${GCSD_BENCH_PORT:-16479}
WORK=$(mktemp -d /tmp/gcsd-bench-tables-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

[ -x "$GCSD" ] && [ -x "$BENCH" ] || { echo "build first (ninja -C $BUILD)"; exit 1; }

peers=
for i in $(seq 1 "$MEMBERS"); do
  peers+="${peers:+,}$i=127.0.0.1:$((PORT + 1000 + i))"
done
for i in $(seq 1 "$MEMBERS"); do
  args=(--data-dir "$WORK/m$i" --port $((PORT + i - 1)) --raft-port $((PORT + 1000 + i))
        --log-level warning)
  [ "$MEMBERS" = 1 ] || args+=(--id "$i" --peers "$peers")
  "$GCSD" "${args[@]}" 2>"$WORK/gcsd$i.log" &
  pids+=($!)
done
leader=
for _ in $(seq 1 200); do
  for i in $(seq 1 "$MEMBERS"); do
    role=$(redis-cli -p $((PORT + i - 1)) RAFT.STATUS 2>/dev/null | sed -n 4p)
    [ "$role" = leader ] && leader=$((PORT + i - 1))
  done
  [ -n "$leader" ] && break
  sleep 0.05
done
[ -n "$leader" ] || { echo "no leader elected" >&2; exit 1; }
echo "# $MEMBERS member(s), bench_tables against the leader (port $leader), $CLIENTS clients"
"$BENCH" -p "$leader" -c "$CLIENTS" -d "$SECONDS_EACH"
