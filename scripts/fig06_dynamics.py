#!/usr/bin/env python
"""Fig. 6 of paper 004: free-layer magnetization through the three-stage protocol.

2D valve of Sec. III B (12 x 4, N_S = 4 x 4, Gamma = 1, T = 0.025, J_ex = -1, K_l = 0.4 x,
K_r = 0.02 z, N_p = 30) at J_sd = 2 (a) and J_sd = 6 (b).  Stage 0: spins along their easy
axes, electrons stationary at V = 0.  Stage 1 (yellow, t < 0): spins released, relaxing at
V = 0.  Stage 2 (t >= 0): symmetric quench to V = 1 (mu_l = -mu_r = 1/2).  Plotted: M_r^x, M_r^y,
M_r^z / N_S.  (The paper's caption names J_sd = 1 and 5, its text and Figs. 7 and 19 the values
2 and 6 used here.)

    mpirun -n 2 python scripts/fig06_dynamics.py [--quick] [--outdir DIR] [--overwrite]

Full: stage 1 and stage 2 3000 time units (hbar/hopping) each; --quick: 300 and 300.  The runs
live in DIR/valve_runs (shared with Figs. 7-14: ``integrators.campaign.quench_sweeps``, resumable);
data DIR/fig06.h5, plot DIR/fig06.png.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import h5py  # noqa: E402
import numpy as np  # noqa: E402

from analysis.figscript import figure_main  # noqa: E402
from analysis.plots import use_agg  # noqa: E402
from integrators.campaign import quench_sweeps  # noqa: E402
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
    T = 300.0 if args.quick else 3000.0
    runs = runs_dir(args)
    out = {}
    for J_sd in CASES:
        d = quench_sweeps(runs, J_sd, {"symmetric": np.array([V])}, stage1_time=T, t_end=T,
                          comm=comm)
        out[J_sd] = (os.path.join(runs, f"J{J_sd:g}_stage1.h5"),
                     os.path.join(d["symmetric"], f"V_{V:+.6g}.h5"))
    if comm.getRank() != 0:
        return
    with h5py.File(h5, "w") as g:
        g.attrs["V"] = V
        g.attrs["protocol"] = "symmetric"
        g.attrs["units"] = "time: hbar/hopping; M: normalized (M_r / N_S)"
        for J_sd, (s1, s2) in out.items():
            grp = g.create_group(f"J_sd={J_sd:g}")
            t1, m1 = _fl(s1)
            t2, m2 = _fl(s2)
            grp["stage1/time"] = t1 - t1[-1]
            grp["stage1/M_r"] = m1
            grp["stage2/time"] = t2
            grp["stage2/M_r"] = m2
            grp.attrs["files"] = [os.path.abspath(s1), os.path.abspath(s2)]


def plot(h5, png):
    plt = use_agg()
    with h5py.File(h5, "r") as f:
        keys = sorted(f, key=lambda k: float(k.split("=")[1]))
        fig, axes = plt.subplots(len(keys), 1, figsize=(9, 3.2 * len(keys)), squeeze=False)
        for ax, key, tag in zip(axes[:, 0], keys, "abcd"):
            g = f[key]
            t1, m1 = g["stage1/time"][:], g["stage1/M_r"][:]
            t2, m2 = g["stage2/time"][:], g["stage2/M_r"][:]
            ax.axvspan(t1[0], 0.0, color="gold", alpha=0.25, lw=0)
            for c, col, lab in zip(range(3), ("tab:red", "tab:green", "tab:blue"), "xyz"):
                ax.plot(np.r_[t1, t2], np.r_[m1[:, c], m2[:, c]], color=col,
                        label=f"$M_r^{lab}/N_S$")
            ax.set_xlim(t1[0], t2[-1])
            ax.set_ylabel("$M_r / N_S$")
            ax.set_title(f"({tag}) $J_{{sd}}$ = {key.split('=')[1]}: stage 1 at V = 0 "
                         f"(yellow), symmetric V = {f.attrs['V']:g} from t = 0", loc="left",
                         fontsize=10)
            ax.grid(alpha=0.3)
        axes[0, 0].legend(ncol=3, fontsize=8, loc="center right", framealpha=0.9)
        axes[-1, 0].set_xlabel("t ($\\hbar/\\gamma$)")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    sys.exit(figure_main("fig06", compute, plot, doc=__doc__,
                         quick_help="stages of 300 time units"))
