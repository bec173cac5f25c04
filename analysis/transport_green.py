"""Green functions and transmission of the open spin valve (paper 004, Eqs. 16-18); the core of
:mod:`analysis.transport` (which documents the physics and re-exports the public names).

For a fixed spin configuration S and two leads l = ``leads[0]``, r = ``leads[1]`` (see
:mod:`operators.leads`), G^R(eps) = (eps - H(S) - Sigma_l^R - Sigma_r^R)^-1:

    theta(eps)     = Tr[Gamma_l G^R Gamma_r G^A]                         (Eq. 16)
    spin_r(eps)_a  = Tr[sigma_a Gamma_r G^R Gamma_l G^A]   a = x, y, z   (right interface)
    spin_l(eps)_a  = Tr[sigma_a Gamma_l G^R Gamma_r G^A]                 (left interface)
    dos(eps)       = -Im Tr G^R / (pi N), N = sites                      (Eq. 18)

Methods.  ``mumps`` (PETSc AIJ for A = eps - H - Sigma, KSP preonly + LU + MUMPS; one numeric
factorisation per energy reusing the symbolic one; G^R[:, interface] by MatMatSolve against the
n_I interface columns; Tr G^R from MUMPS's selected inverse entries (ICNTL(30))), ``dense``
(NumPy inverse per energy, the reference) and ``eig`` (scipy.linalg.eig of the non-Hermitian
H_eff = H + Sigma once, energy-independent leads only: G^R(eps) = V (eps - Lambda)^-1 V^-1,
checked against a direct solve at two energies; 'auto' up to N_s = EIG_LIMIT).

Leads.  Any :class:`operators.leads.Lead`: energy-independent ones (wide band) are folded into
the matrix once; energy-dependent ones (e.g. the finite-band TightBindingLead) are evaluated
once per energy (the same Sigma(E) builds the LU and Gamma(E) = i (Sigma - Sigma^dag)), with
their full n_l x n_l blocks in the sparsity pattern unless ``is_diagonal``.  Energies are real
(E + i0).  Outside a finite lead band Gamma = 0 (no transmission); a bound state of the open
device or a band-edge threshold of a matched lead makes eps - H - Sigma singular at isolated
energies: such an energy is reported as a ValueError naming it (MUMPS: non-finite solve;
dense: singular matrix), never returned as inf/NaN.

MPI: energies are shared out over ``comm`` by ``distribute`` (default round robin); each rank
solves on PETSc.COMM_SELF and all ranks get all results.  PETSc options of the solvers are read
under ``-qcspin_transport_``.  The validation helpers and :func:`_on_root` / :func:`_evaluator`
are shared with :mod:`analysis.transport_landauer`.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import scipy.linalg as sla

import toolkit  # noqa: F401  (complex petsc4py)
from analysis.spectrum import _frozen_arrays as _freeze
from operators.hamiltonian import ElectronHamiltonian, dense_hamiltonian
from operators.leads import Lead, pauli_on
from toolkit import _petscenv
from toolkit.device import Device
from toolkit.parallel import bcast, first_message, gather_rows, get_comm, round_robin
from toolkit.petsc_options import DEFAULT_PREFIX, sub_prefix
from toolkit.schema import fail as _fail

from petsc4py import PETSc

__all__ = ["Transmission", "GreenSolver", "transmission", "METHODS", "CURRENT_METHODS",
           "EIG_LIMIT", "POLE_LIMIT"]

METHODS = ("auto", "mumps", "dense", "eig")
CURRENT_METHODS = ("auto", "poles", "quad")
EIG_LIMIT = 1000       # N_s up to which transmission(method='auto') uses 'eig' (~2 s set-up)
POLE_LIMIT = 3000      # N_s up to which landauer_current(method='auto') uses 'poles' (~1 min)
EIG_CHECK_TOL = 1e-9   # relative agreement of the eig Green function with a direct solve
PREFIX = sub_prefix(DEFAULT_PREFIX, "transport")   # qcspin_transport_
_DENSE_CHUNK = 1 << 22  # complex entries per batch of dense inverses (64 MiB)


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class Transmission:
    """Transmission functions and DOSh at ``energies`` for one spin configuration (read-only).

    energies         : (n,) [E0]
    theta            : (n,) Eq. 16, Tr[Gamma_l G^R Gamma_r G^A]  (spin orbitals summed)
    theta_rl         : (n,) Tr[Gamma_r G^R Gamma_l G^A] (= theta: current conservation)
    spin_l, spin_r   : (n, 3) Tr[sigma_a Gamma_{l,r} G^R Gamma_{r,l} G^A], a = x, y, z
    polarization     : (n,) Eq. 17 = spin_r[:, 2]
    polarization_eq17: (n,) Eq. 17 as printed, Tr[Gamma_l G^R Gamma_r sigma_z G^A]
    dos              : (n,) Eq. 18 per site [1/E0] (integrates to 2), or None if not requested
    """

    energies: np.ndarray
    theta: np.ndarray
    theta_rl: np.ndarray
    spin_l: np.ndarray
    spin_r: np.ndarray
    polarization: np.ndarray
    polarization_eq17: np.ndarray
    dos: np.ndarray | None
    lead_names: tuple[str, str]
    n_sites: int
    method: str

    def __post_init__(self) -> None:
        _freeze(self)




# ----------------------------------------------------------------------------- validation
def _check_device(device) -> None:
    if not isinstance(device, Device):
        _fail("device", type(device).__name__, "expected a frozen Device (call .finalized() on "
              "a DeviceBuilder)", TypeError)


def _check_spins(device: Device, spins) -> np.ndarray:
    if spins is None:
        return np.asarray(device.spins0, float)
    S = np.asarray(spins, float)
    if S.shape != (device.n_spins, 3) or not np.all(np.isfinite(S)):
        _fail("spins", f"array of shape {S.shape}", f"expected finite values of shape "
              f"({device.n_spins}, 3), one vector per classical spin")
    return S


def _check_leads(device: Device, leads) -> tuple[Lead, Lead]:
    if not isinstance(leads, Sequence) or len(leads) != 2 \
            or not all(isinstance(l, Lead) for l in leads):
        _fail("leads", leads, "expected a sequence (left, right) of two Lead objects")
    if leads[0].name == leads[1].name:
        _fail("leads", [l.name for l in leads], "the two leads need different names")
    for lead in leads:
        if lead.interface[-1] >= device.n_orbitals:
            _fail(f"lead '{lead.name}' interface", lead.interface.tolist(),
                  f"orbital indices must be < N_s = {device.n_orbitals}")
        pauli_on(lead.interface, 2)  # both spins of every interface site
    return leads[0], leads[1]


def _check_energies(energies) -> np.ndarray:
    e = np.atleast_1d(np.asarray(energies, float))
    if e.ndim != 1 or not np.all(np.isfinite(e)):
        _fail("energies", energies, "expected a 1D sequence of finite real energies")
    return e


def _check_method(method: str, allowed, leads, n_orbitals: int) -> str:
    if method not in allowed:
        _fail("method", method, f"expected one of {list(allowed)}")
    fixed = all(l.energy_independent for l in leads)
    if method in ("eig", "poles") and not fixed:
        _fail("method", method, "needs energy-independent (wide-band) leads")
    if method == "auto":
        if "eig" in allowed:
            return "eig" if fixed and n_orbitals <= EIG_LIMIT else "mumps"
        return "poles" if fixed and n_orbitals <= POLE_LIMIT else "quad"
    return method


def _singular(energy: float) -> None:
    _fail("energy", float(energy), "eps - H - Sigma(eps) is singular there (a level of the "
          "open device decoupled from the leads' continuum, e.g. a bound state outside a "
          "finite lead band, or a band-edge threshold of a finite-band lead matched to the "
          "device); shift the energy grid")


def _check_params(params) -> None:
    if params is not None and not isinstance(params, Mapping):
        _fail("params", params, "expected None or a dict of named parameters")


# ----------------------------------------------------------------------------- interface algebra
class _Interface:
    """Union I of the interface orbitals of (l, r), the positions of each lead in I and the
    sigma matrices; computes the transmission functions from G^R restricted to I x I."""

    def __init__(self, left: Lead, right: Lead, params) -> None:
        self.leads, self.params = (left, right), params
        self.orbitals = np.union1d(left.interface, right.interface)
        self.il = np.searchsorted(self.orbitals, left.interface)
        self.ir = np.searchsorted(self.orbitals, right.interface)
        self.sig_l = np.array([pauli_on(left.interface, a) for a in range(3)])
        self.sig_r = np.array([pauli_on(right.interface, a) for a in range(3)])
        self.fixed = left.energy_independent and right.energy_independent
        self._gam: list[np.ndarray] | None = (
            [l.broadening(0.0, params) for l in self.leads] if self.fixed else None)

    def gammas(self, energy: float) -> list[np.ndarray]:
        if self.fixed:
            assert self._gam is not None  # set in __init__ for fixed leads
            return self._gam
        return [l.broadening(energy, self.params) for l in self.leads]

    def sigma_blocks(self, energy: float) -> list[np.ndarray]:
        """[Sigma_l(energy), Sigma_r(energy)] as complex (n_l, n_l) arrays."""
        return [np.asarray(l.selfenergy(energy, self.params), complex) for l in self.leads]

    def observables(self, G: np.ndarray, energies: np.ndarray,
                    blocks: Sequence | None = None) -> np.ndarray:
        """(n_e, 10): theta, theta_rl, spin_l (3), spin_r (3), polarization_eq17, NaN (dos).
        ``blocks``: the :meth:`sigma_blocks` of each energy if already computed (energy-dependent
        leads: Gamma = i (Sigma - Sigma^dag) without evaluating Sigma again)."""
        if self.fixed:
            assert self._gam is not None  # set in __init__ for fixed leads
            gl, gr = self._gam
        else:
            if blocks is None:
                blocks = [self.sigma_blocks(e) for e in energies]
            gl = np.array([1j * (b[0] - b[0].conj().T) for b in blocks])
            gr = np.array([1j * (b[1] - b[1].conj().T) for b in blocks])
        Glr = G[:, self.il][:, :, self.ir]
        Grl = G[:, self.ir][:, :, self.il]
        X, Y = gl @ Glr, gr @ Glr.conj().transpose(0, 2, 1)     # Gamma_l G_lr, Gamma_r G_lr^dag
        Xr, Yr = gr @ Grl, gl @ Grl.conj().transpose(0, 2, 1)
        out = np.empty((len(energies), 10))
        out[:, 0] = np.einsum("eij,eji->e", X, Y).real
        out[:, 1] = np.einsum("eij,eji->e", Xr, Yr).real
        out[:, 2:5] = np.einsum("aij,ejk,eki->ea", self.sig_l, X, Y, optimize=True).real
        out[:, 5:8] = np.einsum("aij,ejk,eki->ea", self.sig_r, Xr, Yr, optimize=True).real
        out[:, 8] = np.einsum("eij,jk,eki->e", X, self.sig_r[2], Y, optimize=True).real
        out[:, 9] = np.nan
        return out


def _sigma_full(device: Device, iface: _Interface, energy: float,
                blocks: Sequence | None = None) -> np.ndarray:
    """Sum of the self-energies (``blocks``, default computed at ``energy``) as a dense
    N_s x N_s matrix."""
    S = np.zeros((device.n_orbitals,) * 2, complex)
    for lead, blk in zip(iface.leads, iface.sigma_blocks(energy) if blocks is None else blocks):
        S[np.ix_(lead.interface, lead.interface)] += blk
    return S


def _effective_hamiltonian(device: Device, spins: np.ndarray, iface: _Interface,
                           energy: float = 0.0) -> np.ndarray:
    """The dense non-Hermitian H_eff = H(spins) + Sigma_l(energy) + Sigma_r(energy) (wide-band
    leads: H - i Gamma/2, energy-independent): the one construction used by the eigen-
    decompositions and the resonance breakpoints of the current integrals."""
    return dense_hamiltonian(device, spins) + _sigma_full(device, iface, energy)


# ----------------------------------------------------------------------------- Green solvers
class _EigDecomposition:
    """H_eff = H + Sigma = V diag(lam) V^-1 (energy-independent leads), with an accuracy check."""

    def __init__(self, Heff: np.ndarray, I: np.ndarray) -> None:
        self.lam, self.V = sla.eig(Heff)
        self.W = sla.solve(self.V, np.eye(len(Heff)))
        # check: G^R[:, I] at two energies against a direct LU solve
        w = self.lam.real
        err = 0.0
        for e in (0.5 * (w.min() + w.max()), w.min() + 0.37 * (w.max() - w.min())):
            E = np.eye(len(Heff))[:, I]
            ref = np.linalg.solve(e * np.eye(len(Heff)) - Heff, E)
            got = (self.V * (1.0 / (e - self.lam))) @ self.W[:, I]
            err = max(err, np.abs(got - ref).max() / np.abs(ref).max())
        self.check_error = float(err)

    def green_block(self, energies: np.ndarray, I: np.ndarray) -> np.ndarray:
        d = 1.0 / (energies[:, None] - self.lam[None, :])
        return np.einsum("in,en,nj->eij", self.V[I], d, self.W[:, I], optimize=True)

    def trace(self, energies: np.ndarray) -> np.ndarray:
        return (1.0 / (energies[:, None] - self.lam[None, :])).sum(axis=1)


def _positions(indptr: np.ndarray, indices: np.ndarray, rows, cols, n: int) -> np.ndarray:
    """Positions in a CSR value array (sorted columns) of the entries (rows, cols)."""
    row_of = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    keys = row_of.astype(np.int64) * n + indices
    want = np.asarray(rows, np.int64) * n + np.asarray(cols, np.int64)
    pos = np.searchsorted(keys, want)
    assert np.all(keys[pos] == want)
    return pos


class GreenSolver:
    """Retarded Green function of the open device on one process (PETSc.COMM_SELF).

    ``interface_block(energies)`` -> G^R[I, I] (n_e, n_I, n_I) for the union I = ``orbitals`` of
    the lead interfaces (ascending); ``trace(energies)`` -> Tr G^R (n_e,); ``solve`` gives both
    with one factorisation per energy.  method: 'mumps' (one AIJ matrix, KSP and MUMPS symbolic
    factorisation reused for all energies - only the values change, energy-dependent and
    non-diagonal lead blocks included; options under ``-qcspin_transport_``), 'dense' (NumPy
    inverses, the reference: O(N_s^3) per energy), 'eig' (energy-independent leads;
    RuntimeError if the eigenvectors are too ill-conditioned) or 'auto' (eig for
    energy-independent leads up to EIG_LIMIT, else mumps).
    Not collective; call ``destroy()`` or use it as a context manager.
    """

    def __init__(self, device: Device, leads, spins=None, *, method: str = "mumps",
                 params: Mapping | None = None, prefix: str = PREFIX,
                 eig: _EigDecomposition | None = None) -> None:
        _check_device(device)
        left, right = _check_leads(device, leads)
        _check_params(params)
        self.method = _check_method(method, METHODS, (left, right), device.n_orbitals)
        self.device, self.spins = device, _check_spins(device, spins)
        self.iface = _Interface(left, right, params)
        self.orbitals = self.iface.orbitals
        self.check_error = 0.0
        if self.method == "mumps":
            self._setup_mumps(prefix)
        elif self.method == "dense":
            self._H = dense_hamiltonian(device, self.spins)
            if self.iface.fixed:
                self._sig_fixed = _sigma_full(device, self.iface, 0.0)
        else:
            self.eig = eig or _EigDecomposition(
                _effective_hamiltonian(device, self.spins, self.iface), self.orbitals)
            self.check_error = self.eig.check_error
            if self.check_error > EIG_CHECK_TOL:
                raise RuntimeError(
                    f"the eigen-decomposition of H + Sigma is ill-conditioned (relative error "
                    f"{self.check_error:.1e} > {EIG_CHECK_TOL:.0e}); use method 'mumps' or "
                    f"'dense'")

    # -- mumps ----------------------------------------------------------------------------
    def _setup_mumps(self, prefix: str) -> None:
        N = self.device.n_orbitals
        H = ElectronHamiltonian(self.device, PETSc.COMM_SELF, spins=self.spins, prefix=prefix)
        try:
            ai, aj, av = H.mat.getValuesCSR()
        finally:
            H.destroy()
        rows = [np.repeat(np.arange(N), np.diff(ai)), np.arange(N)]
        cols, vals = [aj, np.arange(N)], [-av, np.zeros(N, complex)]
        self._blocks = []
        for lead in self.iface.leads:
            r, c = ((lead.interface, lead.interface) if lead.is_diagonal else
                    (np.repeat(lead.interface, lead.n_interface),
                     np.tile(lead.interface, lead.n_interface)))
            rows.append(r)
            cols.append(c)
            vals.append(np.zeros(len(r), complex))
            self._blocks.append((lead, r, c))
        R, C, V = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        key = R.astype(np.int64) * N + C
        uniq, inv = np.unique(key, return_inverse=True)
        self._base = np.zeros(len(uniq), complex)
        np.add.at(self._base, inv, V)
        r_u, c_u = uniq // N, uniq % N
        self._indptr = np.concatenate([[0], np.cumsum(np.bincount(r_u, minlength=N))]) \
            .astype(PETSc.IntType)
        self._indices = c_u.astype(PETSc.IntType)
        self._diag = _positions(self._indptr, self._indices, np.arange(N), np.arange(N), N)
        self._pos = [_positions(self._indptr, self._indices, r, c, N)
                     for _, r, c in self._blocks]
        if self.iface.fixed:  # fold the constant self-energies into the base values
            for (lead, _r, _c), pos in zip(self._blocks, self._pos):
                self._base[pos] -= self._sigma_entries(lead, 0.0)
        self.A = PETSc.Mat().createAIJ([N, N], csr=(self._indptr, self._indices, self._base),
                                       comm=PETSc.COMM_SELF)
        self.A.setOptionsPrefix(prefix)
        self.A.assemble()
        self.ksp = PETSc.KSP().create(PETSc.COMM_SELF)
        self.ksp.setOptionsPrefix(prefix)
        self.ksp.setType("preonly")
        pc = self.ksp.getPC()
        pc.setType("lu")
        pc.setFactorSolverType("mumps")
        self.ksp.setFromOptions()
        self.ksp.setOperators(self.A)
        nI = len(self.orbitals)
        self.B = PETSc.Mat().createDense([N, nI], comm=PETSc.COMM_SELF)
        self.B.setUp()
        b = self.B.getDenseArray()
        b[...] = 0.0
        b[self.orbitals, np.arange(nI)] = 1.0
        self.B.assemble()
        self.X = PETSc.Mat().createDense([N, nI], comm=PETSc.COMM_SELF)
        self.X.setUp()
        self.X.assemble()
        ar = np.arange(N + 1, dtype=PETSc.IntType)
        self.E = PETSc.Mat().createAIJ([N, N], csr=(ar, ar[:-1].copy(), np.zeros(N, complex)),
                                       comm=PETSc.COMM_SELF)
        self.E.assemble()
        self._get_inverse: Callable[..., int] | None = None

    @staticmethod
    def _entries(lead: Lead, s: np.ndarray) -> np.ndarray:
        """The stored entries of Sigma_lead = ``s``: its diagonal (is_diagonal) or all n_l^2
        entries row by row (the order of the (r, c) pattern of :meth:`_setup_mumps`)."""
        return np.diag(s).copy() if lead.is_diagonal else np.asarray(s).ravel()

    def _sigma_entries(self, lead: Lead, energy: float) -> np.ndarray:
        return self._entries(lead, np.asarray(lead.selfenergy(energy, self.iface.params),
                                              complex))

    def _factor(self, energy: float, blocks: Sequence | None = None) -> PETSc.Mat:
        vals = self._base.copy()
        vals[self._diag] += energy
        if not self.iface.fixed:
            blocks = self.iface.sigma_blocks(energy) if blocks is None else blocks
            for (lead, _, _), pos, s in zip(self._blocks, self._pos, blocks):
                vals[pos] -= self._entries(lead, s)
        self.A.setValuesCSR(self._indptr, self._indices, vals)
        self.A.assemble()
        self.ksp.setOperators(self.A)
        self.ksp.setUp()
        F = self.ksp.getPC().getFactorMatrix()
        if self.ksp.getPC().getFactorSolverType() != "mumps":
            _fail(f"-{PREFIX}pc_factor_mat_solver_type", self.ksp.getPC().getFactorSolverType(),
                  "the transport solver needs 'mumps' (selected inverse entries; KLU returns the "
                  "conjugate in PETSc 3.18)")
        info = F.getMumpsInfog(1)   # PETSc records a failed factorisation without raising
        if info == -10:             # numerically singular
            _singular(energy)
        if info < 0:
            raise RuntimeError(f"MUMPS factorisation failed at energy {energy}: INFOG(1) = "
                               f"{info}, INFOG(2) = {F.getMumpsInfog(2)}")
        return F

    def _mumps_trace(self, F: PETSc.Mat) -> complex:
        if self._get_inverse is None:
            f = _petscenv.libpetsc().MatMumpsGetInverseTranspose
            f.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            self._get_inverse = f
        rc = self._get_inverse(ctypes.c_void_p(F.handle), ctypes.c_void_p(self.E.handle))
        F.setMumpsIcntl(30, 0)  # back to ordinary solves (else MUMPS stops with INFOG(1) = -47)
        if rc != 0:
            raise RuntimeError(f"MatMumpsGetInverseTranspose failed with PETSc error {rc}")
        return complex(self.E.getValuesCSR()[2].sum())

    # -- public ---------------------------------------------------------------------------
    def solve(self, energies, dos: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """(G^R[I, I] of shape (n_e, n_I, n_I), Tr G^R (n_e,) or None)."""
        return self._solve(_check_energies(energies), dos, None)

    def _solve(self, e: np.ndarray, dos: bool, blocks) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`solve` for checked energies; ``blocks``: the lead self-energies of each energy
        (energy-dependent leads; None: evaluated here)."""
        I = self.orbitals
        if self.method == "eig":
            return self.eig.green_block(e, I), (self.eig.trace(e) if dos else None)
        if self.method == "dense":
            return self._solve_dense(e, dos, blocks)
        G = np.empty((len(e), len(I), len(I)), complex)
        tr = np.empty(len(e), complex) if dos else None
        for k, en in enumerate(e):
            F = self._factor(float(en), None if blocks is None else blocks[k])
            F.matSolve(self.B, self.X)
            G[k] = self.X.getDenseArray()[I, :]
            if not np.isfinite(G[k]).all():   # MUMPS zero pivot: PETSc fills X with inf
                _singular(en)
            if dos:
                assert tr is not None
                tr[k] = self._mumps_trace(F)
        return G, tr

    def _solve_dense(self, e: np.ndarray, dos: bool, blocks=None):
        N, I = self.device.n_orbitals, self.orbitals
        G = np.empty((len(e), len(I), len(I)), complex)
        tr = np.empty(len(e), complex) if dos else None
        chunk = max(1, _DENSE_CHUNK // (N * N))
        eye = np.eye(N)
        for a in range(0, len(e), chunk):
            en = e[a:a + chunk]
            sig = (self._sig_fixed if self.iface.fixed else
                   np.array([_sigma_full(self.device, self.iface, x,
                                         None if blocks is None else blocks[a + j])
                             for j, x in enumerate(en)]))
            A = en[:, None, None] * eye - self._H - sig
            try:
                if dos:
                    assert tr is not None
                    Ginv = np.linalg.inv(A)
                    G[a:a + chunk] = Ginv[:, I][:, :, I]
                    tr[a:a + chunk] = np.trace(Ginv, axis1=1, axis2=2)
                else:
                    G[a:a + chunk] = np.linalg.solve(A, np.broadcast_to(
                        eye[:, I], A.shape[:1] + (N, len(I))))[:, I]
            except np.linalg.LinAlgError:
                for x, Ax in zip(en, A):
                    if np.linalg.matrix_rank(Ax) < N:
                        _singular(x)
                raise
        return G, tr

    def interface_block(self, energies) -> np.ndarray:
        return self.solve(energies, dos=False)[0]

    def trace(self, energies) -> np.ndarray:
        tr = self.solve(energies, dos=True)[1]
        assert tr is not None  # computed with dos=True
        return tr

    def evaluate(self, energies, dos: bool = True) -> np.ndarray:
        """(n_e, 10) rows: theta, theta_rl, spin_l (3), spin_r (3), polarization_eq17, dos
        (NaN when not requested).  Energies are processed in chunks of bounded memory."""
        e = _check_energies(energies)
        nI, N = len(self.orbitals), self.device.n_orbitals
        chunk = max(1, _DENSE_CHUNK // (nI * (N if self.method == "eig" else nI)))
        out = np.empty((len(e), 10))
        for a in range(0, len(e), chunk):
            en = e[a:a + chunk]
            # energy-dependent leads: each Sigma(E) once, for the solve and for Gamma(E)
            blocks = None if self.iface.fixed else [self.iface.sigma_blocks(x) for x in en]
            G, tr = self._solve(en, dos, blocks)
            out[a:a + chunk] = self.iface.observables(G, en, blocks)
            if dos:
                assert tr is not None
                out[a:a + chunk, 9] = -tr.imag / (np.pi * self.device.n_sites)
        return out

    def destroy(self) -> None:
        for name in ("A", "ksp", "B", "X", "E"):
            obj = getattr(self, name, None)
            if obj is not None:
                obj.destroy()
                setattr(self, name, None)

    def __enter__(self) -> "GreenSolver":
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()

    def __del__(self) -> None:
        try:
            self.destroy()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


# ----------------------------------------------------------------------------- MPI evaluation
def _collective(fn, comm):
    """Run ``fn()`` on every rank; if it raised anywhere, raise on every rank: the rank's own
    exception, else the first failing rank's message (as ValueError if that was a ValueError,
    e.g. a singular energy, so that callers handle bad input alike on all ranks; otherwise
    RuntimeError).  Collective."""
    result, err = None, None
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001 - re-raised on all ranks below
        err = exc
    msg = first_message(None if err is None else
                        f"{int(isinstance(err, ValueError))}{type(err).__name__}: {err}", comm)
    if msg is not None:
        if err is not None:
            raise err
        if msg[0] == "1":
            raise ValueError(msg[1:].split(": ", 1)[1])
        raise RuntimeError(f"the transport calculation failed on another rank: {msg[1:]}")
    return result


def _on_root(fn, comm):
    """``fn()`` on rank 0, broadcast to all ranks; an exception is raised on every rank.
    Collective."""
    if comm.getSize() == 1:
        return fn()
    return bcast(_collective(lambda: fn() if comm.getRank() == 0 else None, comm), comm)


class _Evaluator:
    """One GreenSolver per rank; ``__call__(energies)`` shares the energies out over ``comm`` and
    returns the (n_e, 10) table on every rank.  Collective."""

    def __init__(self, device, leads, S, comm, method, params, distribute) -> None:
        self.comm, self.distribute = comm, distribute
        eig = None
        if method == "eig":
            iface = _Interface(leads[0], leads[1], params)

            def build():
                return _EigDecomposition(_effective_hamiltonian(device, S, iface),
                                         iface.orbitals)
            eig = _on_root(build, comm)
        self.solver = _collective(lambda: GreenSolver(device, leads, S, method=method,
                                                      params=params, eig=eig), comm)
        self.method = method
        self.n_evaluations = 0

    def __call__(self, energies: np.ndarray, dos: bool = True) -> np.ndarray:
        n = len(energies)
        mine = np.asarray(self.distribute(n, self.comm), dtype=np.int64)
        local = _collective(lambda: self.solver.evaluate(energies[mine], dos)
                            if len(mine) else np.zeros((0, 10)), self.comm)
        idx = gather_rows(mine, self.comm, root=None)
        table = gather_rows(local, self.comm, root=None)
        order = np.argsort(idx, kind="stable")
        if not np.array_equal(idx[order], np.arange(n)):
            raise ValueError("distribute must assign every energy to exactly one rank")
        self.n_evaluations += n
        return table[order]

    def destroy(self) -> None:
        self.solver.destroy()


def _evaluator(device, leads, S, comm, method, params, distribute) -> _Evaluator:
    """The evaluator for ``method`` ('auto' -> eig, falling back to mumps if ill-conditioned)."""
    if method != "auto":
        return _Evaluator(device, leads, S, comm, method, params, distribute)
    method = _check_method("auto", METHODS, leads, device.n_orbitals)
    try:
        return _Evaluator(device, leads, S, comm, method, params, distribute)
    except RuntimeError:
        if method != "eig":
            raise
        return _Evaluator(device, leads, S, comm, "mumps", params, distribute)


def transmission(device: Device, leads, energies, spins=None, *, comm=None,
                 method: str = "auto", dos: bool = True, params: Mapping | None = None,
                 distribute: Callable[[int, object], np.ndarray] = round_robin) -> Transmission:
    """Theta (Eq. 16), spin-resolved transmissions and P (Eq. 17), DOSh (Eq. 18) at ``energies``.

    device  : frozen Device;  leads : (left, right) Lead objects (l = leads[0], r = leads[1])
    energies: 1D real energies [E0];  spins : (n_spin, 3) (default ``device.spins0``)
    method  : 'auto' (eig for wide-band leads and N_s <= EIG_LIMIT, else mumps), 'mumps',
              'dense' or 'eig' (see the module docstring);  dos : also compute DOSh
    params  : named parameters passed to ``lead.selfenergy``
    The energies are shared out over ``comm`` by ``distribute``; every rank returns the same
    :class:`Transmission`.  Collective on ``comm``.
    """
    _check_device(device)
    S = _check_spins(device, spins)
    left, right = _check_leads(device, leads)
    e = _check_energies(energies)
    _check_params(params)
    if method not in METHODS:
        _fail("method", method, f"expected one of {list(METHODS)}")
    _check_method(method, METHODS, (left, right), device.n_orbitals)
    comm = get_comm(comm)
    ev = _evaluator(device, (left, right), S, comm, method, params, distribute)
    try:
        t = ev(e, dos)
    finally:
        ev.destroy()
    return Transmission(energies=e, theta=t[:, 0], theta_rl=t[:, 1], spin_l=t[:, 2:5],
                        spin_r=t[:, 5:8], polarization=t[:, 7].copy(),
                        polarization_eq17=t[:, 8], dos=t[:, 9] if dos else None,
                        lead_names=(left.name, right.name), n_sites=device.n_sites,
                        method=ev.method)

