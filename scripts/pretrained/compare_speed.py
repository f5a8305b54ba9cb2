"""Prefill and decode speed of ssm against transformers on a mamba-130m-shaped model, in one run.

Makes the random model with peer_speed.py if it is missing, then runs, in turn,
`ssm bench lm --json` (which measures its own bounds: the prefill's GEMMs alone, the memory
bandwidth) and peer_speed.py (transformers, float32, same threads), and prints one table with
the ratios and the CPU model. Needs torch and transformers (see README.md).

    python3 scripts/pretrained/compare_speed.py --ssm .build/release/ssm
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def json_lines(text):
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ssm", default=".build/release/ssm")
    ap.add_argument("--model", default="/tmp/mamba-130m-random")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lengths", default="512,2048")
    ap.add_argument("--new-tokens", type=int, default=32)
    args = ap.parse_args()
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    peer = [sys.executable, os.path.join(HERE, "peer_speed.py"), "--out", args.model, "--threads", str(args.threads),
            "--lengths", args.lengths, "--decode-tokens", str(args.new_tokens)]
    if not os.path.isdir(args.model):
        subprocess.run(peer + ["--make-only"], check=True, env=env)
    ours = json_lines(subprocess.run([args.ssm, "bench", "lm", "--model", args.model, "--threads", str(args.threads),
                                      "--prompt-lengths", args.lengths, "--new-tokens", str(args.new_tokens), "--json"],
                                     check=True, capture_output=True, text=True).stdout)
    theirs = json_lines(subprocess.run(peer, check=True, capture_output=True, text=True, env=env).stdout)[-1]
    print(f"CPU: {theirs['cpu']}, {args.threads} threads, float32 arithmetic; torch {theirs['torch']}, transformers {theirs['transformers']}")
    print(f"{'':28} {'ssm tok/s':>10} {'transformers':>13} {'ratio':>7}   ssm vs its bound")
    for row in ours:
        if row["op"] == "prefill":
            L = row["prompt_tokens"]
            peer_rate = theirs[f"prefill_{L}_tokens_per_second"]
            print(f"{'prefill ' + str(L) + ' tokens':28} {row['tokens_per_second']:10.1f} {peer_rate:13.1f} {row['tokens_per_second'] / peer_rate:7.2f}"
                  f"   {row['ratio_to_bound']:.2f}× its GEMMs alone")
        else:
            peer_rate = theirs["decode_tokens_per_second"]
            print(f"{'decode, ' + row['decode_weights'] + ' weights':28} {row['tokens_per_second']:10.1f} {peer_rate:13.1f} "
                  f"{row['tokens_per_second'] / peer_rate:7.2f}   {row['fraction_of_bound']:.2f} of {row['bound_tokens_per_second']:.1f} tok/s "
                  f"({row['bytes_per_token'] / 1e6:.0f} MB/token at {row['bandwidth_bytes_per_second'] / 1e9:.1f} GB/s)")
    print(json.dumps({"ssm": ours, "transformers": theirs}))


if __name__ == "__main__":
    main()
