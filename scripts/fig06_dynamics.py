#!/usr/bin/env python
"""Fig. 6 of paper 004: free-layer magnetization through the three-stage protocol.

2D valve of Sec. III B (12 x 4, N_S = 4 x 4, Gamma = 1, T = 0.025, J_ex = -1, K_l = 0.4 x,
K_r = 0.02 z, N_p = 30) at J_sd = 2 (a) and J_sd = 6 (b).  Stage 0: spins along their easy
axes, electrons stationary at V = 0.  Stage 1 (yellow, t < 0): spins released, relaxing at
V = 0.  Stage 2 (t >= 0): symmetric quench to V = 1 (mu_l = -mu_r = 1/2).  Plotted: M_r^x, M_r^y,
M_r^z / N_S.  (The paper's caption names J_sd = 1 and 5, its text and Figs. 7 and 19 the values
2 and 6 used here.)

    mpirun -n 2 python scripts/fig06_dynamics.py [--quick] [--outdir DIR] [--overwrite]

Full: stage 1 and stage 2 3000 time units (hbar/hopping) each; --quick (a pipeline test):
stage 1 80, stage 2 100 (the quick lengths of ``toolkit.presets.valve_stages``, shared by every
script using DIR/valve_runs_quick).  The runs live in DIR/valve_runs (shared with Figs. 7-13 and
19: ``integrators.campaign.quench_sweeps``, resumable); data DIR/fig06.h5, plot DIR/fig06.png.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from analysis.figscript import figure_main  # noqa: E402
from analysis.plots import use_agg  # noqa: E402
from integrators.campaign import quench_sweeps  # noqa: E402
from toolkit.io import write_table  # noqa: E402
from toolkit.presets import valve_stages  # noqa: E402
from toolkit.results import load_result  # noqa: E402

CASES = (2.0, 6.0)
V = 1.0


def runs_dir(args) -> str:
    return os.path.join(args.outdir, "valve_runs" + ("_quick" if args.quick else ""))


def _fl(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Time and free-layer magnetization M_r / N_S of the run file ``path``."""
    r = load_result(path)
    k = r.device.layer("FL")
    return r["time"], r["layer_magnetization", :, k] / r.device.n_spins("FL")


def compute(h5, args, comm):
    stages = valve_stages(args.quick)
    runs = runs_dir(args)
    out = {}
    for J_sd in CASES:
        d = quench_sweeps(runs, J_sd, {"symmetric": np.array([V])}, stage1_time=stages["stage1"],
                          t_end=stages["t_end"]["symmetric"], comm=comm)
        out[J_sd] = (os.path.join(runs, f"J{J_sd:g}_stage1.h5"),
                     os.path.join(d["symmetric"], f"V_{V:+.6g}.h5"))
    if comm.getRank() != 0:
        return
    data, groups = {}, {}
    for J_sd, (s1, s2) in out.items():
        g = f"J_sd={J_sd:g}"
        t1, m1 = _fl(s1)
        t2, m2 = _fl(s2)
        data.update({f"{g}/stage1/time": t1 - t1[-1], f"{g}/stage1/M_r": m1,
                     f"{g}/stage2/time": t2, f"{g}/stage2/M_r": m2})
        groups[g] = {"files": [os.path.abspath(s1), os.path.abspath(s2)]}
    write_table(h5, data, {"V": V, "protocol": "symmetric",
                           "units": "time: hbar/hopping; M: normalized (M_r / N_S)"},
                kind="figure", group_attrs=groups, overwrite=args.overwrite)


def plot(h5, png):
    plt = use_agg()
    r = load_result(h5)
    keys = sorted({n.split("/")[0] for n in r.names if "/" in n},
                  key=lambda k: float(k.split("=")[1]))
    fig, axes = plt.subplots(len(keys), 1, figsize=(9, 3.2 * len(keys)), squeeze=False)
    for ax, key, tag in zip(axes[:, 0], keys, "abcd"):
        t1, m1 = r[f"{key}/stage1/time"], r[f"{key}/stage1/M_r"]
        t2, m2 = r[f"{key}/stage2/time"], r[f"{key}/stage2/M_r"]
        ax.axvspan(t1[0], 0.0, color="gold", alpha=0.25, lw=0)
        for c, col, lab in zip(range(3), ("tab:red", "tab:green", "tab:blue"), "xyz"):
            ax.plot(np.r_[t1, t2], np.r_[m1[:, c], m2[:, c]], color=col,
                    label=f"$M_r^{lab}/N_S$")
        ax.set_xlim(t1[0], t2[-1])
        ax.set_ylabel("$M_r / N_S$")
        ax.set_title(f"({tag}) $J_{{sd}}$ = {key.split('=')[1]}: stage 1 at V = 0 "
                     f"(yellow), symmetric V = {r.attrs['V']:g} from t = 0", loc="left",
                     fontsize=10)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(ncol=3, fontsize=8, loc="center right", framealpha=0.9)
    axes[-1, 0].set_xlabel("t ($\\hbar/\\gamma$)")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    sys.exit(figure_main("fig06", compute, plot, doc=__doc__,
                         quick_help="stage 1 80, stage 2 100 time units (pipeline test)"))
