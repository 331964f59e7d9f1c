#!/usr/bin/env bash
# Make the local base images (no Docker Hub here) with debootstrap and
# `docker import`. Only images missing from the local store are made; the
# rootfs tarballs are cached under /var/cache/strata-engine, so remaking an
# image (e.g. after `docker rmi`) takes seconds.
#
# Images:
#   strata.local/debian:bookworm                debootstrap --variant=minbase
#   strata.local/python:3.11-bookworm           minbase + python3, pip, venv
#   strata.local/busybox:1.36                   busybox-static, no useradd/adduser/addgroup
#   strata.local/micromamba:stand-in            only /usr/bin/micromamba, a recording stand-in
#   strata.local/cuda:12.1-runtime-ubuntu22.04  python rootfs + user ubuntu (1000:1000),
#                                               NVIDIA_REQUIRE_CUDA, CUDA_VERSION env
# and pushes strata.local/debian:bookworm to the local registry as
#   127.0.0.1:5000/strata/debian:bookworm
#
# Usage: scripts/base-images.sh           (as root; dockerd and registry up,
#                                         see scripts/engine.sh)
#   Env: STRATA_REBUILD=1   re-import every image (cached rootfs reused)
#        STRATA_REFRESH=1   also re-run debootstrap (drop the cached rootfs)
set -euo pipefail
exec 3>&1 1>&2

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STRATA_LOG_TAG=base-images
# shellcheck source=scripts/engine-common.sh
. "$HERE/engine-common.sh"
need_root
take_lock base-images
docker_up || die "docker does not answer; run scripts/engine.sh first"
mkdir -p "$STRATA_CACHE_DIR"

PATH_ENV='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
IMG_DEBIAN=strata.local/debian:bookworm
IMG_PYTHON=strata.local/python:3.11-bookworm
IMG_BUSYBOX=strata.local/busybox:1.36
IMG_CUDA=strata.local/cuda:12.1-runtime-ubuntu22.04
REG_DEBIAN=$STRATA_REGISTRY_ADDR/strata/debian:bookworm

TMPDIRS=()
cleanup() {
  local d
  for d in "${TMPDIRS[@]}"; do
    [ -d "$d" ] || continue
    # debootstrap may leave /proc or /sys mounted inside a failed target
    for m in proc sys dev/pts dev; do umount -l "$d/$m" 2>/dev/null || true; done
    rm -rf --one-file-system "$d"
  done
}
trap cleanup EXIT
mktmp() { NEWTMP=$(mktemp -d /var/tmp/strata-rootfs.XXXXXX); TMPDIRS+=("$NEWTMP"); }

have_image() { [ -z "${STRATA_REBUILD:-}" ] && docker image inspect "$1" >/dev/null 2>&1; }

