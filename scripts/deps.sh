#!/usr/bin/env bash
# Install everything gcsd needs to build and test, on Debian 12 (bookworm).
#
#   1. missing Debian packages from PACKAGES below (apt-get, only when needed)
#   2. raft 0.22.1, built from Debian trixie's `raft` source package (bookworm
#      has no usable raft) with gcsd's patches (scripts/raft-patches/, each
#      says why) into /usr/local, unless that build is already installed.
#
# Idempotent: once everything is in place a run does no apt work and no build.
# Runs as root, or through sudo when started by another user.
#
# Environment (all optional):
#   GCSD_DEBIAN_MIRROR     Debian mirror to fetch raft's source from, e.g.
#                          http://<mirror>/debian (default: the first bookworm
#                          mirror of this machine's own apt sources)
#   GCSD_RAFT_PREFIX       install prefix for raft (default /usr/local)
#   GCSD_FORCE_RAFT_BUILD  set to 1 to rebuild raft even if it is installed
set -euo pipefail

# Debian packages needed to build, test and run gcsd. Append freely.
PACKAGES=(
  build-essential pkg-config meson ninja-build
  libuv1-dev liblmdb-dev lmdb-utils libhiredis-dev
  libprotobuf-c-dev protobuf-c-compiler libcriterion-dev
  redis-tools redis-server python3 python3-redis python3-yaml
  liblz4-dev autoconf automake libtool dpkg-dev ca-certificates patch
  clang iproute2 procps
  libclang-rt-14-dev
)

# Node.js and npm for the Kubernetes API-schema check in tests/deploy
# (kubernetes-models from the npm registry), in a source tree that has it
# (the image build copies this script alone). A node installed some other
# way, with its own npm, is used as it is: Debian's npm would conflict.
SCHEMA_SRC=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)/tests/deploy/schema
if [ -f "$SCHEMA_SRC/package.json" ] &&
   ! { command -v node && command -v npm; } >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)
fi
# Where those npm packages go (tests/deploy/validate.py looks there too).
SCHEMA_DIR=${GCSD_SCHEMA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gcsd/k8s-schema}

RAFT_VERSION=0.22.1                # upstream version we want
RAFT_DEBIAN_VERSION=0.22.1-1       # Debian source version providing it
RAFT_SUITE=trixie                  # Debian release that has that source
RAFT_PREFIX=${GCSD_RAFT_PREFIX:-/usr/local}
RAFT_PREFIX=${RAFT_PREFIX%/}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# gcsd's patches to raft, applied in name order; a stamp installed beside
# the library records which were built in, so a changed set rebuilds.
RAFT_PATCH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)/raft-patches
RAFT_STAMP=$RAFT_PREFIX/share/gcsd/raft-patches.sha256

say() { printf '==> %s\n' "$*"; }
die() { printf 'deps.sh: error: %s\n' "$*" >&2; exit 1; }

{ command -v apt-get && command -v dpkg-query; } >/dev/null 2>&1 ||
  die "apt-get/dpkg-query not found: this script supports Debian 12 (bookworm) only"

# Quiet commands write here; the tail is shown on failure, the file is
# removed on success.
LOG=$(mktemp "${TMPDIR:-/tmp}/gcsd-deps.XXXXXX.log")
TMPD=""
SUDO=()

on_exit() {
  local rc=$?
  if [ -n "$TMPD" ] && [ -d "$TMPD" ]; then
    "${SUDO[@]}" rm -rf -- "$TMPD" || true
  fi
  if [ "$rc" -eq 0 ]; then rm -f -- "$LOG"; fi
}
trap on_exit EXIT

# run_q DESCRIPTION COMMAND...: print DESCRIPTION, run COMMAND quietly.
run_q() {
  say "$1"
  shift
  printf '\n+ %s\n' "$*" >>"$LOG"
  "$@" >>"$LOG" 2>&1 </dev/null || die_log "command failed: $*"
}

