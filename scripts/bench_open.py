#!/usr/bin/env python
"""Benchmark of the OPEN spin valve (paper 004, Sec. III B; Eqs. 4, 8, 9, 10): qcspin (PETSc TS,
exponential RK4 'expint' at dt = 0.2) vs plain NumPy implementations of the same equations written
here (dense H, rho and one Pi_{l,p} per pole and lead, Python loop over the poles, classic explicit
RK4 at the largest stable step).

Systems: the open 2D valve ``examples/valve_2d_open.toml`` (12x4, N_p = 30, Gamma = 1, T = 0.025,
J_sd = 2) and the same valve in 1D (N = 20: PL 5, SL 10, FL 5 sites; built from the same file with
``apply_overrides``).  Spins move; the run starts from the stationary state at V = 0 and the
symmetric bias V = 1 is switched on at t = 0.

Methods (rows of the table):
  qcspin expint     the default of open junctions (Krogstad exponential RK4, dt = 0.2)
  qcspin RK3/8      the same code with ``solver.stiff = "none"`` at dt = 0.04 (explicit limit)
  NumPy dense       Pi_{l,p} as N_s x N_s arrays, Gamma_l as N_s x N_s matrices (Eq. 9 literally)
  NumPy columns     Pi_{l,p} as N_s x n_l arrays (only the interface columns are nonzero)
Both NumPy codes loop over the poles in Python and use classic RK4 at dt = 0.04 (the pole decay
xi_max/beta = 58.3 makes explicit RK4 unstable above dt = 2.785/58.3 = 0.048).

Correctness: every method is run to t = --t-check (default 5) and its lead currents (Re Tr Pi_l,
Eq. 11), lead spin currents (Eq. 12), layer magnetizations and full rho are compared with a
reference run of qcspin with the plain explicit RK 3/8 at dt = 0.02 (``solver.stiff = "none"``);
without --quick the reference is itself checked against dt = 0.01.  The NumPy right-hand side is
also checked to vanish at qcspin's stationary state (V = 0), an independent check of the signs
and factors of Eqs. 4, 8, 9.

Timing: steps of the timed span max(--t-sim, --t-check), from t = 0 (the check at t-check is
taken along the way, outside the timer); ms per right-hand side on the initial state (for qcspin
the function its TS calls: ``CoupledRHS.nonstiff`` for expint, ``CoupledRHS.__call__`` for
RK 3/8).
Speed-up = qcspin expint's simulated time per wall second / the method's.  BLAS threads are set
to 1 (unless OMP/OPENBLAS_NUM_THREADS are set), so both sides use one core.

    .venv/bin/python scripts/bench_open.py [--quick] [--t-sim T] [--systems 1d,2d]
                                           [--json out.json [--overwrite]] [--profile]
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import pstats  # noqa: E402
import time  # noqa: E402
import tomllib  # noqa: E402

import numpy as np  # noqa: E402

import toolkit  # noqa: E402,F401  (initialises complex PETSc)
from integrators import Simulation  # noqa: E402
from operators.pade import pade_poles  # noqa: E402
from toolkit.config import config_from_dict, with_changes  # noqa: E402
from toolkit.device import device_from_config  # noqa: E402
from toolkit.overrides import apply_overrides  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_2D = os.path.join(ROOT, "examples", "valve_2d_open.toml")

DT_EXPINT = 0.2     # the example's step (expint is stable to ~0.33 here)
DT_EXPLICIT = 0.04  # explicit RK4 / RK 3/8: stable below 2.785 beta / xi_max = 0.048
DT_REF = 0.02       # reference: qcspin, plain RK 3/8


def _config_dict() -> dict:
    with open(CONFIG_2D, "rb") as fh:
        return tomllib.load(fh)


def config_2d():
    return config_from_dict(_config_dict())


def config_1d():
    """The 2D file's valve in 1D: N = 20, PL [0, 5), SL [5, 15), FL [15, 20); same leads, bias,
    J_sd, anisotropies and poles (validated like a config file)."""
    d = apply_overrides(_config_dict(), [
        "lattice.size=[20]", "layers.0.columns=[0, 5]", "layers.1.columns=[5, 15]",
        "layers.2.columns=[15, 20]", 'name="1D open spin valve N = 20, symmetric bias V = 1"'])
    return config_from_dict(d)


SYSTEMS = {"1d": ("1D N = 20", config_1d), "2d": ("2D 12x4", config_2d)}


def n_steps(t: float, dt: float) -> int:
    n = int(round(t / dt))
    if n < 1 or abs(n * dt - t) > 1e-9 * max(1.0, t):
        raise SystemExit(f"time {t} is not allowed: it must be a positive multiple of dt = {dt} "
                         f"(use multiples of {DT_EXPINT})")
    return n


def timed(fn, min_time: float) -> float:
    """Run fn() repeatedly for at least min_time seconds (after one warm-up call); s per call."""
    fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - t0
        if el >= min_time:
            return el / n


# ================================================================================ baseline
class PlainOpen:
    """Paper 004, Eqs. (1)-(4), (8)-(10) with plain NumPy; classic RK4.

        d rho/dt      = -i [H, rho] + sum_l (Pi_l + Pi_l^dag)                         (4)
        Pi_l          = (1 - 2 rho) Gamma_l / 4 + sum_p Pi_{l,p}                      (8)
        d Pi_{l,p}/dt = -i eta_p/beta_l Gamma_l - i (H - i Gamma/2 - chi_{l,p}^+) Pi_{l,p}   (9)
        chi_{l,p}^+   = mu_l + i xi_p/beta_l
        dS_j/dt       = [-S_j x g_j + alpha S_j x (S_j x g_j)/|S_j|]/(1 + alpha^2)     (10)
        g_j = sum_k J_jk S_k - B - 2 K_j (S_j.e_j) e_j + J_sd s_j,  s_j = Tr(rho_j sigma)/2

    ``compact=False``: Pi_{l,p} and Gamma_l are full N_s x N_s arrays (what Eq. 9 says);
    ``compact=True``: Pi_{l,p} is N_s x n_l (its nonzero interface columns), Gamma_l likewise.
    The state is one flat complex vector [rho | Pi_{l,p} for all l, p | spins (real part)].
    Leads, interface orbitals and the biased mu_l are taken from the config, not from qcspin;
    only the Padé table (xi_p, eta_p) and the initial state are shared.
    """

    def __init__(self, dev, cfg, poles, rho0, blocks0, S0, compact: bool) -> None:
        N = dev.n_orbitals
        self.N, self.compact = N, compact
        H = np.zeros((N, N), complex)
        for s in (0, 1):
            H[2 * dev.bonds[:, 0] + s, 2 * dev.bonds[:, 1] + s] = -dev.hopping
            H[2 * dev.bonds[:, 1] + s, 2 * dev.bonds[:, 0] + s] = -dev.hopping
        H[np.arange(N), np.arange(N)] = dev.mu_bar
        self.H = H
        j = dev.spin_sites
        self.u, self.d, self.hj = 2 * j, 2 * j + 1, 0.5 * dev.J_sd
        n = dev.n_spins
        self.J = np.zeros((n, n))
        a, b = dev.exchange_bonds.T
        self.J[a, b] = dev.J_ex
        self.J[b, a] = dev.J_ex
        self.K2, self.e, self.B = 2 * dev.K[:, None], dev.easy_axis, dev.B
        self.Jsd = dev.J_sd[:, None]
        self.alpha = dev.damping[:, None]
        self.moving = ~dev.frozen[:, None]
        # leads (Eqs. 5-9, wide band): Gamma_l = gamma_l on both spin orbitals of the end face
        b = cfg.bias
        if b.protocol not in ("symmetric", "asymmetric", "none"):
            raise ValueError(f"bias protocol {b.protocol!r} not supported by the baseline")
        x = dev.coords[:, 0]
        self.eye = np.eye(N)
        G = np.zeros((N, N))
        self.leads = []
        self.xi, self.eta, Np = poles.xi, poles.eta, poles.n_poles
        offset = N * N
        for lc in cfg.leads:
            if lc.model != "wide-band" or np.ndim(lc.gamma):
                raise SystemExit(f"bench_open: the NumPy baseline takes wide-band leads with "
                                 f"one gamma; lead {lc.name!r} is {lc.model} (gamma "
                                 f"{lc.gamma!r}); use scripts/bench_leads.py for other leads")
            sites = np.flatnonzero(x == (0 if lc.side == "left" else dev.size[0] - 1))
            I = np.stack([2 * sites, 2 * sites + 1], axis=1).ravel()
            Gl = np.zeros((N, N))
            Gl[I, I] = lc.gamma
            G += Gl
            shift = {"symmetric": 0.5 * b.V if lc.side == "left" else -0.5 * b.V,
                     "asymmetric": b.V if lc.side == "left" else 0.0, "none": 0.0}[b.protocol]
            beta = 1.0 / lc.temperature
            m = len(I) if compact else N
            L = dict(I=I, gamma=lc.gamma, beta=beta, mu0=lc.mu, mu=lc.mu + shift, m=m,
                     G=Gl[:, I] if compact else Gl, off=offset, size=Np * N * m)
            L["src"] = [(-1j * self.eta[p] / beta) * L["G"] for p in range(Np)]
            self.leads.append(L)
            offset += L["size"]
        self.G = G
        self.so = offset
        self.Np = Np
        # initial state: qcspin's blocks (N_s, N_p n_l), column p n_l + k -> Pi_{l,p}[:, I[k]]
        y = np.zeros(offset + 3 * n, complex)
        y[:N * N] = rho0.ravel()
        for L, blk in zip(self.leads, blocks0):
            n_l = len(L["I"])
            P = blk.reshape(N, Np, n_l).transpose(1, 0, 2)
            view = y[L["off"]:L["off"] + L["size"]].reshape(Np, N, L["m"])
            if compact:
                view[...] = P
            else:
                view[:, :, L["I"]] = P
        y[offset:] = S0.ravel()
        self.y = y
        self.t = 0.0
        self.n_rhs = 0

    def qcspin_form(self, y):
        """(rho, [Pi_l blocks as (N_s, N_p n_l), column p n_l + k], spins) of a state or RHS
        vector, in qcspin's storage; for the dense form also the largest entry of the Pi_{l,p}
        outside the interface columns (which Eq. 9 keeps at zero)."""
        rho, P, S = self.views(y)
        blocks, off = [], 0.0
        for L, Pl in zip(self.leads, P):
            if not self.compact:
                rest = np.ones(self.N, bool)
                rest[L["I"]] = False
                off = max(off, float(np.abs(Pl[:, :, rest]).max(initial=0.0)))
                Pl = Pl[:, :, L["I"]]
            blocks.append(Pl.transpose(1, 0, 2).reshape(self.N, -1))
        return rho, blocks, S.real, off

    def views(self, y):
        N, Np = self.N, self.Np
        rho = y[:N * N].reshape(N, N)
        P = [y[L["off"]:L["off"] + L["size"]].reshape(Np, N, L["m"]) for L in self.leads]
        return rho, P, y[self.so:].reshape(-1, 3)

    def rhs(self, y, biased: bool = True) -> np.ndarray:
        self.n_rhs += 1
        rho, P, S = self.views(y)
        S = S.real
        dy = np.empty_like(y)
        drho, dP, dS = self.views(dy)
        H, u, d, hj = self.H, self.u, self.d, self.hj
        H[u, u] = hj * S[:, 2]
        H[d, d] = -hj * S[:, 2]
        H[u, d] = hj * (S[:, 0] - 1j * S[:, 1])
        H[d, u] = hj * (S[:, 0] + 1j * S[:, 1])
        X = H @ rho
        drho[...] = -1j * (X - X.conj().T)               # -i [H, rho], rho H = (H rho)^dag
        Heff = H - 0.5j * self.G
        for L, Pl, dPl in zip(self.leads, P, dP):
            mu = L["mu"] if biased else L["mu0"]
            I = L["I"]
            if self.compact:                              # (1 - 2 rho)[:, I] gamma / 4
                Pi = 0.25 * L["gamma"] * (self.eye[:, I] - 2.0 * rho[:, I])
            else:
                Pi = 0.25 * (self.eye - 2.0 * rho) @ L["G"]
            for p in range(self.Np):                      # the plain loop over the poles
                chi = mu + 1j * self.xi[p] / L["beta"]
                Pi += Pl[p]
                dPl[p] = L["src"][p] - 1j * (Heff @ Pl[p] - chi * Pl[p])
            if self.compact:
                drho[:, I] += Pi
                drho[I, :] += Pi.conj().T
            else:
                drho += Pi + Pi.conj().T
        s = np.stack([rho[u, d].real, -rho[u, d].imag, 0.5 * (rho[u, u] - rho[d, d]).real], axis=1)
        g = self.J @ S - self.B - self.K2 * np.sum(S * self.e, axis=1)[:, None] * self.e \
            + self.Jsd * s
        v = np.cross(g, S)                                # -S x g
        if np.any(self.alpha):
            v = (v - self.alpha * np.cross(S, v) / np.linalg.norm(S, axis=1)[:, None]) \
                / (1 + self.alpha ** 2)
        dS[...] = v * self.moving
        return dy

    def step(self, dt: float) -> None:
        """Classic RK4 (1/6, 1/3, 1/3, 1/6)."""
        y = self.y
        k1 = self.rhs(y)
        k2 = self.rhs(y + (0.5 * dt) * k1)
        k3 = self.rhs(y + (0.5 * dt) * k2)
        k4 = self.rhs(y + dt * k3)
        self.y = y + (dt / 6.0) * (k1 + 2.0 * (k2 + k3) + k4)
        self.t += dt

    def observables(self, dev) -> dict:
        """Lead charge and spin currents Re Tr Pi_l, Re Tr(sigma Pi_l) (Eqs. 11, 12, from the lead
        into the device), layer magnetizations, rho and spins."""
        rho, P, S = self.views(self.y)
        N = self.N
        charge, spin = [], []
        for L, Pl in zip(self.leads, P):
            Pi = np.zeros((N, N), complex)
            if self.compact:
                Pi[:, L["I"]] = 0.25 * L["gamma"] * (self.eye[:, L["I"]] - 2 * rho[:, L["I"]]) \
                    + Pl.sum(axis=0)
            else:
                Pi = 0.25 * (self.eye - 2 * rho) @ L["G"] + Pl.sum(axis=0)
            charge.append(np.trace(Pi).real)
            uu, dd = np.arange(0, N, 2), np.arange(1, N, 2)
            spin.append([(Pi[dd, uu] + Pi[uu, dd]).sum().real,
                         (1j * Pi[uu, dd] - 1j * Pi[dd, uu]).sum().real,
                         (Pi[uu, uu] - Pi[dd, dd]).sum().real])
        S = S.real.copy()
        M = np.zeros((len(dev.layer_names), 3))
        np.add.at(M, dev.spin_layer, S)
        return {"lead_current": np.array(charge), "lead_spin_current": np.array(spin),
                "layer_magnetization": M, "rho": rho.copy(), "spins": S}


# ================================================================================ runners
def qcspin_obs(sim) -> dict:
    o = sim.observables(root=None)
    rho, S = sim.state(root=None)
    return {"lead_current": o["lead_current"], "lead_spin_current": o["lead_spin_current"],
            "layer_magnetization": o["layer_magnetization"], "rho": rho, "spins": S}


def run_qcspin(cfg, dt, stiff, t_check, t_span, min_time, for_baseline=False):
    """Time qcspin from t = 0 over t_span (observables at t_check, untimed)."""
    cfg = with_changes(cfg, time={"dt": dt}, solver={"stiff": stiff})
    sim = Simulation(cfg)
    init = None
    if for_baseline:
        rho0, S0 = sim.state(root=None)
        init = (rho0, sim.layout.leads_to_global(sim.y, root=None), S0)
    F = sim.y.duplicate()
    fn = sim.rhs.nonstiff if stiff in ("expint", "imex") else sim.rhs
    sim.mu_of_t.begin_step(0.0)                       # the biased mu, as inside a step
    t_rhs = timed(lambda: fn(None, 0.0, sim.y, F), min_time) if min_time > 0 else float("nan")
    F.destroy()
    n_check, n_total = n_steps(t_check, dt), n_steps(t_span, dt)
    rhs0 = sim.rhs.n_calls
    t0, c0 = time.perf_counter(), time.process_time()
    sim.step(n_check, record=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rhs1 = sim.rhs.n_calls
    obs = qcspin_obs(sim)                             # may evaluate the RHS (spin balance)
    rhs2 = sim.rhs.n_calls
    probe = None
    if for_baseline:   # the full RHS (Eqs. 4, 9, 10) on the state at t_check, for the baselines
        F = sim.y.duplicate()
        sim.rhs(None, sim.time, sim.y, F)
        lay = sim.layout
        rho, S = lay.to_global(sim.y, root=None)
        frho, fS = lay.to_global(F, root=None)
        probe = {"state": (rho, lay.leads_to_global(sim.y, root=None), S),
                 "rhs": (frho, fS, lay.leads_to_global(F, root=None))}
        F.destroy()
        rhs2 = sim.rhs.n_calls
    t0, c0 = time.perf_counter(), time.process_time()
    sim.step(n_total - n_check, record=False)
    wall, cpu = wall + time.perf_counter() - t0, cpu + time.process_time() - c0
    n_rhs = (rhs1 - rhs0) + (sim.rhs.n_calls - rhs2)
    sim.destroy()
    return dict(dt=dt, steps=n_total, span=n_total * dt, wall=wall, cpu=cpu, rhs=t_rhs,
                rhs_per_step=n_rhs / n_total if n_total else float("nan"), obs=obs,
                probe=probe), init


def run_reference(cfg, dt, t_check):
    cfg = with_changes(cfg, time={"dt": dt}, solver={"stiff": "none"})
    sim = Simulation(cfg)
    sim.step(n_steps(t_check, dt), record=False)
    obs = qcspin_obs(sim)
    sim.destroy()
    return obs


def rhs_difference(dev, cfg, poles, probe, compact) -> float:
    """max |F_NumPy - F_qcspin| / max |F_qcspin| for the full right-hand side on qcspin's state
    at t_check (generic: after the quench, spins moved); the same equations give round-off."""
    rho, blocks, S = probe["state"]
    frho, fS, fblocks = probe["rhs"]
    base = PlainOpen(dev, cfg, poles, rho, blocks, S, compact=compact)
    grho, gblocks, gS, off = base.qcspin_form(base.rhs(base.y))
    scale = max(np.abs(frho).max(), max(np.abs(b).max() for b in fblocks), np.abs(fS).max())
    diff = max(np.abs(grho - frho).max(), np.abs(gS - fS.real).max(), off,
               max(np.abs(g - f).max() for g, f in zip(gblocks, fblocks)))
    return float(diff / scale)


def run_baseline(dev, cfg, init, compact, dt, t_check, t_span, min_time, probe=None):
    poles = pade_poles(cfg.electrons.n_poles)
    same_rhs = rhs_difference(dev, cfg, poles, probe, compact) if probe else float("nan")
    base = PlainOpen(dev, cfg, poles, *init, compact=compact)
    # qcspin's stationary state (V = 0, from its linear solves) must be a fixed point of the
    # baseline's electron equations (4), (9); the spins do move (torques), so not dS/dt
    fixed = float(np.abs(base.rhs(base.y, biased=False)[:base.so]).max())
    t_rhs = timed(lambda: base.rhs(base.y), min_time) if min_time > 0 else float("nan")
    n_check, n_total = n_steps(t_check, dt), n_steps(t_span, dt)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n_check):
        base.step(dt)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    obs = base.observables(dev)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n_total - n_check):
        base.step(dt)
    wall, cpu = wall + time.perf_counter() - t0, cpu + time.process_time() - c0
    return dict(dt=dt, steps=n_total, span=n_total * dt, wall=wall, cpu=cpu, rhs=t_rhs,
                rhs_per_step=4.0,
                obs=obs, fixed_point=fixed, same_rhs=same_rhs)


def errors(obs, ref) -> dict:
    return {"lead_current": float(np.abs(obs["lead_current"] - ref["lead_current"]).max()),
            "lead_spin_current": float(np.abs(obs["lead_spin_current"]
                                              - ref["lead_spin_current"]).max()),
            "layer_magnetization": float(np.abs(obs["layer_magnetization"]
                                                - ref["layer_magnetization"]).max()),
            "rho": float(np.abs(obs["rho"] - ref["rho"]).max()),
            "spins": float(np.abs(obs["spins"] - ref["spins"]).max())}


def profile_qcspin(cfg, t_span, out, top=18):
    """cProfile of qcspin expint stepping (dt = 0.2) over t_span."""
    cfg = with_changes(cfg, time={"dt": DT_EXPINT}, solver={"stiff": "expint"})
    sim = Simulation(cfg)
    n = n_steps(t_span, DT_EXPINT)
    pr = cProfile.Profile()
    pr.enable()
    sim.step(n, record=False)
    pr.disable()
    sim.destroy()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(top)
    out(f"# cProfile, qcspin expint, {n} steps (sorted by own time)")
    out("\n".join(line for line in s.getvalue().splitlines() if line.strip()))


# ================================================================================ main
def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke test: t-sim = t-check = 0.4, short RHS timings, no dt = 0.01 "
                        "reference check")
    p.add_argument("--t-sim", type=float, default=None,
                   help="timed simulated span (default 20; multiple of 0.2)")
    p.add_argument("--t-check", type=float, default=None,
                   help="time of the accuracy check (default 5; multiple of 0.2)")
    p.add_argument("--systems", default="1d,2d", help="comma list of 1d, 2d")
    p.add_argument("--baselines", default="dense,columns",
                   help="comma list of dense, columns ('' : none)")
    p.add_argument("--min-time", type=float, default=None,
                   help="seconds per RHS timing (default 1, --quick 0.05)")
    p.add_argument("--no-baseline", action="store_true", help="qcspin only")
    p.add_argument("--profile", action="store_true",
                   help="also print a cProfile of qcspin expint stepping per system")
    p.add_argument("--json", default=None, help="write the numbers to this JSON file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    a = p.parse_args()
    t_sim = a.t_sim if a.t_sim is not None else (0.4 if a.quick else 20.0)
    t_check = a.t_check if a.t_check is not None else (0.4 if a.quick else 5.0)
    min_time = a.min_time if a.min_time is not None else (0.05 if a.quick else 1.0)
    t_span = max(t_sim, t_check)
    for opt, t in (("--t-sim", t_sim), ("--t-check", t_check)):
        n = round(t / DT_EXPINT)
        if not (n >= 1 and abs(n * DT_EXPINT - t) <= 1e-9 * max(1.0, t)):
            p.error(f"{opt} {t:g} is not allowed: need a positive multiple of {DT_EXPINT} "
                    f"(the expint step; the explicit steps {DT_EXPLICIT}, {DT_REF} divide it)")
    systems = [s for s in a.systems.split(",") if s]
    bad = [s for s in systems if s not in SYSTEMS]
    if bad or not systems:
        p.error(f"--systems {a.systems!r} is not allowed: choose from {sorted(SYSTEMS)}")
    baselines = [] if a.no_baseline else [b for b in a.baselines.split(",") if b]
    if any(b not in ("dense", "columns") for b in baselines):
        p.error(f"--baselines {a.baselines!r} is not allowed: choose from dense, columns")
    from petsc4py import PETSc

    rank0 = PETSc.COMM_WORLD.getRank() == 0
    size = PETSc.COMM_WORLD.getSize()
    if a.json and rank0 and os.path.exists(a.json) and not a.overwrite:
        p.error(f"--json {a.json!r} exists; use --overwrite to replace it")
    out = (lambda *x, **k: print(*x, **k, flush=True)) if rank0 else (lambda *x, **k: None)
    if size > 1 and baselines:
        out("# the NumPy baselines are serial: skipped under MPI")
        baselines = []
    out(f"# {size} MPI rank(s); BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS')}; "
        f"timed span t = {t_span:g}, accuracy check at t = {t_check:g}")
    wall0 = time.perf_counter()
    load0 = os.getloadavg()
    rows, checks = [], []
    for key in systems:
        label, make = SYSTEMS[key]
        cfg = make()
        dev = device_from_config(cfg)
        info = f"N_s = {dev.n_orbitals}, {dev.n_spins} spins, N_p = {cfg.electrons.n_poles}"
        out(f"## {label} ({info})")
        ref = run_reference(cfg, DT_REF, t_check)
        if not a.quick:
            fine = run_reference(cfg, DT_REF / 2, t_check)
            e_ref = errors(ref, fine)
            out(f"   reference RK3/8 dt = {DT_REF} vs dt = {DT_REF / 2} at t = {t_check:g}: "
                f"I {e_ref['lead_current']:.1e}, M {e_ref['layer_magnetization']:.1e}, "
                f"rho {e_ref['rho']:.1e}")
        else:
            e_ref = None
        results = []
        q, init = run_qcspin(cfg, DT_EXPINT, "expint", t_check, t_span, min_time,
                             for_baseline=True)
        results.append(("qcspin expint", q))
        q38, _ = run_qcspin(cfg, DT_EXPLICIT, "none", t_check, t_span, min_time)
        results.append(("qcspin RK3/8", q38))
        for bname in baselines:
            r = run_baseline(dev, cfg, init, bname == "columns", DT_EXPLICIT, t_check, t_span,
                             min_time, q["probe"])
            out(f"   NumPy {bname}: electron RHS at qcspin's stationary state (V = 0) "
                f"{r['fixed_point']:.1e}; full RHS on qcspin's state at t = {t_check:g} vs "
                f"qcspin's OpenRHS: {r['same_rhs']:.1e} relative")
            results.append((f"NumPy {bname} RK4", r))
        q_rate, q_cpu_rate = q["span"] / q["wall"], q["span"] / q["cpu"]
        for name, r in results:
            r["errors"] = errors(r["obs"], ref)
            rate = r["span"] / r["wall"]
            row = dict(system=label, key=key, method=name, N_s=dev.n_orbitals, dt=r["dt"],
                       steps=r["steps"], span=r["span"], wall=r["wall"],
                       steps_per_s=r["steps"] / r["wall"], sim_time_per_s=rate,
                       ms_per_rhs=r["rhs"] * 1e3, rhs_per_step=r["rhs_per_step"],
                       speedup=q_rate / rate, cpu=r["cpu"],
                       sim_time_per_cpu_s=r["span"] / r["cpu"],
                       speedup_cpu=q_cpu_rate / (r["span"] / r["cpu"]), errors=r["errors"])
            if "fixed_point" in r:
                row["fixed_point_residual"] = r["fixed_point"]
                row["rhs_vs_qcspin"] = r["same_rhs"]
            rows.append(row)
            e = r["errors"]
            out(f"   {name:<18} dt = {r['dt']:<5g} {row['steps_per_s']:9.1f} steps/s "
                f"{rate:8.2f} t/s {row['ms_per_rhs']:8.3f} ms/RHS | error vs ref at t = "
                f"{t_check:g}: I {e['lead_current']:.1e}, J_s {e['lead_spin_current']:.1e}, "
                f"M {e['layer_magnetization']:.1e}, rho {e['rho']:.1e}")
        for name, r in results[2:]:
            d = errors(r["obs"], q["obs"])
            checks.append(dict(system=label, method=name, vs="qcspin expint", **d))
            out(f"   {name} vs qcspin expint at t = {t_check:g}: max |dI| {d['lead_current']:.1e}"
                f", |dJ_s| {d['lead_spin_current']:.1e}, |dM| {d['layer_magnetization']:.1e}, "
                f"|drho| {d['rho']:.1e}")
        scale = (float(np.abs(ref["lead_current"]).max()),
                 float(np.abs(ref["layer_magnetization"]).max()))
        out(f"   scale at t = {t_check:g}: max |I_l| = {scale[0]:.3g}, max |M_l| = {scale[1]:.3g}")
        checks.append(dict(system=label, method="reference", vs=f"RK3/8 dt = {DT_REF / 2}",
                           scale_current=scale[0], scale_magnetization=scale[1],
                           **(e_ref or {})))
        if a.profile and rank0 and size == 1:
            profile_qcspin(cfg, min(t_span, 10.0), out)
    wall = time.perf_counter() - wall0
    load1 = os.getloadavg()
    out(f"# load average (1, 5, 15 min) at start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, "
        f"at end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} (2-core machine: > 1 means "
        f"other jobs competed for the cores)")
    out("\n| system | method | dt | steps/s | sim. time / wall s | ms / RHS | speed-up | "
        "speed-up (CPU s) | err I_l | err M_l |")
    out("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        out(f"| {r['system']} | {r['method']} | {r['dt']:g} | {r['steps_per_s']:.1f} | "
            f"{r['sim_time_per_s']:.2f} | {r['ms_per_rhs']:.3f} | {r['speedup']:.2f}x | "
            f"{r['speedup_cpu']:.2f}x | "
            f"{r['errors']['lead_current']:.1e} | {r['errors']['layer_magnetization']:.1e} |")
    out(f"speed-up = simulated time per wall second of qcspin expint / that of the row (the "
        f"same with process CPU seconds, less sensitive to other jobs on the machine); "
        f"err = max |difference| at t = {t_check:g} from qcspin with plain RK 3/8 at "
        f"dt = {DT_REF} (solver.stiff = 'none') in the lead currents Re Tr Pi_l and the layer "
        f"magnetizations M_l.")
    acc = {}
    for r in rows:
        grp = "qcspin expint" if r["method"] == "qcspin expint" else (
            "NumPy RK4" if r["method"].startswith("NumPy") else r["method"])
        e = acc.setdefault(grp, {"lead_current": 0.0, "layer_magnetization": 0.0})
        for k in e:
            e[k] = max(e[k], r["errors"][k])
    out(f"\nAccuracy at t = {t_check:g}, against qcspin with plain RK 3/8 at dt = {DT_REF}"
        + ("" if a.quick else
           " (its own error, vs dt = %g: %.1e in I_l, %.1e in M_l)" % (
               DT_REF / 2, max(c.get("lead_current", 0.0) for c in checks
                               if c["method"] == "reference"),
               max(c.get("layer_magnetization", 0.0) for c in checks
                   if c["method"] == "reference"))) + ":")
    for grp, e in acc.items():
        out(f"  {grp:<14} within {e['lead_current']:.1e} (lead currents), "
            f"{e['layer_magnetization']:.1e} (layer magnetizations), all systems")
    d = [c for c in checks if c["vs"] == "qcspin expint"]
    if d:
        out(f"  NumPy RK4 vs qcspin expint: max |dI_l| = "
            f"{max(c['lead_current'] for c in d):.1e}, max |dM_l| = "
            f"{max(c['layer_magnetization'] for c in d):.1e}")
        worst = max(r.get("rhs_vs_qcspin", 0.0) for r in rows)
        out(f"  same equations: NumPy RHS = qcspin OpenRHS on the same state to {worst:.1e} "
            f"(relative)")
    out(f"# benchmark wall time {wall:.1f} s")
    if a.json and rank0:
        doc = {"args": vars(a), "t_span": t_span, "t_check": t_check, "mpi_size": size,
               "wall_time": wall, "loadavg_start": load0, "loadavg_end": load1, "rows": rows,
               "checks": checks, "max_errors": acc}
        with open(a.json, "w") as fh:
            json.dump(doc, fh, indent=1)
        out(f"# wrote {a.json}")


if __name__ == "__main__":
    main()
