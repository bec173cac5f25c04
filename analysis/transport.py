"""Green-function transport through the open spin valve (paper 004, Eqs. 11-12, 16-18, App. E, G).

For a fixed spin configuration S and two leads l = ``leads[0]``, r = ``leads[1]`` (see
:mod:`operators.leads`), with G^R(eps) = (eps - H(S) - Sigma_l^R - Sigma_r^R)^-1, G^A = G^R^dag:

    theta(eps)     = Tr[Gamma_l G^R Gamma_r G^A]                         (Eq. 16)
    spin_r(eps)_a  = Tr[sigma_a Gamma_r G^R Gamma_l G^A]   a = x, y, z   (right interface)
    spin_l(eps)_a  = Tr[sigma_a Gamma_l G^R Gamma_r G^A]                 (left interface)
    polarization   = spin_r_z = Tr[(Gamma_r^up - Gamma_r^down) G^R Gamma_l G^A]     (Eq. 17)
    dos(eps)       = Tr i(G^R - G^A) / (2 pi N) = -Im Tr G^R / (pi N), N = sites (Eq. 18)

Which ordering of Eq. (17).  The spin current into a reservoir is (derived from Eqs. 4-8, and
tested against the bond spin current of the steady-state density matrix)
``(1/2pi) int (f_l - f_r) Tr[sigma_a Gamma_r G^R Gamma_l G^A]`` (spin measured where it enters the
lead, Landauer-Buttiker T_{r<-l}).  Eq. (17) as printed, Tr[Gamma_l G^R Gamma_r sigma_z G^A], is
the same number when H is real symmetric up to sigma_y, i.e. when every S_j lies in the xz plane
(the paper's configurations: PL along x, FL along z); for S_y != 0 the two differ, and its
y component has the opposite sign for every xz-plane configuration.  ``polarization_eq17`` keeps
the printed form for comparison.  Symmetries (tested): theta_rl = theta; 0 <= theta <= channels;
on a bipartite lattice with mu_bar = 0 theta(-eps) = theta(eps), polarization(-eps) =
-polarization(eps) and dos(-eps) = dos(eps) for any S (the antisymmetry of paper Fig. 19c).

Currents (:func:`landauer_current`, e = hbar = 1, per internal time unit hbar/E0):

    particle   = (1/2pi) int theta (f_l - f_r) deps          electrons per time, left -> right
    current    = particle / 2 = Re Tr Pi_l = -Re Tr Pi_r     paper Eq. (11) (its normalisation:
                 d Tr(rho)/dt from lead l is 2 Re Tr Pi_l by Eq. 4)
    spin_l_a   = (1/4pi) int spin_l_a (f_l - f_r) = +Re Tr(sigma_a Pi_l)   Eq. (12), from the left
                 reservoir into the valve
    spin_r_a   = (1/4pi) int spin_r_a (f_l - f_r) = -Re Tr(sigma_a Pi_r)   Eq. (12), from the valve
                 into the right reservoir
(the spin currents are fluxes of electron spin s = sigma/2 in units of hbar).  Linear response
(App. G): particle -> G0 V with G0 = theta(E_F)/(2pi) at T = 0 (one conductance quantum e^2/h
per fully open spin channel).

Methods.  Green functions: ``mumps`` (PETSc AIJ for A = eps - H - Sigma, KSP preonly + LU +
MUMPS; one numeric factorisation per energy reusing the symbolic one; G^R[:, interface] by
MatMatSolve against the n_I interface columns; Tr G^R from MUMPS's selected inverse entries
(ICNTL(30)) - scales to large sparse devices), ``dense`` (NumPy inverse per energy, the reference)
and ``eig`` (scipy.linalg.eig of the non-Hermitian H_eff = H + Sigma once, energy-independent
leads only: G^R(eps) = V (eps - Lambda)^-1 V^-1, Tr G^R = sum_n 1/(eps - lambda_n) - valid
because H + Sigma itself is diagonalised, not H; checked against a direct solve at two energies;
'auto' up to N_s = EIG_LIMIT).  Energy integrals: ``poles`` (exact for
wide-band leads: partial fractions of theta in the lambda_n and the digamma closed form of
int (f_l - f_r)/(eps - z); round-off ~ cond(V) x 1e-16) and ``quad`` (adaptive Gauss-Kronrod
15/7 on panels split at mu_l, mu_r and the resonances; exact Fermi functions; window mu -/+ 40 T,
tail < e^-40; reaches rtol = 1e-10 - checked against ``poles`` to 1e-9 in the tests).

MPI: energies are shared out over ``comm`` by ``distribute`` (default round robin); each rank
solves on PETSc.COMM_SELF and all ranks get all results.  PETSc options of the solvers are read
under ``-qcspin_transport_`` (e.g. ``-qcspin_transport_mat_mumps_icntl_14 50``).
"""
from __future__ import annotations

