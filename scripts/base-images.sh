#!/usr/bin/env bash
# Make the local base images (no Docker Hub here) with debootstrap and
# `docker import`. Only images missing from the local store are made; the
# rootfs tarballs are cached under /var/cache/strata-engine, so remaking an
# image (e.g. after `docker rmi`) takes seconds.
#
# Each stand-in is as hostile as the image it stands for: what a build
# could wrongly rely on (an interpreter's path, a tool, a free uid) is
# absent or taken where it is in the real image.
#
# Images:
#   strata.local/debian:bookworm                debootstrap --variant=minbase
#   strata.local/python:3.11-slim-bookworm      python:3.11-slim-bookworm: Python in /usr/local
#                                               only (see below), no Debian python3 package
#   strata.local/busybox:1.36                   busybox-static, no useradd/adduser/addgroup
#   strata.local/micromamba:stand-in            only /usr/bin/micromamba, a recording stand-in
#   strata.local/cuda:12.1.1-base-ubuntu22.04   nvidia/cuda:12.1.1-base-ubuntu22.04: another
#                                               userland (bullseye), no Python, no tini,
#                                               ubuntu at 1000:1000, NVIDIA env (see below)
#   strata.local/python:3.11-bookworm           old name, kept for existing users: made as an
#   strata.local/cuda:12.1-runtime-ubuntu22.04  alias (tag) of the faithful image above it
# Multi-platform (arm64 runs under qemu-user-static, see scripts/engine.sh):
#   strata.local/debian:bookworm-arm64          debootstrap --variant=minbase --arch=arm64
#                                               (second stage under qemu)
#   strata.local/busybox:1.36-arm64             the busybox stand-in from Debian's
#                                               arm64 busybox-static
# and pushes them to the local registry, each as an index of both platforms
# and as the single-platform images in it (per-architecture bases):
#   127.0.0.1:5000/strata/debian:bookworm       strata.local/debian:bookworm (linux/amd64)
#                                               + strata.local/debian:bookworm-arm64
#   127.0.0.1:5000/strata/debian-amd64:bookworm
#   127.0.0.1:5000/strata/debian-arm64:bookworm
#   127.0.0.1:5000/strata/busybox:1.36          strata.local/busybox:1.36 (linux/amd64)
#                                               + strata.local/busybox:1.36-arm64
#   127.0.0.1:5000/strata/busybox-amd64:1.36
#   127.0.0.1:5000/strata/busybox-arm64:1.36
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
IMG_DEBIAN_ARM64=strata.local/debian:bookworm-arm64
IMG_PYTHON=strata.local/python:3.11-slim-bookworm
IMG_BUSYBOX=strata.local/busybox:1.36
IMG_CUDA=strata.local/cuda:12.1.1-base-ubuntu22.04
# Old names (tags of the faithful images; made only when missing).
IMG_PYTHON_OLD=strata.local/python:3.11-bookworm
IMG_CUDA_OLD=strata.local/cuda:12.1-runtime-ubuntu22.04

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
mktmp() { NEWTMP=$(mktemp -d "${TMPDIR:-/var/tmp}/strata-rootfs.XXXXXX"); TMPDIRS+=("$NEWTMP"); }

