#!/usr/bin/env python
"""Benchmark of TDNEGF+LLG for paper 000's devices: qcspin against a plain NumPy code of the same
equations, at stated equal accuracy.

Devices (paper 000, Sec. II, eV-fs units): ``valve`` = Fig. 1(b), ``examples/valve_000.toml``
(8 sites, 3 fixed + 3 free moments, 0.25 V pulse on the left lead); ``afi`` = Fig. 1(a),
``examples/afi_junction_000.toml`` (28 sites, 3 fixed + 23 free moments, 0.55 V).  Both start
from the stationary state with the pulse switched on at t = 0, moments with the current-driven
drive (the LLG's s-d field from Tr((rho - rho_eq(M(t))) sigma)/2).  Each lead representation
(``leads.*.representation`` = "modes" (the files' default), "extended", "lorentzian") is set
with ``--set``-style overrides of ``toolkit.config.load_config``.

Rows of the table:

* ``qcspin monolithic`` / ``qcspin staggered-heun``: ``integrators.Simulation(cfg).step(n)`` with
  ``[solver] scheme`` = "monolithic" (Krogstad's exponential RK4 on the whole state) or
  "staggered-heun" (electrons by exponential RK4 with M frozen, then Heun for the LLG).
* ``NumPy Heun``: written here, the straightforward code: dense arrays, one step = the
  electrons by Heun's method with the moments frozen at M_n (the s-d blocks of the dense H
  rewritten from M_n), then the LLG by Heun with projection to the sphere driven by
  s_CD = s(rho_{n+1}) - s_eq(M) (paper 000's order: electrons, then moments).  Electrons:
  modes/lorentzian: the dense auxiliary-mode equations ``operators.lorentzian.AuxiliaryModes``,
  the object of ``sim.rhs.dense_reference()`` of a qcspin run of the same config (identical
  tables); extended: paper 004's Padé-block equations of the explicit lead sites' absorbers
  (d rho/dt = -i[H, rho] + Pi + Pi^dag, d Pi_p/dt = -i eta_p Gamma/beta - i (H - i Gamma/2 -
  chi_p) Pi_p) with the bias as a rigid shift of the explicit sites, written below.  LLG
  (paper 000 Eq. 2, g/mu_M = g_e/hbar): dM/dt = gamma [M x g + lam M x (M x g)]/(1 + lam^2),
  g = dH_C/dM = sum_k J_ex M_k - B - 2 K (M.e) e + J_sd s_CD, written below (checked against
  operators.spin.ClassicalSpinHamiltonian.rhs); s_eq(M) is the pole sum of
  integrators.adiabatic.AdiabaticEquilibrium.spin_density (one batched inverse per call).

Same equations: before timing, the NumPy right-hand side (electrons and LLG) is compared with
qcspin's on the stationary state with the moving moments turned by a random angle (checks the
s-d rewrite, the bias, rho_eq(M) and the LLG), and the NumPy electron right-hand side must
vanish on the stationary state without bias.

Accuracy: M(t) of the moving moments and the left lead current I_L(t) (``lead_current``, per fs)
at every ``--sample`` fs over [0, --t-sim] against a reference, qcspin monolithic at
``--dt-ref`` (default 0.05 fs; without --quick itself checked against --dt-ref / 2).  Step sizes:
the NumPy code first at ``--dt-numpy`` (default 0.1 fs, the paper's step).  Heun is stable on the
negative real axis only for h r <= 2 and the fastest auxiliary decay rate r (the largest Padé
pole xi_max/beta of 20 poles at 300 K: 27.3 /(hbar/eV) = 41 /fs) needs h < 0.048 fs, so there it
diverges within a few fs (reported); the baseline is then the largest step of
0.1, 0.05, 0.04, 0.025, 0.02, ... fs below that limit (0.04 fs).  qcspin's step: the largest
of --dt-qcspin, 0.1, 0.05, 0.04, ... whose errors (both max |dM| and max |dI_L|) are no larger
than the NumPy baseline's; every step tried is printed, the accepted ones marked '*'.

Timing: the stepping only (sampling outside the timers; setup and the stationary start not
included), wall and process CPU time; simulated ps per wall minute; speed-up = qcspin's
simulated time per wall second / the NumPy baseline's.  OPENBLAS_NUM_THREADS (and OMP, MKL) are
set to 1 by this script before NumPy is imported: the small dense kernels of both codes lose
10-20x with BLAS threads (toolkit/blas.py), so both use one core.  The machine's load average
is printed at start and end (2 cores: > 1 means other jobs competed).

    .venv/bin/python scripts/bench_tdnegf.py [--device valve|afi|both]
        [--representations modes,extended,lorentzian] [--schemes monolithic,staggered-heun]
        [--t-sim 50] [--sample 1] [--dt-qcspin 0.2] [--dt-numpy 0.1] [--dt-ref 0.05]
        [--no-ref-check] [--profile] [--quick] [--json out.json [--overwrite]]

``--quick``: valve, modes, 4 fs (a smoke test, < 60 s).  ``--profile``: cProfile of qcspin's
accepted runs (first representation of each device, up to 20 fs): time per file and function.
Serial only.  Not a test.
"""
from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"       # before numpy: small kernels lose 10-20x
for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import json  # noqa: E402
import pstats  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

