#!/usr/bin/env bash
# Run gcsd's libFuzzer targets (fuzz/fuzz_*.c) for a while each.
#
#   scripts/fuzz.sh [seconds-per-target]     (default 30)
#
# Installs the dependencies (scripts/deps.sh), configures build-fuzz with
# clang, ASan+UBSan and -Dfuzz=true if needed, builds, then runs every
# target on a temporary copy of its seed corpus (fuzz/corpus/<target>/ is
# never written to). Exits 1 if any target crashed, leaked, timed out or ran
# out of memory, printing the path of the input that did it (kept in
# build-fuzz/fuzz-artifacts/<target>/) and how to rerun it.
#
# Environment (optional):
#   FUZZ_TARGETS  targets to run, space separated (default: all of them)
#   FUZZ_BUILD    build directory (default: build-fuzz)
#   FUZZ_KEEP     set to 1 to keep the temporary corpora (new inputs found)
#   FUZZ_SEED     libFuzzer's -seed: a fixed seed makes the run repeatable
#                 (the same mutations in the same order, so a slower machine
#                 runs a prefix of what a faster one does); CI uses one, so a
#                 red CI is a regression, not a lucky draw. Without it every
#                 run explores afresh: run long that way to find new bugs,
#                 and add what they find to fuzz/corpus/<target>/.
set -euo pipefail

secs=${1:-30}
case $secs in
  '' | *[!0-9]*) echo "usage: $0 [seconds-per-target]" >&2; exit 2 ;;
esac
[ "$secs" -gt 0 ] || { echo "usage: $0 [seconds-per-target]" >&2; exit 2; }

cd "$(dirname "$0")/.."
repo=$(pwd)
build=${FUZZ_BUILD:-build-fuzz}
targets=${FUZZ_TARGETS:-fuzz_resp fuzz_glob fuzz_dump fuzz_commands fuzz_entry fuzz_snapshot fuzz_http fuzz_ctl}

say() { printf '==> %s\n' "$*"; }

bash scripts/deps.sh

# Configure once; fix up a build directory configured without fuzzing.
if [ ! -f "$build/build.ninja" ]; then
  say "configuring $build"
  CC=clang meson setup "$build" -Dfuzz=true -Dtests=false -Db_lundef=false \
    -Db_sanitize=address,undefined
else
  opts=$(meson introspect --buildoptions "$build")
  if ! python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
ok = o.get("fuzz") is True and o.get("b_sanitize") == "address,undefined" \
     and o.get("b_lundef") is False
sys.exit(0 if ok else 1)' <<<"$opts"; then
    say "reconfiguring $build for fuzzing"
    meson configure "$build" -Dfuzz=true -Dtests=false -Db_lundef=false \
      -Db_sanitize=address,undefined
  fi
fi
say "building"
ninja -C "$build"

work=$(mktemp -d "${TMPDIR:-/tmp}/gcsd-fuzz.XXXXXX")
if [ "${FUZZ_KEEP:-0}" = 1 ]; then
  say "temporary corpora kept in $work"
else
  trap 'rm -rf -- "$work"' EXIT
fi

# Largest input per target: requests and dumps a bit bigger than the seeds;
# glob inputs small (matching is O(pattern * string); fuzz_glob can repeat
# an input to reach Redis's 1000-star limit).
max_len() {
  case $1 in
    fuzz_resp) echo 16384 ;;
    fuzz_dump) echo 16384 ;;
    fuzz_commands) echo 8192 ;;
    fuzz_entry) echo 8192 ;;
    fuzz_snapshot) echo 16384 ;;
    fuzz_http) echo 8192 ;;
    fuzz_ctl) echo 4096 ;;
    fuzz_glob) echo 1024 ;;
    *) echo 4096 ;;
  esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

seed_opt=()
if [ -n "${FUZZ_SEED:-}" ]; then
  case $FUZZ_SEED in
    *[!0-9]* | 0) echo "fuzz.sh: FUZZ_SEED must be a positive integer" >&2; exit 2 ;;
  esac
  seed_opt=(-seed="$FUZZ_SEED")
fi

failed=0
for t in $targets; do
  exe="$build/fuzz/$t"
  [ -x "$exe" ] || { echo "fuzz.sh: no such target: $exe" >&2; exit 2; }
  corpus="$work/corpus/$t"
  art="$repo/$build/fuzz-artifacts/$t"
  mkdir -p "$corpus" "$art"
  cp -- "fuzz/corpus/$t/"* "$corpus/"
  log="$work/$t.log"
  say "$t: ${secs}s"
  rc=0
  "$exe" "${seed_opt[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -max_len="$(max_len "$t")" -print_final_stats=1 \
    -artifact_prefix="$art/" "$corpus" >"$log" 2>&1 || rc=$?
  # Summary: the last status line and the speed.
  grep -E '^#[0-9]+.*(DONE|REDUCE|NEW|pulse|INITED)' "$log" | tail -n 1 || true
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
  if [ "$rc" -ne 0 ]; then
    failed=1
    cp -- "$log" "$art/"
    echo "--- $t FAILED (exit $rc); end of its log ($art/$t.log):" >&2
    tail -n 60 "$log" >&2
    found=$(grep -oE "Test unit written to .*" "$log" | sed 's/^Test unit written to //' | sort -u || true)
    for f in $found; do
      echo "fuzz.sh: $t: crashing input: $f" >&2
      echo "fuzz.sh: rerun with: $exe $f" >&2
    done
    [ -n "$found" ] || echo "fuzz.sh: $t: no input file written (see the log above)" >&2
  fi
done

if [ "$failed" -ne 0 ]; then
  echo "fuzz.sh: FAILED" >&2
  exit 1
fi
say "all targets ran ${secs}s without a finding"
