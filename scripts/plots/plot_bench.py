#!/usr/bin/env python3
"""Plot `ssm bench ... --json` output: throughput against L, log-log, one panel per op.

    ssm bench conv --batch 1,8 --channels 256 --length 2^12...2^18 --json > conv.jsonl
    ssm bench scan --channels 1536 --length 512,2048,8192 --json > scan.jsonl
    .build/plots-venv/bin/python scripts/plots/plot_bench.py conv.jsonl scan.jsonl -o bench.png

Each series is one (op, model, pass, batch, channels, precision) and plots samples per second.
Rows that carry a bound (`conv`: the FFTW transforms alone; `scan`: the exponentials alone)
also get the bound's throughput as a dashed line of the same colour. `--one-panel` draws every
op in one panel (scripts/plots/throughput.py uses that for `ssm bench conv` beside the rows of
scripts/peers/fftconv_bench.py). Needs matplotlib: `bash scripts/plots/setup.sh` makes a venv
with it and prints its python.
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


def series_of(rows):
    """{(op, model, pass or step mode, batch, channels, precision): rows sorted by length}."""
    series = defaultdict(list)
    for r in rows:
        key = (r["op"], r.get("model", ""), r.get("step_mode", r.get("pass", "")), r.get("batch", 1),
               r.get("channels", 0), r.get("precision", ""))
        series[key].append(r)
    for points in series.values():
        points.sort(key=lambda r: r["length"])
    return dict(series)


def bound_throughput(row):
    """Samples per second of the bound that a row carries: its samples over its bound_seconds."""
    return row["samples_per_second"] * row["seconds"] / row["bound_seconds"]


def label_of(key, with_op=False):
    label = f"{key[2]} B={key[3]} H={key[4]} {key[5]}".replace("forward+backward", "fwd+bwd").replace("forward", "fwd")
    return f"{key[0]} {label}" if with_op else label


def draw(ax, series, with_op=False, labels=None, bound_labels=None, colors=None):
    """Plots each series (samples/s against L) on `ax`, with its bound dashed when its rows carry one.
    labels / bound_labels / colors: optional {key: text or colour} overrides."""
    labels, bound_labels, colors = labels or {}, bound_labels or {}, colors or {}
    for key, points in sorted(series.items()):
        lengths = [r["length"] for r in points]
        label = labels.get(key, label_of(key, with_op))
        line, = ax.plot(lengths, [r["samples_per_second"] for r in points], marker="o", label=label,
                        color=colors.get(key))
        if all("bound_seconds" in r for r in points):
            ax.plot(lengths, [bound_throughput(r) for r in points], linestyle="--", marker=".",
                    color=line.get_color(), label=bound_labels.get(key, f"{label} bound"))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("L")
    ax.set_ylabel("samples per second")
    ax.grid(True, which="both", alpha=0.3)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="files of `ssm bench --json` lines ('-' for stdin)")
    parser.add_argument("-o", "--output", required=True, help="PNG file to write")
    parser.add_argument("--title", default="SSMKit throughput", help="figure title")
    parser.add_argument("--one-panel", action="store_true", help="all ops in one panel")
    args = parser.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("plot_bench: needs matplotlib (bash scripts/plots/setup.sh makes a venv with it)")

    rows = read_rows(args.inputs)
    series = series_of(rows)
    ops = sorted({key[0] for key in series})
    groups = [("", ops)] if args.one_panel else [(op, [op]) for op in ops]
    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4.5), squeeze=False)
    for ax, (title, members) in zip(axes[0], groups):
        draw(ax, {k: v for k, v in series.items() if k[0] in members}, with_op=args.one_panel)
        ax.set_title(title or ", ".join(members))
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
