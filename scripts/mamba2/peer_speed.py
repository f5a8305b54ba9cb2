#!/usr/bin/env python3
"""Peer speed of Hugging Face transformers' Mamba-2 on the CPU: a mamba2-130m-shaped model and its SSD scan.

    HF_HUB_OFFLINE=1 python3 scripts/mamba2/peer_speed.py [--out /tmp/mamba2-130m-random]
        [--make-only] [--model-only | --ssd-only] [--threads 2] [--lengths 512,2048]
        [--decode-tokens 32] [--ssd-lengths 2048,8192] [--repeats 2]

Make (skipped when OUT/config.json exists, and under --ssd-only): Mamba2ForCausalLM shaped like
state-spaces/mamba2-130m: Mamba2Config(hidden_size=768, num_hidden_layers=24, state_size=128,
expand=2, head_dim=64, num_heads=24, n_groups=1, conv_kernel=4, chunk_size=256, vocab_size=50288,
tie_word_embeddings=True, use_bias=False, use_conv_bias=True, layer_norm_epsilon=1e-5,
time_step_limit=(0.0, inf), bos/eos/pad ids 0), random weights from torch.manual_seed(0), written
with save_pretrained to OUT (float32 safetensors, ~0.5 GB) with a byte copy of the fixture
tokenizer.json (960 ids; every id it makes is < 50288; fine for timing). The folder is reloaded once
with from_pretrained and an 8-token forward is compared with the in-memory model. Not trained, so
its text is noise.

Measure, loaded from OUT in float32, torch.set_num_threads(--threads), eval mode, torch.no_grad
except where a backward is timed. transformers' pure-PyTorch path runs (no mamba_ssm /
causal_conv1d kernels on a CPU); each fallback logs a one-time warning, which is expected.
  prefill   (unless --ssd-only) model(ids, use_cache=True) on one random prompt of each --lengths
            (batch 1; all logits, as the default logits_to_keep=0 gives), best of --repeats after
            one warm-up; tokens/s = length / seconds
  decode    (unless --ssd-only) after a 16-token prefill model(prompt, use_cache=True),
            --decode-tokens calls model(next_id, cache=out.cache, use_cache=True) with greedy
            argmax, timed as a whole (batch 1), best of --repeats after one warm-up. In 5.24 the
            cache keyword is `cache` (`cache_params` is a deprecated alias) and there is no
            `cache_position`: Mamba2ForCausalLM.forward would swallow one in **kwargs and ignore it.
            A mixer takes the one-token step (causal_conv1d_update + mamba2_selective_state_update)
            when seq_len == 1 and the cache layer has a previous state. Check (untimed): the calls
            are counted while decoding (24 x steps of each step function, 0 chunk scans), and every
            step's logits are compared with one full no-cache forward over prompt + generated ids
            (`check_max_abs`, over all steps and the prefill's last position).
  ssd       (unless --model-only) the chunked SSD scan alone, as transformers computes it on a CPU:
            transformers.models.mamba2.modeling_mamba2.mamba2_chunk_scan (the module-level torch
            fallback that Mamba2Mixer.forward calls for every multi-token input, in training too),
            called directly with the arguments the mixer passes: x (B,L,H,P), dt (B,L,H) raw,
            A (H) (the mixer's -exp(A_log)), B and C (B,L,G,N), chunk_size=256, D=D (H),
            dt_bias=dt_bias (H), dt_softplus=True, dt_limit=(0, inf), return_final_states=False
            (as without a cache). So dt' = clamp(softplus(dt + dt_bias), 0, inf) is computed inside
            the timed function, as in the layer. Shape: mamba2-130m's H=24, P=64, N=128, G=1, B=1,
            chunk 256, L in --ssd-lengths. Inputs seeded (x, B, C, D ~ N(0,1); dt ~ 0.5 N(0,1);
            dt_bias = softplus^-1 of log-uniform [1e-3, 1e-1]; A = -(1..H)), all requires_grad.
            forward under no_grad; forward+backward: loss = (y * dy).sum() with a fixed random dy,
            grads cleared before each run. Best of --repeats after a warm-up of each. Checked once
            (untimed) against a plain sequential float64 recurrence at L=300 (crosses a chunk
            boundary and pads): `ssd_check_max_rel`.
Flop count assumed for the chunked algorithm (chunk Q, H heads, head dim P, state N, G groups,
ceil(L/Q) chunks, dense Q x Q blocks, multiply-add = 2 flops, state passing and elementwise work
neglected): per chunk 2 * (G Q^2 N [C B^T] + H Q^2 P [intra-chunk output] + H Q N P [chunk states]
+ H Q N P [inter-chunk output]). transformers repeats B and C to all H heads before C B^T, so it
does H Q^2 N there instead of G Q^2 N: `forward_flops_as_computed`. Forward+backward is taken as
3 x forward. GFLOP/s figures use the assumed counts.
Prints progress to stderr and one JSON object as the last stdout line. Needs: pip install torch
transformers safetensors.
"""

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402
from transformers import Mamba2Config, Mamba2ForCausalLM  # noqa: E402
from transformers.models.mamba2 import modeling_mamba2 as hf_mamba2  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURE_TOKENIZER = os.path.join(ROOT, "Tests", "Fixtures", "pretrained", "tokenizer", "tokenizer.json")
PROMPT = 16                                            # decode prompt length
SSD_SHAPE = {"H": 24, "P": 64, "N": 128, "G": 1, "B": 1, "chunk": 256}
SSD_FUNCTION = "transformers.models.mamba2.modeling_mamba2.mamba2_chunk_scan"
STEP_FUNCTIONS = ["causal_conv1d_update", "mamba2_selective_state_update", "causal_conv1d_fn", "mamba2_chunk_scan"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def config_130m():
    return Mamba2Config(
        hidden_size=768, num_hidden_layers=24, state_size=128, expand=2, head_dim=64, num_heads=24,
        n_groups=1, conv_kernel=4, chunk_size=256, vocab_size=50288, tie_word_embeddings=True,
        use_bias=False, use_conv_bias=True, layer_norm_epsilon=1e-5, time_step_limit=(0.0, float("inf")),
        bos_token_id=0, eos_token_id=0, pad_token_id=0,
    )


def make(out, tokenizer):
    if os.path.exists(os.path.join(out, "config.json")):
        log(f"{out} exists; not remaking it")
        return
    torch.manual_seed(0)
    t0 = time.time()
    model = Mamba2ForCausalLM(config_130m()).eval()
    n = sum(p.numel() for p in model.parameters())
    log(f"made a random mamba2-130m-shaped model: {n / 1e6:.1f}M parameters (tied), {time.time() - t0:.1f}s")
    if os.path.isdir(out):
        shutil.rmtree(out)
    model.save_pretrained(out)
    shutil.copy(tokenizer, os.path.join(out, "tokenizer.json"))
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    log(f"wrote {out} ({size / 1e6:.0f} MB): {sorted(os.listdir(out))}")

    back = Mamba2ForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    ids = torch.randint(1, 960, (1, 8), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a, b = model(ids).logits, back(ids).logits
    diff = (a - b).abs().max().item()
    tied = back.lm_head.weight.data_ptr() == back.backbone.embeddings.weight.data_ptr()
    log(f"reloaded {out}: 8-token forward, logits {tuple(b.shape)}, max |reloaded - made| = {diff:.3g}, tied={tied}")
    if not (torch.isfinite(b).all() and diff <= 1e-6 and tied):
        raise SystemExit("reloaded model does not match the one made")


def best_of(n, fn):
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


@contextlib.contextmanager
def count_calls(names):
    """Counts calls of modeling_mamba2's module-level kernels (Mamba2Mixer.forward looks them up there)."""
    counts = dict.fromkeys(names, 0)
    saved = {k: getattr(hf_mamba2, k) for k in names}

    def wrap(k, f):
        def counted(*a, **kw):
            counts[k] += 1
            return f(*a, **kw)
        return counted

    for k in names:
        setattr(hf_mamba2, k, wrap(k, saved[k]))
    try:
        yield counts
    finally:
        for k in names:
            setattr(hf_mamba2, k, saved[k])


def time_model(out, args, res):
    model = Mamba2ForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    cfg = model.config
    V = cfg.vocab_size
    res.update({"model": os.path.basename(out), "layers": cfg.num_hidden_layers, "hidden": cfg.hidden_size,
                "heads": cfg.num_heads, "head_dim": cfg.head_dim, "state": cfg.state_size,
                "groups": cfg.n_groups, "chunk": cfg.chunk_size, "vocab": V})
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        with count_calls(["mamba2_chunk_scan"]) as c:
            model(torch.randint(2, 50277, (1, PROMPT), generator=g), use_cache=True)         # warm-up
        log(f"warm-up prefill: {c['mamba2_chunk_scan']} mamba2_chunk_scan calls ({cfg.num_hidden_layers} layers)")
        res["prefill"] = []
        for L in [int(x) for x in args.lengths.split(",") if x]:
            ids = torch.randint(2, 50277, (1, L), generator=g)
            t = best_of(args.repeats, lambda: model(ids, use_cache=True))
            res["prefill"].append({"tokens": L, "seconds": t, "tokens_per_second": L / t})
            log(f"prefill {L}: {t:.3f}s, {L / t:,.1f} tokens/s")

        prompt = torch.randint(2, 50277, (1, PROMPT), generator=g)
        n = args.decode_tokens

        def decode():
            o = model(prompt, use_cache=True)
            cache, nxt = o.cache, o.logits[:, -1].argmax(-1, keepdim=True)
            t0 = time.perf_counter()
            for _ in range(n):
                o = model(nxt, cache=cache, use_cache=True)
                cache, nxt = o.cache, o.logits[:, -1].argmax(-1, keepdim=True)
            return time.perf_counter() - t0

        decode()                                                                           # warm-up
        t_dec = min(decode() for _ in range(args.repeats))
        log(f"decode (cache steps): {n} tokens in {t_dec:.3f}s, {n / t_dec:,.1f} tokens/s")

        # Untimed check: the steps take the single-token path, and agree with a full forward.
        with count_calls(STEP_FUNCTIONS) as c:
            o = model(prompt, use_cache=True)
            before = dict(c)
            cache, nxt = o.cache, o.logits[:, -1].argmax(-1, keepdim=True)
            kept = [(o.logits[:, -1], nxt)]
            for _ in range(n):
                o = model(nxt, cache=cache, use_cache=True)
                cache, nxt = o.cache, o.logits[:, -1].argmax(-1, keepdim=True)
                kept.append((o.logits[:, -1], nxt))
        step_calls = {k: c[k] - before[k] for k in STEP_FUNCTIONS}
        generated = torch.cat([t for _, t in kept[:-1]], dim=1)                           # the n fed tokens
        full = model(torch.cat([prompt, generated], dim=1), use_cache=False).logits[0]
        step_logits = torch.cat([lg for lg, _ in kept], dim=0)                          # positions 15 .. 15+n
        ref = full[PROMPT - 1:PROMPT + n]
        check = (step_logits - ref).abs().max().item()
        greedy_same = bool((ref.argmax(-1) == step_logits.argmax(-1)).all())
        Lyr = cfg.num_hidden_layers
        path_ok = (step_calls["causal_conv1d_update"] == Lyr * n and step_calls["mamba2_selective_state_update"] == Lyr * n
                   and step_calls["mamba2_chunk_scan"] == 0 and step_calls["causal_conv1d_fn"] == 0)
        log(f"decode check: calls during {n} steps {step_calls} (single-step path: {path_ok}); "
            f"max |step logits - full forward| = {check:.3g} over {n + 1} positions "
            f"(max |logit| {ref.abs().max().item():.3g}), greedy ids agree: {greedy_same}")
        res["decode"] = {"tokens": n, "prompt_tokens": PROMPT, "seconds": t_dec, "tokens_per_second": n / t_dec,
                         "check_max_abs": check, "check_max_abs_logit": ref.abs().max().item(),
                         "check_greedy_same": greedy_same, "check_step_calls": step_calls,
                         "check_single_step_path": path_ok,
                         "call": "model(next_id, cache=out.cache, use_cache=True); no cache_position in 5.24"}
        if not path_ok or check > 1e-3:
            raise SystemExit("decode did not take the cached single-step path, or disagrees with a full forward")


def ssd_inputs(L, dtype=torch.float32, seed=4, H=24, P=64, N=128, G=1, Bsz=1):
    g = torch.Generator().manual_seed(seed + L)
    x = torch.randn(Bsz, L, H, P, generator=g)
    dt = 0.5 * torch.randn(Bsz, L, H, generator=g)
    lo, hi = math.log(1e-3), math.log(1e-1)
    dt0 = torch.exp(torch.rand(H, generator=g) * (hi - lo) + lo)
    dt_bias = dt0 + torch.log(-torch.expm1(-dt0))                                        # softplus^-1(dt0)
    A = -torch.arange(1, H + 1, dtype=torch.float32)
    B = torch.randn(Bsz, L, G, N, generator=g)
    C = torch.randn(Bsz, L, G, N, generator=g)
    D = torch.randn(H, generator=g)
    dy = torch.randn(Bsz, L, H, P, generator=g)
    leaves = [t.to(dtype).requires_grad_(True) for t in (x, dt, A, B, C, D, dt_bias)]
    return leaves, dy.to(dtype)


def ssd_call(x, dt, A, B, C, D, dt_bias, chunk):
    return hf_mamba2.mamba2_chunk_scan(x, dt, A, B, C, chunk_size=chunk, D=D, dt_bias=dt_bias, dt_softplus=True,
                                       dt_limit=(0.0, float("inf")), return_final_states=False)


def ssd_sequential_f64(x, dt, A, B, C, D, dt_bias):
    """Plain recurrence: h_t = exp(dt'_t A) h_{t-1} + dt'_t x_t B_t^T, y_t = h_t C_t + D x_t (per head)."""
    x, dt, A, B, C, D, dt_bias = (t.detach().double() for t in (x, dt, A, B, C, D, dt_bias))
    Bsz, L, H, P = x.shape
    G, N = B.shape[2], B.shape[3]
    d = F.softplus(dt + dt_bias)                                                        # (B, L, H)
    Bh = B.repeat_interleave(H // G, dim=2)                                             # (B, L, H, N)
    Ch = C.repeat_interleave(H // G, dim=2)
    h = torch.zeros(Bsz, H, P, N, dtype=torch.float64)
    ys = []
    for t in range(L):
        h = torch.exp(d[:, t] * A)[..., None, None] * h + (d[:, t, :, None] * x[:, t])[..., None] * Bh[:, t, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", h, Ch[:, t]) + D[:, None] * x[:, t])
    return torch.stack(ys, dim=1)


def ssd_flops(L, H, P, N, G, Q, cb_heads):
    chunks = -(-L // Q)
    return chunks * 2 * (cb_heads * Q * Q * N + H * Q * Q * P + 2 * H * Q * N * P)


def time_ssd(args, res):
    s = SSD_SHAPE
    H, P, N, G, Q = s["H"], s["P"], s["N"], s["G"], s["chunk"]
    # Correctness of the call (untimed): against the sequential float64 loop.
    (x, dt, A, B, C, D, dt_bias), _ = ssd_inputs(300, seed=7)
    with torch.no_grad():
        y = ssd_call(x, dt, A, B, C, D, dt_bias, Q).double()
    ref = ssd_sequential_f64(x, dt, A, B, C, D, dt_bias)
    check = ((y - ref).abs().max() / ref.abs().max()).item()
    log(f"ssd check: {SSD_FUNCTION} vs sequential float64 at L=300: max |diff| / max |ref| = {check:.3g}")
    res["ssd_check_max_rel"] = check
    res["ssd_shape"] = dict(s)
    if not check < 1e-4:
        raise SystemExit("mamba2_chunk_scan disagrees with the sequential recurrence")

    res["ssd"] = []
    for L in [int(v) for v in args.ssd_lengths.split(",") if v]:
        leaves, dy = ssd_inputs(L)

        def fwd():
            with torch.no_grad():
                ssd_call(*leaves, Q)

        def fwd_bwd():
            for t in leaves:
                t.grad = None
            y = ssd_call(*leaves, Q)
            (y * dy).sum().backward()

        fwd()                                                                               # warm-up
        t_f = best_of(args.repeats, fwd)
        fwd_bwd()                                                                           # warm-up
        t_fb = best_of(args.repeats, fwd_bwd)
        grads_finite = all(t.grad is not None and bool(torch.isfinite(t.grad).all()) for t in leaves)
        fl = ssd_flops(L, H, P, N, G, Q, cb_heads=G)
        fl_hf = ssd_flops(L, H, P, N, G, Q, cb_heads=H)
        row = {"length": L, "forward_seconds": t_f, "forward_backward_seconds": t_fb,
               "function": SSD_FUNCTION, "called": "directly (module-level function, as Mamba2Mixer.forward calls it)",
               "dt": "raw dt in; dt' = clamp(softplus(dt + dt_bias), 0, inf) inside (dt_softplus=True)",
               "forward_flops_assumed": fl, "forward_flops_as_computed": fl_hf,
               "forward_backward_flops_assumed": 3 * fl,
               "forward_gflops_per_second": fl / t_f / 1e9,
               "forward_backward_gflops_per_second": 3 * fl / t_fb / 1e9,
               "forward_tokens_per_second": L / t_f, "forward_backward_tokens_per_second": L / t_fb,
               "grads_finite": grads_finite}
        res["ssd"].append(row)
        log(f"ssd L={L}: forward {t_f:.3f}s ({row['forward_gflops_per_second']:.2f} GFLOP/s assumed), "
            f"forward+backward {t_fb:.3f}s ({row['forward_backward_gflops_per_second']:.2f} GFLOP/s), "
            f"grads finite: {grads_finite}")
        del leaves, dy


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="/tmp/mamba2-130m-random")
    ap.add_argument("--tokenizer", default=FIXTURE_TOKENIZER)
    ap.add_argument("--make-only", action="store_true")
    only = ap.add_mutually_exclusive_group()
    only.add_argument("--model-only", action="store_true", help="skip the SSD scan timings")
    only.add_argument("--ssd-only", action="store_true", help="skip the model (and making it)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lengths", default="512,2048")
    ap.add_argument("--decode-tokens", type=int, default=32)
    ap.add_argument("--ssd-lengths", default="2048,8192")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    torch.set_num_threads(args.threads)
    if not args.ssd_only or args.make_only:
        make(out, args.tokenizer)
    if args.make_only:
        return 0

    res = {
        "peer": "transformers", "dtype": "float32", "threads": args.threads, "repeats": args.repeats,
        "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
        "cpu": cpu_model(), "load_average_start": os.getloadavg()[0],
    }
    if not args.ssd_only:
        time_model(out, args, res)
    if not args.model_only:
        time_ssd(args, res)
    res["load_average_end"] = os.getloadavg()[0]
    print(json.dumps(res, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
