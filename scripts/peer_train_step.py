#!/usr/bin/env python3
"""One training step of the official S4D model on this CPU, for `ssm bench train`'s comparison.

The model is the shape of state-spaces/s4 example.py with prenorm=True: Linear(1, H) encoder,
`layers` official s4d.py S4D blocks (kernel, FFT conv + D, GELU, Conv1d(H, 2H, 1), GLU), each
wrapped as x + S4D(LayerNorm(x)), mean pooling, Linear(H, 10) decoder; cross-entropy, gradients
zeroed, clip_grad_norm_(1), AdamW. The official S4D module is loaded at run time from the peers
harness (../shared/peers, set up by its README); nothing of it is copied here.

  $PEERENV/bin/python scripts/peer_train_step.py --layers 4 --width 128 --state 64 --length 1024 --batch 16
"""
import argparse
import json
import os
import statistics
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "shared", "peers"))
import peer_load  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--layers", type=int, default=4)
parser.add_argument("--width", type=int, default=128)
parser.add_argument("--state", type=int, default=64)
parser.add_argument("--length", type=int, default=1024)
parser.add_argument("--batch", type=int, default=16)
parser.add_argument("--repeats", type=int, default=5)
args = parser.parse_args()

s4d = peer_load.load_s4d()


class Model(nn.Module):
    def __init__(self, H, N, layers):
        super().__init__()
        self.encoder = nn.Linear(1, H)
        self.s4_layers = nn.ModuleList([s4d.S4D(H, d_state=N, dropout=0.0, transposed=True) for _ in range(layers)])
        self.norms = nn.ModuleList([nn.LayerNorm(H) for _ in range(layers)])
        self.decoder = nn.Linear(H, 10)

    def forward(self, x):  # x: (B, L, 1)
        x = self.encoder(x).transpose(-1, -2)  # (B, H, L)
        for layer, norm in zip(self.s4_layers, self.norms):
            z = norm(x.transpose(-1, -2)).transpose(-1, -2)
            z, _ = layer(z)
            x = x + z
        return self.decoder(x.mean(dim=-1))


torch.manual_seed(0)
model = Model(args.width, args.state, args.layers)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
x = torch.randn(args.batch, args.length, 1)
y = torch.randint(0, 10, (args.batch,))


def step():
    optimizer.zero_grad(set_to_none=False)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()


t0 = time.perf_counter()
step()
warmup = time.perf_counter() - t0
times = []
for _ in range(args.repeats):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
print(json.dumps({"op": "train", "impl": "official s4d.py S4D (PyTorch %s)" % torch.__version__, "model": "s4d",
                  "layers": args.layers, "batch": args.batch, "channels": args.width, "state": args.state,
                  "length": args.length, "threads": torch.get_num_threads(), "seconds": statistics.median(times),
                  "seconds_min": min(times), "seconds_max": max(times), "warmup_seconds": warmup}))
