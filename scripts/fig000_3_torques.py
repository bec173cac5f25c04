#!/usr/bin/env python
"""Fig. 3 of paper 000: field-like and damping-like ESTT in the FM/NM/FM spin valve.

T_i = T_FL M_i x x + T_DL M_i x (M_i x x) (Eq. 11) of the current-driven torque T_i = J_sd
<s_i>^CD x M_i (Eq. 7; ``torque_fl_dl`` of the run files, eV, shown in meV) for the paper's
0.25 V / 0.6 ps pulse: (a) on the first and (b) on the last analyzer moment (TDNEGF+LLG,
``valve_paper``); (c) M_3(t) of steady-state-NEGF+LLG (``valve_steady``: ``[llg] drive =
"steady-state"``, the moments driven by the stationary NEGF state of the instantaneous moments
and bias; dashed: TDNEGF+LLG of panel b of Fig. 2) and (d) its FL/DL on the last moment
(dashed: TDNEGF+LLG, panel b).  Beyond the paper: (e), (f) the same as (a), (b) for the
1.0 V / 1.3 ps pulse that switches the valve (``valve_switch``).  Shaded: the pulse.

    [mpirun -n 2] python scripts/fig000_3_torques.py [--quick] [--outdir DIR] [--overwrite]

Runs: ``scripts/fig000_runs.py`` (cache DIR/paper000_runs[_quick]).  Data DIR/fig000_3.h5,
plot DIR/fig000_3.png.
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

RUNS = ("valve_paper", "valve_steady", "valve_switch")


def compute(h5, args, comm):
    files = R.ensure_runs(RUNS, args.quick, args.outdir, comm)
    if comm.getRank() != 0:
        return
    data, groups = {}, {}
    for n, path in files.items():
        r = load_result(path)
        F = R.layer_index(r, "F")
        fd = r["torque_fl_dl"][:, F, :]
        T = r["torque"][:, F, :]
        t_on, t_off = R.pulse_window(r)
        data[f"{n}/time"] = (r["time"], "fs", "time from the pulse onset")
        data[f"{n}/fl_dl"] = (fd, "eV", "(T_FL, T_DL) on the analyzer moments 1..3 (Eq. 11)")
        data[f"{n}/torque"] = (T, "eV", "T_i = J_sd <s_i>^CD x M_i (Eq. 7) on moments 1..3")
        data[f"{n}/M_F"] = (r["spins"][:, F, :], None, "analyzer moments")
        pulse = (r["time"] >= t_on) & (r["time"] <= t_off)
        groups[n] = {"V_H": R.RUNS[n].V, "t_on_fs": t_on, "t_off_fs": t_off,
                     "drive": r.config.llg.drive, "file": os.path.abspath(path),
                     "max_abs_FL_meV": (1e3 * abs(fd[:, :, 0]).max(axis=0)).tolist(),
                     "max_abs_DL_meV": (1e3 * abs(fd[:, :, 1]).max(axis=0)).tolist(),
                     "mean_FL_in_pulse_meV": (1e3 * fd[pulse, :, 0].mean(axis=0)).tolist(),
                     "mean_DL_in_pulse_meV": (1e3 * fd[pulse, :, 1].mean(axis=0)).tolist(),
                     "max_tilt_M3_deg": float(R.tilt_deg(r["spins"][:, F[-1], :]).max())}
    write_table(h5, data, {"note": R.note(args.quick) + " The torque is the paper's Eq. (7) "
                           "T = J_sd <s>^CD x M (the electron spin's rate; the moment receives "
                           "-T), in eV. Panels (e,f) (the switching pulse) are not in the "
                           "paper."}, kind="figure", group_attrs=groups,
                overwrite=args.overwrite)


def _fl_dl(ax, r, n, k, ls="-", label=True):
    t = r[f"{n}/time"] * 1e-3
    fd = r[f"{n}/fl_dl"] * 1e3
    ax.plot(t, fd[:, k, 0], ls, color="tab:red", label="$T^{FL}$" if label else None)
    ax.plot(t, fd[:, k, 1], ls, color="tab:blue", label="$T^{DL}$" if label else None)


def _frame(ax, r, n, title):
    R.span(ax, r.group_attrs(n))
    ax.axhline(0, color="0.6", lw=0.5)
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(alpha=0.3)
    ax.set_xlabel("t (ps) from the pulse onset")


def plot(h5, png):
    from analysis.plots import use_agg

    plt = use_agg()
    r = load_result(h5)
    fig, axes = plt.subplots(3, 2, figsize=(12, 10.5))
    for ax, k, tag, which in ((axes[0, 0], 0, "a", "first"), (axes[0, 1], -1, "b", "last")):
        _frame(ax, r, "valve_paper", f"({tag}) TDNEGF+LLG, {which} analyzer moment, "
               f"{R.pulse_text(r.group_attrs('valve_paper'))}")
        _fl_dl(ax, r, "valve_paper", k)
        ax.set_ylabel("torque (meV)")
        ax.legend(fontsize=8)
    ax = axes[1, 0]
    _frame(ax, r, "valve_steady", "(c) steady-state-NEGF+LLG: $\\mathbf{M}_3(t)$ "
           "(dashed: TDNEGF+LLG)")
    cols = ("tab:red", "tab:green", "tab:blue")
    for n, ls in (("valve_steady", "-"), ("valve_paper", "--")):
        t, M = r[f"{n}/time"] * 1e-3, r[f"{n}/M_F"][:, -1, :]
        for c in range(3):
            ax.plot(t, M[:, c], ls, color=cols[c], lw=1.3 if ls == "-" else 0.9,
                    label=f"$M_3^{'xyz'[c]}$" if ls == "-" else None)
    ax.set_ylabel("$\\mathbf{M}_3$")
    ax.legend(fontsize=8, ncol=3)
    ax = axes[1, 1]
    _frame(ax, r, "valve_steady", "(d) steady-state-NEGF+LLG, last moment (dashed: TDNEGF+LLG)")
    _fl_dl(ax, r, "valve_steady", -1)
    _fl_dl(ax, r, "valve_paper", -1, ls="--", label=False)
    ax.set_ylabel("torque (meV)")
    ax.legend(fontsize=8)
    for ax, k, tag, which in ((axes[2, 0], 0, "e", "first"), (axes[2, 1], -1, "f", "last")):
        _frame(ax, r, "valve_switch", f"({tag}) {which} analyzer moment, "
               f"{R.pulse_text(r.group_attrs('valve_switch'))} (switching; not in the paper)")
        _fl_dl(ax, r, "valve_switch", k)
        ax.set_ylabel("torque (meV)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(figure_main("fig000_3", compute, plot, doc=__doc__,
                         quick_help="100 fs runs, 8 lead sites (pipeline test)"))
