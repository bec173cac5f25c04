#!/usr/bin/env python
"""Figs. 9 and 10 of paper 004: spin currents, current-driven torque and magnetization change
after a large bias quench, J_sd = 2.

(a) symmetric drop V = 8 (mu_l = -mu_r = 4), (b) asymmetric drop V' = 4 (mu_l = 4, mu_r = 0);
2D valve of Sec. III B.  Fig. 9: spin current from the valve into the right lead
J_r = -Re Tr sigma Pi_r (Eq. 12) and the current-driven torque on the free layer
T_cd = J_F - J_r - J_F(0) (Eq. 15), hbar per time unit (s = sigma/2).  Fig. 10: nonequilibrium
magnetization change dM/N_S = (M(t) - M(0))/N_S of the free (solid) and pinned (dashed) layer.
Expected (paper): for the symmetric drop J_r and T_cd die out quickly and the magnetization
keeps precessing (Larmor-like, t_R ~ 1e4-1e5); for the asymmetric drop finite steady spin
currents and torques remain and the precession is damped within a few hundred time units.

    python scripts/fig09_10_detail.py [--quick] [--outdir DIR] [--overwrite]

Full: stage 1 3000, stage 2 3000 (symmetric) and 1500 (asymmetric) time units; the quench
files are those of Fig. 8 (DIR/valve_runs, computed if missing).  --quick (a pipeline test):
stage 1 80, stage 2 100 (``toolkit.presets.valve_stages``, the quick runs of Fig. 8 in
DIR/valve_runs_quick).  Data DIR/fig09.h5; plots DIR/fig09.png and DIR/fig10.png.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from analysis.figscript import figure_main  # noqa: E402
from analysis.plots import use_agg  # noqa: E402
from analysis.quench import read_quench  # noqa: E402
from integrators.campaign import quench_sweeps  # noqa: E402
from toolkit.io import write_table  # noqa: E402
from toolkit.presets import valve_stages  # noqa: E402
from toolkit.results import load_result  # noqa: E402

CASES = (("a", "symmetric", 8.0), ("b", "asymmetric", 4.0))
J_SD = 2.0


def compute(h5, args, comm):
    stages = valve_stages(args.quick)
    T1, T2 = stages["stage1"], stages["t_end"]
    runs = os.path.join(args.outdir, "valve_runs" + ("_quick" if args.quick else ""))
    d = quench_sweeps(runs, J_SD, {p: np.array([V]) for _, p, V in CASES}, stage1_time=T1,
                      t_end=T2, comm=comm)
    if comm.getRank() != 0:
        return
    data, groups = {}, {}
    for tag, protocol, V in CASES:
        path = os.path.join(d[protocol], f"V_{V:+.6g}.h5")
        q = read_quench(path)
        groups[tag] = dict(protocol=protocol, V=V, file=os.path.abspath(path))
        data.update({f"{tag}/time": q["t"], f"{tag}/J_r": q["J_r"],
                     f"{tag}/T_cd": q["JF"] - q["J_r"] - q["JF"][0]})
        for lay in ("PL", "FL"):
            k = q["names"].index(lay)
            data[f"{tag}/dM_{lay}"] = (q["M"][:, k] - q["M"][0, k]) / q["n_spins"][k]
    write_table(h5, data, {"J_sd": J_SD, "units": "time: hbar/hopping; J, T_cd: hbar per time "
                                                  "unit; dM: normalized"},
                kind="figure", group_attrs=groups, overwrite=args.overwrite)


def _panels(h5, png, draw):
    plt = use_agg()
    fig, axes = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    r = load_result(h5)
    for ax, (tag, protocol, V) in zip(axes, CASES):
        g = {n[len(tag) + 1:]: v for n, v in
             r.read(*(n for n in r.names if n.startswith(f"{tag}/"))).items()}
        draw(ax, g)
        Vn = "V" if protocol == "symmetric" else "V'"
        ax.set_title(f"({tag}) $J_{{sd}}$ = {r.attrs['J_sd']:g}, {protocol} {Vn} = {V:g}",
                     loc="left", fontsize=10)
        ax.axhline(0, color="0.6", lw=0.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, ncol=3)
    axes[-1].set_xlabel("t ($\\hbar/\\gamma$)")
    axes[-1].set_xlim(0, min(ax.get_lines()[0].get_xdata()[-1] for ax in axes))
    fig.tight_layout()
    fig.savefig(png, dpi=110)


COLS = ("tab:red", "tab:blue", "k")


def plot(h5, png):
    def currents(ax, g):
        t = g["time"][:]
        for c in range(3):
            ax.plot(t, g["T_cd"][:, c], color=COLS[c], label=f"$\\mathcal{{T}}_{{cd}}^{'xyz'[c]}$")
            ax.plot(t, g["J_r"][:, c], "--", color=COLS[c],
                    label=f"$\\mathcal{{J}}_r^{'xyz'[c]}$")
        ax.set_ylabel("spin current, torque")

    def magnet(ax, g):
        t = g["time"][:]
        for c in range(3):
            ax.plot(t, g["dM_FL"][:, c], color=COLS[c], label=f"$\\Delta M_r^{'xyz'[c]}/N_S$")
            ax.plot(t, g["dM_PL"][:, c], "--", color=COLS[c],
                    label=f"$\\Delta M_l^{'xyz'[c]}/N_S$")
        ax.set_ylabel("$\\Delta M / N_S$")

    _panels(h5, png, currents)
    _panels(h5, os.path.join(os.path.dirname(png), "fig10.png"), magnet)


if __name__ == "__main__":
    sys.exit(figure_main("fig09", compute, plot, doc=__doc__,
                         quick_help="stage 1 80, stage 2 100 time units (pipeline test)"))
