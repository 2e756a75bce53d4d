#!/usr/bin/env bash
# Installs the Debian packages convd needs to build and test, only those missing,
# so `make run` and `make test` work on a fresh Debian 12 machine.
set -euo pipefail

packages=(gcc make pkg-config libopenblas-dev libjansson-dev libmicrohttpd-dev libuv1-dev
          libcmocka-dev libcurl4-openssl-dev zlib1g-dev curl python3)
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing missing packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "error: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