# Each import records the image id under $STRATA_STATE_DIR, stamped with
# $STAND_IN: an image this version did not make (an older, kinder stand-in
# under the same name) is made again.
STAND_IN=2
stand_in_stamp() { printf '%s/stand-in-v%s-%s.id' "$STRATA_STATE_DIR" "$STAND_IN" "$(printf '%s' "$1" | tr '/:' '__')"; }
have_image() {
  [ -z "${STRATA_REBUILD:-}" ] || return 1
  local id
  id=$(docker image inspect -f '{{.Id}}' "$1" 2>/dev/null) || return 1
  [ "$id" = "$(cat "$(stand_in_stamp "$1")" 2>/dev/null)" ]
}

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
# dir must be registered for cleanup in this shell.) SUITE=bullseye picks
# another Debian release (default bookworm); ARCH=arm64 another architecture:
# debootstrap --foreign unpacks it, and its second stage runs in a chroot
# under qemu-user-static (binfmt_misc with the F flag, see scripts/engine.sh).
cached_debootstrap() {
  local name=$1 suite=${SUITE:-bookworm} arch=${ARCH:-}; shift
  if [ -n "$arch" ] && [ "$arch" != "$(dpkg --print-architecture)" ]; then
    set -- --arch="$arch" --foreign "$@"
  else
    arch=""
  fi
  local tarball=$STRATA_CACHE_DIR/rootfs-$name.tar
  [ -n "${STRATA_REFRESH:-}" ] && rm -f "$tarball"
  if [ ! -s "$tarball" ]; then
    local uri dir t0=$SECONDS
    uri=$(debian_archive_uri)
    mktmp; dir=$NEWTMP
    log "debootstrap $name ($suite $*) from $uri ..."
    debootstrap --variant=minbase "$@" "$suite" "$dir" "$uri" >&2 \
      || { tail -n 30 "$dir/debootstrap/debootstrap.log" 2>/dev/null >&2 || true; die "debootstrap $name failed"; }
    if [ -n "$arch" ]; then
      grep -q '^flags: .*F' "/proc/sys/fs/binfmt_misc/qemu-$(qemu_arch "$arch")" 2>/dev/null \
        || die "$arch binaries do not run here (qemu-$(qemu_arch "$arch") not registered with binfmt_misc's F flag): run scripts/engine.sh"
      log "debootstrap $name: second stage under qemu ..."
      chroot "$dir" /debootstrap/debootstrap --second-stage >&2 \
        || { tail -n 30 "$dir/debootstrap/debootstrap.log" 2>/dev/null >&2 || true; die "debootstrap $name (second stage) failed"; }
      for m in proc sys dev/pts dev; do umount -l "$dir/$m" 2>/dev/null || true; done
      [ "$(chroot "$dir" dpkg --print-architecture)" = "$arch" ] || die "debootstrap $name made no $arch userland"
    fi
    trim_rootfs "$dir"
    tar -C "$dir" --numeric-owner -cf "$tarball.tmp" .
    mv -f "$tarball.tmp" "$tarball"
    rm -rf --one-file-system "$dir"
    log "cached $tarball ($((SECONDS - t0)) s)"
  fi
  TB=$tarball
}

qemu_arch() {  # qemu_arch DEBIAN_ARCH -> the name qemu-user-static registers
  case "$1" in arm64) echo aarch64 ;; *) echo "$1" ;; esac
}

import_tar() {  # import_tar TARBALL IMAGE [--change ...]
  local tarball=$1 image=$2; shift 2
  log "docker import $image"
  docker import "$@" "$tarball" "$image" >/dev/null
  mkdir -p "$STRATA_STATE_DIR"
  docker image inspect -f '{{.Id}}' "$image" >"$(stand_in_stamp "$image")"
}

# --- strata.local/debian:bookworm ----------------------------------------
if have_image "$IMG_DEBIAN"; then
  log "$IMG_DEBIAN present"
else
  cached_debootstrap debian-bookworm-minbase; tb=$TB
  import_tar "$tb" "$IMG_DEBIAN" --change "$PATH_ENV" --change 'CMD ["bash"]'
fi

# --- strata.local/debian:bookworm-arm64 ----------------------------------
# The same minbase userland for arm64, from the same Debian archive.
if have_image "$IMG_DEBIAN_ARM64"; then
  log "$IMG_DEBIAN_ARM64 present"
else
  ARCH=arm64 cached_debootstrap debian-bookworm-minbase-arm64; tb=$TB
  import_tar "$tb" "$IMG_DEBIAN_ARM64" --platform linux/arm64 --change "$PATH_ENV" --change 'CMD ["bash"]'
fi

