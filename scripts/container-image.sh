#!/usr/bin/env bash
# Builds the worker image with podman. Without a reachable registry, the Debian base image is made locally
# (debootstrap minbase bookworm, imported as localhost/debian:bookworm-slim) the first time.
# Usage: scripts/container-image.sh [TAG]   (default localhost/chime-dialout-worker:dev)
# BUILD_CA_BUNDLE: CA bundle pip trusts during the build (default: the system bundle).
set -euo pipefail
tag=${1:-localhost/chime-dialout-worker:dev}
base=localhost/debian:bookworm-slim
podman=(podman --runtime /usr/sbin/runc --cgroup-manager=cgroupfs)
cd "$(dirname "$0")/.."
if ! "${podman[@]}" image exists "$base"; then
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase bookworm "$rootfs" >/dev/null
  tar -C "$rootfs" -c . | "${podman[@]}" import - "$base" >/dev/null
fi
"${podman[@]}" build --quiet --format docker --network host --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
  --secret id=build_ca,src="${BUILD_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}" \
  --build-arg BASE="$base" -f media_worker/Dockerfile -t "$tag" . >/dev/null
echo "$tag"
