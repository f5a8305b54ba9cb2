#!/usr/bin/env bash
# Creates the Python venv that scripts/plots/ uses, .build/plots-venv (inside the repo's ignored
# .build folder), with numpy and matplotlib from PyPI, unless it is already in place.
# Prints the venv's python path as its last line.
#
#   bash scripts/plots/setup.sh
#
# Environment: PYTHON, the Python that creates the venv (default: python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.build/plots-venv"
PY="${PYTHON:-python3}"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import numpy, matplotlib' 2>/dev/null; then
    :
else
    echo "== creating venv $VENV with numpy and matplotlib" >&2
    mkdir -p "$ROOT/.build"
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q numpy matplotlib >&2
fi
echo "$VENV/bin/python"
