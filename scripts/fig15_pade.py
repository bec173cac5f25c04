#!/usr/bin/env python
"""Fig. 15 of paper 004 (Appendix A): the exact Fermi function at T = 0.025 (beta = 40) against
its Padé representation, Eq. (7), with N_P = 10, 20, 30 and 50 poles ([N-1/N] PSD of Hu, Xu &
Yan 2010, :mod:`operators.pade`).

(a) f(eps) over |eps - mu| <= 30: a finite pole sum returns to the offset 1/2 far from mu, the
    further out the more poles (N_P = 10 already leaves the exact curve at |eps| ~ 3).
(b) |f_pade - f| on a log scale; grey band: the window |eps| <= 10 of the tests, dashed line:
    1e-7 (N_P = 30 stays below it there, as the paper's choice N_P = 30 requires); dotted grey:
    the truncated Matsubara series with 30 poles, for contrast.

    python scripts/fig15_pade.py [--outdir DIR] [--overwrite] [--plot-only]

Writes DIR/fig15.h5 (eps, f_exact, f_pade[N], abs_error[N], max error over |eps| <= 10, poles
xi/eta of each N) and DIR/fig15.png.  Serial (well under a second of compute); under mpirun
rank 0 writes.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from analysis.figscript import figure_main  # noqa: E402
from analysis.plots import use_agg  # noqa: E402
from operators.pade import fermi_exact, fermi_pade, pade_error, pade_poles  # noqa: E402
from toolkit.io import save_table  # noqa: E402
from toolkit.results import load_result  # noqa: E402

BETA, MU = 40.0, 0.0           # T = 0.025, as in paper 004
N_POLES = (10, 20, 30, 50)
E_MAX, D_EPS = 30.0, 0.005     # plotted window |eps| <= E_MAX; grid step (x step 0.2)
WINDOW, TOL = 10.0, 1e-7       # acceptance window and tolerance of tests/operators/test_pade.py
N_MATSUBARA = 30


def compute(path: str, args, comm) -> None:
    t0 = time.perf_counter()
    eps = np.linspace(-E_MAX, E_MAX, int(round(2 * E_MAX / D_EPS)) + 1)
    f = fermi_exact(eps, MU, BETA)
    data = {"eps": (eps, "hopping", "energy grid"),
            "f_exact": (f, "", "1/(1 + exp(beta (eps - mu)))"),
            "n_poles": (np.array(N_POLES), "", "N_P of the rows of f_pade / abs_error")}
    fp = np.array([fermi_pade(eps, MU, BETA, pade_poles(n)) for n in N_POLES])
    data["f_pade"] = (fp, "", "Eq. (7) with the [N-1/N] PSD poles, one row per N_P")
    data["abs_error"] = (np.abs(fp - f), "", "|f_pade - f_exact|")
    data["max_error_window"] = (np.array([pade_error(n, BETA, WINDOW) for n in N_POLES]), "",
                                f"max |f_pade - f| over |eps - mu| <= {WINDOW} (refined)")
    mats = pade_poles(N_MATSUBARA, method="matsubara")
    data["matsubara/abs_error"] = (np.abs(fermi_pade(eps, MU, BETA, mats) - f), "",
                                   f"|f - truncated Matsubara series|, {N_MATSUBARA} poles")
    for n in N_POLES:
        p = pade_poles(n)
        data[f"poles/N{n}/xi"] = (p.xi, "", "xi_p (chi^+- = mu +- i xi_p / beta)")
        data[f"poles/N{n}/eta"] = (p.eta, "", "eta_p")
    attrs = {"figure": "paper 004 Fig. 15", "beta": BETA, "temperature": 1 / BETA, "mu": MU,
             "method": "[N-1/N] Pade spectrum decomposition (Hu, Xu, Yan, JCP 133, 101106)",
             "window": WINDOW, "tol": TOL, "wall_time": time.perf_counter() - t0}
    save_table(path, data, attrs, kind="figure", comm=comm, overwrite=args.overwrite)


def plot(path: str, png: str) -> None:
    plt = use_agg()
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(10, 8), sharex=True, layout="constrained",
                                 gridspec_kw={"height_ratios": [1, 1.1]})
    colors = ("tab:red", "tab:orange", "tab:green", "tab:blue")
    r = load_result(path)
    eps, f = r["eps"], r["f_exact"]
    ns, fp, err = r["n_poles"], r["f_pade"], r["abs_error"]
    emax, mats = r["max_error_window"], r["matsubara/abs_error"]
    beta = float(r.attrs["beta"])
    ax.plot(eps, f, color="k", lw=2.2, label="exact")
    for n, row, e_row, em, c in zip(ns, fp, err, emax, colors):
        ax.plot(eps, row, color=c, lw=1.2, label=rf"$N_P = {n}$")
        label = rf"$N_P = {n}$" + "\n" + rf"max {em:.1e} in $|\varepsilon| \leq {WINDOW:g}$"
        bx.semilogy(eps, np.maximum(e_row, 1e-17), color=c, lw=1.0, label=label)
    bx.semilogy(eps, np.maximum(mats, 1e-17), color="0.55", lw=1.0, ls=":",
                label=rf"Matsubara, {N_MATSUBARA} poles")
    for a in (ax, bx):
        a.axvspan(-WINDOW, WINDOW, color="0.93", zorder=0)
    bx.axhline(TOL, color="k", ls="--", lw=0.8)
    bx.text(-E_MAX + 0.5, TOL * 2, f"{TOL:g}", fontsize=8)
    ax.set_ylabel(r"$f(\varepsilon)$")
    ax.set_title(rf"(a) Fermi function, $\beta = {beta:g}$ ($T = {1 / beta:g}$), $\mu = 0$",
                 fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    bx.set_ylim(1e-17, 1)
    bx.set_xlim(-E_MAX, E_MAX)
    bx.set_xlabel(r"$\varepsilon - \mu$")
    bx.set_ylabel(r"$|f_{\rm Pade} - f|$")
    bx.set_title(r"(b) error of Eq. (7) ([N-1/N] PSD); grey band: $|\varepsilon| \leq 10$",
                 fontsize=10)
    bx.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.savefig(png, dpi=130)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(figure_main("fig15", compute, plot, doc=__doc__, protect_png=True,
                         quick_help="accepted for uniformity (the full figure takes ~1 s)"))
