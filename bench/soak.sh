#!/usr/bin/env bash
# Soak test (on demand, not part of the test command): a 3-member gcsd
# cluster on loopback under a steady mixed workload (SET/GET/INCR/HSET/DEL
# over a bounded keyspace, GCS.WATCH followers checking for gaps, actor and
# placement-group churn, node heartbeats) with a fault every ~90 s (kill -9
# and restart, SIGSTOP/SIGCONT, RAFT.TRANSFER) from a printed seed; RSS,
# open fds, LMDB size, changelog and raft log size sampled every 10 s with
# client latency percentiles. Writes report.md, soak.png and the series
# (samples.jsonl, clients.jsonl, faults.jsonl, series.csv, latency.csv) to
# the output directory. bench/soak.py --help lists every option.
#
# Usage: bench/soak.sh --minutes N [--out DIR] [--seed S] [other soak.py options]
#        (default output: soak-out/; --report-only DIR redraws from the series)
# Needs: meson + ninja (builds build/gcs/gcsd if missing), /usr/bin/python3
#        with the redis module; matplotlib for the plot (installed here with
#        apt-get, as root, if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3 # not a pyenv python3 without the redis module

if [ ! -x build/gcs/gcsd ]; then
  echo "# building gcsd (meson, build dir 'build')"
  [ -d build ] || meson setup build >/dev/null
  ninja -C build gcs/gcsd >/dev/null
fi
$PY -c 'import redis' 2>/dev/null || { echo "error: $PY lacks the redis module (apt-get install python3-redis)" >&2; exit 1; }
if ! $PY -c 'import matplotlib' 2>/dev/null; then
  echo "# matplotlib is missing: installing python3-matplotlib with apt-get (for the plot)"
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -q python3-matplotlib >/dev/null ||
      { apt-get update -q >/dev/null && apt-get install -y -q python3-matplotlib >/dev/null; } ||
      echo "# warning: could not install python3-matplotlib; the run goes on without a plot" >&2
  else
    echo "# warning: not root; install python3-matplotlib to get the plot" >&2
  fi
fi
# A private copy of the binary, so that a rebuild during the run does not
# mix two versions.
BIN=$(mktemp /tmp/gcsd-soak-bin-XXXXXX)
trap 'rm -f "$BIN"' EXIT
cp build/gcs/gcsd "$BIN" && chmod 755 "$BIN"
echo "# $(build/gcs/gcsd --version 2>&1 | head -1), git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
$PY bench/soak.py --gcsd "$BIN" --command "bench/soak.sh $*" "$@"
