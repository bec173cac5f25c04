#!/usr/bin/env python
"""Fig. 5 of paper 004, plus a weak-coupling RKKY check.

(a, b) J_eff and |J_eff| vs spacer length N_NM for J_sd = 1 and 5 (1D valve, N_S = 5,
J_ex = -1, K = 0) with the RKKY shape J_sd^2 [Si(pi N_NM) - pi/2] (one prefactor, fitted to the
even-N_NM J_sd = 1 points).  (c) Delayed response across a long spacer: N_NM = 400 (410 sites,
N_s = 820), J_sd = 3.3, B = (0, 0, 1); M_l^x, M_l^z and M_r^x vs t.  (d) Not in the paper:
N_S = 1, J_sd = 0.5 against the RKKY shape with prefactor 1 (no fit; its normalisation).

    mpirun -n 2 python scripts/fig05_jeff_vs_spacer.py [--panels ab,c,d] [--quick]
                                 [--n-spins 5] [--outdir DIR] [--overwrite] [--plot-only]

(a, b, d): N_NM = 2:30:1 (1.5 periods per run, cap t = 20000); points distributed over the MPI
ranks (snake order) -> DIR/fig05.h5, one table per group "J_sd=1", "J_sd=5", "weak".  (c): one
run on all ranks, dt = 0.1, t_end = 500, sampled every t = 1 -> DIR/fig05c.h5 (a standard qcspin
result file, restartable).  --quick (a pipeline test): N_NM = 2:5:1 (1 period, cap t = 1000,
so the longest J_sd = 1 periods are cut short) and panel (c) up to t = 5 only (long before the
signal crosses the spacer).  Plot: DIR/fig05.png.  Sign convention H_MS = -J_eff M_l.M_r
(J_eff > 0 ferromagnetic).
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from analysis.figscript import figure_main  # noqa: E402
from analysis.jeff import jeff_sweep, read_sweep, write_sweep  # noqa: E402
from analysis.macrospin import fit_rkky_prefactor, rkky_reference  # noqa: E402
from analysis.plots import use_agg  # noqa: E402
from toolkit.parallel import snake  # noqa: E402
from toolkit.presets import valve_device  # noqa: E402
from toolkit.results import load_result  # noqa: E402

COLORS = {"J_sd=1": "tab:red", "J_sd=5": "tab:blue", "weak": "tab:green"}
PANEL_C = dict(N_S=5, N_NM=400, J_sd=3.3, B=(0.0, 0.0, 1.0), dt=0.1)
QUICK = dict(last_spacer=5, t_cap=1.0e3, t_end_c=5.0)  # --quick: N_NM = 2..5, short (c)


def sweeps(panels: set[str], n_spins: int) -> dict[str, dict]:
    out = {}
    if "ab" in panels:
        out["J_sd=1"] = dict(N_S=n_spins, J_sd=1.0)
        out["J_sd=5"] = dict(N_S=n_spins, J_sd=5.0)
    if "d" in panels:
        out["weak"] = dict(N_S=1, J_sd=0.5)
    return out


def spacers(quick: bool) -> list[int]:
    return list(range(2, QUICK["last_spacer"] + 1 if quick else 31))


def existing(path: str, args) -> list[str]:
    """Sweep groups of ``path`` and the panel (c) file that this run would replace."""
    panels, have = set(args.panels.split(",")), set()
    if os.path.exists(path):
        have = set(load_result(path).tables)
    h5c = os.path.join(args.outdir, "fig05c.h5")
    return ([f"{path}:{g}" for g in sorted(have & set(sweeps(panels, args.n_spins)))]
            + ([h5c] if "c" in panels and os.path.exists(h5c) else []))


def compute(path: str, args, comm) -> None:
    panels, rank0 = set(args.panels.split(",")), comm.getRank() == 0
    groups = sweeps(panels, args.n_spins)
    if groups:
        t0 = time.perf_counter()
        if rank0:
            print(f"fig05: sweeps {list(groups)} over N_NM = {spacers(args.quick)[0]}.."
                  f"{spacers(args.quick)[-1]}, {comm.getSize()} rank(s) -> {path}", flush=True)
        compute_sweeps(path, groups, args.quick, args.overwrite, comm)
        if rank0:
            print(f"fig05: sweeps computed in {time.perf_counter() - t0:.0f} s", flush=True)
    if "c" in panels:
        h5c = os.path.join(args.outdir, "fig05c.h5")
        t0 = time.perf_counter()
        if rank0:
            print(f"fig05c: {PANEL_C}, {comm.getSize()} rank(s) -> {h5c}", flush=True)
        compute_c(h5c, args.quick, args.overwrite, comm)
        if rank0:
            print(f"fig05c: computed in {time.perf_counter() - t0:.0f} s", flush=True)


def compute_sweeps(path: str, groups: dict[str, dict], quick: bool, overwrite: bool, comm) -> None:
    values = spacers(quick)
    kw = dict(J_ex=-1.0, dt=0.1, n_periods=1.0 if quick else 1.5,
              t_cap=QUICK["t_cap"] if quick else 2.0e4)
    for name, fixed in groups.items():
        t0 = time.perf_counter()

        def report(i, p, name=name):
            print(f"  {name:6s} N_NM = {values[i]:3d}: J_eff = {p.J_eff: .4e} "
                  f"rms = {p.fit.rms:.1e} t_end = {p.t_end:7.0f} {p.wall_time:5.0f} s "
                  f"(rank {comm.getRank()})", flush=True)

        s = jeff_sweep("N_NM", values, comm=comm, report=report, distribute=snake, **fixed, **kw)
        if comm.getRank() == 0:
            write_sweep(s, path, group=name, overwrite=overwrite)
            print(f"fig05: {name} done in {time.perf_counter() - t0:.0f} s", flush=True)


def compute_c(path: str, quick: bool, overwrite: bool, comm) -> None:
    from integrators.simulation import Simulation
    from toolkit.config import with_changes

    p = PANEL_C
    dev = valve_device(N_S=p["N_S"], N_NM=p["N_NM"], J_sd=p["J_sd"], B=p["B"], dt=p["dt"])
    every = int(round(1.0 / p["dt"]))
    cfg = with_changes(dev.config, name="paper 004 Fig. 5(c): N_NM = 400, J_sd = 3.3, B_z = 1",
                       time={"output_every": every, "checkpoint_every": 50 * every})
    sim = Simulation(cfg, comm)
    try:
        summary = sim.run(path, t_end=QUICK["t_end_c"] if quick else 500.0, overwrite=overwrite,
                          progress=comm.getRank() == 0, handle_signals=False)
    finally:
        sim.destroy()
    if comm.getRank() == 0:
        print(f"fig05c: {summary['steps']} steps in {summary['wall_time']:.0f} s", flush=True)


# ----------------------------------------------------------------------------- plotting
def plot(ab: str, png: str) -> None:
    plt = use_agg()
    c = os.path.join(os.path.dirname(ab), "fig05c.h5")
    tabs = {}
    if os.path.exists(ab):
        tabs = {g: read_sweep(ab, g) for g in load_result(ab).tables}
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    (a, b), (cc, d) = axes
    main = {k: v for k, v in tabs.items() if k.startswith("J_sd=")}
    if main:
        _plot_ab(main, a, b)
    if "weak" in tabs:
        _plot_d(tabs["weak"], d)
    if os.path.exists(c):
        _plot_c(c, cc)
    for ax, ok in ((a, main), (b, main), (cc, os.path.exists(c)), (d, "weak" in tabs)):
        if not ok:
            ax.text(0.5, 0.5, "not computed", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


def _plot_ab(tabs: dict, a, b) -> None:
    ref = tabs.get("J_sd=1") or next(iter(tabs.values()))
    J0 = float(ref["attrs"]["J_sd"])
    ok0 = ref["valid"].astype(bool) & (ref["value"] % 2 == 0)
    A = fit_rkky_prefactor(ref["value"][ok0], ref["J_eff"][ok0], J0)
    nn = np.arange(1, max(t["value"].max() for t in tabs.values()) + 1)
    for name, tab in sorted(tabs.items()):
        J = float(tab["attrs"]["J_sd"])
        x, y, ok = tab["value"], tab["J_eff"], tab["valid"].astype(bool)
        col = COLORS.get(name, "k")
        a.plot(x, y, "-", color=col, lw=0.8)
        a.plot(x[ok], y[ok], "o", color=col, ms=4, label=f"$J_{{sd}}$ = {J:g}")
        _parity_loglog(b, x, y, ok, col, f"$J_{{sd}}$ = {J:g}")
        if (~ok).any():
            a.plot(x[~ok], y[~ok], "x", color=col, ms=7)
        r = rkky_reference(nn, J, A)
        a.plot(nn, r, ":", color=col, lw=1.0)
        b.loglog(nn[1:], np.abs(r[1:]), ":", color=col, lw=1.0)
    a.plot([], [], "k:", label=f"RKKY x {A:.3g} (fit: even $N_{{NM}}$, $J_{{sd}}$ = {J0:g})")
    a.plot([], [], "kx", label="invalid fit")
    a.axhline(0, color="0.6", lw=0.5)
    a.set_yscale("symlog", linthresh=1e-4)
    a.set_xlabel("$N_{NM}$")
    a.set_ylabel(r"$J_{eff}$ [$\gamma$]  (>0: ferro)")
    a.set_title(f"(a) $N_S$ = {ref['attrs']['N_S']}", fontsize=9)
    a.legend(fontsize=7, loc="lower right")
    b.set_xlabel("$N_{NM}$")
    b.set_ylabel(r"$|J_{eff}|$ [$\gamma$]")
    b.set_title("(b) log-log; dotted: RKKY with the prefactor of (a)", fontsize=9)
    b.legend(fontsize=7)


def _parity_loglog(ax, x, y, ok, col, label) -> None:
    ev, od = ok & (x % 2 == 0), ok & (x % 2 == 1)
    ax.loglog(x[ev], np.abs(y[ev]), "o-", color=col, ms=4, lw=0.8, label=f"{label}, even")
    ax.loglog(x[od], np.abs(y[od]), "s--", color=col, ms=4, mfc="none", lw=0.8,
              label=f"{label}, odd")
    if (~ok).any():
        ax.loglog(x[~ok], np.abs(y[~ok]), "x", color=col, ms=7)


def _plot_d(tab: dict, ax) -> None:
    J, N_S = float(tab["attrs"]["J_sd"]), int(tab["attrs"]["N_S"])
    x, y, ok = tab["value"], tab["J_eff"], tab["valid"].astype(bool)
    _parity_loglog(ax, x, y, ok, COLORS["weak"], f"$N_S$ = {N_S}, $J_{{sd}}$ = {J:g}")
    nn = np.arange(2, x.max() + 1)
    ax.loglog(nn, np.abs(rkky_reference(nn, J)), "k:", lw=1.0,
              label=r"RKKY $J_{sd}^2[\mathrm{Si}(\pi N_{NM})-\pi/2]$, prefactor 1")
    ev = ok & (x % 2 == 0)
    ratio = y[ev] / rkky_reference(x[ev], J)
    ax.set_title(f"(d) weak coupling, even $N_{{NM}}$: $J_{{eff}}$/RKKY = "
                 f"{ratio.min():.2f}..{ratio.max():.2f}; odd: first order in $J_{{sd}}$",
                 fontsize=9)
    ax.set_xlabel("$N_{NM}$")
    ax.set_ylabel(r"$|J_{eff}|$ [$\gamma$]")
    ax.legend(fontsize=7)


def _plot_c(path: str, ax) -> None:
    r = load_result(path)
    t, M, dev = r["time"], r["layer_magnetization"], r.device
    (il, nl), (ir, nr) = ((dev.layer(k), dev.n_spins(k)) for k in ("PL", "FL"))
    ax.plot(t, M[:, il, 0] / nl, color="tab:red", lw=0.8, label="$M_l^x/N_S$")
    ax.plot(t, M[:, il, 2] / nl, color="tab:orange", lw=0.8, label="$M_l^z/N_S$")
    ax.plot(t, M[:, ir, 0] / nr, color="tab:blue", lw=0.8, label="$M_r^x/N_S$")
    ax.axvline(PANEL_C["N_NM"] / 2, color="0.5", ls=":", lw=0.8, label=r"$t = N_{NM}/2\gamma$")
    ax.set_xlabel(r"$t$ [$\hbar/\gamma$]")
    ax.set_title(r"(c) $N_{NM}$ = 400, $J_{sd}$ = 3.3, $B_z$ = 1", fontsize=9)
    ax.legend(fontsize=7, loc="lower right", ncol=2)


if __name__ == "__main__":
    sys.exit(figure_main(
        "fig05", compute, plot, doc=__doc__, clashes=existing,
        quick_help="N_NM = 2..5, panel (c) to t = 5 (pipeline test)",
        extra_args={"--panels": dict(default="ab,c,d", help="any of ab, c, d (default ab,c,d)"),
                    "--n-spins": dict(type=int, default=5, help="N_S of panels a, b (5; the "
                                      "paper does not state it, its Fig. 3/4 valve has 5)")}))
