#!/usr/bin/env python
"""Fig. 6 of paper 000: FL and DL ESTT on the analyzer of the FM/NM/AFI/FM junction.

T_i = T_FL M_i x x + T_DL M_i x (M_i x x) (Eq. 11) of T_i = J_sd <s_i>^CD x M_i (Eq. 7;
``torque_fl_dl``, eV, shown in meV) for the paper's 0.55 V / 1.0 ps pulse: (a) first and (c)
last analyzer moment with J_AFI-FM = 0.1 eV (``afi_paper``), (b) first and (d) last with
J_AFI-FM = 0 (``afi_noexch``).  (The paper's caption puts "first" on (a),(c) and "J_AFI-FM != 0"
on (a),(c) as well, which cannot both hold for four panels; its text says (a),(c) are
J_AFI-FM != 0 and (b),(d) J_AFI-FM = 0, which is followed here.)  The spin valve's torques of
Fig. 3 (``valve_paper``) are quoted in each panel for scale (the paper: an order of magnitude
larger).  Shaded: the pulse; shown to 3 ps (the data go on to 6 ps).

    [mpirun -n 2] python scripts/fig000_6_afi_torques.py [--quick] [--outdir DIR] [--overwrite]

Runs: ``scripts/fig000_runs.py`` (cache DIR/paper000_runs[_quick]).  Data DIR/fig000_6.h5,
plot DIR/fig000_6.png.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import fig000_runs as R  # noqa: E402

from analysis.figscript import figure_main  # noqa: E402
from toolkit.io import write_table  # noqa: E402
from toolkit.results import load_result  # noqa: E402

RUNS = ("afi_paper", "afi_noexch", "valve_paper")


def compute(h5, args, comm):
    files = R.ensure_runs(RUNS, args.quick, args.outdir, comm)
    if comm.getRank() != 0:
        return
    data, groups = {}, {}
    for n, path in files.items():
        r = load_result(path)
        F = R.layer_index(r, "F")
        fd = r["torque_fl_dl"][:, F, :]
        t_on, t_off = R.pulse_window(r)
        data[f"{n}/time"] = (r["time"], "fs", "time from the pulse onset")
        data[f"{n}/fl_dl"] = (fd, "eV", "(T_FL, T_DL) on the analyzer moments 1..3 (Eq. 11)")
        groups[n] = {"V_H": R.RUNS[n].V, "t_on_fs": t_on, "t_off_fs": t_off,
                     "file": os.path.abspath(path),
                     "max_abs_FL_meV": (1e3 * abs(fd[:, :, 0]).max(axis=0)).tolist(),
                     "max_abs_DL_meV": (1e3 * abs(fd[:, :, 1]).max(axis=0)).tolist()}
    write_table(h5, data, {"note": R.note(args.quick) + " Panel order follows the paper's "
                           "text ((a),(c): J_AFI-FM != 0; (b),(d): J_AFI-FM = 0; top row the "
                           "first, bottom row the last analyzer moment); the spin valve's "
                           "largest torques are quoted for scale (not in the paper)."},
                kind="figure", group_attrs=groups, overwrite=args.overwrite)


def plot(h5, png):
    from analysis.plots import use_agg

    plt = use_agg()
    r = load_result(h5)
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5), sharex=True)
    fv = r["valve_paper/fl_dl"] * 1e3
    panels = ((axes[0, 0], "a", "afi_paper", 0), (axes[0, 1], "b", "afi_noexch", 0),
              (axes[1, 0], "c", "afi_paper", -1), (axes[1, 1], "d", "afi_noexch", -1))
    for ax, tag, n, k in panels:
        g = r.group_attrs(n)
        R.span(ax, g)
        t, fd = r[f"{n}/time"] * 1e-3, r[f"{n}/fl_dl"] * 1e3
        e = R.decade(fd[:, k, :])
        ax.plot(t, fd[:, k, 0] * 10.0 ** -e, color="tab:red", label="$T^{FL}$")
        ax.plot(t, fd[:, k, 1] * 10.0 ** -e, color="tab:blue", label="$T^{DL}$")
        ax.text(0.98, 0.03, f"max |T_FL|, |T_DL|: {abs(fd[:, k, 0]).max():.2g}, "
                f"{abs(fd[:, k, 1]).max():.2g} meV\nspin valve (Fig. 3, same moment): "
                f"{abs(fv[:, k, 0]).max():.2g}, {abs(fv[:, k, 1]).max():.2g} meV",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=7.5,
                bbox=dict(fc="white", ec="0.8", alpha=0.85))
        J = "0.1 eV" if n == "afi_paper" else "0"
        ax.set_title(f"({tag}) {'first' if k == 0 else 'last'} analyzer moment, "
                     f"$J_{{AFI-FM}}$ = {J}, {R.pulse_text(g)}", loc="left", fontsize=10)
        ax.set_ylabel(R.scaled_label("torque", "meV", e))
        ax.axhline(0, color="0.6", lw=0.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2, loc="upper left")
    for ax in axes[-1]:
        ax.set_xlabel("t (ps) from the pulse onset")
    R.zoom(axes, r["afi_paper/time"] * 1e-3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(figure_main("fig000_6", compute, plot, doc=__doc__,
                         quick_help="80-100 fs runs, 8 lead sites (pipeline test)"))