# --- strata.local/python:3.11-slim-bookworm ------------------------------
# Stands in for python:3.11-slim-bookworm, whose CPython is built from source
# into /usr/local: Debian's python3.11 relocated there. Faithful:
#   - the interpreter is /usr/local/bin/python3.11 (python3, python, pip,
#     pip3 next to it), the stdlib /usr/local/lib/python3.11, pip in
#     /usr/local/lib/python3.11/site-packages; a venv's pyvenv.cfg says
#     `home = /usr/local/bin` and its bin/python links there;
#   - no /usr/bin/python3 and no python3 package in dpkg's status (an apt
#     step that needs Debian's python3, e.g. supervisor, installs it);
#   - ENV PATH, LANG=C.UTF-8, PYTHON_VERSION; CMD ["python3"].
# Not faithful: the interpreter is Debian's 3.11.2 build (prefix found from
# its own location, no PYTHONHOME), statically linked to libpython (the
# official one uses /usr/local/lib/libpython3.11.so); ensurepip's wheels stay
# in /usr/share/python-wheels, where that build looks for them.
relocate_python() {  # relocate_python ROOTFS
  local r=$1 py=python3.11 pkgs p
  mkdir -p "$r/usr/local/bin" "$r/usr/local/lib/$py/site-packages" "$r/var/tmp/strata-keep"
  cp -a "$r/usr/bin/$py" "$r/usr/local/bin/$py"
  cp -a "$r/usr/lib/$py/." "$r/usr/local/lib/$py/"
  rm -f "$r/usr/local/lib/$py/sitecustomize.py"   # a link into /etc/python3.11
  cp -a "$r/usr/lib/python3/dist-packages/." "$r/usr/local/lib/$py/site-packages/"
  # Debian's site module (frozen into the binary) reads dist-packages only:
  # a .pth there adds upstream CPython's site-packages.
  mkdir -p "$r/usr/local/lib/$py/dist-packages"
  echo "import site; site.addsitedir('/usr/local/lib/$py/site-packages')" \
    >"$r/usr/local/lib/$py/dist-packages/strata-site-packages.pth"
  cp -a "$r/usr/share/python-wheels" "$r/var/tmp/strata-keep/"
  pkgs=$(chroot "$r" dpkg-query -W -f '${Package}\n' | grep -E '^(lib)?python3')
  # shellcheck disable=SC2086
  chroot "$r" dpkg --purge $pkgs >&2
  mv "$r/var/tmp/strata-keep/python-wheels" "$r/usr/share/python-wheels"
  rmdir "$r/var/tmp/strata-keep"
  ln -sf "$py" "$r/usr/local/bin/python3"
  ln -sf python3 "$r/usr/local/bin/python"
  for p in pip pip3 pip3.11; do
    printf '#!/usr/local/bin/%s\nimport sys\nfrom pip._internal.cli.main import main\nsys.exit(main())\n' "$py" >"$r/usr/local/bin/$p"
    chmod 0755 "$r/usr/local/bin/$p"
  done
  [ ! -e "$r/usr/bin/python3" ] || die "python stand-in still has /usr/bin/python3"
  chroot "$r" /usr/local/bin/python3 -c 'import sys, ssl, sqlite3, venv; assert sys.prefix == "/usr/local", sys.prefix' \
    || die "relocated python does not run"
}
PY_INCLUDE=--include=python3,python3-pip,python3-venv
if have_image "$IMG_PYTHON"; then
  log "$IMG_PYTHON present"
else
  tb=$STRATA_CACHE_DIR/rootfs-python-slim-standin.tar
  cached_debootstrap python-bookworm "$PY_INCLUDE"; pytb=$TB
  if [ ! -s "$tb" ] || [ "$tb" -ot "$pytb" ]; then
    mktmp; r=$NEWTMP
    tar -C "$r" --numeric-owner -xf "$pytb"
    relocate_python "$r"
    tar -C "$r" --numeric-owner -cf "$tb.tmp" .
    mv -f "$tb.tmp" "$tb"
  fi
  import_tar "$tb" "$IMG_PYTHON" --change "$PATH_ENV" --change 'CMD ["python3"]' \
    --change 'ENV LANG=C.UTF-8' --change 'ENV PYTHON_VERSION=3.11.2'
fi

# --- strata.local/busybox:1.36 -------------------------------------------
# /bin/busybox from busybox-static + applet links, root-only passwd/group,
# /tmp 1777. No user-management applets: stands in for bases without useradd.
# busybox_rootfs TARBALL BUSYBOX: makes the stand-in's rootfs around the
# busybox binary BUSYBOX (applet list from the host's /bin/busybox: the
# same Debian version, so the same applets).
busybox_rootfs() {
  local tb=$1 bb=$2 BB_LIST=/bin/busybox
  [ -n "${STRATA_REFRESH:-}" ] && rm -f "$tb"
  if [ ! -s "$tb" ]; then
    [ -x /bin/busybox ] || die "/bin/busybox missing (package busybox-static)"
    mktmp; r=$NEWTMP
    mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,root,home,var/tmp,tmp,dev,proc,sys}
    chmod 1777 "$r/tmp" "$r/var/tmp"
    chmod 700 "$r/root"
    cp "$bb" "$r/bin/busybox"
    # applet list with install paths (bin/sh, usr/bin/awk, ...)
    "$BB_LIST" --list-full | while read -r path; do
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
}
if have_image "$IMG_BUSYBOX"; then
  log "$IMG_BUSYBOX present"
else
  tb=$STRATA_CACHE_DIR/rootfs-busybox.tar
  busybox_rootfs "$tb" /bin/busybox
  import_tar "$tb" "$IMG_BUSYBOX" --change "$PATH_ENV" --change 'CMD ["/bin/sh"]'
fi

# --- strata.local/busybox:1.36-arm64 -------------------------------------
# The same stand-in around Debian bookworm's arm64 busybox-static, fetched
# with a private apt state (the machine's dpkg architectures stay as they
# are) and cached.
IMG_BUSYBOX_ARM64=strata.local/busybox:1.36-arm64
if have_image "$IMG_BUSYBOX_ARM64"; then
  log "$IMG_BUSYBOX_ARM64 present"
