"""Compiled kernels of the right-hand side (toolkit/kernels.c), loaded with ctypes.

The sparse x dense products of the right-hand side, H rho, rho H and H Pi_l, are the bulk of its
cost.  PETSc's AIJ x dense product runs at ~5 GFlop/s here, 15x the memory-bandwidth floor of
the right-hand side of a large 3D junction (docs/guide/scaling.md).  A tight-binding lattice
numbered site by site has few distinct diagonals (9 for a 3D cubic lattice with s-d coupling,
most of them real hoppings), so the kernels hold H in diagonal form (:class:`Diagonals`) and
fuse each product with what the right-hand side does next:

* ``commutator_hermitian``: d rho/dt = -i (X - X^dag), X = H rho, for Hermitian rho (the
  coherent term on one rank): one left product and an in-place pass over tile pairs;
* ``commutator``: -i (H rho - rho H) in one pass over rho, for any rho (the general form,
  whose rho H reads columns of rho far apart);
* ``left``: y = alpha H x + (radd_i + coef_c) x, e.g. the Padé blocks' -i (H - i Gamma/2) Pi +
  i chi^+ Pi, or plain H x;
* ``combine``: the exponential integrator's stage combinations sum_t f_t(L) v_t in one pass.

Under MPI a :class:`Diagonals` holds the local rows, and ``left_halo``/``commutator_halo`` take
the rows of x that those rows reach on the neighbouring ranks from a halo exchange
(``toolkit.parallel.RowHalo``); rho H uses the whole H in diagonal form
(``operators.hamiltonian.FullDiagonals``).  The commutator sums H rho and rho H in different
orders, so d rho/dt is anti-Hermitian to round-off (not bitwise, as -i (X - X^dag)).  Outputs
above :func:`stream_min` bytes are written with streaming stores.

The library is compiled on first use with the system C compiler (``CC``, default ``cc``;
``-O3 -march=native``) into ``toolkit/_build/`` (or ``$QCSPIN_KERNEL_DIR``), keyed by a hash of
the source and the flags, and renamed into place atomically, so that MPI ranks starting together
do not race.  ``QCSPIN_KERNELS=0`` disables the kernels (PETSc's products and NumPy are used
instead); :func:`available` says whether they are in use.  The results equal PETSc's to
round-off (tests/toolkit/test_kernels.py).
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import subprocess
import tempfile
from typing import Iterator

import numpy as np

__all__ = ["available", "Diagonals", "combine", "combine_entries", "library", "MAX_DIAGONALS"]

_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels.c")
_FLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-fno-math-errno"]

#: above this many distinct diagonals the diagonal form is not used (a matrix with scattered
#: entries: each diagonal would be mostly zeros)
MAX_DIAGONALS = 48

_lib: ctypes.CDLL | None = None
_tried = False
_error = ""
_ncb = 0    # columns per pass of the left product (kernels.c's NCB; set by library())


def _build_dir() -> str:
    d = os.environ.get("QCSPIN_KERNEL_DIR")
    if d:
        return d
    here = os.path.join(os.path.dirname(_SRC), "_build")
    try:
        os.makedirs(here, exist_ok=True)
        if os.access(here, os.W_OK):
            return here
    except OSError:
        pass
    return os.path.join(os.path.expanduser("~"), ".cache", "qcspin")


def _compile() -> str:
    cc = os.environ.get("CC", "cc")
    with open(_SRC, "rb") as f:
        src = f.read()
    key = hashlib.sha256(src + " ".join([cc, *_FLAGS]).encode()).hexdigest()[:16]
    d = _build_dir()
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, f"qcspin_kernels_{key}.so")
    if os.path.exists(path):
        return path
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=d)
    os.close(fd)
    try:
        r = subprocess.run([cc, *_FLAGS, "-o", tmp, _SRC], capture_output=True, text=True)
        if r.returncode != 0:
            raise OSError(f"{cc} failed: {r.stderr.strip()[:500]}")
        os.replace(tmp, path)          # atomic: concurrent ranks each install a complete file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    for old in os.listdir(d):          # builds of earlier sources (a loaded one stays mapped)
        if old.startswith("qcspin_kernels_") and old.endswith(".so") and \
                os.path.join(d, old) != path:
            try:
                os.unlink(os.path.join(d, old))
            except OSError:
                pass
    return path


def library() -> ctypes.CDLL | None:
    """The compiled kernels, or None (disabled by ``QCSPIN_KERNELS=0``, or no C compiler:
    :func:`reason` says why)."""
    global _lib, _tried, _error, _ncb
    if _tried:
        return _lib
    _tried = True
    if os.environ.get("QCSPIN_KERNELS", "1").strip().lower() in ("0", "no", "off", "false"):
        _error = "disabled by QCSPIN_KERNELS=0"
        return None
    try:
        lib = ctypes.CDLL(_compile())
    except (OSError, FileNotFoundError) as e:
        _error = f"not compiled ({e})"
        return None
    L, I, P = ctypes.c_long, ctypes.c_int, ctypes.c_void_p
    D = ctypes.c_double
    lib.qc_dia_left.argtypes = [L, L, I, P, P, P, P, L, P, L, D, D, P, P, P, L]
    lib.qc_dia_commutator.argtypes = [L, I, P, P, P, P, P]
    lib.qc_combine.argtypes = [L, L, I, P, P, L, P, P, P]
    lib.qc_combine_entries.argtypes = [L, I, P, P, P, P, P, P]
    lib.qc_dia_left_halo.argtypes = [L, L, I, P, P, P, P, L, P, L, P, L, P, L, D, D, P, P, P, L,
                                     P]
    lib.qc_dia_commutator_halo.argtypes = [L, L, I, P, P, P, I, P, P, P, P, P, L, P, L, P, P]
    lib.qc_dia_commutator_hermitian.argtypes = [L, I, P, P, P, P, P]
    lib.qc_second_tier.argtypes = [L, L, L, P, P, P, I, P, P, P, P, P, P, P, P, P, P]
    for fn in (lib.qc_dia_left, lib.qc_dia_commutator, lib.qc_combine, lib.qc_combine_entries,
               lib.qc_dia_left_halo, lib.qc_dia_commutator_halo,
               lib.qc_dia_commutator_hermitian, lib.qc_second_tier):
        fn.restype = None
    _ncb = int(ctypes.c_int.in_dll(lib, "qc_ncb").value)   # NCB of kernels.c
    _lib = lib
    return lib


_enabled = True


def stream_min(nbytes: int | None = None) -> int:
    """The output size (bytes) from which the kernels write with streaming stores (not read
    into the cache before they are written; default 32 MiB, above the caches); with
    ``nbytes``, set it (e.g. 0 to use them always, as the tests do).  Returns the value before
    the call."""
    lib = library()
    if lib is None:
        return 0
    v = ctypes.c_long.in_dll(lib, "qc_stream_min")
    old = int(v.value)
    if nbytes is not None:
        v.value = int(nbytes)
    return old


def available() -> bool:
    """Whether the compiled kernels are in use."""
    return _enabled and library() is not None


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Objects built inside the block do not use the kernels (for comparisons and tests)."""
    global _enabled
    old, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = old


