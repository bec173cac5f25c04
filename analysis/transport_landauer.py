"""Energy integrals of the open spin valve: Landauer-Buttiker currents and the exact steady-state
density matrix (paper 004, Eqs. 11-14, App. G); see :mod:`analysis.transport` for the physics
and the conventions (re-exported there).

Methods.  ``poles`` (exact for wide-band leads: partial fractions of theta in the eigenvalues
lambda_n of H + Sigma and the digamma closed form of int (f_l - f_r)/(eps - z); round-off
~ cond(V) x 1e-16) and ``quad`` (adaptive Gauss-Kronrod 15/7 on panels split at mu_l, mu_r and
the resonances; exact Fermi functions; window mu -/+ 40 T, tail < e^-40; reaches rtol = 1e-10).
:func:`steady_state_density` uses the same closed form (no quadrature).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import scipy.linalg as sla
from scipy.special import psi

from analysis.transport_green import (
    CURRENT_METHODS,
    EIG_CHECK_TOL,
    METHODS,
    POLE_LIMIT,
    _check_device,
    _check_energies,
    _check_leads,
    _check_method,
    _check_params,
    _check_spins,
    _effective_hamiltonian,
    _EigDecomposition,
    _evaluator,
    _fail,
    _freeze,
    _Interface,
    _on_root,
)
from operators.fermi import fermi
from operators.hamiltonian import dense_hamiltonian
from operators.leads import Lead, pauli_on
from operators.quadrature import gauss_kronrod
from toolkit.device import Device
from toolkit.parallel import get_comm, round_robin

__all__ = ["LandauerCurrent", "landauer_current", "steady_state_density", "bond_currents",
           "gauss_kronrod", "TAIL"]

TAIL = 40.0            # integration window: mu -/+ TAIL * T (Fermi tails e^-40 = 4e-18)

# ----------------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class LandauerCurrent:
    """Steady-state currents between the two leads (e = hbar = 1, per time unit hbar/E0).

    particle : (1/2pi) int theta (f_l - f_r): electrons per time from l to r
    current  : particle/2, paper Eq. (11) (Re Tr Pi_l)
    spin_l   : (3,) paper Eq. (12) +Re Tr(sigma_a Pi_l): spin from the left reservoir into the valve
    spin_r   : (3,) paper Eq. (12) -Re Tr(sigma_a Pi_r): spin from the valve into the right one
    error    : estimated absolute error of ``particle`` (quad: sum |K15 - G7|, a generous bound;
               poles: round-off estimate); the spin entries have errors of the same size / 2
    """

    particle: float
    current: float
    spin_l: np.ndarray
    spin_r: np.ndarray
    error: float
    n_energies: int
    method: str
    mu_l: float
    mu_r: float
    temperature_l: float
    temperature_r: float

    def __post_init__(self) -> None:
        _freeze(self)


# ----------------------------------------------------------------------------- energy integrals
def _phi(z: np.ndarray, mu: float, T: float) -> np.ndarray:
    """Phi(z) with int f(eps) [1/(eps - z) - 1/(eps - w^*)] deps = Phi(z) - conj(Phi(w)) for
    Im z, Im w < 0 (Matsubara sum in closed form): psi(1/2 + (mu - z)/(2 pi i T)) - ln(1/(2 pi T))
    - i pi/2; at T = 0 the limit ln(-i (mu - z)) - i pi/2."""
    if T > 0:
        return psi(0.5 + (mu - z) / (2j * np.pi * T)) + np.log(2 * np.pi * T) - 0.5j * np.pi
    return np.log(-1j * (mu - z)) - 0.5j * np.pi


def _pair_kernel(lam: np.ndarray, F: np.ndarray) -> np.ndarray:
    """K_nm = [F_n - conj F_m]/(lam_n - conj lam_m) = int w(eps) d_n conj(d_m), d = 1/(eps - lam)
    (partial fractions; F = int w/(eps - lam) from :func:`_phi`)."""
    den = lam[:, None] - lam.conj()[None, :]
    num = F[:, None] - F.conj()[None, :]
    ok = np.abs(den) > 1e-300  # zero only for states decoupled from both leads (weight 0)
    return np.divide(num, den, out=np.zeros_like(num), where=ok)


def _poles_current(eig: _EigDecomposition, iface: _Interface, mus, temps) -> tuple:
    """Exact (1/2pi) int (f_l - f_r) x {theta, spin_l, spin_r} by partial fractions."""
    lam, V, W = eig.lam, eig.V, eig.W
    (gl, gr), il, ir = iface.gammas(0.0), iface.leads[0].interface, iface.leads[1].interface
    F = _phi(lam, mus[0], temps[0]) - _phi(lam, mus[1], temps[1])
    K = _pair_kernel(lam, F)
    Ql = W[:, il] @ gl @ W[:, il].conj().T
    Qr = W[:, ir] @ gr @ W[:, ir].conj().T

    def integral(P: np.ndarray, Q: np.ndarray) -> float:  # sum_nm Q_nm P_mn K_nm
        return float(np.einsum("nm,mn,nm->", Q, P, K).real) / (2 * np.pi)

    Vl, Vr = V[il], V[ir]
    theta = integral(Vl.conj().T @ gl @ Vl, Qr)
    spin_l = [integral(Vl.conj().T @ (iface.sig_l[a] @ gl) @ Vl, Qr) for a in range(3)]
    spin_r = [integral(Vr.conj().T @ (iface.sig_r[a] @ gr) @ Vr, Ql) for a in range(3)]
    scale = np.abs(Qr * (Vl.conj().T @ gl @ Vl).T * K).sum() / (2 * np.pi)
    err = max(eig.check_error, 1e-15) * scale
    return theta, np.array(spin_l), np.array(spin_r), err


def _adaptive_gk(func: Callable[[np.ndarray], np.ndarray], edges: np.ndarray, rtol: float,
                 atol: float, max_energies: int) -> tuple[np.ndarray, float, int, bool]:
    """Global adaptive Gauss-Kronrod 15/7 of a vector integrand on the panels between ``edges``.

    func(energies (n,)) -> (n, k); column 0 sets the scale: stop when sum |K - G| (max over
    components) <= max(atol, rtol * int |f_0|).  Panels are bisected in batches (all panels with
    an error above the mean allowed).  Returns (integral (k,), error, n_evaluations, converged).
    """
    x, wk, wg = gauss_kronrod()
    a, b = edges[:-1].astype(float), edges[1:].astype(float)
    done_K: list[np.ndarray] = []
    done_err: list[float] = []
    done_abs: list[float] = []
    n_eval, converged = 0, False
    while True:
        mid, half = 0.5 * (a + b), 0.5 * (b - a)
        nodes = (mid[:, None] + half[:, None] * x[None, :]).ravel()
        vals = func(nodes).reshape(len(a), 15, -1)
        n_eval += len(nodes)
        K = half[:, None] * np.einsum("n,pnk->pk", wk, vals)
        G = half[:, None] * np.einsum("n,pnk->pk", wg, vals)
        absK = half * (np.abs(vals[:, :, 0]) @ wk)
        err = np.abs(K - G).max(axis=1)
        tot_err = sum(done_err) + err.sum()
        tol = max(atol, rtol * (sum(done_abs) + absK.sum()))
        width = np.abs(b - a)
        tiny = width <= 1e-12 * max(1.0, np.abs(edges).max())
        # keep panels that are good enough (their share of the tolerance) or cannot be split
        keep = (err <= tol * width / (edges[-1] - edges[0])) | tiny
        if tot_err <= tol:
            keep[:] = True
            converged = True
        done_K += list(K[keep])
        done_err += list(err[keep])
        done_abs += list(absK[keep])
        if keep.all() or n_eval >= max_energies:
            if not keep.all():
                done_K += list(K[~keep])
                done_err += list(err[~keep])
            break
        split = ~keep
        a, b = (np.concatenate([a[split], mid[split]]), np.concatenate([mid[split], b[split]]))
    return np.sum(done_K, axis=0), float(np.sum(done_err)), n_eval, converged


def _window(mus, temps, extra) -> tuple[float, float, list[float]]:
    lo = min(m - TAIL * t for m, t in zip(mus, temps))
    hi = max(m + TAIL * t for m, t in zip(mus, temps))
    pts = [m for m in mus] + [p for p in extra if lo < p < hi]
    return lo, hi, pts


def _edges(lo: float, hi: float, points, temps, n_energy: int | None) -> np.ndarray:
    """Panel edges: breakpoints (mu's, resonances) plus a uniform grid of spacing <= pi T_min
    (the Fermi functions' poles are pi T off the axis) or (hi - lo)/n_energy."""
    tpos = [t for t in temps if t > 0]
    n = n_energy if n_energy is not None else int(math.ceil((hi - lo) / min(
        [0.25] + [math.pi * t for t in tpos])))
    grid = np.linspace(lo, hi, max(n, 1) + 1)
    e = np.unique(np.concatenate([grid, np.asarray(points, float)]))
    return e[(e >= lo) & (e <= hi)]


def _lead_state(left: Lead, right: Lead, mu_l, mu_r, temperature):
    mus = (left.mu if mu_l is None else mu_l, right.mu if mu_r is None else mu_r)
    for name, m in zip(("mu_l", "mu_r"), mus):
        if isinstance(m, bool) or not isinstance(m, numbers.Real) or not math.isfinite(m):
            _fail(name, m, "expected a finite real energy")
    if temperature is None:
        temps = (left.temperature, right.temperature)
    else:
        if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) \
                or not math.isfinite(temperature) or temperature < 0:
            _fail("temperature", temperature, "expected a finite k_B T >= 0 (or None: the leads')")
        temps = (float(temperature),) * 2
    return tuple(float(m) for m in mus), temps


def landauer_current(device: Device, leads, mu_l: float | None = None, mu_r: float | None = None,
                     temperature: float | None = None, spins=None, *, comm=None,
                     method: str = "auto", solver: str = "auto", rtol: float = 1e-10,
                     atol: float = 1e-15, n_energy: int | None = None, breakpoints=(),
                     max_energies: int = 400_000, params: Mapping | None = None,
                     distribute: Callable[[int, object], np.ndarray] = round_robin
                     ) -> LandauerCurrent:
    """Steady-state charge and spin currents (Landauer-Buttiker; paper Eqs. 11, 12, App. G).

    mu_l, mu_r   : chemical potentials [E0] (default: the leads'); temperature: k_B T [E0] of both
                   reservoirs (default: each lead's own); exact Fermi functions, T = 0 allowed
    method       : 'poles' (exact closed form, wide-band leads), 'quad' (adaptive Gauss-Kronrod
                   with the ``solver`` Green functions) or 'auto' (poles up to N_s = POLE_LIMIT)
    rtol, atol   : quad target: estimated error <= max(atol, rtol int |theta (f_l - f_r)|)
    n_energy     : number of initial quad panels (default: spacing <= min(0.25, pi T))
    breakpoints  : extra panel edges for quad (narrow resonances you know of); the leads'
                   ``band_edges()`` (finite-band leads) are always added
    Returns :class:`LandauerCurrent` (same on every rank).  Collective on ``comm``.
    """
    _check_device(device)
    S = _check_spins(device, spins)
    left, right = _check_leads(device, leads)
    _check_params(params)
    mus, temps = _lead_state(left, right, mu_l, mu_r, temperature)
    if not (1e-14 <= rtol < 1) or not atol >= 0:
        _fail("rtol, atol", (rtol, atol), "expected 1e-14 <= rtol < 1 (round-off floor) and "
              "atol >= 0")
    if n_energy is not None and (isinstance(n_energy, bool) or not isinstance(n_energy, int)
                                 or n_energy < 1):
        _fail("n_energy", n_energy, "expected an integer >= 1 or None")
    bp = _check_energies(breakpoints) if len(breakpoints) else np.zeros(0)
    meth = _check_method(method, CURRENT_METHODS, (left, right), device.n_orbitals)
    if solver not in METHODS:
        _fail("solver", solver, f"expected one of {list(METHODS)}")
    comm = get_comm(comm)
    kw = dict(mu_l=mus[0], mu_r=mus[1], temperature_l=temps[0], temperature_r=temps[1])
    if mus[0] == mus[1] and temps[0] == temps[1]:
        z = np.zeros(3)
        return LandauerCurrent(0.0, 0.0, z, z.copy(), 0.0, 0, "equilibrium", **kw)
    iface = _Interface(left, right, params)
    if meth == "poles":
        def build():
            eig = _EigDecomposition(_effective_hamiltonian(device, S, iface), iface.orbitals)
            return eig, (_poles_current(eig, iface, mus, temps)
                         if eig.check_error <= EIG_CHECK_TOL else None)
        eig, res = _on_root(build, comm)
        if res is not None:
            th, sl, sr, err = res
            return LandauerCurrent(th, th / 2, sl / 2, sr / 2, err, 0, "poles", **kw)
        if method == "poles":
            raise RuntimeError(f"H + Sigma is ill-conditioned for the pole formula (relative "
                               f"error {eig.check_error:.1e}); use method='quad'")
        bp = np.concatenate([bp, eig.lam.real])
    elif solver in ("auto", "eig") and iface.fixed and device.n_orbitals <= POLE_LIMIT:
        lam = _on_root(lambda: sla.eigvals(_effective_hamiltonian(device, S, iface)), comm)
        bp = np.concatenate([bp, lam.real])
    # band edges of finite-band leads (square-root kinks of theta): panel edges
    bp = np.concatenate([bp] + [np.asarray(l.band_edges(), float) for l in (left, right)])
    lo, hi, pts = _window(mus, temps, bp)
    edges = _edges(lo, hi, pts, temps, n_energy)
    ev = _evaluator(device, (left, right), S, comm, solver, params, distribute)

    def integrand(e: np.ndarray) -> np.ndarray:
        t = ev(e, dos=False)
        df = fermi(e, mus[0], temps[0]) - fermi(e, mus[1], temps[1])
        return t[:, :8] * df[:, None]

    try:
        val, err, n, ok = _adaptive_gk(integrand, edges, rtol, atol, max_energies)
    finally:
        ev.destroy()
    if not ok:
        raise RuntimeError(f"landauer_current: no convergence to rtol = {rtol} within "
                           f"{max_energies} energies (error {err / (2 * np.pi):.2e}); raise "
                           f"max_energies or add breakpoints at narrow resonances")
    val /= 2 * np.pi
    return LandauerCurrent(float(val[0]), float(val[0]) / 2, val[2:5] / 2, val[5:8] / 2,
                           err / (2 * np.pi), n, f"quad/{ev.method}", **kw)


def steady_state_density(device: Device, leads, mu_l: float | None = None,
                         mu_r: float | None = None, temperature: float | None = None,
                         spins=None, *, comm=None) -> np.ndarray:
    """Exact steady-state (or equilibrium, mu_l = mu_r) density matrix of the open device.

    rho = (1/2pi) int G^R (f_l Gamma_l + f_r Gamma_r) G^A deps, rho_ab = <c_b^dag c_a>, with the
    exact Fermi functions, evaluated in closed form from the eigen-decomposition of H + Sigma
    (wide-band leads; O(N_s^3)).  The t -> infinity limit of Eqs. (4)-(9) for fixed spins
    with N_p -> infinity poles.  Dense (N_s, N_s), the same on every rank.  Collective.
    """
    _check_device(device)
    S = _check_spins(device, spins)
    left, right = _check_leads(device, leads)
    mus, temps = _lead_state(left, right, mu_l, mu_r, temperature)
    _check_method("poles", CURRENT_METHODS, (left, right), device.n_orbitals)
    comm = get_comm(comm)
    iface = _Interface(left, right, None)

    def build():
        eig = _EigDecomposition(_effective_hamiltonian(device, S, iface), iface.orbitals)
        if eig.check_error > EIG_CHECK_TOL:
            raise RuntimeError(f"H + Sigma is ill-conditioned (relative error "
                               f"{eig.check_error:.1e}); no closed-form steady state")
        lam, V, W = eig.lam, eig.V, eig.W
        M = np.zeros((len(lam),) * 2, complex)
        for lead, g, mu, T in zip(iface.leads, iface.gammas(0.0), mus, temps):
            Wl = W[:, lead.interface]
            M += _pair_kernel(lam, _phi(lam, mu, T)) * (Wl @ g @ Wl.conj().T)
        rho = V @ M @ V.conj().T / (2 * np.pi)
        return 0.5 * (rho + rho.conj().T)

    return _on_root(build, comm)


def bond_currents(device: Device, rho: np.ndarray, spins=None, bonds=None) -> np.ndarray:
    """Particle and spin currents through bonds from a density matrix (paper Eqs. 13, 14).

    For each bond (j, j') (default: all ``device.bonds``) returns (4,) entries
    Tr[s (-i)(H_{j'j} rho_{jj'} - rho_{j'j} H_{jj'})] for s = 1, sigma_x, sigma_y, sigma_z: the
    flow of electrons (and of sigma_a) from j to j' per time.  Paper Eq. (13)/(14) is half of this
    (spin in units of hbar: s = sigma/2).  Serial; (n_bonds, 4).
    """
    S = _check_spins(device, spins)
    H = dense_hamiltonian(device, S)
    b = np.asarray(device.bonds if bonds is None else bonds)
    ops = np.concatenate([np.eye(2)[None], np.array([pauli_on(np.arange(2), a)
                                                     for a in range(3)])])
    out = np.empty((len(b), 4))
    for k, (j, jp) in enumerate(b):
        sj, sp = slice(2 * j, 2 * j + 2), slice(2 * jp, 2 * jp + 2)
        X = -1j * (H[sp, sj] @ rho[sj, sp] - rho[sp, sj] @ H[sj, sp])
        out[k] = np.einsum("aij,ji->a", ops, X).real
    return out
