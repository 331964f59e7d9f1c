#!/usr/bin/env bash
# Install and start a contained Docker Engine 26.1 (embedded BuildKit 0.13),
# buildx, and a local registry on 127.0.0.1:5000, then make the local base
# images (scripts/base-images.sh). Idempotent: a rerun with everything in
# place takes a few seconds and changes nothing.
#
# Usage: scripts/engine.sh            (as root, Debian 12)
#   Env: STRATA_SKIP_BASE_IMAGES=1   do not call base-images.sh
#        STRATA_SKIP_MULTIPLATFORM=1  no second dockerd for multi-platform builds
#        STRATA_DEBIAN_URI=...        override the Debian archive URI
#
# Nothing is printed on stdout; progress goes to stderr. Uses the default
# socket /var/run/docker.sock (no DOCKER_HOST needed).
set -euo pipefail
exec 3>&1 1>&2   # everything (apt, docker, ...) to stderr

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STRATA_LOG_TAG=engine
# shellcheck source=scripts/engine-common.sh
. "$HERE/engine-common.sh"
need_root
take_lock engine
export DEBIAN_FRONTEND=noninteractive
T0=$SECONDS

mkdir -p "$STRATA_STATE_DIR" "$STRATA_CACHE_DIR"

# Package installs must never start services (Debian's docker.io would start
# a dockerd with iptables, docker-registry a registry with htpasswd auth on
# all interfaces). Use a policy-rc.d that denies starts while installing,
# unless the machine already has one.
OWN_POLICY=""
deny_service_starts() {
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# temporary, scripts/engine.sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    OWN_POLICY=1
  fi
}
restore_service_starts() {
  if [ -n "$OWN_POLICY" ]; then rm -f /usr/sbin/policy-rc.d; OWN_POLICY=""; fi
}
trap restore_service_starts EXIT

# binfmt_misc mounted before qemu-user-static is installed, so that its
# postinst registers the interpreters (see 2b).
mount_binfmt_misc() {
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
      || die "cannot mount binfmt_misc on /proc/sys/fs/binfmt_misc"
  fi
}
mount_binfmt_misc

# --------------------------------------------------------------------------
# 1. Packages from bookworm
# --------------------------------------------------------------------------
BOOKWORM_PKGS=(debootstrap busybox-static jq skopeo docker-registry dpkg-dev iptables curl ca-certificates git
               qemu-user-static binfmt-support openssl)
missing=()
for p in "${BOOKWORM_PKGS[@]}"; do pkg_installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing from bookworm: ${missing[*]}"
  deny_service_starts
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "bookworm packages present"
fi

# --------------------------------------------------------------------------
# 2. Docker Engine 26.1 + buildx from trixie, with a private sources list
#    and private lists dir so nothing else on the machine is upgraded.
# --------------------------------------------------------------------------
docker_pkgs_ok() {
  pkg_installed docker.io && pkg_installed docker-cli && pkg_installed docker-buildx || return 1
  case "$(dpkg-query -W -f='${Version}' docker.io)" in 26.1.*) ;; *) return 1 ;; esac
  case "$(dpkg-query -W -f='${Version}' docker-cli)" in 26.1.*) ;; *) return 1 ;; esac
}
if ! docker_pkgs_ok; then
  URI=$(debian_archive_uri)
  APT_DIR=$STRATA_STATE_DIR/apt
  mkdir -p "$APT_DIR/lists/partial"
  cat >"$APT_DIR/trixie-docker.list" <<EOF
deb [signed-by=$STRATA_KEYRING] $URI trixie main
deb [signed-by=$STRATA_KEYRING] $URI bookworm main
deb [signed-by=$STRATA_KEYRING] $URI bookworm-updates main
EOF
  APT_OPTS=(-o "Dir::Etc::SourceList=$APT_DIR/trixie-docker.list"
            -o Dir::Etc::SourceParts=/dev/null
            -o "Dir::State::Lists=$APT_DIR/lists"
            -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
            "${STRATA_APT_LEAN[@]}")
  log "installing docker.io, docker-cli, docker-buildx from trixie ($URI)"
  deny_service_starts
  apt-get -q "${APT_OPTS[@]}" update
  apt-get -y -q "${APT_OPTS[@]}" -o APT::Default-Release=bookworm --no-install-recommends \
    install docker.io/trixie docker-cli/trixie docker-buildx/trixie
  docker_pkgs_ok || die "docker.io/docker-cli 26.1 not installed after apt-get"
else
  log "docker.io $(dpkg-query -W -f='${Version}' docker.io), docker-buildx $(dpkg-query -W -f='${Version}' docker-buildx) present"
fi
restore_service_starts

# The 28.x client at /usr/local/bin/docker (first in PATH) must find the
# buildx plugin installed by docker-buildx in /usr/libexec/docker/cli-plugins.
docker buildx version >/dev/null 2>&1 \
  || die "'docker buildx version' fails ($(command -v docker)); is /usr/libexec/docker/cli-plugins/docker-buildx there?"

