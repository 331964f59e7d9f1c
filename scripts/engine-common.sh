# shellcheck shell=bash
# Helpers shared by engine.sh, base-images.sh, vendor-packages.sh and
# stop-engine.sh. Source it; do not run it.

STRATA_STATE_DIR=${STRATA_STATE_DIR:-/var/lib/strata-engine}
STRATA_CACHE_DIR=${STRATA_CACHE_DIR:-/var/cache/strata-engine}
STRATA_REGISTRY_ADDR=${STRATA_REGISTRY_ADDR:-127.0.0.1:5000}
STRATA_DOCKERD_LOG=${STRATA_DOCKERD_LOG:-/var/log/strata-dockerd.log}
STRATA_REGISTRY_LOG=${STRATA_REGISTRY_LOG:-/var/log/strata-registry.log}
# The second dockerd (containerd image store) for multi-platform builds.
STRATA_MP_EXEC=${STRATA_MP_EXEC:-/run/strata-mp}
STRATA_MP_SOCKET=${STRATA_MP_SOCKET:-/run/strata-mp/docker.sock}
STRATA_MP_LOG=${STRATA_MP_LOG:-/var/log/strata-dockerd-mp.log}
STRATA_MP_BRIDGE=${STRATA_MP_BRIDGE:-strata-mp0}
STRATA_MP_BRIDGE_CIDR=${STRATA_MP_BRIDGE_CIDR:-10.254.213.1/24}
# The second dockerd also listens on TCP with TLS (client certificates
# verified): the Docker Engine API over TLS, as a remote builder is reached.
STRATA_MP_TLS_ADDR=${STRATA_MP_TLS_ADDR:-127.0.0.1:2376}
STRATA_TLS_DIR=${STRATA_TLS_DIR:-$STRATA_STATE_DIR/tls}
STRATA_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# sbin dirs even from a minimal (CI) environment: dockerd, sysctl, iptables,
# debootstrap, chroot live there.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin ;; esac
export PATH

# take_lock NAME: serialise concurrent runs of one script (fd 9).
take_lock() {
  mkdir -p "$STRATA_STATE_DIR"
  exec 9>"$STRATA_STATE_DIR/$1.lock"
  flock -w 900 9 || die "another $1 run holds $STRATA_STATE_DIR/$1.lock"
}

log() { printf '[%s %s] %s\n' "${STRATA_LOG_TAG:-strata}" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

# The Debian archive URI this machine's apt already uses (from
# /etc/apt/sources.list.d/debian.sources, else /etc/apt/sources.list).
# Never hard-code a mirror host here.
debian_archive_uri() {
  if [ -n "${STRATA_DEBIAN_URI:-}" ]; then
    printf '%s\n' "$STRATA_DEBIAN_URI"; return
  fi
  local f=/etc/apt/sources.list.d/debian.sources uri=""
  if [ -r "$f" ]; then
    # deb822: pick the URIs of the stanza whose Suites contain "bookworm"
    # (not bookworm-security).
    uri=$(awk '
      function flush() { if (!done && suites ~ /(^| )bookworm( |$)/ && uris != "") { split(uris, u, " "); print u[1]; done=1; exit } uris=""; suites="" }
      /^[[:space:]]*$/ { flush(); next }
      /^URIs:/   { sub(/^URIs:[[:space:]]*/, ""); uris=$0 }
      /^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites=$0 }
      END { flush() }' "$f")
  fi
  if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" { for (i=2;i<=NF;i++) if ($i !~ /^\[/ && $i !~ /\]$/ && $i ~ /:\/\//) { if ($(i+1)=="bookworm") { print $i; exit } } }' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || die "cannot find the Debian archive URI in the machine's apt sources"
  printf '%s\n' "${uri%/}"
}

# apt options for private index downloads: skip DEP-11/appstream metadata
# and translations (megabytes nobody here reads).
STRATA_APT_LEAN=(-o Acquire::Languages=none
  -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
  -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false
  -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
  -o Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false)

pkg_installed() {  # pkg_installed NAME -> 0 if dpkg has it fully installed
  [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

docker_up() { timeout 10 docker info >/dev/null 2>&1; }
mp_tls_up() {
  DOCKER_HOST=tcp://$STRATA_MP_TLS_ADDR DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$STRATA_TLS_DIR/client \
    timeout 10 docker info >/dev/null 2>&1
}
mp_docker_up() { DOCKER_HOST=unix://$STRATA_MP_SOCKET timeout 10 docker info >/dev/null 2>&1; }
registry_up() { curl -sf -m 5 "http://$STRATA_REGISTRY_ADDR/v2/" >/dev/null 2>&1; }

# Is PID alive and its command line containing STRING?
pid_matches() {
  local pid=$1 want=$2
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$want"
}