def reason() -> str:
    """Why the kernels are not in use ('' if they are)."""
    library()
    return _error


def _addr(a: np.ndarray | None) -> int | None:
    return None if a is None else a.ctypes.data


class Diagonals:
    """Rows of a square sparse matrix, given as CSR, in diagonal form for the kernels.

    ``indptr``, ``indices``: the CSR pattern of the n rows held here (global columns), which
    are the global rows ``row_start`` .. ``row_start + n`` (all rows on one rank); the values
    come from :meth:`update` (the CSR value array, whose order it keeps) or :meth:`set`.
    ``offsets`` are the distinct column - row offsets; ``below``/``above``: how many rows
    before/after the ones held here the rows reach.  :meth:`fits` says whether the pattern is
    worth it (at most :data:`MAX_DIAGONALS` diagonals)."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, row_start: int = 0,
                 n_total: int | None = None) -> None:
        indptr = np.asarray(indptr, np.int64)
        indices = np.asarray(indices, np.int64)
        n = len(indptr) - 1
        rows = np.repeat(np.arange(n), np.diff(indptr))
        off = indices - rows - row_start
        self.n, self.row_start = n, int(row_start)
        self.n_total = n if n_total is None else int(n_total)   # rows of the whole matrix
        self.offsets = np.unique(off).astype(np.int32)
        k = np.searchsorted(self.offsets, off)
        self.nd = len(self.offsets)
        self.below = int(max(0, -self.offsets.min())) if self.nd else 0
        self.above = int(max(0, self.offsets.max())) if self.nd else 0
        # position of CSR entry e in the complex diagonal array (nd, n)
        self._pos = k * n + rows
        self.values = np.zeros(self.nd * n, complex)
        self.cd = np.zeros((self.nd, 2 * n))        # the doubles the kernels read
        self.isreal = np.zeros(self.nd, np.int32)
        self._ext: np.ndarray | None = None

    def position(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Flat positions in :attr:`values` of the entries (local row, global column), which
        must be in the pattern."""
        off = np.asarray(cols) - np.asarray(rows) - self.row_start
        k = np.searchsorted(self.offsets, off)
        if np.any(k >= self.nd) or np.any(self.offsets[np.minimum(k, self.nd - 1)] != off):
            raise ValueError("Diagonals.position: an entry outside the pattern")
        return k * self.n + np.asarray(rows)

    def set(self, positions: np.ndarray, values: np.ndarray) -> None:
        """Overwrite the entries at ``positions`` (:meth:`position`) and refresh."""
        self.values[positions] = values
        self._refresh()

    def fits(self) -> bool:
        return 0 < self.nd <= MAX_DIAGONALS

    def update(self, csr_values: np.ndarray) -> None:
        """Take the CSR values (same order as the pattern)."""
        self.values[self._pos] = csr_values
        self._refresh()

    def _refresh(self) -> None:
        v = self.values.reshape(self.nd, self.n)
        self.isreal[:] = np.all(v.imag == 0.0, axis=1)
        self.isreal[~np.any(v != 0.0, axis=1)] = 2      # all zero: skipped by the kernels
        c = self.cd.reshape(self.nd, self.n, 2)
        c[:, :, 0] = v.real
        c[:, :, 1] = np.where(self.isreal[:, None] != 0, v.real, v.imag)

    def left(self, x: np.ndarray, y: np.ndarray, alpha: complex = 1.0,
             radd: np.ndarray | None = None, coef: np.ndarray | None = None,
             sum_to: np.ndarray | None = None) -> None:
        """y = alpha A x + (radd_i + coef_c) x for Fortran-ordered (n, ncol) x and y (no
        overlap); ``radd``: n reals, ``coef``: ncol complex (either may be None).  ``sum_to``:
        a Fortran-ordered (n, m) array with ncol a multiple of m, to which column c of x is
        added at column c % m in the same pass (e.g. the sum over a lead's poles)."""
        lib = library()
        assert lib is not None
        self._whole("left")
        n, ncol = x.shape
        _check(x, y, self.n)
        radd, coef, nsum = _extras(n, ncol, radd, coef, sum_to)
        lib.qc_dia_left(n, ncol, self.nd, self.offsets.ctypes.data, self.isreal.ctypes.data,
                        self.cd.ctypes.data, x.ctypes.data, n, y.ctypes.data, n,
                        float(np.real(alpha)), float(np.imag(alpha)), _addr(radd), _addr(coef),
                        _addr(sum_to), nsum)

    def _whole(self, what: str) -> None:
        if self.n != self.n_total:
            raise ValueError(f"Diagonals.{what} needs all rows of the matrix; these are "
                             f"{self.n} of {self.n_total}: use {what}_halo")

    def commutator(self, x: np.ndarray, y: np.ndarray) -> None:
        """y = -i (A x - x A) for Fortran-ordered (n, n) x and y (no overlap)."""
        lib = library()
        assert lib is not None
        self._whole("commutator")
        _check(x, y, self.n)
        if x.shape != (self.n, self.n):
            raise ValueError(f"commutator: x has shape {x.shape}, not ({self.n}, {self.n})")
        lib.qc_dia_commutator(self.n, self.nd, self.offsets.ctypes.data,
                              self.isreal.ctypes.data, self.cd.ctypes.data, x.ctypes.data,
                              y.ctypes.data)

    def commutator_hermitian(self, x: np.ndarray, y: np.ndarray) -> None:
        """y = -i (A x - x A) for Hermitian A and Hermitian (n, n) x (Fortran-ordered, no
        overlap), as -i (A x - (A x)^dag): one left product and an in-place pass, instead of
        the general :meth:`commutator`'s x A, which reads columns of x far apart.  The result
        is exactly Hermitian.  For a non-Hermitian x it is not the commutator."""
        lib = library()
        assert lib is not None
        self._whole("commutator_hermitian")
        _check(x, y, self.n)
        if x.shape != (self.n, self.n):
            raise ValueError(f"commutator_hermitian: x has shape {x.shape}, not "
                             f"({self.n}, {self.n})")
        lib.qc_dia_commutator_hermitian(self.n, self.nd, self.offsets.ctypes.data,
                                        self.isreal.ctypes.data, self.cd.ctypes.data,
                                        x.ctypes.data, y.ctypes.data)

    def _ext_work(self, hl: int, hu: int) -> np.ndarray:
        size = _ncb * (hl + self.n + hu)     # complex entries: the kernels' NCB columns
        if self._ext is None or len(self._ext) < size:
            self._ext = np.zeros(size, complex)
        return self._ext

    def left_halo(self, x: np.ndarray, xl: np.ndarray, xu: np.ndarray, y: np.ndarray,
                  alpha: complex = 1.0, radd: np.ndarray | None = None,
                  coef: np.ndarray | None = None, sum_to: np.ndarray | None = None) -> None:
        """:meth:`left` on the rows held here of a row-distributed x, whose rows before and
        after these come from the neighbouring ranks: ``xl`` (the ``below`` rows before),
        ``xu`` (the ``above`` rows after; either may have 0 rows at the ends), Fortran-ordered
        with x's columns (``toolkit.parallel.RowHalo``)."""
        lib = library()
        assert lib is not None
        n, ncol = x.shape
        _check(x, y, self.n)
        hl, hu = xl.shape[0], xu.shape[0]
        for name, h in (("xl", xl), ("xu", xu)):
            if h.dtype != np.complex128 or not h.flags.f_contiguous or h.shape[1] != ncol:
                raise ValueError(f"left_halo: {name} must be a Fortran-ordered complex array of "
                                 f"{ncol} columns, got {h.dtype} {h.shape}")
        radd, coef, nsum = _extras(n, ncol, radd, coef, sum_to)
        lib.qc_dia_left_halo(n, ncol, self.nd, self.offsets.ctypes.data,
                             self.isreal.ctypes.data, self.cd.ctypes.data, x.ctypes.data, n,
                             xl.ctypes.data, hl, xu.ctypes.data, hu, y.ctypes.data, n,
                             float(np.real(alpha)), float(np.imag(alpha)), _addr(radd),
                             _addr(coef), _addr(sum_to), nsum,
                             self._ext_work(hl, hu).ctypes.data)

    def commutator_halo(self, x: np.ndarray, xl: np.ndarray, xu: np.ndarray, y: np.ndarray,
                        full: "Diagonals") -> None:
        """y = -i (A x - x A) on the rows held here of the row-distributed N x N x (Fortran,
        (n, N)): A x from these rows and the halos ``xl``, ``xu`` (as :meth:`left_halo`), x A
        from ``full``, the whole A in diagonal form (all N rows)."""
        lib = library()
        assert lib is not None
        N = full.n
        if x.shape != (self.n, N):
            raise ValueError(f"commutator_halo: x has shape {x.shape}, not ({self.n}, {N})")
        _check(x, y, self.n)
        hl, hu = xl.shape[0], xu.shape[0]
        lib.qc_dia_commutator_halo(self.n, N, self.nd, self.offsets.ctypes.data,
                                   self.isreal.ctypes.data, self.cd.ctypes.data, full.nd,
                                   full.offsets.ctypes.data, full.isreal.ctypes.data,
                                   full.cd.ctypes.data, x.ctypes.data, xl.ctypes.data, hl,
                                   xu.ctypes.data, hu, y.ctypes.data,
                                   self._ext_work(hl, hu).ctypes.data)


