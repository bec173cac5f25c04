"""Stationary state of an open junction for fixed spins and chemical potentials.

Setting d Pi_{l,p}/dt = 0 in Eq. (9) of paper 004 gives one linear solve per lead and pole,

    (H - i Gamma/2 - chi_{l,p}^+) Pi_{l,p} = -(eta_p gamma_l / beta_l) E_l,

with E_l the identity columns of the interface orbitals (PETSc KSP, LU with MUMPS, solved against
the n_l columns only).  Setting d rho/dt = 0 in Eq. (4) then gives the Sylvester equation

    H_eff rho - rho H_eff^dag = -i Q,   H_eff = H - i Gamma/2,
    Q = sum_l [Gamma_l/2 + S_l E_l^T + E_l S_l^dag],   S_l = sum_p Pi_{l,p},

solved densely (scipy.linalg.solve_sylvester, O(N_s^3); fine up to a few thousand orbitals).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.linalg as sla

from petsc4py import PETSc

from operators.hamiltonian import ElectronHamiltonian
from operators.pade import PadePoles
from toolkit.parallel import allgather_rows

__all__ = ["stationary_state"]


def _effective_matrix(H: ElectronHamiltonian, leads: Sequence) -> PETSc.Mat:
    """H - i Gamma/2 as a new AIJ matrix (same layout as H)."""
    A = H.mat.duplicate(copy=True)
    d = A.createVecLeft()
    d.set(0.0)
    r0, r1 = A.getOwnershipRange()
    arr = d.getArray()
    for lead in leads:
        I = np.asarray(lead.interface)
        mine = I[(I >= r0) & (I < r1)]
        arr[mine - r0] += -0.5j * lead.gamma
    A.setDiagonal(d, addv=PETSc.InsertMode.ADD_VALUES)
    d.destroy()
    return A


def stationary_state(H: ElectronHamiltonian, leads: Sequence, poles: PadePoles | Sequence,
                     mu: Sequence[float] | None = None,
                     prefix: str = "qcspin_stationary_") -> tuple[np.ndarray, list[np.ndarray]]:
    """Local rows of the stationary rho (n_loc, N_s) and of each lead block Pi_l
    (n_loc, N_p n_l, column p n_l + k) for the spins currently in ``H``.  Collective.

    ``mu``: chemical potentials of the leads (default ``lead.mu``).  KSP options can be changed
    under ``-qcspin_stationary_`` (default: preonly + LU + MUMPS).
    """
    comm = H.comm
    N = H.device.n_orbitals
    d = H.dist
    r0, nloc = d.row_start, d.n_local_rows
    mus = [l.mu for l in leads] if mu is None else list(mu)
    A0 = _effective_matrix(H, leads)
    A = A0.duplicate(copy=True)
    ksp = PETSc.KSP().create(comm=comm)
    ksp.setOptionsPrefix(prefix)
    ksp.setType("preonly")
    pc = ksp.getPC()
    pc.setType("lu")
    pc.setFactorSolverType("mumps")
    ksp.setFromOptions()
    counts = np.array([2 * (b - a) for a, b in d.site_ranges])
    blocks, S = [], []
    try:
        per_lead = list(poles) if isinstance(poles, (list, tuple)) else [poles] * len(leads)
        for lead, m, lp in zip(leads, mus, per_lead):
            I = np.asarray(lead.interface)
            n = len(I)
            beta = 1.0 / lead.temperature
            rhs = PETSc.Mat().createDense([(nloc, N), (PETSc.DECIDE, n)], comm=comm)
            rhs.setUp()
            ra = rhs.getDenseArray()
            ra[...] = 0.0
            mine = (I >= r0) & (I < r0 + nloc)
            ra[I[mine] - r0, np.flatnonzero(mine)] = 1.0
            rhs.assemble()
            sol = rhs.duplicate()
            block = np.empty((nloc, lp.n_poles * n), complex, order="F")
            for p, (xi, eta) in enumerate(zip(lp.xi, lp.eta)):
                chi = m + 1j * xi / beta
                A0.copy(A, structure=PETSc.Mat.Structure.SAME_NONZERO_PATTERN)
                A.shift(-chi)
                ksp.setOperators(A)
                ksp.setUp()
                pc.getFactorMatrix().matSolve(rhs, sol)  # (KSPMatSolve is not wrapped in 3.18)
                block[:, p * n:(p + 1) * n] = (-eta * lead.gamma / beta) * sol.getDenseArray()
            rhs.destroy()
            sol.destroy()
            blocks.append(block)
            Sl = block.reshape((nloc, n, lp.n_poles), order="F").sum(axis=2)
            S.append(allgather_rows(Sl, comm, counts, np.empty((N, n), complex)))
    finally:
        ksp.destroy()
        A.destroy()
        A0.destroy()
    Hd = H.to_dense()
    gamma = np.zeros(N)
    Q = np.zeros((N, N), complex)
    for lead, Sl in zip(leads, S):
        I = np.asarray(lead.interface)
        gamma[I] += lead.gamma
        Q[I, I] += 0.5 * lead.gamma
        Q[:, I] += Sl
        Q[I, :] += Sl.conj().T
    Heff = Hd - 0.5j * np.diag(gamma)
    rho = sla.solve_sylvester(Heff, -Heff.conj().T, -1j * Q)
    rho = 0.5 * (rho + rho.conj().T)  # Hermitian to round-off
    return rho[r0:r0 + nloc], blocks