# Trim a fresh debootstrap tree like Debian's docker images do.
trim_rootfs() {
  local r=$1
  rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin \
         "$r"/var/lib/apt/lists/* "$r"/var/log/*.log "$r"/var/log/apt/* \
         "$r"/tmp/* "$r"/var/tmp/* "$r"/root/.cache 2>/dev/null || true
  mkdir -p "$r/var/lib/apt/lists/partial"
  # no leftover host identity
  : >"$r/etc/hostname" 2>/dev/null || true
  rm -f "$r/etc/resolv.conf"
}

# cached_debootstrap NAME [--include=...]: sets TB to the path of a cached
# rootfs tarball, making it with debootstrap if missing. (No $(...): the temp
# dir must be registered for cleanup in this shell.)
cached_debootstrap() {
  local name=$1; shift
  local tarball=$STRATA_CACHE_DIR/rootfs-$name.tar
  [ -n "${STRATA_REFRESH:-}" ] && rm -f "$tarball"
  if [ ! -s "$tarball" ]; then
    local uri dir t0=$SECONDS
    uri=$(debian_archive_uri)
    mktmp; dir=$NEWTMP
    log "debootstrap $name ($*) from $uri ..."
    debootstrap --variant=minbase "$@" bookworm "$dir" "$uri" >&2 \
      || { tail -n 30 "$dir/debootstrap/debootstrap.log" 2>/dev/null >&2 || true; die "debootstrap $name failed"; }
    trim_rootfs "$dir"
    tar -C "$dir" --numeric-owner -cf "$tarball.tmp" .
    mv -f "$tarball.tmp" "$tarball"
    rm -rf --one-file-system "$dir"
    log "cached $tarball ($((SECONDS - t0)) s)"
  fi
  TB=$tarball
}

import_tar() {  # import_tar TARBALL IMAGE [--change ...]
  local tarball=$1 image=$2; shift 2
  log "docker import $image"
  docker import "$@" "$tarball" "$image" >/dev/null
}

# --- strata.local/debian:bookworm ----------------------------------------
if have_image "$IMG_DEBIAN"; then
  log "$IMG_DEBIAN present"
else
  cached_debootstrap debian-bookworm-minbase; tb=$TB
  import_tar "$tb" "$IMG_DEBIAN" --change "$PATH_ENV" --change 'CMD ["bash"]'
fi

# --- strata.local/python:3.11-bookworm -----------------------------------
PY_INCLUDE=--include=python3,python3-pip,python3-venv
if have_image "$IMG_PYTHON"; then
  log "$IMG_PYTHON present"
else
  cached_debootstrap python-bookworm "$PY_INCLUDE"; tb=$TB
  import_tar "$tb" "$IMG_PYTHON" --change "$PATH_ENV" --change 'CMD ["bash"]'
fi

# --- strata.local/busybox:1.36 -------------------------------------------
# /bin/busybox from busybox-static + applet links, root-only passwd/group,
# /tmp 1777. No user-management applets: stands in for bases without useradd.
if have_image "$IMG_BUSYBOX"; then
  log "$IMG_BUSYBOX present"
else
  tb=$STRATA_CACHE_DIR/rootfs-busybox.tar
  [ -n "${STRATA_REFRESH:-}" ] && rm -f "$tb"
  if [ ! -s "$tb" ]; then
    [ -x /bin/busybox ] || die "/bin/busybox missing (package busybox-static)"
    mktmp; r=$NEWTMP
    mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,root,home,var/tmp,tmp,dev,proc,sys}
    chmod 1777 "$r/tmp" "$r/var/tmp"
    chmod 700 "$r/root"
    cp /bin/busybox "$r/bin/busybox"
    # applet list with install paths (bin/sh, usr/bin/awk, ...)
    /bin/busybox --list-full | while read -r path; do
      name=${path##*/}
      case "$name" in
        busybox|adduser|addgroup|deluser|delgroup|useradd|groupadd|userdel|groupdel) continue ;;
      esac
      [ -e "$r/$path" ] || [ -L "$r/$path" ] || ln -s /bin/busybox "$r/$path"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
    printf 'root:x:0:\n' >"$r/etc/group"
    chmod 644 "$r/etc/passwd" "$r/etc/group"
    for bad in adduser addgroup useradd groupadd; do
      if find "$r" -name "$bad" | grep -q .; then die "busybox rootfs still has $bad"; fi
    done
    tar -C "$r" --numeric-owner --owner=0 --group=0 -cf "$tb.tmp" .
    mv -f "$tb.tmp" "$tb"
  fi
  import_tar "$tb" "$IMG_BUSYBOX" --change "$PATH_ENV" --change 'CMD ["/bin/sh"]'
fi

# --- strata.local/cuda:12.1-runtime-ubuntu22.04 --------------------------
# Stand-in for an NVIDIA CUDA base: python rootfs + pre-existing user
# ubuntu 1000:1000 with /home/ubuntu (as in Ubuntu 24.04 images).
if have_image "$IMG_CUDA"; then
  log "$IMG_CUDA present"