import toolkit  # noqa: E402,F401  (initialises complex PETSc)
from integrators import Simulation  # noqa: E402
from integrators.adiabatic import CurrentDrivenSpinDensity  # noqa: E402
from integrators.open_rhs import PadeLeads  # noqa: E402
from integrators.rhs import LLG  # noqa: E402
from integrators.simulation import NumericalInstability  # noqa: E402
from toolkit.blas import blas_threads  # noqa: E402
from toolkit.config import load_config  # noqa: E402

DEVICES = {"valve": ("Fig. 1(b) valve", os.path.join(ROOT, "examples", "valve_000.toml")),
           "afi": ("Fig. 1(a) FM/AFI/FM", os.path.join(ROOT, "examples",
                                                       "afi_junction_000.toml"))}
REPRESENTATIONS = ("modes", "extended", "lorentzian")
SCHEMES = ("monolithic", "staggered-heun")
#: steps tried (fs), largest first; all divide 0.2 fs
STEPS = (0.2, 0.1, 0.05, 0.04, 0.025, 0.02, 0.0125, 0.01)
HEUN_REAL_LIMIT = 2.0      # Heun's stability interval on the negative real axis: h r <= 2
DIVERGED = 10.0            # |rho_ab| <= 1 physically: beyond this a run has diverged


def overrides(rep: str, scheme: str, dt: float) -> list[str]:
    return [f"leads.left.representation={rep}", f"leads.right.representation={rep}",
            f'solver.scheme="{scheme}"', f"time.dt={dt!r}"]


def divides(t: float, dt: float) -> bool:
    n = round(t / dt)
    return n >= 1 and abs(n * dt - t) <= 1e-9 * max(1.0, t)


def n_steps(t: float, dt: float, what: str) -> int:
    n = int(round(t / dt))
    if n < 1 or abs(n * dt - t) > 1e-9 * max(1.0, t):
        raise SystemExit(f"{what} = {t:g} fs is not allowed: it must be a positive multiple of "
                         f"the step {dt:g} fs")
    return n


# ================================================================================ NumPy code
class AuxElectrons:
    """The electrons of a modes/lorentzian run as the dense AuxiliaryModes equations (the
    object of ``sim.rhs.dense_reference()``: the same tables as qcspin's run).  State: the
    tuple (rho, R, lambda, Omega, Theta, K)."""

    def __init__(self, sim: Simulation) -> None:
        self.am = am = sim.rhs.dense_reference()
        lay = sim.layout
        self.ny, self.nx, self.nu = len(am.yc), len(am.xc), len(am.uc)
        self.left = [getattr(l, "side", None) for l in sim.leads].index("left")
        self.H, self.Heff = am.H, am.Heff       # rewritten in place (s-d blocks)
        self.lay = lay

    def from_layout(self, x: np.ndarray) -> tuple:
        lay, ny, nx, nu = self.lay, self.ny, self.nx, self.nu
        return (np.array(lay.rho(x)), np.array(lay.view(x, "aux:R")),
                np.array(lay.view(x, "aux:lambda")),
                np.array(lay.small(x, "aux:Omega")).reshape(ny, nx),
                np.array(lay.small(x, "aux:Theta")).reshape(ny, ny),
                np.array(lay.small(x, "aux:K")).reshape(nu, ny))

    def set_sd(self, idx: tuple, vals: np.ndarray) -> None:
        self.H[idx] = vals
        self.Heff[idx] = vals - 0.5j * self.am.Gw[idx]

    def rhs(self, s: tuple, V: np.ndarray) -> tuple:
        return self.am.rhs(0.0, s, V)

    def current_left(self, s: tuple) -> float:
        return float(self.am.currents(s)[self.left])


