#!/usr/bin/env bash
# Installs the Debian 12 packages unplug builds and tests with (root or sudo).
# Skips apt entirely when everything is already there.
set -euo pipefail
# Usage: scripts/install-deps.sh [MORE_PACKAGES...]   (scripts/ref-venv.sh adds its own)
pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev libomp-dev libdnnl-dev libutf8proc-dev libjansson-dev libssl-dev libmicrohttpd-dev curl wrk python3 python3-pip python3-venv nginx-core iproute2 "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
