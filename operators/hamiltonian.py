"""Electron Hamiltonian of paper 004, Eq. (1), as a complex PETSc AIJ matrix.

    H = -sum_<ij> t_ij (c_i^dag c_j + h.c.) + mu_bar sum_i c_i^dag c_i
        + J_sd/2 sum_j c_j^dag sigma.S_j c_j

Rows are distributed by sites (two spinor rows per site).  When the spins move, only the 2x2 s-d
blocks are rewritten, directly in the value array of the local diagonal block (no reassembly).
"""
from __future__ import annotations

import ctypes
from typing import overload

import numpy as np

from toolkit import _petscenv
from toolkit.device import Device
from toolkit.parallel import RowHalo, SiteDistribution, allreduce, gather_rows, get_comm
from toolkit.petsc_options import sub_prefix

from petsc4py import PETSc

__all__ = ["ElectronHamiltonian", "sd_blocks", "dense_hamiltonian", "gather_dense",
           "FullDiagonals"]


# rows: (uu, ud, du, dd) entries of sigma.S as linear maps of (Sx, Sy, Sz)
SIGMA_DOT = np.array([[0, 0, 1], [1, -1j, 0], [1, 1j, 0], [0, 0, -1]], complex)


def sd_blocks(J_sd: np.ndarray, S: np.ndarray) -> np.ndarray:
    """The four entries (uu, ud, du, dd) of J_sd/2 sigma.S for each spin, shape (4, n); for a
    stack of configurations S (..., n, 3): shape (..., 4, n)."""
    return (SIGMA_DOT @ np.swapaxes(np.asarray(S), -1, -2)) * (0.5 * np.asarray(J_sd))


def onsite_blocks(device: Device, sites: np.ndarray) -> np.ndarray:
    """The on-site energy of the magnetic ``sites`` as the (uu, ud, du, dd) entries of their
    2x2 blocks, shape (4, n): what the s-d blocks of :func:`sd_blocks` are added to."""
    mu4 = np.zeros((4, len(sites)), complex)
    mu4[0] = mu4[3] = device.site_onsite[np.asarray(sites)]
    return mu4


def _local_csr(device: Device, dist: SiteDistribution, spins: np.ndarray):
    """Local rows of H in CSR form (global column indices, sorted)."""
    return _csr_rows(device, spins, 2 * dist.site_start, 2 * dist.site_stop)


