#!/usr/bin/env python
"""Fig. 2 of paper 004: electronic spectrum of a static 1D valve (N = 20: N_PL = 5, N_NM = 10,
N_FL = 5) versus J_sd, (a) parallel (both layers +z) and (b) perpendicular (PL +x, FL +z),
coloured by <sigma_z> of each eigenstate (red up, blue down); right: detail near E_F = 0.

    python scripts/fig02_spectrum.py [--quick] [--outdir DIR] [--overwrite] [--plot-only]
    mpirun -n 2 python scripts/fig02_spectrum.py       # J_sd points shared over the ranks

Writes DIR/fig02.h5 (groups parallel/, perpendicular/: J_sd, eigenvalues, polarization,
localization) and DIR/fig02.png.  J_sd = 0 ... 10 in steps of 0.025 (--quick: 0.5).
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from analysis.figscript import figure_main  # noqa: E402
from analysis.plots import use_agg  # noqa: E402
from analysis.spectrum import spectrum_vs_jsd  # noqa: E402
from analysis.spectrum_plots import plot_sweep  # noqa: E402
from toolkit.io import save_table  # noqa: E402
from toolkit.presets import valve_device  # noqa: E402
from toolkit.results import load_result  # noqa: E402

N_S, N_NM = 5, 10
DETAIL = (-0.6, 0.6)  # energy window of the right-hand panels [hopping]


def valve():
    """The isolated valve of Sec. III A (PL along x, FL along z, J_ex = -1, K = 0)."""
    return valve_device(N_S=N_S, N_NM=N_NM, J_sd=1.0)


def compute(path: str, args, comm) -> None:
    jsd = np.arange(0, 10 + 1e-9, 0.5 if args.quick else 0.025)
    data, t0 = {}, time.perf_counter()
    for config in ("parallel", "perpendicular"):
        sw = spectrum_vs_jsd(valve(), jsd, config, comm=comm)
        data.update({f"{config}/J_sd": (sw.jsd, "hopping", "s-d coupling of PL and FL"),
                     f"{config}/eigenvalues": (sw.eigenvalues, "hopping", "all eigenvalues"),
                     f"{config}/polarization": (sw.polarization, "", "<sigma_x,y,z> per state"),
                     f"{config}/localization": (sw.localization, "", "P_l^n, layers PL, SL, FL")})
    attrs = {"figure": "paper 004 Fig. 2", "N_S": N_S, "N_NM": N_NM, "layers": "PL, SL, FL",
             "configs": "parallel: PL +z, FL +z; perpendicular: PL +x, FL +z",
             "wall_time": time.perf_counter() - t0}
    save_table(path, data, attrs, kind="figure", comm=comm, overwrite=args.overwrite)


def plot(path: str, png: str) -> None:
    from types import SimpleNamespace

    plt = use_agg()
    fig, axes = plt.subplots(2, 2, figsize=(10, 8), gridspec_kw={"width_ratios": [1.2, 1]},
                             layout="constrained")
    r = load_result(path)
    for row, config in enumerate(("parallel", "perpendicular")):
        sw = SimpleNamespace(jsd=r[f"{config}/J_sd"], eigenvalues=r[f"{config}/eigenvalues"],
                             polarization=r[f"{config}/polarization"])
        sc = plot_sweep(axes[row, 0], sw, size=2.5)
        plot_sweep(axes[row, 1], sw, ylim=DETAIL, size=5)
        axes[row, 1].axhline(0, color="0.6", lw=0.6, ls=":")
        label = "ab"[row]
        axes[row, 0].set_title(f"({label}1) {config}: " + (
            r"$M_l^z = M_r^z = 1$" if row == 0 else r"$M_l^x = M_r^z = 1$"), fontsize=10)
        axes[row, 1].set_title(f"({label}2) detail near $E_F = 0$", fontsize=10)
    fig.colorbar(sc, ax=axes, label=r"$\langle\sigma_z\rangle$ of the eigenstate", shrink=0.5)
    fig.suptitle(r"1D valve $N = 20$ ($N_{PL} = N_{FL} = 5$, $N_{NM} = 10$): spectrum vs $J_{sd}$")
    fig.savefig(png, dpi=130)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(figure_main("fig02", compute, plot, doc=__doc__,
                         quick_help="coarse J_sd grid (smoke test)"))
