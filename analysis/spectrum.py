"""Electronic spectrum of H(S) (paper 004, Eq. 1): the eigensolvers, eigenpairs with their spin
polarizations and layer localization, spectra versus J_sd (Fig. 2) and static spin
configurations.

    >>> sp = spectrum(device)                         # all eigenpairs (LAPACK)
    >>> sp = spectrum(device, nev=20, target=0.0)     # 20 nearest E_F (SLEPc shift-and-invert)
    >>> sw = spectrum_vs_jsd(device, np.linspace(0, 10, 101), "parallel")    # paper Fig. 2

Elsewhere: level analysis of the eigenvalues (splitting, gap, DOS, Fermi level) in
:mod:`analysis.levels`, spectra along a run (Fig. 18) in :mod:`analysis.trajectory_spectrum`,
their plots in :mod:`analysis.spectrum_plots`, the command ``qcspin spectrum`` in
:mod:`analysis.spectrum_cli`.

Units: energies are in the energy unit E0 of the device (the hopping gamma for ``natural``
units; eV for ``eV-fs``) and include the +mu_bar of Eq. (1); polarizations are dimensionless.
Half filling means n_sites electrons (the lowest n_sites of the 2 n_sites spin orbitals).

Methods: ``lapack`` (SciPy LAPACK on rank 0, broadcast), ``eps-lapack`` (SLEPc EPS type lapack,
collective), ``sinvert`` (SLEPc Krylov-Schur + shift-and-invert + MUMPS LU; ``nev`` eigenpairs
nearest ``target``).  The SLEPc solvers read options under ``-qcspin_spectrum_eps_``, e.g.
``-qcspin_spectrum_eps_tol 1e-10 -qcspin_spectrum_eps_ncv 128``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np
import scipy.linalg as sla

import toolkit  # noqa: F401  (complex petsc4py/slepc4py)
from operators.eigen import DENSE_LIMIT, eigs_slepc
from operators.hamiltonian import ElectronHamiltonian
from toolkit.device import Device, device_from_config
from toolkit.parallel import allreduce, bcast, gather_rows, get_comm, round_robin
from toolkit.petsc_options import DEFAULT_PREFIX, sub_prefix
from toolkit.schema import fail as _fail

from petsc4py import PETSc

__all__ = ["Spectrum", "SpectrumSweep", "METHODS", "CONFIGS", "spectrum", "spectrum_vs_jsd",
           "with_coupling", "layer_localization"]

METHODS = ("auto", "lapack", "eps-lapack", "sinvert")
CONFIGS = ("parallel", "perpendicular")
VECTOR_LIMIT = 2 ** 22  # complex entries (64 MiB) up to which eigenvectors are gathered by default
PREFIX = sub_prefix(DEFAULT_PREFIX, "spectrum")   # qcspin_spectrum_: H and its eigensolvers


def _frozen_arrays(obj) -> None:
    for value in vars(obj).values():
        if isinstance(value, np.ndarray):
            value.setflags(write=False)


@dataclass(frozen=True, eq=False)
class Spectrum:
    """Eigenpairs of H(S) for one spin configuration (read-only arrays).

    eigenvalues  : (n,) ascending [E0]
    polarization : (n, 3) <n|sigma_a|n>, a = x, y, z, summed over all sites (in [-1, 1])
    sigma_m      : (n,) <n| sum_j P_j sigma.m_j |n> over the magnetic sites j, m_j = S_j/|S_j|
                   (+1: electron spin along the local moment, i.e. raised by +J_sd/2 |S|)
    localization : (n_layers, n) P_l^n = sum_{j in l} |phi_n(r_j)|^2 (spin summed), layers in
                   the order of ``layer_names``
    eigenvectors : (N_s, n) gathered on every rank, or None when not requested / too large.
                   Degenerate eigenspaces are rotated to diagonalise sigma_z (spin up first) and
                   each vector's largest component is made real and positive.
    """

    eigenvalues: np.ndarray
    polarization: np.ndarray
    sigma_m: np.ndarray
    localization: np.ndarray
    eigenvectors: np.ndarray | None
    layer_names: tuple[str, ...]
    n_sites: int
    method: str
    complete: bool
    target: float | None

    def __post_init__(self) -> None:
        _frozen_arrays(self)


@dataclass(frozen=True, eq=False)
class SpectrumSweep:
    """Spectra versus J_sd (paper 004, Fig. 2): arrays of :class:`Spectrum` stacked on axis 0."""

    jsd: np.ndarray            # (n_points,) [E0]
    eigenvalues: np.ndarray    # (n_points, n) [E0]
    polarization: np.ndarray   # (n_points, n, 3)
    sigma_m: np.ndarray        # (n_points, n)
    localization: np.ndarray   # (n_points, n_layers, n)
    layer_names: tuple[str, ...]
    n_sites: int
    config: str | None
    method: str
    complete: bool

    def __post_init__(self) -> None:
        _frozen_arrays(self)


# ----------------------------------------------------------------------------- validation
def _check_spins(device: Device, spins) -> np.ndarray:
    if spins is None:
        return np.asarray(device.spins0, float)
    S = np.asarray(spins, float)
    if S.shape != (device.n_spins, 3) or not np.all(np.isfinite(S)):
        _fail("spins", f"array of shape {S.shape}", f"expected finite values of shape "
              f"({device.n_spins}, 3), one vector per classical spin")
    return S


def _check_solver(N: int, nev, target, method: str) -> tuple[int | None, str]:
    if method not in METHODS:
        _fail("method", method, f"expected one of {list(METHODS)}")
    if nev is not None and (isinstance(nev, bool) or not isinstance(nev, (int, np.integer))
                            or not 1 <= nev <= N):
        _fail("nev", nev, f"expected an integer 1 <= nev <= N_s = {N}, or None for all")
    if target is not None and (nev is None or not np.isfinite(target)):
        _fail("target", target, "expected a finite energy, given together with nev")
    if method == "auto":
        if N > DENSE_LIMIT and nev is None:
            _fail("nev", nev, f"N_s = {N} > {DENSE_LIMIT}: give nev (and target) for "
                  f"shift-and-invert, or force method='lapack' or 'eps-lapack'")
        method = "lapack" if N <= DENSE_LIMIT else "sinvert"
    if method == "sinvert" and (nev is None or nev >= N):
        _fail("nev", nev, f"method 'sinvert' needs 1 <= nev < N_s = {N}; use 'lapack' for all")
    return (None if nev is None else int(nev)), method


# ----------------------------------------------------------------------------- solvers
def _nearest(w: np.ndarray, nev: int | None, target: float) -> np.ndarray:
    """Indices (ascending energy) of the ``nev`` eigenvalues nearest ``target`` (all if None)."""
    if nev is None or nev >= len(w):
        return np.arange(len(w))
    return np.sort(np.argsort(np.abs(w - target), kind="stable")[:nev])


def _solve_lapack(H: ElectronHamiltonian, nev, target) -> tuple[np.ndarray, np.ndarray]:
    Hd = H.to_dense()
    out = None
    if H.comm.getRank() == 0:
        w, V = sla.eigh(Hd)
        keep = _nearest(w, nev, target)
        out = (w[keep], V[:, keep])
    return bcast(out, H.comm)


def _solve_eps_lapack(H: ElectronHamiltonian, nev, target) -> tuple[np.ndarray, np.ndarray]:
    from slepc4py import SLEPc

    eps = SLEPc.EPS().create(comm=H.comm)
    try:
        eps.setOptionsPrefix(sub_prefix(PREFIX, "eps"))
        eps.setOperators(H.mat)
        eps.setProblemType(SLEPc.EPS.ProblemType.HEP)
        eps.setType(SLEPc.EPS.Type.LAPACK)
        N = H.mat.getSize()[0]
        eps.setDimensions(nev=N)
        eps.setWhichEigenpairs(SLEPc.EPS.Which.SMALLEST_REAL)
        eps.setFromOptions()
        eps.solve()
        nconv = eps.getConverged()
        vr, _ = H.mat.createVecs()
        w = np.empty(nconv)
        V = np.empty((vr.getLocalSize(), nconv), complex)
        for i in range(nconv):
            w[i] = eps.getEigenpair(i, vr).real
            V[:, i] = vr.getArray(readonly=True)
        vr.destroy()
    finally:
        eps.destroy()
    order = np.argsort(w, kind="stable")
    w, V = w[order], V[:, order]
    keep = _nearest(w, nev, target)
    return w[keep], V[:, keep]


def _solve_sinvert(H: ElectronHamiltonian, nev, target) -> tuple[np.ndarray, np.ndarray]:
    try:
        return eigs_slepc(H.mat, nev, which="target", target=target,
                          prefix=sub_prefix(PREFIX, "eps"))
    except PETSc.Error as exc:
        raise RuntimeError(f"shift-and-invert at target = {target} failed ({exc}); if the "
                           f"target is an eigenvalue, move it slightly") from None


# ----------------------------------------------------------------------------- eigenvectors
def _resolve_degenerate(w: np.ndarray, V: np.ndarray, tol: float) -> np.ndarray:
    """Rotate each degenerate eigenspace (|Delta eps| <= tol) to diagonalise sigma_z, up first."""
    groups = np.split(np.arange(len(w)), np.flatnonzero(np.diff(w) > tol) + 1)
    V = V.copy()
    for g in (g for g in groups if len(g) > 1):
        u, d = V[0::2, g], V[1::2, g]
        _, U = np.linalg.eigh(u.conj().T @ u - d.conj().T @ d)
        V[:, g] = V[:, g] @ U[:, ::-1]
    return V


def _fix_phase(V: np.ndarray) -> np.ndarray:
    """Make the largest-magnitude component of each column real and positive."""
    top = V[np.argmax(np.abs(V), axis=0), np.arange(V.shape[1])]
    return V * (np.abs(top) / np.where(top == 0, 1, top))


def _site_blocks(V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-site spin densities of eigenvectors: (3, sites, n) <sigma_a>, and (sites, n) weight."""
    u, d = V[0::2], V[1::2]
    ud = u.conj() * d
    au, ad = np.abs(u) ** 2, np.abs(d) ** 2
    return np.stack([2 * ud.real, 2 * ud.imag, au - ad]), au + ad


