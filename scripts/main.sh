#!/usr/bin/env bash
# The main job: on a fresh Debian 12 machine, start the engine, build the
# Strata frontend image, and build every image of the Fed-BioMed example
# stack with `docker buildx build` through the frontend (offline: the
# examples' base images are mapped to local ones, packages come from the
# build context).
#
# Usage: bash scripts/main.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
cd "$ROOT"
log() { printf 'main.sh: %s\n' "$*" >&2; }

bash "$HERE/engine.sh"
bash "$HERE/vendor-examples.sh"
bash "$HERE/frontend-image.sh"

EX=examples/fedbiomed
MIRRORS=$(grep -v '^#' examples/offline.mirrors | grep . | paste -sd, -)
for target in $(cargo run -q --bin strata -- targets "$EX/strata.toml" | awk 'NR > 1 { print $1 }'); do
  log "building fedbiomed/$target"
  docker buildx build -f "$EX/strata.toml" --target "$target" \
    --build-arg BUILDKIT_SYNTAX=strata/frontend:latest \
    --build-arg STRATA_MIRRORS="$MIRRORS" \
    --build-arg apt_repo=vendor/apt --build-arg wheels=vendor/wheels \
    --build-arg gpu_apt_repo=vendor/gpu/apt \
    --load -t "fedbiomed/$target:6.3.3" "$EX"
done
docker image ls 'fedbiomed/*' >&2
for target in node researcher; do
  docker run --rm "fedbiomed/$target:6.3.3" id >&2
done
log "done"