def _extras(n: int, ncol: int, radd, coef, sum_to):
    """Checked radd, coef and the column count of sum_to of :meth:`Diagonals.left`."""
    if radd is not None:
        radd = np.ascontiguousarray(radd, float)
        if radd.shape != (n,):
            raise ValueError(f"left: radd has shape {radd.shape}, not ({n},)")
    if coef is not None:
        coef = np.ascontiguousarray(coef, complex)
        if coef.shape != (ncol,):
            raise ValueError(f"left: coef has shape {coef.shape}, not ({ncol},)")
    nsum = 1
    if sum_to is not None:
        nsum = sum_to.shape[1]
        if (sum_to.dtype != np.complex128 or not sum_to.flags.f_contiguous
                or sum_to.shape[0] != n or nsum == 0 or ncol % nsum):
            raise ValueError(f"left: sum_to must be a Fortran-ordered complex ({n}, m) array "
                             f"with m dividing {ncol}, got {sum_to.dtype} {sum_to.shape}")
    return radd, coef, nsum


def _check(x: np.ndarray, y: np.ndarray, n: int) -> None:
    for name, a in (("x", x), ("y", y)):
        if a.dtype != np.complex128 or not a.flags.f_contiguous or a.shape[0] != n:
            raise ValueError(f"kernel operand {name}: need a Fortran-ordered complex128 array "
                             f"of {n} rows, got {a.dtype} {a.shape}")
    if x.shape != y.shape:
        raise ValueError(f"kernel operands: shapes {x.shape} and {y.shape} differ")
    if np.may_share_memory(x, y):
        raise ValueError("kernel operands x and y overlap")


