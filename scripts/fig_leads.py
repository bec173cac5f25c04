#!/usr/bin/env python
"""Validation figure of the finite-band lead representations (paper 000's seed spin valve).

The 8-site valve of ``examples/valve_1d_tb.toml`` (tight-binding leads, E_F = -1.6 eV,
T = 300 K) starts in equilibrium and its left lead steps by 0.25 V at t = 0 (band and mu
together).  (a) The current into the valve from the left lead for the exact evolution of the
closed chain with 300 explicit sites per lead (reflections return only after ~150 fs) and for
the three time-domain representations: "extended" (L = 40 explicit sites with graded
absorbers), "modes" (the same self-energy as auxiliary modes) and "lorentzian" (40 fitted
Lorentzians); (b) their deviation from the exact current; (c) the error of the stationary
current (Landauer with each representation's self-energy against the exact lead) against the
size L or N_L of the representation.

    python scripts/fig_leads.py [--quick] [--outdir DIR] [--overwrite]

Writes DIR/fig_leads.h5 and DIR/fig_leads.png (default DIR = results/figures).  --quick: t up
to 10 fs and fewer sizes.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402
from scipy.special import expit  # noqa: E402

from toolkit.io import write_table  # noqa: E402
from toolkit.units import HBAR_EV_FS  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "valve_1d_tb.toml")


def closed_chain(times_fs, cfg, L=300):
    """Currents into the valve from the left lead (Re Tr Pi convention, per fs) for the closed
    chain lead(L) + valve + lead(L), thermal at E_F before, left lead shifted by V at t = 0."""
    from operators.hamiltonian import dense_hamiltonian
    from toolkit.device import device_from_config

    Hd = dense_hamiltonian(device_from_config(cfg))
    n_dev = Hd.shape[0]
    N = 4 * L + n_dev
    H = np.zeros((N, N), complex)
    o = 2 * L
    H[o:o + n_dev, o:o + n_dev] = Hd
    for s in (0, 1):
        for i in list(range(L - 1)) + list(range(L + n_dev // 2, 2 * L + n_dev // 2 - 1)):
            H[2 * i + s, 2 * i + 2 + s] = H[2 * i + 2 + s, 2 * i + s] = -1.0
        for a, b in ((L - 1, L), (L + n_dev // 2 - 1, L + n_dev // 2)):
            H[2 * a + s, 2 * b + s] = H[2 * b + s, 2 * a + s] = -1.0
    lead = cfg.leads[0]
    w, U = np.linalg.eigh(H)
    rho0 = (U * expit(-(w - lead.mu) / lead.temperature)) @ U.conj().T
    H[np.arange(2 * L), np.arange(2 * L)] += cfg.bias.V
    w1, U1 = np.linalg.eigh(H)
    R = U1.conj().T @ rho0 @ U1
    a, b = 2 * (L - 1), 2 * L
    out = []
    for t in np.asarray(times_fs) / HBAR_EV_FS:
        ph = np.exp(-1j * w1 * t)
        r = (U1[a:a + 2] * ph) @ R @ (U1[b:b + 2] * ph).conj().T
        out.append(-np.trace(r).imag / HBAR_EV_FS)
    return np.array(out)


def run(cfg, times_fs):
    from integrators import Simulation

    sim = Simulation(cfg)
    try:
        dt = cfg.time.dt
        per = int(round((times_fs[1] - times_fs[0]) / dt))
        cur = [sim.observables(root=0)["lead_current"][0]]
        t0 = time.perf_counter()
        for _ in times_fs[1:]:
            sim.step(per, record=False)
            cur.append(sim.observables(root=0)["lead_current"][0])
        return np.array(cur), time.perf_counter() - t0, sim.layout.n_global
    finally:
        sim.destroy()


def stationary_errors(cfg, sizes, rep):
    from analysis.lead_check import _Represented
    from analysis.transport import landauer_current
    from operators.leads import leads_from_config
    from toolkit.device import device_from_config

    dev = device_from_config(cfg)
    kw = dict(method="quad", rtol=1e-10, breakpoints=np.linspace(-2, 2, 41))
    left, right = leads_from_config(dev, cfg.leads)
    V = cfg.bias.V
    exact = landauer_current(dev, (left.shifted(V), right), **kw).current
    errs = []
    for n in sizes:
        keys = ({"sites": n, "absorbing": n} if rep != "lorentzian" else {"lorentzians": n})
        l2, r2 = (l.replace(representation=rep, **keys) for l in (left, right))
        cur = landauer_current(dev, (_Represented(l2, V), _Represented(r2)), **kw).current
        errs.append(abs(cur / exact - 1))
    return np.array(errs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--outdir", default=os.path.join(ROOT, "results", "figures"))
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args()
    import toolkit  # noqa: F401  (PETSc)

    from petsc4py import PETSc

    if PETSc.COMM_WORLD.getSize() > 1:
        print("fig_leads: runs on one rank (its runs are small); start it without mpirun",
              file=sys.stderr)
        return 2
    h5path = os.path.join(args.outdir, "fig_leads.h5")
    png = os.path.join(args.outdir, "fig_leads.png")
    for p in (h5path, png):
        if os.path.exists(p) and not args.overwrite:
            print(f"fig_leads: '{p}' exists; use --overwrite", file=sys.stderr)
            return 2
    os.makedirs(args.outdir, exist_ok=True)
    import dataclasses

    from toolkit.config import load_config, with_changes

    base = with_changes(load_config(EXAMPLE), bias={"t_on": 0.0})
    t_max = 10.0 if args.quick else 60.0
    times = np.arange(0.0, t_max + 1e-9, 0.5)
    ref = closed_chain(times, base)
    reps = {"extended L = 40": {"representation": "extended", "sites": 40, "absorbing": 40},
            "modes L = 40": {"representation": "modes", "sites": 40, "absorbing": 40},
            "lorentzian N_L = 40": {"representation": "lorentzian", "lorentzians": 40}}
    curves = {}
    for label, keys in reps.items():
        cfg = dataclasses.replace(base, leads=tuple(l.with_options(**keys)
                                                    for l in base.leads))
        cur, wall, n = run(cfg, times)
        curves[label] = cur
        print(f"fig_leads: {label}: {n} unknowns, {wall:.1f} s for {t_max:g} fs, max |dI| = "
              f"{np.abs(cur - ref).max():.2e} /fs", flush=True)
    sizes = [20, 40] if args.quick else [20, 40, 60, 80]
    errs = {rep: stationary_errors(base, sizes, rep) for rep in ("extended", "lorentzian")}
    data = {"time": (times, "fs", None), "exact": (ref, "1/fs", None),
            **{f"current/{label}": (cur, "1/fs", None) for label, cur in curves.items()},
            "sizes": np.array(sizes),
            **{f"stationary_error/{rep}": e for rep, e in errs.items()}}
    write_table(h5path, data, {"description": __doc__.split("\n\n")[1]}, kind="figure",
                overwrite=args.overwrite)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15, 4.3))
    ax[0].plot(times, ref, "k-", lw=2.5, label="closed chain, 300 sites per lead (exact)")
    for (label, cur), st in zip(curves.items(), ("--", ":", "-.")):
        ax[0].plot(times, cur, st, lw=1.5, label=label)
        ax[1].semilogy(times[1:], np.abs(cur - ref)[1:] + 1e-16, st, label=label)
    ax[0].set(xlabel="t [fs]", ylabel="I_left = Re Tr Pi [1/fs]",
              title="(a) current into the valve after a 0.25 V step")
    ax[0].legend(fontsize=8)
    ax[1].set(xlabel="t [fs]", ylabel="|I - I_exact| [1/fs]", title="(b) deviation from exact")
    ax[1].legend(fontsize=8)
    ax[2].loglog(sizes, errs["extended"], "o-", label="extended = modes (size L = n)")
    ax[2].loglog(sizes, errs["lorentzian"], "s-", label="lorentzian (size N_L)")
    ax[2].set(xlabel="L or N_L", ylabel="relative error of the stationary current",
              title="(c) stationary current vs exact lead")
    ax[2].set_xticks(sizes)
    ax[2].set_xticklabels([str(n) for n in sizes])
    ax[2].minorticks_off()
    ax[2].legend(fontsize=8)
    fig.suptitle("Finite-band leads in the time domain: paper 000's seed valve, E_F = -1.6 eV, "
                 "300 K")
    fig.tight_layout()
    fig.savefig(png + ".partial.png", dpi=110)
    os.replace(png + ".partial.png", png)
    print(f"fig_leads: wrote {h5path} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
