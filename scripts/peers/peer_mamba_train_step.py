#!/usr/bin/env python3
"""One training step of mambapy's Mamba (pure PyTorch, its parallel scan) on this CPU, for the
Mamba row of `ssm bench train --model mamba`.

The model has the shape `ssm bench train` times: Linear(1, H), mambapy's `Mamba` stack of
`layers` residual RMSNorm blocks (d_state N, expand 2, d_conv 4), a final RMSNorm, mean pooling
and Linear(H, 10); cross-entropy, gradients zeroed, clip_grad_norm_(1), AdamW. Prints one JSON
row: the median, min and max of `--repeats` steps after one warm-up step.

  bash scripts/peers/setup.sh
  .build/peers-venv/bin/python scripts/peers/peer_mamba_train_step.py --layers 4 --width 128 --state 16 --length 256 --batch 16
"""
import argparse
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--layers", type=int, default=4)
parser.add_argument("--width", type=int, default=128)
parser.add_argument("--state", type=int, default=16)
parser.add_argument("--length", type=int, default=256)
parser.add_argument("--batch", type=int, default=16)
parser.add_argument("--repeats", type=int, default=3)
parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own choice)")
args = parser.parse_args()

import torch  # noqa: E402
from torch import nn  # noqa: E402
from mambapy.mamba import Mamba, MambaConfig, RMSNorm  # noqa: E402
from train_step import time_steps  # noqa: E402

if args.threads:
    torch.set_num_threads(args.threads)
torch.manual_seed(0)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(1, args.width)
        self.mamba = Mamba(MambaConfig(d_model=args.width, n_layers=args.layers, d_state=args.state, pscan=True))
        self.norm_f = RMSNorm(args.width)
        self.decoder = nn.Linear(args.width, 10)

    def forward(self, x):
        return self.decoder(self.norm_f(self.mamba(self.encoder(x))).mean(dim=1))


model = Model()
x = torch.randn(args.batch, args.length, 1)
y = torch.randint(0, 10, (args.batch,))
timing = time_steps(model, x, y, args.repeats)
print(json.dumps({"op": "train", "impl": "mambapy Mamba, pscan (PyTorch %s)" % torch.__version__, "model": "mamba",
                  "layers": args.layers, "batch": args.batch, "channels": args.width, "state": args.state,
                  "length": args.length, "threads": torch.get_num_threads(), **timing}))
