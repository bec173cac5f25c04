#!/usr/bin/env python
"""Benchmark of the time-domain lead representations on paper 000's seed spin valve.

The 8-site chain of ``examples/valve_1d_tb.toml`` (3 moments along x, 2 normal sites, 3 along z;
hopping 1 eV; -J_sd sigma.M with J_sd = 0.1 eV; E_F = -1.6 eV; T = 300 K) with semi-infinite
tight-binding leads under a 0.25 V step on the left lead.  For each representation (``"extended"``
with L = n explicit/absorbing sites per lead; ``"modes"``, the same self-energy as auxiliary
modes; ``"lorentzian"`` with N_L fitted Lorentzians) it prints

* the error of the stationary current (extended: of the run's own stationary state, its
  current on the lead-device bonds; auxiliary modes: Landauer with the representation's
  self-energy, as their stationary state is not implemented) against Landauer with the exact
  self-energy,
* the number of unknowns (complex entries of the state), ms per right-hand side, ms per
  exponential-RK step and simulated fs per wall second (dt = 0.05 fs),
* beside a plain NumPy implementation of the same equations (extended: dense H, written here,
  its right-hand side checked against qcspin's to round-off; auxiliary modes: the dense
  reference operators.lorentzian.AuxiliaryModes, equal to qcspin's to round-off by
  tests/integrators/test_aux_modes.py), timed in the same run.

    python scripts/bench_leads.py [--sizes 20,40,60,80] [--repeat 10]

Prints a table (the README's "Lead representations" table comes from it).  Not a test.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from analysis.transport import landauer_current  # noqa: E402
from integrators import Simulation  # noqa: E402
from integrators.open_rhs import PadeLeads  # noqa: E402
from operators.leads import leads_from_config  # noqa: E402
from toolkit.config import config_from_dict, load_config, with_changes  # noqa: E402
from toolkit.device import device_from_config  # noqa: E402
from toolkit.units import HBAR_EV_FS  # noqa: E402

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                       "valve_1d_tb.toml")


def numpy_rhs(sim: Simulation):
    """A plain NumPy right-hand side of the same equations (dense H; paper 004 Eqs. 4, 9 for
    every wide-band coupling, the bias as a rigid shift of the explicit lead sites)."""
    H = sim.H.to_dense()
    rhs = sim.rhs
    lead_blocks = rhs.term(PadeLeads).blocks      # the wide-band couplings' Padé blocks
    blocks = [(b.I, b.g, b.beta, sim.poles[b.index], b.index) for b in lead_blocks]
    lay = sim.layout
    N = H.shape[0]
    gam = np.zeros(N)
    for I, g, *_ in blocks:
        gam[I] += g
    shifts = sim.problem.shifts
    mu0 = rhs.mu0

    def f(t, x):
        rho = lay.rho(x)
        mu = rhs.mu_of_t(t)
        Ht = H.copy()
        for k, sl in shifts:
            Ht[np.arange(sl.start, sl.stop), np.arange(sl.start, sl.stop)] += mu[k] - mu0[k]
        out = np.zeros_like(x)
        frho = lay.rho(out)
        X = Ht @ rho
        frho[...] = -1j * (X - X.conj().T)
        Heff = Ht - 0.5j * np.diag(gam)
        for (I, g, beta, poles, k), b in zip(blocks, lead_blocks):
            n = len(I)
            P = lay.view(x, b.name)
            fP = lay.view(out, b.name)
            C = np.zeros((N, n), complex)
            for p, (xi, eta) in enumerate(zip(poles.xi, poles.eta)):
                Pp = P[:, p * n:(p + 1) * n]
                chi = mu[k] + 1j * xi / beta
                src = np.zeros((N, n), complex)
                src[I, np.arange(n)] = -1j * eta * g / beta
                fP[:, p * n:(p + 1) * n] = -1j * (Heff @ Pp - chi * Pp) + src
                C += Pp
            C -= rho[:, I] * (0.5 * g)
            C[I, np.arange(n)] += 0.25 * g
            frho[:, I] += C
            frho[I, :] += C.conj().T
        return out
    return f


def exact_current(cfg) -> float:
    dev = device_from_config(cfg)
    left, right = leads_from_config(dev, cfg.leads)
    V = cfg.bias.V
    res = landauer_current(dev, (left.shifted(V), right), method="quad", rtol=1e-11,
                           breakpoints=np.linspace(-2.0, 2.0, 41))
    return res.current


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="20,40,60,80", help="L = n values (comma separated)")
    ap.add_argument("--repeat", type=int, default=10, help="right-hand sides per timing")
    args = ap.parse_args()
    base = load_config(EXAMPLE)
    base = with_changes(base, bias={"t_on": -1.0})          # stationary state under the bias
    I_exact = exact_current(base) / HBAR_EV_FS          # per fs, like the run's lead_current
    print(f"seed spin valve, 0.25 V: exact Landauer current (Re Tr Pi) = {I_exact:.10g} /fs")
    head = (f"{'representation':>22} {'unknowns':>9} {'error':>9} {'ms/RHS':>8} "
            f"{'ms/step':>8} {'fs/s':>7} {'NumPy ms/RHS':>13} {'max|dF|':>8}")
    print(head)
    sizes = [int(v) for v in args.sizes.split(",")]
    for L in sizes:
        _bench_aux(base, "modes", L, I_exact, args.repeat)
    for n in (20, 40, 80):
        _bench_aux(base, "lorentzian", n, I_exact, args.repeat)
    for L in sizes:
        cfg = config_from_dict({**_as_dict(base), "leads": [
            {**lead, "sites": L, "absorbing": L} for lead in _as_dict(base)["leads"]]})
        sim = Simulation(cfg)
        try:
            I = sim.observables(root=None)["lead_current"]
            err = abs(I[0] / I_exact - 1)
            F = sim.y.duplicate()
            sim.rhs.nonstiff(None, 0.0, sim.y, F)
            t0 = time.perf_counter()
            for _ in range(args.repeat):
                sim.rhs.nonstiff(None, 0.0, sim.y, F)
            ms_rhs = (time.perf_counter() - t0) / args.repeat * 1e3
            sim.rhs(None, 0.0, sim.y, F)
            f = numpy_rhs(sim)
            x = sim.y.getArray(readonly=True).copy()
            ref = f(0.0, x)
            dF = np.abs(ref - F.getArray(readonly=True)).max()
            t0 = time.perf_counter()
            reps = max(1, args.repeat // 5)
            for _ in range(reps):
                f(0.0, x)
            ms_np = (time.perf_counter() - t0) / reps * 1e3
            sim.step(1, record=False)
            t0 = time.perf_counter()
            n = 5
            sim.step(n, record=False)
            ms_step = (time.perf_counter() - t0) / n * 1e3
            dt_fs = cfg.time.dt
            print(f"{'extended L = n = ' + str(L):>22} {sim.layout.n_global:>9d} {err:9.1e} "
                  f"{ms_rhs:8.2f} {ms_step:8.1f} {dt_fs / ms_step * 1e3:7.3f} {ms_np:13.1f} "
                  f"{dF:8.1e}", flush=True)
            F.destroy()
        finally:
            sim.destroy()


def _bench_aux(base, rep: str, n: int, I_exact: float, repeat: int) -> None:
    from analysis.lead_check import _Represented

    keys = {"sites": n, "absorbing": n} if rep == "modes" else {"lorentzians": n}
    d = _as_dict(base)
    d["leads"] = [{**lead, "representation": rep, **keys} for lead in d["leads"]]
    d["electrons"]["initial"] = "partitioned"
    cfg = config_from_dict(d)
    sim = Simulation(cfg)
    try:
        dev = sim.device
        wrapped = [_Represented(l, cfg.bias.V if l.side == "left" else 0.0) for l in sim.leads]
        own = landauer_current(dev, tuple(wrapped), method="quad", rtol=1e-10,
                               breakpoints=np.linspace(-2.0, 2.0, 41)).current / HBAR_EV_FS
        err = abs(own / I_exact - 1)
        F = sim.y.duplicate()
        sim.rhs.nonstiff(None, 0.0, sim.y, F)
        t0 = time.perf_counter()
        for _ in range(repeat):
            sim.rhs.nonstiff(None, 0.0, sim.y, F)
        ms_rhs = (time.perf_counter() - t0) / repeat * 1e3
        sim.step(1, record=False)
        t0 = time.perf_counter()
        sim.step(5, record=False)
        ms_step = (time.perf_counter() - t0) / 5 * 1e3
        am = sim.rhs.dense_reference()
        st = am.partitioned(sim.state(root=None)[0])
        t0 = time.perf_counter()
        for _ in range(repeat):
            am.rhs(0.0, st)
        ms_np = (time.perf_counter() - t0) / repeat * 1e3
        label = f"{rep} {'L = n' if rep == 'modes' else 'N_L'} = {n}"
        print(f"{label:>22} {sim.layout.n_global:>9d} {err:9.1e} {ms_rhs:8.2f} {ms_step:8.1f} "
              f"{cfg.time.dt / ms_step * 1e3:7.3f} {ms_np:13.1f} {'-':>8}", flush=True)
        F.destroy()
    finally:
        sim.destroy()


def _as_dict(cfg) -> dict:
    import tomllib

    from toolkit.config import config_to_toml

    return tomllib.loads(config_to_toml(cfg))


if __name__ == "__main__":
    main()
