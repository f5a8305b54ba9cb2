#!/usr/bin/env python3
"""Loads an SSMKit checkpoint of an S4D digits model into PyTorch (the official s4d.py S4D layer,
scripts/peers/torch_s4d_model.py) with load_state_dict(strict=True), and reports its validation
accuracy on the digits data set beside the one `ssm train` reported.

  bash scripts/peers/setup.sh
  ssm train --task digits --checkpoint /tmp/digits --json
  .build/peers-venv/bin/python scripts/peers/torch_load_checkpoint.py /tmp/digits

The digits file is found in the repo (Sources/SSMTraining/Resources/digits.safetensors, or
data/digits.safetensors where it used to be) unless --data names one.
"""
import argparse
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, here)
import official  # noqa: E402

DIGITS = [os.path.join(official.REPO, "Sources", "SSMTraining", "Resources", "digits.safetensors"),
          os.path.join(official.REPO, "data", "digits.safetensors")]

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("checkpoint", help="directory that `ssm train --checkpoint DIR` wrote (holds model.safetensors)")
parser.add_argument("--data", help="digits.safetensors (default: the repo's copy)")
official.add_s4_source_argument(parser)
args = parser.parse_args()

import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from torch_s4d_model import S4DModel  # noqa: E402

data_path = args.data or next((p for p in DIGITS if os.path.isfile(p)), None)
if not data_path or not os.path.isfile(data_path):
    raise SystemExit(f"no digits data set: looked for {args.data or ' and '.join(DIGITS)}")
s4d = official.load_s4d(args.s4_source)

path = os.path.join(args.checkpoint, "model.safetensors")
with safe_open(path, "pt") as f:
    meta = f.metadata()
assert meta["family"] == "s4d" and "features" in meta and meta["output"] == "pooled-mean", meta
state = load_file(path)
model = S4DModel(s4d, int(meta["features"]), int(meta["width"]), int(meta["state"]), int(meta["layers"]),
                 int(meta["classes"]))
dtype = next(iter(state.values())).dtype
model = model.to(dtype)
model.load_state_dict(state, strict=True)
model.eval()

data = load_file(data_path)
validation = data["split"] == 1
u = (data["images"][validation].to(dtype) / 16).unsqueeze(-1)  # (B, 64, 1)
labels = data["labels"][validation].long()
with torch.no_grad():
    accuracy = (model(u).argmax(-1) == labels).double().mean().item()
print(json.dumps({"checkpoint": args.checkpoint, "torch_accuracy": accuracy, "validation_images": int(validation.sum())}))
