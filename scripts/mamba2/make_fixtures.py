#!/usr/bin/env python3
"""Make the Mamba-2 (SSD) test fixtures (deterministic, CPU only, one torch thread).

    HF_HUB_OFFLINE=1 python3 scripts/mamba2/make_fixtures.py [--only ssd,mamba2,lm] [--steps 1500]

Nothing is downloaded. Re-running it rewrites the same bytes (seeded; one torch thread;
deterministic algorithms) and replaces its own entries in Tests/Fixtures/cases.json.

Made with: Python 3.11.7, torch 2.15.0 (PyPI build, run on the CPU), transformers 5.24.0,
tokenizers 0.23.3, safetensors 0.8.0, numpy 2.4.6 (printed at start and stored in the LM
fixture's metadata).

What it writes (paths relative to Tests/Fixtures/):

<case>.in.safetensors / <case>.out.safetensors and their entries in cases.json, for
  op "ssd" (`ssm eval ssd`), seeds 2000 + i:
    ssd_G2_L100_Q32_Dh_bias_init_bwd_f64, ssd_G2_L77_Q16_DhP_bwd_f32,
    ssd_G1_L40_Q64_limit_bwd_f64, ssd_G1_L256_Q64_fwd_f32
  Expected values: `ssd_chunked` below (our float64 equivalent of mamba_ssm's
  ssd_minimal_discrete, with L zero-padded up to a multiple of the chunk), checked against a
  plain sequential float64 loop and against transformers' mamba2 chunk-scan fallback.
  op "mamba2" (`ssm eval mamba2`), seeds 2100 + i:
    mamba2_M32_G2_L50_Q16_bwd_f64, mamba2_M32_G1_L37_Q16_bwd_f32, mamba2_step_M32_G2_L20_f64
  Expected values: transformers' Mamba2Mixer (the pure-PyTorch path; no cache) in float64 with
  its float32 casts removed (see `keep_float64`), checked against `mamba2_block_reference`.
pretrained/tiny-mamba2/   Mamba2ForCausalLM (hidden 32, 4 heads x 16, state 16, 2 groups,
                          kernel 4, chunk 16, 2 layers, vocab 912, tied) trained briefly on the
                          corpus: config.json, generation_config.json, model.safetensors (F32),
                          tokenizer.json (a byte copy of pretrained/tokenizer/tokenizer.json)
pretrained/tiny_mamba2_expected.safetensors (+ .json): input_ids I64 (2,37); logits F32
    (2,37,V) (HF float32 forward, use_cache=False); logits_f64 F64 (2,37,V) (`lm_reference`);
    prompt_ids I64 (1,P); greedy_ids I64 (1,24); batch_prompt_ids I64 (2,P2); batch_greedy_ids
    I64 (2,16); last_logits F32 (1,V); conv_state_{i} F32 (1, E+2GN, K) and ssm_state_{i} F32
    (1, H, P, N): HF's cache after the prompt.
"""

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import safetensors  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import Mamba2Config, Mamba2ForCausalLM  # noqa: E402
from transformers.cache_utils import DynamicCache  # noqa: E402
from transformers.models.mamba2 import modeling_mamba2 as hf_mamba2  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "pretrained"))
from corpus import documents  # noqa: E402

FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")
PRETRAINED = os.path.join(FIXTURES, "pretrained")
TOKENIZER_JSON = os.path.join(PRETRAINED, "tokenizer", "tokenizer.json")
EPS_RATIO = 2.0 ** -52 / 2.0 ** -23          # eps64 / eps32
MAMBA_COMMIT = "e9594ce1c732d97440f0332fdc43170a2294dbfa"


def versions():
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }


# =============================================================================================
# helpers

def rel_err(a, e):
    """max|a - e| / max|e| (the fixtures' check), in float64."""
    e = e.double()
    den = e.abs().max().item()
    num = (a.double() - e).abs().max().item()
    return num / den if den > 0 else num


def maxdiff(a, b):
    return (a.double() - b.double()).abs().max().item()


def sig3(v):
    return float(f"{v:.3g}")


def round_up_125(v):
    """The smallest 1, 2 or 5 x 10^k that is >= v."""
    k = math.floor(math.log10(v))
    for m, e in ((1, k), (2, k), (5, k), (1, k + 1)):
        c = float(f"{m}e{e}")
        if c >= v * (1 - 1e-9):
            return c
    raise AssertionError(v)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def shapes(tensors):
    return {k: list(v.shape) for k, v in tensors.items()}


