#!/usr/bin/env bash
# Pub/sub fan-out, one machine, one run: bench_fanout (one process holding
# every subscriber connection, plus a paced publisher on one pipelined
# connection) against
#   1. redis-server (the same settings as bench/single_node.sh: appendonly
#      yes, appendfsync always; Redis does not log PUBLISH, so they do not
#      slow it), the baseline;
#   2. gcsd, a single node (PUBLISH goes through the raft log: fsync'd);
#   3. gcsd, 3 members: subscribers spread round-robin over the members,
#      the publisher on the leader;
# at each load point (subscribers x events/s): 1000 x 10000 (the issue's
# target: 10M deliveries/s, more than 2 cores can push for either server),
# 1000 x 1000 and 100 x 10000. Then
#   4. failover: 3 fresh members, 1000 subscribers over all three, the
#      publisher on a follower, kill -9 of the leader halfway; every PUBLISH
#      that was acknowledged must reach every subscriber on the survivors,
#      in order, and an unacknowledged one all of them or none.
# Each system runs alone (the previous one is stopped first). Prints every
# bench_fanout result line, then a table with ratios against Redis.
#
# Latency is publish-send to receipt: the publisher stamps each message with
# the CLOCK_MONOTONIC time it writes it to the socket, the subscriber side
# takes the time of the read() that brought it (same process, same clock).
# For gcsd that covers the raft commit (fsync; on 3 nodes a majority),
# apply, the fan-out and the push; see bench/fanout.c.
#
# Usage: bench/fanout.sh [seconds-per-run]   (default 10)
# Env:   GCSD_BIN (default build/gcs/gcsd), FANOUT_BIN (default
#        build/bench/bench_fanout), POINTS="subs:rate ..." to change the
#        load points, FAILOVER=0 to skip the failover run.
# Needs: gcsd and bench_fanout built (ninja -C build), redis-server,
#        redis-cli, /usr/bin/python3 (free ports).
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${1:-10}
GCSD=${GCSD_BIN:-build/gcs/gcsd}
FAN=${FANOUT_BIN:-build/bench/bench_fanout}
POINTS=${POINTS:-"1000:10000 1000:1000 100:10000"}
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/gcsd-fanout-bench-XXXXXX)
declare -A PID=()

