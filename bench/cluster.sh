#!/usr/bin/env bash
# 3-node throughput and failover, one run, one machine:
#   1. gcsd, 3 members on loopback: redis-benchmark against the leader (SET,
#      INCR, HSET, GET at -c 50; SET and GET at -c 50 -P 16) and SET -c 50
#      through a follower (forwarded to the leader);
#   2. etcd (Debian's), 3 members on loopback, default durability: puts and
#      linearizable ranges from 50 concurrent clients, with etcd's `benchmark`
#      tool if installed, else bench/etcd_load.py (HTTP/JSON gateway);
#   3. one durable redis-server (appendonly yes, appendfsync always): SET and
#      GET at -c 50, with and without -P 16;
#   then a table of ops/s with ratios against redis and against etcd, the
#   write latency (SET -c 50: p50, p99, p99.9, max) of the gcsd leader, a
#   follower and durable redis, and
#   4. failover: kill -9 the gcsd leader while a writer writes through a
#      follower, time from the kill to the first acknowledged write sent after
#      it; FAILOVERS rounds (default 10), median and max; then the same with
#      the leader cut off by a partition (RAFT.CUT, no connection reset),
#      PARTITIONS rounds (default 10).
# Each system runs alone: the previous one is stopped before the next starts.
# All data directories are under one temp dir on disk (not tmpfs).
#
# Usage: bench/cluster.sh [requests-per-test]   (default 100000)
# Env:   GCSD_BIN (default build/gcs/gcsd), FAILOVERS (default 10),
#        ONLY_FAILOVER=1 to run part 4 alone (no throughput runs, no etcd),
#        KEEP_LOGS=DIR to copy the servers' logs there before cleanup,
#        GCSD_ARGS="..." extra options for every gcsd (e.g. --election-timeout 500).
# Needs: gcsd built, redis-server + redis-benchmark + redis-cli, etcd + etcdctl,
#        /usr/bin/python3 with the redis module (python3-redis).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/latency_lib.sh

N=${1:-100000}
FAILOVERS=${FAILOVERS:-10}
GCSD=${GCSD_BIN:-build/gcs/gcsd}
PY=/usr/bin/python3 # not a pyenv python3 without the redis module
C=50
WORK=$(mktemp -d /tmp/gcsd-cluster-bench-XXXXXX)
declare -A PID=() # name -> pid of every server this script started