def combine(out: np.ndarray, vs, coefs, nrows: int, out2: np.ndarray | None = None,
            coefs2=None) -> None:
    """out[r, c] = sum_t coefs[t][c] vs[t][r, c] over the complex arrays ``vs`` (each nrows x
    ncol, column-major, contiguous, flat views allowed); ``coefs``: real arrays of ncol values,
    or of one value for all columns.  With ``out2``: also out2 = sum_t coefs2[t] vs[t] in the
    same pass over the inputs.  ``out`` and ``out2`` may each be one of the inputs (each chunk
    is read before it is written); partial overlaps are refused."""
    lib = library()
    assert lib is not None
    nt = len(vs)
    if nt > 16:
        raise ValueError(f"combine: {nt} terms, at most 16")
    ncol = out.size // max(nrows, 1) if nrows else 0
    if ncol == 0:
        return

    def prepared(cf):
        cs = [np.ascontiguousarray(c, float).reshape(-1) for c in cf]
        if len(cs) != nt:
            raise ValueError("combine: one coefficient array per term")
        return cs

    cs = prepared(coefs)
    cs2 = prepared(coefs2) if out2 is not None else []
    stride = 0 if all(len(c) == 1 for c in cs + cs2) else 1
    if stride and any(len(c) != ncol for c in cs + cs2):
        raise ValueError("combine: one coefficient per column or one for all")
    outs = [out] if out2 is None else [out, out2]
    if out2 is not None and np.may_share_memory(out, out2):
        raise ValueError("combine: out and out2 overlap")
    for o in outs:
        for v in vs:
            if np.may_share_memory(o, v) and (o.ctypes.data != v.ctypes.data
                                              or o.size != v.size):
                raise ValueError("combine: an output partially overlaps an input (it may be "
                                 "one of the inputs)")
    vp = (ctypes.c_void_p * nt)(*[v.ctypes.data for v in vs])
    cp = (ctypes.c_void_p * nt)(*[c.ctypes.data for c in cs])
    cp2 = (ctypes.c_void_p * nt)(*[c.ctypes.data for c in cs2]) if out2 is not None else None
    lib.qc_combine(nrows, ncol, nt, vp, cp, stride, out.ctypes.data, cp2,
                   None if out2 is None else out2.ctypes.data)


