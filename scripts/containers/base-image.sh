#!/usr/bin/env bash
# Build the local base image that stands in for python:3.11-slim-bookworm where Docker Hub is not
# reachable: a minimal Debian bookworm (debootstrap) with Python 3.11, venv and pip, the host's
# extra CA certificates trusted (pip inside a build then verifies TLS through the same proxy), and
# a `python` symlink. Skipped when the image exists; FORCE=1 rebuilds it.
#   scripts/containers/base-image.sh [IMAGE]     (default ragd-local/python:3.11-bookworm)
set -euo pipefail
IMAGE="${1:-${RAGD_BASE_IMAGE:-ragd-local/python:3.11-bookworm}}"
if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "ragd: base image $IMAGE present"; exit 0
fi
command -v debootstrap >/dev/null || { echo "ragd: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }

mirror() {  # the Debian mirror apt itself uses (deb822 or one-line sources)
  local m
  m=$(grep -hoE '^URIs: *\S+/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
  [[ -n "$m" ]] || m=$(grep -hoE '^deb +\S+/debian/? ' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}')
  echo "${m:-http://deb.debian.org/debian}"
}

ROOTFS=$(mktemp -d /tmp/ragd-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT
echo "ragd: debootstrap bookworm from $(mirror) into $ROOTFS"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
  bookworm "$ROOTFS" "$(mirror)" >/dev/null
ln -sf python3 "$ROOTFS/usr/bin/python"
# The host's local CAs (a TLS-inspecting proxy, a private registry): trusted inside, and pip told so.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
fi
chroot "$ROOTFS" update-ca-certificates >/dev/null
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$ROOTFS/etc/pip.conf"
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
tar -C "$ROOTFS" -c . | docker import \
  -c 'ENV LANG=C.UTF-8' -c 'CMD ["python3"]' - "$IMAGE" >/dev/null
echo "ragd: built $IMAGE"
