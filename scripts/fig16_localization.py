#!/usr/bin/env python
"""Fig. 16 of paper 004 (Appendix B): layer probabilities P_l^n = sum_{j in l} |phi_n(r_j)|^2 of
two eigenstates versus J_sd for the 1D valve N = 20 (N_S = 5, N_NM = 10), PL along +x and FL
along +z (the initial state of the dynamics of Sec. III A 3).

The paper plots "the two eigenstates (n = 0, 1) with the lowest eigenenergies" and finds no
clear localization for J_sd < 3 but clear localization for J_sd > 4.  Counted from the bottom
of the spectrum, the two lowest states are bound below the spacer band and sit on PL+FL already
for J_sd > ~1 (panel b).  The states that behave as described are the two highest occupied
levels at half filling (HOMO-1, HOMO; the levels of Delta-epsilon in Fig. 4): panel (a).  We
read the paper's n = 0, 1 as counted down from the Fermi level and show both.

P_PL+FL: black / grey; P_SL: red / orange.  Vertical lines: local maxima (red) and minima
(black) of Delta-epsilon (two highest occupied levels, half filling) of the same configuration;
grey band: 3 <= J_sd <= 4.5, the intermediate regime named in the paper (not computed here).

    python scripts/fig16_localization.py [--quick] [--outdir DIR] [--overwrite] [--plot-only]

Writes DIR/fig16.h5 and DIR/fig16.png.  J_sd = 0 ... 8 in steps of 0.01 (--quick: 0.25).
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from analysis.figscript import figure_main  # noqa: E402
from analysis.levels import splitting  # noqa: E402
from analysis.plots import use_agg  # noqa: E402
from analysis.spectrum import spectrum_vs_jsd  # noqa: E402
from toolkit.io import save_table  # noqa: E402
from toolkit.presets import valve_device  # noqa: E402
from toolkit.results import load_result  # noqa: E402

N_S, N_NM = 5, 10
PAPER_REGIME = (3.0, 4.5)


def valve():
    """The isolated valve of Sec. III A (PL along x, FL along z, J_ex = -1, K = 0)."""
    return valve_device(N_S=N_S, N_NM=N_NM, J_sd=1.0)


def local_extrema(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interior indices of strict local maxima and of local minima of a sampled curve."""
    d = np.diff(y)
    maxima = np.flatnonzero((d[:-1] > 0) & (d[1:] < 0)) + 1
    minima = np.flatnonzero((d[:-1] < 0) & (d[1:] > 0)) + 1
    return maxima, minima


def compute(path: str, args, comm) -> None:
    dev = valve()
    jsd = np.arange(0, 8 + 1e-9, 0.25 if args.quick else 0.01)
    t0 = time.perf_counter()
    sw = spectrum_vs_jsd(dev, jsd, "perpendicular", comm=comm)
    de = splitting(sw.eigenvalues, dev.n_sites)
    imax, imin = local_extrema(de)
    top = [dev.n_sites - 1, dev.n_sites - 2]  # HOMO, HOMO-1
    data = {"J_sd": (jsd, "hopping", "s-d coupling of PL and FL"),
            "P_lowest": (sw.localization[:, :, :2], "",
                         "P_l^n of the two lowest states; axes (J_sd, layer PL/SL/FL, n = 0, 1)"),
            "P_homo": (sw.localization[:, :, top], "",
                       "P_l of HOMO, HOMO-1; axes (J_sd, layer PL/SL/FL, state)"),
            "eigenvalues_lowest": (sw.eigenvalues[:, :2], "hopping", "eps_0, eps_1"),
            "eigenvalues_homo": (sw.eigenvalues[:, top], "hopping", "HOMO, HOMO-1"),
            "splitting": (de, "hopping", "Delta-epsilon at half filling"),
            "splitting_maxima": (jsd[imax], "hopping", "J_sd of local maxima of Delta-eps"),
            "splitting_minima": (jsd[imin], "hopping", "J_sd of local minima of Delta-eps")}
    attrs = {"figure": "paper 004 Fig. 16", "N_S": N_S, "N_NM": N_NM, "layers": "PL, SL, FL",
             "spins": "PL +x, FL +z", "paper_regime": list(PAPER_REGIME),
             "wall_time": time.perf_counter() - t0}
    save_table(path, data, attrs, kind="figure", comm=comm, overwrite=args.overwrite)


def _panel(ax, J, P, names, jmax, jmin) -> None:
    ax.axvspan(*PAPER_REGIME, color="0.88", zorder=0, label=r"$3 \leq J_{sd} \leq 4.5$ (paper)")
    for j in jmax:
        ax.axvline(j, color="tab:red", lw=0.6, alpha=0.7, zorder=1)
    for j in jmin:
        ax.axvline(j, color="k", lw=0.6, alpha=0.7, zorder=1)
    for k, (cm, cs) in enumerate((("k", "tab:red"), ("0.55", "orange"))):
        ax.plot(J, P[:, 0, k] + P[:, 2, k], color=cm, lw=1.6, label=f"$P_{{PL+FL}}$ {names[k]}")
        ax.plot(J, P[:, 1, k], color=cs, lw=1.6, label=f"$P_{{SL}}$ {names[k]}")
    ax.set_xlim(J[0], J[-1])
    ax.set_ylim(0, 1)
    ax.set_ylabel(r"$P_\ell^n$")
    ax.legend(fontsize=7.5, loc="center right", framealpha=0.9)


def plot(path: str, png: str) -> None:
    plt = use_agg()
    r = load_result(path)
    J, Ph, Pl = r["J_sd"], r["P_homo"], r["P_lowest"]
    jmax, jmin = r["splitting_maxima"], r["splitting_minima"]
    fig, (a, b) = plt.subplots(2, 1, figsize=(8, 7.5), sharex=True, layout="constrained")
    _panel(a, J, Ph, ("HOMO", "HOMO$-1$"), jmax, jmin)
    a.set_title("(a) two highest occupied states (half filling): the paper's description of "
                "Fig. 16", fontsize=9)
    _panel(b, J, Pl, ("$n = 0$", "$n = 1$"), jmax, jmin)
    b.set_title("(b) two lowest states of the spectrum (bound below the spacer band)",
                fontsize=9)
    b.set_xlabel(r"$J_{sd}$")
    fig.suptitle(r"N = 20, $N_S = 5$, PL $\parallel x$, FL $\parallel z$; vertical lines: "
                 r"local max (red) / min (black) of $\Delta\varepsilon$", fontsize=10)
    fig.savefig(png, dpi=130)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(figure_main("fig16", compute, plot, doc=__doc__,
                         quick_help="coarse J_sd grid (smoke test)"))