else
  tb=$STRATA_CACHE_DIR/rootfs-busybox-arm64.tar
  deb=$STRATA_CACHE_DIR/busybox-static-arm64.deb
  if [ ! -s "$tb" ] || [ -n "${STRATA_REFRESH:-}" ]; then
    if [ ! -s "$deb" ]; then
      APT_DIR=$STRATA_STATE_DIR/apt-arm64
      mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/archives/partial"
      printf 'deb [arch=arm64 signed-by=%s] %s bookworm main\n' "$STRATA_KEYRING" "$(debian_archive_uri)" >"$APT_DIR/sources.list"
      ARM_OPTS=(-o "Dir::Etc::SourceList=$APT_DIR/sources.list" -o Dir::Etc::SourceParts=/dev/null
                -o "Dir::State::Lists=$APT_DIR/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
                -o APT::Architecture=arm64 -o APT::Architectures::=arm64 "${STRATA_APT_LEAN[@]}")
      log "fetching busybox-static:arm64 from bookworm"
      apt-get -q "${ARM_OPTS[@]}" update
      mktmp; d=$NEWTMP
      (cd "$d" && apt-get -q "${ARM_OPTS[@]}" download busybox-static:arm64) || die "apt-get download busybox-static:arm64 failed"
      mv -f "$d"/busybox-static_*_arm64.deb "$deb"
    fi
    mktmp; x=$NEWTMP
    dpkg-deb -x "$deb" "$x"
    [ -f "$x/bin/busybox" ] || die "$deb has no /bin/busybox"
    file_arch=$(od -An -j18 -N2 -tu2 "$x/bin/busybox" | tr -d ' ')
    [ "$file_arch" = 183 ] || die "$deb's /bin/busybox is not an aarch64 ELF (e_machine $file_arch)"
    busybox_rootfs "$tb" "$x/bin/busybox"
  fi
  import_tar "$tb" "$IMG_BUSYBOX_ARM64" --platform linux/arm64 --change "$PATH_ENV" --change 'CMD ["/bin/sh"]'
fi

# --- strata.local/cuda:12.1.1-base-ubuntu22.04 ---------------------------
# Stands in for nvidia/cuda:12.1.1-base-ubuntu22.04 (FROM ubuntu:22.04, the
# CUDA runtime and compat packages, the env below). Faithful:
#   - another userland than the CPU bases: Debian bullseye minbase (glibc
#     2.31, older than bookworm's 2.36, as Ubuntu 22.04's 2.35 is): a binary
#     built on bookworm may not run here;
#   - no Python, no tini, no supervisor: only what minbase has;
#   - uid/gid 1000 taken by `ubuntu` (home /home/ubuntu), as in Ubuntu
#     24.04-based images: harsher than 22.04, for the user policy's clash;
#   - the image config's env: NVARCH, NVIDIA_REQUIRE_CUDA, NV_CUDA_CUDART_VERSION,
#     NV_CUDA_COMPAT_PACKAGE, CUDA_VERSION, PATH with /usr/local/nvidia/bin and
#     /usr/local/cuda/bin first, LD_LIBRARY_PATH, NVIDIA_VISIBLE_DEVICES,
#     NVIDIA_DRIVER_CAPABILITIES; /etc/ld.so.conf.d/nvidia.conf, the
#     NGC-DL-CONTAINER-LICENSE file; no ENTRYPOINT, CMD ["bash"].
# Not faithful: no CUDA libraries (nothing here runs on a GPU), an apt
# userland named Debian, and NVIDIA_REQUIRE_CUDA's driver list shortened
# (from NVIDIA's published Dockerfile for 12.1.1, as remembered).
CUDA_ENV=(
  'ENV NVARCH=x86_64'
  'ENV NVIDIA_REQUIRE_CUDA="cuda>=12.1 brand=tesla,driver>=470,driver<471 brand=unknown,driver>=470,driver<471 brand=nvidia,driver>=470,driver<471 brand=geforce,driver>=470,driver<471 brand=quadro,driver>=470,driver<471 brand=titan,driver>=470,driver<471 brand=tesla,driver>=525,driver<526"'
  'ENV NV_CUDA_CUDART_VERSION=12.1.105-1'
  'ENV NV_CUDA_COMPAT_PACKAGE=cuda-compat-12-1'
  'ENV CUDA_VERSION=12.1.1'
  'ENV PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  'ENV LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64'
  'ENV NVIDIA_VISIBLE_DEVICES=all'
  'ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility'
)
if have_image "$IMG_CUDA"; then
  log "$IMG_CUDA present"
