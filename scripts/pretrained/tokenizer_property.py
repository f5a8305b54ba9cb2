#!/usr/bin/env python3
"""Compare `ssm tokenize` with Hugging Face `tokenizers` on many seeded random strings.

    python3 scripts/pretrained/tokenizer_property.py [--ssm .build/release/ssm]
        [--tokenizer Tests/Fixtures/pretrained/tokenizer/tokenizer.json] [--count 10000] [--seed 0]
        [--mode batch|spawn] [--keep DIR]

It makes --count random strings (lengths 0..200 code points) from a mix of: pieces of corpus.py
text, random code points from many Unicode blocks (Latin, combining marks, Greek, Cyrillic,
Hebrew, Arabic, Devanagari, Thai, Hangul jamo and syllables, CJK, kana, full-width forms,
private use, general punctuation with ZWJ/ZWSP/LS/PS, emoji, skin tones, flags, variation
selectors, math letters, plane-16 code points), base letters followed by combining marks,
contractions (in both cases), digit runs, runs of spaces/tabs/newlines/CR, and the special
tokens `<|endoftext|>` / `<|padding|>` (and broken copies of them) spliced in. Surrogates never
occur (not valid in UTF-8); NUL occurs only in batch mode.

For each string the expected answer is `tokenizers`' encode(text).ids (add_special_tokens
default) and decode(ids, skip_special_tokens=False).

--mode batch (default): one process,
    ssm tokenize --tokenizer FILE --batch IN.jsonl --json
  IN.jsonl holds one JSON string per line; the command must print one JSON object per line,
  {"ids": [...], "text": "<decode of those ids>"}, in the same order (lines that are not JSON
  objects with "ids" are ignored).
--mode spawn: one process per string (slow; use a smaller --count),
    ssm tokenize --tokenizer FILE --text=T --json      last stdout line: {"ids": [...], ...}
    ssm tokenize --tokenizer FILE --decode=1,2,3 --json last stdout line: {"text": "...", ...}
  (the `--opt=value` spelling so that texts and lists starting with '-' stay values). Spawn
  mode also decodes random id lists (which may cut UTF-8 sequences) and compares with
  decode(ids, skip_special_tokens=False).

Prints the first 20 mismatches in detail and a summary line; exits 1 on any mismatch, 2 if the
command could not be run. Needs: pip install tokenizers.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from tokenizers import Tokenizer  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from corpus import documents  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_TOKENIZER = os.path.join(ROOT, "Tests", "Fixtures", "pretrained", "tokenizer", "tokenizer.json")
DEFAULT_SSM = os.path.join(ROOT, ".build", "release", "ssm")

# (first, last) code point ranges, inclusive, with weights
BLOCKS = [
    ((0x20, 0x7E), 30), ((0x01, 0x1F), 2), ((0x7F, 0x9F), 1), ((0xA0, 0xFF), 6), ((0x100, 0x17F), 3),
    ((0x180, 0x24F), 2), ((0x300, 0x36F), 8), ((0x370, 0x3FF), 3), ((0x400, 0x4FF), 3), ((0x590, 0x5FF), 2),
    ((0x600, 0x6FF), 3), ((0x900, 0x97F), 3), ((0xE00, 0xE7F), 2), ((0x1100, 0x11FF), 2), ((0x1E00, 0x1EFF), 2),
    ((0x2000, 0x206F), 4), ((0x20A0, 0x20CF), 1), ((0x2100, 0x214F), 1), ((0x2190, 0x22FF), 1),
    ((0x3000, 0x303F), 2), ((0x3040, 0x30FF), 3), ((0x4E00, 0x9FFF), 5), ((0xAC00, 0xD7A3), 3),
    ((0xE000, 0xF8FF), 1), ((0xFB00, 0xFB4F), 1), ((0xFE00, 0xFE0F), 2), ((0xFF00, 0xFFEF), 2),
    ((0xFFF0, 0xFFFF), 1), ((0x1D400, 0x1D7FF), 1), ((0x1F1E6, 0x1F1FF), 2), ((0x1F300, 0x1F5FF), 4),
    ((0x1F600, 0x1F64F), 4), ((0x1F680, 0x1F6FF), 2), ((0x1F900, 0x1FAFF), 2), ((0x1F3FB, 0x1F3FF), 2),
    ((0x20000, 0x2A6DF), 1), ((0xE0000, 0xE007F), 1), ((0x10FFF0, 0x10FFFF), 1),
]
WS = [" ", "  ", "   ", "    ", " " * 8, " " * 24, " " * 25, "\t", "\t\t", "\n", "\n\n", "\r\n", "\r", " \n",
      "\n ", "  \n  ", " \t", "\u00a0", "\u3000", "\u2028", "\u2029", "\u0085", "\u000b", "\u000c", "\u2003"]
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL", "'D", "'",
                "\u2019s", "n't", "N'T"]
SPECIAL = ["<|endoftext|>", "<|padding|>", "<|endoftext", "endoftext|>", "<|padding", "<|", "|>", "<||>",
           "<|ENDOFTEXT|>", " <|endoftext|> "]
EMOJI_SEQ = ["👨‍👩‍👧‍👦", "👩‍💻", "🏳️‍🌈", "🧑🏻‍🔬", "👍🏽", "👋🏿", "❤️", "1️⃣", "🇯🇵", "🇫🇷", "🐍", "🙂", "\u200d",
             "\ufe0f", "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"]
BASES = "aeiouAEIOUnNcCsSzZyYwWxX"


def random_string(r, pieces, allow_nul):
    target = r.choices([0, r.randint(1, 8), r.randint(1, 40), r.randint(1, 200)], weights=[1, 30, 35, 34])[0]
    out = []
    n = 0
    blocks, bw = zip(*BLOCKS)
    while n < target:
        k = r.choices(range(9), weights=[18, 22, 10, 10, 6, 6, 6, 5, 4])[0]
        if k == 0:                                   # a slice of corpus text
            p = r.choice(pieces)
            i = r.randint(0, max(0, len(p) - 1))
            s = p[i:i + r.randint(1, 60)]
        elif k == 1:                                 # random code points
            s = ""
            for _ in range(r.randint(1, 6)):
                lo, hi = r.choices(blocks, weights=bw)[0]
                s += chr(r.randint(lo, hi))
        elif k == 2:                                 # whitespace run
            s = "".join(r.choice(WS) for _ in range(r.randint(1, 4)))
        elif k == 3:                                 # word + contraction
            s = r.choice(["it", "don", "they", "we", "I", "you", "He", "IT", "DON", "x", ""]) + r.choice(CONTRACTIONS)
        elif k == 4:                                 # digits
            s = "".join(r.choice("0123456789") for _ in range(r.randint(1, 25)))
            if r.random() < 0.3:
                s += r.choice([".", ",", "e-", "%", "x"]) + str(r.randint(0, 999))
        elif k == 5:                                 # special tokens, whole or broken
            s = r.choice(SPECIAL)
        elif k == 6:                                 # emoji sequences
            s = "".join(r.choice(EMOJI_SEQ) for _ in range(r.randint(1, 3)))
        elif k == 7:                                 # base letter + combining marks
            s = r.choice(BASES) + "".join(chr(r.randint(0x300, 0x36F)) for _ in range(r.randint(1, 3)))
        else:                                        # punctuation run
            s = "".join(r.choice("!?.,;:-_*#@$%^&()[]{}<>/\\|\"'`~+=") for _ in range(r.randint(1, 8)))
        out.append(s)
        n += len(s)
    s = "".join(out)
    if allow_nul and r.random() < 0.01:
        i = r.randint(0, len(s))
        s = s[:i] + "\x00" + s[i:]
    return s[:200]


def make_strings(count, seed, allow_nul):
    r = random.Random(seed)
    pieces = documents(seed + 1, 60_000)
    return [random_string(r, pieces, allow_nul) for _ in range(count)]


def show(s):
    return json.dumps(s, ensure_ascii=True)


def report(mismatches, total, what):
    for m in mismatches[:20]:
        print("MISMATCH", json.dumps(m, ensure_ascii=True))
    print(f"{what}: {total - len(mismatches)} passed, {len(mismatches)} failed")


def run_batch(args, tok, strings):
    tmp = args.keep or tempfile.mkdtemp(prefix="tokprop-")
    os.makedirs(tmp, exist_ok=True)
    inp = os.path.join(tmp, "in.jsonl")
    with open(inp, "w", encoding="utf-8") as f:
        for s in strings:
            f.write(json.dumps(s, ensure_ascii=args.ascii_json) + "\n")
    cmd = [args.ssm, "tokenize", "--tokenizer", args.tokenizer, "--batch", inp, "--json"]
    print("running:", " ".join(cmd), flush=True)
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=args.timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"could not run {args.ssm}: {e}")
        return 2
    dt = time.time() - t0
    if p.returncode != 0:
        print(f"exit code {p.returncode}; stderr:\n{p.stderr.decode('utf-8', 'replace')[-4000:]}")
        return 2
    rows = []
    for line in p.stdout.decode("utf-8", "strict").splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            o = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(o, dict) and "ids" in o:
            rows.append(o)
    print(f"ssm answered {len(rows)} rows for {len(strings)} strings in {dt:.2f}s")
    if len(rows) != len(strings):
        print(f"row count mismatch: expected {len(strings)}, got {len(rows)}")
        return 1
    t0 = time.time()
    encs = tok.encode_batch(strings)
    mismatches = []
    for i, (s, e, o) in enumerate(zip(strings, encs, rows)):
        want_ids = e.ids
        want_text = tok.decode(want_ids, skip_special_tokens=False)
        bad = []
        if o.get("ids") != want_ids:
            bad.append("ids")
        if o.get("text") != want_text:
            bad.append("text")
        if bad:
            first = next((j for j, (a, b) in enumerate(zip(o.get("ids") or [], want_ids)) if a != b),
                         min(len(o.get("ids") or []), len(want_ids)))
            mismatches.append({"index": i, "what": bad, "input": s, "want_ids": want_ids, "got_ids": o.get("ids"),
                               "first_differing_id_index": first, "want_tokens": e.tokens,
                               "want_text": want_text, "got_text": o.get("text")})
    print(f"tokenizers took {time.time() - t0:.2f}s")
    report(mismatches, len(strings), "encode+decode")
    return 1 if mismatches else 0


def last_json(stdout):
    for line in reversed(stdout.decode("utf-8", "strict").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in output")


def run_spawn(args, tok, strings):
    base = [args.ssm, "tokenize", "--tokenizer", args.tokenizer]
    mismatches, errors = [], 0
    vocab = tok.get_vocab_size()
    r = random.Random(args.seed + 7)
    t0 = time.time()
    checks = 0
    for i, s in enumerate(strings):
        e = tok.encode(s)
        want_text = tok.decode(e.ids, skip_special_tokens=False)
        id_lists = [e.ids]
        if r.random() < 0.5:  # also a random id list, often cutting UTF-8 sequences
            id_lists.append([r.randrange(vocab) for _ in range(r.randint(0, 12))])
        try:
            o = last_json(subprocess.run(base + [f"--text={s}", "--json"], capture_output=True,
                                         timeout=args.timeout).stdout)
            got_ids = o.get("ids")
        except Exception as ex:  # noqa: BLE001
            errors += 1
            got_ids = f"error: {ex}"
        checks += 1
        if got_ids != e.ids:
            mismatches.append({"index": i, "what": "encode", "input": s, "want_ids": e.ids, "got_ids": got_ids,
                               "want_tokens": e.tokens})
        for ids in id_lists:
            want = tok.decode(ids, skip_special_tokens=False) if ids is not e.ids else want_text
            try:
                o = last_json(subprocess.run(base + ["--decode=" + ",".join(map(str, ids)), "--json"],
                                             capture_output=True, timeout=args.timeout).stdout)
                got = o.get("text")
            except Exception as ex:  # noqa: BLE001
                errors += 1
                got = f"error: {ex}"
            checks += 1
            if got != want:
                mismatches.append({"index": i, "what": "decode", "ids": ids, "want_text": want, "got_text": got})
        if (i + 1) % 500 == 0:
            print(f"  {i + 1}/{len(strings)} strings, {len(mismatches)} mismatches, {time.time() - t0:.0f}s", flush=True)
    if errors:
        print(f"{errors} runs failed or printed no JSON")
    report(mismatches, checks, "encode/decode runs")
    return 1 if mismatches else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ssm", default=DEFAULT_SSM, help="the ssm binary (default .build/release/ssm)")
    ap.add_argument("--tokenizer", default=DEFAULT_TOKENIZER, help="a tokenizer.json (default: the fixture)")
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mode", choices=["batch", "spawn"], default="batch")
    ap.add_argument("--ascii-json", action="store_true", help="write the batch input with \\u escapes only")
    ap.add_argument("--keep", metavar="DIR", help="write the batch input into DIR (default: a temp dir)")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--dump", metavar="FILE", help="only write the strings and expected answers as JSONL and exit")
    args = ap.parse_args()
    args.tokenizer = os.path.abspath(args.tokenizer)
    tok = Tokenizer.from_file(args.tokenizer)
    strings = make_strings(args.count, args.seed, allow_nul=(args.mode == "batch"))
    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as f:
            for s, e in zip(strings, tok.encode_batch(strings)):
                f.write(json.dumps({"text": s, "ids": e.ids, "decoded": tok.decode(e.ids, skip_special_tokens=False)},
                                   ensure_ascii=False) + "\n")
        print(f"wrote {len(strings)} cases to {args.dump}")
        return 0
    if not os.path.exists(args.ssm):
        print(f"no ssm binary at {args.ssm} (build it, or pass --ssm PATH)")
        return 2
    print(f"{len(strings)} strings (seed {args.seed}), tokenizer {args.tokenizer}")
    return run_batch(args, tok, strings) if args.mode == "batch" else run_spawn(args, tok, strings)


if __name__ == "__main__":
    sys.exit(main())
