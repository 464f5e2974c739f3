#!/usr/bin/env bash
# Runs the StatefulSet's startup script (taken from deploy/base/statefulset.yaml)
# with real gcsd processes, as the pods gcsd-0..gcsd-4 would, and checks what
# it does on a first start, after a member lost its volume, after members were
# removed and came back, and after a majority of the volumes was lost.
#
#   sudo tests/deploy/local_cluster.sh [GCSD_BINARY]     (default build/gcs/gcsd)
#
# meson test deploy_startup; it needs root (a private mount namespace, in
# which a temporary /etc/hosts maps the pods' DNS names to 127.A.B.11-15, a
# block chosen per run; the machine's own /etc/hosts is not touched),
# redis-cli and python3-yaml, and takes about a minute.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
GCSD=$(realpath "${1:-$ROOT/build/gcs/gcsd}")
[ -x "$GCSD" ] || { echo "no gcsd binary at $GCSD" >&2; exit 2; }
command -v redis-cli >/dev/null || { echo "redis-cli is needed" >&2; exit 2; }

if [ -z "${GCSD_LOCAL_CLUSTER_NS:-}" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "skipped: run as root (it needs a private mount namespace)" >&2; exit 77; }
  export GCSD_LOCAL_CLUSTER_NS=1
  exec unshare -m --propagation private "$0" "$GCSD"
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/gcsd-local-cluster.XXXXXX")
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  umount /etc/hosts 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf -- "$W"
}
trap cleanup EXIT

NS=ns1
SVC=svc.cluster.local
# A loopback block of this run's own (all of 127/8 is loopback), so that two
# runs on one machine never meet.
BLOCK=127.$((RANDOM % 180 + 64)).$((RANDOM % 250 + 1))
ip_of() { echo "$BLOCK.$(($1 + 11))"; }
# The client Service "gcsd" points at one running member (rewritten in place:
# the bind mount follows the inode).
service_to() {
  {
    echo "127.0.0.1 localhost"
    for k in 0 1 2 3 4; do echo "$(ip_of $k) gcsd-$k.gcsd-peers.$NS.$SVC"; done
    echo "$(ip_of "$1") gcsd.$NS.$SVC"
  } >"$W/hosts"
}
: >"$W/hosts"
mount --bind "$W/hosts" /etc/hosts
service_to 0

python3 - "$ROOT/deploy/base/statefulset.yaml" >"$W/start.sh" <<'EOF'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d.get("kind") == "StatefulSet":
        c = d["spec"]["template"]["spec"]["containers"][0]
        sys.stdout.write(c["command"][2])
EOF
mkdir -p "$W/bin"
ln -s "$GCSD" "$W/bin/gcsd"

declare -A PID
start() {  # start ORDINAL REPLICAS: the pod gcsd-ORDINAL as the StatefulSet runs it
  local k=$1 ip
  ip=$(ip_of "$k")
  (
    export PATH="$W/bin:$PATH" POD_NAME="gcsd-$k" POD_NAMESPACE=$NS \
      GCSD_INITIAL_MEMBERS=3 GCSD_REPLICAS="$2" GCSD_PEER_SERVICE=gcsd-peers \
      GCSD_CLIENT_SERVICE=gcsd GCSD_CLUSTER_DOMAIN=cluster.local \
      GCSD_BIND="$ip" GCSD_PORT=6379 GCSD_RAFT_PORT=16379 GCSD_HTTP_PORT=8080 \
      GCSD_DATA_DIR="$W/d$k" GCSD_MAP_SIZE=1gb GCSD_LOG_LEVEL=notice GCSD_REQUIREPASS=pw
    exec /bin/sh -c "$(cat "$W/start.sh")"
  ) >>"$W/m$k.log" 2>&1 &
  PID[$k]=$!
  PIDS+=($!)
}
stop() { local k; for k; do [ -n "${PID[$k]:-}" ] && kill -9 "${PID[$k]}" 2>/dev/null; PID[$k]=; done; sleep 0.3; }
R() { REDISCLI_AUTH=pw timeout 5 redis-cli -h "$(ip_of "$1")" -p 6379 "${@:2}" 2>/dev/null || true; }
field() { R "$1" RAFT.STATUS | awk -v f="$2" 'p { print; exit } $0 == f { p = 1 }'; }
voters() { R "$1" RAFT.STATUS | grep -c '^voter$' || true; }
# The leader's id as member $1 sees it, once it knows one (up to 20 s;
# elections take longer on a loaded machine). Fails the run without one.
has_leader() { case $(field "$1" leader_id) in ''|0) return 1 ;; esac; }
leader_id() {
  until_ 20 has_leader "$1" || { echo "FAIL no leader known to gcsd-$1" >&2; return 1; }
  field "$1" leader_id
}
ready() {
  local r
  r=$(exec 3<>"/dev/tcp/$(ip_of "$1")/8080" 2>/dev/null &&
      printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3 && tail -n 1 <&3) || r="down"
  echo "$r"
}
until_() {  # until_ SECONDS COMMAND...: poll until COMMAND succeeds
  local end=$((SECONDS + $1)); shift
  until "$@"; do [ "$SECONDS" -lt "$end" ] || return 1; sleep 0.25; done
}
is_ready() { [ "$(ready "$1")" = ok ]; }
all_ready() { until_ 30 is_ready 0 && until_ 30 is_ready 1 && until_ 30 is_ready 2; }
none_ready() { ! is_ready 0 && ! is_ready 1 && ! is_ready 2; }
# The member's own copy (READONLY: a local read, never forwarded).
has_data() {
  [ "$(printf 'READONLY\nGET key7\n' |
       REDISCLI_AUTH=pw timeout 5 redis-cli -h "$(ip_of "$1")" -p 6379 2>/dev/null | tail -n 1)" = v7 ]
}
voters_are() { [ "$(voters "$1")" = "$2" ]; }
FAILED=0
check() {  # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then echo "PASS $what"; else echo "FAIL $what"; FAILED=1; fi
}
log_has() { grep -q -- "$2" "$W/m$1.log"; }

