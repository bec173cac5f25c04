"""Stationary and equilibrium states of an open junction for fixed spins and potentials.

The electron problem (:class:`integrators.electrons.ElectronProblem`) couples to wide-band
reservoirs c (a wide-band lead, or the absorbers of an extended lead) with diagonal Gamma_c on
the orbitals I_c.  With H_eff = H + sum_l V_l P_l - i Gamma/2 (V_l: the bias shift of lead l's
explicit sites P_l) and G(z) = (z - H_eff)^-1, setting d Pi_{c,p}/dt = 0 in Eq. (9) of paper
004 gives one linear solve per coupling and pole,

    (H_eff - chi_{c,p}^+) Pi_{c,p} = -(eta_p / beta_c) Gamma_c E_c,   chi^+ = mu_c + i xi_p/beta_c

(E_c: the identity columns of I_c; PETSc KSP, LU with MUMPS).

**Equilibrium** (all reservoirs at one mu, beta and pole set).  Closing the energy integral of
rho = int dE/2pi f(E) i [G^R - G^A] around the poles of the Padé Fermi function gives

    rho_eq = 1/2 + (1/beta) sum_p eta_p [G(chi_p) + G(chi_p)^dag],                  (pole sum)

the exact fixed point of the equations of motion for the same poles.  It also fills the states
that no reservoir reaches (bound states outside the lead bands, isolated sites, with Gamma = 0
on them) by the Fermi function; the Sylvester equation below is singular there.

**Bias.**  Setting d rho/dt = 0 in Eq. (4) gives the Sylvester equation

    H_eff rho - rho H_eff^dag = -i Q,   Q = sum_c [Gamma_c/2 + S_c E_c^T + E_c S_c^dag],
    S_c = sum_p Pi_{c,p}.

It is solved for the difference from the pole-sum equilibrium rho_ref of a reference reservoir
(the first lead's mu before the bias, its T and poles): rho = rho_ref + drho with
H_eff drho - drho H_eff^dag = -i (Q - Q_ref), whose source is confined to the bias windows.
So states decoupled from every reservoir keep the reference occupation f_ref(E), the
equilibrium they had before the bias (the convention for bound states under a bias: nothing can
change their occupation), and the round-off of the dense solve (scipy.linalg.solve_sylvester,
O(N_s^3); fine up to a few thousand orbitals) acts on the bias-window part only.  At zero bias
rho = rho_ref exactly.  States that no reservoir reaches at all (decay rate < BOUND_RATE x max
Gamma: bound states outside every band, isolated sites) make the Sylvester operator singular;
they are split off by a sorted Schur form and keep the reference occupation
(:func:`_sylvester`).
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
from typing import Sequence

import numpy as np
import scipy.linalg as sla

from operators.hamiltonian import ElectronHamiltonian, gather_dense
from operators.pade import PadePoles
from toolkit.memory import STATIONARY_DENSE_MAX_N
from toolkit.parallel import (
    RowHermitianTranspose,
    gather_rows,
    node_cpus,
    on_root,
    ranks_on_node,
    scatter_rows,
)
from toolkit.petsc_options import in_database, sub_prefix

from petsc4py import PETSc

from .electrons import ElectronProblem, per_lead_poles

__all__ = ["stationary_state", "equilibrium_density", "effective_matrix", "partitioned_state"]


def effective_matrix(H: ElectronHamiltonian, problem: ElectronProblem | _Part,
                     shifts: Sequence[float] | np.ndarray | None = None) -> PETSc.Mat:
    """H + sum_l V_l P_l - i Gamma/2 as a new AIJ matrix (same layout as H); ``shifts``: V_l per
    lead (default 0).  The one construction of H_eff: the pole solves factor it and the dense
    Sylvester solve of :func:`stationary_state` gathers it (``gather_dense``).  Collective."""
    A = H.mat.duplicate(copy=True)
    d = A.createVecLeft()
    d.set(0.0)
    r0, r1 = A.getOwnershipRange()
    arr = d.getArray()
    for c in problem.couplings:
        I = np.asarray(c.interface)
        mine = (I >= r0) & (I < r1)
        arr[I[mine] - r0] += -0.5j * c.gamma[mine]
    for k, sl in problem.shifts:
        V = 0.0 if shifts is None else float(shifts[k])
        a, b = max(sl.start, r0), min(sl.stop, r1)
        if V != 0.0 and b > a:
            arr[a - r0:b - r0] += V
    A.setDiagonal(d, addv=PETSc.InsertMode.ADD_VALUES)
    d.destroy()
    return A


#: above this N_s the pole solves on several ranks use MUMPS distributed over the ranks (its
#: factors split, dense unit columns centralised on the host); up to it every rank factors the
#: whole (sparse) H_eff - z itself and solves only its own columns (module docstring)
REPLICATED_MAX_N = 20000


def _sequential_copy(A: PETSc.Mat) -> PETSc.Mat:
    """The whole row-distributed AIJ ``A`` as a sequential AIJ on every rank (its CSR
    gathered: O(nnz), ~16 N_s entries for H_eff).  Collective."""
    ai, aj, av = A.getValuesCSR()
    comm = A.getComm()
    N = A.getSize()[0]
    counts = gather_rows(np.array([ai[-1]]), comm, root=None)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    me = comm.getRank()
    indptr = gather_rows(np.asarray(ai[:-1]) + offsets[me], comm, root=None)
    indptr = np.concatenate([indptr, [int(np.sum(counts))]]).astype(PETSc.IntType)
    cols = gather_rows(np.asarray(aj), comm, root=None).astype(PETSc.IntType)
    vals = gather_rows(np.asarray(av), comm, root=None)
    S = PETSc.Mat().createAIJ([N, N], csr=(indptr, cols, vals), comm=PETSc.COMM_SELF)
    S.assemble()
    return S


class _Solver:
    """LU (MUMPS) of A0 - z for a sequence of z, with identity columns as right-hand sides.
    Collective.

    One rank, or several with N_s <= :data:`REPLICATED_MAX_N` (``replicated``): one sequential
    factorisation (on every rank its own copy of the sparse A0) and the columns as a sparse
    right-hand side (``MatMatTransposeSolve`` with the transposed identity columns as AIJ): the
    forward elimination then touches only the elimination-tree paths of the columns, 2.4x
    faster than dense unit columns for the 14 x 8 x 8 valve (N_s = 1792); :meth:`solve_full`
    gives whole columns, and each rank solves only the columns it needs (the pole sum: its own
    rows' columns).  Otherwise MUMPS runs distributed over the ranks with the columns as a
    dense MPI matrix (centralised on the host by MUMPS): PETSc 3.18's MUMPS interface returns
    wrong solutions for a distributed sparse right-hand side (tested)."""

    def __init__(self, A0: PETSc.Mat, prefix: str, replicated: bool | None = None) -> None:
        comm = A0.getComm()
        N = A0.getSize()[0]
        if replicated is None:
            replicated = N <= REPLICATED_MAX_N
        self.comm = comm
        self.N = N
        self.r0, self.r1 = A0.getOwnershipRange()
        self.replicated = comm.getSize() > 1 and replicated
        self._own_A0 = self.replicated
        self.A0 = _sequential_copy(A0) if self.replicated else A0
        kcomm = PETSc.COMM_SELF if self.replicated else comm
        self.A = self.A0.duplicate(copy=True)
        self.ksp = PETSc.KSP().create(comm=kcomm)
        self.ksp.setOptionsPrefix(prefix)
        self.ksp.setType("preonly")
        pc = self.ksp.getPC()
        pc.setType("lu")
        pc.setFactorSolverType("mumps")
        self.ksp.setFromOptions()
        # real-axis energies (integrators/window.py) pivot more than the complex poles:
        # MUMPS's default 20 % workspace margin runs out (INFOG(1) = -9) on 3D valves.  Set on
        # the factor matrix at the first factorisation (never in the global options database,
        # which would outlive this solver); -<prefix>mat_mumps_icntl_14 still wins.
        self._workspace = not in_database(f"{prefix}mat_mumps_icntl_14")
        self._z: complex | None = None
        #: solutions are whole columns on every rank (one rank, or the replicated factor)
        self.full_columns = kcomm.getSize() == 1
        self.sparse = self.full_columns and pc.getFactorSolverType() == "mumps"
        self._kcomm = kcomm
        self._rhs: dict = {}           # key of the columns -> (rhs, solution) matrices
        if self.sparse:
            from toolkit import _petscenv

            f = _petscenv.libpetsc().MatMatTransposeSolve
            f.argtypes = [ctypes.c_void_p] * 3
            f.restype = ctypes.c_int
            self._mat_t_solve = f

    def _factor(self, z: complex) -> None:
        if z != self._z:
            self.A0.copy(self.A, structure=PETSc.Mat.Structure.SAME_NONZERO_PATTERN)
            self.A.shift(-z)
            self.ksp.setOperators(self.A)
            pc = self.ksp.getPC()
            if self._workspace and pc.getFactorSolverType() == "mumps":
                pc.setFactorSetUpSolverType()
                pc.getFactorMatrix().setMumpsIcntl(14, MUMPS_WORKSPACE)
                self._workspace = False
            self.ksp.setUp()
            F = self.ksp.getPC().getFactorMatrix()
            info = F.getMumpsInfog(1) if F.getType() == "mumps" else 0
            if info < 0:
                raise RuntimeError(f"MUMPS: the LU factorisation at z = {z} failed (INFOG(1) = "
                                   f"{info}, INFOG(2) = {F.getMumpsInfog(2)}; -8, -9: raise "
                                   f"the workspace with -{self.ksp.getOptionsPrefix()}"
                                   f"mat_mumps_icntl_14, now {F.getMumpsIcntl(14)} %)")
            self._z = z

    def solve(self, z: complex, rhs: PETSc.Mat, sol: PETSc.Mat) -> np.ndarray:
        """Local rows of (A0 - z)^-1 rhs (the dense array of ``sol``)."""
        self._factor(z)
        self.ksp.getPC().getFactorMatrix().matSolve(rhs, sol)  # (KSPMatSolve: not in 3.18)
        return sol.getDenseArray()

    def solve_columns(self, z: complex, cols: np.ndarray) -> np.ndarray:
        """Local rows (n_loc, len(cols)) of (A0 - z)^-1 [:, cols] (a work array, overwritten
        by the next call with the same ``cols``)."""
        if self.full_columns:
            return self.solve_full(z, cols)[self.r0:self.r1]
        cols = np.asarray(cols, dtype=np.int64)
        mats = self._mats(cols)
        return self.solve(z, *mats)

    def solve_full(self, z: complex, cols: np.ndarray) -> np.ndarray:
        """All rows (N, len(cols)) of (A0 - z)^-1 [:, cols] on this rank (``full_columns``
        only; a work array, overwritten by the next call with the same ``cols``)."""
        if not self.full_columns:
            raise RuntimeError("_Solver.solve_full needs a sequential factorisation")
        cols = np.asarray(cols, dtype=np.int64)
        mats = self._mats(cols)
        if not self.sparse:
            return self.solve(z, *mats)
        self._factor(z)
        Bt, X = mats
        F = self.ksp.getPC().getFactorMatrix()
        if self._mat_t_solve(F.handle, Bt.handle, X.handle) != 0:
            raise RuntimeError(f"MUMPS: MatMatTransposeSolve with a sparse right-hand side "
                               f"failed at z = {z} (INFOG(1) = {F.getMumpsInfog(1)}, "
                               f"INFOG(2) = {F.getMumpsInfog(2)})")
        return X.getDenseArray()

    def _mats(self, cols: np.ndarray):
        """The (right-hand side, solution) matrices of the columns ``cols`` (cached)."""
        key = (len(cols), cols.tobytes())
        mats = self._rhs.get(key)
        if mats is not None:
            return mats
        N, n = self.N, len(cols)
        if self.sparse:
            Bt = PETSc.Mat().createAIJ([n, N], comm=self._kcomm)
            Bt.setPreallocationCSR((np.arange(n + 1, dtype=PETSc.IntType),
                                    cols.astype(PETSc.IntType), np.ones(n, complex)))
            Bt.assemble()
            X = PETSc.Mat().createDense([N, n], comm=self._kcomm)
            X.setUp()
            X.assemble()
            mats = (Bt, X)
        elif self.full_columns:
            rhs = _unit_columns(self._kcomm, N, N, 0, cols)
            mats = (rhs, rhs.duplicate())
        else:
            rhs = _unit_columns(self.comm, self.r1 - self.r0, N, self.r0, cols)
            mats = (rhs, rhs.duplicate())
        self._rhs[key] = mats
        return mats

    def release(self, cols: np.ndarray) -> None:
        """Free the work matrices of the columns ``cols`` (e.g. all N after the pole sum)."""
        cols = np.asarray(cols, dtype=np.int64)
        for m in self._rhs.pop((len(cols), cols.tobytes()), ()):
            m.destroy()

    def destroy(self) -> None:
        for mats in self._rhs.values():
            for m in mats:
                m.destroy()
        self._rhs.clear()
        self.ksp.destroy()
        self.A.destroy()
        if self._own_A0:
            self.A0.destroy()

    def __enter__(self) -> "_Solver":
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()


def _unit_columns(comm, nloc: int, N: int, r0: int, cols: np.ndarray) -> PETSc.Mat:
    """Dense (N x len(cols)) matrix with the identity columns ``cols`` (rows distributed)."""
    m = PETSc.Mat().createDense([(nloc, N), (PETSc.DECIDE, len(cols))], comm=comm)
    m.setUp()
    a = m.getDenseArray()
    a[...] = 0.0
    mine = (cols >= r0) & (cols < r0 + nloc)
    a[cols[mine] - r0, np.flatnonzero(mine)] = 1.0
    m.assemble()
    return m


def _pole_sum(solver: _Solver, H: ElectronHamiltonian, mu: float, beta: float,
              poles: PadePoles, keep: Sequence[np.ndarray] = ()):
    """(local rows of rho_eq, [local rows of sum_p (eta_p/beta) G(chi_p)[:, cols] for cols in
    ``keep``]) by the pole sum.  Collective.

    With whole columns (:attr:`_Solver.full_columns`) each rank solves the columns of its own
    rows, M[:, r0:r1] with M = -sum_p eta_p (A0 - chi_p)^-1: the rows of M^dag are then local
    and the rows of M come from one transpose of the column slabs (all-to-all); otherwise the
    distributed solve gives the rows of M and the transpose gives those of M^dag."""
    d, N, comm = H.dist, H.device.n_orbitals, H.comm
    r0, nloc = d.row_start, d.n_local_rows
    own = np.arange(r0, r0 + nloc)
    cols_of = own if solver.full_columns else np.arange(N)
    M = np.zeros((N, nloc) if solver.full_columns else (nloc, N), complex, order="F")
    kept = [np.zeros((nloc, len(c)), complex) for c in keep]
    for xi, eta in zip(poles.xi, poles.eta):
        chi = mu + 1j * xi / beta
        if solver.full_columns:
            M -= eta * solver.solve_full(chi, cols_of)    # columns r0:r1 of -G(chi)
            for out, cols in zip(kept, keep):
                out -= (eta / beta) * solver.solve_full(chi, cols)[r0:r0 + nloc]
        else:
            X = solver.solve_columns(chi, cols_of)        # rows r0:r1 of (A0 - chi)^-1
            M -= eta * X
            for out, cols in zip(kept, keep):
                out -= (eta / beta) * X[:, cols]
    solver.release(cols_of)
    for cols in keep:
        solver.release(cols)
    rows_h = [(2 * a, 2 * b) for a, b in d.site_ranges]
    if solver.full_columns:
        Mh = np.ascontiguousarray(M.conj().T)             # rows of M^dag: local
        if comm.getSize() > 1:
            Mr = np.empty((nloc, N), complex)
            RowHermitianTranspose(rows_h, comm)(np.ascontiguousarray(M.T), Mr)
            np.conjugate(Mr, out=Mr)                      # rows of M
        else:
            Mr = np.ascontiguousarray(M)
        rho = (Mr + Mh) / beta
    else:
        Mh = np.empty_like(M)
        if comm.getSize() > 1:
            RowHermitianTranspose(rows_h, comm)(M, Mh)
        else:
            Mh[...] = M.conj().T
        rho = (M + Mh) / beta
    rho[np.arange(nloc), r0 + np.arange(nloc)] += 0.5
    return rho, kept


def equilibrium_density(H: ElectronHamiltonian, problem: ElectronProblem | _Part,
                        poles: PadePoles, mu: float, temperature: float,
                        shifts: Sequence[float] | None = None,
                        prefix: str | None = None) -> np.ndarray:
    """Local rows (n_loc, N_s) of the grand-canonical equilibrium density matrix of the
    electron problem at ``mu`` and ``temperature`` (pole sum over ``poles``, module docstring)
    for the spins currently in ``H``.  Collective."""
    A0 = effective_matrix(H, problem, shifts)
    solver = _Solver(A0, prefix or sub_prefix(H.prefix, "stationary"))
    try:
        rho, _ = _pole_sum(solver, H, mu, 1.0 / temperature, poles)
    finally:
        solver.destroy()
        A0.destroy()
    return rho


def stationary_state(H: ElectronHamiltonian, problem: ElectronProblem | _Part,
                     poles: PadePoles | Sequence, mu: Sequence[float] | np.ndarray | None = None,
                     prefix: str | None = None, method: str = "auto") -> tuple[np.ndarray, dict]:
    """Local rows of the stationary rho (n_loc, N_s) and {component name: local rows of its
    Pi block (n_loc, N_p n_c, column p n_c + k)} for the spins currently in ``H``.
    Collective.

    ``mu``: chemical potentials of the leads (default ``lead.mu``); a lead's explicit sites
    shift with mu - lead.mu.  KSP options can be changed under ``-<prefix>``, default the
    Hamiltonian's prefix + ``stationary_`` (``-qcspin_stationary_``; preonly + LU + MUMPS).

    ``method`` (under a bias only): "dense" (the Sylvester equation, O(N_s^3) on every rank),
    "window" (integrators/window.py: sparse solves along the real axis, the local rows only)
    or "auto" (dense up to :data:`DENSE_MAX_N` orbitals).
    """
    if method not in STATIONARY_METHODS:
        raise ValueError(f"stationary method = {method!r} is not allowed: expected one of "
                         f"{list(STATIONARY_METHODS)}")
    comm = H.comm
    N = H.device.n_orbitals
    d = H.dist
    r0, nloc = d.row_start, d.n_local_rows
    leads = problem.leads
    mus = [l.mu for l in leads] if mu is None else [float(m) for m in mu]
    shifts = [m - l.mu for m, l in zip(mus, leads)]
    per_lead = per_lead_poles(poles, len(leads))
    A0 = effective_matrix(H, problem, shifts)
    solver = _Solver(A0, prefix or sub_prefix(H.prefix, "stationary"))
    blocks, S = {}, []
    try:
        for c in problem.couplings:
            n = len(c.interface)
            m, lp, beta = mus[c.lead_index], per_lead[c.lead_index], 1.0 / c.temperature
            cols = np.asarray(c.interface)
            block = np.empty((nloc, lp.n_poles * n), complex, order="F")
            for p, (xi, eta) in enumerate(zip(lp.xi, lp.eta)):
                X = solver.solve_columns(m + 1j * xi / beta, cols)
                block[:, p * n:(p + 1) * n] = ((-eta * c.gamma) / beta) * X
            solver.release(cols)
            blocks[c.name] = block
            S.append(block.reshape((nloc, n, lp.n_poles), order="F").sum(axis=2))
        # the reference equilibrium: the first lead before any bias
        ref = (leads[0].mu, leads[0].temperature, per_lead[0])
        biased = [c for c in problem.couplings
                  if not (mus[c.lead_index] == ref[0] and c.temperature == ref[1]
                          and _same_poles(per_lead[c.lead_index], ref[2]))]
        same = not biased
        window = not same and (method == "window" or (method == "auto" and N > DENSE_MAX_N))
        keep = [] if same or window else [np.asarray(c.interface) for c in problem.couplings]
        rho, S_ref = _pole_sum(solver, H, ref[0], 1.0 / ref[1], ref[2], keep)
        if window:
            from .window import Channel, window_density

            chans = [Channel(np.asarray(c.interface), np.sqrt(np.asarray(c.gamma, float)),
                             mus[c.lead_index], 1.0 / c.temperature, per_lead[c.lead_index])
                     for c in biased]
            rho = np.ascontiguousarray(rho)
            info = window_density(solver, A0, chans, (ref[0], 1.0 / ref[1], ref[2]),
                                  list(mus) + [ref[0]],
                                  max(c.temperature for c in problem.couplings), rho, r0)
            last_window.clear()
            last_window.append(info)
            from toolkit.log import get_logger

            get_logger(__name__).info(
                f"stationary state under bias: window quadrature, {info.energies} energies "
                f"({info.panels} panels, {info.splits} splits, {info.skipped} skipped, error "
                f"estimate {info.error:.1e}; tails {info.tail_columns} columns)")
        # the dense H_eff of the Sylvester equation: the same matrix as the solves, gathered
        # on rank 0, which solves it (below)
        Heff = None if same or window else gather_dense(A0, N, comm, root=0)
    finally:
        solver.destroy()
        A0.destroy()
    if same or window:      # (window: rho already holds the bias-window part)
        return rho, blocks
    # bias: the Sylvester equation for rho - rho_ref (source in the bias window only), on rank
    # 0 with the BLAS threads of every rank of its node; the other ranks wait idle, then each
    # receives its rows (a replicated solve would take no less time and R x the memory)
    gamma = np.zeros(N)
    for c in problem.couplings:
        gamma[np.asarray(c.interface)] += c.gamma
    tol = BOUND_RATE * max(1.0, float(gamma.max(initial=0.0)))
    Ds = [gather_rows(Sc - Sr * c.gamma, comm, root=0)
          for c, Sc, Sr in zip(problem.couplings, S, S_ref)]
    del S, S_ref
    size = comm.getSize()
    cpus = node_cpus(comm) if size > 1 else set()
    n_threads = min(ranks_on_node(comm), len(cpus)) if size > 1 else 0

    def solve(Heff, Ds) -> np.ndarray:
        from toolkit.blas import threads
        from toolkit.log import get_logger

        get_logger(__name__).info(
            f"stationary state under bias: dense Sylvester solve, N = {N}"
            + (f", on rank 0 with {n_threads} BLAS threads" if size > 1 else ""))
        ctx = threads(n_threads, cpus) if n_threads > 1 else contextlib.nullcontext()
        try:
            return _dense_bias_part(Heff, problem.couplings, Ds, N, tol, ctx)
        except (MemoryError, ValueError, RuntimeError, np.linalg.LinAlgError) as e:
            raise RuntimeError(f"stationary state: the dense Sylvester solve failed: {e}") \
                from e

    sym = on_root(functools.partial(solve, Heff, Ds), comm, (RuntimeError,), idle=True)
    del Heff, Ds
    rho += scatter_rows(sym, comm, nloc)
    return rho, blocks


def _dense_bias_part(Heff, couplings, Ds, N: int, tol: float, ctx) -> np.ndarray:
    """The Hermitian drho of the dense Sylvester equation (rank 0 of stationary_state), the
    solve run inside the context ``ctx`` (its BLAS threads)."""
    Q = np.zeros((N, N), complex)
    for c, D in zip(couplings, Ds):
        I = np.asarray(c.interface)
        Q[:, I] += D
        Q[I, :] += D.conj().T
    Q *= -1j
    with ctx:
        drho = _sylvester(Heff, Q, tol)
    del Q
    # Hermitian to round-off, by row chunks (no second N x N temporary)
    sym = np.empty((N, N), complex)     # C order: row blocks are contiguous (Scatterv)
    for a in range(0, N, 512):
        b = min(N, a + 512)
        sym[a:b] = 0.5 * (drho[a:b] + drho[:, a:b].conj().T)
    return sym


#: MUMPS's workspace margin (ICNTL(14), per cent) unless the PETSc options give one
MUMPS_WORKSPACE = 100

#: the stationary state under a bias ("auto": dense up to DENSE_MAX_N orbitals, else window)
STATIONARY_METHODS = ("auto", "dense", "window")
DENSE_MAX_N = STATIONARY_DENSE_MAX_N
#: the integrators.window.WindowInfo of the last window quadrature (diagnostics, tests)
last_window: list = []

#: states of H_eff decaying slower than this (x max(1, max Gamma)) count as decoupled from
#: every reservoir (bound states, isolated sites): under a bias they keep the reference occupation
BOUND_RATE = 1e-9


def _sylvester(Heff: np.ndarray, C: np.ndarray, tol: float) -> np.ndarray:
    """X with Heff X - X Heff^dag = C (Heff is overwritten), except on the eigenstates of Heff
    with |Im lambda| < tol (decoupled from every reservoir), where the operator is singular and
    X is set to 0 (their occupation stays that of the reference equilibrium).

    One complex Schur form Heff = Z T Z^dag serves both sides (Heff^dag = Z T^dag Z^dag), with
    the decoupled eigenvalues first, T = [[T11, T12], [0, T22]]; the blocks (2,2), (2,1), (1,2)
    of T X' - X' T^dag = Z^dag C Z are triangular Sylvester equations solved in turn by LAPACK's
    blocked ZTRSYL3 (toolkit.lapack.trsyl; each nonsingular: the eigenvalues of T22 have
    Im < -tol), X'_11 = 0.  Cost: the Schur form (~25 N^3 flops) + ZTRSYL3 and four products
    (level-3 BLAS); peak 4 N x N arrays besides Heff and C.  scipy's solve_sylvester took three
    Schur forms and the unblocked ZTRSYL (7.3 s against 2.6 s for N = 980, 18 arrays; it
    crashed with a segmentation fault in ZTRSYL for a random N = 2000 case):
    ``scripts/bench_sylvester.py``."""
    from scipy.linalg.blas import zgemm

    from toolkit.lapack import trsyl

    T, Z, k = sla.schur(Heff, output="complex", sort=lambda z: abs(z.imag) < tol,
                        overwrite_a=True)
    W = zgemm(1.0, Z, C, trans_a=2)                     # Z^dag C (no conjugated copy of Z)
    Cz = zgemm(1.0, W, Z)
    del W
    if k == 0:
        X = trsyl(T, T, Cz, overwrite_c=True)
    else:
        T11, T12, T22 = T[:k, :k], T[:k, k:], T[k:, k:]
        X = np.zeros_like(Cz)
        if k < len(T):
            X22 = trsyl(T22, T22, Cz[k:, k:])
            X[k:, :k] = trsyl(T22, T11, Cz[k:, :k] + X22 @ T12.conj().T)
            X[:k, k:] = trsyl(T11, T22, Cz[:k, k:] - T12 @ X22)
            X[k:, k:] = X22
    del Cz, T
    W = zgemm(1.0, Z, X)
    del X
    return zgemm(1.0, W, Z, trans_b=2)


def _same_poles(a: PadePoles, b: PadePoles) -> bool:
    return a is b or (a.n_poles == b.n_poles and np.array_equal(a.xi, b.xi)
                      and np.array_equal(a.eta, b.eta))


class _Part:
    """An ElectronProblem restricted to some of its couplings (same leads and shifts)."""

    def __init__(self, problem: ElectronProblem, couplings) -> None:
        self.leads, self.shifts, self.couplings = problem.leads, problem.shifts, list(couplings)


def partitioned_state(H: ElectronHamiltonian, problem: ElectronProblem, poles,
                      mu: Sequence[float] | np.ndarray | None = None, *, empty: bool = False,
                      prefix: str | None = None) -> tuple[np.ndarray, dict]:
    """Paper 000's initial state: device and leads disconnected, each in its own equilibrium
    (stationary state) for t < 0, to be connected at t = 0.  Collective.

    The bonds between explicit lead sites and the device are cut (the leads' explicit sites
    with their absorbers relax to the stationary state at ``mu``), wide-band couplings on the
    device's face are off (their Pi blocks 0), and the device holds the equilibrium of its own
    H at the first lead's mu (before any bias) and T, or nothing (``empty``).  Returns local
    rows of rho and {component: local rows of its Pi block} like :func:`stationary_state`.
    """
    import dataclasses

    prefix = prefix or sub_prefix(H.prefix, "stationary")
    edev = problem.edevice
    lead_layers = [i for i, n in enumerate(edev.layer_names) if n.startswith("lead:")]
    in_lead = np.isin(edev.layer_of_site, lead_layers)
    cut = in_lead[edev.bonds[:, 0]] != in_lead[edev.bonds[:, 1]]
    hop = np.where(cut, 0.0, edev.hopping)
    H0 = ElectronHamiltonian(dataclasses.replace(edev, hopping=hop), H.comm,
                             prefix=sub_prefix(H.prefix, "partitioned"))
    try:
        if H.device.n_spins:
            H0.set_spins(np.asarray(edev.spins0)[H.dist.spin_start:H.dist.spin_stop])
        face = {k for k, m in enumerate(problem.modes) if m.sites is None}
        part = _Part(problem, [c for c in problem.couplings if c.lead_index not in face])
        per_lead = per_lead_poles(poles, len(problem.leads))
        d = H.dist
        blocks = {c.name: np.zeros((d.n_local_rows, per_lead[c.lead_index].n_poles
                                    * len(c.interface)), complex, order="F")
                  for c in problem.couplings if c.lead_index in face}
        if part.couplings:
            rho, own = stationary_state(H0, part, per_lead, mu, prefix)
            blocks.update(own)
        else:
            lead0 = problem.leads[0]
            rho = equilibrium_density(H0, part, per_lead[0], lead0.mu, lead0.temperature,
                                      prefix=prefix)
    finally:
        H0.destroy()
    if empty:
        ds = problem.ext.device_sites
        rows = np.arange(d.n_local_rows) + d.row_start
        dev_rows = (rows >= 2 * ds.start) & (rows < 2 * ds.stop)
        rho[dev_rows, :] = 0.0
        rho[:, 2 * ds.start:2 * ds.stop] = 0.0
    return rho, {c.name: blocks[c.name] for c in problem.couplings}
