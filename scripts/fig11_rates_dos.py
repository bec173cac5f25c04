#!/usr/bin/env python
"""Fig. 11 of paper 004: relaxation rate vs the lead chemical potential, against the DOSh.

(a) R = 1/t_R of the free-layer oscillations (Eq. 22 fit, as in Fig. 8) at J_sd = 2 for the
symmetric drop (red, plotted at mu_l = V/2, i.e. the paper's x scale 0.5) and the asymmetric
drop (blue, mu_l = V'); where t_R exceeds ten times the fitted envelope span the rate is only
a rough estimate (open circles).  (b) DOSh (Eq. 18) of the relaxed (V = 0) valve.  Expected
(paper): sharp maxima of R where mu_l meets DOSh maxima, for the symmetric drop also near the
band edges (states localized on the magnetic layers).

    mpirun -n 2 python scripts/fig11_rates_dos.py [--quick] [--outdir DIR] [--overwrite]

The quench runs are those of Fig. 8 (DIR/valve_runs, ``toolkit.presets.relaxation_plan``,
computed if missing); DOSh on -7:7 in steps of 0.005.  --quick (a pipeline test): the quick runs
of Fig. 8 (J_sd = 2, two biases per protocol, stages 80 and 100: no valid rate, panel (a)
stays empty) and DOSh steps of 0.1.  Data
DIR/fig11.h5, plot DIR/fig11.png.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from analysis.figscript import figure_main  # noqa: E402
from analysis.plots import use_agg  # noqa: E402
from analysis.quench import analyze_sweep, equilibrium_transmission  # noqa: E402
from integrators.campaign import quench_sweeps  # noqa: E402
from toolkit.io import write_table  # noqa: E402
from toolkit.presets import relaxation_plan  # noqa: E402
from toolkit.results import load_result  # noqa: E402

J_SD = 2.0
SCALE = {"symmetric": 0.5, "asymmetric": 1.0}  # mu_l = SCALE * V
COLORS = {"symmetric": "tab:red", "asymmetric": "tab:blue"}


def compute(h5, args, comm):
    p = relaxation_plan(args.quick)
    runs = os.path.join(args.outdir, "valve_runs" + ("_quick" if args.quick else ""))
    dirs = quench_sweeps(runs, J_SD, p["grids"][J_SD], stage1_time=p["stage1"],
                         t_end=p["t_end"], comm=comm)
    E = np.arange(-7.0, 7.0 + 1e-9, 0.1 if args.quick else 0.005)
    tr = equilibrium_transmission(os.path.join(runs, f"J{J_SD:g}_stage1.h5"), E, comm=comm)
    if comm.getRank() != 0:
        return
    data = {"energies": E, "dos": (tr.dos, "1/energy per site", None)}
    for protocol, d in dirs.items():
        tab = analyze_sweep(d, overwrite=True)
        data.update({f"{protocol}/V": tab["V"], f"{protocol}/mu_l": SCALE[protocol] * tab["V"],
                     f"{protocol}/t_R": tab["t_R"], f"{protocol}/valid": tab["valid"],
                     f"{protocol}/R": (1.0 / tab["t_R"], "hopping/hbar", None),
                     # t_R > 10 x fitted span: rough estimate
                     f"{protocol}/rough": tab["lower_bound"]})
    write_table(h5, data, {"J_sd": J_SD}, kind="figure", overwrite=args.overwrite)


def plot(h5, png):
    plt = use_agg()
    fig, axes = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    r = load_result(h5)
    for protocol in ("symmetric", "asymmetric"):
        if f"{protocol}/V" not in r:
            continue
        g = {k: r[f"{protocol}/{k}"] for k in ("mu_l", "R", "valid", "rough")}
        mu, R, valid, ub = g["mu_l"], g["R"], g["valid"], g["rough"]
        ok = valid & ~ub
        lab = "symmetric ($\\mu_l = V/2$)" if protocol == "symmetric" else \
            "asymmetric ($\\mu_l = V'$)"
        axes[0].plot(mu[ok | ub], np.where(ok | ub, R, np.nan)[ok | ub], "-",
                     color=COLORS[protocol], lw=0.8, alpha=0.6)
        axes[0].plot(mu[ok], R[ok], "o", color=COLORS[protocol], label=lab)
        if ub.any():
            axes[0].plot(mu[ub], R[ub], "o", mfc="none", color=COLORS[protocol],
                         label=f"{protocol}: $t_R$ > 10 x fitted span (rough)")
    E, dos = r["energies"], r["dos"]
    axes[1].plot(E, dos, color="k", lw=1)
    axes[0].set_title(f"(a) $J_{{sd}}$ = {r.attrs['J_sd']:g}", loc="left", fontsize=10)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("relaxation rate $R = 1/t_R$ ($\\gamma/\\hbar$)")
    axes[0].legend(fontsize=8)
    axes[1].set_title("(b) equilibrium DOSh", loc="left", fontsize=10)
    axes[1].set_ylabel("DOSh ($1/\\gamma$ per site)")
    axes[1].set_xlabel("$\\mu_l$ resp. energy $\\varepsilon$ ($\\gamma$)")
    axes[1].set_xlim(0, 6.2)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    sys.exit(figure_main("fig11", compute, plot, doc=__doc__,
                         quick_help="the quick runs of Fig. 8, energy steps of 0.1 "
                                    "(pipeline test)"))
