"""Estimates of the explicit stability limit of a run: the band width of H.

The closed part of the equations of motion, d rho/dt = -i [H, rho], has the eigenvalues
-i (E_a - E_b); an explicit RK4-type step is stable while |E_a - E_b| dt < 2.83 (the extent of
its stability region on the imaginary axis), i.e. dt < 2.83 / W with the band width
W = E_max - E_min of H.
"""
from __future__ import annotations

import numpy as np

from toolkit.parallel import allreduce

__all__ = ["band_width", "gershgorin_bounds"]


def gershgorin_bounds(H) -> tuple[float, float]:
    """Lower and upper Gershgorin bounds of the spectrum of the Hermitian AIJ matrix of the
    :class:`operators.ElectronHamiltonian` ``H``.  Collective."""
    ai, aj, av = H.mat.getValuesCSR()
    r0 = H.mat.getOwnershipRange()[0]
    rows = np.repeat(np.arange(len(ai) - 1), np.diff(ai))
    diag = (aj == rows + r0)
    d = np.zeros(len(ai) - 1)
    np.add.at(d, rows[diag], av[diag].real)
    R = np.zeros(len(ai) - 1)
    np.add.at(R, rows[~diag], np.abs(av[~diag]))
    lo = float((d - R).min()) if len(d) else np.inf
    hi = float((d + R).max()) if len(d) else -np.inf
    return allreduce(lo, H.comm, "min"), allreduce(hi, H.comm, "max")


def band_width(H, tol: float = 1e-4) -> float:
    """E_max - E_min of H (SLEPc Krylov-Schur for the two extreme eigenvalues; Gershgorin
    bounds if SLEPc is missing or does not converge).  Collective."""
    lo, hi = gershgorin_bounds(H)
    try:
        from slepc4py import SLEPc
    except ImportError:  # pragma: no cover - SLEPc is installed with qcspin
        return hi - lo
    if H.mat.getSize()[0] < 3:
        return hi - lo
    edges = []
    for which in (SLEPc.EPS.Which.LARGEST_REAL, SLEPc.EPS.Which.SMALLEST_REAL):
        eps = SLEPc.EPS().create(comm=H.comm)
        try:
            eps.setOperators(H.mat)
            eps.setProblemType(SLEPc.EPS.ProblemType.HEP)
            eps.setWhichEigenpairs(which)
            eps.setDimensions(1)
            eps.setTolerances(tol, 500)
            eps.solve()
            if eps.getConverged() < 1:
                return hi - lo
            edges.append(eps.getEigenvalue(0).real)
        finally:
            eps.destroy()
    return float(edges[0] - edges[1])
