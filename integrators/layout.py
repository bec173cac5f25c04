"""Layout of the composite state vector y on each rank, built from named components.

    y_local = [ rho (local rows x N_s) | each auxiliary component (local rows x its columns)
                | spins (3 per local spin) ]

``rho`` and every auxiliary component (the Padé block ``pi:<lead>`` of a wide-band coupling,
N_s x N_p n columns) are distributed by rows like H and stored column-major (Fortran order) on
each rank, so a component is a dense PETSc matrix in place; spins are complex numbers with zero
imaginary part (the Vec is complex).  Code outside this module asks for components by name
(:meth:`StateLayout.view`, :meth:`StateLayout.address`), never for offsets.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from toolkit.parallel import SiteDistribution, gather_rows

from petsc4py import PETSc

__all__ = ["StateLayout"]


class StateLayout:
    """Components of the state on one rank.  ``components``: (name, columns) of the auxiliary
    row-distributed components in order (plain integers are named ``lead_0``, ``lead_1``...).
    ``small``: (name, size) of small components (a few thousand numbers, e.g. the second-tier
    matrices of auxiliary modes), stored on rank 0 only, between the row-distributed
    components and the spins; every rank gets their values from :meth:`small_values`."""

    def __init__(self, dist: SiteDistribution, n_orbitals: int, comm: PETSc.Comm,
                 components: Sequence = (), small: Sequence = ()) -> None:
        self.dist, self.N, self.comm = dist, n_orbitals, comm
        self.nloc = dist.n_local_rows
        self.n_rho = self.nloc * n_orbitals
        comps = [(f"lead_{k}", int(c)) if not isinstance(c, tuple) else (str(c[0]), int(c[1]))
                 for k, c in enumerate(components)]
        names = [n for n, _ in comps]
        if len(set(names)) != len(names) or {"rho", "spins"} & set(names):
            raise ValueError(f"component names must be unique and not 'rho'/'spins': {names}")
        self.aux_names = tuple(names)
        self.lead_columns = tuple(c for _, c in comps)
        self.lead_sizes = tuple(self.nloc * c for c in self.lead_columns)
        self.lead_offsets = tuple(self.n_rho + sum(self.lead_sizes[:k])
                                  for k in range(len(comps)))
        self._where = {"rho": (0, n_orbitals)}
        self._where.update({n: (o, c) for (n, c), o in zip(comps, self.lead_offsets)})
        self.small_names = tuple(str(n) for n, _ in small)
        self.small_sizes = tuple(int(c) for _, c in small)
        self.n_small = sum(self.small_sizes)
        self.rank = comm.getRank()
        self.small_offset = self.n_rho + sum(self.lead_sizes)
        mine = self.n_small if self.rank == 0 else 0
        self._small = {n: (self.small_offset + sum(self.small_sizes[:k]), c)
                       for k, (n, c) in enumerate(zip(self.small_names, self.small_sizes))}
        self.spin_offset = self.small_offset + mine
        self.n_local = self.spin_offset + 3 * dist.n_local_spins
        self.n_spins_total = dist.spin_ranges[-1][1]
        sizes = [r[1] - r[0] for r in dist.site_ranges]
        spins = [r[1] - r[0] for r in dist.spin_ranges]
        locals_ = [2 * s * (n_orbitals + sum(self.lead_columns)) + 3 * p
                   + (self.n_small if r == 0 else 0)
                   for r, (s, p) in enumerate(zip(sizes, spins))]
        self.vec_starts = np.concatenate([[0], np.cumsum(locals_)]).astype(np.int64)
        self.n_global = int(self.vec_starts[-1])

    def create_vec(self) -> PETSc.Vec:
        v = PETSc.Vec().createMPI((self.n_local, self.n_global), comm=self.comm)
        v.set(0.0)
        return v

    def columns(self, name: str) -> int:
        """Number of columns of a row-distributed component."""
        return self._locate(name)[1]

    def _locate(self, name: str) -> tuple[int, int]:
        try:
            return self._where[name]
        except KeyError:
            raise KeyError(f"no state component '{name}'; components are "
                           f"{['rho', *self.aux_names, 'spins']}") from None

    # -- views into a local array ----------------------------------------------------------
    def view(self, arr: np.ndarray, name: str) -> np.ndarray:
        """(local rows, columns) view of a row-distributed component, Fortran order."""
        o, c = self._locate(name)
        return arr[o:o + self.nloc * c].reshape(c, self.nloc).T

    def columns_view(self, arr: np.ndarray, name: str) -> np.ndarray:
        """(columns, local rows) C-order view of a component (the transpose of :meth:`view`):
        one contiguous row per column."""
        o, c = self._locate(name)
        return arr[o:o + self.nloc * c].reshape(c, self.nloc)

    def address(self, arr: np.ndarray, name: str) -> int:
        """Address of the first entry of a component in ``arr`` (for MatDensePlaceArray)."""
        return arr.ctypes.data + arr.itemsize * self._locate(name)[0]

    def small(self, arr: np.ndarray, name: str) -> np.ndarray | None:
        """View of a small component in the local array (rank 0), None on other ranks."""
        if self.rank != 0:
            return None
        o, c = self._small[name]
        return arr[o:o + c]

    def small_values(self, arr: np.ndarray, copy: bool = True) -> np.ndarray:
        """All small components (concatenated, in order) on every rank.  ``copy=False``: on
        one rank a view of ``arr`` (read it only while ``arr`` is unchanged).  Collective."""
        from toolkit.parallel import bcast

        vals = arr[self.small_offset:self.small_offset + self.n_small]
        if self.comm.getSize() == 1:
            return vals.copy() if copy else vals
        return bcast(vals.copy() if self.rank == 0 else None, self.comm)

    def rho(self, arr: np.ndarray) -> np.ndarray:
        """(n_local_rows, N_s) view, Fortran order."""
        return arr[:self.n_rho].reshape(self.N, self.nloc).T

    def lead(self, arr: np.ndarray, k: int) -> np.ndarray:
        """View of the k-th auxiliary component (:meth:`view` by position)."""
        return self.view(arr, self.aux_names[k])

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

    def components_to_global(self, y: PETSc.Vec, root: int | None = 0) -> dict:
        """{name: (N_s, columns)} of the auxiliary components gathered on ``root``."""
        a = y.getArray(readonly=True)
        out = {n: gather_rows(np.ascontiguousarray(self.view(a, n)), self.comm, root=root)
               for n in self.aux_names}
        if self.n_small:
            vals = self.small_values(a) if root is None else (
                a[self.small_offset:self.small_offset + self.n_small].copy()
                if self.rank == 0 else None)
            if root is None or (root == 0 and self.rank == 0):
                assert vals is not None  # every rank (root None) or rank 0 has the values
                out.update(self.split_small(vals))
            elif root != 0:
                raise ValueError("small components are gathered on rank 0 or every rank")
        return out

    def split_small(self, vals: np.ndarray) -> dict:
        """{name: values} of the small components from their concatenation ``vals`` (views)."""
        out, o = {}, 0
        for n, c in zip(self.small_names, self.small_sizes):
            out[n] = vals[o:o + c]
            o += c
        return out

    def leads_to_global(self, y: PETSc.Vec, root: int | None = 0) -> list:
        """The auxiliary components (N_s, columns) gathered on ``root``, in layout order."""
        d = self.components_to_global(y, root)
        return [d[n] for n in self.aux_names] if d is not None else None

    def from_global(self, y: PETSc.Vec, rho: np.ndarray, spins: np.ndarray,
                    leads: Sequence | Mapping | None = None) -> None:
        """Fill the local part of ``y`` from full arrays available on every rank
        (``leads``: the auxiliary components by name, or in layout order)."""
        a = y.getArray()
        r0 = self.dist.row_start
        self.rho(a)[...] = rho[r0:r0 + self.nloc]
        self.spins(a)[...] = spins[self.dist.spin_start:self.dist.spin_stop]
        if leads is not None:
            self.fill(a, leads.items() if isinstance(leads, Mapping)
                      else zip(self.aux_names, leads))

    def fill(self, arr: np.ndarray, components, *, local: bool = False) -> None:
        """Write (name, array) pairs of auxiliary components into the local array ``arr``:
        row-distributed ones given in full (N_s rows) or, with ``local``, as this rank's rows;
        small ones in full (taken by rank 0)."""
        r0 = self.dist.row_start
        for name, block in components:
            if name in self._small:
                if self.rank == 0:
                    view = self.small(arr, name)
                    assert view is not None  # rank 0 holds the small components
                    view[...] = np.asarray(block).ravel()
            elif local:
                self.view(arr, name)[...] = block
            else:
                self.view(arr, name)[...] = np.asarray(block)[r0:r0 + self.nloc]
