#!/usr/bin/env python
"""Fig. 3 of paper 004: layer magnetization M_l/N_S of a 1D valve (N = 20, N_S = 5, N_NM = 10,
J_ex = -1, K = 0) for J_sd = 1, 3.3, 5 with the fitted macrospin solution Eq. (21) dashed.

    python scripts/fig03_macrospin_fit.py [--quick] [--outdir DIR] [--overwrite] [--plot-only]
    mpirun -n 3 python scripts/fig03_macrospin_fit.py        # one J_sd per rank

Writes DIR/fig03.h5 (per J_sd: t, M_l, M_r and the fit) and DIR/fig03.png.  Each run covers
3 precession periods (--quick: 1), found automatically (analysis.jeff.jeff_point).
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from analysis.figscript import figure_main  # noqa: E402
from analysis.jeff import jeff_sweep  # noqa: E402
from analysis.macrospin import macrospin_solution  # noqa: E402
from analysis.plots import use_agg  # noqa: E402
from toolkit.io import save_table  # noqa: E402
from toolkit.results import load_result  # noqa: E402

J_SD = (1.0, 3.3, 5.0)
SETUP = dict(N_S=5, N_NM=10, J_ex=-1.0, dt=0.1, fit_phase=True, t_cap=15000.0)


def compute(path: str, args, comm) -> None:
    if comm.getRank() == 0:
        print(f"fig03: J_sd = {J_SD} on {comm.getSize()} rank(s) -> {path}", flush=True)
    t0 = time.perf_counter()
    s = jeff_sweep("J_sd", J_SD, comm=comm, keep_series=True,
                   n_periods=1.0 if args.quick else 3.0,
                   report=lambda i, p: print(f"  J_sd = {J_SD[i]}: J_eff = {p.J_eff:.6e}, "
                                             f"t_end = {p.t_end:g}, {p.wall_time:.0f} s",
                                             flush=True), **SETUP)
    data, groups = {}, {}
    for J, p in zip(J_SD, s.points):
        g = f"J_sd={J:g}"
        t, Ml, Mr = p.series
        data.update({f"{g}/t": (t, "hbar/hopping", None), f"{g}/M_l": Ml, f"{g}/M_r": Mr})
        groups[g] = {**{k: v for k, v in p.fit.as_dict().items() if k != "thresholds"},
                     "J_sd": J, "wall_time_run": p.wall_time}
    attrs = {"figure": "paper 004 Fig. 3",
             "sign_convention": "H_MS = -J_eff M_l.M_r; J_eff > 0 ferromagnetic",
             "wall_time": time.perf_counter() - t0, **SETUP}
    save_table(path, data, attrs, kind="figure", group_attrs=groups, comm=comm,
               overwrite=args.overwrite)


def plot(path: str, png: str) -> None:
    plt = use_agg()
    r = load_result(path)
    keys = sorted({n.split("/")[0] for n in r.names if "/" in n},
                  key=lambda k: float(k.split("=")[1]))
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 2.6 * len(keys)), squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        a = r.group_attrs(key)
        t, Ml, N_S = r[f"{key}/t"], r[f"{key}/M_l"], a["N_S"]
        fit = macrospin_solution(t, a["omega"], N_S, a["phi"])[:, 0]
        for c, col in enumerate(("tab:red", "tab:green", "tab:blue")):
            ax.plot(t, Ml[:, c] / N_S, color=col, lw=1.0, label=f"$M_l^{'xyz'[c]}/N_S$")
        for c in range(3):
            ax.plot(t, fit[:, c] / N_S, "--", color="k", lw=0.8,
                    label="Eq. (21), fitted $\\omega$, $\\varphi$" if c == 0 else None)
        ax.set_title(f"$J_{{sd}}$ = {a['J_sd']:g}:  $J_{{eff}}$ = {a['J_eff']:.3e},"
                     f"  rms = {a['rms']:.1e}", fontsize=9)
        ax.set_ylim(-1.05, 1.05)
        ax.set_xlim(0, t[-1])
        ax.set_ylabel("$M_l/N_S$")
    axes[0, 0].legend(fontsize=7, ncol=4, loc="lower left")
    axes[-1, 0].set_xlabel(r"$t$ [$\hbar/\gamma$]")
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(figure_main("fig03", compute, plot, doc=__doc__,
                         quick_help="one precession period per run"))
