#!/usr/bin/env python3
"""Converts scikit-learn's 8x8 digits (UCI optdigits test set, 1797 images, 10 classes) into
Sources/SSMTraining/Resources/digits.safetensors, the data set that SSMTraining bundles for
`TrainingTask(.digits)` and `ssm train --task digits`.

Tensors (F16, exact: pixels are integers 0..16, labels 0..9):
  images (1797, 64)  row-major pixels, the sequence the model reads
  labels (1797)
  split  (1797)      0 = train, 1 = validation (a fixed 80/20 split, seed 0, stratified)

Run once: pip install scikit-learn numpy safetensors; python3 scripts/make_digits.py
"""
import os

import numpy as np
from safetensors.numpy import save_file
from sklearn.datasets import load_digits

digits = load_digits()
images = digits.images.reshape(len(digits.images), 64).astype(np.float16)
labels = digits.target.astype(np.float16)
rng = np.random.default_rng(0)
split = np.zeros(len(labels), dtype=np.float16)
for c in range(10):
    members = np.flatnonzero(digits.target == c)
    rng.shuffle(members)
    split[members[: round(0.2 * len(members))]] = 1
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Sources", "SSMTraining", "Resources", "digits.safetensors")
save_file({"images": images, "labels": labels, "split": split}, out,
          metadata={"source": "sklearn.datasets.load_digits", "license": "CC BY 4.0 (UCI optdigits)"})
print(f"{out}: {len(labels)} images, {int(split.sum())} validation")
