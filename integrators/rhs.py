"""Right-hand side of the coupled electron / classical-spin system of an isolated junction.

    d rho/dt = -i [H(S), rho] = -i (X - X^dag),   X = H rho   (rho H = (H rho)^dag)
    d S_j/dt = -S_j x dH_C/dS_j  (+ Gilbert damping)

One sparse x dense product per evaluation; the s-d blocks of H are rewritten in place.
"""
from __future__ import annotations

import ctypes

import numpy as np

from operators.hamiltonian import ElectronHamiltonian
from operators.observables import diag_block_indices, spin_density_local
from operators.spin import ClassicalSpinHamiltonian
from toolkit import _petscenv
from toolkit.parallel import RowHermitianTranspose

from petsc4py import PETSc

from .layout import StateLayout

__all__ = ["ClosedRHS"]


class ClosedRHS:
    """Callable ``(ts, t, X, F)`` for ``TS.setRHSFunction``.  Collective."""

    def __init__(self, H: ElectronHamiltonian, spinH: ClassicalSpinHamiltonian,
                 layout: StateLayout) -> None:
        self.H, self.spinH, self.layout = H, spinH, layout
        comm, N, nloc = H.comm, layout.N, layout.nloc
        self.parallel = comm.getSize() > 1
        self.rho_mat = PETSc.Mat().createDense([(nloc, N), (nloc, N)], comm=comm)
        self.rho_mat.setUp()
        self.rho_mat.assemble()
        self.X = H.mat.matMult(self.rho_mat)
        self.x = self.X.getDenseArray()
        if self.parallel:
            rows = [(2 * a, 2 * b) for a, b in H.dist.site_ranges]
            self.herm_t = RowHermitianTranspose(rows, comm)
        self._tmp = np.empty((nloc, N), complex, order="F")
        lib = _petscenv.libpetsc()
        self._place, self._reset = lib.MatDensePlaceArray, lib.MatDenseResetArray
        self._place.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self._reset.argtypes = [ctypes.c_void_p]
        self._rho_handle = ctypes.c_void_p(self.rho_mat.handle)
        d = H.dist
        sites = H.device.spin_sites[d.spin_start:d.spin_stop]
        self.sd_idx = diag_block_indices(sites, d.site_start, nloc)
        self.n_spin_local = d.n_local_spins
        self.has_spins = layout.n_spins_total > 0
        if self.parallel and self.has_spins:
            self.S_all_vec = PETSc.Vec().createSeq(3 * layout.n_spins_total, comm=PETSc.COMM_SELF)
            is_from = PETSc.IS().createGeneral(layout.spin_global_indices(), comm=comm)
            tmp = layout.create_vec()
            self.scatter = PETSc.Scatter().create(tmp, is_from, self.S_all_vec, None)
            tmp.destroy()
        self.n_calls = 0

    def spins_all(self, X: PETSc.Vec, x: np.ndarray) -> np.ndarray:
        if not self.parallel:
            return self.layout.spins(x).real
        self.scatter.scatter(X, self.S_all_vec, PETSc.InsertMode.INSERT_VALUES,
                             PETSc.ScatterMode.FORWARD)
        return self.S_all_vec.getArray(readonly=True).real.reshape(-1, 3)

    def hamiltonian_times_rho(self, x: np.ndarray) -> np.ndarray:
        """X = H rho for the rho stored in the local array ``x`` (returns the local rows of X)."""
        self._place(self._rho_handle, x.ctypes.data)
        try:
            self.H.mat.matMult(self.rho_mat, self.X)
        finally:
            self._reset(self._rho_handle)
        return self.x

    def __call__(self, ts, t: float, X: PETSc.Vec, F: PETSc.Vec) -> None:
        self.n_calls += 1
        lay = self.layout
        x = X.getArray(readonly=True)
        f = F.getArray()
        if self.has_spins:
            S_all = self.spins_all(X, x)
            S_loc = lay.spins(x).real
            self.H.set_spins(S_loc)
        xm = self.hamiltonian_times_rho(x)
        frho = lay.rho(f)
        if self.parallel:
            self.herm_t(xm, self._tmp)
            np.subtract(xm, self._tmp, out=frho)
        else:
            np.conjugate(xm.T, out=self._tmp)
            np.subtract(xm, self._tmp, out=frho)
        frho *= -1j
        if self.has_spins:
            s_loc = spin_density_local(x, self.sd_idx)
            lay.spins(f)[...] = self.spinH.rhs(S_all, s_loc)

    def destroy(self) -> None:
        for m in (self.rho_mat, self.X):
            m.destroy()