def perturbed(tensors, seed):
    """Every float tensor times (1 + 1e-15 u), u uniform in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in tensors.items():
        u = torch.rand(v.shape, generator=g, dtype=torch.float64) * 2 - 1
        out[k] = v * (1 + 1e-15 * u)
    return out


@contextlib.contextmanager
def keep_float64():
    """While active, Tensor.float() and Tensor.to(torch.float32) leave float64 tensors float64.

    transformers 5.24's Mamba-2 code upcasts to float32 in several places (A = -exp(A_log.float()),
    the chunk scan's hidden_states.float(), B.float(), C.float(), dt.float(); the gated and plain
    RMSNorms' hidden_states.to(torch.float32) and gate.to(torch.float32); the step path's
    dt.float() * A.float(); Mamba2Block's residual.to(torch.float32) (residual_in_fp32); the LM
    head's logits.float()). Those are upcasts for half precision; on float64 tensors they are
    downcasts that cut the result to float32 accuracy. Patching them to identity (float64 only)
    makes model.double() compute in float64 end to end."""
    orig_float, orig_to = torch.Tensor.float, torch.Tensor.to

    def _float(self, *a, **k):
        if self.dtype == torch.float64:
            return self
        return orig_float(self, *a, **k)

    def _to(self, *a, **k):
        if self.dtype == torch.float64:
            a = tuple(torch.float64 if x is torch.float32 else x for x in a)
            if k.get("dtype") is torch.float32:
                k = dict(k, dtype=torch.float64)
        return orig_to(self, *a, **k)

    torch.Tensor.float, torch.Tensor.to = _float, _to
    try:
        yield
    finally:
        torch.Tensor.float, torch.Tensor.to = orig_float, orig_to


def with_grads(fn, inputs, grad_names, cotangents):
    """Run fn(dict of tensors) -> dict of outputs; if cotangents ({output name: tensor}) are given,
    add d_<name> for every name in grad_names: the gradient of sum(cot * output) by autograd."""
    leaves = {k: v.detach().clone().requires_grad_(k in grad_names) for k, v in inputs.items()}
    outs = fn(leaves)
    if cotangents:
        loss = sum((outs[k] * c.to(outs[k].dtype)).sum() for k, c in cotangents.items())
        grads = torch.autograd.grad(loss, [leaves[k] for k in grad_names])
        outs = dict(outs)
        outs.update({f"d_{k}": g for k, g in zip(grad_names, grads)})
    return {k: v.detach() for k, v in outs.items()}


def save_case(name, inputs, outputs):
    for suffix, t in (("in", inputs), ("out", outputs)):
        path = os.path.join(FIXTURES, f"{name}.{suffix}.safetensors")
        save_file({k: v.contiguous() for k, v in t.items()}, path)
        back = load_file(path)
        assert list(back) and all(torch.equal(back[k], t[k]) for k in t), path


def tolerances(dtype, expected, f32_err, perturbed_change=None, extra=None, extra_label=None):
    """Per-tensor tolerances as Tests/Fixtures/README.md describes them, and the tol_reason text."""
    names = list(expected)
    if dtype == "F32":
        tt = {k: round_up_125(max(1e-4, 10 * f32_err[k])) for k in names}
        worst = max(f32_err.values())
        reason = ("float32: per tensor max(1e-4 floor, 10x the error of the same code run in float32 vs the "
                  f"float64 expectation; worst {worst:.1e}), rounded up to 1/2/5")
    else:
        tt = {}
        for k in names:
            v = max(1e-9, 10 * f32_err[k] * EPS_RATIO, 10 * perturbed_change[k], 10 * (extra or {}).get(k, 0.0))
            tt[k] = round_up_125(v)
        w32 = max(f32_err.values())
        wp = max(perturbed_change.values())
        reason = ("float64: per tensor max(1e-9 floor, 10x the float32 run's error scaled by eps64/eps32 "
                  f"(worst {w32:.1e} -> {w32 * EPS_RATIO:.1e}), 10x the float64 change for inputs perturbed by "
                  f"1e-15 (worst {wp:.1e})")
        if extra:
            reason += f", 10x {extra_label} (worst {max(extra.values()):.1e})"
        reason += "), rounded up to 1/2/5"
    return tt, reason


def entry(name, op, options, dtype, seed, inputs, outputs, backward, tt, reason, produced_by, config,
          validation, f32_err, pert=None):
    e = {
        "name": name,
        "op": op,
        "options": options,
        "dtype": dtype,
        "seed": seed,
        "inputs": shapes(inputs),
        "outputs": shapes(outputs),
        "backward": backward,
        "tol": max(tt.values()),
        "tol_reason": reason,
        "tol_tensors": tt,
        "check": "allclose",
        "produced_by": produced_by,
        "config": config,
        "validation": validation,
        "f32_baseline_rel_err": {k: sig3(v) for k, v in f32_err.items()},
    }
    if pert is not None:
        e["f64_perturbed_rel_change"] = {k: sig3(v) for k, v in pert.items()}
    return e


def write_cases_json(new_entries, ops):
    """Replace this script's entries (same name, or op in `ops`) in cases.json and keep every other
    entry as it is; ours go where the first of them was, or at the end."""
    path = os.path.join(FIXTURES, "cases.json")
    with open(path, encoding="utf-8") as f:
        raw = f.read()
    doc = json.loads(raw)
    assert json.dumps(doc, indent=1) + "\n" == raw, "cases.json is not in the json.dumps(indent=1) spelling"
    ours = {e["name"] for e in new_entries}
    mine = [i for i, c in enumerate(doc["cases"]) if c["name"] in ours or c["op"] in ops]
    at = mine[0] if mine else len(doc["cases"])
    kept = [c for i, c in enumerate(doc["cases"]) if i not in set(mine)]
    at -= sum(1 for i in mine if i < at)
    doc["cases"] = kept[:at] + new_entries + kept[at:]
    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"   # no Infinity/NaN: strict JSON
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return len(kept)


def sort_safetensors_metadata(path):
    """Rewrite the header of a safetensors file with its __metadata__ keys sorted (safetensors keeps
    the metadata in a hash map, so their order would change from run to run). Same header length."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    body = raw[8:8 + n].decode("utf-8").rstrip(" ")
    head = json.loads(body)
    head["__metadata__"] = dict(sorted(head["__metadata__"].items()))
    new = json.dumps(head, ensure_ascii=False, separators=(",", ":"))
    assert len(new.encode("utf-8")) == len(body.encode("utf-8")), "unexpected header spelling"
    new += " " * (n - len(new.encode("utf-8")))
    with open(path, "wb") as f:
        f.write(raw[:8] + new.encode("utf-8") + raw[8 + n:])


# =============================================================================================
# A. The SSD scan
#
# Shapes: x (b, l, h, p), dt (b, l, h), A (h), B and C (b, l, g, n), D (h) or (h, p),
# dt_bias (h), initial_states (b, h, p, n). Head h reads group h // (h_total / g).

def discretize_dt(dt, dt_bias, softplus, dt_min, dt_max):
    """dt' = clamp(softplus?(dt + dt_bias?), dt_min, dt_max), the order mamba_chunk_scan_combined uses."""
    if dt_bias is not None:
        dt = dt + dt_bias
    if softplus:
        dt = F.softplus(dt)
    return torch.clamp(dt, min=dt_min, max=dt_max)


def heads_from_groups(t, num_heads):
    """(b, l, g, n) -> (b, l, h, n): each group's B or C repeated for its h / g consecutive heads."""
    return t.repeat_interleave(num_heads // t.shape[2], dim=2)


def segment_sums(a):
    """(..., T) -> (..., T, T) with [i, j] = a[j+1] + ... + a[i] for i >= j (so 0 on the diagonal)
    and -inf for i < j. Mirrors mamba_ssm's `segsum` (ssd_minimal.py): it sums the masked, repeated
    input cumulatively rather than subtracting two cumulative sums, which keeps it exact-ish."""
    T = a.shape[-1]
    rep = a.unsqueeze(-1).expand(*a.shape, T)                  # [.., i, j] = a[i]
    below = torch.ones(T, T, dtype=torch.bool).tril(diagonal=-1)
    sums = rep.masked_fill(~below, 0.0).cumsum(dim=-2)        # [.., i, j] = sum_{j < k <= i} a[k]
    return sums.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))


