#!/usr/bin/env python3
"""throughput.png: SSMKit's FFT convolution, its FFTW bound and torch.fft's on the same shapes.

    python scripts/plots/throughput.py --ssm .build/release/ssm --torch-python .build/peers-venv/bin/python \
        --rows .build/plots/throughput.jsonl -o Sources/SSMKit/SSMKit.docc/Resources/throughput.png
    python scripts/plots/throughput.py --replot .build/plots/throughput.jsonl -o throughput.png   # no new run

For each L (default 2^10 … 2^20) it runs, one after the other and alternating which goes first,

    ssm bench conv --length L --effort measure --channels 256 --batch 1 --precision float32 --repeats R --json
    <torch python> scripts/peers/fftconv_bench.py --length L --channels 256 --batch 1 --precision float32 --repeats R

so each ratio comes from two runs back to back. On a shared machine it first waits (--wait) until other
processes leave the CPU nearly idle (--max-other-cores, from /proc/stat), and runs a pair again
(--retries) when other processes took CPU while it ran; each row records that figure as
other_processes_cores. The `ssm` rows carry the FFTW bound (the same FFTW
transforms with the same plans and threads, timed alone: bound samples/s = B·H·L / bound_seconds);
the torch rows time rfft(u), rfft(k), the product, irfft and D·u (scripts/peers/fftconv_bench.py).
All rows are kept in --rows (JSON lines, both schemas alike), and the table printed at the end is
what the figure shows.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plot_bench  # noqa: E402
import ssmio  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TORCH_BENCH = os.path.join(HERE, "..", "peers", "fftconv_bench.py")


def lengths_of(text):
    """2^10...2^20 | 1024,4096 | 4096."""
    out = []
    for part in text.split(","):
        if "..." in part:
            low, high = (int(p.strip()[2:]) for p in part.split("..."))
            out += [1 << e for e in range(low, high + 1)]
        else:
            part = part.strip()
            out.append(1 << int(part[2:]) if part.startswith("2^") else int(part))
    return out


def repeats_for(repeats, L):
    """The timed calls per row: --repeats N, or auto (9 up to L = 2^15, 5 up to 2^18, 3 above)."""
    if repeats != "auto":
        return int(repeats)
    return 9 if L <= 1 << 15 else 5 if L <= 1 << 18 else 3


def busy_seconds():
    """(CPU seconds all processes have used, CPU seconds this process's finished children used), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user nice system idle iowait irq softirq steal
    t = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), t.children_user + t.children_system


def others_cores(before, after, wall):
    """CPU cores that other processes kept busy between two busy_seconds() readings."""
    if before is None or after is None or wall <= 0:
        return None
    return round(max(0.0, (after[0] - before[0]) - (after[1] - before[1])) / wall, 2)


def wait_for_quiet(args):
    """Waits (up to --wait seconds) until other processes use at most --max-other-cores over a
    3-second probe; returns the last probe's figure."""
    deadline = time.time() + args.wait
    while True:
        b0 = busy_seconds()
        time.sleep(3)
        others = others_cores(b0, busy_seconds(), 3)
        if others is None or others <= args.max_other_cores or time.time() >= deadline:
            return others
        print(f"  waiting: other processes use {others} cores", file=sys.stderr)