def _layer_weights(w_site: np.ndarray, layer_of_site: np.ndarray, n_layers: int) -> np.ndarray:
    P = np.zeros((n_layers, w_site.shape[1]))
    inside = layer_of_site >= 0
    np.add.at(P, layer_of_site[inside], w_site[inside])
    return P


def _moments(V: np.ndarray, site0: int, device: Device, spins: np.ndarray) -> np.ndarray:
    """Partial sums over sites [site0, site0 + rows/2) of <sigma_a>, <sigma.m> and P_l,
    packed as (4 + n_layers, n) for a single reduction."""
    s, w_site = _site_blocks(V)
    n_loc = w_site.shape[0]
    sites = device.spin_sites
    mine = (sites >= site0) & (sites < site0 + n_loc)
    S = spins[mine]
    norm = np.linalg.norm(S, axis=1, keepdims=True)
    m = S / np.where(norm > 0, norm, 1.0)
    sigma_m = np.einsum("ka,akn->n", m, s[:, sites[mine] - site0])
    lay = device.layer_of_site[site0:site0 + n_loc]
    P = _layer_weights(w_site, lay, len(device.layer_names))
    return np.vstack([s.sum(axis=1), sigma_m[None], P])


# ----------------------------------------------------------------------------- public API
def spectrum(device: Device, spins: np.ndarray | None = None, *, comm=None,
             nev: int | None = None, target: float | None = None, method: str = "auto",
             vectors: bool | None = None) -> Spectrum:
    """Eigenvalues, spin polarizations and layer weights of H(S) (Eq. 1).  Collective on ``comm``.

    spins   : (n_spin, 3) classical spins, the same on every rank (default ``device.spins0``)
    nev     : number of eigenpairs nearest ``target`` [E0] (default target: mu_bar, the centre
              of the band = half-filling Fermi level); None = all N_s eigenpairs
    method  : 'auto' (LAPACK for N_s <= operators.eigen.DENSE_LIMIT, else 'sinvert'), 'lapack',
              'eps-lapack' or 'sinvert' (Krylov-Schur + shift-and-invert + MUMPS, needs nev < N_s)
    vectors : gather the eigenvectors on every rank (default: when N_s x n <= 2**22)

    Every rank returns the same :class:`Spectrum`.  Polarizations of degenerate levels depend on
    the basis chosen inside the eigenspace; with gathered vectors it diagonalises sigma_z.
    """
    S = _check_spins(device, spins)
    N = device.n_orbitals
    nev, method = _check_solver(N, nev, target, method)
    target = float(device.mu_bar if target is None else target)
    comm = get_comm(comm)
    H = ElectronHamiltonian(device, comm, spins=S, prefix=PREFIX)
    try:
        solve = {"lapack": _solve_lapack, "eps-lapack": _solve_eps_lapack,
                 "sinvert": _solve_sinvert}[method]
        w, V = solve(H, nev, target)
        site0 = H.dist.site_start
    finally:
        H.destroy()
    gather = vectors if vectors is not None else N * len(w) <= VECTOR_LIMIT
    if V.shape[0] < N and gather:
        V = gather_rows(V, comm, root=None)
    if V.shape[0] == N:  # full vectors, identical on every rank
        V = _fix_phase(_resolve_degenerate(w, V, 1e-10 * (1.0 + np.abs(w).max())))
        mom = _moments(V, 0, device, S)
    else:
        mom = allreduce(_moments(V, site0, device, S), comm)
    return Spectrum(eigenvalues=w, polarization=mom[:3].T.copy(), sigma_m=mom[3].copy(),
                    localization=mom[4:].copy(), eigenvectors=V if gather else None,
                    layer_names=device.layer_names, n_sites=device.n_sites, method=method,
                    complete=len(w) == N, target=None if nev is None else target)


