#!/usr/bin/env python
"""Fig. 4(a) of paper 004: J_eff N_S^2 vs J_sd for N_S = 1, 5, 10 (1D valve, N_NM = 10,
J_ex = -1, K = 0), from macrospin fits of full QC-EOM runs.

    mpirun -n 2 python scripts/fig04a_jeff_vs_jsd.py [--quick] [--outdir DIR] [--overwrite]
                                                    [--plot-only] [--n-nm 10]

Full grid J_sd = 0.25:6:0.25 (1.5 periods per run, cap t = 20000); --quick (a pipeline test):
J_sd = 4, 4.5 (short periods; 1 period per run, cap t = 1000).  The points of each N_S are
distributed over the MPI ranks (toolkit.parallel.snake).
Writes DIR/fig04a.h5 (one table per N_S, groups "N_S=<n>") and DIR/fig04a.png.  Thin lines: the
static (adiabatic) estimate (E_AP - E_P)/2 of analysis.jeff.jeff_static; open symbols: fits flagged
invalid; grey band: N_S = 5 fits with rms residual > 0.02 (the paper's "high fitting
uncertainty").  Sign convention H_MS = -J_eff M_l.M_r (J_eff > 0 ferromagnetic).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from contextlib import nullcontext

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from analysis.figscript import figure_main  # noqa: E402
from analysis.jeff import jeff_static, jeff_sweep, read_sweep, write_sweep  # noqa: E402
from analysis.plots import use_agg  # noqa: E402
from toolkit.io import write_table  # noqa: E402
from toolkit.parallel import barrier, snake  # noqa: E402
from toolkit.results import load_result, read_table  # noqa: E402

N_SPINS = (1, 5, 10)
STYLE = {1: dict(color="tab:red", ls="--", marker=""), 5: dict(color="k", ls="-", marker="o"),
         10: dict(color="tab:blue", ls="-", marker="o", mfc="none")}
RMS_SHADE = 0.02
QUICK_GRID = (4.0, 4.5)  # J_eff N_S^2 ~ -0.05: one period takes 100-900 time units
QUICK_T_CAP = 1.0e3


def grid(quick: bool) -> np.ndarray:
    return np.array(QUICK_GRID) if quick else np.round(np.arange(0.25, 6.0001, 0.25), 10)


def compute(path: str, args, comm) -> None:
    values, n_nm = grid(args.quick), args.n_nm
    kw = dict(N_NM=n_nm, J_ex=-1.0, dt=0.1, n_periods=1.0 if args.quick else 1.5,
              t_cap=QUICK_T_CAP if args.quick else 2.0e4)
    rank0 = comm.getRank() == 0
    if rank0:
        print(f"fig04a: N_S = {N_SPINS}, {len(values)} J_sd values, "
              f"{comm.getSize()} rank(s) -> {path}", flush=True)
    data: dict = {}
    tables: dict[str, dict] = {}
    with (tempfile.TemporaryDirectory(prefix=".fig04a-", dir=args.outdir) if rank0
          else nullcontext()) as tmp:
        for N_S in N_SPINS:
            t0 = time.perf_counter()

            def report(i, p, N_S=N_S):
                print(f"  N_S = {N_S:2d} J_sd = {values[i]:5.2f}: J_eff N_S^2 = "
                      f"{p.J_eff * N_S ** 2: .4e} rms = {p.fit.rms:.1e} t_end = "
                      f"{p.t_end:7.0f} {p.wall_time:5.0f} s (rank {comm.getRank()})", flush=True)

            s = jeff_sweep("J_sd", values, comm=comm, N_S=N_S, report=report, distribute=snake,
                           **kw)
            if rank0:
                # the J_eff table as analysis.jeff writes it, one group per N_S of the figure file
                g = f"N_S={N_S}"
                part = os.path.join(tmp, f"{g}.h5")
                write_sweep(s, part)
                table, tables[g] = read_table(part)
                data.update({f"{g}/{k}": v for k, v in table.items()})
                data[f"{g}/J_static"] = (np.array([jeff_static(J_sd=v, N_NM=n_nm, N_S=N_S)
                                                   for v in values]), "hopping",
                                         "(E_AP - E_P)/(2 N_S^2), static ground state")
                print(f"fig04a: N_S = {N_S} done in {time.perf_counter() - t0:.0f} s",
                      flush=True)
    if rank0:
        write_table(path, data, {"figure": "paper 004 Fig. 4(a)"}, kind="figure",
                    group_attrs=tables, scale=[f"{g}/value" for g in tables], scale_name="J_sd",
                    overwrite=args.overwrite)
    barrier(comm)


def plot(path: str, png: str) -> None:
    plt = use_agg()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    r = load_result(path)
    groups = sorted(r.tables, key=lambda k: int(k.split("=")[1]))
    static = {g: r[f"{g}/J_static"] for g in groups}
    for g in groups:
        N_S = int(g.split("=")[1])
        tab = read_sweep(path, g)
        x, y, ok = tab["value"], tab["J_eff_NS2"], tab["valid"].astype(bool)
        st = STYLE.get(N_S, dict(color="C3", ls="-", marker="s"))
        ax.plot(x, y, ls=st["ls"], color=st["color"], lw=1.0, label=f"$N_S$ = {N_S}")
        if st["marker"]:
            ax.plot(x[ok], y[ok], st["marker"], color=st["color"], ms=4,
                    mfc=st.get("mfc", st["color"]))
        if (~ok).any():
            ax.plot(x[~ok], y[~ok], "x", color=st["color"], ms=6)
        ax.plot(x, static[g] * N_S ** 2, ":", color=st["color"], lw=0.8)
        if N_S == 5:
            bad = tab["rms"] > RMS_SHADE
            for xv in x[bad]:
                ax.axvspan(xv - 0.125, xv + 0.125, color="0.85", lw=0, zorder=0)
    ax.plot([], [], ":", color="0.4", label="static estimate")
    ax.plot([], [], "x", color="0.4", label="invalid fit")
    ax.axhline(0, color="0.6", lw=0.5)
    ax.set_xlabel(r"$J_{sd}$ [$\gamma$]")
    ax.set_ylabel(r"$J_{eff}\,N_S^2$ [$\gamma$]   (< 0: antiferromagnetic)")
    ax.set_title(f"$N_{{NM}}$ = {read_sweep(path, groups[0])['attrs']['N_NM']}, "
                 r"$J_{ex}=-1$; grey: $N_S=5$ fits with rms > " + f"{RMS_SHADE}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(figure_main("fig04a", compute, plot, doc=__doc__,
                         quick_help="J_sd = 4, 4.5, one period per run (pipeline test)",
                         extra_args={"--n-nm": dict(type=int, default=10,
                                                    help="spacer sites (10, as in the text)")}))
