#!/usr/bin/env python
"""Fig. 7 of paper 000: bond magnonic spin currents at the AFI/FM interface.

I^SW_{i->j} = J_ij M_i x M_j (Eq. 14, as printed: J_ij = J_AFI = 0.1 eV between the last two
AFI sites, J_ij = J_FM = 0.1 eV between the first two analyzer sites; computed from the
recorded moments, eV, shown in meV) for the paper's 0.55 V / 1.0 ps pulse, J_AFI-FM = 0.1 eV:
(a) last two AFI sites and (b) first two analyzer sites with J_sd != 0 in the analyzer
(``afi_paper``); (c), (d) the same with J_sd = 0 in the analyzer only (``afi_nosd``; the last
AFI moment keeps its s-d coupling, as in the paper).  qcspin's ``magnon_current`` is J_ex S_i x
S_j with the signed J_ex of its Hamiltonian (+J_AFI in the AFI, -J_FM in the ferromagnet): the
angular momentum the exchange moves from i to j; for the analyzer bond it is minus the printed
Eq. (14) (docs/guide/conventions.md), which is what is drawn here for comparison with the
paper; (e) beyond the paper, the rms of |I^SW| in 250 fs windows (log scale) for both runs.
The HDF5 file also has the AFI -> FM bond, J_AFI-FM M_N,AFI x M_1,FM.  Shaded: the
pulse.

    [mpirun -n 2] python scripts/fig000_7_magnon.py [--quick] [--outdir DIR] [--overwrite]

Runs: ``scripts/fig000_runs.py`` (cache DIR/paper000_runs[_quick]).  Data DIR/fig000_7.h5,
plot DIR/fig000_7.png.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import fig000_runs as R  # noqa: E402
import numpy as np  # noqa: E402

from analysis.figscript import figure_main  # noqa: E402
from toolkit.io import write_table  # noqa: E402
from toolkit.results import load_result  # noqa: E402

RUNS = ("afi_paper", "afi_nosd")
J_AFI, J_FM, J_AFI_FM = 0.1, 0.1, 0.1     # eV, the paper's (positive) couplings of Eq. (1)


def compute(h5, args, comm):
    files = R.ensure_runs(RUNS, args.quick, args.outdir, comm)
    if comm.getRank() != 0:
        return
    data, groups = {}, {}
    for n, path in files.items():
        r = load_result(path)
        A, F = R.layer_index(r, "A"), R.layer_index(r, "F")
        S = r["spins"]
        afi = J_AFI * np.cross(S[:, A[-2]], S[:, A[-1]])
        fm = J_FM * np.cross(S[:, F[0]], S[:, F[1]])
        iface = J_AFI_FM * np.cross(S[:, A[-1]], S[:, F[0]])
        t_on, t_off = R.pulse_window(r)
        data[f"{n}/time"] = (r["time"], "fs", "time from the pulse onset")
        data[f"{n}/I_SW_AFI"] = (afi, "eV", "J_AFI M_{N-1,AFI} x M_{N,AFI} (Eq. 14)")
        data[f"{n}/I_SW_FM"] = (fm, "eV", "J_FM M_1,FM x M_2,FM (Eq. 14 as printed; "
                                "qcspin's magnon_current is minus this)")
        data[f"{n}/I_SW_AFI_FM"] = (iface, "eV", "J_AFI-FM M_N,AFI x M_1,FM")
        groups[n] = {"V_H": R.RUNS[n].V, "t_on_fs": t_on, "t_off_fs": t_off,
                     "file": os.path.abspath(path),
                     "max_abs_AFI_meV": (1e3 * abs(afi).max(axis=0)).tolist(),
                     "max_abs_FM_meV": (1e3 * abs(fm).max(axis=0)).tolist(),
                     "rms_FM_last_ps_meV": (1e3 * np.sqrt((fm[r["time"] > r["time"][-1]
                                                              - 1000.0] ** 2).mean(axis=0))
                                            ).tolist()}
    write_table(h5, data, {"note": R.note(args.quick) + " Magnon currents as printed in Eq. "
                           "(14) with the paper's positive J_AFI, J_FM (for the analyzer bond "
                           "minus qcspin's magnon_current)."}, kind="figure",
                group_attrs=groups, overwrite=args.overwrite)


def plot(h5, png):
    from analysis.plots import use_agg

    plt = use_agg()
    r = load_result(h5)
    fig = plt.figure(figsize=(12, 10.5))
    gs = fig.add_gridspec(3, 2, height_ratios=[1, 1, 0.9])
    axes = np.array([[fig.add_subplot(gs[i, j]) for j in range(2)] for i in range(2)])
    cols = ("tab:red", "tab:green", "tab:blue")
    panels = ((axes[0, 0], "a", "afi_paper", "AFI", "last two AFI sites", "\\neq 0"),
              (axes[0, 1], "b", "afi_paper", "FM", "first two analyzer sites", "\\neq 0"),
              (axes[1, 0], "c", "afi_nosd", "AFI", "last two AFI sites", "= 0"),
              (axes[1, 1], "d", "afi_nosd", "FM", "first two analyzer sites", "= 0"))
    for ax, tag, n, bond, where, jsd in panels:
        g = r.group_attrs(n)
        R.span(ax, g)
        t, y = r[f"{n}/time"] * 1e-3, r[f"{n}/I_SW_{bond}"] * 1e3
        e = R.decade(y)
        for c in range(3):
            ax.plot(t, y[:, c] * 10.0 ** -e, color=cols[c],
                    label=f"$I^{{SW,S_{'xyz'[c]}}}$")
        ax.set_title(f"({tag}) {where}, $J_{{sd}} {jsd}$ in FM, {R.pulse_text(g)}",
                     loc="left", fontsize=10)
        ax.set_ylabel(R.scaled_label("$J_{ij}\\,\\mathbf{M}_i\\times\\mathbf{M}_j$", "meV", e))
        ax.axhline(0, color="0.6", lw=0.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, ncol=3, loc="upper left")
    for ax in axes.ravel():
        ax.set_xlabel("t (ps) from the pulse onset")
    ax = fig.add_subplot(gs[2, :])
    for n, ls, lab in (("afi_paper", "-", "$J_{sd}\\neq 0$ in FM"),
                       ("afi_nosd", "--", "$J_{sd}=0$ in FM")):
        t = r[f"{n}/time"]
        for bond, col in (("AFI", "tab:purple"), ("FM", "tab:orange")):
            tc, rms = _rms(t, r[f"{n}/I_SW_{bond}"] * 1e3, 250.0)
            ax.semilogy(tc * 1e-3, rms, ls, color=col, marker="o", ms=3,
                        label=f"{'last two AFI' if bond == 'AFI' else 'first two FM'} sites, "
                              f"{lab}")
    R.span(ax, r.group_attrs("afi_paper"))
    ax.set_xlabel("t (ps) from the pulse onset")
    ax.set_ylabel("rms $|I^{SW}|$ over 250 fs (meV)")
    ax.set_title("(e) decay of the magnonic spin currents (not in the paper; the paper: slower "
                 "with $J_{sd}=0$ in FM)", loc="left", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def _rms(t, y, width):
    """Window centres and the rms of |y| (n_t, 3) over consecutive windows of ``width``."""
    edges = np.arange(t[0], t[-1] + 1e-9, width)
    c, v = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        m = (t >= a) & (t < b)
        if m.any():
            c.append(0.5 * (a + b))
            v.append(np.sqrt((y[m] ** 2).sum(axis=1).mean()))
    return np.array(c), np.array(v)


if __name__ == "__main__":
    sys.exit(figure_main("fig000_7", compute, plot, doc=__doc__,
                         quick_help="80 fs runs, 8 lead sites (pipeline test)"))