# die_log MESSAGE: show the tail of the log, then fail.
die_log() {
  {
    printf -- '--- last lines of %s ---\n' "$LOG"
    tail -n 40 "$LOG"
    printf -- '--- end of log ---\n'
  } >&2
  die "$1"
}

# need_root: make "${SUDO[@]}" give root privileges, or fail clearly.
need_root() {
  [ "$(id -u)" -eq 0 ] && return 0
  [ "${#SUDO[@]}" -gt 0 ] && return 0
  command -v sudo >/dev/null 2>&1 ||
    die "root privileges are needed to install packages: run as root or install sudo"
  if ! sudo -n true 2>/dev/null; then
    say "asking sudo for root privileges"
    sudo -v || die "sudo failed: run this script as root"
  fi
  SUDO=(sudo)
}

ldconfig_bin() { command -v ldconfig 2>/dev/null || echo /sbin/ldconfig; }

# ---------------------------------------------------------------- packages

apt_install() {  # apt_install PKG...   (call need_root first)
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
    install -y --no-install-recommends "$@"
}

apt_update() {                         # (call need_root first)
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update
}

install_packages() {
  local installed name status p
  local -A have=()
  local -a missing=()
  installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null || true)
  while read -r name status; do
    [ "$status" = ii ] && have[$name]=1
  done <<<"$installed"
  for p in "${PACKAGES[@]}"; do
    [ -n "${have[$p]:-}" ] || missing+=("$p")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    say "all ${#PACKAGES[@]} Debian packages already installed"
    return 0
  fi
  say "missing Debian packages: ${missing[*]}"
  need_root

  # apt-get update once, only when the package lists are missing, older
  # than a day, or do not know one of the missing packages.
  local lists="" known reason=""
  eval "$(apt-config shell lists Dir::State::lists/d)"
  lists=${lists:-/var/lib/apt/lists/}
  if [ -z "$(find "$lists" -maxdepth 1 -name '*_Packages*' -print -quit 2>/dev/null)" ]; then
    reason="no package lists yet"
  elif [ -z "$(find "$lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 -print -quit 2>/dev/null)" ]; then
    reason="package lists are older than a day"
  else
    known=$(apt-cache policy "${missing[@]}" 2>/dev/null |
      awk '/^[^ ]/ { n = $1; sub(/:$/, "", n) } /^  Candidate:/ && $2 != "(none)" { print n }')
    for p in "${missing[@]}"; do
      grep -qxF -- "$p" <<<"$known" || { reason="apt does not know $p yet"; break; }
    done
  fi
  local updated=0
  if [ -n "$reason" ]; then
    run_q "apt-get update ($reason)" apt_update
    updated=1
  fi

  local desc="apt-get install ${#missing[@]} package(s) (log: $LOG)"
  if [ "$updated" -eq 0 ]; then
    # Lists looked fresh; if the install still fails (e.g. a mirror moved
    # on), update once and retry.
    say "$desc"
    printf '\n+ apt-get install %s\n' "${missing[*]}" >>"$LOG"
    if ! apt_install "${missing[@]}" >>"$LOG" 2>&1 </dev/null; then
      run_q "install failed with the current package lists: apt-get update" apt_update
      run_q "apt-get install (retry)" apt_install "${missing[@]}"
    fi
  else
    run_q "$desc" apt_install "${missing[@]}"
  fi

  # Installing redis-server on a systemd machine starts a Redis on port
  # 6379, where scripts/run.sh wants gcsd. Only its binary is needed (for
  # tests), so stop the service we just installed.
  for p in "${missing[@]}"; do
    if [ "$p" = redis-server ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
      run_q "stopping/disabling the redis-server service just installed (frees port 6379; re-enable: systemctl enable --now redis-server)" \
        "${SUDO[@]}" systemctl disable --now redis-server
    fi
  done
}

# -------------------------------------------------------------------- raft

raft_pkg_config() {  # pkg-config looking first into RAFT_PREFIX
  PKG_CONFIG_PATH="$RAFT_PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" pkg-config "$@"
}

