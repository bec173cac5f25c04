#!/usr/bin/env python
"""Figs. 20 and 21 of paper 004 (App. F): the valve with metallic valve-lead interfaces.

Two valves at J_sd = 2, otherwise the parameters of Sec. III B (Gamma = 1, T = 0.025, J_ex = -1,
K_l = 0.4 along x, K_r = 0.02 along z, N_p = 30; ``toolkit.presets.paper_valve``):

* bare:     12 x 4, PL = monolayers N_l = 1-4, SL 5-8, FL 9-12;
* extended: 24 x 4, six metallic monolayers on each side, PL = N_l 7-10, FL = 15-18
  (N_l counts monolayers from 1 at the left edge; the bare valve is plotted shifted by 6).

Stage 1 (V = 0, spins released from their easy axes) once per valve, then one bias quench per
V: symmetric drop mu_l = -mu_r = V/2 and asymmetric drop mu_l = V', mu_r = 0.  Only steady
states are used here, so both magnetic layers carry an extra Gilbert damping alpha = 0.5 (in
stage 1 and 2): it does not change a stationary state (the LL right-hand side vanishes iff
S x dH/dS = 0), it only shortens the approach (without it the free layer rings for t_R ~
200-1e5).  Steady state = mean over whole free-layer periods in the last half of the record
(``analysis.quench.analyze_quench``).

Convergence check (stored in ``conv/*``, printed): every point is analysed a second time from
the first 2/3 of its record only (T' = 400 instead of T = 600: averaging window [200, 400]
instead of [300, 600]); the largest differences of P^z, of the right-lead spin and charge
currents and of M_FL/N_S over all points measure how far the records are from stationary.
(A test quench of the bare valve, V' = 4 asymmetric, alpha = 0.5, after stage 1 of 1000: M_FL,
I_r and J_r are constant to 1e-5 from t ~ 400 on, stage 1 from t ~ 350 on.)

Long-lived states of the extended valve.  The 24 x 4 valve has quasi-bound electron states
(16 states with widths 2|Im lambda| ~ 5e-6, i.e. lifetimes ~ 2e5, and 16 with lifetimes ~ 1e3-2e3,
eigenvalues of H + Sigma at the equilibrium spins): magnetic-layer states whose transverse
channel is evanescent in the six metallic monolayers, which act as a tunnel barrier to the
leads.  Their occupations do not reach the t -> infinity (NEGF) values within any affordable
record, so P^z inside the magnetic layers of the extended valve depends on the record length,
while the currents do not (those states hardly carry current).  Every point is therefore also
evaluated at t -> infinity for the electrons: the exact NEGF steady state at the final spins
of the run (``polarization_negf``, ``J_right_negf``, ``I_right_negf``; dotted lines and panels
(e), (f), not in the paper).  For the bare valve both agree to ~1e-5.

Fig. 20: monolayer spin polarization P^z (Eq. F1) of the extended valve vs V' (a, asymmetric)
and V (b, symmetric) as colour maps (row V = 0: the stage-1 equilibrium), dashed lines at the
edges of the bare valve; (c), (d) P^z profiles of bare and extended valve at V = V' = 4 and 2.
Fig. 21: steady spin current into the right lead, J = -lead_spin_current[right] = -Re Tr
(sigma Pi_r) (Eq. 12 with the paper's minus sign: flux of s = sigma/2 from the valve into the
right lead, hbar per hbar/gamma), for the asymmetric (a) and symmetric (b) drop, and (c) the
charge current into the right lead, I = -lead_current[right] = -Re Tr Pi_r (= Re Tr Pi_l of
Eq. 11 in a steady state; paper normalisation: HALF the number of electrons per time unit, see
README "Factor 2"), for both valves and protocols.

    mpirun -n 2 python scripts/fig20_21_interfaces.py [--quick] [--outdir DIR] [--overwrite]
                                                      [--plot-only]

Full: V, V' = 0.25:6:0.25, stage 1 800, stage 2 600 time units (hbar/gamma), dt = 0.2.
--quick: V = V' = 4 only (panel (d) stays empty), stage 1 40, stage 2 30 (a pipeline test, far
from converged).  Runs:
DIR/fig20_runs/{bare,extended}/J2_<protocol>/V_*.h5 (resumable); data DIR/fig20.h5; plots
DIR/fig20.png and DIR/fig21.png.  The full run took 46 min under mpirun -n 2 while another
2-rank job shared the 2 cores (bare quench ~30 s, extended ~70 s); re-analysis of existing
runs ~15 s.

Measured (full run): record check, max over V of |T - 2T/3|: bare P^z 2e-5, J_r 6e-5, I_r
1.3e-4, M_FL/N_S 1.1e-3; extended P^z 2.0e-2, J_r 1.6e-4, I_r 3.1e-4, M_FL/N_S 2.7e-3.  Run vs
NEGF at the final spins: bare P^z 7e-5, J_r 4e-6, I_r 9e-6; extended P^z 0.28 (inside the FL),
J_r 7.8e-4, I_r 6.4e-4.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from analysis.figscript import figure_main  # noqa: E402
from analysis.plots import use_agg  # noqa: E402
from analysis.quench import analyze_quench, analyze_sweep  # noqa: E402
from integrators.campaign import quench_sweeps  # noqa: E402
from toolkit.io import write_table  # noqa: E402
from toolkit.results import load_result  # noqa: E402

J_SD = 2.0
DAMPING = 0.5
SHIFT = 6                                  # monolayers added on each side (App. F)
VALVES = {"bare": {}, "extended": {"extended": True}}
PROTOCOLS = ("symmetric", "asymmetric")
# colours of the paper's Fig. 21 text: bare red/blue, extended orange/black
STYLE = {("bare", "symmetric"): dict(color="tab:red", marker="o", ls="-"),
         ("bare", "asymmetric"): dict(color="tab:blue", marker="s", ls="-"),
         ("extended", "symmetric"): dict(color="tab:orange", marker="o", ls="--"),
         ("extended", "asymmetric"): dict(color="k", marker="s", ls="--")}
COMP = {0: "tab:red", 1: "tab:blue", 2: "k"}
CHECK = 2.0 / 3.0                          # record fraction of the convergence check


def plan(quick: bool) -> dict:
    if quick:
        return dict(grid=np.array([4.0]), stage1=40.0, t_end=30.0)
    return dict(grid=np.arange(1, 25) * 0.25, stage1=800.0, t_end=600.0)


def steady(r) -> dict:
    """The steady-state numbers compared in the convergence check."""
    fl = list(r.layers).index("FL")
    return {"Pz": r.polarization[:, 2], "J_r": -r.lead_spin_current[1],
            "I_r": -r.lead_current[1], "M_FL": r.M_ss[fl] / r.n_spins[fl]}


def negf_limit(path: str) -> tuple[np.ndarray, np.ndarray, float]:
    """t -> infinity limit of the electrons at the final spins of the quench file ``path``:
    the exact NEGF steady state (wide-band leads, exact Fermi functions) ->
    (P (Lx, 3) of Eq. F1, spin current into the right lead (3,), charge current Re Tr Pi
    into the right lead).  Serial (PETSc.COMM_SELF)."""
    from analysis.transport import landauer_current, steady_state_density, transport_leads
    from toolkit.device import device_from_config

    from petsc4py import PETSc

    r = load_result(path)
    cfg, S, mu = r.config, r.checkpoint()["spins"], r["lead_mu", -1]
    dev = device_from_config(cfg)
    leads = transport_leads(cfg, dev).leads
    rho = steady_state_density(dev, leads, mu_l=mu[0], mu_r=mu[1], spins=S,
                               comm=PETSc.COMM_SELF)
    n = dev.n_sites
    blocks = rho.reshape(n, 2, n, 2)[np.arange(n), :, np.arange(n), :]   # (n, 2, 2) rho_jj
    sig = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]])
    dens = np.real(np.concatenate([np.trace(blocks, axis1=1, axis2=2)[:, None],
                                   np.einsum("aij,nji->na", sig, blocks)], axis=1))
    x = dev.coords[:, 0]
    Lx = int(dev.size[0])
    mono = np.stack([np.bincount(x, dens[:, k], Lx) for k in range(4)], axis=1)
    cur = landauer_current(dev, leads, mu_l=mu[0], mu_r=mu[1], spins=S, comm=PETSc.COMM_SELF)
    return mono[:, 1:] / mono[:, :1], np.asarray(cur.spin_r), float(cur.current)


def negf_all(dirs: dict, grid: np.ndarray, comm) -> dict:
    """:func:`negf_limit` of every quench file, shared round robin over the ranks; the
    result {(valve, protocol): (P, J_r, I_r) stacked over V} on rank 0.  Collective."""
    from toolkit.parallel import gather_rows

    jobs = [(valve, protocol, V) for valve, dd in dirs.items() for protocol in dd
            for V in grid]
    rank, size = comm.getRank(), comm.getSize()
    rows = []
    for k in range(rank, len(jobs), size):
        valve, protocol, V = jobs[k]
        P, J, I = negf_limit(os.path.join(dirs[valve][protocol], f"V_{V:+.6g}.h5"))
        rows.append((k, P, J, I))
    allrows = gather_rows(np.array(rows, dtype=object).reshape(-1, 4), comm, root=0)
    if rank != 0:
        return {}
    by = {int(r[0]): r for r in allrows}
    out = {}
    for key in {(v, pr) for v, pr, _ in jobs}:
        ks = [k for k, j in enumerate(jobs) if (j[0], j[1]) == key]
        out[key] = tuple(np.array([by[k][c] for k in ks]) for c in (1, 2, 3))
    return out


def compute(h5, args, comm):
    p = plan(args.quick)
    runs = os.path.join(args.outdir, "fig20_runs" + ("_quick" if args.quick else ""))
    rank0 = comm.getRank() == 0
    grids = {pr: p["grid"] for pr in PROTOCOLS}

    def report(i, v, obs, wall):
        print(f"  V = {v:<6g} done ({wall:.0f} s)", flush=True)

    dirs = {}
    for valve, kw in VALVES.items():
        if rank0:
            print(f"fig20: {valve} valve, J_sd = {J_SD:g}, damping {DAMPING:g}: stage 1 "
                  f"{p['stage1']:g}, stage 2 {p['t_end']:g}, {2 * len(p['grid'])} quenches",
                  flush=True)
        dirs[valve] = quench_sweeps(os.path.join(runs, valve), J_SD, grids,
                                    stage1_time=p["stage1"], t_end=p["t_end"], comm=comm,
                                    config_kw={**kw, "damping": DAMPING}, progress=report)
    if rank0:
        print("fig20: NEGF t -> infinity limit of the electrons at the final spins", flush=True)
    negf = negf_all(dirs, p["grid"], comm)
    if not rank0:
        return
    conv_max = {}
    data, groups = {}, {}
    for valve, dd in dirs.items():
        stage1 = os.path.join(runs, valve, f"J{J_SD:g}_stage1.h5")
        s1 = load_result(stage1)
        P_eq, Lx = s1["monolayer_polarization", -1], s1.device.size[0]
        groups[valve] = {"Lx": Lx, "N_l_offset": 0 if valve == "extended" else SHIFT}
        data[f"{valve}/P_eq"] = (P_eq, "dimensionless; (Lx, 3) Eq. F1 at V = 0 (end of "
                                       "stage 1)", None)
        for protocol, d in dd.items():
            tab = analyze_sweep(d, overwrite=True)
            g = f"{valve}/{protocol}"
            fl = tab["layers"].index("FL")
            rows = {"V": (tab["V"], "energy (gamma): V (symmetric) or V' (asymmetric)"),
                    "polarization": (tab["polarization"], "dimensionless; (n_V, Lx, 3) "
                                     "Eq. F1 P^x, P^y, P^z per monolayer"),
                    "J_right": (-tab["lead_spin_current"][:, 1], "hbar per (hbar/gamma) "
                                "= gamma; spin s = sigma/2 from the valve into the right "
                                "lead, x, y, z"),
                    "I_right": (-tab["lead_current"][:, 1], "1/(hbar/gamma); Re Tr Pi "
                                "(Eq. 11) into the right lead = HALF the electron flux"),
                    "I_left": (tab["lead_current"][:, 0], "1/(hbar/gamma); Re Tr Pi_l "
                               "from the left lead (Eq. 11)"),
                    "M_FL": (tab["M_ss"][:, fl] / tab["n_spins"][:, fl][:, None],
                             "dimensionless; steady free-layer magnetization / N_S"),
                    "window": (tab["window"], "hbar/gamma; averaging window")}
            P_n, J_n, I_n = negf[(valve, protocol)]
            rows.update({
                "polarization_negf": (P_n, "dimensionless; (n_V, Lx, 3) Eq. F1 of the "
                                      "exact NEGF steady state at the final spins "
                                      "(t -> infinity limit of the electrons)"),
                "J_right_negf": (J_n, "gamma; Landauer spin current into the right lead "
                                 "at the final spins"),
                "I_right_negf": (I_n, "1/(hbar/gamma); Landauer Re Tr Pi (Eq. 11) at the "
                                 "final spins")})
            data.update({f"{g}/{k}": (v, u, None) for k, (v, u) in rows.items()})
            for k, a, b in (("Pz_vs_negf", tab["polarization"][..., 2], P_n[..., 2]),
                            ("J_r_vs_negf", -tab["lead_spin_current"][:, 1], J_n),
                            ("I_r_vs_negf", -tab["lead_current"][:, 1], I_n)):
                conv_max[(valve, protocol, k)] = float(np.max(np.abs(a - b)))
            # convergence: the same analysis on the first 2/3 of each record
            diffs = {k: [] for k in ("Pz", "J_r", "I_r", "M_FL")}
            for V in tab["V"]:
                path = os.path.join(d, f"V_{V:+.6g}.h5")
                full = steady(analyze_quench(path))
                short = steady(analyze_quench(path, t_max=CHECK * p["t_end"]))
                for k in diffs:
                    diffs[k].append(np.max(np.abs(full[k] - short[k])))
            groups[f"{g}/conv"] = {
                "record_fraction": CHECK,
                "units": ("max |steady(record T) - steady(record 2T/3)| per V: Pz "
                          "dimensionless, J_r gamma, I_r gamma/hbar, M_FL per N_S")}
            for k, v in diffs.items():
                data[f"{g}/conv/{k}"] = np.array(v)
                conv_max[(valve, protocol, k)] = float(np.max(v))
    write_table(h5, data, dict(J_sd=J_SD, damping=DAMPING, stage1_time=p["stage1"],
                               t_end=p["t_end"], dt=0.2, runs=os.path.abspath(runs),
                               quick=bool(args.quick),
                               units="natural: energy = hopping gamma, time = hbar/gamma, "
                                     "hbar = 1",
                               description=__doc__.split("\n\n")[0]),
                kind="figure", group_attrs=groups, overwrite=args.overwrite)
    print("fig20: max over V of |steady(T) - steady(2T/3)| (record check) and of "
          "|steady(T) - NEGF at the final spins| (*_vs_negf):")
    for (valve, protocol, k), v in conv_max.items():
        print(f"  {valve:8s} {protocol:10s} {k:11s} {v:.2e}")


def _read(h5):
    out = {}
    r = load_result(h5)
    for valve in VALVES:
        out[valve] = {"P_eq": r[f"{valve}/P_eq"],
                      "offset": int(r.group_attrs(valve)["N_l_offset"])}
        for protocol in PROTOCOLS:
            pre = f"{valve}/{protocol}/"
            names = [n for n in r.names if n.startswith(pre) and "/" not in n[len(pre):]]
            out[valve][protocol] = {n[len(pre):]: v for n, v in r.read(*names).items()}
    return out, r.attrs


def _profile(ax, data, V, title):
    for valve in VALVES:
        off = data[valve]["offset"]
        for protocol in PROTOCOLS:
            r = data[valve][protocol]
            i = np.flatnonzero(np.isclose(r["V"], V))
            if not len(i):
                continue
            Pz = r["polarization"][i[0], :, 2]
            N_l = np.arange(1, len(Pz) + 1) + off
            st = STYLE[(valve, protocol)]
            ax.plot(N_l, Pz, marker=st["marker"], ls=st["ls"], color=st["color"], ms=4,
                    label=f"{valve}, {protocol}")
            if valve == "extended" and "polarization_negf" in r:
                ax.plot(N_l, r["polarization_negf"][i[0], :, 2], ls=":", lw=1.5,
                        color=st["color"], label=f"{valve}, {protocol}: $t\\to\\infty$ (NEGF)")
    ax.set_title(title, loc="left")
    ax.set_xlabel("monolayer $N_l$")
    ax.set_ylabel("$P^z_{j_l}$")


def _edges(ax):
    for x in (SHIFT + 0.5, SHIFT + 12.5):
        ax.axvline(x, color="0.4", ls="--", lw=1)


def _map(fig, ax, ext, protocol, key, norm, title):
    r = ext[protocol]
    V = np.concatenate([[0.0], r["V"]])
    Pz = np.vstack([ext["P_eq"][None, :, 2], r[key][..., 2]])
    dv = np.diff(V)
    Ve = np.concatenate([[V[0] - dv[0] / 2], V[:-1] + dv / 2, [V[-1] + dv[-1] / 2]])
    Ne = np.arange(0.5, Pz.shape[1] + 1)
    im = ax.pcolormesh(Ne, Ve, Pz, cmap="RdBu_r", norm=norm, shading="flat")
    _edges(ax)
    ax.set_xlabel("monolayer $N_l$ (extended valve)")
    lab = "asymmetric $V'$" if protocol == "asymmetric" else "symmetric $V$"
    ax.set_ylabel(f"{lab} ($\\gamma$)")
    ax.set_title(title, loc="left", fontsize=10)
    cb = fig.colorbar(im, ax=ax)
    cb.set_label("$P^z_{j_l}$ (symlog; linear for |P| < 0.01)")


def plot(h5, png):
    plt = use_agg()
    from matplotlib.colors import SymLogNorm

    data, attrs = _read(h5)
    quick = " (--quick: not converged)" if attrs.get("quick") else ""
    T = attrs["t_end"]
    # ---------------- Fig. 20
    ext = data["extended"]
    has_negf = "polarization_negf" in ext["symmetric"]
    fig, axes = plt.subplots(3 if has_negf else 2, 2, figsize=(11, 12 if has_negf else 8))
    vmax = max(np.nanmax(np.abs(ext[pr]["polarization"][..., 2])) for pr in PROTOCOLS)
    norm = SymLogNorm(linthresh=0.01, vmin=-vmax, vmax=vmax, base=10)
    _map(fig, axes[0, 0], ext, "asymmetric", "polarization", norm,
         f"(a) extended valve, asymmetric drop (record {T:g})")
    _map(fig, axes[0, 1], ext, "symmetric", "polarization", norm,
         f"(b) extended valve, symmetric drop (record {T:g})")
    for ax, V, tag in ((axes[1, 0], 4.0, "(c)"), (axes[1, 1], 2.0, "(d)")):
        _profile(ax, data, V, f"{tag} $V = V' = {V:g}$")
        _edges(ax)
        ax.axhline(0, color="k", lw=0.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    if has_negf:
        _map(fig, axes[2, 0], ext, "asymmetric", "polarization_negf", norm,
             "(e) as (a), electrons at $t\\to\\infty$ (NEGF at the final spins)")
        _map(fig, axes[2, 1], ext, "symmetric", "polarization_negf", norm,
             "(f) as (b), electrons at $t\\to\\infty$ (NEGF at the final spins)")
    fig.suptitle(f"Electron spin polarization per monolayer (Eq. F1), $J_{{sd}}$ = "
                 f"{attrs['J_sd']:g}, steady state of the time evolution (mean over the last "
                 f"half of a record of {T:g} $\\hbar/\\gamma$);\ndashed lines: edges of the bare "
                 f"valve (plotted shifted by {SHIFT}); row V = 0: equilibrium{quick}",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96 if has_negf else 0.94))
    fig.savefig(png, dpi=110)
    plt.close(fig)
    # ---------------- Fig. 21
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.8))
    for ax, protocol, tag in ((axes[0], "asymmetric", "(a)"), (axes[1], "symmetric", "(b)")):
        for valve in VALVES:
            r = data[valve][protocol]
            st = STYLE[(valve, protocol)]
            for a, name in enumerate("xyz"):
                ax.plot(r["V"], r["J_right"][:, a], ls=st["ls"], marker=st["marker"], ms=4,
                        color=COMP[a], mfc="none" if valve == "extended" else COMP[a],
                        label=f"{name}: {valve}")
            if valve == "extended" and "J_right_negf" in r:
                for a, name in enumerate("xyz"):
                    ax.plot(r["V"], r["J_right_negf"][:, a], ls=":", lw=1.2, color=COMP[a],
                            marker="x", ms=4, label=f"{name}: extended, $t\\to\\infty$")
        ax.axhline(0, color="0.5", lw=0.5)
        ax.set_xlabel(("asymmetric $V'$" if protocol == "asymmetric" else "symmetric $V$")
                      + " ($\\gamma$)")
        ax.set_ylabel("spin current $\\mathcal{J}_r^{x,y,z}$ into right lead "
                      "($\\gamma$, $\\hbar = 1$)")
        ax.set_title(f"{tag} spin current, {protocol} drop", loc="left")
        ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.13))
        ax.grid(alpha=0.3)
    ax = axes[2]
    for valve in VALVES:
        for protocol in PROTOCOLS:
            r = data[valve][protocol]
            st = STYLE[(valve, protocol)]
            ax.plot(r["V"], r["I_right"], **st, ms=4, label=f"{valve}, {protocol}")
    ax.set_xlabel("$V$, $V'$ ($\\gamma$)")
    ax.set_ylabel("$\\mathcal{I}_r$ = Re Tr $\\Pi$ (Eq. 11) ($e\\gamma/\\hbar$)")
    ax.set_title("(c) charge current into right lead (= electron flux / 2)", loc="left",
                 fontsize=10)
    ax.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    ax.grid(alpha=0.3)
    fig.suptitle(f"Steady currents at the right valve-lead interface, $J_{{sd}}$ = "
                 f"{attrs['J_sd']:g}: bare 12x4 (solid, filled) vs extended 24x4 (dashed, open);"
                 f" dotted x: extended valve, electrons at $t\\to\\infty$ (NEGF at the final "
                 f"spins){quick}", fontsize=10)
    fig.tight_layout()
    png21 = os.path.join(os.path.dirname(png), os.path.basename(png).replace("fig20", "fig21"))
    fig.savefig(png21, dpi=110)
    plt.close(fig)
    print(f"fig20: also wrote {os.path.abspath(png21)}")


if __name__ == "__main__":
    sys.exit(figure_main("fig20", compute, plot, doc=__doc__,
                         quick_help="V = V' = 4; stage 1 40, stage 2 30 (pipeline test)"))