def ssd_chunked(X, a, Bh, Ch, Q, initial_states=None):
    """Our equivalent of mamba_ssm.modules.ssd_minimal.ssd_minimal_discrete (the paper's Listing 1),
    written independently, with B and C already expanded to heads (the official einsums carry a
    group axis that is only right for one group).

    X = x * dt' (b, l, h, p), a = A * dt' (b, l, h), Bh and Ch (b, l, h, n), l a multiple of Q.
    Returns Y (b, l, h, p) and the final state (b, h, p, n), where S_t = exp(a_t) S_{t-1} + X_t B_t^T
    and Y_t = S_t C_t."""
    b, L, h, p = X.shape
    n = Bh.shape[-1]
    assert L % Q == 0
    c = L // Q
    Xc, Bc, Cc = X.reshape(b, c, Q, h, p), Bh.reshape(b, c, Q, h, n), Ch.reshape(b, c, Q, h, n)
    ac = a.reshape(b, c, Q, h).permute(0, 3, 1, 2)             # (b, h, c, Q)
    acum = ac.cumsum(dim=-1)
    # 1. within each chunk: a masked, decayed attention-like product (diagonal blocks)
    decay = torch.exp(segment_sums(ac))                        # (b, h, c, l, s)
    scores = torch.einsum("bclhn,bcshn->bhcls", Cc, Bc) * decay
    y_in = torch.einsum("bhcls,bcshp->bclhp", scores, Xc)
    # 2. each chunk's own contribution to the state at its end
    to_end = torch.exp(acum[..., -1:] - acum)                  # (b, h, c, l)
    own = torch.einsum("bclhn,bhcl,bclhp->bchpn", Bc, to_end, Xc)
    # 3. pass states across chunks: start of chunk z = sum over earlier chunks of their decayed states
    s0 = initial_states if initial_states is not None else torch.zeros(b, h, p, n, dtype=X.dtype)
    stacked = torch.cat([s0[:, None], own], dim=1)             # (b, c + 1, h, p, n)
    across = torch.exp(segment_sums(F.pad(acum[..., -1], (1, 0))))   # (b, h, c + 1, c + 1)
    passed = torch.einsum("bhzc,bchpn->bzhpn", across, stacked)
    starts, final = passed[:, :-1], passed[:, -1]
    # 4. the chunk's start state read out by C, decayed to each position
    y_from_start = torch.einsum("bclhn,bchpn,bhcl->bclhp", Cc, starts, torch.exp(acum))
    return (y_in + y_from_start).reshape(b, L, h, p), final


