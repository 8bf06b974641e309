#!/usr/bin/env bash
# Installs the system programs some tests use as independent peers or tools: baresip (a TLS+SRTP SIP UA),
# podman + runc + debootstrap (to build and run the worker image). Needs root and apt; otherwise it only says
# what is missing, and the tests that need those programs skip with that reason.
set -euo pipefail
packages=(baresip-core podman runc debootstrap uidmap)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: not installing ${missing[*]} (needs root and apt); tests that need them will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
