"""Layout of the composite state vector y on each rank.

    y_local = [ rho rows (n_local_rows x N_s, Fortran order) | lead blocks (reserved) | spins (3 per local spin) ]

Spins are stored as complex numbers with zero imaginary part (the Vec is complex).
"""
from __future__ import annotations

import numpy as np

from petsc4py import PETSc

from toolkit.parallel import SiteDistribution, gather_rows

__all__ = ["StateLayout"]


class StateLayout:
    def __init__(self, dist: SiteDistribution, n_orbitals: int, comm: PETSc.Comm,
                 lead_columns: tuple[int, ...] = ()) -> None:
        self.dist, self.N, self.comm = dist, n_orbitals, comm
        self.nloc = dist.n_local_rows
        self.n_rho = self.nloc * n_orbitals
        self.lead_columns = tuple(lead_columns)
        self.lead_sizes = tuple(self.nloc * c for c in lead_columns)
        self.lead_offsets = tuple(self.n_rho + sum(self.lead_sizes[:k])
                                  for k in range(len(lead_columns)))
        self.spin_offset = self.n_rho + sum(self.lead_sizes)
        self.n_local = self.spin_offset + 3 * dist.n_local_spins
        self.n_spins_total = dist.spin_ranges[-1][1]
        sizes = [r[1] - r[0] for r in dist.site_ranges]
        spins = [r[1] - r[0] for r in dist.spin_ranges]
        locals_ = [2 * s * n_orbitals * (1 + 0) + sum(2 * s * c for c in lead_columns) + 3 * p
                   for s, p in zip(sizes, spins)]
        self.vec_starts = np.concatenate([[0], np.cumsum(locals_)]).astype(np.int64)
        self.n_global = int(self.vec_starts[-1])

    def create_vec(self) -> PETSc.Vec:
        v = PETSc.Vec().createMPI((self.n_local, self.n_global), comm=self.comm)
        v.set(0.0)
        return v

    # -- views into a local array ----------------------------------------------------------
    def rho(self, arr: np.ndarray) -> np.ndarray:
        """(n_local_rows, N_s) view, Fortran order."""
        return arr[:self.n_rho].reshape(self.N, self.nloc).T

    def lead(self, arr: np.ndarray, k: int) -> np.ndarray:
        """(n_local_rows, columns of lead block k) view, Fortran order."""
        o = self.lead_offsets[k]
        return arr[o:o + self.lead_sizes[k]].reshape(self.lead_columns[k], self.nloc).T

    def spins(self, arr: np.ndarray) -> np.ndarray:
        """(n_local_spins, 3) complex view."""
        return arr[self.spin_offset:self.n_local].reshape(-1, 3)

    # -- global spin indices (for the all-gather scatter) ------------------------------------
    def spin_global_indices(self) -> np.ndarray:
        idx = []
        for r, (a, b) in enumerate(self.dist.spin_ranges):
            start = self.vec_starts[r + 1] - 3 * (b - a)
            idx.append(start + np.arange(3 * (b - a)))
        return np.concatenate(idx).astype(PETSc.IntType) if idx else np.zeros(0, PETSc.IntType)

    # -- canonical (rank-independent) form ---------------------------------------------------
    def to_global(self, y: PETSc.Vec, root: int | None = 0):
        """(rho (N_s, N_s), spins (n_spin, 3)) gathered on ``root`` (None: all ranks)."""
        a = y.getArray(readonly=True)
        rho = gather_rows(np.ascontiguousarray(self.rho(a)), self.comm, root=root)
        S = gather_rows(self.spins(a).real.copy(), self.comm, root=root)
        return rho, S

    def leads_to_global(self, y: PETSc.Vec, root: int | None = 0) -> list:
        """The lead blocks (N_s, columns) gathered on ``root``."""
        a = y.getArray(readonly=True)
        return [gather_rows(np.ascontiguousarray(self.lead(a, k)), self.comm, root=root)
                for k in range(len(self.lead_columns))]

    def from_global(self, y: PETSc.Vec, rho: np.ndarray, spins: np.ndarray,
                    leads: list | None = None) -> None:
        """Fill the local part of ``y`` from full arrays available on every rank."""
        a = y.getArray()
        r0 = self.dist.row_start
        self.rho(a)[...] = rho[r0:r0 + self.nloc]
        self.spins(a)[...] = spins[self.dist.spin_start:self.dist.spin_stop]
        for k, block in enumerate(leads or []):
            self.lead(a, k)[...] = block[r0:r0 + self.nloc]