else
  tb=$STRATA_CACHE_DIR/rootfs-cuda-standin.tar
  cached_debootstrap python-bookworm "$PY_INCLUDE"; pytb=$TB
  if [ ! -s "$tb" ] || [ "$tb" -ot "$pytb" ]; then
    mktmp; r=$NEWTMP
    tar -C "$r" --numeric-owner -xf "$pytb"
    chroot "$r" /usr/sbin/groupadd -g 1000 ubuntu
    chroot "$r" /usr/sbin/useradd -m -u 1000 -g 1000 -s /bin/bash -c Ubuntu ubuntu
    chroot "$r" /usr/bin/id ubuntu >&2
    rm -f "$r"/etc/passwd- "$r"/etc/group- "$r"/etc/shadow- "$r"/etc/gshadow-
    tar -C "$r" --numeric-owner -cf "$tb.tmp" .
    mv -f "$tb.tmp" "$tb"
  fi
  import_tar "$tb" "$IMG_CUDA" --change "$PATH_ENV" --change 'CMD ["bash"]' \
    --change 'ENV NVIDIA_REQUIRE_CUDA=cuda>=12.1' \
    --change 'ENV CUDA_VERSION=12.1.1'
fi

# --- strata.local/micromamba:stand-in ------------------------------------
# Stand-in for mambaorg/micromamba (no conda channel is reachable here): an
# image holding only /usr/bin/micromamba, a POSIX sh script that accepts
# `create -y -n NAME [-c CH]... PKG...` and records the request under
# $MAMBA_ROOT_PREFIX/envs/NAME/conda-meta/requested. Used by the
# data-science example's tests, through a mirror.
IMG_MAMBA=strata.local/micromamba:stand-in
if have_image "$IMG_MAMBA"; then
  log "$IMG_MAMBA present"
else
  mktmp; r=$NEWTMP
  mkdir -p "$r/usr/bin"
  cat >"$r/usr/bin/micromamba" <<'SH'
#!/bin/sh
# micromamba stand-in for offline tests: records what it was asked to create.
set -eu
prefix=${MAMBA_ROOT_PREFIX:-/opt/conda}; cmd=""; name=""; pkgs=""
while [ $# -gt 0 ]; do
  case "$1" in
    --root-prefix=*) prefix=${1#--root-prefix=} ;;
    create|install) cmd=$1 ;;
    -y) ;;
    -n) shift; name=$1 ;;
    -c|-f) shift ;;
    --version) echo "1.5.10 (strata stand-in)"; exit 0 ;;
    *) pkgs="$pkgs $1" ;;
  esac
  shift
done
if [ "$cmd" != create ] || [ -z "$name" ]; then
  echo "micromamba stand-in: only 'create -n NAME' is supported" >&2; exit 2
fi
mkdir -p "$prefix/envs/$name/conda-meta"
echo "${pkgs# }" >"$prefix/envs/$name/conda-meta/requested"
echo "created environment $name:$pkgs"
SH
  chmod 0755 "$r/usr/bin/micromamba"
  tar -C "$r" --numeric-owner --owner=0 --group=0 -cf "$r.tar" .
  import_tar "$r.tar" "$IMG_MAMBA" --change 'CMD ["/usr/bin/micromamba", "--version"]'
  rm -f "$r.tar"
fi

# --- push strata.local/debian:bookworm to the local registry -------------
# Tag, push, untag: no 127.0.0.1:5000/... tag stays in the local store, so
# tests really resolve it through the registry. (skopeo 1.9's docker-daemon:
# transport is refused by Docker 26: "client version 1.22 is too old".)
if ! registry_up; then
  log "warning: registry $STRATA_REGISTRY_ADDR not answering; not pushing $REG_DEBIAN"
else
  local_id=$(docker image inspect -f '{{.Id}}' "$IMG_DEBIAN")
  stamp=$STRATA_STATE_DIR/pushed-debian.id
  if [ -z "${STRATA_REBUILD:-}" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$local_id" ] \
     && skopeo inspect --raw --tls-verify=false "docker://$REG_DEBIAN" >/dev/null 2>&1; then
    log "$REG_DEBIAN present in registry"
  else
    log "pushing $IMG_DEBIAN -> $REG_DEBIAN"
    docker tag "$IMG_DEBIAN" "$REG_DEBIAN"
    push_ok=1
    docker push -q "$REG_DEBIAN" >&2 || push_ok=""
    docker rmi "$REG_DEBIAN" >/dev/null || true
    [ -n "$push_ok" ] || die "docker push $REG_DEBIAN failed"
    printf '%s\n' "$local_id" >"$stamp"
  fi
fi

log "base images ready"