def combine_entries(out: np.ndarray, vs, coefs, out2: np.ndarray | None = None,
                    coefs2=None, index: np.ndarray | None = None) -> None:
    """out[q] = sum_t coefs[t][q] vs[t][q] over contiguous complex 1D arrays ``vs`` with one
    real coefficient per entry (``coefs``: contiguous float arrays of the same length); with
    ``out2`` also out2 = sum_t coefs2[t][q] vs[t][q] in the same pass.  With ``index`` (uint16,
    one per entry) the coefficients are tables: entry q takes coefs[t][index[q]].  ``out`` and
    ``out2`` may be any of the inputs (each chunk is read before it is written)."""
    lib = library()
    assert lib is not None
    nt, n = len(vs), out.size
    if nt > 16 or len(coefs) != nt or (out2 is not None and len(coefs2) != nt):
        raise ValueError("combine_entries: 1..16 terms, one coefficient array per term")
    arrays = list(vs) + [out] + ([] if out2 is None else [out2])
    reals = list(coefs) + ([] if out2 is None else list(coefs2))
    if index is not None:
        if index.dtype != np.uint16 or index.size != n or not index.flags.c_contiguous:
            raise ValueError(f"combine_entries: index must be a contiguous uint16 array of {n} "
                             f"entries, got {index.dtype} {index.shape}")
        need = int(index.max()) + 1 if n else 0
        if any(c.dtype != np.float64 or c.size < need or not c.flags.c_contiguous
               for c in reals):
            raise ValueError(f"combine_entries: coefficient tables must be contiguous float64 "
                             f"arrays of at least {need} values")
        reals = []
    if any(a.dtype != np.complex128 or a.size != n or not a.flags.c_contiguous
           for a in arrays) or any(c.dtype != np.float64 or c.size != n or
                                   not c.flags.c_contiguous for c in reals):
        raise ValueError("combine_entries: contiguous complex128 arrays and float64 "
                         "coefficients of one length")
    if n == 0:
        return
    vp = (ctypes.c_void_p * nt)(*[v.ctypes.data for v in vs])
    cp = (ctypes.c_void_p * nt)(*[c.ctypes.data for c in coefs])
    cp2 = None if out2 is None else (ctypes.c_void_p * nt)(*[c.ctypes.data for c in coefs2])
    lib.qc_combine_entries(n, nt, vp, cp, out.ctypes.data, cp2,
                           None if out2 is None else out2.ctypes.data,
                           None if index is None else index.ctypes.data)


