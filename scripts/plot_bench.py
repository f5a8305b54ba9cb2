#!/usr/bin/env python3
"""Plot `ssm bench ... --json` output: throughput against L, log-log, one panel per op.

    ssm bench conv --batch 1,8 --channels 256 --length 2^12...2^18 --json > conv.jsonl
    ssm bench scan --channels 1536 --length 512,2048,8192 --json > scan.jsonl
    python3 scripts/plot_bench.py conv.jsonl scan.jsonl -o docs/bench.png

Each series is one (op, model, pass, batch, channels, precision) and plots samples per second.
Rows that carry a bound (`conv`: the FFTW transforms alone; `scan`: the exponentials alone)
also get the bound's throughput as a dashed line of the same colour. Needs matplotlib
(`pip install matplotlib`).
"""
import argparse
import json
import sys
from collections import defaultdict


def read_rows(paths):
    rows = []
    for path in paths:
        stream = sys.stdin if path == "-" else open(path, encoding="utf-8")
        with stream:
            for number, line in enumerate(stream, 1):
                line = line.strip()
                if not line.startswith("{"):
                    continue  # table headers and other text
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise SystemExit(f"plot_bench: {path}:{number}: not JSON ({error})")
                for key in ("op", "length", "seconds", "samples_per_second"):
                    if key not in row:
                        raise SystemExit(f"plot_bench: {path}:{number}: no '{key}' key (is it `ssm bench --json` output?)")
                rows.append(row)
    if not rows:
        raise SystemExit("plot_bench: no `ssm bench --json` rows in the input")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="files of `ssm bench --json` lines ('-' for stdin)")
    parser.add_argument("-o", "--output", required=True, help="PNG file to write")
    parser.add_argument("--title", default="SSMKit throughput", help="figure title")
    args = parser.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("plot_bench: needs matplotlib (pip install matplotlib)")

    rows = read_rows(args.inputs)
    ops = sorted({r["op"] for r in rows})
    series = defaultdict(list)
    for r in rows:
        key = (r["op"], r.get("model", ""), r.get("step_mode", r.get("pass", "")), r.get("batch", 1),
               r.get("channels", 0), r.get("precision", ""))
        series[key].append(r)

    fig, axes = plt.subplots(1, len(ops), figsize=(6 * len(ops), 4.5), squeeze=False)
    for ax, op in zip(axes[0], ops):
        for key, points in sorted(series.items()):
            if key[0] != op:
                continue
            points.sort(key=lambda r: r["length"])
            lengths = [r["length"] for r in points]
            label = f"{key[2]} B={key[3]} H={key[4]} {key[5]}".replace("forward+backward", "fwd+bwd").replace("forward", "fwd")
            line, = ax.plot(lengths, [r["samples_per_second"] for r in points], marker="o", label=label)
            if all("bound_seconds" in r for r in points):
                samples = [r["samples_per_second"] * r["seconds"] for r in points]
                ax.plot(lengths, [s / r["bound_seconds"] for s, r in zip(samples, points)], linestyle="--",
                        color=line.get_color(), label=f"{label} bound")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("L")
        ax.set_ylabel("samples per second")
        ax.set_title(op)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(args.title)
    fig.tight_layout()
    try:
        fig.savefig(args.output, dpi=110)
    except OSError as error:
        raise SystemExit(f"plot_bench: cannot write {args.output}: {error}")
    print(f"wrote {args.output} ({len(rows)} rows, {len(series)} series)")


if __name__ == "__main__":
    main()
