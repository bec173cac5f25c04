"""Electronic spectrum of H(S) (paper 004, Eq. 1): eigenpairs, spin polarizations, magnetic
splitting, DOS, layer localization, spectra along a trajectory, and ``qcspin spectrum``.

    >>> sp = spectrum(device)                         # all eigenpairs (LAPACK)
    >>> sp = spectrum(device, nev=20, target=0.0)     # 20 nearest E_F (SLEPc shift-and-invert)
    >>> sw = spectrum_vs_jsd(device, np.linspace(0, 10, 101), "parallel")    # paper Fig. 2
    >>> splitting(sw.eigenvalues, device.n_sites)    # Delta-epsilon at half filling (Fig. 4b)

Units: energies are in the energy unit E0 of the device (the hopping gamma for ``natural``
units; eV for ``eV-fs``) and include the +mu_bar of Eq. (1); polarizations are dimensionless.
Half filling means n_sites electrons (the lowest n_sites of the 2 n_sites spin orbitals).

Methods: ``lapack`` (SciPy LAPACK on rank 0, broadcast), ``eps-lapack`` (SLEPc EPS type lapack,
collective), ``sinvert`` (SLEPc Krylov-Schur + shift-and-invert + MUMPS LU; ``nev`` eigenpairs
nearest ``target``).  The SLEPc solvers read options under ``-qcspin_spectrum_eps_``, e.g.
``-qcspin_spectrum_eps_tol 1e-10 -qcspin_spectrum_eps_ncv 128``.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, replace
from typing import Any, Callable

import h5py
import numpy as np
import scipy.linalg as sla

import toolkit  # noqa: F401  (complex petsc4py/slepc4py)
from operators.eigen import DENSE_LIMIT, eigs_slepc
from operators.hamiltonian import ElectronHamiltonian, dense_hamiltonian, sd_blocks
from toolkit.config import config_from_dict
from toolkit.device import Device, device_from_config
from toolkit.parallel import allreduce, bcast, gather_rows, get_comm, round_robin
from toolkit.petsc_options import DEFAULT_PREFIX, sub_prefix
from toolkit.schema import fail as _fail

from petsc4py import PETSc

__all__ = ["Spectrum", "SpectrumSweep", "TrajectorySpectrum", "METHODS", "spectrum",
           "spectrum_vs_jsd", "with_coupling", "splitting", "gap", "dos", "layer_localization",
           "trajectory_spectrum", "configuration_eigenvalues",
           "plot_sweep", "plot_spectrum", "fermi_level"]

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


@dataclass(frozen=True, eq=False)
class TrajectorySpectrum:
    """Instantaneous spectra of H(S(t)) along a run (paper 004, Fig. 18)."""

    time: np.ndarray         # (nt,) [time unit of the run]
    eigenvalues: np.ndarray  # (nt, N_s) [E0]
    splitting: np.ndarray    # (nt,) eps_{n_e-1} - eps_{n_e-2} [E0]
    gap: np.ndarray          # (nt,) eps_{n_e} - eps_{n_e-1} [E0]
    n_electrons: int
    time_unit: str
    energy_unit: str

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


def _level_index_check(eigenvalues, n_electrons: int, lo: int, hi_offset: int,
                       what: str) -> np.ndarray:
    e = np.asarray(eigenvalues, float)
    n = e.shape[-1] if e.ndim else 0
    if isinstance(n_electrons, bool) or not isinstance(n_electrons, (int, np.integer)) \
            or not lo <= n_electrons <= n - hi_offset:
        _fail("n_electrons", n_electrons, f"{what} needs an integer {lo} <= n_electrons <= "
              f"{n - hi_offset} for {n} levels")
    return e


def splitting(eigenvalues, n_electrons: int) -> np.ndarray:
    """Delta-epsilon = eps_{n_e-1} - eps_{n_e-2} [E0]: the two highest occupied levels (Fig. 4b).

    ``eigenvalues`` (..., n) ascending, starting at the lowest level (a complete spectrum or
    its lowest part); leading axes (e.g. J_sd, time) are kept.
    """
    e = _level_index_check(eigenvalues, n_electrons, 2, 0, "splitting")
    return e[..., n_electrons - 1] - e[..., n_electrons - 2]


def gap(eigenvalues, n_electrons: int) -> np.ndarray:
    """HOMO-LUMO gap eps_{n_e} - eps_{n_e-1} [E0] at filling ``n_electrons`` (Fig. 18c)."""
    e = _level_index_check(eigenvalues, n_electrons, 1, 1, "gap")
    return e[..., n_electrons] - e[..., n_electrons - 1]


def dos(eigenvalues, energies, broadening: float, *, n_sites: int | None = None,
        shape: str = "lorentzian") -> np.ndarray:
    """Broadened density of states per site, DOS(E) = (1/n_sites) sum_n delta_eta(E - eps_n).

    Units: states per site per E0.  Each level has weight 1 (one spin orbital), so for a
    complete spectrum (2 n_sites levels) the DOS integrates to 2 over all energies.
    eigenvalues (..., n) [E0]; energies (m,) [E0]; broadening eta > 0 [E0]: the half width of
    the Lorentzian (eta/pi)/((E-eps)^2 + eta^2) or the standard deviation of the Gaussian.
    n_sites defaults to n/2 (complete spectrum).  Returns (..., m).
    """
    e = np.asarray(eigenvalues, float)
    E = np.asarray(energies, float)
    if not (np.isfinite(broadening) and broadening > 0):
        _fail("broadening", broadening, "expected a finite energy > 0")
    if shape not in ("lorentzian", "gaussian"):
        _fail("shape", shape, "expected 'lorentzian' or 'gaussian'")
    if E.ndim != 1:
        _fail("energies", f"array of shape {E.shape}", "expected a 1D array")
    sites: float = e.shape[-1] / 2 if n_sites is None else n_sites
    if not sites > 0:
        _fail("n_sites", sites, "expected a number of sites > 0")
    x = E[:, None] - e[..., None, :]
    if shape == "lorentzian":
        k = (broadening / np.pi) / (x * x + broadening ** 2)
    else:
        k = np.exp(-0.5 * (x / broadening) ** 2) / (np.sqrt(2 * np.pi) * broadening)
    return k.sum(axis=-1) / sites


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


# ----------------------------------------------------------------------------- trajectories
def _batched_eigvalsh(device: Device, spins: np.ndarray, chunk: int = 128) -> np.ndarray:
    """Eigenvalues of H(S_k) for a stack of configurations (nt, n_spin, 3), vectorised."""
    H0 = dense_hamiltonian(device, np.zeros((device.n_spins, 3)))
    j = device.spin_sites
    out = np.empty((len(spins), device.n_orbitals))
    for a in range(0, len(spins), chunk):
        S = spins[a:a + chunk]
        H = np.repeat(H0[None], len(S), axis=0)
        blk = sd_blocks(device.J_sd, S)                 # the s-d entries of dense_hamiltonian
        for k, (r, c) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            H[:, 2 * j + r, 2 * j + c] += blk[:, k]
        out[a:a + chunk] = np.linalg.eigvalsh(H)
    return out


def configuration_eigenvalues(device: Device, spins_t, *, comm=None,
                              distribute: Callable[[int, object], np.ndarray] = round_robin
                              ) -> np.ndarray:
    """All eigenvalues [E0] of H(S_k) for a stack of spin configurations ``spins_t``
    (nt, n_spin, 3), shape (nt, N_s).  The configurations are shared out over ``comm`` by
    ``distribute`` and diagonalised densely (stacked LAPACK); every rank gets all.  Collective.
    """
    S = np.asarray(spins_t, float)
    if S.ndim != 3 or S.shape[1:] != (device.n_spins, 3):
        _fail("spins_t", f"array of shape {S.shape}",
              f"expected shape (nt, {device.n_spins}, 3)")
    comm = get_comm(comm)
    mine = np.asarray(distribute(len(S), comm), dtype=np.int64)
    w = _batched_eigvalsh(device, S[mine])
    idx = gather_rows(mine, comm, root=None)
    w = gather_rows(w, comm, root=None)
    order = np.argsort(idx, kind="stable")
    if not np.array_equal(idx[order], np.arange(len(S))):
        raise ValueError("distribute must assign every configuration to exactly one rank")
    return w[order]


def _read_run(path: str, stride: int) -> dict:
    if not os.path.exists(path):
        raise FileNotFoundError(f"result file '{path}' does not exist")
    with h5py.File(path, "r") as f:
        if "spins" not in f or "config" not in f.attrs:
            _fail("result_h5", path, "expected a qcspin run file with /spins and a config")
        return {"time": f["time"][::stride], "spins": f["spins"][::stride],
                "time_unit": str(f["time"].attrs.get("units", "")),
                "energy_unit": str(f.attrs.get("energy_unit", "")),
                "config": str(f.attrs["config"])}


def trajectory_spectrum(result_h5: str, *, comm=None, stride: int = 1,
                        n_electrons: int | None = None,
                        distribute: Callable[[int, object], np.ndarray] = round_robin
                        ) -> TrajectorySpectrum:
    """Spectrum, Delta-epsilon and gap of H(S(t)) for each stored spin configuration of a run
    (paper 004, Appendix D, Fig. 18).  Collective on ``comm``.

    Rank 0 reads every ``stride``-th record of ``result_h5``; the time points are shared out
    by ``distribute`` and diagonalised densely (LAPACK, stacked); all ranks get all results.
    n_electrons defaults to the run's ``[electrons] n_electrons`` or half filling (n_sites).
    """
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        _fail("stride", stride, "expected an integer >= 1")
    comm = get_comm(comm)
    data, err = None, None
    if comm.getRank() == 0:
        try:
            data = _read_run(result_h5, int(stride))
        except (OSError, ValueError) as exc:
            err = exc
    err = bcast(err, comm)
    if err is not None:
        raise err
    data = bcast(data, comm)
    device = device_from_config(config_from_dict(tomllib.loads(data["config"])))
    n_e = device.n_sites if n_electrons is None else n_electrons
    if n_electrons is None and device.config.electrons.n_electrons is not None:
        n_e = device.config.electrons.n_electrons
    w = configuration_eigenvalues(device, data["spins"], comm=comm, distribute=distribute)
    return TrajectorySpectrum(time=np.asarray(data["time"], float), eigenvalues=w,
                              splitting=splitting(w, n_e), gap=gap(w, n_e), n_electrons=int(n_e),
                              time_unit=data["time_unit"], energy_unit=data["energy_unit"])


# ----------------------------------------------------------------------------- output
def _result_datasets(res: Spectrum | SpectrumSweep, E: str, n_e: int) -> dict:
    d = {"eigenvalues": (res.eigenvalues, E, "eigenvalues of H(S), ascending, incl. mu_bar"),
         "polarization": (res.polarization, "", "<n|sigma_a|n>, last axis a = x, y, z"),
         "sigma_m": (res.sigma_m, "", "<n|sigma.m_j|n> summed over magnetic sites, m = S/|S|"),
         "localization": (res.localization, "", "P_l^n = sum_{j in l} |phi_n(r_j)|^2; axis -2 "
                          "= layers (attribute 'layers')")}
    if isinstance(res, SpectrumSweep):
        d["J_sd"] = (res.jsd, E, "s-d coupling of all magnetic layers")
    if res.complete and 2 <= n_e < res.eigenvalues.shape[-1]:
        d["splitting"] = (splitting(res.eigenvalues, n_e), E, "eps_{n_e-1} - eps_{n_e-2}")
        d["gap"] = (gap(res.eigenvalues, n_e), E, "eps_{n_e} - eps_{n_e-1} (HOMO-LUMO)")
    return d


# ----------------------------------------------------------------------------- plots
def plot_sweep(ax, sweep: SpectrumSweep, *, component: int = 2, ylim=None, size: float = 2.0):
    """Scatter the levels of a sweep versus J_sd, coloured by <sigma_component> (red = up)."""
    n = sweep.eigenvalues.shape[1]
    x, y = np.repeat(sweep.jsd, n), sweep.eigenvalues.ravel()
    c = sweep.polarization[..., component].ravel()
    if ylim is not None:
        sel = (y >= ylim[0]) & (y <= ylim[1])
        x, y, c = x[sel], y[sel], c[sel]
        ax.set_ylim(*ylim)
    sc = ax.scatter(x, y, c=c, s=size, cmap="bwr", vmin=-1, vmax=1, lw=0, rasterized=True)
    ax.set_xlabel(r"$J_{sd}$")
    ax.set_ylabel(r"$\varepsilon$")
    return sc


def fermi_level(res: Spectrum | SpectrumSweep, n_electrons: int | None = None,
                mu_bar: float | None = None) -> tuple[np.ndarray | float | None, str]:
    """The Fermi level that ``qcspin spectrum`` implies, for marking it in a plot, and how it
    was found: with a complete spectrum the middle of the gap, (eps_{n_e-1} + eps_{n_e})/2,
    at filling ``n_electrons`` (default half filling, n_sites; per J_sd for a sweep); for an
    incomplete spectrum at half filling ``mu_bar`` (the band centre of the bipartite lattice);
    otherwise (None, why not).  [E0]"""
    n_e = res.n_sites if n_electrons is None else int(n_electrons)
    w = np.asarray(res.eigenvalues, float)
    n = w.shape[-1]
    if res.complete and 1 <= n_e < n:
        return 0.5 * (w[..., n_e - 1] + w[..., n_e]), (f"$E_F$ (mid-gap, $n_e$ = {n_e})")
    if res.complete and n_e == n:
        return w[..., -1], f"$E_F$ = top level (all {n} levels filled)"
    if n_e == res.n_sites and mu_bar is not None:
        return float(mu_bar), r"$E_F = \bar\mu$ (half filling)"
    return None, (f"E_F not marked: {n} of {2 * res.n_sites} levels at n_e = {n_e}"
                  if not res.complete else f"E_F not marked: n_e = {n_e}")


def plot_spectrum(res: Spectrum | SpectrumSweep, png: str, *, title: str = "",
                  n_electrons: int | None = None, mu_bar: float | None = None,
                  energy_unit: str = "") -> str:
    """PNG of a sweep (levels vs J_sd) or of one spectrum (levels vs index), coloured by
    <sigma_z>, with the Fermi level of :func:`fermi_level` (filling ``n_electrons``, default
    half filling; ``mu_bar`` for incomplete spectra).  Serial (call on one rank); returns the
    path."""
    from analysis.plots import save_figure, use_agg

    plt = use_agg()
    u = f" [{energy_unit}]" if energy_unit else ""
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    EF, how = fermi_level(res, n_electrons, mu_bar)
    if isinstance(res, SpectrumSweep):
        sc = plot_sweep(ax, res, size=4)
        ax.set_xlabel(r"$J_{sd}$" + u)
        if EF is not None:
            ax.plot(res.jsd, np.broadcast_to(EF, res.jsd.shape), "k--", lw=0.9, label=how)
    else:
        sc = ax.scatter(np.arange(len(res.eigenvalues)), res.eigenvalues, s=12, cmap="bwr",
                        c=res.polarization[:, 2], vmin=-1, vmax=1)
        ax.set_xlabel("level index n")
        if EF is not None:
            w = np.asarray(res.eigenvalues, float)
            ef = float(EF) if abs(float(EF)) > 1e-10 * max(1.0, np.abs(w).max()) else 0.0
            ax.axhline(ef, color="k", ls="--", lw=0.9, label=f"{how}: {ef:.6g}")
        if not res.complete:
            ax.set_xlabel(f"index among the {len(res.eigenvalues)} computed levels"
                          + (f" nearest {res.target:g}" if res.target is not None else ""))
    ax.set_ylabel(r"$\varepsilon_n$" + u)
    if EF is not None:
        ax.legend(fontsize=8, loc="upper left")
    else:
        ax.text(0.02, 0.98, how, transform=ax.transAxes, va="top", fontsize=8, color="0.3")
    fig.colorbar(sc, ax=ax, label=r"$\langle\sigma_z\rangle$")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, png)
