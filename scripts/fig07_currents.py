#!/usr/bin/env python
"""Fig. 7 of paper 004: charge and spin currents after the bias quench (stage 2).

2D valve of Sec. III B (see ``scripts/fig06_dynamics.py``) quenched from its relaxed stage-1
state: (a) J_sd = 2 and (b) J_sd = 6 with the symmetric drop V = 1, (c) J_sd = 2 and (d)
J_sd = 6 with the asymmetric drop V' = 0.5.  Solid: currents at the FL-lead interface, from the
valve into the right lead (Eqs. 11, 12 with the paper's minus sign: I_r = -Re Tr Pi_r,
J_r = -Re Tr sigma Pi_r); dashed: across the SL-FL plane (Eqs. 13, 14) with the t = 0 value
subtracted (only J_F^y is finite in equilibrium).  Green: charge, red/blue/black: spin x/y/z.
Charge currents are Re Tr Pi (half the electron flow, see README "Conventions"); spin currents
count s = sigma/2 (hbar per time unit).  Log time axis, as in the paper.

    python scripts/fig07_currents.py [--quick] [--outdir DIR] [--overwrite]

Output every time step (dt = 0.2) up to t = 1000 (--quick, a pipeline test: 100); the stage-1
states are those of ``valve_runs`` (Fig. 6, 3000 time units, computed if missing; --quick: those
of ``valve_runs_quick``, 80, ``toolkit.presets.valve_stages``); runs in DIR/valve_runs/fine;
data DIR/fig07.h5, plot DIR/fig07.png.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from analysis.figscript import figure_main  # noqa: E402
from analysis.plots import use_agg  # noqa: E402
from analysis.quench import read_quench  # noqa: E402
from integrators.campaign import ensure_stage1, quench_sweeps  # noqa: E402
from toolkit.io import write_table  # noqa: E402
from toolkit.presets import valve_stages  # noqa: E402
from toolkit.results import load_result  # noqa: E402

PANELS = (("a", 2.0, "symmetric", 1.0), ("b", 6.0, "symmetric", 1.0),
          ("c", 2.0, "asymmetric", 0.5), ("d", 6.0, "asymmetric", 0.5))


def compute(h5, args, comm):
    T1, T2 = valve_stages(args.quick)["stage1"], 100.0 if args.quick else 1000.0
    runs = os.path.join(args.outdir, "valve_runs" + ("_quick" if args.quick else ""))
    fine = os.path.join(runs, "fine")
    files = {}
    for tag, J_sd, protocol, V in PANELS:
        s1 = ensure_stage1(runs, J_sd, stage1_time=T1, comm=comm)
        d = quench_sweeps(fine, J_sd, {protocol: np.array([V])}, stage1_time=T1, t_end=T2,
                          stage1=s1, config_kw={"output_every": 1}, comm=comm)
        files[tag] = os.path.join(d[protocol], f"V_{V:+.6g}.h5")
    if comm.getRank() != 0:
        return
    data, groups = {}, {}
    for tag, J_sd, protocol, V in PANELS:
        q = read_quench(files[tag])
        groups[tag] = dict(J_sd=J_sd, protocol=protocol, V=V, file=os.path.abspath(files[tag]))
        data.update({f"{tag}/time": q["t"], f"{tag}/I_r": q["I_r"], f"{tag}/J_r": q["J_r"],
                     f"{tag}/I_F": q["I_F"] - q["I_F"][0], f"{tag}/J_F": q["JF"] - q["JF"][0],
                     f"{tag}/J_F_eq": q["JF"][0]})
    write_table(h5, data, {"units": "time: hbar/hopping; charge current: Re Tr Pi (half the "
                                    "electron flow); spin current: hbar/time (s = sigma/2)"},
                kind="figure", group_attrs=groups, overwrite=args.overwrite)


def plot(h5, png):
    plt = use_agg()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    cols = ("tab:red", "tab:blue", "k")
    r = load_result(h5)
    for ax, (tag, J_sd, protocol, V) in zip(axes.T.ravel(), PANELS):
        g = r.read(*(f"{tag}/{k}" for k in ("time", "I_r", "I_F", "J_r", "J_F")))
        t = g[f"{tag}/time"]
        m = t > 0
        ax.plot(t[m], g[f"{tag}/I_r"][m], color="tab:green", label="$\\mathcal{I}$")
        ax.plot(t[m], g[f"{tag}/I_F"][m], "--", color="tab:green")
        for c in range(3):
            ax.plot(t[m], g[f"{tag}/J_r"][m, c], color=cols[c],
                    label=f"$\\mathcal{{J}}^{'xyz'[c]}$")
            ax.plot(t[m], g[f"{tag}/J_F"][m, c], "--", color=cols[c])
        ax.set_xscale("log")
        ax.axhline(0, color="0.6", lw=0.5)
        Vn = "V" if protocol == "symmetric" else "V'"
        ax.set_title(f"({tag}) $J_{{sd}}$ = {J_sd:g}, {protocol} {Vn} = {V:g}", loc="left",
                     fontsize=10)
        ax.grid(alpha=0.3)
        ax.set_xlim(t[m][0], t[-1])
    for ax in axes[1]:
        ax.set_xlabel("t ($\\hbar/\\gamma$)")
    for ax in axes[:, 0]:
        ax.set_ylabel("current")
    axes[0, 0].legend(fontsize=8, ncol=2, title="solid: FL-lead, dashed: SL-FL",
                      title_fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    sys.exit(figure_main("fig07", compute, plot, doc=__doc__,
                         quick_help="stage 1 80, stage 2 100 time units (pipeline test)"))