die() { echo "error: $*" >&2; exit 1; }
gone() { # pid seconds
  local i
  for ((i = 0; i < $2 * 20; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
  ! kill -0 "$1" 2>/dev/null
}
stop() { # name
  local p=${PID[$1]:-}
  [ -n "$p" ] || return 0
  kill -TERM "$p" 2>/dev/null || true
  gone "$p" 10 || kill -KILL "$p" 2>/dev/null || true
  { wait "$p"; } 2>/dev/null || true
  unset "PID[$1]"
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for n in "${!PID[@]}"; do kill -KILL "${PID[$n]}" 2>/dev/null || true; done
  { wait; } 2>/dev/null || true
  if [ "$rc" -ne 0 ]; then
    for f in "$WORK"/*.log; do [ -s "$f" ] && { echo "# tail of $f"; tail -5 "$f"; }; done >&2
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -x "$GCSD" ] && [ -x "$FAN" ] || die "build first (ninja -C build)"
command -v redis-server >/dev/null || die "redis-server missing (apt-get install redis-server)"
cp "$GCSD" "$WORK/gcsd" && GCSD=$WORK/gcsd # a rebuild during the run changes nothing

read -r RPORT GP1 GP2 GP3 RP1 RP2 RP3 < <($PY - <<'PY'
import socket
ss = [socket.socket() for _ in range(7)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])
PY
)
GPORT=(x "$GP1" "$GP2" "$GP3")
RAFTP=(x "$RP1" "$RP2" "$RP3")
PEERS="1=127.0.0.1:$RP1,2=127.0.0.1:$RP2,3=127.0.0.1:$RP3"

wait_port() {
  for _ in $(seq 1 400); do
    redis-cli -p "$1" PING 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  die "server on port $1 did not start"
}
field() { # port name -> value of that RAFT.STATUS field
  redis-cli -p "$1" RAFT.STATUS 2>/dev/null | awk -v f="$2" 'p {print; exit} $0 == f {p = 1}'
}
leader() { # -> member number of the leader all running members agree on
  local i l
  for _ in $(seq 1 400); do
    l=
    for i in 1 2 3; do
      [ -n "${PID[g$i]:-}" ] || continue
      [ "$(field "${GPORT[$i]}" role)" = leader ] && l=$i
    done
    if [ -n "$l" ]; then
      local ok=1
      for i in 1 2 3; do
        [ -n "${PID[g$i]:-}" ] || continue
        [ "$(field "${GPORT[$i]}" leader_id)" = "$l" ] || ok=0
      done
      [ $ok = 1 ] && { echo "$l"; return 0; }
    fi
    sleep 0.05
  done
  return 1
}
start_cluster() { # tag
  for i in 1 2 3; do
    mkdir -p "$WORK/$1-$i"
    "$GCSD" --id "$i" --peers "$PEERS" --port "${GPORT[$i]}" --raft-port "${RAFTP[$i]}" \
      --data-dir "$WORK/$1-$i" --log-level notice 2>>"$WORK/$1-$i.log" &
    PID[g$i]=$!
  done
  for i in 1 2 3; do wait_port "${GPORT[$i]}"; done
  leader >/dev/null || die "no leader"
}
stop_cluster() {
  local l i
  l=$(leader) || l=0
  for i in 1 2 3; do [ "$i" = "$l" ] || stop "g$i"; done
  stop "g$l"
}

HZ=$(getconf CLK_TCK)
ticks() { # pids... -> their summed utime+stime, in ticks
  local t=0 p
  for p in "$@"; do
    t=$((t + $(cut -d')' -f2 "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$t"
}
declare -A RES=() CPU=()
run() { # label pubport subports subs rate pids... -> result line in RES[label]
  local label=$1 out rc=0 t0 t1
  t0=$(ticks "${@:6}")
  out=$("$FAN" -P "$2" -S "$3" -n "$4" -r "$5" -d "$DUR" -D 30) || rc=$?
  t1=$(ticks "${@:6}")
  printf '  %-22s %s server_cpu_s=%s\n' "$label" "$out" "$(awk -v t=$((t1 - t0)) -v h="$HZ" 'BEGIN {printf "%.2f", t / h}')"
  [ $rc = 0 ] || echo "  ^ $label: bench_fanout exit $rc (lost, reordered or split events)"
  RES[$label]=$(head -1 <<<"$out")
  CPU[$label]=$((t1 - t0))
}
get() { # key line -> value
  tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k {print $2}'
}

NCPU=$(nproc)
echo "# $(date -u +%FT%TZ), $NCPU cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $DUR s per run"
echo "# $("$GCSD" --version 2>&1 | head -1); $(redis-server --version | cut -d' ' -f1-3); temp dir $WORK ($(findmnt -no FSTYPE -T "$WORK"))"

echo "== redis-server (appendonly yes, appendfsync always)"
mkdir -p "$WORK/redis"
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$WORK/redis" --appendonly yes \
  --appendfsync always --save '' --daemonize no --logfile "$WORK/redis.log" &
PID[redis]=$!
wait_port "$RPORT"
for p in $POINTS; do run "redis $p" "$RPORT" "$RPORT" "${p%:*}" "${p#*:}" "${PID[redis]}"; done
stop redis

echo "== gcsd, single node"
mkdir -p "$WORK/single"
"$GCSD" --data-dir "$WORK/single" --port "$GP1" --raft-port "$RP1" --log-level notice \
  2>"$WORK/single.log" &
PID[single]=$!
wait_port "$GP1"
for p in $POINTS; do run "gcsd-1 $p" "$GP1" "$GP1" "${p%:*}" "${p#*:}" "${PID[single]}"; done
stop single

echo "== gcsd, 3 members (publisher on the leader; a fresh cluster per point)"
ALL="$GP1,$GP2,$GP3"
for p in $POINTS; do
  start_cluster "steady-${p/:/x}"
  L=$(leader)
  run "gcsd-3 $p" "${GPORT[$L]}" "$ALL" "${p%:*}" "${p#*:}" "${PID[g1]}" "${PID[g2]}" "${PID[g3]}"
  stop_cluster
done

echo
# "published/s" below the target means the server could not take the
# PUBLISHes as fast (saturated): its latencies then measure a queue that
# grows through the run, not the fan-out. "CPU s/M" is the server's CPU
# seconds (all members) per million deliveries, which the machine's other
# load disturbs less than the rates do. "p50/p99 ms" run from the PUBLISH's
# send; "c-p50/c-p99" from its reply, i.e. from the commit (gcsd replies once
# the entry is committed and applied; redis once it is appended), on the
# first 100 subscribers.
printf '%-14s %-7s %11s %13s %12s %9s %9s %9s %9s %9s %9s %9s %5s\n' "subs x ev/s" system \
  "published/s" "deliveries/s" "ev/s/sub" "p50 ms" "p99 ms" "c-p50 ms" "c-p99 ms" "CPU s/M" \
  "deliv. x" "p99 x" lost
for p in $POINTS; do
  r=${RES[redis $p]}
  for s in redis gcsd-1 gcsd-3; do
    l=${RES[$s $p]:-}
    [ -n "$l" ] || continue
    awk -v p="${p/:/ x }" -v s="$s" -v pr="$(get publish_rate "$l")" \
        -v d="$(get deliveries_per_s "$l")" -v e="$(get events_per_s "$l")" \
        -v p50="$(get p50_ms "$l")" -v p99="$(get p99_ms "$l")" -v lost="$(get lost "$l")" \
        -v c50="$(get commit_p50_ms "$l")" -v c99="$(get commit_p99_ms "$l")" \
        -v cpu="${CPU[$s $p]}" -v n="$(get delivered "$l")" -v h="$HZ" \
        -v rd="$(get deliveries_per_s "$r")" -v r99="$(get p99_ms "$r")" \
        'BEGIN {printf "%-14s %-7s %11.0f %13.0f %12.0f %9.2f %9.2f %9.2f %9.2f %9.3f %8.2fx %8.2fx %5d\n",
                p, s, pr, d, e, p50, p99, c50, c99, (n > 0 ? cpu / h / (n / 1e6) : 0),
                (rd > 0 ? d / rd : 0), (r99 > 0 ? p99 / r99 : 0), lost}'
  done
done

[ "${FAILOVER:-1}" = 1 ] || exit 0
echo
echo "== failover: 3 fresh members, 1000 subscribers, 1000 events/s, publisher on a follower, kill -9 of the leader at $((DUR / 2)) s"
start_cluster failover
L=$(leader)
F=$((L % 3 + 1))
( sleep $((DUR / 2)); kill -KILL "${PID[g$L]}" ) &
killer=$!
out=$("$FAN" -P "${GPORT[$F]}" -S "$GP1,$GP2,$GP3" -n 1000 -r 1000 -d "$DUR" -D 30) && rc=0 || rc=$?
wait "$killer" 2>/dev/null || true
{ wait "${PID[g$L]}"; } 2>/dev/null || true
unset "PID[g$L]"
echo "$out" | sed 's/^/  /'
echo "  killed member $L (port ${GPORT[$L]}); publisher on member $F (port ${GPORT[$F]})"
dead=$(get live "$(head -1 <<<"$out")")
deadline=$(grep dead_by_port <<<"$out" || true)
verdict=ok
[ $rc = 0 ] || verdict="FAILED: events lost, reordered or split"
for i in 1 2 3; do
  [ "$i" = "$L" ] && continue
  n=$(tr ' ' '\n' <<<"$deadline" | awk -F= -v k="${GPORT[$i]}" '$1 == k {print $2}')
  [ -z "$n" ] || [ "$n" = 0 ] || verdict="FAILED: $n subscribers of surviving member $i were dropped"
done
echo "  surviving subscribers: $dead; verdict: $verdict"
stop_cluster
[ "$verdict" = ok ]