def ssd_loop(x, dtp, A, Bh, Ch, initial_states=None):
    """The plain recurrence, one step at a time: S_t = exp(dt'_t A) S_{t-1} + dt'_t x_t B_t^T, y_t = S_t C_t."""
    b, L, h, p = x.shape
    n = Bh.shape[-1]
    S = initial_states if initial_states is not None else torch.zeros(b, h, p, n, dtype=x.dtype)
    ys = []
    for t in range(L):
        dA = torch.exp(dtp[:, t] * A)                          # (b, h)
        S = dA[:, :, None, None] * S + (dtp[:, t, :, None] * x[:, t])[..., None] * Bh[:, t, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", S, Ch[:, t]))
    return torch.stack(ys, dim=1), S


def add_skip(y, x, D):
    if D is None:
        return y
    return y + (D[:, None] if D.dim() == 1 else D) * x


def ssd_forward(t, Q, softplus, dt_min, dt_max, impl):
    """The `ssm eval ssd` contract: {out, final_states} from the input tensors t."""
    x, A = t["x"], t["A"]
    H = x.shape[2]
    dtp = discretize_dt(t["dt"], t.get("dt_bias"), softplus, dt_min, dt_max)
    Bh, Ch = heads_from_groups(t["B"], H), heads_from_groups(t["C"], H)
    init = t.get("initial_states")
    if impl == "chunked":
        L = x.shape[1]
        pad = (-L) % Q    # zero x and dt' in the padding: exp(0 * A) = 1 and no input, so the state is unchanged
        X = F.pad(x * dtp[..., None], (0, 0, 0, 0, 0, pad))
        a = F.pad(A * dtp, (0, 0, 0, pad))
        Bp, Cp = F.pad(Bh, (0, 0, 0, 0, 0, pad)), F.pad(Ch, (0, 0, 0, 0, 0, pad))
        y, final = ssd_chunked(X, a, Bp, Cp, Q, init)
        y = y[:, :L]
    elif impl == "loop":
        y, final = ssd_loop(x, dtp, A, Bh, Ch, init)
    elif impl == "transformers":
        # transformers' torch fallback of mamba_chunk_scan_combined (its D must be (h)).
        D = t.get("D")
        y, final = hf_mamba2.mamba2_chunk_scan(
            x, t["dt"], A, t["B"], t["C"], chunk_size=Q, D=D if D is not None and D.dim() == 1 else None,
            dt_bias=t.get("dt_bias"), initial_states=init, dt_softplus=softplus, dt_limit=(dt_min, dt_max),
            return_final_states=True)
        if D is not None and D.dim() == 2:
            y = add_skip(y, x, D)
        return {"out": y.to(x.dtype), "final_states": final.to(x.dtype)}
    else:
        raise ValueError(impl)
    return {"out": add_skip(y, x, t.get("D")), "final_states": final}


SSD_CASES = [
    dict(name="ssd_G2_L100_Q32_Dh_bias_init_bwd_f64", dtype="F64", B=2, L=100, H=4, P=8, G=2, N=16, Q=32,
         D="h", dt_bias=True, softplus=True, init=True, d_out=True, d_final=True, limit=None),
    dict(name="ssd_G2_L77_Q16_DhP_bwd_f32", dtype="F32", B=1, L=77, H=4, P=8, G=2, N=8, Q=16,
         D="hp", dt_bias=False, softplus=False, init=False, d_out=True, d_final=False, limit=None),
    dict(name="ssd_G1_L40_Q64_limit_bwd_f64", dtype="F64", B=2, L=40, H=3, P=4, G=1, N=8, Q=64,
         D=None, dt_bias=True, softplus=True, init=False, d_out=True, d_final=False, limit=(0.01, 0.1)),
    dict(name="ssd_G1_L256_Q64_fwd_f32", dtype="F32", B=1, L=256, H=2, P=16, G=1, N=16, Q=64,
         D="h", dt_bias=True, softplus=True, init=True, d_out=False, d_final=False, limit=None),
]


def inv_softplus(y):
    return y + torch.log(-torch.expm1(-y))


def ssd_inputs(c, seed):
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    Bn, L, H, P, G, N = c["B"], c["L"], c["H"], c["P"], c["G"], c["N"]

    def randn(*s):
        return torch.randn(*s, generator=g, dtype=f64)

    def unif(lo, hi, *s):
        return lo + (hi - lo) * torch.rand(*s, generator=g, dtype=f64)

    t = {"x": randn(Bn, L, H, P)}
    lo, hi = (0.003, 0.3) if c["limit"] else (0.001, 0.2)    # where dt' lands (before a clamp)
    if c["softplus"]:
        target = torch.exp(unif(math.log(lo), math.log(hi), Bn, L, H))
        bias = inv_softplus(torch.exp(unif(math.log(0.005), math.log(0.1), H)))
        raw = inv_softplus(target)
        t["dt"] = raw - bias if c["dt_bias"] else raw
    else:
        t["dt"] = unif(0.001, 0.1, Bn, L, H)
        bias = None
    t["A"] = -torch.exp(unif(-1.0, 1.5, H))
    t["B"] = randn(Bn, L, G, N)
    t["C"] = randn(Bn, L, G, N)
    if c["D"] == "h":
        t["D"] = randn(H)
    elif c["D"] == "hp":
        t["D"] = randn(H, P)
    if c["dt_bias"]:
        t["dt_bias"] = bias
    if c["init"]:
        t["initial_states"] = randn(Bn, H, P, N)
    if c["d_out"]:
        t["d_out"] = randn(Bn, L, H, P)
    if c["d_final"]:
        t["d_final_states"] = randn(Bn, H, P, N)
    if c["dtype"] == "F32":   # the case's inputs are float32 numbers; the expectation is computed from them
        t = {k: v.float().double() for k, v in t.items()}
    return t


def ssd_case(i, c):
    seed = 2000 + i
    name, Q = c["name"], c["Q"]
    dt_min, dt_max = c["limit"] if c["limit"] else (0.0, float("inf"))
    t = ssd_inputs(c, seed)
    options = ["--chunk-size", str(Q)]
    if c["softplus"]:
        options.append("--dt-softplus")
    if c["limit"]:
        options += ["--dt-min", str(dt_min), "--dt-max", str(dt_max)]
    cot_names = {"d_out": "out", "d_final_states": "final_states"}
    data = {k: v for k, v in t.items() if k not in cot_names}
    cots = {cot_names[k]: v for k, v in t.items() if k in cot_names}
    grad_names = [k for k in ["x", "dt", "A", "B", "C", "D", "dt_bias", "initial_states"] if k in data]
    backward = bool(cots)

    def run(impl, inputs, cot, dtype=torch.float64):
        fn = lambda tt: ssd_forward(tt, Q, c["softplus"], dt_min, dt_max, impl)  # noqa: E731
        inputs = {k: v.to(dtype) for k, v in inputs.items()}
        cot = {k: v.to(dtype) for k, v in cot.items()}
        return with_grads(fn, inputs, grad_names if cot else [], cot)

    expected = run("chunked", data, cots)
    loop = run("loop", data, cots)
    with keep_float64():
        hf64 = run("transformers", data, cots)
    hf32 = run("transformers", data, cots, torch.float32)
    ours32 = run("chunked", data, cots, torch.float32)
    f32_err = {k: rel_err(ours32[k], expected[k]) for k in expected}
    validation = {
        "sequential_loop_f64_vs_expected": sig3(max(rel_err(loop[k], expected[k]) for k in expected)),
        "transformers_mamba2_chunk_scan_f64_vs_expected": sig3(max(rel_err(hf64[k], expected[k]) for k in expected)),
        "transformers_mamba2_chunk_scan_f32_vs_expected": sig3(max(rel_err(hf32[k], expected[k]) for k in expected)),
        "f32_baseline": "our chunked code run in float32",
    }
    pert = None
    if c["dtype"] == "F64":
        p = perturbed(t, seed + 500)
        pe = run("chunked", {k: p[k] for k in data}, {cot_names[k]: p[k] for k in cot_names if k in p})
        pert = {k: rel_err(pe[k], expected[k]) for k in expected}
    tt, reason = tolerances(c["dtype"], expected, f32_err, pert)

    H = c["H"]
    dtp = discretize_dt(data["dt"], data.get("dt_bias"), c["softplus"], 0.0, float("inf"))
    config = {k: c[k] for k in ("B", "L", "H", "P", "G", "N", "Q")}
    config.update({"D": {"h": "(H)", "hp": "(H, P)", None: None}[c["D"]], "dt_bias": c["dt_bias"],
                   "softplus": c["softplus"], "initial_states": c["init"],
                   "dt_min": dt_min, "dt_max": dt_max if math.isfinite(dt_max) else "inf",
                   "dt_before_clamp_range": [sig3(dtp.min().item()), sig3(dtp.max().item())],
                   "A_range": [sig3(data["A"].min().item()), sig3(data["A"].max().item())],
                   "heads_per_group": H // c["G"], "bwd": backward})
    if c["limit"]:
        config["dt_clamped_low"] = int((dtp < dt_min).sum())
        config["dt_clamped_high"] = int((dtp > dt_max).sum())
        config["dt_count"] = dtp.numel()
        assert config["dt_clamped_low"] > 0 and config["dt_clamped_high"] > 0
        for b in range(c["B"]):   # some values clamped on each side in every sequence
            assert (dtp[b] < dt_min).any() and (dtp[b] > dt_max).any()
    if backward:
        config["cotangents"] = sorted(cots)
    assert validation["sequential_loop_f64_vs_expected"] < 1e-12, validation
    assert validation["transformers_mamba2_chunk_scan_f64_vs_expected"] < 1e-12, validation

    torch_dtype = torch.float64 if c["dtype"] == "F64" else torch.float32
    inputs = {k: v.to(torch_dtype) for k, v in t.items()}
    outputs = {k: v.to(torch_dtype) for k, v in expected.items()}
    save_case(name, inputs, outputs)
    produced_by = ("our float64 ssd_chunked (scripts/mamba2/make_fixtures.py) = mamba_ssm ssd_minimal_discrete "
                   f"(state-spaces/mamba {MAMBA_COMMIT[:7]} mamba_ssm/modules/ssd_minimal.py) on x*dt', A*dt' "
                   "with B, C repeated to heads and L zero-padded to a multiple of Q, plus D*x; "
                   "dt' = clamp(softplus?(dt + dt_bias?), dt_min, dt_max); autograd")
    e = entry(name, "ssd", options, c["dtype"], seed, inputs, outputs, backward, tt, reason, produced_by,
              config, validation, f32_err, pert)
    print(f"  {name:40s} tol {e['tol']:.0e}  loop {validation['sequential_loop_f64_vs_expected']:.2e}  "
          f"hf64 {validation['transformers_mamba2_chunk_scan_f64_vs_expected']:.2e}  "
          f"hf32 {validation['transformers_mamba2_chunk_scan_f32_vs_expected']:.2e}  "
          f"f32 worst {max(f32_err.values()):.2e}" + (f"  pert worst {max(pert.values()):.2e}" if pert else ""))
    return e


# =============================================================================================
# B. The Mamba-2 block

PARAMS = ["in_proj.weight", "conv1d.weight", "conv1d.bias", "dt_bias", "A_log", "D", "norm.weight",
          "out_proj.weight"]


def causal_depthwise_conv(u, w, bias):
    """u (b, l, c), w (c, K), bias (c): out[t] = bias + sum_k w[:, k] u[t - (K - 1) + k], zeros before t = 0.
    Also returns the last K inputs (b, c, K), zero-padded on the left: the conv state after u."""
    b, L, C = u.shape
    K = w.shape[1]
    padded = torch.cat([torch.zeros(b, K - 1, C, dtype=u.dtype), u], dim=1)
    out = bias + sum(padded[:, k:k + L, :] * w[:, k] for k in range(K))
    return out, padded[:, -K:, :].transpose(1, 2)


def gated_group_rms_norm(y, z, weight, groups, eps):
    """mamba_ssm RMSNormGated with norm_before_gate=False and group_size = E / groups:
    g = y * silu(z), then each group of E/groups channels divided by its RMS, times weight."""
    g = y * F.silu(z)
    *pre, E = g.shape
    gg = g.reshape(*pre, groups, E // groups)
    gg = gg * torch.rsqrt(gg.pow(2).mean(-1, keepdim=True) + eps)
    return gg.reshape(*pre, E) * weight


def mamba2_block_reference(t, G, N, P, eps, return_state=False):
    """Our Mamba-2 mixer (mamba_ssm Mamba2 semantics, d_mlp = 0, rmsnorm, norm_before_gate=False),
    with the SSD done by the plain loop; independent of transformers' code."""
    h = t["hidden_states"]
    b, L, _ = h.shape
    E = t["out_proj.weight"].shape[1]
    H = E // P
    zxbcdt = h @ t["in_proj.weight"].T
    z, xBC, dt = torch.split(zxbcdt, [E, E + 2 * G * N, H], dim=-1)        # order [z, x, B, C, dt]
    conv, conv_state = causal_depthwise_conv(xBC, t["conv1d.weight"][:, 0, :], t["conv1d.bias"])
    xBC = F.silu(conv)
    x, Bm, Cm = torch.split(xBC, [E, G * N, G * N], dim=-1)
    dtp = F.softplus(dt + t["dt_bias"])
    A = -torch.exp(t["A_log"])
    x = x.reshape(b, L, H, P)
    y, S = ssd_loop(x, dtp, A, heads_from_groups(Bm.reshape(b, L, G, N), H),
                    heads_from_groups(Cm.reshape(b, L, G, N), H))
    y = add_skip(y, x, t["D"]).reshape(b, L, E)
    y = gated_group_rms_norm(y, z, t["norm.weight"], G, eps)
    out = y @ t["out_proj.weight"].T
    return (out, conv_state, S) if return_state else out


def mixer_config(M, E, P, G, N, K, Q, eps):
    return Mamba2Config(hidden_size=M, expand=E // M, num_heads=E // P, head_dim=P, state_size=N, n_groups=G,
                        conv_kernel=K, chunk_size=Q, use_bias=False, use_conv_bias=True, layer_norm_epsilon=eps,
                        num_hidden_layers=1, vocab_size=8, pad_token_id=0, bos_token_id=0, eos_token_id=0)


def hf_mixer_run(t, cfg, mode):
    """transformers' Mamba2Mixer on t (its dtype), no cache (scan) or one token at a time through a
    DynamicCache (step). Parameters are copied from t."""
    dtype = t["hidden_states"].dtype
    m = hf_mamba2.Mamba2Mixer(cfg, layer_idx=0).to(dtype).eval()
    params = dict(m.named_parameters())
    assert sorted(params) == sorted(PARAMS), sorted(params)
    with torch.no_grad():
        for k in PARAMS:
            assert params[k].shape == t[k].shape, (k, params[k].shape, t[k].shape)
    # make the parameters the leaves of t so that autograd reaches them
    for k in PARAMS:
        mod, _, attr = k.rpartition(".")
        owner = m.get_submodule(mod) if mod else m
        delattr(owner, attr)
        setattr(owner, attr, t[k])
    h = t["hidden_states"]
    if mode == "scan":
        return m(h)
    cache = DynamicCache(config=cfg)
    return torch.cat([m(h[:, i:i + 1], cache=cache) for i in range(h.shape[1])], dim=1)


MAMBA2_CASES = [
    dict(name="mamba2_M32_G2_L50_Q16_bwd_f64", dtype="F64", B=2, M=32, E=64, P=16, G=2, N=8, K=4, Q=16, L=50,
         mode="scan", bwd=True),
    dict(name="mamba2_M32_G1_L37_Q16_bwd_f32", dtype="F32", B=1, M=32, E=64, P=16, G=1, N=16, K=4, Q=16, L=37,
         mode="scan", bwd=True),
    dict(name="mamba2_step_M32_G2_L20_f64", dtype="F64", B=1, M=32, E=64, P=16, G=2, N=8, K=4, Q=16, L=20,
         mode="step", bwd=False),
]
NORM_EPS = 1e-5


def mamba2_inputs(c, seed):
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    M, E, P, G, N, K, Bn, L = c["M"], c["E"], c["P"], c["G"], c["N"], c["K"], c["B"], c["L"]
    H, conv_dim = E // P, E + 2 * G * N

    def randn(*s):
        return torch.randn(*s, generator=g, dtype=f64)

    def unif(lo, hi, *s):
        return lo + (hi - lo) * torch.rand(*s, generator=g, dtype=f64)

    t = {"hidden_states": randn(Bn, L, M)}
    w = unif(-1, 1, 2 * E + 2 * G * N + H, M) / math.sqrt(M)
    w[-H:] *= 0.5                                    # dt rows: keep softplus(dt + dt_bias) mostly in ~[0.005, 0.3]
    t["in_proj.weight"] = w
    t["conv1d.weight"] = unif(-1, 1, conv_dim, 1, K) / math.sqrt(K)
    t["conv1d.bias"] = 0.2 * randn(conv_dim)
    t["dt_bias"] = inv_softplus(torch.exp(unif(math.log(0.01), math.log(0.1), H))) + 0.3 * randn(H)
    t["A_log"] = torch.log(unif(1.0, 8.0, H))
    t["D"] = 1.0 + 0.5 * randn(H)
    t["norm.weight"] = 1.0 + 0.3 * randn(E)
    t["out_proj.weight"] = unif(-1, 1, M, E) / math.sqrt(E)
    if c["bwd"]:
        t["d_out"] = randn(Bn, L, M)
    if c["dtype"] == "F32":
        t = {k: v.float().double() for k, v in t.items()}
    return t


def mamba2_case(i, c):
    seed = 2100 + i
    name = c["name"]
    cfg = mixer_config(c["M"], c["E"], c["P"], c["G"], c["N"], c["K"], c["Q"], NORM_EPS)
    t = mamba2_inputs(c, seed)
    data = {k: v for k, v in t.items() if k != "d_out"}
    cots = {"out": t["d_out"]} if c["bwd"] else {}
    grad_names = ["hidden_states"] + PARAMS if c["bwd"] else []

    def hf(inputs, cot, dtype, mode="scan", patched=True):
        fn = lambda tt: {"out": hf_mixer_run(tt, cfg, mode)}  # noqa: E731
        ctx = keep_float64() if patched and dtype == torch.float64 else contextlib.nullcontext()
        with ctx:
            return with_grads(fn, {k: v.to(dtype) for k, v in inputs.items()}, grad_names,
                              {k: v.to(dtype) for k, v in cot.items()})

    def ours(inputs, cot):
        fn = lambda tt: {"out": mamba2_block_reference(tt, c["G"], c["N"], c["P"], NORM_EPS)}  # noqa: E731
        return with_grads(fn, inputs, grad_names, cot)

    expected = hf(data, cots, torch.float64)
    ref = ours(data, cots)
    hf32 = hf(data, cots, torch.float32)
    hf64_unpatched = hf(data, cots, torch.float64, patched=False)
    f32_err = {k: rel_err(hf32[k], expected[k]) for k in expected}
    validation = {
        "own_f64_block_vs_transformers_f64": sig3(max(rel_err(ref[k], expected[k]) for k in expected)),
        "transformers_f32_vs_expected": sig3(max(f32_err.values())),
        "transformers_f64_without_patch_vs_expected": sig3(max(rel_err(hf64_unpatched[k], expected[k])
                                                               for k in expected)),
    }
    # the gated norm: transformers' MambaRMSNormGated against per-group and whole-width RMS
    gen = torch.Generator().manual_seed(seed + 700)
    y, z = (torch.randn(3, 5, c["E"], generator=gen, dtype=torch.float64) for _ in range(2))
    wn = data["norm.weight"]
    norm = hf_mamba2.MambaRMSNormGated(c["E"], group_size=c["E"] // c["G"], eps=NORM_EPS).double()
    with torch.no_grad(), keep_float64():
        norm.weight.copy_(wn)
        hf_norm = norm(y, z)
    validation["transformers_gated_norm_vs_per_group_norm"] = sig3(rel_err(hf_norm, gated_group_rms_norm(y, z, wn, c["G"], NORM_EPS)))
    if c["G"] > 1:
        validation["transformers_gated_norm_vs_whole_width_norm"] = sig3(
            rel_err(hf_norm, gated_group_rms_norm(y, z, wn, 1, NORM_EPS)))
    step_diff = None
    if c["mode"] == "step":
        step = hf(data, cots, torch.float64, mode="step")
        step_diff = {"out": rel_err(step["out"], expected["out"])}
        validation["transformers_step_f64_vs_scan_f64"] = sig3(step_diff["out"])
        validation["expected"] = "scan-mode output (transformers Mamba2Mixer without cache)"
    pert = None
    if c["dtype"] == "F64":
        p = perturbed(t, seed + 500)
        pe = hf({k: p[k] for k in data}, {"out": p["d_out"]} if c["bwd"] else {}, torch.float64)
        pert = {k: rel_err(pe[k], expected[k]) for k in expected}
    tt, reason = tolerances(c["dtype"], expected, f32_err, pert, step_diff, "the step-versus-scan difference")
    assert validation["own_f64_block_vs_transformers_f64"] < 1e-12, validation
    assert validation["transformers_gated_norm_vs_per_group_norm"] < 1e-14, validation

    options = ["--groups", str(c["G"]), "--chunk-size", str(c["Q"]), "--mode", c["mode"], "--norm-epsilon",
               str(NORM_EPS)]
    torch_dtype = torch.float64 if c["dtype"] == "F64" else torch.float32
    inputs = {k: v.to(torch_dtype) for k, v in t.items()}
    outputs = {k: v.to(torch_dtype) for k, v in expected.items()}
    save_case(name, inputs, outputs)
    config = {k: c[k] for k in ("M", "E", "P", "G", "N", "K", "Q", "B", "L", "mode")}
    config.update({"H": c["E"] // c["P"], "norm_epsilon": NORM_EPS, "in_proj_order": "[z (E), x (E), B (G*N), C (G*N), dt (H)]",
                   "conv_channels": "[x (E), B (G*N), C (G*N)]", "time_step_limit": [0.0, "inf"],
                   "gated_norm": "y*silu(z), RMS over each of G groups of E/G channels, times norm.weight",
                   "bwd": c["bwd"]})
    produced_by = (f"transformers {transformers.__version__} Mamba2Mixer (models/mamba2/modeling_mamba2.py; its "
                   "pure-PyTorch path, no cache) in float64 with Tensor.float and Tensor.to(float32) patched to "
                   "identity on float64 tensors; = mamba_ssm Mamba2 (rmsnorm, norm_before_gate=False, d_mlp=0); autograd"
                   + ("; expected out = scan mode" if c["mode"] == "step" else ""))
    e = entry(name, "mamba2", options, c["dtype"], seed, inputs, outputs, c["bwd"], tt, reason, produced_by, config,
              validation, f32_err, pert)
    print(f"  {name:40s} tol {e['tol']:.0e}  own {validation['own_f64_block_vs_transformers_f64']:.2e}  "
          f"hf32 {validation['transformers_f32_vs_expected']:.2e}  "
          f"unpatched f64 {validation['transformers_f64_without_patch_vs_expected']:.2e}"
          + (f"  step {validation['transformers_step_f64_vs_scan_f64']:.2e}" if step_diff else "")
          + (f"  pert worst {max(pert.values()):.2e}" if pert else ""))
    return e


# =============================================================================================
# C. A tiny Mamba2ForCausalLM

VOCAB = 912
MODEL_CORPUS_SEED, MODEL_CORPUS_CHARS = 99, 300_000
PROMPT = "The quick fox sees the old river and then"
BATCH_PROMPT_CANDIDATES = [   # the first two with the same token count are used
    "Alice reads the strange book in Paris because",
    "The happy child opens the window and then",
    "The engineer builds the green machine slowly while",
    "Bob writes the letter to the brave farmer but",
    "The bird finds the",
    "The model follows the",
]


def tiny_config():
    # rms_norm and norm_before_gate are not Mamba2Config fields in transformers 5.24 (its mixer always
    # applies the gated, grouped RMSNorm with the gate first); they are stored in config.json as plain
    # attributes, as in Mamba-2 checkpoints on the Hub, so a loader can read them.
    return Mamba2Config(
        vocab_size=VOCAB, hidden_size=32, num_heads=4, head_dim=16, expand=2, state_size=16, n_groups=2,
        conv_kernel=4, chunk_size=16, num_hidden_layers=2, tie_word_embeddings=True, residual_in_fp32=True,
        use_bias=False, use_conv_bias=True, layer_norm_epsilon=1e-5, pad_token_id=0, bos_token_id=0,
        eos_token_id=0, rms_norm=True, norm_before_gate=False,
    )


def train_model(tok, steps, seq_len=64, batch=16, lr=3e-3):
    torch.manual_seed(0)
    model = Mamba2ForCausalLM(tiny_config())
    ids = []
    for d in documents(MODEL_CORPUS_SEED, MODEL_CORPUS_CHARS):
        ids.extend(tok.encode(d).ids)
        ids.append(0)  # <|endoftext|> between documents
    data = torch.tensor(ids, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20) * max(0.1, 1 - s / steps))
    model.train()
    t0 = time.time()
    for step in range(steps):
        starts = torch.randint(0, len(data) - seq_len - 1, (batch,), generator=g)
        x = torch.stack([data[s:s + seq_len] for s in starts])
        out = model(input_ids=x, labels=x, use_cache=False)
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 250 == 0 or step == steps - 1:
            print(f"  step {step:4d} loss {out.loss.item():.4f}  ({time.time() - t0:.1f}s)", flush=True)
    model.eval()
    print(f"  corpus tokens {len(ids)}, trained {steps} steps in {time.time() - t0:.1f}s")
    return model


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def lm_reference(sd, cfg, input_ids, dtype=torch.float64, return_state=False):
    """Our forward of Mamba2ForCausalLM, every tensor in `dtype`: embedding -> per layer
    h + mixer(RMSNorm(h)) -> RMSNorm -> tied head. The residual stream stays in `dtype` (float64
    here; transformers' residual_in_fp32 casts it to float32, which only matters below float32)."""
    p = {k: v.to(dtype) for k, v in sd.items()}
    h = p["backbone.embeddings.weight"][input_ids]
    states = []
    for i in range(cfg.num_hidden_layers):
        pre = f"backbone.layers.{i}.mixer."
        t = {k: p[pre + k] for k in PARAMS}
        t["hidden_states"] = rms_norm(h, p[f"backbone.layers.{i}.norm.weight"], cfg.layer_norm_epsilon)
        y, conv_state, ssm_state = mamba2_block_reference(t, cfg.n_groups, cfg.state_size, cfg.head_dim,
                                                          cfg.layer_norm_epsilon, return_state=True)
        h = h + y
        states.append((conv_state, ssm_state))
    h = rms_norm(h, p["backbone.norm_f.weight"], cfg.layer_norm_epsilon)
    logits = h @ p["backbone.embeddings.weight"].T
    return (logits, states) if return_state else logits


def load(path):
    m = Mamba2ForCausalLM.from_pretrained(path)
    m.eval()
    return m


def make_lm(steps, vers):
    tok = Tokenizer.from_file(TOKENIZER_JSON)
    assert tok.get_vocab_size() == VOCAB
    print("training tiny Mamba-2 model")
    model = train_model(tok, steps)
    cfg = model.config

    d32 = os.path.join(PRETRAINED, "tiny-mamba2")
    if os.path.isdir(d32):
        shutil.rmtree(d32)
    model.save_pretrained(d32)
    shutil.copyfile(TOKENIZER_JSON, os.path.join(d32, "tokenizer.json"))
    with safe_open(os.path.join(d32, "model.safetensors"), "pt") as f:
        keys = {k: f.get_slice(k).get_dtype() for k in f.keys()}
    assert "lm_head.weight" not in keys and "backbone.embeddings.weight" in keys, sorted(keys)
    assert set(keys.values()) == {"F32"}, keys

    print("computing expected outputs")
    m32 = load(d32)
    assert torch.equal(m32.lm_head.weight, m32.backbone.embeddings.weight)
    g = torch.Generator().manual_seed(0)
    input_ids = torch.randint(2, VOCAB, (2, 37), generator=g, dtype=torch.long)
    sd = {k: v.detach().clone() for k, v in m32.state_dict().items()}
    with torch.no_grad():
        logits = m32(input_ids, use_cache=False).logits.float()
        assert maxdiff(logits, model(input_ids, use_cache=False).logits) == 0.0
        logits_f64 = lm_reference(sd, cfg, input_ids, torch.float64)
        ref32 = lm_reference(sd, cfg, input_ids, torch.float32)
        m64 = load(d32).double()
        hf64_unpatched = m64(input_ids, use_cache=False).logits
        with keep_float64():
            hf64 = m64(input_ids, use_cache=False).logits
        assert hf64.dtype == torch.float64
    figures = {
        "hf_f32_vs_ref_f64": maxdiff(logits, logits_f64),
        "ref_f32_vs_ref_f64": maxdiff(ref32, logits_f64),
        "hf_double_vs_ref_f64": maxdiff(hf64_unpatched, logits_f64),
        "hf_double_float_casts_patched_vs_ref_f64": maxdiff(hf64, logits_f64),
        "logits_range": [logits.min().item(), logits.max().item()],
    }
    print("  max|diff| of logits: " + "  ".join(f"{k} {v:.3e}" for k, v in figures.items() if k != "logits_range")
          + f"   logits range [{figures['logits_range'][0]:.2f}, {figures['logits_range'][1]:.2f}]")
    assert figures["hf_f32_vs_ref_f64"] < 1e-3 and figures["hf_double_float_casts_patched_vs_ref_f64"] < 1e-11

    prompt_ids = torch.tensor([tok.encode(PROMPT).ids], dtype=torch.long)
    E = cfg.expand * cfg.hidden_size
    conv_dim = E + 2 * cfg.n_groups * cfg.state_size
    with torch.no_grad():
        gen = m32.generate(prompt_ids, attention_mask=torch.ones_like(prompt_ids), max_new_tokens=24,
                           do_sample=False, pad_token_id=0)
        greedy_ids = gen[:, prompt_ids.shape[1]:]
        assert greedy_ids.shape == (1, 24), f"stopped early at EOS: {greedy_ids.tolist()}"
        assert 0 not in greedy_ids[0].tolist()
        assert len(set(greedy_ids[0].tolist())) > 3, greedy_ids
        gen_nc = m32.generate(prompt_ids, attention_mask=torch.ones_like(prompt_ids), max_new_tokens=24,
                              do_sample=False, pad_token_id=0, use_cache=False)
        greedy_no_cache_equal = gen_nc[:, prompt_ids.shape[1]:].tolist() == greedy_ids.tolist()
        print(f"  greedy with cache == greedy without cache: {greedy_no_cache_equal}")
        o = m32(prompt_ids, use_cache=True)
        last_logits = o.logits[:, -1, :].float()
        cache = o.cache
        states = {}
        for i in range(cfg.num_hidden_layers):
            states[f"conv_state_{i}"] = cache.layers[i].conv_states[0].detach().clone().float()
            states[f"ssm_state_{i}"] = cache.layers[i].recurrent_states[0].detach().clone().float()
        _, ref_states = lm_reference(sd, cfg, prompt_ids, torch.float64, return_state=True)
        state_diffs = {}
        for i, (cs, ss) in enumerate(ref_states):
            assert states[f"conv_state_{i}"].shape == (1, conv_dim, cfg.conv_kernel)
            assert states[f"ssm_state_{i}"].shape == (1, cfg.num_heads, cfg.head_dim, cfg.state_size)
            state_diffs[f"conv_state_{i}"] = maxdiff(states[f"conv_state_{i}"], cs)
            state_diffs[f"ssm_state_{i}"] = maxdiff(states[f"ssm_state_{i}"], ss)
        assert max(state_diffs.values()) < 1e-4, state_diffs
        print("  cache vs reference states: " + "  ".join(f"{k} {v:.2e}" for k, v in state_diffs.items()))
        nxt, steps_ids = last_logits.argmax(-1, keepdim=True), []
        for _ in range(24):
            steps_ids.append(nxt.item())
            o = m32(nxt, cache=cache, use_cache=True)
            cache = o.cache
            nxt = o.logits[:, -1, :].argmax(-1, keepdim=True)
        assert steps_ids == greedy_ids[0].tolist(), (steps_ids, greedy_ids)
        # the reference's greedy continuation (full forward each step, float64)
        seq = prompt_ids
        for _ in range(24):
            seq = torch.cat([seq, lm_reference(sd, cfg, seq)[:, -1].argmax(-1, keepdim=True)], dim=1)
        ref_greedy_equal = seq[:, prompt_ids.shape[1]:].tolist() == greedy_ids.tolist()
        print(f"  greedy of the float64 reference == HF greedy: {ref_greedy_equal}")

    enc = [(p, tok.encode(p).ids) for p in BATCH_PROMPT_CANDIDATES]
    pair = next((a, b) for i, a in enumerate(enc) for b in enc[i + 1:] if len(a[1]) == len(b[1]))
    batch_prompts = [pair[0][0], pair[1][0]]
    batch_prompt_ids = torch.tensor([pair[0][1], pair[1][1]], dtype=torch.long)
    with torch.no_grad():
        bgen = m32.generate(batch_prompt_ids, attention_mask=torch.ones_like(batch_prompt_ids), max_new_tokens=16,
                            do_sample=False, pad_token_id=0)
        batch_greedy_ids = bgen[:, batch_prompt_ids.shape[1]:]
        assert batch_greedy_ids.shape == (2, 16), batch_greedy_ids
        for r in range(2):
            one = m32.generate(batch_prompt_ids[r:r + 1], attention_mask=torch.ones_like(batch_prompt_ids[r:r + 1]),
                               max_new_tokens=16, do_sample=False, pad_token_id=0)
            assert one[0, batch_prompt_ids.shape[1]:].tolist() == batch_greedy_ids[r].tolist()

    tensors = {
        "input_ids": input_ids,
        "logits": logits,
        "logits_f64": logits_f64,
        "prompt_ids": prompt_ids,
        "greedy_ids": greedy_ids,
        "batch_prompt_ids": batch_prompt_ids,
        "batch_greedy_ids": batch_greedy_ids,
        "last_logits": last_logits,
        **states,
    }
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    info = {
        "model": "tiny-mamba2",
        "prompt": PROMPT,
        "batch_prompts": batch_prompts,
        "prompt_ids": prompt_ids[0].tolist(),
        "greedy_ids": greedy_ids[0].tolist(),
        "greedy_text": tok.decode(greedy_ids[0].tolist()),
        "batch_prompt_ids": batch_prompt_ids.tolist(),
        "batch_greedy_ids": batch_greedy_ids.tolist(),
        "batch_greedy_texts": [tok.decode(r) for r in batch_greedy_ids.tolist()],
        "eos_in_greedy": False,
        "greedy_without_cache_equal": greedy_no_cache_equal,
        "greedy_of_f64_reference_equal": ref_greedy_equal,
        "cache_layout": {
            "conv_state_i": f"(batch, conv_dim = E + 2*G*N = {conv_dim}, K = {cfg.conv_kernel}): the last K "
                            "inputs of the depthwise conv (the x, B, C rows of in_proj, before conv and SiLU), "
                            "oldest first, zero-padded on the left if the prompt is shorter than K",
            "ssm_state_i": f"(batch, H = {cfg.num_heads}, P = {cfg.head_dim}, N = {cfg.state_size}): S[b, h, p, n]",
        },
        "checks": {k: (sig3(v) if isinstance(v, float) else [round(x, 4) for x in v]) for k, v in figures.items()},
        "cache_vs_reference_max_abs": {k: sig3(v) for k, v in state_diffs.items()},
        "versions": vers,
    }
    meta = {"prompt": PROMPT, "batch_prompts": json.dumps(batch_prompts, ensure_ascii=False),
            "versions": json.dumps(vers), "model": "tiny-mamba2"}
    exp_path = os.path.join(PRETRAINED, "tiny_mamba2_expected.safetensors")
    save_file(tensors, exp_path, metadata=meta)
    sort_safetensors_metadata(exp_path)
    with open(os.path.join(PRETRAINED, "tiny_mamba2_expected.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, ensure_ascii=False, indent=1)
        f.write("\n")

    back = load_file(exp_path)
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v), k
    with torch.no_grad():
        assert maxdiff(load(d32)(input_ids, use_cache=False).logits, logits) == 0.0
    print("  greedy:", info["greedy_ids"], repr(info["greedy_text"]))
    print("  batch greedy:", info["batch_greedy_texts"])
    return [d32, exp_path, os.path.join(PRETRAINED, "tiny_mamba2_expected.json")]


# =============================================================================================

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="ssd,mamba2,lm", help="comma-separated subset of ssd, mamba2, lm")
    ap.add_argument("--steps", type=int, default=1500, help="training steps of the tiny model")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    vers = versions()
    print("versions:", json.dumps(vers))
    written = []

    if "ssd" in parts or "mamba2" in parts:
        entries = []
        path = os.path.join(FIXTURES, "cases.json")
        with open(path, encoding="utf-8") as f:
            old = {c["name"]: c for c in json.load(f)["cases"]}
        if "ssd" in parts:
            print("ssd cases")
            entries += [ssd_case(i, c) for i, c in enumerate(SSD_CASES)]
        else:
            entries += [old[c["name"]] for c in SSD_CASES if c["name"] in old]
        if "mamba2" in parts:
            print("mamba2 cases")
            entries += [mamba2_case(i, c) for i, c in enumerate(MAMBA2_CASES)]
        else:
            entries += [old[c["name"]] for c in MAMBA2_CASES if c["name"] in old]
        n_other = write_cases_json(entries, ops={"ssd", "mamba2"})
        print(f"  cases.json: {n_other} other entries kept, {len(entries)} ours")
        for e in entries:
            written += [os.path.join(FIXTURES, f"{e['name']}.{s}.safetensors") for s in ("in", "out")]
        written.append(path)

    if "lm" in parts:
        written += make_lm(args.steps, vers)

    print("files:")
    for p in written:
        files = [p] if os.path.isfile(p) else [os.path.join(p, f) for f in sorted(os.listdir(p))]
        for fp in files:
            print(f"  {os.path.relpath(fp, ROOT):70s} {os.path.getsize(fp):9d}  {sha(fp)}")
        if os.path.isdir(p):
            print(f"  {os.path.relpath(p, ROOT) + '/ total':70s} {sum(os.path.getsize(f) for f in files):9d}")


if __name__ == "__main__":
    main()