# --------------------------------------------------------------------------
# 2b. Other architectures: qemu-user-static through binfmt_misc, so arm64
#     steps and images run here (emulated). binfmt_misc is not mounted on a
#     fresh machine; the F flag (fix binary) lets containers use the
#     interpreter without seeing it in their rootfs.
# --------------------------------------------------------------------------
mount_binfmt_misc
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  log "registering qemu-aarch64 with binfmt_misc"
  update-binfmts --enable qemu-aarch64 || die "update-binfmts --enable qemu-aarch64 failed"
fi
grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
  || die "qemu-aarch64 is registered without the F flag: containers cannot run arm64 binaries"

# --------------------------------------------------------------------------
# 3. dockerd, contained: no IP forwarding, no iptables rules, FORWARD DROP.
# --------------------------------------------------------------------------
if docker_up; then
  log "dockerd already answering"
else
  sysctl -w net.ipv4.ip_forward=0 || log "warning: sysctl net.ipv4.ip_forward=0 failed"
  if command -v iptables >/dev/null 2>&1; then
    iptables -P FORWARD DROP || log "warning: 'iptables -P FORWARD DROP' failed (ignored)"
  else
    log "warning: iptables missing; FORWARD policy not set"
  fi
  pid=$(cat /var/run/docker.pid 2>/dev/null || true)
  if pid_matches "$pid" dockerd; then
    log "dockerd (pid $pid) running but not answering yet; waiting"
  else
    log "starting dockerd (log: $STRATA_DOCKERD_LOG)"
    # setsid + nohup + stdin from /dev/null: survives this script and its
    # caller's process group. Close fd 3 (our stdout) and 9 (our lock) so the
    # daemon neither holds a caller's pipe open nor keeps the lock taken.
    setsid nohup /usr/sbin/dockerd --iptables=false --ip-forward=false \
      </dev/null >>"$STRATA_DOCKERD_LOG" 2>&1 3>&- 9>&- &
  fi
  for _ in $(seq 1 60); do
    docker_up && break
    sleep 1
  done
  docker_up || { tail -n 30 "$STRATA_DOCKERD_LOG" >&2 || true; die "dockerd did not answer 'docker info' within 60 s"; }
  log "dockerd up: server $(docker version -f '{{.Server.Version}}')"
fi

# --------------------------------------------------------------------------
# 4. Local registry on 127.0.0.1:5000 with our own config (no auth).
# --------------------------------------------------------------------------
REG_CFG=$STRATA_STATE_DIR/registry.yml
REG_ROOT=$STRATA_STATE_DIR/registry
mkdir -p "$REG_ROOT"
new_cfg=$(cat <<EOF
# written by scripts/engine.sh
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REG_ROOT
  delete:
    enabled: true
http:
  addr: $STRATA_REGISTRY_ADDR
EOF
)
if [ ! -f "$REG_CFG" ] || [ "$(cat "$REG_CFG")" != "$new_cfg" ]; then
  printf '%s\n' "$new_cfg" >"$REG_CFG"
fi

# Debian's own docker-registry service (default config: htpasswd auth, all
# interfaces) must not run. systemd may not be running at all here.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  if systemctl is-enabled --quiet docker-registry 2>/dev/null || systemctl is-active --quiet docker-registry 2>/dev/null; then
    log "stopping and disabling Debian's docker-registry service"
    systemctl disable --now docker-registry || true
  fi