class PadeElectrons:
    """The electrons of an extended run: dense H of device + explicit lead sites, one Padé
    block Pi_b (N x N_p n_b, column p n_b + k: pole p, interface orbital k) per wide-band
    coupling (the graded absorbers), paper 004 Eqs. 4, 8, 9; the bias shifts the explicit
    sites of a lead rigidly.  State: the tuple (rho, Pi_0, Pi_1, ...)."""

    def __init__(self, sim: Simulation) -> None:
        self.H = sim.H.to_dense()
        N = self.H.shape[0]
        self.lay = sim.layout
        self.mu0 = np.asarray(sim.rhs.mu0, float)
        self.names: list[str] = []
        self.blocks: list[dict] = []
        gam = np.zeros(N)
        for b in sim.rhs.term(PadeLeads).blocks:
            poles = sim.poles[b.index]
            n, Np = len(b.I), poles.n_poles
            gam[b.I] += b.g
            src = np.zeros((N, Np * n), complex)        # -i eta_p Gamma/beta on the I rows
            for p in range(Np):
                src[b.I, p * n + np.arange(n)] = -1j * poles.eta[p] * b.g / b.beta
            self.names.append(b.name)
            self.blocks.append(dict(I=b.I, n=n, Np=Np, g=b.g, k=b.index, src=src,
                                    rate=np.repeat(np.asarray(poles.xi) / b.beta, n)))
        self.gam = gam
        self.masks = np.zeros((len(self.mu0), N))      # P_l: explicit orbitals of lead l
        for k, sl in sim.problem.shifts:
            self.masks[k, sl] = 1.0
        self.max_rate = max(float(b["rate"].max()) for b in self.blocks) + 0.5 * gam.max()
        # left lead current: the bonds between its explicit sites and the device (Eq. 13)
        left = [getattr(l, "side", None) for l in sim.leads].index("left")
        plane = sim.problem.interface_plane(left)
        assert plane is not None          # an extended lead has explicit sites
        xp, self.sign = plane
        edev = sim.edevice
        x = edev.coords[:, 0]
        bd = edev.bonds
        lo = np.where(x[bd[:, 0]] <= x[bd[:, 1]], bd[:, 0], bd[:, 1])
        hi = np.where(x[bd[:, 0]] <= x[bd[:, 1]], bd[:, 1], bd[:, 0])
        keep = (x[lo] == xp) & (x[hi] == xp + 1)
        self.bond = (lo[keep], hi[keep])

    def from_layout(self, x: np.ndarray) -> tuple:
        return (np.array(self.lay.rho(x)),
                *(np.array(self.lay.view(x, name)) for name in self.names))

    def set_sd(self, idx: tuple, vals: np.ndarray) -> None:
        self.H[idx] = vals

    def rhs(self, s: tuple, V: np.ndarray) -> tuple:
        rho = s[0]
        mu = self.mu0 + V
        Ht = self.H.copy()
        Ht[np.diag_indices_from(Ht)] += V @ self.masks          # rigid shift of lead sites
        X = Ht @ rho
        drho = -1j * (X - X.conj().T)
        Heff = Ht - 0.5j * np.diag(self.gam)
        out = [drho]
        for b, P in zip(self.blocks, s[1:]):
            chi = mu[b["k"]] + 1j * b["rate"]
            out.append(b["src"] - 1j * (Heff @ P - P * chi))
            I, n = b["I"], b["n"]
            C = P.reshape(P.shape[0], b["Np"], n).sum(axis=1)
            C -= rho[:, I] * (0.5 * b["g"])
            C[I, np.arange(n)] += 0.25 * b["g"]
            drho[:, I] += C
            drho[I, :] += C.conj().T
        return tuple(out)

    def current_left(self, s: tuple) -> float:
        rho = s[0]
        I = 0.0
        for j, jp in zip(*self.bond):           # -Im Tr(H_jj' rho_j'j) over the plane
            a, b = 2 * j + np.arange(2), 2 * jp + np.arange(2)
            I -= float(np.trace(self.H[np.ix_(a, b)] @ rho[np.ix_(b, a)]).imag)
        return self.sign * I


class NumpyLLG:
    """Paper 000 Eq. 2 for the moments, in plain NumPy: dM/dt = gamma [M x g + lam M x (M x g)]
    / (1 + lam^2), g = sum_k J_ex M_k - B - 2 K (M.e) e + J_sd s_CD, s_CD = s(rho) - s_eq(M);
    frozen moments do not move."""

    def __init__(self, sim: Simulation) -> None:
        dev = sim.device
        src = sim.rhs.term(LLG).source
        if not isinstance(src, CurrentDrivenSpinDensity):
            raise SystemExit(f"llg.drive = {sim.config.llg.drive!r} is not allowed here: the "
                             f"benchmark is paper 000's current-driven drive")
        self.eq = src.eq                          # AdiabaticEquilibrium of the run
        self.moving = self.eq.moving
        n = dev.n_spins
        self.J = np.zeros((n, n))
        if len(dev.exchange_bonds):
            a, b = dev.exchange_bonds.T
            np.add.at(self.J, (a, b), dev.J_ex)
            np.add.at(self.J, (b, a), dev.J_ex)
        m = self.moving
        self.Jm = self.J[m]
        self.K, self.e = dev.K[m, None], dev.easy_axis[m]
        self.B = np.asarray(dev.B, float)
        self.J_sd = dev.J_sd[m, None]
        self.lam = dev.damping[m, None]
        self.gamma = float(dev.gyro)              # g_e in internal units (hbar/eV)
        orb = self.eq.orbitals
        self.u, self.d = orb[0::2], orb[1::2]
        self.sd_idx = (np.concatenate([self.u, self.u, self.d, self.d]),
                       np.concatenate([self.u, self.d, self.u, self.d]))

    def sd_values(self, M: np.ndarray) -> np.ndarray:
        """J_sd/2 sigma.M of the moving moments at (uu, ud, du, dd) = ``sd_idx``."""
        Mm = M[self.moving]
        h = 0.5 * self.J_sd[:, 0]
        return np.concatenate([h * Mm[:, 2], h * (Mm[:, 0] - 1j * Mm[:, 1]),
                               h * (Mm[:, 0] + 1j * Mm[:, 1]), -h * Mm[:, 2]])

    def spin_density(self, rho: np.ndarray) -> np.ndarray:
        """s = Tr(rho_jj sigma)/2 of the moving moments' sites (rho_ab = <c_b^dag c_a>)."""
        ud = rho[self.u, self.d]
        return np.stack([ud.real, -ud.imag, 0.5 * (rho[self.u, self.u] - rho[self.d, self.d]).real],
                        axis=1)

    def rate(self, M: np.ndarray, s_rho: np.ndarray) -> np.ndarray:
        """dM/dt of the moving moments."""
        Mm = M[self.moving]
        s_cd = s_rho - self.eq.spin_density(M)
        g = self.Jm @ M - self.B - 2.0 * self.K * np.sum(Mm * self.e, axis=1)[:, None] * self.e \
            + self.J_sd * s_cd
        Mxg = np.cross(Mm, g)
        return self.gamma * (Mxg + self.lam * np.cross(Mm, Mxg)) / (1.0 + self.lam ** 2)


