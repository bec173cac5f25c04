#!/usr/bin/env python
"""Fig. 2 of paper 000: the last analyzer moment M_3,FM(t) and the switching phase diagram.

(a) FM/NM/AFI/FM junction, J_sd != 0 in the analyzer: the paper's 0.55 V / 1.0 ps pulse
(``afi_paper``, solid) and 2.0 V / 2.0 ps (``afi_strong``, dashed: the largest torque found;
no square pulse found switches the AFI junction, see scripts/fig000_runs.py); (b) FM/NM/FM spin
valve: the paper's 0.25 V / 0.6 ps pulse (``valve_paper``, solid) and 1.0 V / 1.3 ps
(``valve_switch``, dashed), which switches; (c) AFI junction with J_sd = 0 in the analyzer
(``afi_nosd``: no ESTT on it, MSTT only); (d) the (V_D, V_H) diagram of square pulses that
switch the analyzer (green stars) or not (red squares; hollow: undecided, the run ended inside
the dwell) by ``integrators.switching`` (mean M_z <= -0.9 for 500 fs), computed with
``integrators.campaign.pulse_sweep`` on the **spin valve**: the paper's diagram is for the AFI
junction, but an AFI run of a few ps takes ~15 min here, so a grid of them is out of reach
for a figure script (the AFI runs of panels a and c are the AFI points, marked in the
diagram's legend).  Shaded: the pulse window of the solid curve (t = 0: the pulse onset).

    [mpirun -n 2] python scripts/fig000_2_switching.py [--quick] [--outdir DIR] [--overwrite]

Runs: ``scripts/fig000_runs.py`` (cache DIR/paper000_runs[_quick]); the sweep's runs in
DIR/paper000_runs[_quick]/valve_sweep (shared round robin over the MPI ranks, one rank per
run; finished ones are reused).  Full sweep: V_H = 0.25..1.25 V x V_D = 0.3..1.8 ps (25 runs,
each to V_D + 1.5 ps); --quick (pipeline test): 2 x 2 pulses of 20/30 fs, 8 lead sites.
Data DIR/fig000_2.h5, plot DIR/fig000_2.png.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import fig000_runs as R  # noqa: E402
import numpy as np  # noqa: E402

from analysis.figscript import figure_main  # noqa: E402
from integrators.campaign import pulse_sweep  # noqa: E402
from toolkit import log  # noqa: E402
from toolkit.io import write_table  # noqa: E402
from toolkit.results import load_result  # noqa: E402

PANELS = (("a", "afi_paper", "afi_strong", "AFI junction, $J_{sd}\\neq 0$ in FM"),
          ("b", "valve_paper", "valve_switch", "spin valve FM/NM/FM"),
          ("c", "afi_nosd", None, "AFI junction, $J_{sd}=0$ in FM (MSTT only)"))
SWEEP = {False: dict(V_H=[0.25, 0.5, 0.75, 1.0, 1.25], V_D=[300.0, 600.0, 1000.0, 1400.0,
                                                             1800.0], t_after=1500.0),
         True: dict(V_H=[0.5, 1.0], V_D=[20.0, 30.0], t_after=30.0)}
_log = log.get_logger("fig000_2")


def compute(h5, args, comm):
    names = [n for _, a, b, _ in PANELS for n in (a, b) if n]
    files = R.ensure_runs(names, args.quick, args.outdir, comm)
    sw = SWEEP[args.quick]
    sweep_dir = os.path.join(R.runs_dir(args.outdir, args.quick), "valve_sweep")

    def progress(vh, vd, ts, mz, wall):
        _log.info(f"sweep V_H = {vh:g} V, V_D = {vd:g} fs: "
                  f"{'switched at %.0f fs' % ts if ts is not None else 'no switch'}, "
                  f"final M_z = {mz:+.2f} ({wall:.0f} s)", extra={"label": ""})

    res = pulse_sweep(R.example_config("valve", args.quick), sw["V_H"], sw["V_D"],
                      outdir=sweep_dir, layer="F", t0=0.0, t_after=sw["t_after"],
                      criterion=R.CRITERION_QUICK if args.quick else R.CRITERION,
                      group_size=1, resume=True, comm=comm, progress=progress)
    if comm.getRank() != 0:
        return
    data, groups = {}, {}
    for n, path in files.items():
        r = load_result(path)
        F = R.layer_index(r, "F")
        M = r["spins"][:, F, :]
        ts, decided = R.switching(r, args.quick)
        t_on, t_off = R.pulse_window(r)
        data[f"{n}/time"] = (r["time"], "fs", "time from the pulse onset")
        data[f"{n}/M3"] = (M[:, -1, :], None, "last analyzer moment M_3,FM (x, y, z)")
        data[f"{n}/M_F"] = (M, None, "all analyzer moments")
        groups[n] = {"V_H": R.RUNS[n].V, "t_on_fs": t_on, "t_off_fs": t_off,
                     "t_switch_fs": np.nan if ts is None else ts, "decided": decided,
                     "max_tilt_M3_deg": float(R.tilt_deg(M[:, -1]).max()),
                     "tilt_M3_at_pulse_end_deg": float(R.tilt_deg(
                         M[np.argmin(abs(r["time"] - t_off)), -1])),
                     "min_mean_Mz": float(M[:, :, 2].mean(axis=1).min()),
                     "file": os.path.abspath(path), "wall_s": R.wall_seconds(r)}
    data.update({"sweep/V_H": (res.V_H, "V", "pulse heights"),
                 "sweep/V_D": (res.V_D, "fs", "pulse durations"),
                 "sweep/switched": (res.switched, None, "the analyzer switched"),
                 "sweep/decided": (res.decided, None, "False: ended inside the dwell"),
                 "sweep/t_switch": (res.t_switch, "fs", "switching time (NaN: none)"),
                 "sweep/final_mz": (res.final_mz, None, "mean M_z of the analyzer at the end")})
    groups["sweep"] = {"device": "spin valve (examples/valve_000.toml)",
                       "t_after_fs": sw["t_after"], "dir": os.path.abspath(sweep_dir)}
    write_table(h5, data, {"note": R.note(args.quick) + " Panel (d) is the spin valve's "
                           "diagram (pulse_sweep), not the AFI junction's as in the paper: "
                           "an AFI run of a few ps takes ~15 min here; the AFI pulses run "
                           "are listed in groups afi_*.",
                           "criterion": "mean M_z of F <= -0.9 for 500 fs"},
                kind="figure", group_attrs=groups, overwrite=args.overwrite)


def plot(h5, png):
    from analysis.plots import use_agg

    plt = use_agg()
    r = load_result(h5)
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    cols = ("tab:red", "tab:green", "tab:blue")
    for ax, (tag, main, alt, title) in zip(axes.ravel(), PANELS):
        g = r.group_attrs(main)
        ax.axvspan(g["t_on_fs"] * 1e-3, g["t_off_fs"] * 1e-3, color="0.85", lw=0, zorder=0)
        lines = []
        for n, ls in ((main, "-"), (alt, "--")):
            if not n or f"{n}/time" not in r.names:
                continue
            gn = r.group_attrs(n)
            t, M = r[f"{n}/time"] * 1e-3, r[f"{n}/M3"]
            for c in range(3):
                ax.plot(t, M[:, c], ls, color=cols[c], lw=1.3 if ls == "-" else 1.0,
                        label=f"$M^{'xyz'[c]}_{{3}}$" if ls == "-" else None)
            ts = gn["t_switch_fs"]
            if ls == "--":
                ax.axvline(gn["t_off_fs"] * 1e-3, color="0.4", ls="--", lw=0.7)
            sw = f"switches at {ts * 1e-3:.2f} ps" if np.isfinite(ts) else "no switch"
            lines.append(f"{ls} {gn['V_H']:g} V / {(gn['t_off_fs'] - gn['t_on_fs']) * 1e-3:g}"
                         f" ps: {sw}, max tilt {gn['max_tilt_M3_deg']:.0f}°")
        ax.set_ylim(-1.08, 1.08)
        ax.axhline(0, color="0.6", lw=0.5)
        # the pulses' outcome in the title: a box inside would hide the curves near -1
        ax.set_title(f"({tag}) {title}\n" + "\n".join(lines), loc="left", fontsize=9)
        ax.set_xlabel("t (ps) from the pulse onset")
        ax.set_ylabel("$\\mathbf{M}_{3,\\mathrm{FM}}$")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right", ncol=3)
    ax = axes[1, 1]
    VH, VD, swt = r["sweep/V_H"], r["sweep/V_D"] * 1e-3, r["sweep/switched"]
    dec, ts = r["sweep/decided"], r["sweep/t_switch"]
    for i, vh in enumerate(VH):
        for j, vd in enumerate(VD):
            if swt[i, j]:
                ax.plot(vd, vh, "*", color="tab:green", ms=15)
                ax.annotate(f"{ts[i, j] * 1e-3:.1f}", (vd, vh), textcoords="offset points",
                            xytext=(7, 5), fontsize=7, color="tab:green")
            else:
                ax.plot(vd, vh, "s", ms=9, color="tab:red",
                        mfc="tab:red" if dec[i, j] else "none")
    for n, mk in (("valve_paper", "o"), ("valve_switch", "D")):
        if f"{n}/time" in r.names:
            g = r.group_attrs(n)
            ax.plot((g["t_off_fs"] - g["t_on_fs"]) * 1e-3, g["V_H"], mk, ms=16, mfc="none",
                    mec="k", label=f"{n} (panel b)", zorder=3)
    ax.plot([], [], "*", color="tab:green", ms=12, label="switch (label: $t_s$ in ps)")
    ax.plot([], [], "s", color="tab:red", ms=8, label="no switch")
    ax.set_xlabel("$V_D$ (ps)")
    ax.set_ylabel("$V_H$ (V)")
    ax.set_xlim(0, VD.max() * 1.12)
    ax.set_ylim(0, VH.max() * 1.3)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", markerscale=0.6)
    ax.set_title("(d) pulses switching the spin valve's analyzer\n(paper: the AFI junction;"
                 " too slow for a grid here)", loc="left", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(figure_main("fig000_2", compute, plot, doc=__doc__,
                         quick_help="80-100 fs runs, 2 x 2 tiny sweep (pipeline test)"))
