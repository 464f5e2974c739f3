#!/usr/bin/env bash
# Install dependencies, build, and run the whole gcsd test suite.
#
#   ./scripts/test.sh               build dir "build"
#   ./scripts/test.sh --sanitize    build dir "build-asan", ASan + UBSan
#   ./scripts/test.sh [--sanitize] [meson test args...]   e.g. --suite unit
#
# Exit status is meson test's. The last line reads "N passed, N failed"
# (", N skipped" appended when tests were skipped).
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

builddir=build
setup_opts=()
args=()
for arg in "$@"; do
  case $arg in
    --sanitize)
      builddir=build-asan
      setup_opts=('-Db_sanitize=address,undefined' -Db_lundef=false) ;;
    *) args+=("$arg") ;;
  esac
done

bash ./scripts/deps.sh

# Value of meson option $2 in build dir $1 ("" if unknown).
meson_opt() {
  meson introspect --buildoptions "$1" 2>/dev/null | python3 -c '
import json, sys
for o in json.load(sys.stdin):
    if o["name"] == sys.argv[1]:
        v = o["value"]
        print(str(v).lower() if isinstance(v, bool) else ",".join(v) if isinstance(v, list) else v)
' "$2" 2>/dev/null || true
}

# Do the options of build dir $1 differ from setup_opts?
options_differ() {
  local opt
  for opt in "${setup_opts[@]}"; do
    opt=${opt#-D}
    [ "$(meson_opt "$1" "${opt%%=*}")" = "${opt#*=}" ] || return 0
  done
  return 1
}

if [ ! -f "$builddir/meson-private/coredata.dat" ]; then
  echo "==> meson setup $builddir${setup_opts[*]:+ ${setup_opts[*]}}"
  meson setup "$builddir" "${setup_opts[@]}"
else
  if [ ! -f "$builddir/build.ninja" ]; then
    # configured once, but the setup did not finish (e.g. a missing dependency)
    echo "==> meson setup --reconfigure $builddir${setup_opts[*]:+ ${setup_opts[*]}}"
    meson setup --reconfigure "$builddir" "${setup_opts[@]}" ||
      meson setup --wipe "$builddir" "${setup_opts[@]}"
  fi
  # (meson 1.0's --reconfigure ignores -Db_* changes; "meson configure" does not)
  if options_differ "$builddir"; then
    echo "==> meson configure $builddir ${setup_opts[*]}"
    meson configure "$builddir" "${setup_opts[@]}"
  fi
fi
echo "==> ninja -C $builddir"
ninja -C "$builddir" || { echo "test.sh: error: build failed (ninja -C $builddir)" >&2; exit 1; }

if [ "$builddir" = build-asan ]; then
  # user settings, if any, come last and win
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
  # Leaks inside Criterion and raft 0.22.1, not ours: see the file.
  export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
  echo "==> ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS LSAN_OPTIONS=$LSAN_OPTIONS"
fi

testlog=$builddir/meson-logs/testlog.json
rm -f "$testlog"   # never count results of an earlier run
echo "==> meson test -C $builddir --print-errorlogs --num-processes 2${args[*]:+ ${args[*]}}"
rc=0
meson test -C "$builddir" --print-errorlogs --num-processes 2 "${args[@]}" || rc=$?

# Count results in meson's log: OK and EXPECTEDFAIL pass, SKIP is skipped,
# everything else (FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS, ...) fails.
if [ -f "$testlog" ]; then
  python3 - "$testlog" <<'EOF'
import collections, json, sys
n = collections.Counter()
with open(sys.argv[1]) as f:
    for line in f:
        if line.strip():
            n[json.loads(line).get("result")] += 1
passed = n["OK"] + n["EXPECTEDFAIL"]
skipped = n["SKIP"]
failed = sum(n.values()) - passed - skipped
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
EOF
else
  echo "test.sh: no $testlog: no test ran" >&2
  echo "0 passed, 0 failed"
fi
exit "$rc"