class NumpyRun:
    """The NumPy TDNEGF+LLG code: state (electron tuple, M); one step = Heun for the electrons
    with M_n frozen, then Heun with projection for the moments driven by s_CD(rho_{n+1}, M)."""

    def __init__(self, sim: Simulation, rep: str) -> None:
        self.el: AuxElectrons | PadeElectrons = (PadeElectrons(sim) if rep == "extended"
                                                 else AuxElectrons(sim))
        self.llg = NumpyLLG(sim)
        self.hbar = sim.units.hbar
        self.mu0 = np.asarray(sim.rhs.mu0, float)
        self.mu_of_t = sim.mu_of_t.value          # the config's bias protocol, mu(t)
        x = sim.y.getArray(readonly=True)
        self.y = self.el.from_layout(x)
        self.M = np.array(sim.layout.spins(x).real, float)
        self.t = 0.0
        self.max_rate = (self.el.max_rate if isinstance(self.el, PadeElectrons)
                         else float(sim.rhs.decay().max_rate))

    def V(self, t: float) -> np.ndarray:
        return np.asarray(self.mu_of_t(t), float) - self.mu0

    def set_moments(self, M: np.ndarray) -> None:
        self.el.set_sd(self.llg.sd_idx, self.llg.sd_values(M))

    def rhs(self, y: tuple, M: np.ndarray, t: float) -> tuple[tuple, np.ndarray]:
        """(electron right-hand side, dM/dt of the moving moments) with H(M) at time t."""
        self.set_moments(M)
        return self.el.rhs(y, self.V(t)), self.llg.rate(M, self.llg.spin_density(y[0]))

    def step(self, h: float) -> None:
        """One step of h (internal time units); the bias latched at the step's start."""
        V = self.V(self.t)
        y, M, el, llg = self.y, self.M, self.el, self.llg
        self.set_moments(M)
        k1 = el.rhs(y, V)
        y1 = tuple(a + h * b for a, b in zip(y, k1))
        k2 = el.rhs(y1, V)
        y = tuple(a + (0.5 * h) * (b + c) for a, b, c in zip(y, k1, k2))
        s_rho = llg.spin_density(y[0])
        m = llg.moving
        Mm = M[m]
        q1 = llg.rate(M, s_rho)
        Mt = M.copy()
        Mt[m] = Mm + h * q1
        Mt[m] /= np.linalg.norm(Mt[m], axis=1, keepdims=True)
        q2 = llg.rate(Mt, s_rho)
        M = M.copy()
        M[m] = Mm + (0.5 * h) * (q1 + q2)
        M[m] /= np.linalg.norm(M[m], axis=1, keepdims=True)
        self.y, self.M = y, M
        self.t += h

    def sample(self) -> tuple[np.ndarray, float]:
        return self.M.copy(), self.el.current_left(self.y) / self.hbar

    def diverged(self) -> bool:
        r = np.abs(self.y[0]).max()
        return not (np.isfinite(r) and r < DIVERGED and np.all(np.isfinite(self.M)))


# ================================================================================ checks
def same_equations(sim: Simulation, run: NumpyRun, seed: int = 1) -> dict:
    """Relative max difference of the NumPy right-hand side from qcspin's full one (electrons,
    every lead component, dM/dt) on the stationary state with the moving moments turned by a
    random angle, at t = 0 (bias on); and the largest NumPy electron derivative on the
    stationary state without bias (it is a fixed point)."""
    lay = sim.layout
    Y = sim.y.copy()
    F = sim.y.duplicate()
    try:
        rng = np.random.default_rng(seed)
        M = run.M.copy()
        m = run.llg.moving
        M[m] += 0.3 * rng.standard_normal((len(m), 3))
        M[m] /= np.linalg.norm(M[m], axis=1, keepdims=True)
        lay.spins(Y.getArray())[...] = M
        sim.mu_of_t.begin_step(0.0)
        sim.rhs(None, 0.0, Y, F)
        fq = F.getArray(readonly=True)
        q_el = run.el.from_layout(fq)
        q_M = np.array(lay.spins(fq).real)[m]
        n_el, n_M = run.rhs(run.y, M, 0.0)
        num = max(float(np.abs(a - b).max()) for a, b in zip(n_el, q_el))
        den = max(float(np.abs(b).max()) for b in q_el)
        dM = float(np.abs(n_M - q_M).max()) / max(float(np.abs(q_M).max()), 1e-300)
        # LLG: the plain code against operators.spin.ClassicalSpinHamiltonian.rhs
        s_cd = run.llg.spin_density(run.y[0]) - run.llg.eq.spin_density(M)
        s_loc = np.zeros((sim.device.n_spins, 3))
        s_loc[m] = s_cd
        ref = sim.spinH.rhs(M, s_loc)[m]
        d_spinH = float(np.abs(ref - n_M).max()) / max(float(np.abs(ref).max()), 1e-300)
        # fixed point: stationary state, M0, no bias
        run.set_moments(run.M)
        f0 = run.el.rhs(run.y, np.zeros_like(run.mu0))
        fixed = max(float(np.abs(a).max()) for a in f0)
        I0 = sim.observables(root=None)
        assert I0 is not None
        dI0 = abs(run.sample()[1] - float(I0["lead_current"][run_left(sim)]))
    finally:
        sim.rhs(None, 0.0, sim.y, F)              # H back to H(M0)
        Y.destroy()
        F.destroy()
    return {"rhs_vs_qcspin": max(num / den, dM), "llg_vs_spinH": d_spinH,
            "fixed_point_residual": fixed, "current_t0": dI0}


