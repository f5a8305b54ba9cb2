#!/usr/bin/env bash
# Sets up what the PyTorch peer scripts in scripts/peers/ need, inside the repo's ignored .build/:
#
#   .build/peers-venv     a Python venv with torch, numpy, einops, safetensors and mambapy (from PyPI),
#                         and scipy and pytorch_lightning, which the official s4.py imports
#   .build/peers-src/s4   the official state-spaces/s4 source, checked out at $S4_COMMIT
#
#   bash scripts/peers/setup.sh            # both (each step is skipped when already in place)
#   bash scripts/peers/setup.sh venv       # only the venv
#   bash scripts/peers/setup.sh source     # only the s4 checkout
#
# Environment:
#   S4_GIT      a git directory (bare or not) to clone state-spaces/s4 from instead of
#               https://github.com/state-spaces/s4 (for a machine without github access)
#   TORCH_SPEC  the pip requirement for torch (default: torch). `pip install torch` from PyPI on
#               Linux is the CUDA build (~5 GB with its nvidia-* wheels); it runs on the CPU as is.
#               Where pip's find-links holds a CPU-only wheel, e.g. TORCH_SPEC='torch==2.13.0+cpu'
#               installs that one instead (~200 MB).
#   PYTHON      the Python that creates the venv (default: python3)
#
# The last lines printed are the venv's python and the s4 source directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.build/peers-venv"
S4_DIR="$ROOT/.build/peers-src/s4"
S4_URL="https://github.com/state-spaces/s4"
S4_COMMIT=e757cef57d89e448c413de7325ed5601aceaac13
PY="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch}"

venv_ready() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import torch, numpy, einops, safetensors, mambapy, scipy, pytorch_lightning' 2>/dev/null
}

step_venv() {
    if venv_ready; then
        echo "== venv $VENV is in place"
        return
    fi
    echo "== creating venv $VENV (torch is a large download; this takes several minutes)"
    mkdir -p "$ROOT/.build"
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q "$TORCH_SPEC"
    "$VENV/bin/python" -m pip install -q numpy einops safetensors mambapy scipy pytorch_lightning
    "$VENV/bin/python" - <<'PYEOF'
import torch, numpy, einops, safetensors, scipy, pytorch_lightning
from importlib.metadata import version
print("   torch", torch.__version__, "| numpy", numpy.__version__, "| einops", einops.__version__,
      "| safetensors", safetensors.__version__, "| mambapy", version("mambapy"),
      "| scipy", scipy.__version__, "| pytorch_lightning", pytorch_lightning.__version__,
      "| MKL:", torch.backends.mkl.is_available())
PYEOF
}

step_source() {
    if [ -d "$S4_DIR/.git" ] && [ "$(git -C "$S4_DIR" rev-parse HEAD 2>/dev/null)" = "$S4_COMMIT" ]; then
        echo "== $S4_DIR is at $S4_COMMIT"
        return
    fi
    if [ ! -d "$S4_DIR/.git" ]; then
        local from="${S4_GIT:-$S4_URL}"
        if [ -n "${S4_GIT:-}" ] && ! git -C "$S4_GIT" rev-parse --git-dir >/dev/null 2>&1; then
            echo "setup.sh: S4_GIT=$S4_GIT is not a git directory" >&2
            exit 1
        fi
        echo "== cloning $from into $S4_DIR"
        rm -rf "$S4_DIR"
        mkdir -p "$(dirname "$S4_DIR")"
        git clone -q --no-checkout "$from" "$S4_DIR"
    fi
    if ! git -C "$S4_DIR" cat-file -e "$S4_COMMIT^{commit}" 2>/dev/null; then
        git -C "$S4_DIR" fetch -q origin "$S4_COMMIT" || {
            echo "setup.sh: commit $S4_COMMIT is not in $(git -C "$S4_DIR" remote get-url origin)" >&2
            exit 1
        }
    fi
    git -C "$S4_DIR" -c advice.detachedHead=false checkout -q --detach "$S4_COMMIT"
    if [ ! -f "$S4_DIR/models/s4/s4d.py" ] || [ ! -d "$S4_DIR/src/models/nn" ]; then
        echo "setup.sh: $S4_DIR has no models/s4/s4d.py or src/models/nn after the checkout" >&2
        exit 1
    fi
    echo "== $S4_DIR checked out at $(git -C "$S4_DIR" log -1 --format='%h %cs %s')"
}

case "${1:-all}" in
    venv) step_venv ;;
    source) step_source ;;
    all) step_venv; step_source ;;
    *) echo "usage: $0 [all|venv|source]" >&2; exit 2 ;;
esac
[ "${1:-all}" = source ] || echo "$VENV/bin/python"
[ "${1:-all}" = venv ] || echo "$S4_DIR"
