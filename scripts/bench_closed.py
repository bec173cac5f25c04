#!/usr/bin/env python
"""Benchmark of the isolated (closed) spin valve: qcspin (PETSc TS + sparse H) vs a plain dense
NumPy implementation of the same equations (written here, RK 3/8 loop in Python).

Prints RK steps per second and wall time per right-hand side for the 1D N = 20, 2D 12x4 and
3D 10x6x6 valves, and the maximum difference of the two trajectories as a correctness check.

    .venv/bin/python scripts/bench_closed.py [--steps N] [--systems 1d,2d,3d]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from integrators import Simulation
from toolkit import DeviceBuilder


def valve(size, pl, fl, J_sd=1.0):
    b = DeviceBuilder(size=size)
    b.add_layer("PL", pl, J_sd=J_sd, J_ex=-1.0, K=0.4, easy_axis=(1, 0, 0), spin=(1, 0, 0))
    b.add_layer("FL", fl, J_sd=J_sd, J_ex=-1.0, K=0.02, easy_axis=(0, 0, 1), spin=(0, 0, 1))
    b.set("time", dt=0.05)
    return b.finalized()


SYSTEMS = {
    "1d": ("1D N = 20", lambda: valve((20,), (0, 5), (15, 20))),
    "2d": ("2D 12x4", lambda: valve((12, 4), (0, 4), (8, 12))),
    "3d": ("3D 10x6x6", lambda: valve((10, 6, 6), (0, 3), (7, 10))),
}


class DenseBaseline:
    """Eqs. (1)-(3), (10) of paper 004 with dense NumPy arrays; RK 3/8 in Python."""

    def __init__(self, dev, rho0):
        N = dev.n_orbitals
        self.H = np.zeros((N, N), complex)
        for s in (0, 1):
            self.H[2 * dev.bonds[:, 0] + s, 2 * dev.bonds[:, 1] + s] = -dev.hopping
            self.H[2 * dev.bonds[:, 1] + s, 2 * dev.bonds[:, 0] + s] = -dev.hopping
        self.H[np.arange(N), np.arange(N)] = dev.mu_bar
        j = dev.spin_sites
        self.u, self.d = 2 * j, 2 * j + 1
        self.hj = 0.5 * dev.J_sd
        n = dev.n_spins
        self.J = np.zeros((n, n))
        a, b = dev.exchange_bonds.T
        self.J[a, b] = dev.J_ex
        self.J[b, a] = dev.J_ex
        self.K2 = 2 * dev.K[:, None]
        self.e = dev.easy_axis
        self.B = dev.B
        self.Jsd = dev.J_sd[:, None]
        self.rho = rho0.copy()
        self.S = dev.spins0.copy()
        self.n_rhs = 0

    def rhs(self, rho, S):
        self.n_rhs += 1
        H, u, d, hj = self.H, self.u, self.d, self.hj
        H[u, u] = hj * S[:, 2]
        H[d, d] = -hj * S[:, 2]
        H[u, d] = hj * (S[:, 0] - 1j * S[:, 1])
        H[d, u] = hj * (S[:, 0] + 1j * S[:, 1])
        X = H @ rho
        drho = -1j * (X - X.conj().T)
        s = np.stack([rho[u, d].real, -rho[u, d].imag, 0.5 * (rho[u, u] - rho[d, d]).real],
                     axis=1)
        g = (self.J @ S - self.B - self.K2 * np.sum(S * self.e, axis=1)[:, None] * self.e
             + self.Jsd * s)
        return drho, -np.cross(S, g)

    def step(self, dt):
        r, S = self.rho, self.S
        k1 = self.rhs(r, S)
        k2 = self.rhs(r + dt / 3 * k1[0], S + dt / 3 * k1[1])
        k3 = self.rhs(r + dt * (k2[0] - k1[0] / 3), S + dt * (k2[1] - k1[1] / 3))
        k4 = self.rhs(r + dt * (k1[0] - k2[0] + k3[0]), S + dt * (k1[1] - k2[1] + k3[1]))
        self.rho = r + dt / 8 * (k1[0] + 3 * k2[0] + 3 * k3[0] + k4[0])
        self.S = S + dt / 8 * (k1[1] + 3 * k2[1] + 3 * k3[1] + k4[1])


def timed(fn, min_time=1.0):
    """Run fn() repeatedly for at least min_time seconds; return seconds per call."""
    fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= min_time:
            return dt / n


def bench(key, steps, min_time, baseline=True):
    label, make = SYSTEMS[key]
    dev = make()
    sim = Simulation(dev)
    rho0, _ = sim.state(root=None)
    dt = sim.dt
    F = sim.y.duplicate()
    t_rhs_q = timed(lambda: sim.rhs(None, 0.0, sim.y, F), min_time)
    t0 = time.perf_counter()
    sim.step(steps, record=False)
    t_q = (time.perf_counter() - t0) / steps
    rho, S = sim.state(root=None)
    t_rhs_b = t_b = diff = float("nan")
    if baseline:
        base = DenseBaseline(dev, rho0)
        t_rhs_b = timed(lambda: base.rhs(base.rho, base.S), min_time)
        t0 = time.perf_counter()
        for _ in range(steps):
            base.step(dt)
        t_b = (time.perf_counter() - t0) / steps
        diff = max(np.abs(rho - base.rho).max(), np.abs(S - base.S).max())
    sim.destroy()
    return dict(label=label, N_s=dev.n_orbitals, spins=dev.n_spins, steps=steps,
                q_steps=1 / t_q, b_steps=1 / t_b, q_rhs=t_rhs_q * 1e6, b_rhs=t_rhs_b * 1e6,
                diff=diff)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=None, help="RK steps per system (default: by size)")
    p.add_argument("--systems", default="1d,2d,3d")
    p.add_argument("--min-time", type=float, default=1.0, help="seconds per RHS timing")
    p.add_argument("--no-baseline", action="store_true",
                   help="time qcspin only (e.g. under mpirun -n 2)")
    a = p.parse_args()
    from petsc4py import PETSc

    rank0 = PETSc.COMM_WORLD.getRank() == 0
    size = PETSc.COMM_WORLD.getSize()
    out = print if rank0 else (lambda *x, **k: None)
    out(f"# {size} MPI rank(s)")
    default_steps = {"1d": 2000, "2d": 500, "3d": 10}
    rows = []
    for key in a.systems.split(","):
        r = bench(key, a.steps or default_steps[key], a.min_time, not a.no_baseline)
        rows.append(r)
        out(f"{r['label']:<11} N_s={r['N_s']:4d}: qcspin {r['q_steps']:9.1f} steps/s "
              f"{r['q_rhs']:9.1f} us/RHS | NumPy dense {r['b_steps']:9.1f} steps/s "
              f"{r['b_rhs']:9.1f} us/RHS | speed-up {r['q_steps'] / r['b_steps']:6.2f}x "
              f"| max |diff| after {r['steps']} steps {r['diff']:.1e}", flush=True)
    out("\n| system | N_s | qcspin steps/s | qcspin us/RHS | NumPy steps/s | NumPy us/RHS "
        "| speed-up |")
    out("|---|---|---|---|---|---|---|")
    for r in rows:
        out(f"| {r['label']} | {r['N_s']} | {r['q_steps']:.1f} | {r['q_rhs']:.1f} | "
              f"{r['b_steps']:.1f} | {r['b_rhs']:.1f} | {r['q_steps'] / r['b_steps']:.2f}x |")


if __name__ == "__main__":
    main()
