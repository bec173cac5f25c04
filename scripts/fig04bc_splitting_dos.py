#!/usr/bin/env python
"""Fig. 4(b,c) of paper 004: (b) magnetic splitting Delta-epsilon between the two highest
occupied levels at half filling versus J_sd for N_S = 1, 5, 10; (c) broadened DOS per site near
E_F versus J_sd for N_S = 5 with the two highest occupied levels dashed.

1D chains PL (N_S) | spacer (N_NM = 10) | FL (N_S), J_ex = -1, K = 0.  N_NM = 10 follows the text
of Sec. III A 3 (the caption of Fig. 4 says 12).  Spins: the initial state of the dynamics,
PL along +x and FL along +z ('perpendicular'); the parallel configuration (both +z) is stored
and drawn thin in (b) for comparison.  DOS: Lorentzian, half width 0.02, per site.

    python scripts/fig04bc_splitting_dos.py [--quick] [--outdir DIR] [--overwrite] [--plot-only]

Writes DIR/fig04bc.h5 and DIR/fig04bc.png.  J_sd = 0 ... 8 in steps of 0.01 (--quick: 0.25).
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from analysis.figscript import figure_main  # noqa: E402
from analysis.levels import dos, splitting  # noqa: E402
from analysis.plots import use_agg  # noqa: E402
from analysis.spectrum import spectrum_vs_jsd  # noqa: E402
from toolkit.io import save_table  # noqa: E402
from toolkit.presets import valve_device  # noqa: E402
from toolkit.results import load_result  # noqa: E402

N_NM, SIZES = 10, (1, 5, 10)
ETA, WINDOW = 0.02, (-1.0, 1.0)  # DOS broadening and energy window [hopping]


def valve(N_S: int):
    """The isolated valve of Sec. III A (PL along x, FL along z, J_ex = -1, K = 0)."""
    return valve_device(N_S=N_S, N_NM=N_NM, J_sd=1.0)


def compute(path: str, args, comm) -> None:
    jsd = np.arange(0, 8 + 1e-9, 0.25 if args.quick else 0.01)
    E = np.linspace(*WINDOW, 601)
    data, t0 = {"J_sd": (jsd, "hopping", "s-d coupling of PL and FL")}, time.perf_counter()
    for N_S in SIZES:
        dev = valve(N_S)
        for config in ("perpendicular", "parallel"):
            sw = spectrum_vs_jsd(dev, jsd, config, comm=comm)
            w = sw.eigenvalues
            g = f"N_S={N_S}/{config}"
            data[f"{g}/splitting"] = (splitting(w, dev.n_sites), "hopping",
                                      "eps_{n-1} - eps_{n-2}, n = n_sites (half filling)")
            data[f"{g}/homo"] = (w[:, dev.n_sites - 2:dev.n_sites], "hopping",
                                 "the two highest occupied levels")
            if N_S == 5:
                data[f"{g}/eigenvalues"] = (w, "hopping", "all eigenvalues")
                data[f"{g}/dos"] = (dos(w, E, ETA), "1/(hopping site)", "Lorentzian DOS/site")
    data["energy"] = (E, "hopping", "energy grid of the DOS")
    attrs = {"figure": "paper 004 Fig. 4(b,c)", "N_NM": N_NM, "N_S": list(SIZES),
             "J_ex": -1.0, "K": 0.0, "filling": "half (n_sites electrons)",
             "dos_broadening": ETA, "dos_shape": "lorentzian",
             "note": "N_NM = 10 as in the text of Sec. III A 3 (Fig. 4 caption: 12)",
             "wall_time": time.perf_counter() - t0}
    save_table(path, data, attrs, kind="figure", comm=comm, overwrite=args.overwrite)


def plot(path: str, png: str) -> None:
    plt = use_agg()
    from matplotlib.colors import LogNorm

    fig, (ax_b, ax_c) = plt.subplots(2, 1, figsize=(7.5, 8.5), sharex=True, layout="constrained")
    colors = {1: "tab:red", 5: "k", 10: "tab:blue"}
    r = load_result(path)
    J = r["J_sd"]
    for N_S in SIZES:
        g = f"N_S={N_S}"
        ax_b.plot(J, r[f"{g}/perpendicular/splitting"], color=colors[N_S], lw=1.3,
                  label=f"$N_S$ = {N_S}")
        ax_b.plot(J, r[f"{g}/parallel/splitting"], color=colors[N_S], lw=0.6, ls=":")
    ax_b.plot([], [], color="0.4", lw=0.6, ls=":", label="parallel (both +z)")
    g = "N_S=5/perpendicular"
    E, D, homo = r["energy"], r[f"{g}/dos"], r[f"{g}/homo"]
    ax_b.set_ylabel(r"$\Delta\varepsilon$ (two highest occupied levels)")
    ax_b.set_title(r"(b) $N_{NM} = 10$, half filling, PL $\parallel x$, FL $\parallel z$",
                   fontsize=10)
    ax_b.legend(fontsize=8)
    ax_b.set_ylim(bottom=0)
    edges = [np.append(x - (x[1] - x[0]) / 2, x[-1] + (x[1] - x[0]) / 2) for x in (J, E)]
    mesh = ax_c.pcolormesh(*edges, D.T, shading="flat", cmap="magma", rasterized=True,
                           norm=LogNorm(vmin=1e-2, vmax=D.max()))
    for k in range(2):
        ax_c.plot(J, homo[:, k], "--", color="cyan", lw=0.8,
                  label="two highest occupied levels" if k else None)
    ax_c.set_ylim(E[0], E[-1])
    ax_c.set_xlabel(r"$J_{sd}$")
    ax_c.set_ylabel(r"$\varepsilon$")
    ax_c.set_title(r"(c) DOS per site, $N_S = 5$ (Lorentzian, $\eta = 0.02$)", fontsize=10)
    ax_c.legend(loc="upper right", fontsize=8)
    fig.colorbar(mesh, ax=ax_c, label="DOS [1/(hopping site)]")
    fig.savefig(png, dpi=130)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(figure_main("fig04bc", compute, plot, doc=__doc__,
                         quick_help="coarse J_sd grid (smoke test)"))