def run_left(sim: Simulation) -> int:
    return [getattr(l, "side", None) for l in sim.leads].index("left")


# ================================================================================ runners
def run_qcspin(path: str, rep: str, scheme: str, dt: float, t_sim: float, sample: float,
               keep: bool = False) -> dict:
    """qcspin from the stationary start over t_sim (fs), sampled every ``sample`` fs; the
    stepping timed (wall, CPU).  ``keep``: return the Simulation at t = 0 too (for the NumPy
    baseline) instead of running it."""
    cfg = load_config(path, overrides(rep, scheme, dt))
    sim = Simulation(cfg)
    k = n_steps(sample, dt, "--sample")
    n_samples = n_steps(t_sim, sample, "--t-sim")
    left = run_left(sim)

    def obs() -> tuple[np.ndarray, float]:
        o = sim.observables(root=None)
        assert o is not None
        return np.array(o["spins"], float), float(o["lead_current"][left])

    M0, I0 = obs()
    if keep:
        return {"sim": sim, "M": [M0], "I": [I0]}
    Ms, Is = [M0], [I0]
    wall = cpu = 0.0
    diverged = None
    calls = 0
    try:
        for j in range(n_samples):
            c_rhs = sim.rhs.n_calls
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                sim.step(k, record=False)
            except NumericalInstability:
                diverged = (j + 1) * sample
            wall += time.perf_counter() - t0
            cpu += time.process_time() - c0
            calls += sim.rhs.n_calls - c_rhs
            if diverged is not None:
                break
            M, I = obs()
            Ms.append(M)
            Is.append(I)
        n_total = int(round(t_sim / dt))
    finally:
        sim.destroy()
    return {"M": np.array(Ms), "I": np.array(Is), "wall": wall, "cpu": cpu, "dt": dt,
            "steps": n_total, "diverged": diverged, "rhs_per_step": calls / n_total}


def run_numpy(sim: Simulation, rep: str, dt: float, t_sim: float, sample: float) -> dict:
    run = NumpyRun(sim, rep)
    h = sim.units.time_to_internal(dt)
    k = n_steps(sample, dt, "--sample")
    n_samples = n_steps(t_sim, sample, "--t-sim")
    M0, I0 = run.sample()
    Ms, Is = [M0], [I0]
    wall = cpu = 0.0
    diverged = None
    with np.errstate(over="ignore", invalid="ignore"):
        for j in range(n_samples):
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                for _ in range(k):
                    run.step(h)
                bad = run.diverged()
            except np.linalg.LinAlgError:       # rho_eq(M) of non-finite moments
                bad = True
            wall += time.perf_counter() - t0
            cpu += time.process_time() - c0
            if bad:
                diverged = (j + 1) * sample
                break
            M, I = run.sample()
            Ms.append(M)
            Is.append(I)
    return {"M": np.array(Ms), "I": np.array(Is), "wall": wall, "cpu": cpu, "dt": dt,
            "steps": int(round(t_sim / dt)), "diverged": diverged, "rhs_per_step": 2,
            "max_rate": run.max_rate, "run": run}


def errors(r: dict, ref: dict, moving: np.ndarray) -> tuple[float, float]:
    """(max |dM|, max |dI_L|) over the samples (inf for a diverged run)."""
    if r.get("diverged") is not None:
        return float("inf"), float("inf")
    dM = float(np.abs(r["M"][:, moving] - ref["M"][:, moving]).max())
    dI = float(np.abs(r["I"] - ref["I"]).max())
    return dM, dI


def late_errors(r: dict, ref: dict, moving: np.ndarray, sample: float,
                settle: float) -> dict:
    """Where the errors occur: the sample time of the largest |dI_L| and |dM|, and both maxima
    over t >= ``settle`` (after the quench transient)."""
    if r.get("diverged") is not None:
        return {}
    eI = np.abs(r["I"] - ref["I"])
    eM = np.abs(r["M"][:, moving] - ref["M"][:, moving]).reshape(len(eI), -1).max(axis=1)
    late = np.arange(len(eI)) * sample >= settle - 1e-9
    return {"settle": settle, "t_max_dI": float(np.argmax(eI) * sample),
            "t_max_dM": float(np.argmax(eM) * sample),
            "late_dI": float(eI[late].max()) if late.any() else float("nan"),
            "late_dM": float(eM[late].max()) if late.any() else float("nan")}


