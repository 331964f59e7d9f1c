#!/usr/bin/env bash
# Build the static strata-frontend binary and the FROM-scratch frontend image
# strata/frontend:latest (frontend.Dockerfile, default target), then push it
# to the local registry as 127.0.0.1:5000/strata/frontend:latest.
# Idempotent: a rerun with nothing changed takes a few seconds.
#
# Usage: scripts/frontend-image.sh        (the engine must be up: scripts/engine.sh)
#   Env: STRATA_FRONTEND_IMAGE=name:tag   image to tag (default strata/frontend:latest)
#        STRATA_SKIP_PUSH=1               do not push to the local registry
#
# Prints one line on stdout: the image, its size in bytes and in MB.
set -euo pipefail
exec 3>&1 1>&2   # cargo and docker chatter to stderr; fd 3 is the real stdout

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
STRATA_LOG_TAG=frontend-image
# shellcheck source=scripts/engine-common.sh
. "$HERE/engine-common.sh"
# Several test binaries may call this at once: one build at a time.
take_lock frontend-image

IMAGE=${STRATA_FRONTEND_IMAGE:-strata/frontend:latest}
TARGET=x86_64-unknown-linux-gnu
PROFILE=release-frontend
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

docker_up || die "docker does not answer; start the engine first: scripts/engine.sh"

# Static: the image has no libc. An explicit --target keeps +crt-static away
# from proc-macro crates, which must stay dynamic.
log "building the static strata-frontend ($PROFILE)"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --locked -q \
  --profile "$PROFILE" --target "$TARGET" --bin strata-frontend --no-default-features
BIN=$TARGET_DIR/$TARGET/$PROFILE/strata-frontend
[ -x "$BIN" ] || die "no binary at $BIN"
if command -v ldd >/dev/null 2>&1 && ldd "$BIN" 2>&1 | grep -q '=>'; then
  die "$BIN is dynamically linked; the FROM scratch image needs a static binary"
fi

# A context holding only the binary: the repository's target/ is gigabytes.
CTX=$TARGET_DIR/frontend-image
mkdir -p "$CTX"
cp -p "$BIN" "$CTX/strata-frontend.new"
mv -f "$CTX/strata-frontend.new" "$CTX/strata-frontend"

log "building $IMAGE"
docker build -q -f "$ROOT/frontend.Dockerfile" -t "$IMAGE" "$CTX" >/dev/null

if [ -z "${STRATA_SKIP_PUSH:-}" ]; then
  REMOTE=$STRATA_REGISTRY_ADDR/${IMAGE}
  if registry_up; then
    docker tag "$IMAGE" "$REMOTE"
    docker push -q "$REMOTE" >/dev/null
    log "pushed $REMOTE"
  else
    log "warning: registry $STRATA_REGISTRY_ADDR not answering; not pushed"
  fi
fi

size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
bin_size=$(stat -c %s "$BIN")
log "binary $bin_size bytes; image $IMAGE $size bytes"
printf '%s %s bytes (%s MB)\n' "$IMAGE" "$size" "$(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1000000 }')" >&3
