#!/usr/bin/env bash
# Download the packages every example's apt and pip steps install into
# examples/<name>/vendor/{apt,wheels}, so builds run with network none.
# Each example lists them in examples/<name>/vendor.list:
#   apt: pkg pkg ...
#   pip: req req ...
#   gpu-apt: pkg pkg ...   for GPU flavours: .debs for the CUDA stand-in's
#                          userland (bullseye) in examples/<name>/vendor/gpu/apt
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
for list in "$ROOT"/examples/*/vendor.list; do
  [ -f "$list" ] || continue
  dir=$(dirname "$list")
  apt=$(sed -n 's/^apt://p' "$list" | tr '\n' ' ')
  pip=$(sed -n 's/^pip://p' "$list" | tr '\n' ' ')
  # shellcheck disable=SC2086
  bash "$HERE/vendor-packages.sh" "$dir/vendor" $apt -- $pip
  gpu_apt=$(sed -n 's/^gpu-apt://p' "$list" | tr '\n' ' ')
  if [ -n "${gpu_apt// /}" ]; then
    # shellcheck disable=SC2086
    STRATA_VENDOR_BASE=strata.local/cuda:12.1.1-base-ubuntu22.04 STRATA_VENDOR_SUITE=bullseye \
      bash "$HERE/vendor-packages.sh" "$dir/vendor/gpu" $gpu_apt --
  fi
done
