#!/usr/bin/env python
"""Figs. 12 and 13 of paper 004: steady-state current-driven torque against the effective
anisotropy torque, T_cd = 2 K e x dM.

From the bias quenches of Fig. 8 (J_sd = 2 and 3; 2D valve of Sec. III B), steady state = mean
over whole periods of the free-layer oscillation in the second half of each record
(``analysis.quench``).  Fig. 12, symmetric drop: T_cd^y of the free layer (Eq. 15, line),
T_eff^y = 2 K_r dM_r^x (circles) and 2 K_l dM_l^z (crosses; the pinned layer takes the opposite
torque when no spin leaves through the leads).  Fig. 13, asymmetric drop: T_cd^x and T_cd^y
(lines) against T_eff^x = -2 K_r dM_r^y and T_eff^y = 2 K_r dM_r^x (circles).  Units: hbar per
time unit (s = sigma/2), V in units of the hopping.  No fitted factor: the two sides are
computed independently (currents from rho, dM from the classical spins).

    mpirun -n 2 python scripts/fig12_13_torques.py [--quick] [--outdir DIR] [--overwrite]

Runs: DIR/valve_runs (those of Fig. 8, computed if missing); --quick (a pipeline test): the
quick runs of Fig. 8 (J_sd = 2, two biases per protocol, stages 80 and 100, not converged).
Data DIR/fig12.h5; plots DIR/fig12.png, DIR/fig13.png.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from analysis.figscript import figure_main  # noqa: E402
from analysis.plots import use_agg  # noqa: E402
from analysis.quench import analyze_sweep  # noqa: E402
from integrators.campaign import quench_sweeps  # noqa: E402
from toolkit.io import write_table  # noqa: E402
from toolkit.presets import relaxation_plan  # noqa: E402
from toolkit.results import load_result  # noqa: E402

K_L, K_R = 0.4, 0.02


def compute(h5, args, comm):
    p = relaxation_plan(args.quick)
    runs = os.path.join(args.outdir, "valve_runs" + ("_quick" if args.quick else ""))
    dirs = {J: quench_sweeps(runs, J, grids, stage1_time=p["stage1"], t_end=p["t_end"],
                             comm=comm) for J, grids in p["grids"].items()}
    if comm.getRank() != 0:
        return
    data = {}
    for J, dd in dirs.items():
        for protocol, d in dd.items():
            tab = analyze_sweep(d, overwrite=True)
            fl, pl = tab["layers"].index("FL"), tab["layers"].index("PL")
            g = f"J_sd={J:g}/{protocol}"
            data.update({f"{g}/V": tab["V"], f"{g}/T_cd": tab["T_cd"],
                         f"{g}/T_eff_FL": tab["T_eff"][:, fl],
                         f"{g}/T_eff_PL": tab["T_eff"][:, pl],
                         f"{g}/T_ani_FL": tab["T_ani"][:, fl],
                         f"{g}/dM_FL": tab["dM"][:, fl], f"{g}/dM_PL": tab["dM"][:, pl]})
    write_table(h5, data, {"units": "V: hopping; torques: hbar per time unit; dM: hbar "
                                    "(unnormalized)"}, kind="figure", overwrite=args.overwrite)


def _fig(h5, png, protocol, comps):
    plt = use_agg()
    r = load_result(h5)
    keys = sorted({n.split("/")[0] for n in r.names if "/" in n},
                  key=lambda k: float(k.split("=")[1]))
    fig, axes = plt.subplots(len(keys), len(comps), figsize=(5 * len(comps),
                             3.3 * len(keys)), squeeze=False)
    for row, key in zip(axes, keys):
        g = {k: r[f"{key}/{protocol}/{k}"] for k in ("V", "T_cd", "T_eff_FL", "dM_PL")}
        V = g["V"]
        for ax, c in zip(row, comps):
            xyz = "xyz"[c]
            ax.plot(V, g["T_cd"][:, c], "-", color="tab:red",
                    label=f"$\\mathcal{{T}}_{{cd}}^{xyz}$ (Eq. 15)")
            ax.plot(V, g["T_eff_FL"][:, c], "o", mfc="none", color="tab:blue",
                    label=f"$(2K_r e_r \\times \\Delta M_r)^{xyz}$")
            if protocol == "symmetric" and c == 1:
                ax.plot(V, 2 * K_L * g["dM_PL"][:, 2], "x", color="k",
                        label="$2K_l \\Delta M_l^z$")
            ax.axhline(0, color="0.6", lw=0.5)
            ax.set_title(f"{key.replace('J_sd', '$J_{sd}$')}, {protocol}, component {xyz}",
                         fontsize=10, loc="left")
            ax.set_ylabel("torque ($\\gamma$, i.e. $\\hbar$ per $\\hbar/\\gamma$)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("symmetric drop $V$" if protocol == "symmetric"
                      else "asymmetric drop $V'$")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def plot(h5, png):
    _fig(h5, png, "symmetric", (1,))
    _fig(h5, os.path.join(os.path.dirname(png), "fig13.png"), "asymmetric", (0, 1))


if __name__ == "__main__":
    sys.exit(figure_main("fig12", compute, plot, doc=__doc__,
                         quick_help="the quick runs of Fig. 8 (pipeline test)"))
