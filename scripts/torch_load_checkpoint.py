#!/usr/bin/env python3
"""Loads an SSMKit checkpoint of an S4D digits model into PyTorch (the official s4d.py S4D layer,
scripts/torch_s4d_model.py) with load_state_dict(strict=True), and reports its validation
accuracy on data/digits.safetensors beside the one `ssm train` reported.

  ssm train --task digits --checkpoint /tmp/digits --json
  $PEERENV/bin/python scripts/torch_load_checkpoint.py /tmp/digits
"""
import json
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from torch_s4d_model import S4DModel  # noqa: E402

directory = sys.argv[1]
path = os.path.join(directory, "model.safetensors")
with safe_open(path, "pt") as f:
    meta = f.metadata()
assert meta["family"] == "s4d" and "features" in meta and meta["output"] == "pooled-mean", meta
state = load_file(path)
model = S4DModel(int(meta["features"]), int(meta["width"]), int(meta["state"]), int(meta["layers"]), int(meta["classes"]))
dtype = next(iter(state.values())).dtype
model = model.to(dtype)
model.load_state_dict(state, strict=True)
model.eval()

data = load_file(os.path.join(here, "..", "data", "digits.safetensors"))
validation = data["split"] == 1
u = (data["images"][validation].to(dtype) / 16).unsqueeze(-1)  # (B, 64, 1)
labels = data["labels"][validation].long()
with torch.no_grad():
    accuracy = (model(u).argmax(-1) == labels).double().mean().item()
print(json.dumps({"checkpoint": directory, "torch_accuracy": accuracy, "validation_images": int(validation.sum())}))