def _csr_rows(device: Device, spins: np.ndarray, r0: int,
              r1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows [r0, r1) of H in CSR form (indptr, global column indices sorted, values): the one
    construction of Eq. (1).  The PETSc matrix (:func:`_local_csr`) and
    :func:`dense_hamiltonian` both come from these triplets, so they agree bitwise."""
    b = device.bonds
    t = device.hopping
    rows, cols, vals = [], [], []
    for s in (0, 1):  # hopping, both directions, both spins
        rows += [2 * b[:, 0] + s, 2 * b[:, 1] + s]
        cols += [2 * b[:, 1] + s, 2 * b[:, 0] + s]
        vals += [-t, -t]
    diag = np.arange(2 * device.n_sites)
    rows.append(diag)
    cols.append(diag)
    vals.append(np.repeat(device.site_onsite, 2))
    j = device.spin_sites
    blk = sd_blocks(device.J_sd, spins)
    for k, (a, c) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        rows.append(2 * j + a)
        cols.append(2 * j + c)
        vals.append(blk[k])
    R, C = np.concatenate(rows), np.concatenate(cols)
    V = np.concatenate([np.asarray(v, complex) for v in vals])
    keep = (R >= r0) & (R < r1)
    R, C, V = R[keep] - r0, C[keep], V[keep]
    # merge duplicates (on-site + s-d diagonal)
    key = R.astype(np.int64) * (2 * device.n_sites) + C
    uniq, inv = np.unique(key, return_inverse=True)
    val = np.zeros(len(uniq), complex)
    np.add.at(val, inv, V)
    rr, cc = uniq // (2 * device.n_sites), uniq % (2 * device.n_sites)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rr, minlength=r1 - r0))])
    return (indptr.astype(PETSc.IntType), cc.astype(PETSc.IntType), val)


class RowsTimesH:
    """X_loc H for the local rows X_loc (n_loc, N) of a row-distributed matrix, without
    communication: the whole H is replicated on every rank as the CSR of H^T = conj(H) (H is
    Hermitian with a symmetric pattern; O(nnz) memory, ~16 N_s entries), applied with SciPy's
    CSR kernel to X_loc^T, which is the Fortran-ordered X_loc's memory read row-major.  The s-d
    blocks follow the spins (:meth:`set_spins`, all spins).  Replaces the all-to-all of
    rho H = (H rho)^dag under MPI."""

    def __init__(self, device: Device, spins: np.ndarray | None = None,
                 scale: complex = 1.0) -> None:
        from scipy.sparse import _sparsetools

        self._matvecs = _sparsetools.csr_matvecs
        spins = device.spins0 if spins is None else np.asarray(spins, float)
        N = 2 * device.n_sites
        indptr, cols, vals = _csr_rows(device, spins, 0, N)
        self.N, self.scale = N, complex(scale)
        self.indptr, self.indices = indptr, cols
        self.data = np.conjugate(vals) * self.scale
        j = np.asarray(device.spin_sites)
        self._jsd = np.asarray(device.J_sd)
        self._mu4 = onsite_blocks(device, j)
        pos = np.empty((4, len(j)), dtype=np.int64)
        for k, (a, c) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            r, col = 2 * j + a, 2 * j + c
            for n in range(len(j)):
                seg = cols[indptr[r[n]]:indptr[r[n] + 1]]
                pos[k, n] = indptr[r[n]] + np.searchsorted(seg, col[n])
        self._pos = pos

    def set_spins(self, S_all: np.ndarray) -> None:
        """The s-d blocks of every magnetic site from all spins (n_spins, 3)."""
        if not len(self._jsd):
            return
        blk = sd_blocks(self._jsd, S_all) + self._mu4
        self.data[self._pos] = np.conjugate(blk) * self.scale

    def accumulate(self, X_loc: np.ndarray, out: np.ndarray) -> None:
        """out += scale X_loc H for Fortran-ordered (n_loc, N) X_loc and out.  Local."""
        nloc = X_loc.shape[0]
        if nloc == 0:
            return
        xt, ot = X_loc.T, out.T                 # (N, n_loc), C-contiguous
        if not (xt.flags.c_contiguous and ot.flags.c_contiguous):
            raise ValueError("RowsTimesH: X_loc and out must be Fortran-ordered (n_loc, N)")
        self._matvecs(self.N, self.N, nloc, self.indptr, self.indices, self.data,
                      xt.reshape(-1), ot.reshape(-1))


class FullDiagonals:
    """The whole H (all N_s rows) in diagonal form on every rank, its s-d blocks following all
    spins (:meth:`set_spins`): the x H of the compiled commutator under MPI
    (``Diagonals.commutator_halo``), which needs H's columns of every row.  O(N_s) memory per
    diagonal."""

    def __init__(self, device: Device, spins: np.ndarray | None = None) -> None:
        from toolkit import kernels

        spins = device.spins0 if spins is None else np.asarray(spins, float)
        N = 2 * device.n_sites
        indptr, cols, vals = _csr_rows(device, spins, 0, N)
        self.dia = kernels.Diagonals(indptr, cols)
        self.dia.update(vals)
        j = np.asarray(device.spin_sites)
        self._jsd = np.asarray(device.J_sd)
        self._mu4 = onsite_blocks(device, j)
        self._pos = np.array([self.dia.position(2 * j + a, 2 * j + c)
                              for a, c in ((0, 0), (0, 1), (1, 0), (1, 1))])

    def set_spins(self, S_all: np.ndarray) -> None:
        """The s-d blocks of every magnetic site from all spins (n_spins, 3)."""
        if len(self._jsd):
            self.dia.set(self._pos, sd_blocks(self._jsd, S_all) + self._mu4)


def dense_hamiltonian(device: Device, spins: np.ndarray | None = None) -> np.ndarray:
    """Full dense H (N_s x N_s) as NumPy array, serial; for tests and small analyses.

    The serially assembled CSR of :func:`_csr_rows` (the triplets of the PETSc matrix) scattered
    into a dense array: equal bitwise to ``ElectronHamiltonian(device, spins=spins).to_dense()``
    on any number of ranks."""
    spins = device.spins0 if spins is None else np.asarray(spins, float)
    N = 2 * device.n_sites
    return _csr_to_dense(*_csr_rows(device, spins, 0, N), N)


def _csr_to_dense(indptr: np.ndarray, cols: np.ndarray, vals: np.ndarray, N: int) -> np.ndarray:
    """The (len(indptr) - 1, N) complex array of CSR rows (distinct entries per row)."""
    out = np.zeros((len(indptr) - 1, N), complex)
    out[np.repeat(np.arange(len(indptr) - 1), np.diff(indptr)), cols] = vals
    return out


@overload
def gather_dense(mat: PETSc.Mat, N: int, comm: PETSc.Comm) -> np.ndarray: ...


@overload
def gather_dense(mat: PETSc.Mat, N: int, comm: PETSc.Comm, root: int) -> np.ndarray | None: ...


def gather_dense(mat: PETSc.Mat, N: int, comm: PETSc.Comm, root: int | None = None
                 ) -> np.ndarray | None:
    """The full (N, N) row-distributed AIJ ``mat`` as a dense array on every rank, or on
    ``root`` only (None elsewhere) (its stored values, bitwise; small systems only).
    Collective."""
    ai, aj, av = mat.getValuesCSR()
    return gather_rows(_csr_to_dense(ai, aj, av, N), comm, root=root)


class ElectronHamiltonian:
    """H(S) as a complex AIJ ``Mat`` distributed by sites.  Collective on ``comm``.

    ``set_spins(S_local)`` rewrites the s-d blocks of the locally owned magnetic sites in place.
    """

    def __init__(self, device: Device, comm: PETSc.Comm | None = None,
                 spins: np.ndarray | None = None, prefix: str = "qcspin_") -> None:
        self.device = device
        self.comm = get_comm(comm)
        self.dist = SiteDistribution.create(device.n_sites, device.spin_sites, self.comm)
        spins = device.spins0 if spins is None else np.asarray(spins, float)
        N = device.n_orbitals
        nloc = self.dist.n_local_rows
        csr = _local_csr(device, self.dist, spins)
        self.mat = PETSc.Mat().createAIJ([(nloc, N), (nloc, N)], csr=csr, comm=self.comm)
        self.prefix = prefix      # the owner's prefix: sub-solvers derive theirs from it
        self.mat.setOptionsPrefix(sub_prefix(prefix, "H"))
        self.mat.setOption(PETSc.Mat.Option.NEW_NONZERO_ALLOCATION_ERR, True)
        self.mat.assemble()
        sl = slice(self.dist.spin_start, self.dist.spin_stop)
        self._jsd = np.asarray(device.J_sd[sl])
        self._half_jsd = 0.5 * self._jsd
        self._mu4 = onsite_blocks(device, device.spin_sites[sl])
        self._diag = self.mat.getDiagonalBlock() if self.comm.getSize() > 1 else self.mat
        self._pos = self._sd_positions(device.spin_sites[sl] - self.dist.site_start)
        self._lib = None
        self._fast = self._try_fast_path()
        self.diagonals = self._diagonal_form()

    # -- diagonal form for the compiled kernels (toolkit/kernels.py) -----------------------
    def _diagonal_form(self):
        """The local rows of H in diagonal form for the compiled kernels, kept equal to the
        PETSc matrix by :meth:`set_spins` (positions of the s-d entries in ``_dia_pos``); under
        MPI with the halo of rows the local rows reach (``halo``).  None without the kernels,
        for a pattern of too many diagonals, or when the halo would span several ranks (the
        same on every rank).  Collective."""
        from toolkit import kernels

        self.halo = None
        usable = kernels.available()
        if self.comm.getSize() > 1:
            # the same decision on every rank (a rank without a compiler uses PETSc's products:
            # then all do)
            usable = bool(allreduce(int(usable), self.comm, "min"))
        if not usable:
            return None
        ai, aj, av = self.mat.getValuesCSR()
        d = self.dist
        dia = kernels.Diagonals(ai, aj, row_start=d.row_start, n_total=self.device.n_orbitals)
        ok = dia.fits()
        if self.comm.getSize() > 1:
            below = int(allreduce(dia.below, self.comm, "max"))
            above = int(allreduce(dia.above, self.comm, "max"))
            halo = RowHalo(self.comm, [(2 * a, 2 * b) for a, b in d.site_ranges], below, above)
            ok = bool(allreduce(int(ok and halo.usable), self.comm, "min"))
            if ok:
                self.halo = halo
        if not ok:
            return None
        dia.update(av)
        sites = self.device.spin_sites[d.spin_start:d.spin_stop] - d.site_start
        self._dia_pos = np.array([dia.position(2 * sites + a, 2 * (sites + d.site_start) + c)
                                  for a, c in ((0, 0), (0, 1), (1, 0), (1, 1))])
        return dia

    # -- in-place s-d update ---------------------------------------------------------------
    def _sd_positions(self, local_sites: np.ndarray) -> np.ndarray:
        ai, aj, _ = self._diag.getValuesCSR()
        pos = np.empty((4, len(local_sites)), dtype=np.int64)
        for k, (a, c) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            r, col = 2 * local_sites + a, 2 * local_sites + c
            for n in range(len(local_sites)):
                seg = aj[ai[r[n]]:ai[r[n] + 1]]
                pos[k, n] = ai[r[n]] + np.searchsorted(seg, col[n])
        self._nnz = len(aj)
        return pos

    def _try_fast_path(self) -> bool:
        try:
            lib = _petscenv.libpetsc()
            self._get = lib.MatSeqAIJGetArray
            self._restore = lib.MatSeqAIJRestoreArray
            self._get.argtypes = self._restore.argtypes = [ctypes.c_void_p,
                                                           ctypes.POINTER(ctypes.c_void_p)]
            self._handle = ctypes.c_void_p(self._diag.handle)
            self._ptr = ctypes.c_void_p()
            self._arr_ptr: int | None = None
            self._arr: np.ndarray | None = None
            self._values_view()  # probe
            self._restore(self._handle, ctypes.byref(self._ptr))
            return True
        except Exception:  # pragma: no cover - depends on the PETSc build
            return False

    def _values_view(self) -> np.ndarray | None:
        if self._get(self._handle, ctypes.byref(self._ptr)) != 0:
            raise RuntimeError("MatSeqAIJGetArray failed")
        ptr = self._ptr.value
        if ptr != self._arr_ptr:
            assert ptr is not None  # the value array moved: it cannot become NULL (nnz is fixed)
            buf = (ctypes.c_double * (2 * self._nnz)).from_address(ptr)
            self._arr = np.frombuffer(memoryview(buf), dtype=np.complex128)
            self._arr_ptr = ptr
        return self._arr

    def set_spins(self, S_local: np.ndarray) -> None:
        """Rewrite the s-d blocks of the local magnetic sites (S_local: (n_local_spins, 3))."""
        if len(self._jsd) == 0:
            return
        blk = SIGMA_DOT @ S_local.T
        blk *= self._half_jsd
        blk += self._mu4
        if self._fast:
            vals = self._values_view()
            assert vals is not None  # local s-d blocks exist, so the value array is not NULL
            vals[self._pos] = blk
            self._restore(self._handle, ctypes.byref(self._ptr))
        else:
            self._set_spins_slow(blk)
        if self.diagonals is not None:
            self.diagonals.set(self._dia_pos, blk)

    def _set_spins_slow(self, blk: np.ndarray) -> None:
        sites = self.device.spin_sites[self.dist.spin_start:self.dist.spin_stop]
        for n, j in enumerate(sites):
            rows = [2 * j, 2 * j + 1]
            self.mat.setValues(rows, rows, blk[:, n], addv=PETSc.InsertMode.INSERT_VALUES)
        self.mat.assemble()

    def set_spins_global(self, S_all: np.ndarray) -> None:
        """Convenience: ``set_spins`` from the full (n_spin, 3) spin array."""
        self.set_spins(np.asarray(S_all)[self.dist.spin_start:self.dist.spin_stop])

    def to_dense(self) -> np.ndarray:
        """Gather the full matrix as a dense NumPy array on every rank (small systems only).
        Collective."""
        return gather_dense(self.mat, self.device.n_orbitals, self.comm)

    def destroy(self) -> None:
        self.mat.destroy()

    def __enter__(self) -> "ElectronHamiltonian":
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()
