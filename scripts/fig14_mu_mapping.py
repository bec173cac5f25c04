#!/usr/bin/env python
"""Fig. 14 of paper 004: the steady state under a symmetric drop V equals the equilibrium at
the electrochemical potential mu-bar = V/2.

2D valve of Sec. III B at J_sd = 3.  Line: steady-state M_r^x / N_S after a symmetric quench
to V (mu_l = -mu_r = V/2).  Circles: equilibrium M_r^x / N_S with both leads at mu_l = mu_r =
mu-bar, plotted at V = 2 mu-bar.  Both are stationary states of the coupled equations, reached
here with an extra Gilbert damping alpha = 0.5 on the magnetic layers (it changes how fast
they are reached, not where they are; checked in tests/analysis/test_quench.py and against the
undamped runs of Fig. 8: crosses, the centre of their oscillation).

    mpirun -n 2 python scripts/fig14_mu_mapping.py [--quick] [--outdir DIR] [--overwrite]

V = 0.5:12:0.5, records of 800 time units; --quick (a pipeline test, not converged): V = 1, 4,
records of 60.  Runs in DIR/valve_runs/fig14 (resumable; --quick: DIR/valve_runs_quick/fig14);
data DIR/fig14.h5, plot DIR/fig14.png.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from analysis.figscript import figure_main  # noqa: E402
from analysis.plots import use_agg  # noqa: E402
from analysis.quench import analyze_sweep  # noqa: E402
from integrators.campaign import ensure_stage1, quench_sweeps  # noqa: E402
from toolkit.io import write_table  # noqa: E402
from toolkit.parallel import get_comm, split_comm  # noqa: E402
from toolkit.results import load_result  # noqa: E402

J_SD = 3.0
ALPHA = 0.5


def _mr_x(path: str, tail: float = 0.2) -> float:
    """M_r^x / N_S averaged over the last ``tail`` of a (converged) record."""
    r = load_result(path)
    m = r["layer_magnetization", :, r.device.layer("FL"), 0] / r.device.n_spins("FL")
    return float(m[int((1 - tail) * len(m)):].mean())


def compute(h5, args, comm):
    comm = get_comm(comm)
    V = np.array([1.0, 4.0]) if args.quick else np.arange(1, 25) * 0.5
    T = 60.0 if args.quick else 800.0
    base = os.path.join(args.outdir, "valve_runs" + ("_quick" if args.quick else ""))
    runs = os.path.join(base, "fig14")
    kw = {"damping": ALPHA}
    d = quench_sweeps(os.path.join(runs, "damped"), J_SD, {"symmetric": V}, stage1_time=T,
                      t_end=T, config_kw=kw, comm=comm)["symmetric"]
    mus = np.concatenate([[0.0], V / 2])
    group, color, n_groups = split_comm(comm, 1)
    for i in range(color, len(mus), n_groups):
        ensure_stage1(os.path.join(runs, f"mu_{mus[i]:g}"), J_SD, stage1_time=T,
                      config_kw={**kw, "mu": float(mus[i])}, comm=group)
    comm.barrier()
    if comm.getRank() != 0:
        return
    tab = analyze_sweep(d, overwrite=True, tail=0.2)
    fl = tab["layers"].index("FL")
    data = {"V": V, "M_r_x_bias": tab["M_ss"][:, fl, 0] / tab["n_spins"][:, fl], "mu_bar": mus,
            "M_r_x_equilibrium": np.array([_mr_x(os.path.join(runs, f"mu_{m:g}",
                                                              f"J{J_SD:g}_stage1.h5"))
                                           for m in mus])}
    undamped = os.path.join(base, f"J{J_SD:g}_symmetric")
    if os.path.isdir(undamped) and any(n.startswith("V_") for n in os.listdir(undamped)):
        u = analyze_sweep(undamped, overwrite=True)
        data["V_undamped"] = u["V"]
        data["M_r_x_undamped"] = u["M_ss"][:, fl, 0] / u["n_spins"][:, fl]
    write_table(h5, data, {"J_sd": J_SD, "damping": ALPHA, "t_end": T,
                           "units": "V, mu_bar: hopping; M: normalized M_r^x / N_S"},
                kind="figure", overwrite=args.overwrite)


def plot(h5, png):
    plt = use_agg()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    r = load_result(h5)
    ax.plot(r["V"], r["M_r_x_bias"], "-", color="tab:red",
            label="steady state, symmetric drop $V$")
    ax.plot(2 * r["mu_bar"], r["M_r_x_equilibrium"], "o", mfc="none", color="k",
            label="equilibrium at $\\bar\\mu$, plotted at $V = 2\\bar\\mu$")
    if "V_undamped" in r:
        ax.plot(r["V_undamped"], r["M_r_x_undamped"], "x", color="tab:blue",
                label="undamped quench (Fig. 8 runs): oscillation centre")
    ax.set_title(f"$J_{{sd}}$ = {r.attrs['J_sd']:g}", loc="left", fontsize=10)
    ax.set_xlabel("$V$ resp. $2\\bar\\mu$ ($\\gamma$)")
    ax.set_ylabel("$M_r^x / N_S$")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    sys.exit(figure_main("fig14", compute, plot, doc=__doc__, quick_help="V = 1, 4, records of "
                         "60 time units (pipeline test)"))