def second_tier(zy: np.ndarray, kap: np.ndarray, zeta: np.ndarray, full: bool, Om: np.ndarray,
                Th: np.ndarray, K: np.ndarray, PR: np.ndarray, PL: np.ndarray, yc: np.ndarray,
                ubar: np.ndarray, fOm: np.ndarray, fTh: np.ndarray, fK: np.ndarray) -> None:
    """The second tier of the auxiliary-mode leads in one pass (kernels.c, qc_second_tier):

        fOm = -i (zy_y - kap_x) Om + PR[yc_y, x]
        fTh = -i (zy_y - conj zy_z) Th + PL[yc_y, z] - conj PL[yc_z, y]
        fK  = -i (zeta_u - conj zy_y) K + conj PR[yc_y, ubar_u]

    with only the imaginary parts of the rates unless ``full``.  Complex C-ordered Om, fOm
    (ny, nx), Th, fTh (ny, ny), K, fK (nu, ny), PR (channels, nx), PL (channels, ny); ``yc``
    (ny) the channel of each y, ``ubar`` (nu) the x of each u."""
    lib = library()
    assert lib is not None
    ny, nx, nu = len(zy), len(kap), len(zeta)
    shapes = {"Om": (Om, (ny, nx)), "fOm": (fOm, (ny, nx)), "Th": (Th, (ny, ny)),
              "fTh": (fTh, (ny, ny)), "K": (K, (nu, ny)), "fK": (fK, (nu, ny)),
              "PR": (PR, (PR.shape[0], nx)), "PL": (PL, (PL.shape[0], ny)),
              "zy": (zy, (ny,)), "kap": (kap, (nx,)), "zeta": (zeta, (nu,))}
    for name, (a, shape) in shapes.items():
        if a.dtype != np.complex128 or not a.flags.c_contiguous or a.shape != shape:
            raise ValueError(f"second_tier: {name} must be a C-ordered complex {shape} array, "
                             f"got {a.dtype} {a.shape}")
    yc = np.ascontiguousarray(yc, np.int64)
    ubar = np.ascontiguousarray(ubar, np.int64)
    if yc.shape != (ny,) or ubar.shape != (nu,) or (ny and not 0 <= yc.min() <= yc.max()
                                                      < PR.shape[0]) \
            or PL.shape[0] != PR.shape[0] or (nu and not 0 <= ubar.min() <= ubar.max() < nx):
        raise ValueError("second_tier: yc must give a channel per y, ubar an x per u")
    for o in (fOm, fTh, fK):
        if any(np.may_share_memory(o, a) for a in (Om, Th, K, PR, PL)):
            raise ValueError("second_tier: an output overlaps an input")
    lib.qc_second_tier(ny, nx, nu, zy.ctypes.data, kap.ctypes.data, zeta.ctypes.data,
                       int(bool(full)), Om.ctypes.data, Th.ctypes.data, K.ctypes.data,
                       PR.ctypes.data, PL.ctypes.data, yc.ctypes.data, ubar.ctypes.data,
                       fOm.ctypes.data, fTh.ctypes.data, fK.ctypes.data)
