#!/usr/bin/env python3
"""Peer speed of Hugging Face transformers' Mamba on the CPU, for a mamba-130m-shaped model.

    HF_HUB_OFFLINE=1 python3 scripts/pretrained/peer_speed.py [--out /tmp/mamba-130m-random]
        [--make-only] [--threads 2] [--lengths 512,2048] [--decode-tokens 32] [--repeats 2]

Make (skipped when OUT/config.json exists): MambaForCausalLM with MambaConfig(num_hidden_layers=24)
(everything else MambaConfig's defaults: hidden 768, state 16, expand 2, conv 4, dt rank 48,
vocab 50280, tied embeddings), random weights from seed 0, written with save_pretrained to
OUT (float32, ~0.5 GB) and OUT-bf16 (model.to(torch.bfloat16)), each with a copy of the fixture
tokenizer.json. That tokenizer has only 960 ids, far fewer than 50280: fine for timing, and every
id it makes is < 50280. Not trained, so its text is noise.

Measure (unless --make-only), loaded from OUT in float32, torch.set_num_threads(--threads),
torch.no_grad, eval mode (transformers' pure-PyTorch path: no mamba_ssm / causal_conv1d kernels):
  prefill   model(ids, use_cache=True) on one random prompt of each --lengths (batch 1), best of
            --repeats, after one warm-up; tokens/s = length / seconds
  decode    after a 16-token prefill, --decode-tokens calls model(next_id, cache=..., use_cache=True)
            with greedy argmax, timed as a whole (batch 1); best of --repeats
  generate  model.generate(16-token prompt, max_new_tokens=min_new_tokens=--decode-tokens,
            greedy) minus the time of the 16-token prefill, divided into --decode-tokens
Prints progress and one JSON line last. Needs: pip install torch transformers safetensors.
"""

import argparse
import json
import os
import platform
import shutil
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import MambaConfig, MambaForCausalLM  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURE_TOKENIZER = os.path.join(ROOT, "Tests", "Fixtures", "pretrained", "tokenizer", "tokenizer.json")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def make(out, tokenizer):
    if os.path.exists(os.path.join(out, "config.json")) and os.path.exists(os.path.join(out + "-bf16", "config.json")):
        print(f"{out} and {out}-bf16 exist; not remaking them")
        return
    torch.manual_seed(0)
    cfg = MambaConfig(num_hidden_layers=24)
    t0 = time.time()
    model = MambaForCausalLM(cfg).eval()
    n = sum(p.numel() for p in model.parameters())
    print(f"made a random mamba-130m-shaped model: {n / 1e6:.1f}M parameters (tied), {time.time() - t0:.1f}s")
    for d, dtype in [(out, torch.float32), (out + "-bf16", torch.bfloat16)]:
        m = model.to(dtype)  # float32 first; then in place to bfloat16
        if os.path.isdir(d):
            shutil.rmtree(d)
        m.save_pretrained(d)
        shutil.copy(tokenizer, os.path.join(d, "tokenizer.json"))
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        print(f"wrote {d} ({size / 1e6:.0f} MB): {sorted(os.listdir(d))}")


def best_of(n, fn):
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="/tmp/mamba-130m-random")
    ap.add_argument("--tokenizer", default=FIXTURE_TOKENIZER)
    ap.add_argument("--make-only", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lengths", default="512,2048")
    ap.add_argument("--decode-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    make(out, args.tokenizer)
    if args.make_only:
        return 0

    torch.set_num_threads(args.threads)
    model = MambaForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    cfg = model.config
    g = torch.Generator().manual_seed(1)
    res = {
        "peer": "transformers", "model": os.path.basename(out), "dtype": "float32", "threads": args.threads,
        "layers": cfg.num_hidden_layers, "hidden": cfg.hidden_size, "state": cfg.state_size, "vocab": cfg.vocab_size,
        "torch": torch.__version__, "transformers": transformers.__version__, "cpu": cpu_model(),
        "load_average_start": os.getloadavg()[0],
    }
    with torch.no_grad():
        model(torch.randint(2, 50277, (1, 16), generator=g), use_cache=True)          # warm-up
        for L in [int(x) for x in args.lengths.split(",") if x]:
            ids = torch.randint(2, 50277, (1, L), generator=g)
            t = best_of(args.repeats, lambda: model(ids, use_cache=True))
            res[f"prefill_{L}_seconds"] = t
            res[f"prefill_{L}_tokens_per_second"] = L / t
            print(f"prefill {L}: {t:.3f}s, {L / t:,.1f} tokens/s", flush=True)

        prompt = torch.randint(2, 50277, (1, 16), generator=g)
        n = args.decode_tokens

        def prefill():
            return model(prompt, use_cache=True)

        def decode():
            o = prefill()
            cache, nxt = o.cache, o.logits[:, -1].argmax(-1, keepdim=True)
            t0 = time.perf_counter()
            for _ in range(n):
                o = model(nxt, cache=cache, use_cache=True)
                cache, nxt = o.cache, o.logits[:, -1].argmax(-1, keepdim=True)
            return time.perf_counter() - t0

        decode()                                                                          # warm-up
        t_dec = min(decode() for _ in range(args.repeats))
        res["decode_steps"] = n
        res["decode_seconds"] = t_dec
        res["decode_tokens_per_second"] = n / t_dec
        print(f"decode (cache steps): {n} tokens in {t_dec:.3f}s, {n / t_dec:,.1f} tokens/s", flush=True)

        t_pre = best_of(args.repeats, prefill)
        mask = torch.ones_like(prompt)
        t_gen = best_of(args.repeats, lambda: model.generate(prompt, attention_mask=mask, max_new_tokens=n,
                                                             min_new_tokens=n, do_sample=False, pad_token_id=0))
        res["generate_seconds"] = t_gen
        res["generate_prefill16_seconds"] = t_pre
        res["generate_decode_tokens_per_second"] = n / max(t_gen - t_pre, 1e-9)
        print(f"generate: {n} new tokens in {t_gen:.3f}s (16-token prefill {t_pre:.3f}s), "
              f"{res['generate_decode_tokens_per_second']:,.1f} tokens/s", flush=True)
    res["load_average_end"] = os.getloadavg()[0]
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
