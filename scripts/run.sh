#!/usr/bin/env bash
# Install dependencies, build, and start a single-node gcsd on
# 127.0.0.1:6379 with its data in ./data (relative to the repository root).
# Extra arguments are passed to gcsd:   ./scripts/run.sh --some-flag
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

bash ./scripts/deps.sh

builddir=build
if [ ! -f "$builddir/meson-private/coredata.dat" ]; then
  echo "==> meson setup $builddir"
  meson setup "$builddir"
elif [ ! -f "$builddir/build.ninja" ]; then
  # configured once, but the setup did not finish (e.g. a missing dependency)
  echo "==> meson setup --reconfigure $builddir"
  meson setup --reconfigure "$builddir" || meson setup --wipe "$builddir"
fi
echo "==> ninja -C $builddir"
ninja -C "$builddir" || { echo "run.sh: error: build failed (ninja -C $builddir)" >&2; exit 1; }

gcsd=$builddir/gcs/gcsd
[ -x "$gcsd" ] || { echo "run.sh: error: $gcsd was not built" >&2; exit 1; }
mkdir -p ./data

port=6379   # the last --port given wins (the caller's, if any)
prev=""
for arg in "$@"; do
  case $arg in --port=*) port=${arg#--port=} ;; esac
  [ "$prev" = --port ] && port=$arg
  prev=$arg
done
if command -v ss >/dev/null 2>&1 && [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; then
  echo "run.sh: error: port $port is already in use:" >&2
  ss -ltnp "sport = :$port" >&2 || true
  echo "(a Redis server? stop it, e.g.: systemctl stop redis-server)" >&2
  exit 1
fi

echo "==> starting: $gcsd --data-dir ./data --port 6379${*:+ $*}   (in $PWD; Ctrl-C stops it)"
echo "==> gcsd on 127.0.0.1:$port, data in ./data; connect with: redis-cli -p $port"
exec "$gcsd" --data-dir ./data --port 6379 "$@"
