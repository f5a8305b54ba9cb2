"""Helpers for the picture scripts: safetensors files read and written with numpy alone, and
`ssm eval` / `ssm bench` runs.

The safetensors format is an 8-byte little-endian header length, a JSON header naming each
tensor's dtype, shape and byte range, then the raw little-endian data. Complex tensors travel as
real tensors with a last axis of 2 (real, imaginary), as the evaluation contract
(Sources/SSMKit/SSMKit.docc/EvalContract.md) says.
"""
import json
import os
import struct
import subprocess
import tempfile

import numpy as np

_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}
_NAMES = {np.dtype(v).str: k for k, v in _DTYPES.items()}


def write_safetensors(path, tensors):
    """Writes {name: array} to `path` (arrays are stored little-endian, C order)."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)
        data = array.tobytes()
        header[name] = {"dtype": _NAMES[array.dtype.str], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)


def read_safetensors(path):
    """Returns {name: array} of the tensors in `path`."""
    with open(path, "rb") as f:
        raw = f.read()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + size])
    header.pop("__metadata__", None)
    base = 8 + size
    out = {}
    for name, entry in header.items():
        start, end = entry["data_offsets"]
        dtype = np.dtype(_DTYPES[entry["dtype"]]).newbyteorder("<")
        out[name] = np.frombuffer(raw[base + start:base + end], dtype=dtype).reshape(entry["shape"]).copy()
    return out


def as_real(z):
    """A complex array as a real one with a last axis of 2 (real, imaginary)."""
    z = np.asarray(z)
    return np.stack([z.real, z.imag], axis=-1)


def as_complex(x):
    """The inverse of as_real."""
    x = np.asarray(x)
    return x[..., 0] + 1j * x[..., 1]


class SSM:
    """Runs one `ssm` binary; every number a picture plots comes from one of these runs."""

    def __init__(self, binary, workdir=None):
        self.binary = os.path.abspath(binary)
        self.workdir = workdir or tempfile.mkdtemp(prefix="ssm-pictures-")
        self.count = 0

    def eval(self, op, tensors, *options):
        """`ssm eval OP --input IN --output OUT options...` on {name: array}; returns OUT's tensors."""
        self.count += 1
        src = os.path.join(self.workdir, f"{self.count:03d}-{op}-in.safetensors")
        dst = os.path.join(self.workdir, f"{self.count:03d}-{op}-out.safetensors")
        args = [self.binary, "eval", op, "--output", dst] + [str(o) for o in options]
        if tensors is not None:
            write_safetensors(src, tensors)
            args += ["--input", src]
        run = subprocess.run(args, capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(f"ssm eval {op} failed ({run.returncode}): {run.stderr.strip()}")
        return read_safetensors(dst)

    def bench(self, *args):
        """`ssm bench ARGS --json`; returns its JSON rows."""
        run = subprocess.run([self.binary, "bench"] + [str(a) for a in args] + ["--json"],
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(f"ssm bench {' '.join(map(str, args))} failed: {run.stderr.strip()}")
        return [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]


def cpu_model():
    """The CPU model name lscpu reports (with the core count), for figure footnotes."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, env=dict(os.environ, LC_ALL="C")).stdout
    except OSError:
        return "unknown CPU"
    fields = {}
    for line in text.splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            fields.setdefault(key.strip(), value.strip())
    name = fields.get("Model name", "unknown CPU")
    if "CPU family" in fields and "Model" in fields:
        name += f" (family {fields['CPU family']}, model {fields['Model']})"
    cpus = fields.get("CPU(s)")
    return f"{name}, {cpus} CPUs" if cpus else name


def picture_arguments(doc):
    """The command line every picture script takes (--ssm BINARY -o PNG), and pyplot with the
    file-only Agg backend: returns (args, pyplot)."""
    import argparse
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ssm", required=True, help="the ssm binary")
    parser.add_argument("-o", "--output", required=True, help="PNG file to write")
    args = parser.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return args, plt
