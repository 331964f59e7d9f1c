#!/usr/bin/env bash
# Stop the registry and dockerd started by scripts/engine.sh (for cleanups).
# Images, the registry's storage and the caches stay; scripts/engine.sh
# starts everything again in seconds.
#
# Usage: scripts/stop-engine.sh [--registry-only|--dockerd-only]
set -euo pipefail
exec 3>&1 1>&2

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STRATA_LOG_TAG=stop-engine
# shellcheck source=scripts/engine-common.sh
. "$HERE/engine-common.sh"
need_root

what=${1:-all}

stop_pid() {  # stop_pid PID NAME SECONDS
  local pid=$1 name=$2 secs=$3 i
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < secs * 4; i++)); do
    [ -d "/proc/$pid" ] || { log "$name stopped"; return 0; }
    sleep 0.25
  done
  log "$name did not stop in $secs s; sending KILL"
  kill -KILL "$pid" 2>/dev/null || true
}

if [ "$what" != --dockerd-only ]; then
  reg_cfg=$STRATA_STATE_DIR/registry.yml
  found=""
  pid=$(cat "$STRATA_STATE_DIR/registry.pid" 2>/dev/null || true)
  if pid_matches "$pid" "$reg_cfg"; then
    stop_pid "$pid" registry 10; found=1
  fi
  # also any other registry serving our config (e.g. pid file lost)
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    if pid_matches "$pid" docker-registry && pid_matches "$pid" "$reg_cfg"; then
      stop_pid "$pid" registry 10; found=1
    fi
  done
  rm -f "$STRATA_STATE_DIR/registry.pid"
  [ -n "$found" ] || log "registry not running"
fi

if [ "$what" != --registry-only ]; then
  # The multi-platform dockerd first (its own bridge; docker0 is untouched).
  pid=$(cat "$STRATA_MP_EXEC/docker.pid" 2>/dev/null || true)
  if pid_matches "$pid" dockerd; then
    stop_pid "$pid" "multi-platform dockerd" 30
  else
    log "multi-platform dockerd not running"
  fi
  pid=$(cat /var/run/docker.pid 2>/dev/null || true)
  if pid_matches "$pid" dockerd; then
    stop_pid "$pid" dockerd 30
  else
    log "dockerd not running"
  fi
fi