echo "== first start: gcsd-0 and gcsd-1, gcsd-2 three seconds later"
start 0 3; start 1 3; sleep 3; start 2 3
check "all three ready" all_ready
check "three voters" until_ 30 voters_are 0 3
for i in $(seq 1 100); do R 0 SET "key$i" "v$i" >/dev/null; done
check "writes through any member" until_ 10 has_data 2

echo "== a follower loses its volume"
L=$(leader_id 0) || { FAILED=1; L=1; }; v=$(( L % 3 ))   # the ordinal of a follower
service_to $((L - 1))                    # the Service reaches the leader
stop "$v"; sleep 2.5; rm -rf "$W/d$v"; start "$v" 3
check "gcsd-$v removed itself and joined again" until_ 30 log_has "$v" "RAFT.REMOVE $((v + 1)), then joining"
check "gcsd-$v has the data again" until_ 40 has_data "$v"
check "three voters again" until_ 20 voters_are $((L - 1)) 3

echo "== the leader loses its volume"
L=$(leader_id 0) || { FAILED=1; L=1; }; v=$((L - 1)); service_to $(( (v + 1) % 3 ))
stop "$v"; sleep 2.5; rm -rf "$W/d$v"; start "$v" 3
check "gcsd-$v (was leader) has the data again" until_ 40 has_data "$v"

echo "== grow to 5, remove 5 and 4, bring them back on fresh volumes"
service_to 0
start 3 5; start 4 5
check "five voters" until_ 40 voters_are 0 5
R 0 RAFT.REMOVE 5 >/dev/null; R 0 RAFT.REMOVE 4 >/dev/null; stop 3 4; rm -rf "$W/d3" "$W/d4"
check "three voters after RAFT.REMOVE" until_ 20 voters_are 0 3
start 3 5; start 4 5
check "gcsd-3 and gcsd-4 joined again" until_ 40 voters_are 0 5
check "gcsd-4 has the data" until_ 40 has_data 4
R 0 RAFT.REMOVE 5 >/dev/null; R 0 RAFT.REMOVE 4 >/dev/null; stop 3 4

echo "== shrink below the initial count, grow back on fresh volumes"
if [ "$(leader_id 0)" != 1 ]; then R 0 RAFT.TRANSFER 1 >/dev/null; fi
check "gcsd-0 leads (before removing 2 and 3)" until_ 20 eval '[ "$(leader_id 0)" = 1 ]'
R 0 RAFT.REMOVE 3 >/dev/null; R 0 RAFT.REMOVE 2 >/dev/null; stop 1 2; rm -rf "$W/d1" "$W/d2"
check "gcsd-0 alone is a voter" until_ 20 voters_are 0 1
start 1 3; start 2 3
check "gcsd-1 joined as a new member (no second cluster)" until_ 30 log_has 1 "joining it as a new member"
check "three voters again" until_ 40 voters_are 0 3
check "gcsd-2 has the data" until_ 40 has_data 2

echo "== a majority of the volumes lost"
stop 1 2; rm -rf "$W/d1" "$W/d2"; start 1 3; start 2 3
check "gcsd-1 refuses to bootstrap" until_ 30 log_has 1 "DANGER"
sleep 3
check "no member ready: no empty leader took over" none_ready
check "gcsd-0 still holds the data on disk" test -s "$W/d0/state/data.mdb"

echo "== recovery: copy the survivor's data dir to the others"
stop 0 1 2
rm -rf "$W/d1" "$W/d2"; cp -a "$W/d0" "$W/d1"; cp -a "$W/d0" "$W/d2"
start 0 3; start 1 3; start 2 3
check "all three ready again" all_ready
check "data on every member" until_ 40 has_data 1
check "data on gcsd-2" until_ 40 has_data 2

stop 0 1 2 3 4
if [ "$FAILED" -ne 0 ]; then
  echo "local_cluster: FAILED; the member logs:"
  tail -n 20 "$W"/m*.log
  exit 1
fi
echo "local_cluster: all checks passed"
