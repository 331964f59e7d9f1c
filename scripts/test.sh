#!/usr/bin/env bash
# The test command: set up the engine (idempotent), the frontend image and
# the offline package vendors, then run every unit and integration test.
#
# Usage: bash scripts/test.sh [extra cargo test args]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
cd "$ROOT"

log() { printf 'test.sh: %s\n' "$*" >&2; }

log "engine, registry and base images"
bash "$HERE/engine.sh"

log "offline packages for the examples"
bash "$HERE/vendor-examples.sh"

log "frontend image"
bash "$HERE/frontend-image.sh"

log "cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings

log "tests"
# Integration tests share one engine: run test binaries one at a time.
cargo test --workspace --no-fail-fast "$@" -- --test-threads=2