# ================================================================================ profile
_WATCH = [("integrators/expint.py", "step"), ("integrators/heun.py", "step"),
          ("integrators/rhs.py", "_evaluate"), ("integrators/aux_rhs.py", "evaluate"),
          ("integrators/open_rhs.py", "evaluate"), ("integrators/rhs.py", "times_h"),
          ("integrators/expint.py", "combine"), ("integrators/expint.py", "_stage"),
          ("integrators/rhs.py", "evaluate"), ("integrators/adiabatic.py", "spin_density"),
          ("integrators/heun.py", "_heun"), ("integrators/simulation.py", "_nonfinite"),
          ("integrators/simulation.py", "stability_limit")]


def profile_qcspin(path: str, rep: str, scheme: str, dt: float, t: float, out) -> dict:
    cfg = load_config(path, overrides(rep, scheme, dt))
    sim = Simulation(cfg)
    n = int(round(t / dt))
    pr = cProfile.Profile()
    try:
        pr.enable()
        sim.step(n, record=False)
        pr.disable()
    finally:
        sim.destroy()
    st: Any = pstats.Stats(pr)
    total = sum(v[2] for v in st.stats.values())
    by: dict[str, float] = {}
    funcs = []
    cum: dict[tuple[str, str], float] = {}
    for (fn, line, name), (_cc, nc, tt, ct, _callers) in st.stats.items():
        if fn.startswith(ROOT):
            key = os.path.relpath(fn, ROOT)
        elif fn == "~":
            key = name
        else:
            key = ("numpy: " if "numpy" in fn else "") + os.path.basename(fn)
        by[key] = by.get(key, 0.0) + tt
        where = os.path.relpath(fn, ROOT) if fn.startswith(ROOT) else fn
        funcs.append((tt, ct, nc, f"{where}:{line}({name})" if fn != "~" else name))
        for f, nm in _WATCH:
            if fn.endswith(f) and name == nm:
                cum[(f, nm)] = cum.get((f, nm), 0.0) + ct
    out(f"   profile: qcspin {scheme}, {rep}, dt = {dt:g} fs, {n} steps: {total:.2f} s "
        f"(under cProfile), {total / n * 1e3:.1f} ms/step")
    out("     own time by file / builtin:")
    for key, tt in sorted(by.items(), key=lambda kv: -kv[1])[:12]:
        out(f"       {100 * tt / total:5.1f} %  {key}")
    out("     functions by own time:")
    for tt, ct, nc, label in sorted(funcs, key=lambda f: -f[0])[:14]:
        out(f"       {100 * tt / total:5.1f} % own {100 * ct / total:5.1f} % cum {nc:8d} calls  "
            f"{label[:110]}")
    out("     inclusive time of qcspin's step parts:")
    for (f, nm), ct in sorted(cum.items(), key=lambda kv: -kv[1]):
        out(f"       {100 * ct / total:5.1f} %  {f}:{nm}")
    return {"scheme": scheme, "rep": rep, "dt": dt, "steps": n, "total": total,
            "by_file": sorted(by.items(), key=lambda kv: -kv[1])[:12],
            "inclusive": {f"{f}:{nm}": ct for (f, nm), ct in cum.items()}}


