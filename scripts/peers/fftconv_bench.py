#!/usr/bin/env python3
"""Times torch.fft causal convolutions on this CPU and prints one JSON row per shape in the schema
of `ssm bench conv --json`, with op "torch-fftconv" (scripts/plots/throughput.py plots both).

Each call is the official S4D layer's convolution (models/s4/s4d.py) plus the skip term that
`ssm bench conv` also times:

    k_f = rfft(k, n=2L); u_f = rfft(u, n=2L); y = irfft(u_f * k_f, n=2L)[..., :L] + D * u

with u (B, H, L), k (H, L) and D (H) uniform in [-1, 1) (k / L), under torch.no_grad(). One
untimed call warms up (its time is `plan_seconds`); then `--repeats` calls are timed and the row
reports their median, min and max. samples_per_second = B·H·L / median.

    .build/peers-venv/bin/python scripts/peers/fftconv_bench.py --batch 1 --channels 256 --length 2^10...2^16
"""
import argparse
import json
import statistics
import time

import torch


def int_list(text):
    """1024 | 1024,4096 | 2^10...2^16 (powers of two), as `ssm bench --length` takes them."""
    values = []
    for part in text.split(","):
        part = part.strip()
        if "..." in part:
            low, high = (p.strip() for p in part.split("..."))
            low, high = (int(p[2:]) if p.startswith("2^") else int(p).bit_length() - 1 for p in (low, high))
            values += [1 << e for e in range(low, high + 1)]
        elif part.startswith("2^"):
            values.append(1 << int(part[2:]))
        else:
            values.append(int(part))
    return values


def convolve(u, k, d):
    L = u.shape[-1]
    k_f = torch.fft.rfft(k, n=2 * L)
    u_f = torch.fft.rfft(u, n=2 * L)
    return torch.fft.irfft(u_f * k_f, n=2 * L)[..., :L] + u * d.unsqueeze(-1)


def row(B, H, L, dtype, repeats, threads):
    generator = torch.Generator().manual_seed(42)
    u = torch.rand(B, H, L, generator=generator, dtype=dtype) * 2 - 1
    k = (torch.rand(H, L, generator=generator, dtype=dtype) * 2 - 1) / L
    d = torch.full((H,), 0.5, dtype=dtype)
    with torch.no_grad():
        t0 = time.perf_counter()
        convolve(u, k, d)
        warmup = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            y = convolve(u, k, d)
            times.append(time.perf_counter() - t0)
            del y
    median = statistics.median(times)
    return {"op": "torch-fftconv", "impl": f"torch {torch.__version__} torch.fft", "model": "none",
            "pass": "forward", "batch": B, "channels": H, "state": 0, "length": L, "kernel_copies": 1,
            "fft_size": 2 * L, "precision": "float32" if dtype == torch.float32 else "float64",
            "threads": threads, "seconds": median, "seconds_min": min(times), "seconds_max": max(times),
            "samples_per_second": B * H * L / median, "plan_seconds": warmup}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int_list, default=[1], help="batch sizes (default 1)")
    parser.add_argument("--channels", type=int_list, default=[256], help="channels H (default 256)")
    parser.add_argument("--length", type=int_list, default=[4096], help="lengths L: 4096, 1024,4096 or 2^12...2^20")
    parser.add_argument("--precision", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: all online processors)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per row after one warm-up (default 5)")
    args = parser.parse_args()
    import os
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    dtype = torch.float32 if args.precision == "float32" else torch.float64
    for L in args.length:
        for H in args.channels:
            for B in args.batch:
                print(json.dumps(row(B, H, L, dtype, args.repeats, threads)), flush=True)


if __name__ == "__main__":
    main()