fi
for d in /proc/[0-9]*; do
  pid=${d#/proc/}
  if pid_matches "$pid" "docker-registry" && pid_matches "$pid" "/etc/docker/registry/config.yml"; then
    log "stopping Debian's default docker-registry (pid $pid)"
    kill "$pid" 2>/dev/null || true
  fi
done

if registry_up; then
  log "registry already answering on $STRATA_REGISTRY_ADDR"
else
  log "starting docker-registry on $STRATA_REGISTRY_ADDR (log: $STRATA_REGISTRY_LOG)"
  setsid nohup /usr/bin/docker-registry serve "$REG_CFG" \
    </dev/null >>"$STRATA_REGISTRY_LOG" 2>&1 3>&- 9>&- &
  echo $! >"$STRATA_STATE_DIR/registry.pid"
  for _ in $(seq 1 30); do
    registry_up && break
    sleep 0.5
  done
  registry_up || { tail -n 20 "$STRATA_REGISTRY_LOG" >&2 || true; die "registry did not answer on $STRATA_REGISTRY_ADDR"; }
fi

# --------------------------------------------------------------------------
# 4b. A second dockerd for multi-platform builds, with the containerd image
#     store. The classic store (the main dockerd) holds one platform per tag
#     and buildx's docker driver refuses any build for several platforms on
#     it, whatever the output. Switching the main dockerd's store would hide
#     every image already in it, so multi-platform builds go to this daemon
#     instead (socket $STRATA_MP_SOCKET). It pulls its bases and frontends
#     from the local registry. Its containers get a bridge of their own,
#     $STRATA_MP_BRIDGE, made here: a dockerd started with --bridge=none
#     deletes the interface docker0, the main dockerd's bridge.
# --------------------------------------------------------------------------
# make_tls: a CA, a server certificate for 127.0.0.1 and a client
# certificate (as the docker CLI reads them: DOCKER_CERT_PATH=$STRATA_TLS_DIR/client)
make_tls() {
  local d=$STRATA_TLS_DIR
  [ -s "$d/client/key.pem" ] && return 0
  log "making TLS certificates in $d"
  rm -rf "$d" && mkdir -p "$d/client" && chmod 0700 "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=strata test CA" \
    -keyout "$d/ca-key.pem" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$d/server-key.pem" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$d/server.ext"
  openssl x509 -req -days 3650 -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" \
    -CAcreateserial -extfile "$d/server.ext" -out "$d/server-cert.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=strata-client" \
    -keyout "$d/client/key.pem.new" -out "$d/client.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$d/client.ext"
  openssl x509 -req -days 3650 -in "$d/client.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" \
    -CAcreateserial -extfile "$d/client.ext" -out "$d/client/cert.pem" 2>/dev/null
  cp "$d/ca.pem" "$d/client/ca.pem"
  mv "$d/client/key.pem.new" "$d/client/key.pem"
}

if [ -z "${STRATA_SKIP_MULTIPLATFORM:-}" ]; then
  if ! ip link show "$STRATA_MP_BRIDGE" >/dev/null 2>&1; then
    log "creating bridge $STRATA_MP_BRIDGE ($STRATA_MP_BRIDGE_CIDR)"
    ip link add "$STRATA_MP_BRIDGE" type bridge
    ip addr add "$STRATA_MP_BRIDGE_CIDR" dev "$STRATA_MP_BRIDGE"
    ip link set "$STRATA_MP_BRIDGE" up
  fi
  make_tls
  if mp_docker_up && ! mp_tls_up; then
    # Started before it listened on TCP with TLS: restart it with the listener.
    pid=$(cat "$STRATA_MP_EXEC/docker.pid" 2>/dev/null || true)
    log "restarting the multi-platform dockerd (pid $pid) to add its TLS listener on $STRATA_MP_TLS_ADDR"
    if pid_matches "$pid" dockerd; then
      kill "$pid"
      for _ in $(seq 1 30); do pid_matches "$pid" dockerd || break; sleep 0.5; done
    fi
  fi
  if mp_docker_up; then
    log "multi-platform dockerd already answering on $STRATA_MP_SOCKET"
  else
    mkdir -p "$STRATA_MP_EXEC" "$STRATA_STATE_DIR/docker-mp"
    MP_CFG=$STRATA_STATE_DIR/daemon-mp.json
    printf '{"features": {"containerd-snapshotter": true}}\n' >"$MP_CFG"
    pid=$(cat "$STRATA_MP_EXEC/docker.pid" 2>/dev/null || true)
    if pid_matches "$pid" dockerd; then
      log "multi-platform dockerd (pid $pid) running but not answering yet; waiting"
    else
      log "starting the multi-platform dockerd on $STRATA_MP_SOCKET (log: $STRATA_MP_LOG)"
      setsid nohup /usr/sbin/dockerd --config-file "$MP_CFG" \
        --data-root "$STRATA_STATE_DIR/docker-mp" --exec-root "$STRATA_MP_EXEC" \
        --pidfile "$STRATA_MP_EXEC/docker.pid" -H "unix://$STRATA_MP_SOCKET" \
        -H "tcp://$STRATA_MP_TLS_ADDR" --tlsverify --tlscacert "$STRATA_TLS_DIR/ca.pem" \
        --tlscert "$STRATA_TLS_DIR/server-cert.pem" --tlskey "$STRATA_TLS_DIR/server-key.pem" \
        --bridge "$STRATA_MP_BRIDGE" --iptables=false --ip-forward=false --ip-masq=false \
        </dev/null >>"$STRATA_MP_LOG" 2>&1 3>&- 9>&- &
    fi
    for _ in $(seq 1 60); do
      mp_docker_up && break
      sleep 1
    done
    mp_docker_up || { tail -n 30 "$STRATA_MP_LOG" >&2 || true; die "the multi-platform dockerd did not answer within 60 s"; }
  fi
fi

# --------------------------------------------------------------------------
# 5. Base images.
# --------------------------------------------------------------------------
if [ -z "${STRATA_SKIP_BASE_IMAGES:-}" ]; then
  "$HERE/base-images.sh"
fi

log "engine ready in $((SECONDS - T0)) s: docker $(docker version -f '{{.Server.Version}}'), $(docker buildx version | awk '{print $1, $2}'), registry $STRATA_REGISTRY_ADDR"
