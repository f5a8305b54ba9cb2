#!/usr/bin/env python3
"""crosscheck-error.png: the recurrent mode against the convolution mode, from `ssm eval`.

    python scripts/plots/crosscheck.py --ssm .build/release/ssm -o Sources/SSMKit/SSMKit.docc/Resources/crosscheck-error.png

For each model, precision (float32, float64) and position t of a sequence of L = 16384:

    e[t] = max over channels h of |y_rec[h, t] − y_conv[h, t]| / max_t' |y_conv[h, t']|

and the curve drawn is the running maximum of e over windows of 128 positions (one point per
window), on a log axis.

* S4D (S4D-Lin init: λ_n = −1/2 + iπn, N = 64, H = 4 channels with Δ = 0.001, 0.0046, 0.0215,
  0.1, C ~ complex normal, B = 1, D ~ normal):
      y_rec  = `ssm eval s4d-recurrent` (u, D, kernel inputs, --length L)
      y_conv = `ssm eval fftconv` (u, k, D) with k = `ssm eval s4d-kernel --length L`
* S4 (DPLR HiPPO-LegS from `ssm eval hippo --measure legs --state 64`, one SSM, H = 4 channels with
  the same Δ, C̃ ~ complex normal, D ~ normal):
      y_rec  = `ssm eval s4-recurrent --step-mode linear` (u, D, kernel inputs, --length L)
      y_conv = `ssm eval fftconv` (u, k, D) with k = `ssm eval s4-kernel --length L`

u ~ normal, (1, H, L). The inputs are drawn once in float64; the float32 runs get the same values
rounded. numpy only builds the inputs and takes the differences; every y is `ssm` output.
"""
import os
import sys

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ssmio  # noqa: E402

N = 64
LENGTH = 16384
WINDOW = 128
DTS = np.geomspace(0.001, 0.1, 4)


def inputs(ssm, seed=0):
    """float64 inputs of the two models: (s4d kernel inputs, s4 kernel inputs, u, D_s4d, D_s4)."""
    rng = np.random.default_rng(seed)
    H, n2 = len(DTS), N // 2
    s4d = {
        "log_dt": np.log(DTS),
        "C": rng.standard_normal((H, n2, 2)) * np.sqrt(0.5),
        "log_A_real": np.full((H, n2), np.log(0.5)),
        "A_imag": np.tile(np.pi * np.arange(n2), (H, 1)),
    }
    h = ssm.eval("hippo", None, "--measure", "legs", "--state", N, "--dtype", "float64")
    lam = ssmio.as_complex(h["Lambda"])
    s4 = {
        "inv_dt": np.log(DTS),
        "A_real": np.log(-lam.real)[None],
        "A_imag": (-lam.imag)[None],
        "B": h["B_dplr"][None],
        "P": h["P"][:, None],
        "C": rng.standard_normal((1, H, n2, 2)) * np.sqrt(0.5),
    }
    u = rng.standard_normal((1, H, LENGTH))
    return s4d, s4, u, rng.standard_normal(H), rng.standard_normal((1, H))


def relative_error(y_rec, y_conv):
    """e[t] as in the docstring, for y of shape (..., H, L)."""
    y_rec = y_rec.reshape(-1, y_rec.shape[-1]).astype(np.float64)
    y_conv = y_conv.reshape(-1, y_conv.shape[-1]).astype(np.float64)
    scale = np.abs(y_conv).max(axis=1, keepdims=True)
    return (np.abs(y_rec - y_conv) / scale).max(axis=0)


def windowed_max(e):
    w = e[: len(e) // WINDOW * WINDOW].reshape(-1, WINDOW).max(axis=1)
    centers = np.arange(len(w)) * WINDOW + WINDOW / 2
    return centers, w


def run(ssm):
    s4d, s4, u, d_s4d, d_s4 = inputs(ssm)
    curves = {}
    for dtype in (np.float32, np.float64):
        cast = lambda t: {k: v.astype(dtype) for k, v in t.items()}  # noqa: E731
        name = "float32" if dtype == np.float32 else "float64"
        # S4D
        k = ssm.eval("s4d-kernel", cast(s4d), "--length", LENGTH)["k"]
        y_conv = ssm.eval("fftconv", cast({"u": u, "k": k, "D": d_s4d}))["y"]
        y_rec = ssm.eval("s4d-recurrent", cast(dict(s4d, u=u, D=d_s4d)), "--length", LENGTH)["y"]
        curves[("S4D", name)] = relative_error(y_rec, y_conv)
        # S4, linear step mode
        k = ssm.eval("s4-kernel", cast(s4), "--length", LENGTH)["k"]
        y_conv = ssm.eval("fftconv", cast({"u": u, "k": k, "D": d_s4}))["y"]
        y_rec = ssm.eval("s4-recurrent", cast(dict(s4, u=u, D=d_s4)), "--length", LENGTH,
                         "--step-mode", "linear")["y"]
        curves[("S4", name)] = relative_error(y_rec, y_conv)
    return curves


def main():
    args, plt = ssmio.picture_arguments(__doc__)

    curves = run(ssmio.SSM(args.ssm))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    titles = {
        "S4D": "S4D (S4D-Lin, zoh)\n`s4d-recurrent` vs `fftconv`(u, `s4d-kernel`) + D·u",
        "S4": "S4 (DPLR LegS, bilinear), linear step mode\n`s4-recurrent --step-mode linear` vs `fftconv`(u, `s4-kernel`) + D·u",
    }
    colors = {"float32": "tab:blue", "float64": "tab:orange"}
    for ax, model in zip(axes, ("S4D", "S4")):
        for precision in ("float32", "float64"):
            e = curves[(model, precision)]
            x, w = windowed_max(e)
            ax.plot(x, w, color=colors[precision], lw=1.3,
                    label=f"{'Float' if precision == 'float32' else 'Double'} ({precision}): max {e.max():.1e}")
        ax.set_yscale("log")
        ax.set_xlim(0, LENGTH)
        ax.set_title(titles[model], fontsize=9.5)
        ax.set_xlabel("sequence position t (samples)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="center right")
    axes[0].set_ylabel(f"|y_rec − y_conv| / max|y|\n(running max over {WINDOW} positions)")
    fig.suptitle(f"Recurrent mode vs convolution mode, L = {LENGTH}, N = {N}, H = {len(DTS)} channels "
                 f"(Δ = {DTS[0]:g} … {DTS[-1]:g}), batch 1", fontsize=11)
    fig.text(0.01, 0.01,
             "max|y| is taken per channel over the whole sequence, the error's max over the channels. "
             "Unit roundoff: 6e−8 (float32), 1.1e−16 (float64).\n"
             f"Every y is `ssm eval` output; inputs are documented in scripts/plots/crosscheck.py. CPU: {ssmio.cpu_model()}.",
             fontsize=7, color="0.3", va="bottom")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(args.output, dpi=110)
    for (model, precision), e in sorted(curves.items()):
        print(f"{model:4s} {precision}: max relative error {e.max():.2e}, median {np.median(e):.2e}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