raft_system_prefix() { [ "$RAFT_PREFIX" = /usr/local ] || [ "$RAFT_PREFIX" = /usr ]; }

# Is libraft.so.0 from RAFT_PREFIX loadable at run time?
raft_runtime_ok() {
  if raft_system_prefix; then
    local cache   # (no "ldconfig -p | grep -q": SIGPIPE + pipefail)
    cache=$("$(ldconfig_bin)" -p 2>/dev/null || true)
    grep -q "libraft\.so\.0 .*=> $RAFT_PREFIX/lib/" <<<"$cache"
  else
    [ -e "$RAFT_PREFIX/lib/libraft.so.0" ]
  fi
}

# Digest of the patch set (empty input when there are none).
raft_patch_digest() {
  local d
  d=$(cat "$RAFT_PATCH_DIR"/*.patch 2>/dev/null | sha256sum)
  echo "${d%% *}"
}

# Installed raft acceptable? 0.22.1 exactly, or a later 0.22.x (what the
# fallback below builds if Debian dropped 0.22.1-1), built with the current
# patch set.
raft_installed() {
  local v
  if [ -n "${GCSD_RAFT_PREFIX:-}" ]; then
    [ "$(raft_pkg_config --variable=prefix raft 2>/dev/null)" = "$RAFT_PREFIX" ] || return 1
  fi
  if [ "$(cat "$RAFT_STAMP" 2>/dev/null)" != "$(raft_patch_digest)" ]; then
    raft_pkg_config --exists raft 2>/dev/null &&
      say "the installed raft was not built with gcsd's current patches (scripts/raft-patches/)"
    return 1
  fi
  if raft_pkg_config --exact-version="$RAFT_VERSION" raft 2>/dev/null; then
    return 0
  fi
  if raft_pkg_config --atleast-version="$RAFT_VERSION" --max-version=0.22.99999 raft 2>/dev/null; then
    v=$(raft_pkg_config --modversion raft)
    say "raft $v is installed ($RAFT_VERSION wanted, accepting 0.22.x)"
    return 0
  fi
  return 1
}

# The Debian mirror this machine's apt uses for bookworm.
debian_mirror() {
  if [ -n "${GCSD_DEBIAN_MIRROR:-}" ]; then
    echo "${GCSD_DEBIAN_MIRROR%/}"
    return 0
  fi
  local f uri=""
  # deb822 .sources: first URIs of a stanza whose Suites contain bookworm
  # (so not an -updates/-security-only stanza) and is not a security mirror.
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    uri=$(awk '
      function flush() {
        if (!found && uri ~ /^https?:\/\// && uri !~ /security/ && tolower(enabled) != "no" &&
            (" " types " ") ~ / deb(-src)? / && (" " suites " ") ~ / bookworm /) {
          print uri; found = 1
        }
        uri = ""; suites = ""; types = ""; enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      {
        i = index($0, ":"); if (i == 0) next
        key = tolower(substr($0, 1, i - 1)); gsub(/[ \t]/, "", key)
        val = substr($0, i + 1); gsub(/[ \t]+/, " ", val); sub(/^ /, "", val); sub(/ $/, "", val)
        if (key == "uris") { split(val, a, " "); uri = a[1] }
        else if (key == "suites") suites = val
        else if (key == "types") types = val
        else if (key == "enabled") enabled = val
      }
      END { flush() }' "$f")
    [ -n "$uri" ] && break
  done
  # One-line format: a bookworm, non-security "deb http..." line, else the
  # first "deb http..." line at all.
  if [ -z "$uri" ]; then
    local lists=()
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -r "$f" ] && lists+=("$f")
    done
    if [ "${#lists[@]}" -gt 0 ]; then
      uri=$(awk '
        { sub(/#.*/, ""); gsub(/\[[^]]*\]/, " ") }
        $1 != "deb" || $2 !~ /^https?:\/\// { next }
        first == "" { first = $2 }
        $3 == "bookworm" && $2 !~ /security/ { print $2; good = 1; exit }
        END { if (!good && first != "") print first }' "${lists[@]}")
    fi
  fi
  [ -n "$uri" ] ||
    die "cannot find a Debian mirror in /etc/apt/sources.list{,.d}; set GCSD_DEBIAN_MIRROR=http://<mirror>/debian"
  echo "${uri%/}"
}

