"""Finds and imports the official state-spaces/s4 code that scripts/peers/setup.sh checks out.

The official source is never copied into this repository: setup.sh clones state-spaces/s4 at a
fixed commit into .build/peers-src/s4 (ignored by git), and the peer scripts import its
models/s4/s4d.py (or the standalone models/s4/s4.py) from there, as the repository's own example.py
does (`from models.s4.s4d import S4D`, which in turn imports DropoutNd from the checkout's
src/models/nn). A different checkout can be named with `--s4-source DIR`.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
DEFAULT_S4_SOURCE = os.path.join(REPO, ".build", "peers-src", "s4")
S4_COMMIT = "e757cef57d89e448c413de7325ed5601aceaac13"


def add_s4_source_argument(parser):
    parser.add_argument("--s4-source", default=DEFAULT_S4_SOURCE, metavar="DIR",
                        help="checkout of state-spaces/s4 (default: .build/peers-src/s4, made by "
                             "`bash scripts/peers/setup.sh`)")


def s4_commit(directory):
    """The checkout's commit, or None when it is not a git work tree."""
    try:
        run = subprocess.run(["git", "-C", directory, "rev-parse", "HEAD"], capture_output=True, text=True)
    except OSError:
        return None
    return run.stdout.strip() or None


def load_s4d(directory=DEFAULT_S4_SOURCE):
    """Imports models/s4/s4d.py of the checkout at `directory` and returns the module (S4D, S4DKernel)."""
    return _load(directory, "s4d")


def load_s4(directory=DEFAULT_S4_SOURCE):
    """Imports models/s4/s4.py of the checkout at `directory` (the standalone S4 block: S4Block with
    FFTConv and SSMKernelDPLR) and returns the module. It needs scipy and pytorch_lightning."""
    return _load(directory, "s4")


def _load(directory, name):
    directory = os.path.abspath(directory)
    path = os.path.join(directory, "models", "s4", name + ".py")
    if not os.path.isfile(path):
        raise SystemExit(f"{path} is missing: run `bash scripts/peers/setup.sh` (or pass --s4-source DIR, "
                         "a checkout of state-spaces/s4)")
    if directory not in sys.path:
        sys.path.insert(0, directory)
    import importlib
    module = importlib.import_module("models.s4." + name)  # the official file, imported where it lies
    if os.path.abspath(module.__file__) != path:
        raise SystemExit(f"imported {module.__file__}, not {path}: another `models` package is on sys.path")
    commit = s4_commit(directory)
    if commit and commit != S4_COMMIT:
        print(f"note: {directory} is at {commit[:12]}, not the pinned {S4_COMMIT[:12]}", file=sys.stderr)
    return module
