#!/usr/bin/env bash
# Installs the Debian packages SSMKit builds against, when any is missing:
# FFTW 3 (libfftw3-dev), OpenBLAS + LAPACKE (libopenblas-dev, liblapacke-dev), pkg-config, and
# BLIS (libblis4-serial), which SSMKit loads at run time for its GEMMs on CPUs that OpenBLAS
# does not recognize; and OpenMPI (libopenmpi-dev, openmpi-bin) for the data-parallel tests
# (SSMKit loads libmpi at run time and builds without it); valgrind, whose heap count checks
# that a training step allocates nothing. Safe to run repeatedly; does
# nothing when everything is present.
#
#     bash scripts/setup.sh            # the build's packages
#     bash scripts/setup.sh --numpy    # and python3 with numpy (the demo's .npy files)
set -euo pipefail

packages=(libfftw3-dev libopenblas-dev liblapacke-dev pkg-config libblis4-serial libopenmpi-dev openmpi-bin iproute2 valgrind)
[ "${1:-}" = "--numpy" ] && want_numpy=1 || want_numpy=0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
updated=0
apt_install() {
  [ "$updated" -eq 1 ] || { $sudo apt-get update -qq; updated=1; }
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt_install "${missing[@]}"
fi
command -v swift >/dev/null || { echo "setup: swift is not on PATH (SSMKit needs Swift 6.1 or later)" >&2; exit 1; }

if [ "$want_numpy" -eq 1 ] && ! python3 -c "import numpy" 2>/dev/null; then
  command -v python3 >/dev/null || { echo "setup: installing python3"; apt_install python3; }
  if ! python3 -c "import numpy" 2>/dev/null; then
    echo "setup: installing numpy"
    apt_install python3-numpy || true
  fi
  # A python3 that is not Debian's (pyenv, a venv) does not see python3-numpy.
  if ! python3 -c "import numpy" 2>/dev/null; then
    python3 -m pip install -q numpy || {
      echo "setup: could not install numpy for $(command -v python3); install it (pip install numpy) and rerun" >&2
      exit 1
    }
  fi
fi