# ================================================================================ main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("valve", "afi", "both"), default=None,
                   help="device (default both; valve with --quick)")
    p.add_argument("--representations", default="modes",
                   help="comma separated, of modes, extended, lorentzian (default modes)")
    p.add_argument("--schemes", default=",".join(SCHEMES), help="qcspin's solver.scheme values")
    p.add_argument("--t-sim", type=float, default=None, help="simulated time (fs; default 50, "
                   "4 with --quick)")
    p.add_argument("--sample", type=float, default=None,
                   help="sampling interval for the errors (fs; default 1, 0.4 with --quick)")
    p.add_argument("--dt-qcspin", type=float, default=0.2, help="qcspin's first step (fs)")
    p.add_argument("--dt-numpy", type=float, default=0.1, help="the NumPy code's first step (fs)")
    p.add_argument("--dt-ref", type=float, default=0.05, help="reference step (fs)")
    p.add_argument("--no-ref-check", action="store_true",
                   help="skip the reference's own check against --dt-ref / 2")
    p.add_argument("--profile", action="store_true", help="cProfile qcspin's accepted runs")
    p.add_argument("--quick", action="store_true", help="smoke test: valve, modes, 4 fs")
    p.add_argument("--json", default=None, help="write the rows and checks to this file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    a = p.parse_args()
    device = a.device or ("valve" if a.quick else "both")
    t_sim = a.t_sim if a.t_sim is not None else (4.0 if a.quick else 50.0)
    sample = a.sample if a.sample is not None else (0.4 if a.quick else 1.0)
    settle = min(10.0, 0.5 * t_sim)     # 'late' errors: after the quench transient
    reps = [r for r in a.representations.split(",") if r]
    if not reps or any(r not in REPRESENTATIONS for r in reps):
        p.error(f"--representations {a.representations!r} is not allowed: choose from "
                f"{', '.join(REPRESENTATIONS)}")
    schemes = [s for s in a.schemes.split(",") if s]
    if not schemes or any(s not in SCHEMES for s in schemes):
        p.error(f"--schemes {a.schemes!r} is not allowed: choose from {', '.join(SCHEMES)}")
    for name, v in (("--t-sim", t_sim), ("--sample", sample), ("--dt-qcspin", a.dt_qcspin),
                    ("--dt-numpy", a.dt_numpy), ("--dt-ref", a.dt_ref)):
        if not v > 0:
            p.error(f"{name} = {v} is not allowed: expected a positive time (fs)")
    if a.json and os.path.exists(a.json) and not a.overwrite:
        p.error(f"--json {a.json!r} exists; use --overwrite to replace it")
    from petsc4py import PETSc

    if PETSc.COMM_WORLD.getSize() > 1:
        p.error("bench_tdnegf is serial (the NumPy code is): run it without mpirun")
    n_steps(t_sim, sample, "--t-sim")
    for dt in (a.dt_ref, a.dt_qcspin, a.dt_numpy):
        n_steps(sample, dt, "--sample")
    if not (a.quick or a.no_ref_check):
        n_steps(sample, a.dt_ref / 2, "--sample (with the reference check at --dt-ref / 2)")
    out = (lambda *x: print(*x, flush=True))
    load0 = os.getloadavg()
    wall0 = time.perf_counter()
    out(f"# bench_tdnegf: t = 0 .. {t_sim:g} fs (bias pulse on at t = 0, stationary start), "
        f"errors sampled every {sample:g} fs; OPENBLAS_NUM_THREADS = "
        f"{os.environ['OPENBLAS_NUM_THREADS']} (set by this script; OpenBLAS reports "
        f"{blas_threads()} thread(s)); {os.cpu_count()} cores, load average "
        f"{load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    devices = ["valve", "afi"] if device == "both" else [device]
    rows: list[dict] = []
    checks: list[dict] = []
    profiles: list[dict] = []
    for key in devices:
        label, path = DEVICES[key]
        for rep in reps:
            out(f"## {label}, leads '{rep}'")
            to_profile: list[tuple[str, float]] = []
            ref = run_qcspin(path, rep, "monolithic", a.dt_ref, t_sim, sample)
            if ref["diverged"] is not None:
                raise SystemExit(f"the reference (dt = {a.dt_ref} fs) diverged at "
                                 f"t = {ref['diverged']:g} fs: choose a smaller --dt-ref")
            base = run_qcspin(path, rep, "monolithic", a.dt_ref, t_sim, sample, keep=True)
            sim = base["sim"]
            try:
                moving = np.flatnonzero(~np.asarray(sim.device.frozen, bool))
                info = (f"{sim.layout.N} orbitals, {len(moving)} moving moments, "
                        f"{sim.layout.n_global} unknowns")
                chk = same_equations(sim, NumpyRun(sim, rep))
                out(f"   {info}; NumPy vs qcspin right-hand side (turned moments, bias on): "
                    f"{chk['rhs_vs_qcspin']:.1e} relative; NumPy LLG vs ClassicalSpinHamiltonian"
                    f".rhs {chk['llg_vs_spinH']:.1e}; NumPy electrons at the stationary state "
                    f"(V = 0) {chk['fixed_point_residual']:.1e}; I_L(0) NumPy - qcspin "
                    f"{chk['current_t0']:.1e} /fs")
                scale_I = float(np.abs(ref["I"]).max())
                scale_M = float(np.abs(ref["M"][:, moving] - ref["M"][0, moving]).max())
                out(f"   reference: qcspin monolithic dt = {a.dt_ref:g} fs; max |I_L| = "
                    f"{scale_I:.4g} /fs, max |M(t) - M(0)| = {scale_M:.3g}")
                chk.update(device=key, representation=rep, scale_current=scale_I,
                           scale_moment=scale_M)
                if not a.no_ref_check and not a.quick:
                    fine = run_qcspin(path, rep, "monolithic", a.dt_ref / 2, t_sim, sample)
                    eM, eI = errors(fine, ref, moving)
                    out(f"   reference check, dt = {a.dt_ref:g} vs {a.dt_ref / 2:g} fs: "
                        f"max |dM| {eM:.1e}, max |dI_L| {eI:.1e} /fs")
                    chk.update(reference_dM=eM, reference_dI=eI)
                # NumPy: the requested step, then the largest step below Heun's limit
                tried = []
                first = run_numpy(sim, rep, a.dt_numpy, t_sim, sample)
                tried.append(first)
                limit = sim.units.time_from_internal(HEUN_REAL_LIMIT / first["max_rate"])
                chk["heun_limit_fs"] = limit
                if first["diverged"] is not None or a.dt_numpy > limit:
                    for dt in STEPS:
                        if dt < a.dt_numpy and dt < limit and divides(sample, dt):
                            tried.append(run_numpy(sim, rep, dt, t_sim, sample))
                            if tried[-1]["diverged"] is None:
                                break
            finally:
                sim.destroy()
            out(f"   Heun's limit h r <= 2 with the fastest decay r = "
                f"{first['max_rate']:.2f} /(hbar/eV): dt < {limit:.4f} fs")
            checks.append(chk)
            nb = tried[-1]
            nb["accepted"] = nb["diverged"] is None
            for r in tried:
                r.setdefault("accepted", False)
                r.pop("run", None)
                r["errors"] = errors(r, ref, moving)
                r["where"] = late_errors(r, ref, moving, sample, settle)
                rows.append(dict(device=key, representation=rep, method="NumPy Heun", **r))
            if not nb["accepted"]:
                out("   the NumPy code diverged at every step tried: no speed-up reported")
            bM, bI = nb["errors"]
            rate_np = t_sim / nb["wall"] if nb["accepted"] else float("nan")
            cpu_np = t_sim / nb["cpu"] if nb["accepted"] else float("nan")
            for scheme in schemes:
                for dt in [a.dt_qcspin] + [s for s in STEPS if s < a.dt_qcspin
                                           and divides(sample, s)]:
                    r = run_qcspin(path, rep, scheme, dt, t_sim, sample)
                    r["errors"] = errors(r, ref, moving)
                    r["where"] = late_errors(r, ref, moving, sample, settle)
                    ok = r["errors"][0] <= bM and r["errors"][1] <= bI
                    r["accepted"] = bool(ok)
                    rows.append(dict(device=key, representation=rep, method=f"qcspin {scheme}",
                                     **r))
                    if ok or not nb["accepted"]:
                        break
                if a.profile and rep == reps[0]:
                    to_profile.append((scheme, r["dt"]))
            for r in rows:
                if r["device"] == key and r["representation"] == rep:
                    ok = r["diverged"] is None
                    r["ps_per_wall_min"] = t_sim * 0.06 / r["wall"] if ok else float("nan")
                    r["ps_per_cpu_min"] = t_sim * 0.06 / r["cpu"] if ok else float("nan")
                    r["speedup"] = (t_sim / r["wall"]) / rate_np if ok else float("nan")
                    r["speedup_cpu"] = (t_sim / r["cpu"]) / cpu_np if ok else float("nan")
                    r.pop("M", None)
                    r.pop("I", None)
                    _row_line(out, r)
            for scheme, dt in to_profile:
                profiles.append(dict(device=key, **profile_qcspin(
                    path, rep, scheme, dt, min(t_sim, 20.0), out)))
    load1 = os.getloadavg()
    out(f"# load average at start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, at end "
        f"{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} (2 cores: > 1 means other jobs competed); "
        f"benchmark wall time {time.perf_counter() - wall0:.0f} s")
    out("\n| device | representation | scheme | dt (fs) | ps / wall min | ps / CPU min | "
        "speed-up over NumPy | speed-up (CPU) | max abs dM | max abs dI_L (1/fs) |")
    out("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["diverged"] is not None:
            out(f"| {r['device']} | {r['representation']} | {r['method']} | {r['dt']:g} | "
                f"diverged at t = {r['diverged']:g} fs | | | | | |")
            continue
        mark = "*" if r["accepted"] else ""
        out(f"| {r['device']} | {r['representation']} | {r['method']} | {r['dt']:g}{mark} | "
            f"{r['ps_per_wall_min']:.3g} | {r['ps_per_cpu_min']:.3g} | {r['speedup']:.2f}x | "
            f"{r['speedup_cpu']:.2f}x | {r['errors'][0]:.1e} | {r['errors'][1]:.1e} |")
    out(f"* accepted: the NumPy code's largest stable step; qcspin's largest step with both "
        f"errors no larger than that NumPy row's.  Errors: max over t in [0, {t_sim:g}] fs "
        f"(every {sample:g} fs) and over the moving moments/components, against qcspin "
        f"monolithic at dt = {a.dt_ref:g} fs.  Speed-up: simulated time per wall (CPU) second "
        f"over the accepted NumPy row's.")
    if a.json:
        doc = {"args": vars(a), "t_sim": t_sim, "sample": sample, "loadavg_start": load0,
               "loadavg_end": load1, "rows": rows, "checks": checks, "profiles": profiles}
        with open(a.json, "w") as fh:
            json.dump(doc, fh, indent=1, default=float)
        out(f"# wrote {a.json}")


def _row_line(out, r: dict) -> None:
    if r["diverged"] is not None:
        out(f"   {r['method']:<26} dt = {r['dt']:<6g} diverged at t = {r['diverged']:g} fs")
        return
    out(f"   {r['method']:<26} dt = {r['dt']:<6g} {r['ps_per_wall_min']:8.3f} ps/wall min "
        f"{r['wall'] / r['steps'] * 1e3:8.2f} ms/step ({r['rhs_per_step']:.1f} RHS)  speed-up "
        f"{r['speedup']:6.2f}x | max |dM| {r['errors'][0]:.1e}, max |dI_L| "
        f"{r['errors'][1]:.1e} /fs{'  *' if r['accepted'] else ''}")
    w = r.get("where") or {}
    if w:
        out(f"   {'':<26} largest |dI_L| at t = {w['t_max_dI']:g} fs, |dM| at t = "
            f"{w['t_max_dM']:g} fs; after the transient (t >= {w['settle']:g} fs): max |dM| "
            f"{w['late_dM']:.1e}, max |dI_L| {w['late_dI']:.1e} /fs")


if __name__ == "__main__":
    main()
