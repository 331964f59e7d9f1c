#!/usr/bin/env bash
# Run every cargo-fuzz target of fuzz/ for SECONDS each (default 60) and
# print, per target, the executions and the crashes found.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   Env: STRATA_FUZZ_JOBS=N   libFuzzer workers per target (default 1)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). It runs on stable Rust:
# `--sanitizer none` drops the only nightly flag cargo-fuzz passes
# (-Zsanitizer); libFuzzer's coverage instrumentation (sancov) is stable.
# Panics and failed checks are the crashes: the targets assert Strata's
# invariants (located diagnostics, valid and deterministic LLB).
#
# A crash leaves its input in fuzz/artifacts/<target>/; once fixed, copy it
# to fuzz/regressions/<target>/ (for `lower`, the rendered stack as .toml:
# STRATA_FUZZ_PRINT=1 cargo fuzz run --sanitizer none lower ARTIFACT), and
# tests/fuzz_regressions.rs replays it in plain `cargo test`.
set -euo pipefail
shopt -s nullglob
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
SECONDS_PER_TARGET=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(stack lower frontend_opts build_args bundle)
JOBS=${STRATA_FUZZ_JOBS:-1}

log() { printf 'fuzz.sh: %s\n' "$*" >&2; }
command -v cargo-fuzz >/dev/null 2>&1 || {
  log "cargo-fuzz is missing: cargo install cargo-fuzz"
  exit 2
}
cd "$ROOT/fuzz"

log "building the targets (release, sanitizer none)"
cargo fuzz build --sanitizer none >&2

# Seeds: the examples, the malformed-stack catalogue and the lint cases for
# `stack`; a few option sets for `frontend_opts`; a tiny real bundle (tar,
# gzip, zstd) for `bundle`; `lower` starts empty.
SEEDS=$(mktemp -d)
trap 'rm -rf "$SEEDS"' EXIT
mkdir -p "$SEEDS/stack"
for f in "$ROOT"/examples/*/strata.toml "$ROOT"/tests/data/bad/*.toml "$ROOT"/tests/data/lint/*.toml; do
  cp "$f" "$SEEDS/stack/$(basename "$(dirname "$f")")-$(basename "$f")"
done

declare -A MAX_LEN=([stack]=65536 [lower]=4096 [frontend_opts]=2048 [build_args]=1024 [bundle]=65536)
status=0
summary=()
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  seeds=()
  case $t in
    stack) seeds=("$SEEDS/stack") ;;
    frontend_opts) seeds=("$ROOT/fuzz/seeds/frontend_opts") ;;
    build_args) seeds=("$ROOT/fuzz/seeds/build_args") ;;
    bundle) seeds=("$ROOT/fuzz/seeds/bundle") ;;
  esac
  find "artifacts/$t" -type f | sort >"$SEEDS/before"
  parallel=()
  [ "$JOBS" -gt 1 ] && parallel=(-jobs="$JOBS" -workers="$JOBS")
  logfile="artifacts/$t.log"
  log "$t: ${SECONDS_PER_TARGET}s"
  set +e
  cargo fuzz run --sanitizer none "$t" "corpus/$t" "${seeds[@]}" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len="${MAX_LEN[$t]:-4096}" \
    -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 "${parallel[@]}" \
    >"$logfile" 2>&1
  code=$?
  set -e
  # Executions: libFuzzer's final stats (printed on a crash too), else the last status line.
  workers=(fuzz-*.log)
  execs=$(awk '/stat::number_of_executed_units/ {s += $2} END {print s + 0}' "$logfile" "${workers[@]}")
  if [ "$execs" = 0 ]; then
    execs=$(awk '/^#[0-9]+/ {n = substr($1, 2)} END {print n + 0}' "$logfile")
  fi
  rm -f fuzz-*.log
  find "artifacts/$t" -type f | sort >"$SEEDS/after"
  comm -13 "$SEEDS/before" "$SEEDS/after" >"$SEEDS/new"
  crashes=$(wc -l <"$SEEDS/new")
  if [ "$code" -ne 0 ] && [ "$crashes" -eq 0 ]; then
    log "$t: libFuzzer exited $code without an artifact; see fuzz/$logfile"
    crashes=1
  fi
  corpus=$(find "corpus/$t" -type f | wc -l)
  summary+=("$(printf '%-14s %12s execs  %3s crashes  %6s corpus  %ss' "$t" "${execs:-0}" "$crashes" "$corpus" "$SECONDS_PER_TARGET")")
  if [ "$crashes" -gt 0 ]; then
    status=1
    grep -h -m1 -A3 'panicked at' "$logfile" >&2 || true
    sed 's/^/  artifact: fuzz\//' "$SEEDS/new" >&2
  fi
done
printf '%s\n' "${summary[@]}"
exit $status
