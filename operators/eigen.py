"""Eigenpairs of the electron Hamiltonian: LAPACK (dense, small) or SLEPc (Krylov-Schur).

Shared by the initial-state construction (integrators) and the spectral analysis (analysis).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla

__all__ = ["eigh_dense", "eigs_slepc", "DENSE_LIMIT"]

DENSE_LIMIT = 4000  # N_s up to which the LAPACK path is used by default


def eigh_dense(H) -> tuple[np.ndarray, np.ndarray]:
    """All eigenpairs (ascending) of an :class:`ElectronHamiltonian` via LAPACK on every rank."""
    Hd = H.to_dense()
    return sla.eigh(Hd)


def eigs_slepc(mat, nev: int, which: str = "smallest", target: float | None = None,
               prefix: str = "qcspin_eps_", tol: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """``nev`` eigenpairs of a Hermitian PETSc Mat with SLEPc.  Collective.

    which = 'smallest' (lowest eigenvalues, Krylov-Schur) or 'target' (nearest to ``target``,
    shift-and-invert with a MUMPS LU).  Returns eigenvalues (ascending) and the local rows of
    the eigenvectors (n_local_rows, nev).  Options can be changed under ``-qcspin_eps_``.
    """
    from petsc4py import PETSc
    from slepc4py import SLEPc

    eps = SLEPc.EPS().create(comm=mat.getComm())
    eps.setOptionsPrefix(prefix)
    eps.setOperators(mat)
    eps.setProblemType(SLEPc.EPS.ProblemType.HEP)
    N = mat.getSize()[0]
    eps.setDimensions(nev=nev, mpd=min(N, max(nev, 64)) if nev > 256 else PETSc.DECIDE)
    eps.setTolerances(tol=tol, max_it=10000)
    if which == "smallest":
        eps.setWhichEigenpairs(SLEPc.EPS.Which.SMALLEST_REAL)
    else:
        eps.setWhichEigenpairs(SLEPc.EPS.Which.TARGET_MAGNITUDE)
        eps.setTarget(float(target or 0.0))
        st = eps.getST()
        st.setType(SLEPc.ST.Type.SINVERT)
        ksp = st.getKSP()
        ksp.setType("preonly")
        pc = ksp.getPC()
        pc.setType("lu")
        pc.setFactorSolverType("mumps")
    try:
        eps.setFromOptions()
        eps.solve()
        nconv = eps.getConverged()
        if nconv < nev:
            raise RuntimeError(f"SLEPc converged {nconv} of {nev} eigenpairs; raise "
                               f"-{prefix}max_it or use the LAPACK path")
        vr, _ = mat.createVecs()
        vals = np.empty(nconv)
        vecs = np.empty((vr.getLocalSize(), nconv), complex)
        for i in range(nconv):
            vals[i] = eps.getEigenpair(i, vr).real
            vecs[:, i] = vr.getArray(readonly=True)
        vr.destroy()
        order = np.argsort(vals)[:nev]
    finally:
        eps.destroy()  # also when the solve fails (else PETSc complains at exit)
    return vals[order], vecs[:, order]
