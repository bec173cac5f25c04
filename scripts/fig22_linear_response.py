#!/usr/bin/env python
"""Fig. 22 of paper 004 (App. G): I-V characteristics at small voltages, symmetric vs asymmetric.

Open 2D valve of Sec. III B (Gamma = 1, T = 0.025, J_ex = -1, K_l = 0.4 along x, K_r = 0.02
along z, N_p = 30; ``toolkit.presets.paper_valve``):
(a) J_sd = 2, bare (12 x 4) and extended valve (24 x 4, six metallic monolayers on each side,
    App. F);  (b) J_sd = 1 and 3, bare valve.
Stage 1 (V = 0, spins released) once per valve, then one bias quench per V: symmetric drop
mu_l = -mu_r = V/2, asymmetric drop mu_l = V, mu_r = 0, V = 0.02 ... 2 (10 points, roughly
log-spaced).  Both magnetic layers carry an extra Gilbert damping alpha = 0.5: it does not change
a stationary state, only shortens the approach (only steady states are used here).  Steady state
= mean over whole free-layer periods in the last half of the record (analysis.quench).

Plotted current: the paper's Eq. (11), I = Re Tr Pi_l = ``lead_current`` of the left lead, in
units gamma/hbar (e = 1); this is HALF the number of electrons passing per time unit hbar/gamma
(README "Factor 2"; the Landauer particle current is 2 I).  Compared with
* the linear-response line I = G V / 2, with the particle conductance
  G = (1/2pi) int Theta(eps) (-df/deps) deps (e^2/h units: G = Theta(E_F)/2pi at T = 0) from the
  transmission Theta (Eq. 16) at the equilibrium spins (stage-1 checkpoint), T = 0.025; the same
  G from a Landauer current at V = 1e-4 is stored as a cross-check (``G_check``);
* thin lines: the full Landauer current (1/2)(1/2pi) int Theta (f_l - f_r) at the frozen
  equilibrium spins, for each protocol (differs from the QC points only through the
  bias-induced spin reorientation).
Bottom row: I / (G V / 2), where 1 is linear response.

Convergence checks (printed): every point is analysed a second time from the first 2/3 of its
record (record 333 instead of 500; ``conv_I``, relative change of I), and I is compared with
the Landauer current at the final spins of the run (``I_landauer_final``, the t -> infinity
limit of the electrons for those spins).

    mpirun -n 2 python scripts/fig22_linear_response.py [--quick] [--outdir DIR] [--overwrite]
                                                        [--plot-only]

Full: stage 1 800, stage 2 500 time units (hbar/gamma), dt = 0.2.  --quick: J_sd = 2 bare and
extended only, V = 0.05, 0.5, stage 1 80, stage 2 60 (a smoke test, not converged, ~30 s).
Runs: DIR/fig22_runs/<case>/J<J_sd>_<protocol>/V_*.h5 (resumable); data DIR/fig22.h5; plot
DIR/fig22.png.  The full run took 24 min under mpirun -n 2 on 2 cores shared with another job.

Measured (full run): record check max |I(T)/I(2T/3) - 1| <= 2.2e-3 (J_sd = 3 asymmetric; <= 7e-4
otherwise); |I / I_Landauer(final spins) - 1| <= 8e-4.  At V = 0.02, I/(GV/2) = 0.9995 / 0.998
(J_sd = 2 bare, sym / asym), 1.003 / 1.011 (extended), 1.0004 / 1.0017 (J_sd = 1), 1.0000 /
0.9998 (J_sd = 3).  G = 0.718, 0.393, 0.586, 0.317 e^2/h (Theta(E_F) = 4.71, 1.95, 3.59, 2.01).

Note on the extended valve: it has quasi-bound electron states (lifetimes up to ~2e5, see
scripts/fig20_21_interfaces.py) whose occupation never reaches its t -> infinity value in a
run; they carry almost no current (the run agrees with the Landauer current at its final spins
to 8e-4), so the I-V curves are not affected.
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
from toolkit.presets import paper_valve  # noqa: E402
from toolkit.results import load_result  # noqa: E402

DAMPING = 0.5
PROTOCOLS = ("symmetric", "asymmetric")
# case: (J_sd, paper_valve keywords, panel)
CASES = {"J2_bare": (2.0, {}, "a"), "J2_extended": (2.0, {"extended": True}, "a"),
         "J1_bare": (1.0, {}, "b"), "J3_bare": (3.0, {}, "b")}
STYLE = {("J2_bare", "symmetric"): dict(color="tab:red", marker="o"),
         ("J2_bare", "asymmetric"): dict(color="tab:blue", marker="s"),
         ("J2_extended", "symmetric"): dict(color="tab:orange", marker="o"),
         ("J2_extended", "asymmetric"): dict(color="k", marker="s"),
         ("J1_bare", "symmetric"): dict(color="tab:green", marker="o"),
         ("J1_bare", "asymmetric"): dict(color="tab:green", marker="s", mfc="none"),
         ("J3_bare", "symmetric"): dict(color="tab:purple", marker="o"),
         ("J3_bare", "asymmetric"): dict(color="tab:purple", marker="s", mfc="none")}
LABEL = {"J2_bare": "$J_{sd}$=2 bare", "J2_extended": "$J_{sd}$=2 extended",
         "J1_bare": "$J_{sd}$=1 bare", "J3_bare": "$J_{sd}$=3 bare"}
CHECK = 2.0 / 3.0


def plan(quick: bool) -> dict:
    if quick:
        return dict(cases=["J2_bare", "J2_extended"], grid=np.array([0.05, 0.5]),
                    stage1=80.0, t_end=60.0, V_line=np.geomspace(0.01, 2.5, 12))
    return dict(cases=list(CASES), stage1=800.0, t_end=500.0,
                grid=np.array([0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0]),
                V_line=np.geomspace(0.01, 2.5, 60))


def landauer(J_sd: float, kw: dict, stage1: str, V_line: np.ndarray) -> dict:
    """Linear-response conductance and frozen-spin Landauer I-V at the equilibrium spins of
    ``stage1``.  Serial (PETSc.COMM_SELF)."""
    from analysis.transport import landauer_current, transmission, transport_leads
    from toolkit.device import device_from_config

    from petsc4py import PETSc

    cfg = paper_valve(J_sd, **kw)
    dev = device_from_config(cfg)
    leads = transport_leads(cfg, dev).leads          # mu = 0 on both sides (no bias)
    S = load_result(stage1).checkpoint()["spins"]
    T = leads[0].temperature
    beta = 1.0 / T
    e = np.arange(-30 * T, 30 * T + 1e-12, T / 40)  # -f' < 4e-13 outside
    tr = transmission(dev, leads, e, spins=S, comm=PETSc.COMM_SELF, dos=False)
    mdf = beta / (4.0 * np.cosh(0.5 * beta * e) ** 2)
    G = float(np.trapz(tr.theta * mdf, e) / (2 * np.pi))   # particle conductance (e^2/h)
    d = 1e-4
    G_check = landauer_current(dev, leads, mu_l=d / 2, mu_r=-d / 2, spins=S,
                               comm=PETSc.COMM_SELF).particle / d
    curves = {}
    for protocol in PROTOCOLS:
        mus = [(v / 2, -v / 2) if protocol == "symmetric" else (v, 0.0) for v in V_line]
        curves[protocol] = np.array([landauer_current(dev, leads, mu_l=a, mu_r=b, spins=S,
                                                      comm=PETSc.COMM_SELF).current
                                     for a, b in mus])
    theta0 = float(np.interp(0.0, e, tr.theta))
    return dict(G=G, G_check=G_check, theta_EF=theta0, curves=curves)


def final_landauer(path: str) -> float:
    """Landauer current (Eq. 11 normalisation) at the final spins and lead mu of the quench
    file ``path``: the t -> infinity limit of the electrons for those spins.  Serial."""
    from analysis.transport import landauer_current, transport_leads
    from toolkit.device import device_from_config

    from petsc4py import PETSc

    r = load_result(path)
    cfg, S, mu = r.config, r.checkpoint()["spins"], r["lead_mu", -1]
    dev = device_from_config(cfg)
    leads = transport_leads(cfg, dev).leads
    return landauer_current(dev, leads, mu_l=mu[0], mu_r=mu[1], spins=S,
                            comm=PETSc.COMM_SELF).current


def compute(h5, args, comm):
    p = plan(args.quick)
    runs = os.path.join(args.outdir, "fig22_runs" + ("_quick" if args.quick else ""))
    rank0 = comm.getRank() == 0
    grids = {pr: p["grid"] for pr in PROTOCOLS}

    def report(i, v, obs, wall):
        print(f"  V = {v:<6g} I_l = {obs['lead_current'][0]:.5e} ({wall:.0f} s)", flush=True)

    dirs = {}
    for case in p["cases"]:
        J_sd, kw, _ = CASES[case]
        if rank0:
            print(f"fig22: {case}: stage 1 {p['stage1']:g}, stage 2 {p['t_end']:g}, "
                  f"{2 * len(p['grid'])} quenches", flush=True)
        dirs[case] = quench_sweeps(os.path.join(runs, case), J_sd, grids,
                                   stage1_time=p["stage1"], t_end=p["t_end"], comm=comm,
                                   config_kw={**kw, "damping": DAMPING}, progress=report)
    if not rank0:
        return
    worst, worst_final = {}, {}
    data: dict = {"V_line": (p["V_line"], "energy (gamma); bias of the frozen-spin Landauer "
                                          "curves", None)}
    groups: dict = {}
    for case, dd in dirs.items():
        J_sd, kw, panel = CASES[case]
        stage1 = os.path.join(runs, case, f"J{J_sd:g}_stage1.h5")
        lan = landauer(J_sd, kw, stage1, p["V_line"])
        groups[case] = dict(J_sd=J_sd, extended=bool(kw.get("extended", False)), panel=panel)
        for k, u in (("G", "e^2/h: particle conductance (1/2pi) int Theta (-f')"),
                     ("G_check", "e^2/h: Landauer particle current at V = 1e-4, / V"),
                     ("theta_EF", "dimensionless: Theta(0) at the equilibrium spins")):
            data[f"{case}/{k}"] = (lan[k], u, None)
        print(f"fig22: {case}: Theta(E_F) = {lan['theta_EF']:.6f}, G = {lan['G']:.8f} e^2/h "
              f"(check at V = 1e-4: {lan['G_check']:.8f})")
        for protocol, d in dd.items():
            tab = analyze_sweep(d, overwrite=True)
            gp = f"{case}/{protocol}"
            I, I_right = tab["lead_current"][:, 0], -tab["lead_current"][:, 1]
            I_final = np.array([final_landauer(os.path.join(d, f"V_{V:+.6g}.h5"))
                                for V in tab["V"]])
            data.update({
                f"{gp}/V": (tab["V"], "energy (gamma)", None),
                f"{gp}/I": (I, "gamma/hbar: Re Tr Pi_l (Eq. 11), from the left lead", None),
                f"{gp}/I_right": (I_right, "gamma/hbar: -Re Tr Pi_r, into the right lead",
                                  None),
                f"{gp}/I_landauer_frozen": (lan["curves"][protocol], "gamma/hbar: Eq. 11 "
                                            "normalisation, equilibrium spins, at V_line",
                                            None),
                f"{gp}/I_landauer_final": (I_final, "gamma/hbar: Eq. 11 normalisation, "
                                           "Landauer at the final spins of each run "
                                           "(t -> infinity of the electrons)", None)})
            worst_final[(case, protocol)] = float(np.max(np.abs(I / I_final - 1)))
            rel = []
            for V in tab["V"]:
                path = os.path.join(d, f"V_{V:+.6g}.h5")
                a = analyze_quench(path).lead_current[0]
                b = analyze_quench(path, t_max=CHECK * p["t_end"]).lead_current[0]
                rel.append(abs(a - b) / abs(a))
            data[f"{gp}/conv_I"] = (np.array(rel), "relative |I(record T) - I(record 2T/3)| "
                                                   "/ I", None)
            worst[(case, protocol)] = max(rel)
            lin = tab["lead_current"][:, 0] / (0.5 * lan["G"] * tab["V"])
            print(f"  {protocol:10s} I/(GV/2) at V = {tab['V'][0]:g}: {lin[0]:.5f}, at "
                  f"V = {tab['V'][-1]:g}: {lin[-1]:.5f}; left/right steady mismatch "
                  f"{np.max(np.abs(I - I_right)):.1e}")
    write_table(h5, data, dict(damping=DAMPING, stage1_time=p["stage1"], t_end=p["t_end"],
                               dt=0.2, runs=os.path.abspath(runs), quick=bool(args.quick),
                               units="natural: energy = hopping gamma, time = hbar/gamma, "
                                     "e = hbar = 1",
                               current="I = Re Tr Pi_l (paper Eq. 11) = half the electron flux",
                               description=__doc__.split("\n\n")[0]),
                kind="figure", group_attrs=groups, overwrite=args.overwrite)
    print("fig22: max over V of |I(T) - I(2T/3)| / I (record check) and of "
          "|I / I_Landauer(final spins) - 1|:")
    for (case, protocol), v in worst.items():
        print(f"  {case:12s} {protocol:10s} {v:.2e}  {worst_final[(case, protocol)]:.2e}")


def plot(h5, png):
    plt = use_agg()
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5), sharex=True,
                             gridspec_kw=dict(height_ratios=[3, 2]))
    r = load_result(h5)
    quick = " (--quick: not converged)" if r.attrs.get("quick") else ""
    Vl = r["V_line"]
    for case in CASES:
        if f"{case}/G" not in r:
            continue
        col = "ab".index(r.group_attrs(case)["panel"])
        top, bot = axes[0, col], axes[1, col]
        G = float(r[f"{case}/G"])
        lc = STYLE[(case, "symmetric")]["color"]
        top.plot(Vl, 0.5 * G * Vl, color=lc, lw=1.0, alpha=0.6,
                 label=f"{LABEL[case]}: $GV/2$, $G$ = {G:.3f} $e^2/h$")
        for protocol in PROTOCOLS:
            gp = f"{case}/{protocol}"
            st = STYLE[(case, protocol)]
            V, I, frozen = r[f"{gp}/V"], r[f"{gp}/I"], r[f"{gp}/I_landauer_frozen"]
            ls = ":" if protocol == "symmetric" else "--"
            top.plot(Vl, frozen, ls=ls, color=st["color"], lw=0.8)
            bot.plot(Vl, frozen / (0.5 * G * Vl), ls=ls, color=st["color"], lw=0.8)
            top.plot(V, I, ls="none", ms=6, **st, label=f"{LABEL[case]}, {protocol}")
            bot.plot(V, I / (0.5 * G * V), ls="none", ms=6, **st)
    for col, tag, title in ((0, "(a)", "$J_{sd}$ = 2: bare 12x4 and extended 24x4 valve"),
                            (1, "(b)", "bare 12x4 valve, $J_{sd}$ = 1 and 3")):
        top, bot = axes[0, col], axes[1, col]
        top.set_xscale("log")
        top.set_yscale("log")
        top.set_ylabel("$\\mathcal{I}$ = Re Tr $\\Pi_l$ (Eq. 11) ($e\\gamma/\\hbar$)")
        top.set_title(f"{tag} {title}", loc="left", fontsize=10)
        if top.get_legend_handles_labels()[0]:
            top.legend(fontsize=7, loc="upper left")
        else:
            top.text(0.5, 0.5, "not computed (--quick)", ha="center", transform=top.transAxes)
        top.grid(alpha=0.3, which="both")
        bot.axhline(1.0, color="0.4", lw=0.8)
        bot.set_xlabel("$V$ (symmetric) or $V'$ (asymmetric) ($\\gamma$)")
        bot.set_ylabel("$\\mathcal{I}\\,/\\,(GV/2)$")
        bot.grid(alpha=0.3, which="both")
    fig.suptitle("Small-bias I-V: quantum-classical steady states (points), linear response "
                 "$GV/2$ (solid),\nLandauer current at the frozen equilibrium spins (dotted: "
                 f"symmetric, dashed: asymmetric){quick}", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(figure_main("fig22", compute, plot, doc=__doc__,
                         quick_help="J_sd = 2 bare + extended, V = 0.05, 0.5, short stages"))
