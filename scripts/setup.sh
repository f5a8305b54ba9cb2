#!/usr/bin/env bash
# Installs the Debian packages SSMKit builds against, when any is missing:
# FFTW 3 (libfftw3-dev), OpenBLAS + LAPACKE (libopenblas-dev, liblapacke-dev) and pkg-config.
# Safe to run repeatedly; does nothing when everything is present.
set -euo pipefail

packages=(libfftw3-dev libopenblas-dev liblapacke-dev pkg-config)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "setup: swift is not on PATH (SSMKit needs Swift 6.1 or later)" >&2; exit 1; }
