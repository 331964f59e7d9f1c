#!/usr/bin/env bash
# Download the packages every example's apt and pip steps install into
# examples/<name>/vendor/{apt,wheels}, so builds run with network none.
# Each example lists them in examples/<name>/vendor.list:
#   apt: pkg pkg ...
#   pip: req req ...
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
done
