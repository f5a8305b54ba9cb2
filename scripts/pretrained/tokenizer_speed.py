#!/usr/bin/env python3
"""Time Hugging Face `tokenizers` and `ssm tokenize` on the same ~1 MB text.

    python3 scripts/pretrained/tokenizer_speed.py [--ssm .build/release/ssm]
        [--tokenizer Tests/Fixtures/pretrained/tokenizer/tokenizer.json] [--mb 1.0] [--seed 0]
        [--text /tmp/ssm-tokenizer-speed.txt] [--repeats 3] [--threads N] [--skip-ssm]

The text is corpus.py's seeded mix (prose, code, numbers, many scripts, emoji, whitespace runs),
written to --text (UTF-8). Timed with time.perf_counter, best of --repeats, tokenizer loaded
and warmed up beforehand:

  single    Tokenizer.encode(whole_text): one call, one string. In tokenizers this is
            single-threaded (its parallelism only spreads a batch over threads).
  batch     Tokenizer.encode_batch(lines): the text split into lines (keepends=True), so the
            same bytes are tokenized; tokenizers spreads the lines over its rayon pool
            (RAYON_NUM_THREADS / --threads bound it). Token counts differ slightly from
            `single` only where a token would span a line break (e.g. "\\n\\n").

Then, unless --skip-ssm, it runs
    ssm tokenize --tokenizer FILE --file TEXT --json
and reads the last JSON line's `tokens_per_second` and `count`. Prints each figure, the
ratio ssm / tokenizers(single), and a last JSON line with all of them. Needs: pip install
tokenizers.
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from corpus import corpus  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_TOKENIZER = os.path.join(ROOT, "Tests", "Fixtures", "pretrained", "tokenizer", "tokenizer.json")
DEFAULT_SSM = os.path.join(ROOT, ".build", "release", "ssm")


def best_of(n, fn):
    best, out = float("inf"), None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ssm", default=DEFAULT_SSM)
    ap.add_argument("--tokenizer", default=DEFAULT_TOKENIZER)
    ap.add_argument("--mb", type=float, default=1.0, help="text size in MB of UTF-8 (default 1.0)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--text", default="/tmp/ssm-tokenizer-speed.txt")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, help="RAYON_NUM_THREADS for encode_batch (default: tokenizers' own)")
    ap.add_argument("--skip-ssm", action="store_true")
    args = ap.parse_args()
    if args.threads:
        os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    from tokenizers import Tokenizer  # after the environment is set

    target = int(args.mb * 1_000_000)
    text = corpus(args.seed, target)
    while len(text.encode("utf-8")) > target:        # trim to the byte budget on a char boundary
        text = text[: len(text) - max(1, (len(text.encode("utf-8")) - target) // 4)]
    with open(args.text, "w", encoding="utf-8", newline="") as f:   # no newline translation: "\r\n" stays
        f.write(text)
    with open(args.text, "rb") as f:
        assert f.read().decode("utf-8") == text
    nbytes = len(text.encode("utf-8"))
    print(f"text: {args.text}, {nbytes} bytes, {len(text)} characters, {text.count(chr(10)) + 1} lines")

    tok = Tokenizer.from_file(os.path.abspath(args.tokenizer))
    lines = text.splitlines(keepends=True)
    tok.encode(text[:10000])
    tok.encode_batch(lines[:100])
    t_single, enc = best_of(args.repeats, lambda: tok.encode(text))
    n_single = len(enc.ids)
    t_batch, encs = best_of(args.repeats, lambda: tok.encode_batch(lines))
    n_batch = sum(len(e.ids) for e in encs)
    res = {
        "bytes": nbytes,
        "tokenizers_version": __import__("tokenizers").__version__,
        "tokenizers_single_tokens": n_single,
        "tokenizers_single_seconds": t_single,
        "tokenizers_single_tokens_per_second": n_single / t_single,
        "tokenizers_batch_lines": len(lines),
        "tokenizers_batch_tokens": n_batch,
        "tokenizers_batch_seconds": t_batch,
        "tokenizers_batch_tokens_per_second": n_batch / t_batch,
        "rayon_threads": os.environ.get("RAYON_NUM_THREADS", "default"),
    }
    print(f"tokenizers encode (one string):     {n_single} tokens, best {t_single:.4f}s, "
          f"{n_single / t_single:,.0f} tokens/s")
    print(f"tokenizers encode_batch ({len(lines)} lines): {n_batch} tokens, best {t_batch:.4f}s, "
          f"{n_batch / t_batch:,.0f} tokens/s")

    if not args.skip_ssm:
        cmd = [args.ssm, "tokenize", "--tokenizer", os.path.abspath(args.tokenizer), "--file", args.text, "--json"]
        print("running:", " ".join(cmd), flush=True)
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            print(f"could not run ssm: {e}")
            return 2
        if p.returncode != 0:
            print(f"ssm exited {p.returncode}:\n{p.stderr.decode('utf-8', 'replace')[-3000:]}")
            return 2
        o = next(json.loads(ln) for ln in reversed(p.stdout.decode().splitlines()) if ln.strip().startswith("{"))
        tps, count = float(o["tokens_per_second"]), int(o["count"])
        res.update({"ssm_count": count, "ssm_tokens_per_second": tps,
                    "ratio_ssm_over_tokenizers_single": tps / res["tokenizers_single_tokens_per_second"],
                    "ratio_ssm_over_tokenizers_batch": tps / res["tokenizers_batch_tokens_per_second"]})
        print(f"ssm tokenize --file:                {count} tokens, {tps:,.0f} tokens/s"
              f"{'' if count == n_single else f'  (COUNT DIFFERS from tokenizers: {n_single})'}")
        print(f"ratio ssm / tokenizers single: {res['ratio_ssm_over_tokenizers_single']:.2f}, "
              f"ssm / tokenizers batch: {res['ratio_ssm_over_tokenizers_batch']:.2f}")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
