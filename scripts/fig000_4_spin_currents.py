#!/usr/bin/env python
"""Fig. 4 of paper 000: bond electronic spin currents and the injected charge current.

Bond spin currents of Eq. (10) with rho_CD = rho - rho_eq(M(t)) (``plane_spin_current_cd`` of
the run files) in the paper's convention, I^{S_a}_{i->j} = (e/hbar) Tr_spin{sigma_a (...)}, i.e.
in units of (e/hbar) eV: I^S = 2 hbar J with J = qcspin's current of s = sigma/2 per fs (hbar =
0.6582 eV fs); positive = towards +x.  (a)-(c) AFI -> FM (the last AFI site to the first
analyzer site) for the AFI junction's 0.55 V / 1.0 ps pulse, solid: J_AFI-FM = 0.1 eV
(``afi_paper``), dotted: J_AFI-FM = 0 (``afi_noexch``); (d) NM -> AFI (the last spacer site to
the first AFI site, ``afi_paper``); (e)-(g) NM -> FM in the spin valve, 0.25 V / 0.6 ps
(``valve_paper``); (h) the charge current injected from the left lead, I_L = (e/hbar) Re Tr
Pi_L = hbar x ``lead_current`` of the left lead (qcspin's lead_current is Re Tr Pi_L per fs,
half the electrons entering per fs: with the paper's Eq. (4) normalisation I_L = (e/hbar)
Tr Pi_L is that rate times e hbar, in units of (e/hbar) eV), positive into the device (+x);
dashed: the 1.0 V / 1.3 ps pulse that switches the valve (``valve_switch``).  Shaded: the pulse;
shown to 3 ps (the runs and the HDF5 data go on to 6 ps).

    [mpirun -n 2] python scripts/fig000_4_spin_currents.py [--quick] [--outdir DIR]
                                                           [--overwrite]

Runs: ``scripts/fig000_runs.py`` (cache DIR/paper000_runs[_quick]).  Data DIR/fig000_4.h5
(also the full-rho bond currents ``plane_spin_current`` of App. A), plot DIR/fig000_4.png.
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

RUNS = ("afi_paper", "afi_noexch", "valve_paper", "valve_switch")
#: bond -> (the layer whose first site the current enters)
BONDS = {"afi": {"AFI_FM": "F", "NM_AFI": "A"}, "valve": {"NM_FM": "F"}}
SPIN = 2.0 * R.HBAR     # qcspin's s = sigma/2 current per fs -> paper's I^S in (e/hbar) eV


def plane_into(r, layer: str) -> tuple[int, int]:
    """(x, index into the recorded planes) of the bond in front of ``layer``'s first column."""
    cols = {lc.name: lc.columns for lc in r.config.layers}
    x = cols[layer][0] - 1
    return x, list(r.device.planes).index(x)


def compute(h5, args, comm):
    files = R.ensure_runs(RUNS, args.quick, args.outdir, comm)
    if comm.getRank() != 0:
        return
    data, groups = {}, {}
    for n, path in files.items():
        r = load_result(path)
        t_on, t_off = R.pulse_window(r)
        data[f"{n}/time"] = (r["time"], "fs", "time from the pulse onset")
        g = {"V_H": R.RUNS[n].V, "t_on_fs": t_on, "t_off_fs": t_off,
             "file": os.path.abspath(path)}
        for bond, layer in BONDS[R.RUNS[n].device].items():
            x, k = plane_into(r, layer)
            I_cd = SPIN * r["plane_spin_current_cd", :, k, :]
            data[f"{n}/I_S_{bond}"] = (I_cd, "(e/hbar) eV", f"Eq. 10 with rho_CD, plane {x}|"
                                       f"{x + 1} (x, y, z)")
            data[f"{n}/I_S_{bond}_full"] = (SPIN * r["plane_spin_current", :, k, :],
                                            "(e/hbar) eV", "the same with the full rho")
            g[f"max_abs_I_S_{bond}"] = abs(I_cd).max(axis=0).tolist()
        if R.RUNS[n].device == "valve":
            left = list(r.device.lead_names).index("left")
            IL = R.HBAR * r["lead_current", :, left]
            data[f"{n}/I_L"] = (IL, "(e/hbar) eV", "charge current from the left lead into "
                                "the device, (e/hbar) Re Tr Pi_L")
            g["I_L_end_of_pulse"] = float(IL[abs(r["time"] - t_off).argmin() - 1])
        groups[n] = g
    write_table(h5, data, {"note": R.note(args.quick) + " Spin currents in the paper's "
                           "(e/hbar) Tr sigma convention (2 hbar x qcspin's s = sigma/2 rate); "
                           "I_L = hbar x lead_current, in (e/hbar) eV; bond currents with "
                           "rho_CD (Eqs. 9-10)."}, kind="figure", group_attrs=groups,
                overwrite=args.overwrite)