build_raft() {
  if [ "${GCSD_FORCE_RAFT_BUILD:-0}" != 1 ] && raft_installed; then
    if raft_runtime_ok; then
      say "raft $(raft_pkg_config --modversion raft) already installed in $RAFT_PREFIX"
      return 0
    fi
    if raft_system_prefix; then
      need_root
      run_q "raft is installed but not in the loader cache: ldconfig" "${SUDO[@]}" "$(ldconfig_bin)"
      raft_runtime_ok && return 0
    fi
    say "raft is installed but $RAFT_PREFIX/lib/libraft.so.0 is not loadable: rebuilding"
  fi

  [ -r "$KEYRING" ] || die "$KEYRING missing: apt-get install debian-archive-keyring"
  need_root   # apt-get (even with a private configuration) wants root
  local mirror
  mirror=$(debian_mirror)
  say "building raft $RAFT_VERSION from Debian $RAFT_SUITE's source package (mirror: $mirror, prefix: $RAFT_PREFIX)"

  # A private apt configuration (sources, lists, caches in a temp dir): the
  # machine's own apt sources and state stay untouched.
  TMPD=$(mktemp -d "${TMPDIR:-/tmp}/gcsd-raft.XXXXXX")
  mkdir -p "$TMPD/lists/partial" "$TMPD/cache/archives/partial" "$TMPD/sources.list.d" "$TMPD/src"
  printf 'deb-src [signed-by=%s] %s %s main\n' "$KEYRING" "$mirror" "$RAFT_SUITE" >"$TMPD/sources.list"
  local apt_opts=(
    -o "Dir::Etc::SourceList=$TMPD/sources.list"
    -o "Dir::Etc::SourceParts=$TMPD/sources.list.d"
    -o "Dir::State::Lists=$TMPD/lists"
    -o "Dir::Cache=$TMPD/cache"
    -o "Dir::Cache::pkgcache="
    -o "Dir::Cache::srcpkgcache="
    -o "APT::Sandbox::User=root"
    -o "Acquire::Languages=none"
  )
  cd "$TMPD"
  run_q "apt-get update (private: $RAFT_SUITE deb-src only)" "${SUDO[@]}" apt-get "${apt_opts[@]}" update
  # apt-get update exits 0 even when downloads fail.
  [ -n "$(find "$TMPD/lists" -maxdepth 1 -name "*_${RAFT_SUITE}_*Sources*" -print -quit)" ] ||
    die_log "could not download the $RAFT_SUITE source index from $mirror (set GCSD_DEBIAN_MIRROR to another Debian mirror?)"

  local ver=$RAFT_DEBIAN_VERSION
  printf '\n+ apt-get source --download-only raft=%s\n' "$ver" >>"$LOG"
  say "apt-get source --download-only raft=$ver"
  if ! "${SUDO[@]}" apt-get "${apt_opts[@]}" source --download-only "raft=$ver" >>"$LOG" 2>&1 </dev/null; then
    ver=$("${SUDO[@]}" apt-cache "${apt_opts[@]}" showsrc raft 2>>"$LOG" |
      awk '/^Version:/ { print $2 }' | grep -E '^0\.22\.' | sort -V | tail -n 1 || true)
    [ -n "$ver" ] || die_log "Debian $RAFT_SUITE at $mirror has no raft 0.22.x source package"
    say "NOTE: raft=$RAFT_DEBIAN_VERSION is gone from $RAFT_SUITE; falling back to raft=$ver"
    run_q "apt-get source --download-only raft=$ver" "${SUDO[@]}" apt-get "${apt_opts[@]}" source --download-only "raft=$ver"
  fi

  local upver=${ver#*:}
  upver=${upver%-*}
  local dsc="raft_${ver#*:}.dsc" orig
  orig=$(find . -maxdepth 1 -name "raft_${upver}.orig.tar.*" ! -name '*.asc' | head -n 1)
  [ -f "$dsc" ] || die "apt-get source did not fetch $dsc"
  [ -n "$orig" ] || die "apt-get source did not fetch raft_${upver}.orig.tar.*"
  say "got $dsc and ${orig#./} (hashes checked by apt against the signed $RAFT_SUITE index)"

  run_q "extracting ${orig#./}" tar -xf "$orig" -C "$TMPD/src"
  local srcdir="$TMPD/src/raft-$upver"
  if [ ! -d "$srcdir" ]; then
    srcdir=$(find "$TMPD/src" -mindepth 1 -maxdepth 1 -type d | head -n 1)
    [ -f "$srcdir/configure.ac" ] || die "unexpected layout of ${orig#./}"
  fi
  cd "$srcdir"
  local patch
  for patch in "$RAFT_PATCH_DIR"/*.patch; do
    [ -f "$patch" ] || continue
    run_q "raft: applying ${patch##*/}" patch -p1 --forward --batch -i "$patch"
  done
  run_q "raft: autoreconf -i" autoreconf -i
  run_q "raft: ./configure --prefix=$RAFT_PREFIX --disable-example --disable-benchmark" \
    ./configure --prefix="$RAFT_PREFIX" --disable-example --disable-benchmark
  run_q "raft: make -j$(nproc)" make -j"$(nproc)"

  local inst=()
  local p=$RAFT_PREFIX
  while [ ! -e "$p" ]; do p=$(dirname "$p"); done
  [ -w "$p" ] || inst=("${SUDO[@]}")
  run_q "raft: make install" "${inst[@]}" make install
  "${inst[@]}" mkdir -p "${RAFT_STAMP%/*}"
  raft_patch_digest | "${inst[@]}" tee "$RAFT_STAMP" >/dev/null
  if raft_system_prefix; then
    run_q "ldconfig" "${SUDO[@]}" "$(ldconfig_bin)"
  fi
  cd /

  local got
  got=$(raft_pkg_config --modversion raft 2>/dev/null || true)
  [ "$got" = "$upver" ] || die "after installing, pkg-config finds raft '$got', not $upver"
  raft_runtime_ok || die "libraft.so.0 from $RAFT_PREFIX/lib is not found at run time"
  say "raft $got installed in $RAFT_PREFIX"
  if ! raft_system_prefix; then
    say "(non-system prefix: use PKG_CONFIG_PATH=$RAFT_PREFIX/lib/pkgconfig LD_LIBRARY_PATH=$RAFT_PREFIX/lib)"
  fi
}

# npm ci of tests/deploy/schema's pinned package-lock.json into SCHEMA_DIR,
# once per version of the lock (a stamp in node_modules records it).
install_schema() {
  [ -f "$SCHEMA_SRC/package.json" ] || return 0
  local want stamp=$SCHEMA_DIR/node_modules/.gcsd-lock
  want=$(cat "$SCHEMA_SRC/package.json" "$SCHEMA_SRC/package-lock.json" | sha256sum)
  want=${want%% *}
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "Kubernetes API schemas (npm kubernetes-models) already in $SCHEMA_DIR"
    return 0
  fi
  mkdir -p "$SCHEMA_DIR"
  cp "$SCHEMA_SRC/package.json" "$SCHEMA_SRC/package-lock.json" "$SCHEMA_DIR/"
  run_q "npm ci: Kubernetes API schemas (kubernetes-models) into $SCHEMA_DIR" \
    npm ci --prefix "$SCHEMA_DIR" --no-audit --no-fund --ignore-scripts
  printf '%s\n' "$want" >"$stamp"
}

install_packages
build_raft
install_schema
say "dependencies OK"
