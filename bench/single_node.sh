#!/usr/bin/env bash
# Single-node throughput: gcsd against a durable redis-server (appendonly yes,
# appendfsync always), same machine, same redis-benchmark runs, one after the
# other. Prints each figure and the ratio gcsd / redis, then the write
# latency of each (SET and INCR at -c 50: p50, p99, p99.9 and max, from
# redis-benchmark's percentile distribution).
#
# Usage: bench/single_node.sh [requests-per-test]   (default 200000)
# Needs: a built gcsd (build/gcs/gcsd), redis-server, redis-benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/latency_lib.sh

N=${1:-200000}
GCSD=${GCSD_BIN:-build/gcs/gcsd}
GPORT=${GCSD_BENCH_PORT:-16379}
RPORT=${REDIS_BENCH_PORT:-16380}
WORK=$(mktemp -d /tmp/gcsd-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

[ -x "$GCSD" ] || { echo "build gcsd first (ninja -C build)"; exit 1; }
command -v redis-benchmark >/dev/null || { echo "redis-benchmark missing (apt-get install redis-tools)"; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server missing (apt-get install redis-server)"; exit 1; }

wait_port() {
  local port=$1
  for _ in $(seq 1 200); do
    redis-cli -p "$port" PING >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "server on $port did not start"; exit 1
}

mkdir -p "$WORK/gcsd" "$WORK/redis"
"$GCSD" --data-dir "$WORK/gcsd" --port "$GPORT" --raft-port $((GPORT + 1000)) \
  --log-level warning 2>"$WORK/gcsd.log" &
pids+=($!)
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$WORK/redis" \
  --appendonly yes --appendfsync always --save '' --daemonize no \
  --logfile "$WORK/redis.log" &
pids+=($!)
wait_port "$GPORT"
wait_port "$RPORT"

# One redis-benchmark run; prints "test rps" lines.
run() {
  local port=$1; shift
  redis-benchmark -p "$port" -q --csv -r 100000 -c 50 -n "$N" "$@" \
    | tr -d '"' | awk -F, 'NR>1 {print $1, $2}'
}

printf '%-28s %14s %14s %8s\n' "test (-c 50, random keys)" "gcsd req/s" "redis req/s" "ratio"
for pipeline in 1 16; do
  extra=()
  [ "$pipeline" -gt 1 ] && extra=(-P "$pipeline")
  g=$(run "$GPORT" -t set,get,hset,incr "${extra[@]}")
  r=$(run "$RPORT" -t set,get,hset,incr "${extra[@]}")
  while read -r test rps; do
    rr=$(awk -v t="$test" '$1==t {print $2}' <<<"$r")
    label="$test"; [ "$pipeline" -gt 1 ] && label="$test -P $pipeline"
    awk -v l="$label" -v g="$rps" -v r="$rr" \
      'BEGIN {printf "%-28s %14.0f %14.0f %7.2fx\n", l, g, r, (r > 0 ? g / r : 0)}'
  done <<<"$g"
done

echo
latency_header "write latency (-c 50)"
for t in set incr; do
  latency_row "gcsd $t" "$(latency_run "$GPORT" "$N" "$t")"
  latency_row "durable redis $t" "$(latency_run "$RPORT" "$N" "$t")"
done
