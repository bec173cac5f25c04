#!/usr/bin/env python
"""Fig. 8 of paper 004: relaxation time t_R of the free-layer oscillations after a bias quench.

2D valve of Sec. III B (12 x 4, N_S = 4 x 4, Gamma = 1, T = 0.025, J_ex = -1, K_l = 0.4 x,
K_r = 0.02 z, N_p = 30) at J_sd = 2 and 3.  Stage 1 (V = 0, spins released from their easy
axes) runs once per J_sd; stage 2 is one quench per V: (a) symmetric drop mu_l = -mu_r = V/2,
(b) asymmetric drop mu_l = V', mu_r = 0.  t_R comes from the Eq. (22) fit to the envelope of
M_r^x / N_S after t = 200 (``analysis.quench``); a t_R much longer than the record is only a
rough estimate (open markers: t_R longer than ten times the fitted envelope span).

    mpirun -n 2 python scripts/fig08_relaxation.py [--quick] [--outdir DIR] [--overwrite]

Full (``toolkit.presets.relaxation_plan``): stage 1 3000, stage 2 3000 (symmetric) and 1500
(asymmetric) time units (hbar/hopping); V = 0.5:12:0.5 and V' = 0.25:6:0.25 at J_sd = 2,
V = 2:12:2 and V' = 1:6:1 at J_sd = 3.  --quick (a pipeline test, not converged): J_sd = 2,
V = 1, 8 and V' = 0.5, 4, stage 1 80 and stage 2 100 (``toolkit.presets.valve_stages``, the
lengths of every script sharing DIR/valve_runs_quick; too short for valid Eq. (22) fits, so
the panels stay empty).  Runs:
DIR/valve_runs/J<J_sd>_<protocol>/V_*.h5 (shared with Figs. 6-13 and 19, restartable: an
interrupted script continues them); table: DIR/fig08.h5; plot: DIR/fig08.png.
"""
from __future__ import annotations

import json
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

COLORS = {2.0: "tab:red", 3.0: "tab:blue"}


def compute(h5, args, comm):
    p = relaxation_plan(args.quick)
    runs = os.path.join(args.outdir, "valve_runs" + ("_quick" if args.quick else ""))
    rank0 = comm.getRank() == 0

    def report(i, v, obs, wall):
        print(f"  V = {v:<6g} done ({wall:.0f} s)", flush=True)

    dirs = {}
    for J_sd, grids in p["grids"].items():
        if rank0:
            print(f"fig08: J_sd = {J_sd:g}: stage 1 {p['stage1']:g}, stage 2 {p['t_end']}, "
                  f"{sum(len(v) for v in grids.values())} quenches", flush=True)
        dirs[J_sd] = quench_sweeps(runs, J_sd, grids, stage1_time=p["stage1"],
                                   t_end=p["t_end"], comm=comm, progress=report)
    if not rank0:
        return
    data, groups = {}, {}
    for J_sd, dd in dirs.items():
        for protocol, d in dd.items():
            tab = analyze_sweep(d, overwrite=True)
            g = f"J_sd={J_sd:g}/{protocol}"
            for k in ("V", "t_R", "t_R_err", "R", "valid", "lower_bound", "t_R_lower",
                      "M_inf", "t_span", "reason"):
                data[f"{g}/{k}"] = tab[k]
            groups[g] = {"units": "V: energy (hopping); t_R, t_span: hbar/hopping"}
    write_table(h5, data, {"runs": os.path.abspath(runs), "stage1_time": p["stage1"],
                           "t_end": json.dumps(p["t_end"])},
                kind="figure", group_attrs=groups, overwrite=args.overwrite)


def plot(h5, png):
    plt = use_agg()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    r = load_result(h5)
    for key in sorted({n.split("/")[0] for n in r.names if "/" in n}):
        J_sd = float(key.split("=")[1])
        for ax, protocol in zip(axes, ("symmetric", "asymmetric")):
            g = f"{key}/{protocol}"
            if f"{g}/V" not in r:
                continue
            V, tR, valid = r[f"{g}/V"], r[f"{g}/t_R"], r[f"{g}/valid"]
            bound = r[f"{g}/lower_bound"]
            ok = valid
            c = COLORS.get(J_sd, "k")
            ax.plot(V[ok], tR[ok], "o-", color=c, label=f"$J_{{sd}}$ = {J_sd:g}")
            if bound.any():
                ax.plot(V[bound], tR[bound], "o", mfc="none", color=c,
                        label=f"$J_{{sd}}$ = {J_sd:g}: $t_R$ > 10 x fitted span")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("symmetric drop $V$ ($\\mu_l = -\\mu_r = V/2$)")
    axes[1].set_xlabel("asymmetric drop $V'$ ($\\mu_l = V'$, $\\mu_r = 0$)")
    for ax, tag in zip(axes, "ab"):
        ax.set_ylabel("relaxation time $t_R$ ($\\hbar/\\gamma$)")
        ax.set_title(f"({tag})", loc="left")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    sys.exit(figure_main("fig08", compute, plot, doc=__doc__,
                         quick_help="J_sd = 2, 2 voltages per protocol, stages 80 and 100 "
                                    "(pipeline test)"))
