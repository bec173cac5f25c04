#!/usr/bin/env python
"""Fig. 5 of paper 000: the current-driven spin density and the ESTT at the AFI's first moment.

FM/NM/AFI/FM junction, the paper's 0.55 V / 1.0 ps pulse (``afi_paper``): (a) the three
components of <s_1,AFI>^CD(t) = Tr[(rho - rho_eq(M(t))) sigma] at the first AFI site (Eq. 6,
the paper's normalisation: twice qcspin's ``spin_density_cd`` of s = sigma/2); (b) the
field-like and damping-like parts of the ESTT on the first AFI moment, T = T_FL M x x + T_DL M x
(M x x) (Eq. 11, ``torque_fl_dl``, eV, shown in meV); beyond the paper, (c) the moment
M_1,AFI(t) itself (its tilt drives the spin wave across the AFI).  Shaded: the pulse; shown to
3 ps (the data go on to 6 ps).

    [mpirun -n 2] python scripts/fig000_5_afi_surface.py [--quick] [--outdir DIR] [--overwrite]

Runs: ``scripts/fig000_runs.py`` (cache DIR/paper000_runs[_quick]).  Data DIR/fig000_5.h5,
plot DIR/fig000_5.png.
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

RUN = "afi_paper"


def compute(h5, args, comm):
    path = R.ensure_run(RUN, args.quick, args.outdir, comm)
    if comm.getRank() != 0:
        return
    r = load_result(path)
    k = int(R.layer_index(r, "A")[0])                 # the first AFI moment
    site = int(r.device.spin_sites[k])
    s_cd = 2.0 * r["spin_density_cd", :, site, :]     # paper's Tr(rho_CD sigma)
    fd = r["torque_fl_dl", :, k, :]
    M = r["spins", :, k, :]
    t_on, t_off = R.pulse_window(r)
    data = {"time": (r["time"], "fs", "time from the pulse onset"),
            "s_cd": (s_cd, "1", "<s_1,AFI>^CD = Tr[rho_CD sigma] (paper's Eq. 6, 2x qcspin's)"),
            "fl_dl": (fd, "eV", "(T_FL, T_DL) on the first AFI moment (Eq. 11)"),
            "torque": (r["torque", :, k, :], "eV", "T = J_sd <s>^CD x M (Eq. 7)"),
            "M1_AFI": (M, None, "the first AFI moment")}
    g = {"V_H": R.RUNS[RUN].V, "t_on_fs": t_on, "t_off_fs": t_off, "site": site,
         "file": os.path.abspath(path),
         "max_abs_s_cd": abs(s_cd).max(axis=0).tolist(),
         "max_abs_FL_meV": float(1e3 * abs(fd[:, 0]).max()),
         "max_abs_DL_meV": float(1e3 * abs(fd[:, 1]).max()),
         "max_tilt_deg": float(R.tilt_deg(-M).max())}    # the first AFI moment starts at -z
    write_table(h5, data, {"note": R.note(args.quick) + " <s>^CD in the paper's normalisation "
                           "Tr(rho sigma) = 2 s (qcspin's s = sigma/2); panel (c) is not in "
                           "the paper.", **g}, kind="figure", overwrite=args.overwrite)


def plot(h5, png):
    from analysis.plots import use_agg

    plt = use_agg()
    r = load_result(h5)
    g = r.group_attrs()
    t = r["time"] * 1e-3
    fig, axes = plt.subplots(3, 1, figsize=(8, 9.5), sharex=True)
    cols = ("tab:red", "tab:green", "tab:blue")
    s = r["s_cd"]
    k = R.decade(s)
    for c in range(3):
        axes[0].plot(t, s[:, c] * 10.0 ** -k, color=cols[c],
                     label=f"$\\langle s^{'xyz'[c]}_{{1,AFI}}\\rangle^{{CD}}$")
    axes[0].set_ylabel(R.scaled_label("$\\langle \\hat{s}_{1,AFI}\\rangle^{CD}$",
                                      "Tr ρσ", k))
    axes[0].set_title(f"(a) AFI junction {R.pulse_text(g)}: current-driven spin density at "
                      f"the first AFI site", loc="left", fontsize=10)
    fd = r["fl_dl"] * 1e3
    axes[1].plot(t, fd[:, 0], color="tab:red", label="$T^{FL}_{1,AFI}$")
    axes[1].plot(t, fd[:, 1], color="tab:blue", label="$T^{DL}_{1,AFI}$")
    axes[1].set_ylabel("torque (meV)")
    axes[1].set_title("(b) FL and DL ESTT on the first AFI moment", loc="left", fontsize=10)
    M = r["M1_AFI"]
    for c in range(3):
        axes[2].plot(t, M[:, c], color=cols[c], label=f"$M^{'xyz'[c]}_{{1,AFI}}$")
    axes[2].set_ylabel("$\\mathbf{M}_{1,AFI}$")
    axes[2].set_title(f"(c) the first AFI moment (not in the paper; max tilt from −z "
                      f"{g['max_tilt_deg']:.1f}°)", loc="left", fontsize=10)
    for ax in axes:
        R.span(ax, g)
        ax.axhline(0, color="0.6", lw=0.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, ncol=3)
    axes[-1].set_xlabel("t (ps) from the pulse onset")
    R.zoom(axes, t)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(figure_main("fig000_5", compute, plot, doc=__doc__,
                         quick_help="an 80 fs run, 8 lead sites (pipeline test)"))
