#!/usr/bin/env python3
"""kernels-hippo.png: the convolution kernels K̄ of the HiPPO-based initializations, from `ssm eval`.

    python scripts/plots/kernels.py --ssm .build/release/ssm -o Sources/SSMKit/SSMKit.docc/Resources/kernels-hippo.png

Three panels, all with N = 64 (N/2 = 32 complex modes), one step Δ = 0.01 for every channel and a
kernel of L = 2048 taps, of which the first 600 are drawn. Channel n of each panel is the n-th
basis function of its SSM:

* S4 (DPLR), legs: `ssm eval hippo --measure legs --state 64` gives Lambda, P, B_dplr and V.
  `ssm eval s4-kernel` takes them with one SSM (S = 1) as
      inv_dt = log Δ,  A_real = log(−Re Λ),  A_imag = −Im Λ     (its λ = −exp(A_real) − i·A_imag = Λ),
      B = B_dplr,  P = P,  C[0, n] = V[n, :]   (row n of V),
  so channel n reads the n-th coordinate of the HiPPO-LegS state, e_nᵀ·x. C is C̃, attuned to L;
  here Ā^L ≈ e^{−LΔ} ≈ 1e−9, so C̃ and C agree.
* S4D-LegS: the diagonal (normal) part of the same HiPPO matrix, the low-rank term P dropped.
  `ssm eval s4d-kernel` (zoh) with
      log_dt = log Δ,  log_A_real = log(−Re Λ),  A_imag = Im Λ   (its λ = −exp(log_A_real) + i·A_imag = Λ),
      B = B_dplr,  C[n] = V[n, :].
* S4D-Lin: λ_n = −1/2 + iπn (log_A_real = log 1/2, A_imag = πn), B = 1 (the op's default),
  C[n] = e_n (mode n alone), so channel n is the damped oscillation of mode n.

B_dplr is the official nplr's V*·B with its imaginary part clipped to ±2. numpy only builds these
inputs; every value drawn is an `ssm eval` output.
"""
import os
import sys

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ssmio  # noqa: E402

N = 64
DT = 0.01
LENGTH = 2048
SHOWN = 600
CHANNELS = [0, 1, 2, 3]


def kernels(ssm):
    h = ssm.eval("hippo", None, "--measure", "legs", "--state", N, "--dtype", "float64")
    lam = ssmio.as_complex(h["Lambda"])  # (N/2,)
    n2, H = lam.shape[0], len(CHANNELS)
    log_dt = np.full(H, np.log(DT))
    V_rows = h["V"][CHANNELS]  # (H, N/2, 2)

    s4 = ssm.eval("s4-kernel", {
        "inv_dt": log_dt,
        "A_real": np.log(-lam.real)[None],
        "A_imag": (-lam.imag)[None],
        "B": h["B_dplr"][None],
        "P": h["P"][:, None],
        "C": V_rows[None],
    }, "--length", LENGTH)["k"][0]

    legs = ssm.eval("s4d-kernel", {
        "log_dt": log_dt,
        "C": V_rows,
        "log_A_real": np.tile(np.log(-lam.real), (H, 1)),
        "A_imag": np.tile(lam.imag, (H, 1)),
        "B": np.tile(h["B_dplr"][None], (H, 1, 1)),
    }, "--length", LENGTH)["k"]

    unit = np.zeros((H, n2, 2))
    unit[np.arange(H), CHANNELS, 0] = 1.0
    lin = ssm.eval("s4d-kernel", {
        "log_dt": log_dt,
        "C": unit,
        "log_A_real": np.full((H, n2), np.log(0.5)),
        "A_imag": np.tile(np.pi * np.arange(n2), (H, 1)),
    }, "--length", LENGTH)["k"]
    return s4, legs, lin


def main():
    args, plt = ssmio.picture_arguments(__doc__)

    s4, legs, lin = kernels(ssmio.SSM(args.ssm))
    taps = np.arange(SHOWN)
    panels = [
        (s4, "S4 (DPLR), HiPPO-LegS: `ssm eval s4-kernel`",
         "A = Λ − PP* (full LegS), B = B_dplr, C = row n of V"),
        (legs, "S4D-LegS: `ssm eval s4d-kernel`",
         "A = Λ (LegS without its low-rank term), B = B_dplr, C = row n of V"),
        (lin, "S4D-Lin: `ssm eval s4d-kernel`",
         "λₙ = −1/2 + iπn, B = 1, C = eₙ"),
    ]
    fig, axes = plt.subplots(3, 1, figsize=(9, 10.5), sharex=True)
    for ax, (k, title, subtitle) in zip(axes, panels):
        for row, n in enumerate(CHANNELS):
            ax.plot(taps, k[row, :SHOWN], lw=1.2, label=f"channel n = {n}")
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set_title(f"{title}\n{subtitle}", fontsize=10)
        ax.set_ylabel("K̄[ℓ]  (response at lag ℓ)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
        top = ax.secondary_xaxis("top", functions=(lambda l: l * DT, lambda t: t / DT))
        top.set_xlabel("t = ℓΔ  (time units)" if ax is axes[0] else "", fontsize=8)
        top.tick_params(labelsize=7)
    axes[-1].set_xlabel("tap ℓ")
    axes[-1].set_xlim(0, SHOWN)
    fig.suptitle(f"Convolution kernels K̄ of the HiPPO-based initializations (N = {N}, Δ = {DT}, "
                 f"first {SHOWN} of L = {LENGTH} taps)", fontsize=11)
    fig.text(0.01, 0.005,
             "S4: bilinear discretization; S4D: zoh. Λ, P, B_dplr, V from `ssm eval hippo --measure legs --state 64` "
             "(B_dplr = V*B, imaginary part clipped to ±2 as in the official nplr).\n"
             "Every value drawn is `ssm` output; inputs are documented in scripts/plots/kernels.py. "
             f"CPU: {ssmio.cpu_model()} (lscpu).",
             fontsize=7, color="0.3", va="bottom")
    fig.tight_layout(rect=(0, 0.035, 1, 1))
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
