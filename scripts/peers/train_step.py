"""The timed training step both peer_*train_step.py scripts run: cross-entropy on a fixed batch,
gradients zeroed, clip_grad_norm_(1), AdamW (lr 1e-3), one untimed warm-up step first.
"""
import statistics
import time

import torch
from torch import nn


def time_steps(model, x, y, repeats):
    """The step's median, min and max over `repeats` steps, and the warm-up step's time, in seconds."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

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
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"seconds": statistics.median(times), "seconds_min": min(times), "seconds_max": max(times), "warmup_seconds": warmup}