def with_coupling(device: Device, J_sd: float | None = None, config: str | None = None) -> Device:
    """A copy of ``device`` with J_sd [E0] on every magnetic layer and a static configuration.

    config: None (keep ``device.spins0``), 'parallel' (all magnetic layers along +z) or
    'perpendicular' (first magnetic layer along +x, the others along +z; paper 004, Sec. III A).
    """
    if config is not None and config not in CONFIGS:
        _fail("config", config, f"expected one of {list(CONFIGS)} or None")
    if J_sd is not None and not np.isfinite(J_sd):
        _fail("J_sd", J_sd, "expected a finite real number")
    if config is None:
        return device if J_sd is None else device.with_params(J_sd=float(J_sd))
    cfg = device.config
    mags = [i for i, l in enumerate(cfg.layers) if l.magnetic]
    first = min(mags, key=lambda i: cfg.layers[i].columns[0]) if mags else -1
    layers = []
    for i, layer in enumerate(cfg.layers):
        kw: dict[str, Any] = {}
        if i in mags and J_sd is not None:
            kw["J_sd"] = float(J_sd)
        if i in mags and config is not None:
            kw.update(spins=None, spin=(1.0, 0.0, 0.0) if config == "perpendicular" and i == first
                      else (0.0, 0.0, 1.0))
        layers.append(replace(layer, **kw))
    return device_from_config(replace(cfg, layers=tuple(layers)))


