#!/usr/bin/env bash
# Download packages for offline builds (RUN steps with network none).
#
# Usage: scripts/vendor-packages.sh DEST_DIR [APT_PKG...] [-- PIP_REQ...]
#   e.g. scripts/vendor-packages.sh /tmp/vendor tini supervisor -- six==1.16.0
#
# Result:
#   DEST_DIR/apt/     the .deb files of APT_PKGs and of every dependency not
#                     already installed in strata.local/python:3.11-slim-bookworm
#                     (resolved against that image's dpkg status, no
#                     recommends), plus a flat `Packages` index. Use it as
#                       deb [trusted=yes] file:/some/mount ./
#   DEST_DIR/wheels/  wheels for PIP_REQs (and their dependencies) for
#                     CPython 3.11 on manylinux x86_64 / pure python. Use
#                       pip install --no-index --find-links /some/mount ...
#   DEST_DIR/.stamp   the argument list; a rerun with the same arguments does
#                     nothing.
#
# Needs dockerd with strata.local/python:3.11-slim-bookworm (scripts/engine.sh),
# apt-get, dpkg-scanpackages (dpkg-dev) and python3 -m pip on the host.
#   Env: STRATA_VENDOR_BASE=image   resolve apt deps against another image
#        STRATA_VENDOR_SUITE=name   that image's Debian release (default bookworm)
set -euo pipefail
exec 3>&1 1>&2

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STRATA_LOG_TAG=vendor
# shellcheck source=scripts/engine-common.sh
. "$HERE/engine-common.sh"

[ $# -ge 1 ] || die "usage: $0 DEST_DIR [APT_PKG...] [-- PIP_REQ...]"
DEST=$1; shift
APT_PKGS=(); PIP_REQS=()
seen_sep=""
for a in "$@"; do
  if [ -z "$seen_sep" ] && [ "$a" = "--" ]; then seen_sep=1; continue; fi
  if [ -n "$seen_sep" ]; then PIP_REQS+=("$a"); else APT_PKGS+=("$a"); fi
done
BASE_IMAGE=${STRATA_VENDOR_BASE:-strata.local/python:3.11-slim-bookworm}
SUITE=${STRATA_VENDOR_SUITE:-bookworm}

mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
STAMP_WANT=$(printf '%s\n' "base=$BASE_IMAGE" "suite=$SUITE" "apt=${APT_PKGS[*]:-}" "pip=${PIP_REQS[*]:-}")
if [ -f "$DEST/.stamp" ] && [ "$(cat "$DEST/.stamp")" = "$STAMP_WANT" ] \
   && [ -f "$DEST/apt/Packages" ] && [ -d "$DEST/wheels" ]; then
  log "$DEST up to date"
  exit 0
fi
rm -rf "$DEST/apt" "$DEST/wheels" "$DEST/.stamp"
mkdir -p "$DEST/apt" "$DEST/wheels"

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/strata-vendor.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- apt ----
if [ ${#APT_PKGS[@]} -gt 0 ]; then
  docker_up || die "docker does not answer; run scripts/engine.sh first"
  # The base image's dpkg status: apt then downloads only what is missing.
  cid=$(docker create "$BASE_IMAGE" true)
  docker cp "$cid:/var/lib/dpkg/status" "$WORK/status" >/dev/null
  docker rm "$cid" >/dev/null
  [ -s "$WORK/status" ] || die "no dpkg status in $BASE_IMAGE"

  # Same suite as the base image (debootstrap $SUITE main), so versions
  # agree with what is installed there. Lists are cached between runs.
  URI=$(debian_archive_uri)
  LISTS=$STRATA_CACHE_DIR/vendor-apt/lists
  [ "$SUITE" = bookworm ] || LISTS=$LISTS-$SUITE
  mkdir -p "$LISTS/partial" "$WORK/cache" "$DEST/apt/partial"
  exec 8>"$STRATA_CACHE_DIR/vendor-apt/lock"   # shared lists: one run at a time
  flock -w 900 8 || die "another vendor-packages run holds $STRATA_CACHE_DIR/vendor-apt/lock"
  printf 'deb [signed-by=%s] %s %s main\n' "$STRATA_KEYRING" "$URI" "$SUITE" >"$WORK/sources.list"
  : >"$WORK/extended_states"
  APT_OPTS=(-o "Dir::Etc::SourceList=$WORK/sources.list"
            -o Dir::Etc::SourceParts=/dev/null
            -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
            -o "Dir::State::Lists=$LISTS"
            -o "Dir::State::status=$WORK/status"
            -o "Dir::State::extended_states=$WORK/extended_states"
            -o "Dir::Cache=$WORK/cache"
            -o "Dir::Cache::archives=$DEST/apt"
            -o APT::Install-Recommends=false -o APT::Install-Suggests=false
            -o Debug::NoLocking=1
            "${STRATA_APT_LEAN[@]}")
  if [ ! -f "$LISTS/.updated" ] || [ -n "$(find "$LISTS/.updated" -mmin +1440)" ]; then
    log "apt-get update (private lists in $LISTS)"
    apt-get -q "${APT_OPTS[@]}" update
    touch "$LISTS/.updated"
  fi
  log "downloading .debs: ${APT_PKGS[*]} (+ deps missing from $BASE_IMAGE)"
  apt-get -q -y "${APT_OPTS[@]}" install --download-only "${APT_PKGS[@]}"
  rm -rf "$DEST/apt/partial" "$DEST/apt/lock"
fi
( cd "$DEST/apt" && dpkg-scanpackages --multiversion . /dev/null >Packages 2>"$WORK/scan.log" ) \
  || { cat "$WORK/scan.log"; die "dpkg-scanpackages failed"; }
log "apt: $(find "$DEST/apt" -name '*.deb' | wc -l) .deb files in $DEST/apt"

# ---------------------------------------------------------------- pip ----
if [ ${#PIP_REQS[@]} -gt 0 ]; then
  PLAT=(--platform manylinux2014_x86_64)
  for v in $(seq 17 36); do PLAT+=(--platform "manylinux_2_${v}_x86_64"); done
  log "downloading wheels: ${PIP_REQS[*]}"
  python3 -m pip download --disable-pip-version-check --no-cache-dir -q \
    --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
    "${PLAT[@]}" -d "$DEST/wheels" "${PIP_REQS[@]}"
fi
log "pip: $(find "$DEST/wheels" -type f | wc -l) files in $DEST/wheels"

printf '%s\n' "$STAMP_WANT" >"$DEST/.stamp"
log "done: $DEST"