import ctypes
import math
import numbers
import os
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import scipy.linalg as sla
from scipy.special import psi

import toolkit  # noqa: F401  (complex petsc4py)
from analysis.spectrum import round_robin
from operators.hamiltonian import ElectronHamiltonian, dense_hamiltonian
from operators.leads import Lead, WideBandLead, fermi, pauli_on
from toolkit import _petscenv
from toolkit.device import Device
from toolkit.parallel import allreduce, bcast, gather_rows, get_comm

from petsc4py import PETSc

__all__ = ["Transmission", "LandauerCurrent", "GreenSolver", "transmission", "landauer_current",
           "steady_state_density", "bond_currents", "gauss_kronrod", "METHODS",
           "CURRENT_METHODS", "EIG_LIMIT", "POLE_LIMIT", "plot_transmission", "add_command"]

METHODS = ("auto", "mumps", "dense", "eig")
CURRENT_METHODS = ("auto", "poles", "quad")
EIG_LIMIT = 1000       # N_s up to which transmission(method='auto') uses 'eig' (~2 s set-up)
POLE_LIMIT = 3000      # N_s up to which landauer_current(method='auto') uses 'poles' (~1 min)
EIG_CHECK_TOL = 1e-9   # relative agreement of the eig Green function with a direct solve
TAIL = 40.0            # integration window: mu -/+ TAIL * T (Fermi tails e^-40 = 4e-18)
PREFIX = "qcspin_transport_"
_DENSE_CHUNK = 1 << 22  # complex entries per batch of dense inverses (64 MiB)

# Gauss-Kronrod 15/7 (QUADPACK qk15): Kronrod nodes x >= 0 (descending), weights; Gauss weights
_XGK = np.array([0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
                 0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
                 0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
                 0.207784955007898467600689403773245, 0.0])
_WGK = np.array([0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
                 0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
                 0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
                 0.204432940075298892414161999234649, 0.209482141084727828012999174891714])
_WG = np.array([0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
                0.381830050505118944950369775488975, 0.417959183673469387755102040816327])