def _stack(parts: list[Spectrum], n: int, n_layers: int) -> list[np.ndarray]:
    shapes = [(n,), (n, 3), (n,), (n_layers, n)]
    names = ["eigenvalues", "polarization", "sigma_m", "localization"]
    return [np.array([getattr(p, k) for p in parts]).reshape((len(parts),) + s)
            for k, s in zip(names, shapes)]


def spectrum_vs_jsd(device: Device, jsd_values, config: str | None = "parallel", *, comm=None,
                    nev: int | None = None, target: float | None = None,
                    method: str = "auto",
                    distribute: Callable[[int, object], np.ndarray] = round_robin) -> SpectrumSweep:
    """Spectra for each J_sd in ``jsd_values`` [E0] (all magnetic layers), paper 004 Fig. 2.

    ``config``: see :func:`with_coupling`.  With the LAPACK method the points are shared out
    over the ranks of ``comm`` by ``distribute`` (each solved on COMM_SELF); otherwise every
    point is solved collectively.  Colour Fig. 2 by ``polarization[..., 2]``.  Collective.
    """
    jsd = np.atleast_1d(np.asarray(jsd_values, float))
    if jsd.ndim != 1 or not len(jsd) or not np.all(np.isfinite(jsd)):
        _fail("jsd_values", jsd_values, "expected a non-empty 1D sequence of finite numbers")
    base = with_coupling(device, None, config)
    devs = [base.with_params(J_sd=float(J)) for J in jsd]   # the geometry shared
    nev, method = _check_solver(device.n_orbitals, nev, target, method)
    comm = get_comm(comm)
    n = device.n_orbitals if nev is None else nev
    nl = len(device.layer_names)
    kw: dict[str, Any] = dict(nev=nev, target=target, method=method, vectors=False)
    if method == "lapack":
        mine = np.asarray(distribute(len(jsd), comm), dtype=np.int64)
        parts = [spectrum(devs[i], comm=PETSc.COMM_SELF, **kw) for i in mine]
        idx = gather_rows(mine, comm, root=None)
        arrays = [gather_rows(a, comm, root=None) for a in _stack(parts, n, nl)]
        order = np.argsort(idx, kind="stable")
        if not np.array_equal(idx[order], np.arange(len(jsd))):
            raise ValueError("distribute must assign every J_sd point to exactly one rank")
        arrays = [a[order] for a in arrays]
    else:
        arrays = _stack([spectrum(d, comm=comm, **kw) for d in devs], n, nl)
    eigenvalues, polarization, sigma_m, localization = arrays
    return SpectrumSweep(jsd, eigenvalues, polarization, sigma_m, localization,
                         layer_names=device.layer_names, n_sites=device.n_sites,
                         config=config, method=method, complete=n == device.n_orbitals)


def layer_localization(eigenvectors: np.ndarray, device: Device) -> np.ndarray:
    """P_l^n = sum_{j in l} |phi_n(r_j)|^2, spin summed (paper 004, Appendix B, Fig. 16).

    eigenvectors (N_s, n) (columns normalised); returns (n_layers, n) in the order of
    ``device.layer_names``.  Sites outside every layer are not counted, so the rows sum to 1
    when the layers cover the device.
    """
    V = np.asarray(eigenvectors)
    if V.ndim != 2 or V.shape[0] != device.n_orbitals:
        _fail("eigenvectors", f"array of shape {V.shape}",
              f"expected shape ({device.n_orbitals}, n): one column per eigenstate")
    _, w_site = _site_blocks(V)
    return _layer_weights(w_site, np.asarray(device.layer_of_site), len(device.layer_names))
