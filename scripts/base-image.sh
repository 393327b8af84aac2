#!/usr/bin/env bash
# Build a Python base image without an image registry: debootstrap a minimal Debian bookworm
# (whose python3 is 3.11) with pip, venv and CA certificates, and `docker import` it.
#
# It stands in for python:3.11-slim where no registry can be reached: `python`, `python3`
# and `pip` are on PATH and pip may install into the system Python (bookworm's
# EXTERNALLY-MANAGED marker is removed, as the official python images have none).
#
#   scripts/base-image.sh                 # prints the image reference
#   K8SCO_BASE_IMAGE=$(scripts/base-image.sh | tail -n 1)
#
# Cached: nothing is done when the image exists; the root filesystem tarball is kept in
# $K8SCO_CACHE_DIR (default ~/.cache/k8sco, outside the repository) so a wiped engine
# re-imports it in seconds. Settings: K8SCO_BASE_TAG (default k8sco-base:py3.11),
# K8SCO_DEBIAN_MIRROR (default: the first Debian mirror in this machine's apt sources).
set -euo pipefail

tag=${K8SCO_BASE_TAG:-k8sco-base:py3.11}
cache=${K8SCO_CACHE_DIR:-${HOME:-/root}/.cache/k8sco}
tarball="$cache/base-bookworm-py3.tar"

if ! docker info >/dev/null 2>&1; then
  echo "base-image: no Docker engine answers; run scripts/docker-setup.sh first" >&2
  exit 1
fi
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi
mkdir -p "$cache"

if [ ! -s "$tarball" ]; then
  mirror=${K8SCO_DEBIAN_MIRROR:-}
  if [ -z "$mirror" ]; then
    # deb822 "URIs:" lines and one-line "deb URL suite" entries; skip the security archive.
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
                 /etc/apt/sources.list.d/*.sources 2>/dev/null \
             | sed -nE 's/^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)(https?:[^[:space:]]*\/debian\/?)([[:space:]].*)?$/\3/p' \
             | head -n 1 || true)
    mirror=${mirror:-http://deb.debian.org/debian}
  fi
  if ! command -v debootstrap >/dev/null 2>&1; then
    echo "base-image: installing debootstrap" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2 \
      || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2; }
  fi
  root="$cache/rootfs.$$"
  trap 'rm -rf "$root"' EXIT
  echo "base-image: debootstrap bookworm from $mirror (a few minutes)" >&2
  debootstrap --variant=minbase \
    --include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates \
    bookworm "$root" "$mirror" >&2
  security=${mirror%/debian*}/debian-security
  cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
SOURCES
  rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
  # Smaller and reproducible-ish: no package caches, lists or logs in the image.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
         "$root"/var/log/* "$root"/tmp/* "$root"/root/.cache
  tar --numeric-owner -C "$root" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi

docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  "$tarball" "$tag" >/dev/null
echo "$tag"
