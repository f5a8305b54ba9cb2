"""Speed of ssm against transformers on a mamba-130m- or mamba2-130m-shaped model, in one run.

Makes the random model with the family's peer_speed.py if it is missing, then runs, in turn,
ssm's benchmarks (which measure their own bounds: `ssm bench lm` the prefill's projections alone
and the memory bandwidth; for Mamba-2 also `ssm bench ssd`, the chunked scan against its own
GEMMs, forward and forward + backward) and the peer script (transformers, float32, the same
threads), and prints one table with the ratios and the CPU model. Needs torch and transformers
(see README.md).

    python3 scripts/pretrained/compare_speed.py --ssm .build/release/ssm                    # Mamba
    python3 scripts/pretrained/compare_speed.py --ssm .build/release/ssm --family mamba2    # Mamba-2
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PEERS = {"mamba": os.path.join(ROOT, "scripts", "pretrained", "peer_speed.py"),
         "mamba2": os.path.join(ROOT, "scripts", "mamba2", "peer_speed.py")}
MODELS = {"mamba": "/tmp/mamba-130m-random", "mamba2": "/tmp/mamba2-130m-random"}


def json_lines(text):
    return [json.loads(line) for line in (l.strip() for l in text.splitlines()) if line.startswith("{")]


def peer_prefill(theirs, length):
    """Prefill tokens/s of a length in either peer script's JSON."""
    if "prefill" in theirs:
        return next(r["tokens_per_second"] for r in theirs["prefill"] if r["tokens"] == length)
    return theirs[f"prefill_{length}_tokens_per_second"]


def peer_decode(theirs):
    return theirs["decode"]["tokens_per_second"] if isinstance(theirs.get("decode"), dict) else theirs["decode_tokens_per_second"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ssm", default=".build/release/ssm")
    ap.add_argument("--family", choices=sorted(PEERS), default="mamba")
    ap.add_argument("--model", help="model folder (default /tmp/mamba-130m-random or /tmp/mamba2-130m-random)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lengths", default="512,2048")
    ap.add_argument("--ssd-lengths", default="2048,8192", help="Mamba-2: lengths of the SSD scan rows")
    ap.add_argument("--new-tokens", type=int, default=32)
    args = ap.parse_args()
    model = args.model or MODELS[args.family]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    peer = [sys.executable, PEERS[args.family], "--out", model, "--threads", str(args.threads),
            "--lengths", args.lengths, "--decode-tokens", str(args.new_tokens)]
    if args.family == "mamba2":
        peer += ["--ssd-lengths", args.ssd_lengths]
    if not os.path.isdir(model):
        subprocess.run(peer + ["--make-only"], check=True, env=env)

    def ssm(*arguments):
        return json_lines(subprocess.run([args.ssm, *arguments, "--threads", str(args.threads), "--json"],
                                         check=True, capture_output=True, text=True).stdout)

    ours = ssm("bench", "lm", "--model", model, "--prompt-lengths", args.lengths, "--new-tokens", str(args.new_tokens))
    ssd = []
    if args.family == "mamba2":
        for extra in ([], ["--backward"]):
            ssd += ssm("bench", "ssd", "--length", args.ssd_lengths, "--repeats", "3", *extra)
    theirs = json_lines(subprocess.run(peer, check=True, capture_output=True, text=True, env=env).stdout)[-1]

    print(f"CPU: {theirs['cpu']}, {args.threads} threads, float32 arithmetic; torch {theirs['torch']}, transformers {theirs['transformers']}")
    print(f"{'':34} {'ssm':>10} {'transformers':>13} {'ratio':>7}   ssm vs its bound")
    for row in ours:
        if row["op"] == "prefill":
            L = row["prompt_tokens"]
            peer_rate = peer_prefill(theirs, L)
            print(f"{'prefill ' + str(L) + ' tokens (tok/s)':34} {row['tokens_per_second']:10.1f} {peer_rate:13.1f} "
                  f"{row['tokens_per_second'] / peer_rate:7.2f}   {row['ratio_to_bound']:.2f}× its projections alone")
        else:
            peer_rate = peer_decode(theirs)
            print(f"{'decode, ' + row['decode_weights'] + ' weights (tok/s)':34} {row['tokens_per_second']:10.1f} {peer_rate:13.1f} "
                  f"{row['tokens_per_second'] / peer_rate:7.2f}   {row['fraction_of_bound']:.2f} of {row['bound_tokens_per_second']:.1f} tok/s "
                  f"({row['bytes_per_token'] / 1e6:.0f} MB/token at {row['bandwidth_bytes_per_second'] / 1e9:.1f} GB/s)")
    for row in ssd:
        peer_row = next(r for r in theirs["ssd"] if r["length"] == row["length"])
        backward = row["pass"] == "forward+backward"
        peer_seconds = peer_row["forward_backward_seconds" if backward else "forward_seconds"]
        label = f"ssd {'fwd+bwd' if backward else 'fwd'} L={row['length']} (ms)"
        print(f"{label:34} {row['seconds'] * 1e3:10.1f} {peer_seconds * 1e3:13.1f} {peer_seconds / row['seconds']:7.2f}   "
              f"{row['ratio']:.2f}× its GEMMs alone ({row['gflops_per_second']:.1f} GFLOP/s)")
    print(json.dumps({"ssm": ours + ssd, "transformers": theirs}))


if __name__ == "__main__":
    main()