def measure(args):
    ssm = ssmio.SSM(args.ssm)
    rows, started = [], time.time()
    date = time.strftime("%Y-%m-%d %H:%M")
    for index, L in enumerate(lengths_of(args.lengths)):
        shape = ["--channels", args.channels, "--batch", args.batch, "--precision", "float32",
                 "--repeats", repeats_for(args.repeats, L)]

        def run_ssm(pair):
            wisdom = ["--wisdom", args.wisdom] if args.wisdom else []
            got = ssm.bench("conv", "--length", L, "--effort", "measure", *shape, *wisdom)
            pair.extend(dict(r, impl="SSMKit ssm bench conv") for r in got)

        def run_torch(pair):
            run = subprocess.run([args.torch_python, TORCH_BENCH, "--length", str(L)] + [str(s) for s in shape],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                raise SystemExit(f"fftconv_bench.py failed: {run.stderr.strip()}")
            pair.extend(json.loads(line) for line in run.stdout.splitlines() if line.startswith("{"))

        best = None
        for attempt in range(1 + args.retries):
            if args.wait > 0:
                wait_for_quiet(args)
            pair, t0, b0 = [], time.time(), busy_seconds()
            for step in ((run_ssm, run_torch) if (index + attempt) % 2 == 0 else (run_torch, run_ssm)):
                step(pair)
            others = others_cores(b0, busy_seconds(), time.time() - t0)
            print(f"  L = {L}: done ({time.time() - started:.0f} s; other processes used {others} cores meanwhile)",
                  file=sys.stderr)
            if best is None or (others is not None and others < best[0]):
                best = (others, pair)
            if others is None or others <= args.max_other_cores:
                break
        rows.extend(dict(r, other_processes_cores=best[0]) for r in best[1])
    others = [r["other_processes_cores"] for r in rows if r.get("other_processes_cores") is not None]
    meta = {"meta": True, "cpu": ssmio.cpu_model(), "date": date,
            "other_processes_cores": [min(others), max(others)] if others else None,
            "repeats": args.repeats if args.repeats != "auto" else "9 (L ≤ 2^15), 5 (L ≤ 2^18) or 3",
            "seconds_total": round(time.time() - started)}
    return rows, meta


def table(rows):
    """[(L, ssm row, torch row)] for the lengths that have both."""
    ssm = {r["length"]: r for r in rows if r["op"] == "conv"}
    torch = {r["length"]: r for r in rows if r["op"] == "torch-fftconv"}
    return [(L, ssm[L], torch.get(L)) for L in sorted(ssm)]


def print_table(rows):
    print(f"{'L':>8} {'ssm Msamples/s':>15} {'bound Msamples/s':>17} {'torch Msamples/s':>17} "
          f"{'ssm/bound time':>15} {'torch/ssm time':>15} {'others cores':>13}")
    for L, s, t in table(rows):
        bound = plot_bench.bound_throughput(s)
        tt = f"{t['samples_per_second'] / 1e6:17.1f}" if t else f"{'-':>17}"
        ratio = f"{t['seconds'] / s['seconds']:15.2f}" if t else f"{'-':>15}"
        print(f"{L:8d} {s['samples_per_second'] / 1e6:15.1f} {bound / 1e6:17.1f} {tt} {s['ratio']:15.2f} {ratio} "
              f"{str(s.get('other_processes_cores', '-')):>13}")


def plot(rows, meta, output):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    series = plot_bench.series_of(rows)
    torch_impl = next((r.get("impl", "torch") for r in rows if r["op"] == "torch-fftconv"), "torch")
    labels, bound_labels, colors = {}, {}, {}
    for key in series:
        if key[0] == "conv":
            labels[key] = "SSMKit FFT convolution (`ssm bench conv`)"
            bound_labels[key] = "FFTW bound: the same transforms alone (same rows)"
            colors[key] = "tab:blue"
        elif key[0] == "torch-fftconv":
            labels[key] = f"{torch_impl.replace(' torch.fft', '')}: rfft · product · irfft (n = 2L)"
            colors[key] = "tab:red"
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 8.2), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    plot_bench.draw(top, series, labels=labels, bound_labels=bound_labels, colors=colors)
    top.set_xlabel("")
    top.set_ylabel("samples per second (B·H·L / median time)")
    top.legend(fontsize=8, loc="best")
    any_row = next(r for r in rows if r["op"] == "conv")
    top.set_title(f"Causal FFT convolution, forward: H = {any_row['channels']} channels, batch {any_row['batch']}, "
                  f"{any_row['precision']}, {any_row['threads']} threads", fontsize=10)

    t = table(rows)
    lengths = [L for L, _, _ in t]
    bottom.plot(lengths, [s["ratio"] for _, s, _ in t], marker="o", color="tab:blue",
                label="SSMKit time / FFTW bound time (`ratio` of the same rows)")
    with_torch = [(L, s, tr) for L, s, tr in t if tr]
    bottom.plot([L for L, _, _ in with_torch], [tr["seconds"] / s["seconds"] for _, s, tr in with_torch],
                marker="s", color="tab:red", label="torch time / SSMKit time (the two run back to back)")
    bottom.axhline(1, color="0.5", lw=0.8)
    bottom.set_xscale("log", base=2)
    bottom.set_yscale("log")
    bottom.set_xlabel("sequence length L (samples); FFT size n = 2L")
    bottom.set_ylabel("time ratio")
    low, high = bottom.get_ylim()
    ticks = [t for t in (0.5, 0.75, 1, 1.25, 1.5, 2, 3, 4, 5, 7, 10, 15, 20, 30, 50, 100) if low <= t <= high]
    bottom.set_yticks(ticks)
    bottom.set_yticklabels([f"{t:g}" for t in ticks])
    bottom.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    bottom.grid(True, which="both", alpha=0.3)
    bottom.legend(fontsize=8)
    for ax in (top, bottom):
        ax.set_xticks(lengths)
        ax.set_xticklabels([f"$2^{{{L.bit_length() - 1}}}$" for L in lengths])
    fig.suptitle("SSMKit FFT convolution vs its FFTW bound and torch.fft", fontsize=12)
    others = meta.get("other_processes_cores") or ["?", "?"]
    note = (f"CPU: {meta.get('cpu', '?')} (lscpu). Measured {meta.get('date', '?')}: median of "
            f"{meta.get('repeats', '?')} timed calls after one warm-up.\n"
            f"Other processes kept {others[0]} to {others[-1]} of the 2 cores busy while the rows ran (/proc/stat). "
            "Planning (FFTW) and torch's first call are not timed.\n"
            "Rows: `ssm bench conv --json` and scripts/peers/fftconv_bench.py, run alternately per L by "
            "scripts/plots/throughput.py.\nThis 2-core machine's speed drifts over minutes: read the ratios "
            "(each pair run back to back) rather than absolute speeds.")
    fig.text(0.01, 0.005, note, fontsize=7, color="0.3", va="bottom")
    fig.tight_layout(rect=(0, 0.075, 1, 1))
    fig.savefig(output, dpi=110)
    print(f"wrote {output}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ssm", help="the ssm binary")
    parser.add_argument("--torch-python", help="a Python with torch (bash scripts/peers/setup.sh venv)")
    parser.add_argument("--lengths", default="2^10...2^20", help="lengths: 2^10...2^20 or 1024,4096")
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", default="auto",
                        help="timed calls per row after one warm-up: a number, or auto (9 up to L = 2^15, 5 up to 2^18, 3 above)")
    parser.add_argument("--rows", help="JSON-lines file to keep every row in")
    parser.add_argument("--wisdom", help="FFTW wisdom file for `ssm bench conv --wisdom` (loaded if present, saved after): "
                                         "later runs can skip the planning")
    parser.add_argument("--max-other-cores", type=float, default=0.25,
                        help="a pair of runs counts as quiet when other processes used at most this many cores "
                             "meanwhile (from /proc/stat; default 0.25)")
    parser.add_argument("--wait", type=float, default=300,
                        help="seconds to wait, before each pair, for the machine to be that quiet (default 300; 0: no wait)")
    parser.add_argument("--retries", type=int, default=2,
                        help="runs of a pair again when it was not quiet, keeping the quietest (default 2)")
    parser.add_argument("--replot", help="plot the rows of this file (written by --rows) instead of measuring")
    parser.add_argument("-o", "--output", required=True, help="PNG file to write")
    args = parser.parse_args()

    if args.replot:
        with open(args.replot, encoding="utf-8") as f:
            lines = [json.loads(line) for line in f if line.startswith("{")]
        meta = next((r for r in lines if r.get("meta")), {})
        rows = [r for r in lines if not r.get("meta")]
    else:
        if not args.ssm or not args.torch_python:
            parser.error("--ssm and --torch-python are needed unless --replot is given")
        rows, meta = measure(args)
        if args.rows:
            os.makedirs(os.path.dirname(os.path.abspath(args.rows)), exist_ok=True)
            with open(args.rows, "w", encoding="utf-8") as f:
                for r in [meta] + rows:
                    f.write(json.dumps(r) + "\n")
    print_table(rows)
    plot(rows, meta, args.output)


if __name__ == "__main__":
    main()