else
  tb=$STRATA_CACHE_DIR/rootfs-cuda-base-standin.tar
  SUITE=bullseye cached_debootstrap debian-bullseye-minbase; btb=$TB
  if [ ! -s "$tb" ] || [ "$tb" -ot "$btb" ]; then
    mktmp; r=$NEWTMP
    tar -C "$r" --numeric-owner -xf "$btb"
    chroot "$r" /usr/sbin/groupadd -g 1000 ubuntu
    chroot "$r" /usr/sbin/useradd -m -u 1000 -g 1000 -s /bin/bash -c Ubuntu ubuntu
    chroot "$r" /usr/bin/id ubuntu >&2
    rm -f "$r"/etc/passwd- "$r"/etc/group- "$r"/etc/shadow- "$r"/etc/gshadow-
    printf '/usr/local/nvidia/lib\n/usr/local/nvidia/lib64\n' >"$r/etc/ld.so.conf.d/nvidia.conf"
    printf 'Stand-in for the NVIDIA Deep Learning Container License file.\n' >"$r/NGC-DL-CONTAINER-LICENSE"
    for bad in usr/bin/python3 usr/local/bin/python3 usr/bin/tini; do
      [ ! -e "$r/$bad" ] || die "CUDA stand-in has /$bad"
    done
    tar -C "$r" --numeric-owner -cf "$tb.tmp" .
    mv -f "$tb.tmp" "$tb"
  fi
  changes=()
  for e in "${CUDA_ENV[@]}"; do changes+=(--change "$e"); done
  import_tar "$tb" "$IMG_CUDA" "${changes[@]}" --change 'CMD ["bash"]'
fi

# --- old names: aliases of the faithful images ---------------------------
for pair in "$IMG_PYTHON_OLD=$IMG_PYTHON" "$IMG_CUDA_OLD=$IMG_CUDA"; do
  old=${pair%%=*}; new=${pair#*=}
  # Always re-tagged: the old name is never a kinder image than the new one.
  docker tag "$new" "$old"
done

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

# --- multi-platform indexes in the local registry ------------------------
# push_index REPO TAG AMD64_IMAGE ARM64_IMAGE: pushes each image as
# REPO-ARCH:TAG, then an index of both as REPO:TAG (docker buildx imagetools
# create: the classic store cannot hold an index). Tag, push, untag: no
# 127.0.0.1:5000/... tag stays in the local store, so tests really resolve
# it through the registry. (skopeo 1.9's docker-daemon: transport is refused
# by Docker 26: "client version 1.22 is too old".) Stamped with both image
# ids: skipped while the registry holds the index of these images.
push_index() {
  local repo=$1 tag=$2 amd64=$3 arm64=$4 ids stamp pair arch img ref push_ok
  local index=$STRATA_REGISTRY_ADDR/$repo:$tag
  ids="$(docker image inspect -f '{{.Id}}' "$amd64") $(docker image inspect -f '{{.Id}}' "$arm64")"
  stamp=$STRATA_STATE_DIR/pushed-${repo##*/}-index.id
  if [ -z "${STRATA_REBUILD:-}" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$ids" ] \
     && skopeo inspect --raw --tls-verify=false "docker://$index" >/dev/null 2>&1; then
    log "$index (amd64 + arm64) present in registry"
    return
  fi
  for pair in "amd64=$amd64" "arm64=$arm64"; do
    arch=${pair%%=*}; img=${pair#*=}
    ref=$STRATA_REGISTRY_ADDR/$repo-$arch:$tag
    log "pushing $img -> $ref"
    docker tag "$img" "$ref"
    push_ok=1
    docker push -q "$ref" >&2 || push_ok=""
    docker rmi "$ref" >/dev/null || true
    [ -n "$push_ok" ] || die "docker push $ref failed"
  done
  docker buildx imagetools create -t "$index" \
    "$STRATA_REGISTRY_ADDR/$repo-amd64:$tag" "$STRATA_REGISTRY_ADDR/$repo-arm64:$tag" >&2 \
    || die "docker buildx imagetools create $index failed"
  printf '%s\n' "$ids" >"$stamp"
}
if registry_up; then
  push_index strata/debian bookworm "$IMG_DEBIAN" "$IMG_DEBIAN_ARM64"
  push_index strata/busybox 1.36 "$IMG_BUSYBOX" "$IMG_BUSYBOX_ARM64"
else
  log "warning: registry $STRATA_REGISTRY_ADDR not answering; not pushing the strata/debian and strata/busybox indexes"
fi

log "base images ready"