def gauss_kronrod() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 15 Kronrod nodes on [-1, 1] (ascending), their weights, and the 7-point Gauss weights
    on the same nodes (zero at the Kronrod-only nodes)."""
    x = np.concatenate([-_XGK[:-1], _XGK[::-1]])
    wk = np.concatenate([_WGK[:-1], _WGK[::-1]])
    wg = np.zeros(15)
    wg[1:7:2], wg[7], wg[9:15:2] = _WG[:3], _WG[3], _WG[2::-1]
    return x, wk, wg


# ----------------------------------------------------------------------------- results
def _freeze(obj) -> None:
    for v in vars(obj).values():
        if isinstance(v, np.ndarray):
            v.setflags(write=False)


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


# ----------------------------------------------------------------------------- validation
def _fail(name: str, value, allowed: str, exc=ValueError) -> None:
    raise exc(f"{name} = {value!r} is not allowed: {allowed}")


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
        self._gam = [l.broadening(0.0, params) for l in self.leads] if self.fixed else None

    def gammas(self, energy: float) -> list[np.ndarray]:
        return self._gam if self.fixed else [l.broadening(energy, self.params) for l in self.leads]

    def sigma_blocks(self, energy: float) -> list[np.ndarray]:
        return [np.asarray(l.selfenergy(energy, self.params), complex) for l in self.leads]

    def observables(self, G: np.ndarray, energies: np.ndarray) -> np.ndarray:
        """(n_e, 10): theta, theta_rl, spin_l (3), spin_r (3), polarization_eq17, NaN (dos)."""
        if self.fixed:
            gl, gr = self._gam
        else:
            gs = [self.gammas(e) for e in energies]
            gl, gr = np.array([g[0] for g in gs]), np.array([g[1] for g in gs])
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


def _sigma_full(device: Device, iface: _Interface, energy: float) -> np.ndarray:
    """Sum of the self-energies as a dense N_s x N_s matrix."""
    S = np.zeros((device.n_orbitals,) * 2, complex)
    for lead, blk in zip(iface.leads, iface.sigma_blocks(energy)):
        S[np.ix_(lead.interface, lead.interface)] += blk
    return S


# ----------------------------------------------------------------------------- Green solvers
class _EigDecomposition:
    """H_eff = H + Sigma = V diag(lam) V^-1 (energy-independent leads), with an accuracy check."""

    def __init__(self, H: np.ndarray, Sigma: np.ndarray, I: np.ndarray) -> None:
        Heff = H + Sigma
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
    factorisation reused for all energies - only the values change; options under
    ``-qcspin_transport_``), 'dense' (NumPy), 'eig' (energy-independent leads; RuntimeError if
    the eigenvectors are too ill-conditioned) or 'auto' (eig up to EIG_LIMIT, else mumps).
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
            self.eig = eig or _EigDecomposition(dense_hamiltonian(device, self.spins),
                                                _sigma_full(device, self.iface, 0.0),
                                                self.orbitals)
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
            rows.append(r), cols.append(c), vals.append(np.zeros(len(r), complex))
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
            for (lead, r, c), pos in zip(self._blocks, self._pos):
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
        self._get_inverse = None

    def _sigma_entries(self, lead: Lead, energy: float) -> np.ndarray:
        s = np.asarray(lead.selfenergy(energy, self.iface.params), complex)
        return np.diag(s).copy() if lead.is_diagonal else s.ravel()

    def _factor(self, energy: float) -> PETSc.Mat:
        vals = self._base.copy()
        vals[self._diag] += energy
        if not self.iface.fixed:
            for (lead, _, _), pos in zip(self._blocks, self._pos):
                vals[pos] -= self._sigma_entries(lead, energy)
        self.A.setValuesCSR(self._indptr, self._indices, vals)
        self.A.assemble()
        self.ksp.setOperators(self.A)
        self.ksp.setUp()
        F = self.ksp.getPC().getFactorMatrix()
        if self.ksp.getPC().getFactorSolverType() != "mumps":
            _fail(f"-{PREFIX}pc_factor_mat_solver_type", self.ksp.getPC().getFactorSolverType(),
                  "the transport solver needs 'mumps' (selected inverse entries; KLU returns the "
                  "conjugate in PETSc 3.18)")
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
        e = _check_energies(energies)
        I = self.orbitals
        if self.method == "eig":
            return self.eig.green_block(e, I), (self.eig.trace(e) if dos else None)
        if self.method == "dense":
            return self._solve_dense(e, dos)
        G = np.empty((len(e), len(I), len(I)), complex)
        tr = np.empty(len(e), complex) if dos else None
        for k, en in enumerate(e):
            F = self._factor(float(en))
            F.matSolve(self.B, self.X)
            G[k] = self.X.getDenseArray()[I, :]
            if dos:
                tr[k] = self._mumps_trace(F)
        return G, tr

    def _solve_dense(self, e: np.ndarray, dos: bool):
        N, I = self.device.n_orbitals, self.orbitals
        G = np.empty((len(e), len(I), len(I)), complex)
        tr = np.empty(len(e), complex) if dos else None
        chunk = max(1, _DENSE_CHUNK // (N * N))
        eye = np.eye(N)
        for a in range(0, len(e), chunk):
            en = e[a:a + chunk]
            sig = (self._sig_fixed if self.iface.fixed else
                   np.array([_sigma_full(self.device, self.iface, x) for x in en]))
            A = en[:, None, None] * eye - self._H - sig
            if dos:
                Ginv = np.linalg.inv(A)
                G[a:a + chunk] = Ginv[:, I][:, :, I]
                tr[a:a + chunk] = np.trace(Ginv, axis1=1, axis2=2)
            else:
                G[a:a + chunk] = np.linalg.solve(A, np.broadcast_to(eye[:, I], A.shape[:1] +
                                                                    (N, len(I))))[:, I]
        return G, tr

    def interface_block(self, energies) -> np.ndarray:
        return self.solve(energies, dos=False)[0]

    def trace(self, energies) -> np.ndarray:
        return self.solve(energies, dos=True)[1]

    def evaluate(self, energies, dos: bool = True) -> np.ndarray:
        """(n_e, 10) rows: theta, theta_rl, spin_l (3), spin_r (3), polarization_eq17, dos
        (NaN when not requested).  Energies are processed in chunks of bounded memory."""
        e = _check_energies(energies)
        nI, N = len(self.orbitals), self.device.n_orbitals
        chunk = max(1, _DENSE_CHUNK // (nI * (N if self.method == "eig" else nI)))
        out = np.empty((len(e), 10))
        for a in range(0, len(e), chunk):
            G, tr = self.solve(e[a:a + chunk], dos)
            out[a:a + chunk] = self.iface.observables(G, e[a:a + chunk])
            if dos:
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
    """Run ``fn()`` on every rank; if it raised anywhere, raise on every rank.  Collective."""
    result, err = None, None
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001 - re-raised on all ranks below
        err = exc
    if allreduce(0 if err is None else 1, comm, "max"):
        if err is not None:
            raise err
        raise RuntimeError("the transport calculation failed on another rank (see its message)")
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
                return _EigDecomposition(dense_hamiltonian(device, S),
                                         _sigma_full(device, iface, 0.0), iface.orbitals)
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
    done_K, done_err, done_abs = [], [], []
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
    breakpoints  : extra panel edges for quad (narrow resonances you know of)
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
            eig = _EigDecomposition(dense_hamiltonian(device, S), _sigma_full(device, iface, 0.0),
                                    iface.orbitals)
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
        lam = _on_root(lambda: sla.eigvals(dense_hamiltonian(device, S)
                                           + _sigma_full(device, iface, 0.0)), comm)
        bp = np.concatenate([bp, lam.real])
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
        eig = _EigDecomposition(dense_hamiltonian(device, S), _sigma_full(device, iface, 0.0),
                                iface.orbitals)
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


# ----------------------------------------------------------------------------- output, CLI
def plot_transmission(res: Transmission, png: str, *, title: str = "") -> str:
    """DOSh, theta and P versus energy (the panels of paper Fig. 19).  Serial; returns the path."""
    from analysis.plots import use_agg

    plt = use_agg()
    rows = 3 if res.dos is not None else 2
    fig, axes = plt.subplots(rows, 1, figsize=(5, 2.2 * rows), sharex=True)
    panels = ([(res.dos, "DOSh")] if res.dos is not None else []) + \
        [(res.theta, r"$\Theta$"), (res.polarization, r"$P$")]
    for ax, (y, label) in zip(axes, panels):
        ax.plot(res.energies, y, lw=1)
        ax.set_ylabel(label)
    axes[-1].axhline(0, color="k", lw=0.5)
    axes[-1].set_xlabel(r"$\varepsilon$")
    axes[0].set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png


def _parse_range(text: str) -> np.ndarray:
    from analysis.spectrum import _parse_range as parse

    return parse(text)


def cmd_transport(args) -> int:
    """Handler of ``qcspin transport``; returns the exit code.  Collective."""
    from analysis.spectrum import _check_new_files, save_results, with_coupling
    from toolkit.config import config_to_toml, load_config
    from toolkit.device import device_from_config

    comm = get_comm()
    rank0 = comm.getRank() == 0
    cfg = load_config(args.config, args.set)
    out = args.output or os.path.splitext(os.path.basename(args.config))[0] + "_transport.h5"
    _check_new_files([out, args.png], args.overwrite, comm)
    dev = device_from_config(cfg)
    dev = with_coupling(dev, None, args.spin_config) if args.spin_config else dev
    try:
        leads = (WideBandLead(dev, "left", args.gamma, mu=args.mu_l, temperature=args.temperature),
                 WideBandLead(dev, "right", args.gamma, mu=args.mu_r,
                              temperature=args.temperature))
        res = transmission(dev, leads, args.energies, comm=comm, method=args.method)
        cur = landauer_current(dev, leads, comm=comm) if args.mu_l != args.mu_r else None
    except ValueError as exc:
        if rank0:
            print(f"qcspin transport: error: {exc}", flush=True)
        return 2
    E = toolkit.get_units(cfg.units).energy
    d = {"energies": (res.energies, E, "energy grid"),
         "theta": (res.theta, "", "Eq. 16 Tr[Gamma_l G^R Gamma_r G^A]"),
         "spin_r": (res.spin_r, "", "Tr[sigma_a Gamma_r G^R Gamma_l G^A], a = x, y, z"),
         "spin_l": (res.spin_l, "", "Tr[sigma_a Gamma_l G^R Gamma_r G^A], a = x, y, z"),
         "polarization": (res.polarization, "", "Eq. 17 (spin_r z)"),
         "dos": (res.dos, f"1/{E}", "Eq. 18 DOSh per site")}
    attrs = {"config": config_to_toml(cfg), "gamma": args.gamma, "mu_l": args.mu_l,
             "mu_r": args.mu_r, "temperature": args.temperature, "method": res.method,
             "spin_config": args.spin_config or "from config", "energy_unit": E,
             "mpi_size": comm.getSize(), "qcspin_format": 1, "kind": "transport"}
    if cur is not None:
        d["current/particle"] = (np.array(cur.particle), f"{E}/hbar", "electrons per time l->r")
        d["current/spin_r"] = (cur.spin_r, f"{E}", "paper Eq. 12 at the right lead")
        d["current/spin_l"] = (cur.spin_l, f"{E}", "paper Eq. 12 at the left lead")
    path = save_results(out, d, attrs, comm=comm, overwrite=True)
    if rank0:
        print(f"qcspin transport: {cfg.name}: N_s = {dev.n_orbitals}, {len(res.energies)} "
              f"energies ({res.method}); max theta {res.theta.max():.6g}")
        if cur is not None:
            print(f"  particle current {cur.particle:.10g} (+- {cur.error:.1e}), spin_r "
                  f"{np.array2string(cur.spin_r, precision=6)}")
        print(f"  results: {path}")
        if args.png:
            print(f"  figure:  {os.path.abspath(plot_transmission(res, args.png, title=cfg.name))}")
    return 0


def add_command(subparsers) -> None:
    """Register ``qcspin transport`` on an argparse sub-parser collection."""
    p = subparsers.add_parser(
        "transport", help="transmission, spin polarization and DOSh with wide-band leads",
        description="Landauer transport (paper 004 Eqs. 16-18) of CONFIG.toml between wide-band "
                    "leads on the left and right faces, for the spins of the config (or a static "
                    "configuration).  PETSc options: -qcspin_transport_<option>.")
    p.add_argument("config", help="TOML config")
    p.add_argument("--energies", type=_parse_range, default=_parse_range("-4:4:0.01"),
                   metavar="START:STOP:STEP", help="energy grid (default -4:4:0.01)")
    p.add_argument("--gamma", type=float, default=1.0, help="Gamma of both leads (default 1)")
    p.add_argument("--mu-l", type=float, default=0.0, help="chemical potential of the left lead")
    p.add_argument("--mu-r", type=float, default=0.0, help="chemical potential of the right lead")
    p.add_argument("--temperature", type=float, default=0.025, help="k_B T of both leads")
    p.add_argument("--config", dest="spin_config", choices=("parallel", "perpendicular"),
                   default=None, help="static spins instead of the config's")
    p.add_argument("--method", choices=METHODS, default="auto", help="Green-function solver")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (repeatable)")
    p.add_argument("-o", "--output", help="HDF5 output (default: CONFIG name + _transport.h5)")
    p.add_argument("--png", help="also write a PNG (DOSh, theta, P)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=cmd_transport)
