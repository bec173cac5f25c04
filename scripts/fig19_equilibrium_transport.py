#!/usr/bin/env python
"""Fig. 19 of paper 004 (App. E): equilibrium DOSh, transmission and its spin polarization.

For the relaxed stage-1 spin configurations of the 2D valve of Sec. III B at J_sd = 2 and 6
(the cases of Fig. 6): (a) DOSh(eps) (Eq. 18, per site), (b) Theta(eps) (Eq. 16),
(c) P(eps) = Tr[sigma_z Gamma_r G^R Gamma_l G^A] (Eq. 17 with G^R and G^A in the order that
gives the spin current into the right lead; see README "Conventions").  Zero bias, wide-band
leads Gamma = 1.  Expected (paper): sharp DOSh states and a much smaller transmission for
J_sd = 6 (insulating-like magnetic layers); P antisymmetric about the Fermi level.

    python scripts/fig19_equilibrium_transport.py [--quick] [--outdir DIR] [--overwrite]

Energies -8:8 in steps of 0.005 (--quick: 0.05); the stage-1 files are those of Fig. 6
(DIR/valve_runs, 3000 time units; --quick, a pipeline test: DIR/valve_runs_quick, 80 time
units, ``toolkit.presets.valve_stages``), computed if missing.  Data DIR/fig19.h5, plot
DIR/fig19.png.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from analysis.figscript import figure_main  # noqa: E402
from analysis.plots import use_agg  # noqa: E402
from analysis.quench import equilibrium_transmission  # noqa: E402
from integrators.campaign import ensure_stage1  # noqa: E402
from toolkit.io import write_table  # noqa: E402
from toolkit.presets import valve_stages  # noqa: E402
from toolkit.results import load_result  # noqa: E402

CASES = (2.0, 6.0)
COLORS = {2.0: "tab:red", 6.0: "tab:blue"}


def compute(h5, args, comm):
    T1 = valve_stages(args.quick)["stage1"]
    runs = os.path.join(args.outdir, "valve_runs" + ("_quick" if args.quick else ""))
    de = 0.05 if args.quick else 0.005
    E = np.arange(-8.0, 8.0 + de / 2, de)
    res = {}
    for J_sd in CASES:
        s1 = ensure_stage1(runs, J_sd, stage1_time=T1, comm=comm)
        res[J_sd] = (s1, equilibrium_transmission(s1, E, comm=comm))
    if comm.getRank() != 0:
        return
    data, groups = {"energies": (E, "energy (hopping)", None)}, {}
    for J_sd, (s1, tr) in res.items():
        g = f"J_sd={J_sd:g}"
        groups[g] = {"stage1": os.path.abspath(s1)}
        data.update({f"{g}/dos": (tr.dos, "1/energy per site (integrates to 2)", None),
                     f"{g}/theta": tr.theta, f"{g}/polarization": tr.polarization})
    write_table(h5, data, kind="figure", group_attrs=groups, overwrite=args.overwrite)


def plot(h5, png):
    plt = use_agg()
    fig, axes = plt.subplots(3, 1, figsize=(8, 8.5), sharex=True)
    r = load_result(h5)
    E = r["energies"]
    for key in sorted({n.split("/")[0] for n in r.names if n.startswith("J_sd=")}):
        J = float(key.split("=")[1])
        for ax, name in zip(axes, ("dos", "theta", "polarization")):
            ax.plot(E, r[f"{key}/{name}"], color=COLORS.get(J, "k"), lw=1,
                    label=f"$J_{{sd}}$ = {J:g}")
    labels = ("DOSh ($1/\\gamma$ per site)", "$\\Theta(\\varepsilon)$", "$P(\\varepsilon)$")
    for ax, lab, tag in zip(axes, labels, "abc"):
        ax.set_ylabel(lab)
        ax.set_title(f"({tag})", loc="left", fontsize=10)
        ax.axvline(0, color="0.6", lw=0.5)
        ax.grid(alpha=0.3)
    axes[2].axhline(0, color="0.6", lw=0.5)
    axes[0].set_yscale("log")  # the J_sd = 6 states are very sharp (Gamma-broadening vanishes)
    axes[0].set_ylim(1e-3, None)
    axes[0].legend(fontsize=9)
    axes[-1].set_xlabel("energy $\\varepsilon$ ($\\gamma$)")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    sys.exit(figure_main("fig19", compute, plot, doc=__doc__, quick_help="coarse energies, "
                         "stage 1 of 80 time units (pipeline test)"))
