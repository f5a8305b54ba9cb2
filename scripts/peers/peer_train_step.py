#!/usr/bin/env python3
"""One training step of the official S4D (or S4) model on this CPU, for `ssm bench train`'s comparison.

The model (scripts/peers/torch_s4d_model.py) is the shape of state-spaces/s4 example.py with
prenorm=True, from the official s4d.py S4D layer: Linear(1, H), `layers` blocks
x + S4D(LayerNorm(x)), mean pooling, Linear(H, 10); cross-entropy, gradients zeroed,
clip_grad_norm_(1), AdamW. Prints one JSON row: the median, min and max of `--repeats` steps
after one warm-up step. `--model s4` takes the blocks from the official standalone s4.py instead
(S4Block: FFTConv with the DPLR kernel; on a CPU its Cauchy sums take the plain PyTorch path).

  bash scripts/peers/setup.sh
  .build/peers-venv/bin/python scripts/peers/peer_train_step.py --layers 4 --width 128 --state 64 --length 1024 --batch 16
"""
import argparse
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import official  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--model", choices=["s4d", "s4"], default="s4d")
parser.add_argument("--layers", type=int, default=4)
parser.add_argument("--width", type=int, default=128)
parser.add_argument("--state", type=int, default=64)
parser.add_argument("--length", type=int, default=1024)
parser.add_argument("--batch", type=int, default=16)
parser.add_argument("--repeats", type=int, default=5)
parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own choice)")
official.add_s4_source_argument(parser)
args = parser.parse_args()

import torch  # noqa: E402
from torch_s4d_model import S4DModel  # noqa: E402
from train_step import time_steps  # noqa: E402

if args.model == "s4":
    module, make_layer, impl = official.load_s4(args.s4_source), S4DModel.s4_layer, "official s4.py S4Block (DPLR)"
else:
    module, make_layer, impl = official.load_s4d(args.s4_source), S4DModel.s4d_layer, "official s4d.py S4D"
if args.threads:
    torch.set_num_threads(args.threads)
torch.manual_seed(0)
model = S4DModel(module, 1, args.width, args.state, args.layers, 10, make_layer)
x = torch.randn(args.batch, args.length, 1)
y = torch.randint(0, 10, (args.batch,))
timing = time_steps(model, x, y, args.repeats)
print(json.dumps({"op": "train", "impl": "%s (PyTorch %s)" % (impl, torch.__version__), "model": args.model,
                  "s4_commit": official.s4_commit(args.s4_source),
                  "layers": args.layers, "batch": args.batch, "channels": args.width, "state": args.state,
                  "length": args.length, "threads": torch.get_num_threads(), **timing}))
