"""Initial electron density matrices by diagonalisation of H(S0)."""
from __future__ import annotations

import warnings

import numpy as np

from operators.eigen import DENSE_LIMIT, eigh_dense, eigs_slepc
from operators.fermi import fermi as _fermi
from operators.hamiltonian import ElectronHamiltonian
from toolkit.config import ElectronsConfig
from toolkit.parallel import ring_outer
from toolkit.petsc_options import sub_prefix

__all__ = ["fermi", "initial_density"]


def fermi(eps: np.ndarray, temperature: float, mu: float = 0.0) -> np.ndarray:
    """Fermi-Dirac occupation f(eps) at ``temperature`` and ``mu``: :func:`operators.fermi.fermi`
    (overflow-safe, accurate in the tails).  It replaced 0.5 (1 - tanh(x/2)), which lost the
    upper tail (f = 0 for x > ~38); the ``fermi`` initial density moved by round-off only
    (<= 1.1e-16 absolute, 1.7e-16 relative to its largest entry, on the test devices)."""
    return _fermi(eps, mu, temperature)


#: largest error of the Padé Fermi function over the spectrum in the ``fermi`` pole sum
FERMI_POLE_TOL = 1e-12


def fermi_pole_sum(H: ElectronHamiltonian, temperature: float, mu: float = 0.0) -> np.ndarray:
    """Local rows of f(H) at ``temperature`` and ``mu`` without eigenvectors: the pole sum
    f(H) = 1/2 + (1/beta) sum_p eta_p [G(chi_p) + G(chi_p)^dag], G(z) = (z - H)^-1 (sparse LU
    solves with MUMPS, integrators.stationary), with the fewest PSD poles whose Padé error is
    <= FERMI_POLE_TOL over the Gershgorin interval of H's spectrum.  Collective."""
    from operators.pade import choose_n_poles, pade_poles

    from .stationary import _pole_sum, _Solver
    from .window import _spectral_bounds

    beta = 1.0 / float(temperature)
    A0 = H.mat.duplicate(copy=True)
    try:
        c, rad = _spectral_bounds(A0)
        window = (c - rad - mu, c + rad - mu)
        try:
            n = choose_n_poles(beta, window, FERMI_POLE_TOL)
        except ValueError as e:
            raise ValueError(f"electrons.temperature = {temperature}: the Fermi pole sum needs "
                             f"more poles than allowed over the spectrum [{window[0]:.3g}, "
                             f"{window[1]:.3g}] ({e}); use electrons.eigensolver = 'lapack' "
                             f"or 'slepc'") from None
        solver = _Solver(A0, sub_prefix(H.prefix, "fermi"))
        try:
            rho, _ = _pole_sum(solver, H, mu, beta, pade_poles(n))
        finally:
            solver.destroy()
    finally:
        A0.destroy()
    return rho


def _occupations(w: np.ndarray, cfg: ElectronsConfig, n_e: int) -> np.ndarray:
    if cfg.initial == "fermi":
        return fermi(w, cfg.temperature)
    if cfg.initial not in ("ground", "auto"):
        raise ValueError(f"electrons.initial = {cfg.initial!r} is not a diagonalisation state")
    f = np.zeros(len(w))
    f[:n_e] = 1.0
    if 0 < n_e < len(w) and w[n_e] - w[n_e - 1] < 1e-9:
        warnings.warn(f"ground state is degenerate at the Fermi level (eps_{n_e - 1} = "
                      f"{w[n_e - 1]:.6g}, eps_{n_e} = {w[n_e]:.6g}); the occupied set is arbitrary",
                      RuntimeWarning, stacklevel=3)
    return f


def initial_density(H: ElectronHamiltonian, cfg: ElectronsConfig) -> np.ndarray:
    """Local rows (n_local_rows, N_s) of rho = sum_n f_n |n><n| for H(S0).  Collective.

    ``ground``: the lowest ``n_electrons`` levels (default: half filling, one per site).
    ``fermi``: f(eps) at ``temperature`` with chemical potential 0 (mu_bar is inside H).
    LAPACK for N_s <= 4000 (or eigensolver = 'lapack'); above, ``ground`` by SLEPc
    Krylov-Schur (rho's rows by a ring of the eigenvector blocks, never all of them on one
    rank) and ``fermi`` by the Padé pole sum of sparse LU solves (eigensolver = 'poles': no
    eigenvectors at all, :func:`fermi_pole_sum`); eigensolver = 'slepc' forces SLEPc.
    """
    dev = H.device
    N = dev.n_orbitals
    n_e = dev.n_sites if cfg.n_electrons is None else cfg.n_electrons
    solver = cfg.eigensolver
    if solver == "auto":
        solver = ("lapack" if N <= DENSE_LIMIT
                  else "poles" if cfg.initial == "fermi" else "slepc")
    if solver == "poles":
        if cfg.initial != "fermi":
            raise ValueError(f"electrons.eigensolver = 'poles' is for initial = 'fermi' only "
                             f"(here {cfg.initial!r})")
        return fermi_pole_sum(H, cfg.temperature)
    r0, r1 = H.dist.row_start, H.dist.row_start + H.dist.n_local_rows
    if solver == "lapack":
        w, V = eigh_dense(H)
        f = _occupations(w, cfg, n_e)
        keep = f > 1e-300
        Vk = V[:, keep]
        return (Vk[r0:r1] * f[keep]) @ Vk.conj().T
    # SLEPc: only the occupied part of the spectrum is needed
    if cfg.initial != "fermi":
        nev = n_e
    else:
        w_all, _ = eigs_slepc(H.mat, min(N, n_e + 64), prefix=sub_prefix(H.prefix, "eps"))
        nev = int(np.sum(fermi(w_all, cfg.temperature) > 1e-16))
    w, Vloc = eigs_slepc(H.mat, nev, prefix=sub_prefix(H.prefix, "eps"))
    f = _occupations(np.concatenate([w, [np.inf]]), cfg, n_e)[:nev]
    # rho's local rows (Vloc f) V^dag without gathering V: its row blocks travel around a ring
    counts = np.array([2 * (b - a) for a, b in H.dist.site_ranges])
    return ring_outer(Vloc * f, Vloc, H.comm, counts)