gone() { # pid seconds: wait up to that long for it to exit
  local i
  for ((i = 0; i < $2 * 20; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
  ! kill -0 "$1" 2>/dev/null
}
reap() { { wait "$1"; } 2>/dev/null || true; } # without bash's "Killed" line
stop_pid() { # name: SIGTERM; a second one after 3 s; SIGKILL after 2 more
  local name=$1 p=${PID[$1]:-}
  [ -n "$p" ] || return 0
  kill -TERM "$p" 2>/dev/null || true
  if ! gone "$p" 3; then
    echo "# note: $name (pid $p) still running 3 s after SIGTERM; second SIGTERM" >&2
    kill -TERM "$p" 2>/dev/null || true
    gone "$p" 2 || { echo "# note: $name (pid $p) ignored two SIGTERMs; SIGKILL" >&2
                     kill -KILL "$p" 2>/dev/null || true; }
  fi
  reap "$p"
  unset "PID[$name]"
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for name in "${!PID[@]}"; do kill -TERM "${PID[$name]}" 2>/dev/null || true; done
  sleep 0.5
  for name in "${!PID[@]}"; do kill -KILL "${PID[$name]}" 2>/dev/null || true; done
  for name in "${!PID[@]}"; do gone "${PID[$name]}" 2 || true; done
  { wait; } 2>/dev/null || true
  if [ "$rc" -ne 0 ]; then
    for f in "$WORK"/*.log; do
      [ -s "$f" ] && { echo "# tail of $(basename "$f"):"; tail -15 "$f"; }
    done >&2
  fi
  if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS" && cp "$WORK"/*.log "$KEEP_LOGS"/ 2>/dev/null || true; fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "error: $*" >&2; exit 1; }
[ -x "$GCSD" ] || die "build gcsd first (ninja -C build)"
for t in redis-server redis-benchmark redis-cli; do
  command -v $t >/dev/null || die "$t missing (apt-get install redis-server redis-tools)"
done
[ "${ONLY_FAILOVER:-0}" = 1 ] || { command -v etcd >/dev/null && command -v etcdctl >/dev/null; } ||
  die "etcd missing (apt-get install etcd-server etcd-client)"
$PY -c 'import redis' 2>/dev/null || die "$PY lacks the redis module (apt-get install python3-redis)"
# Run a private copy, so that a rebuild of the tree during the run does not
# mix two binaries.
GCSD_DESC="$("$GCSD" --version 2>&1 | head -1), $GCSD of $(date -u -r "$GCSD" +%FT%TZ), sha256 $(sha256sum "$GCSD" | cut -c1-12)"
cp "$GCSD" "$WORK/gcsd" && GCSD=$WORK/gcsd
fstype=$(findmnt -no FSTYPE -T "$WORK" 2>/dev/null || echo '?')
[ "$fstype" = tmpfs ] && echo "# warning: $WORK is on tmpfs; the numbers will not include disk syncs" >&2

# 13 free loopback ports, held open together so that they are distinct.
read -r GP1 GP2 GP3 RP1 RP2 RP3 EC1 EC2 EC3 EP1 EP2 EP3 RPORT < <($PY - <<'PY'
import socket
ss = [socket.socket() for _ in range(13)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])
PY
)
GPORT=(x "$GP1" "$GP2" "$GP3")
PEERS="1=127.0.0.1:$RP1,2=127.0.0.1:$RP2,3=127.0.0.1:$RP3"
RAFTP=(x "$RP1" "$RP2" "$RP3")

wait_port() {
  local port=$1
  for _ in $(seq 1 200); do
    redis-cli -p "$port" PING >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  die "server on $port did not start"
}

# ---- CPU accounting ----------------------------------------------------------
# Per test, in cores (CPU seconds per second): the servers' processes, the
# client's (redis-benchmark or the etcd loader: this shell's reaped children),
# and "other": the machine's busy time less those two (kernel threads, softirq
# not charged to a process, and anything else running on the machine; a
# large value means the figure was disturbed).
HZ=$(getconf CLK_TCK)
NCPU=$(nproc)
proc_ticks() { # pids... -> summed utime+stime in ticks
  local t=0 p s
  for p in "$@"; do
    s=$(cut -d')' -f2 "/proc/$p/stat" 2>/dev/null) || continue
    t=$((t + $(awk '{print $12 + $13}' <<<"$s")))
  done
  echo "$t"
}
machine_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9; exit}' /proc/stat; }
children_secs() { # user+sys of this shell's reaped children, in $1
  times >"$WORK/times" # the builtin in this shell: in $(...) it would be the subshell's
  printf -v "$1" '%s' "$(awk 'NR == 2 {for (i = 1; i <= 2; i++) {split($i, a, "m"); sub("s", "", a[2]);
                                       t += a[1] * 60 + a[2]}; printf "%.3f", t}' "$WORK/times")"
}
cpu_begin() { # pids...
  CPU_PIDS=("$@")
  children_secs CPU_C0
  CPU_T0=$(date +%s%N); CPU_P0=$(proc_ticks "$@"); read -r CPU_B0 CPU_A0 < <(machine_ticks)
}
cpu_end() { # sets CPU="server_cores client_cores other_cores"
  local t1 p1 b1 a1 c1
  t1=$(date +%s%N); p1=$(proc_ticks "${CPU_PIDS[@]}"); read -r b1 a1 < <(machine_ticks)
  children_secs c1
  CPU=$(awk -v dt=$((t1 - CPU_T0)) -v dp=$((p1 - CPU_P0)) -v db=$((b1 - CPU_B0)) \
      -v da=$((a1 - CPU_A0)) -v dc="$c1" -v c0="$CPU_C0" -v hz="$HZ" -v n="$NCPU" \
      'BEGIN {w = dt / 1e9; s = dp / hz / w; c = (dc - c0) / w; b = (da > 0 ? n * db / da : 0)
              o = b - s - c; if (o < 0) o = 0; printf "%.2f %.2f %.2f", s, c, o}')
}

# ---- results ----------------------------------------------------------------
declare -A RPS=() SRV=() CLI=() OTH=() VSR=() VSE=()
ORDER=()
record() { # name rps server_cores client_cores other_cores ref_redis ref_etcd
  ORDER+=("$1"); RPS[$1]=$2; SRV[$1]=$3; CLI[$1]=$4; OTH[$1]=$5; VSR[$1]=$6; VSE[$1]=$7
  printf '  %-26s %10.0f ops/s  (CPU cores: servers %s, client %s, other %s)\n' "$1" "$2" "$3" "$4" "$5"
}

# One redis-benchmark test at -c 50 on random keys; prints its rps.
rb() {
  local port=$1; shift
  redis-benchmark -p "$port" -q --csv -r 100000 -c "$C" -n "$N" "$@" \
    | tr -d '"' | awk -F, 'NR>1 {print $2; exit}'
}
rb_test() { # name port ref_redis ref_etcd pids-var -- redis-benchmark args
  local name=$1 port=$2 rr=$3 re=$4
  local -n pids=$5
  shift 6
  cpu_begin "${pids[@]}"
  local rps; rps=$(rb "$port" "$@")
  [ -n "$rps" ] || die "redis-benchmark $* on port $port gave no result"
  cpu_end
  record "$name" "$rps" $CPU "$rr" "$re"
}

# ---- gcsd -------------------------------------------------------------------
start_member() { # id
  local i=$1
  mkdir -p "$WORK/gcsd$i"
  "$GCSD" --id "$i" --peers "$PEERS" --port "${GPORT[$i]}" --raft-port "${RAFTP[$i]}" \
    --data-dir "$WORK/gcsd$i" --log-level notice ${GCSD_ARGS:-} 2>>"$WORK/gcsd$i.log" &
  PID[gcsd$i]=$!
  disown "$!" # the failover rounds kill -9 it: no "Killed" line from bash
}
field() { # port name -> first value of that field in RAFT.STATUS ('' if none)
  redis-cli -p "$1" RAFT.STATUS 2>/dev/null | awk -v f="$2" 'p {print; exit} $0 == f {p = 1}'
}
leader_id() { # -> id of the member that says it is leader, waiting up to 10 s
  local i
  for _ in $(seq 1 400); do
    for i in 1 2 3; do
      [ -n "${PID[gcsd$i]:-}" ] || continue
      [ "$(field "${GPORT[$i]}" role)" = leader ] && { echo "$i"; return 0; }
    done
    sleep 0.025
  done
  return 1
}
# Wait until member $1 follows a leader that all running members agree on and
# has applied everything the leader had committed when we looked.
wait_caught_up() {
  local i=$1 l commit applied lid ok
  for _ in $(seq 1 1200); do
    l=$(leader_id) || die "no gcsd leader"
    ok=1
    for j in 1 2 3; do
      lid=$(field "${GPORT[$j]}" leader_id)
      [ "$lid" = "$l" ] || ok=0
    done
    if [ $ok = 1 ]; then
      commit=$(field "${GPORT[$l]}" commit_index)
      applied=$(field "${GPORT[$i]}" applied_index)
      [ -n "$commit" ] && [ -n "$applied" ] && [ "$applied" -ge "$commit" ] && return 0
    fi
    sleep 0.025
  done
  die "gcsd member $i did not catch up within 30 s"
}

# Followers first, the leader last (each stop of a leader is a hand-over, and
# stopping leaders one after the other ends with one that has nobody left).
stop_gcsd() {
  local l i
  l=$(leader_id) || l=0
  for i in 1 2 3; do [ "$i" = "$l" ] || stop_pid "gcsd$i"; done
  stop_pid "gcsd$l"
}

echo "# $(date -u +%FT%TZ), $NCPU cores, $N requests per redis-benchmark test, -c $C, random keys (-r 100000)"
echo "# $GCSD_DESC"
echo "# temp dir $WORK ($fstype)${GCSD_ARGS:+, gcsd options: $GCSD_ARGS}"
cpu_begin; sleep 1; cpu_end
echo "# machine busy before the start (other processes): ${CPU##* } of $NCPU cores"
if [ "${ONLY_FAILOVER:-0}" != 1 ]; then
echo "== gcsd, 3 members"
for i in 1 2 3; do start_member "$i"; done
for i in 1 2 3; do wait_port "${GPORT[$i]}"; done
L=$(leader_id) || die "gcsd elected no leader"
F=$(( L % 3 + 1 ))
for i in 1 2 3; do wait_caught_up "$i"; done
LP=${GPORT[$L]}
FP=${GPORT[$F]}
echo "  leader is member $L (port $LP); follower used: member $F (port $FP)"
gpids=("${PID[gcsd1]}" "${PID[gcsd2]}" "${PID[gcsd3]}")
rb_test "gcsd SET"              "$LP" "redis SET"       "etcd put"   gpids -- -t set
rb_test "gcsd INCR"             "$LP" "redis SET"       "etcd put"   gpids -- -t incr
rb_test "gcsd HSET"             "$LP" "redis SET"       "etcd put"   gpids -- -t hset
rb_test "gcsd GET"              "$LP" "redis GET"       "etcd range" gpids -- -t get
rb_test "gcsd SET -P 16"        "$LP" "redis SET -P 16" ""           gpids -- -t set -P 16
rb_test "gcsd GET -P 16"        "$LP" "redis GET -P 16" ""           gpids -- -t get -P 16
rb_test "gcsd SET via follower" "$FP" "redis SET"       "etcd put"   gpids -- -t set
LAT_GCSD=$(latency_run "$LP" "$N" set)
LAT_GCSD_F=$(latency_run "$FP" "$N" set)
[ "$(field "$LP" role)" = leader ] || echo "# note: leadership moved during the gcsd runs" >&2
for i in 1 2 3; do lid=$(field "${GPORT[$i]}" leader_id); [ "$lid" = "$L" ] ||
  echo "# note: member $i reports leader '$lid' after the runs" >&2; done
stop_gcsd

# ---- etcd -------------------------------------------------------------------
echo "== etcd $(etcd --version 2>/dev/null | awk '/etcd Version/ {print $3}'), 3 members"
EC=(x "$EC1" "$EC2" "$EC3")
EPP=(x "$EP1" "$EP2" "$EP3")
ICL="e1=http://127.0.0.1:$EP1,e2=http://127.0.0.1:$EP2,e3=http://127.0.0.1:$EP3"
EENDS="127.0.0.1:$EC1,127.0.0.1:$EC2,127.0.0.1:$EC3"
for i in 1 2 3; do
  etcd --name "e$i" --data-dir "$WORK/etcd$i" \
    --listen-client-urls "http://127.0.0.1:${EC[$i]}" --advertise-client-urls "http://127.0.0.1:${EC[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${EPP[$i]}" --initial-advertise-peer-urls "http://127.0.0.1:${EPP[$i]}" \
    --initial-cluster "$ICL" --initial-cluster-state new --initial-cluster-token gcsd-bench \
    --logger zap --log-outputs stderr 2>"$WORK/etcd$i.log" &
  PID[etcd$i]=$!
done
ok=0
for _ in $(seq 1 300); do
  ETCDCTL_API=3 etcdctl --endpoints "$EENDS" endpoint health >/dev/null 2>&1 && { ok=1; break; }
  sleep 0.1
done
[ $ok = 1 ] || die "etcd cluster did not become healthy"
ELP=$(ETCDCTL_API=3 etcdctl --endpoints "$EENDS" endpoint status -w json | $PY -c '
import json, sys
for e in json.load(sys.stdin):
    h = e["Status"]["header"]
    if h["member_id"] == e["Status"]["leader"]:
        print(e["Endpoint"].rsplit(":", 1)[1])
')
[ -n "$ELP" ] || die "no etcd leader"
echo "  leader at port $ELP"
epids=("${PID[etcd1]}" "${PID[etcd2]}" "${PID[etcd3]}")
if command -v benchmark >/dev/null && benchmark --help 2>&1 | grep -q 'etcd'; then
  METHOD="etcd benchmark tool (gRPC), $C clients on $C connections"
  etcd_run() { # op -> rps, loader note
    local out
    if [ "$1" = put ]; then
      out=$(benchmark --endpoints "127.0.0.1:$ELP" --conns $C --clients $C put \
            --total "$N" --key-size 16 --val-size 3 --key-space-size 100000 --sequential-keys=false 2>&1)
    else
      out=$(benchmark --endpoints "127.0.0.1:$ELP" --conns $C --clients $C range key:000000000001 \
            --total "$N" --consistency l 2>&1)
    fi
    echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") -"
  }
else
  METHOD="bench/etcd_load.py: $C workers (threads in 2 processes), one request at a time each on its own keep-alive HTTP/1.1 connection, to etcd's JSON gateway (/v3/kv/put, /v3/kv/range); etcd's benchmark tool is not installed"
  etcd_run() { # op -> rps, loader note
    local out
    out=$($PY bench/etcd_load.py --endpoint "127.0.0.1:$ELP" --op "$1" --clients $C \
          --requests "$N" --duration 30 --procs 2)
    echo "$out" >>"$WORK/etcd_load.log"
    local rps cpu us req
    rps=$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$out")
    cpu=$(sed -n 's/.*loader_cpu_pct=\([0-9.]*\).*/\1/p' <<<"$out")
    us=$(sed -n 's/.*us_per_op=\([0-9.]*\).*/\1/p' <<<"$out")
    req=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$out")
    grep -q ' errors=0 ' <<<"$out" || echo "# note: etcd_load.py: $out" >&2
    echo "$rps loader:${cpu}%_of_a_core,${us}us/op,${req}_requests"
  }
fi
echo "  method: $METHOD"
for op in put range; do
  cpu_begin "${epids[@]}"
  out=$(etcd_run "$op") # not < <(...): its CPU must be counted by cpu_end
  read -r rps lnote <<<"$out"
  [ -n "$rps" ] || die "etcd $op run gave no result"
  if [ $op = put ]; then rr="redis SET"; else rr="redis GET"; fi
  cpu_end
  record "etcd $op" "$rps" $CPU "$rr" "etcd $op"
  [ "$lnote" != - ] && echo "    ($lnote)" | tr '_' ' '
done
stop_pid etcd1; stop_pid etcd2; stop_pid etcd3

# ---- durable redis ----------------------------------------------------------
echo "== redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'), appendonly yes, appendfsync always"
mkdir -p "$WORK/redis"
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$WORK/redis" \
  --appendonly yes --appendfsync always --save '' --daemonize no \
  --logfile "$WORK/redis.log" &
PID[redis]=$!
wait_port "$RPORT"
rpids=("${PID[redis]}")
rb_test "redis SET"       "$RPORT" "redis SET"       "etcd put"   rpids -- -t set
rb_test "redis GET"       "$RPORT" "redis GET"       "etcd range" rpids -- -t get
rb_test "redis SET -P 16" "$RPORT" "redis SET -P 16" ""           rpids -- -t set -P 16
rb_test "redis GET -P 16" "$RPORT" "redis GET -P 16" ""           rpids -- -t get -P 16
LAT_REDIS=$(latency_run "$RPORT" "$N" set)
stop_pid redis

# ---- table ------------------------------------------------------------------
ratio() { # name ref -> "0.00x" or "-"
  [ -n "$2" ] && [ -n "${RPS[$2]:-}" ] || { echo "-"; return; }
  local a=${RPS[$1]} b=${RPS[$2]}
  awk -v a="$a" -v b="$b" 'BEGIN {if (b > 0) printf "%.2fx", a / b; else print "-"}'
}
echo
echo "etcd load: $METHOD"
printf '%-24s %10s %9s %9s   %-20s\n' "test (-c $C)" "ops/s" "vs redis" "vs etcd" "CPU: servers client other"
for name in "${ORDER[@]}"; do
  printf '%-24s %10.0f %9s %9s   %7s %6s %5s\n' "$name" "${RPS[$name]}" \
    "$(ratio "$name" "${VSR[$name]}")" "$(ratio "$name" "${VSE[$name]}")" \
    "${SRV[$name]}" "${CLI[$name]}" "${OTH[$name]}"
done
echo "(vs redis: against the same command on durable redis; vs etcd: writes against"
echo " etcd put, reads against etcd linearizable range; '-' where etcd was not run"
echo " pipelined. CPU in cores (of $NCPU): the servers', the load generator's, and the rest"
echo " of the machine's busy time; a large 'other' means something else was running.)"
echo
latency_header "write latency (SET, -c 50)"
latency_row "gcsd leader" "$LAT_GCSD"
latency_row "gcsd via follower" "$LAT_GCSD_F"
latency_row "durable redis" "$LAT_REDIS"
fi # ONLY_FAILOVER

# ---- failover ---------------------------------------------------------------
cat >"$WORK/failover.py" <<'PY'
"""One failover round: a writer INCRs a counter through a surviving member;
after 0.5 s the leader is killed (SIGKILL), or, with "cut", cut off from the
others by RAFT.CUT on every member (a partition: no connection resets); a
probe then sends SETs through the same member, retrying at once (2 ms
pause) on any error, until one is acknowledged. Prints: ms from the kill
(cut) to that ack, probe errors, the writer's acked INCRs, its errors and
its longest gap between two acks, and the first error seen.
Args: leader-pid port [cut leader-id leader-port id:port ...]"""
import os, signal, sys, threading, time
import redis

leader_pid, port = int(sys.argv[1]), int(sys.argv[2])
cut = len(sys.argv) > 3 and sys.argv[3] == "cut"
stop = threading.Event()
w = {"acks": 0, "errors": 0, "gap": 0.0, "err": ""}


def writer():
    c = redis.Redis(port=port, socket_timeout=10, socket_connect_timeout=2)
    last = time.monotonic()
    while not stop.is_set():
        try:
            c.incr("failover:counter")
            now = time.monotonic()
            w["acks"] += 1
            w["gap"] = max(w["gap"], now - last)
            last = now
        except redis.RedisError as e:
            w["errors"] += 1
            w["err"] = w["err"] or "writer: %r" % e
            time.sleep(0.002)


t = threading.Thread(target=writer, daemon=True)
t.start()
time.sleep(0.5)
if w["acks"] == 0:
    print("error: no write acknowledged before the kill", file=sys.stderr)
    sys.exit(1)
probe = redis.Redis(port=port, socket_timeout=10, socket_connect_timeout=2)
probe.ping()
if cut:
    lid, lport = sys.argv[4], int(sys.argv[5])
    others = [a.split(":") for a in sys.argv[6:]]
    conns = [redis.Redis(port=int(p), socket_timeout=5) for _, p in others]
    lconn = redis.Redis(port=lport, socket_timeout=5)
    t_kill = time.monotonic()
    lconn.execute_command("RAFT.CUT", *[i for i, _ in others])
    for c in conns:
        c.execute_command("RAFT.CUT", lid)
else:
    t_kill = time.monotonic()
    os.kill(leader_pid, signal.SIGKILL)
errs, first = 0, ""
while True:
    try:
        probe.set("failover:probe", str(t_kill))
        t_ack = time.monotonic()
        break
    except redis.RedisError as e:
        errs += 1
        first = first or "probe: %r" % e
        if time.monotonic() - t_kill > 30:
            print("error: no write acknowledged 30 s after the kill", file=sys.stderr)
            sys.exit(1)
        time.sleep(0.002)
time.sleep(0.3)
stop.set()
t.join(15)
print("%.0f %d %d %d %.0f %s" % (1000 * (t_ack - t_kill), errs, w["acks"], w["errors"],
                                  1000 * w["gap"], (first or w["err"] or "-").replace(" ", "_")))
PY

echo
echo "== gcsd failover: kill -9 the leader, $FAILOVERS rounds (writes through a surviving member)"
for i in 1 2 3; do start_member "$i"; done
for i in 1 2 3; do wait_port "${GPORT[$i]}"; done
for i in 1 2 3; do wait_caught_up "$i"; done
redis-cli -p "${GPORT[1]}" SET failover:counter 0 >/dev/null
FO=()
total_acks=0
printf '  %5s %6s %9s %10s %12s %13s %14s  %s\n' round killed "via" "failover" "probe errs" "writer acks" "writer maxgap" "first error"
for r in $(seq 1 "$FAILOVERS"); do
  L=$(leader_id) || die "no gcsd leader before round $r"
  if [ $((r % 2)) = 1 ]; then S=$(( L % 3 + 1 )); else S=$(( (L + 1) % 3 + 1 )); fi
  out=$($PY "$WORK/failover.py" "${PID[gcsd$L]}" "${GPORT[$S]}") || die "failover round $r failed"
  read -r ms perrs acks werrs gap first <<<"$out"
  FO+=("$ms")
  total_acks=$((total_acks + acks))
  printf '  %5s %6s %9s %8s ms %12s %13s %11s ms  %s\n' "$r" "$L" "member $S" "$ms" "$perrs" "$acks" "$gap" "$first"
  reap "${PID[gcsd$L]}"
  unset "PID[gcsd$L]"
  start_member "$L"
  wait_port "${GPORT[$L]}"
  wait_caught_up "$L"
done
L=$(leader_id) || die "no gcsd leader after the rounds"
counter=$(redis-cli -p "${GPORT[$L]}" GET failover:counter)
if [ "$counter" -ge "$total_acks" ]; then
  echo "  counter check: $counter >= $total_acks acknowledged INCRs (no acknowledged write lost)"
else
  echo "  counter check FAILED: counter $counter < $total_acks acknowledged INCRs"
fi
printf '%s\n' "${FO[@]}" | sort -n | awk '{a[NR] = $1} END {
  m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
  printf "failover (kill -9 leader -> first acknowledged write), %d rounds: median %.0f ms, min %d ms, max %d ms\n", NR, m, a[1], a[NR]
}'
stop_gcsd

# A leader cut off by a partition: no connection is reset, so the followers
# notice only when their election timers fire (1-2 election timeouts).
PARTITIONS=${PARTITIONS:-10}
echo
echo "== gcsd partitioned leader: RAFT.CUT between the leader and the others, $PARTITIONS rounds"
GCSD_ARGS_SAVED=${GCSD_ARGS:-}
GCSD_ARGS="$GCSD_ARGS_SAVED --enable-test-commands"
for i in 1 2 3; do start_member "$i"; done
for i in 1 2 3; do wait_port "${GPORT[$i]}"; done
for i in 1 2 3; do wait_caught_up "$i"; done
PO=()
printf '  %5s %6s %9s %10s %12s %13s %14s  %s\n' round cut "via" "failover" "probe errs" "writer acks" "writer maxgap" "first error"
for r in $(seq 1 "$PARTITIONS"); do
  L=$(leader_id) || die "no gcsd leader before partition round $r"
  S=$(( L % 3 + 1 )); O=$(( S % 3 + 1 ))
  out=$($PY "$WORK/failover.py" "${PID[gcsd$L]}" "${GPORT[$S]}" cut "$L" "${GPORT[$L]}" \
        "$S:${GPORT[$S]}" "$O:${GPORT[$O]}") || die "partition round $r failed"
  read -r ms perrs acks werrs gap first <<<"$out"
  PO+=("$ms")
  printf '  %5s %6s %9s %8s ms %12s %13s %11s ms  %s\n' "$r" "$L" "member $S" "$ms" "$perrs" "$acks" "$gap" "$first"
  for i in 1 2 3; do redis-cli -p "${GPORT[$i]}" RAFT.CUT >/dev/null; done
  for i in 1 2 3; do wait_caught_up "$i"; done
done
printf '%s\n' "${PO[@]}" | sort -n | awk '{a[NR] = $1} END {
  m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
  printf "partitioned leader (cut -> first acknowledged write), %d rounds: median %.0f ms, min %d ms, max %d ms\n", NR, m, a[1], a[NR]
}'
stop_gcsd
GCSD_ARGS=$GCSD_ARGS_SAVED
grep -hE 'WARN|ERR|# |panic|assert' "$WORK"/gcsd*.log 2>/dev/null | head -20 | sed 's/^/  gcsd log: /' || true