def _span(ax, r, n):
    R.span(ax, r.group_attrs(n))


def plot(h5, png):
    from analysis.plots import use_agg

    plt = use_agg()
    r = load_result(h5)
    fig, axes = plt.subplots(4, 2, figsize=(12, 11), sharex="col")
    cols = ("tab:red", "tab:green", "tab:blue")
    ta = r["afi_paper/time"] * 1e-3
    tn = r["afi_noexch/time"] * 1e-3
    tv = r["valve_paper/time"] * 1e-3
    pa, pv = (R.pulse_text(r.group_attrs(n)) for n in ("afi_paper", "valve_paper"))
    for c in range(3):
        ax = axes[c, 0]
        _span(ax, r, "afi_paper")
        ya, yn = r["afi_paper/I_S_AFI_FM"][:, c], r["afi_noexch/I_S_AFI_FM"][:, c]
        k = R.decade(ya, yn)
        ax.plot(ta, ya * 10.0 ** -k, color=cols[c], label="$J_{AFI-FM}$ = 0.1 eV")
        ax.plot(tn, yn * 10.0 ** -k, ":", color=cols[c], lw=1.5, label="$J_{AFI-FM}$ = 0")
        ax.set_ylabel(R.scaled_label(f"$I^{{S_{'xyz'[c]}}}_{{AFI\\to FM}}$", "(e/ħ) eV", k))
        ax.set_title(f"({'abc'[c]}) AFI junction {pa}, AFI → FM, $S_{'xyz'[c]}$",
                     loc="left", fontsize=10)
        ax.legend(fontsize=8)
        ax = axes[c, 1]
        _span(ax, r, "valve_paper")
        yv = r["valve_paper/I_S_NM_FM"][:, c]
        k = R.decade(yv)
        ax.plot(tv, yv * 10.0 ** -k, color=cols[c])
        ax.set_ylabel(R.scaled_label(f"$I^{{S_{'xyz'[c]}}}_{{NM\\to FM}}$", "(e/ħ) eV", k))
        ax.set_title(f"({'efg'[c]}) spin valve {pv}, NM → FM, $S_{'xyz'[c]}$",
                     loc="left", fontsize=10)
    ax = axes[3, 0]
    _span(ax, r, "afi_paper")
    yd = r["afi_paper/I_S_NM_AFI"]
    k = R.decade(yd)
    for c in range(3):
        ax.plot(ta, yd[:, c] * 10.0 ** -k, color=cols[c], label=f"$S_{'xyz'[c]}$")
    ax.set_ylabel(R.scaled_label("$I^{S_\\alpha}_{NM\\to AFI}$", "(e/ħ) eV", k))
    ax.set_title("(d) AFI junction, NM → AFI (reflected at the first AFI moment)", loc="left",
                 fontsize=10)
    ax.legend(fontsize=8, ncol=3)
    ax = axes[3, 1]
    _span(ax, r, "valve_paper")
    ax.plot(tv, r["valve_paper/I_L"], color="k", label=pv)
    if "valve_switch/I_L" in r.names:
        ax.plot(r["valve_switch/time"] * 1e-3, r["valve_switch/I_L"], "--", color="0.4",
                lw=0.9, label=f"{R.pulse_text(r.group_attrs('valve_switch'))} (switching)")
    ax.set_ylabel("$I_L$ ((e/ħ) eV)")
    ax.set_title("(h) spin valve, charge current from the left lead", loc="left", fontsize=10)
    ax.legend(fontsize=8)
    for ax in axes.ravel():
        ax.axhline(0, color="0.6", lw=0.5)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("t (ps) from the pulse onset")
    R.zoom(axes, ta)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(figure_main("fig000_4", compute, plot, doc=__doc__,
                         quick_help="80-100 fs runs, 8 lead sites (pipeline test)"))
