"""LAPACK routines SciPy 1.10 does not wrap: the blocked triangular Sylvester solver ZTRSYL3.

ZTRSYL3 (LAPACK >= 3.11; Debian bookworm's LAPACK and OpenBLAS 0.3.21 have it) solves the
triangular Sylvester equation with level-3 BLAS.  SciPy's ``ztrsyl`` is the unblocked level-2
routine: for N = 1000 it took 4.2 s against 0.62 s, for N = 2000 79 s against 4.0 s (one
OpenBLAS thread; ``scripts/bench_sylvester.py``).  Without ZTRSYL3 :func:`trsyl` falls back to
SciPy's ``ztrsyl`` (same result, slower).
"""
from __future__ import annotations

import ctypes

import numpy as np

__all__ = ["trsyl", "has_trsyl3"]

_fn = None
_looked_up = False


def _ztrsyl3():
    global _fn, _looked_up
    if not _looked_up:
        _looked_up = True
        import scipy.linalg  # noqa: F401  (loads the LAPACK SciPy uses)

        from .blas import loaded_library

        lib = loaded_library(r"(/\S*lib(?:lapack|openblas)\S*\.so\S*)", "ztrsyl3_")
        if lib is not None:
            _fn = lib.ztrsyl3_
            _fn.restype = None
    return _fn


def has_trsyl3() -> bool:
    """Whether the loaded LAPACK has the blocked ZTRSYL3."""
    return _ztrsyl3() is not None


def trsyl(A: np.ndarray, B: np.ndarray, C: np.ndarray, blocked: bool = True,
          overwrite_c: bool = False) -> np.ndarray:
    """X with A X - X B^dag = C for upper triangular A (m x m) and B (n x n), complex.

    Returns a Fortran-ordered array: a new one, or C itself if ``overwrite_c`` and C is a
    Fortran-ordered complex array.  Raises ``ValueError`` on an
    illegal argument; common eigenvalues of A and B^dag (LAPACK's INFO = 1: perturbed values
    were used) are the caller's business (integrators/stationary.py splits them off first).
    ``blocked = False`` forces SciPy's unblocked ``ztrsyl`` (tests compare both)."""
    A = np.asfortranarray(A, dtype=complex)
    B = np.asfortranarray(B, dtype=complex)
    X = np.array(C, dtype=complex, order="F", copy=not overwrite_c)
    m, n = X.shape
    if A.shape != (m, m) or B.shape != (n, n):
        raise ValueError(f"trsyl: shapes {A.shape}, {B.shape}, {X.shape} do not match")
    if m == 0 or n == 0:
        return X
    f = _ztrsyl3() if blocked else None
    if f is None:
        import scipy.linalg as sla

        Y, scale, info = sla.lapack.ztrsyl(A, B, X, trana="N", tranb="C", isgn=-1)
        if info < 0:
            raise ValueError(f"ztrsyl: argument {-info} is illegal")
        return np.asfortranarray(Y / scale if scale != 1.0 else Y)
    ref = ctypes.byref
    ta, tb = ctypes.c_char(b"N"), ctypes.c_char(b"C")
    isgn, cm, cn = ctypes.c_int(-1), ctypes.c_int(m), ctypes.c_int(n)
    lda, ldb = ctypes.c_int(m), ctypes.c_int(n)
    scale, info = ctypes.c_double(1.0), ctypes.c_int(0)

    def call(work: np.ndarray, ldw: ctypes.c_int) -> None:
        f(ref(ta), ref(tb), ref(isgn), ref(cm), ref(cn),
          A.ctypes.data_as(ctypes.c_void_p), ref(lda), B.ctypes.data_as(ctypes.c_void_p),
          ref(ldb), X.ctypes.data_as(ctypes.c_void_p), ref(lda), ref(scale),
          work.ctypes.data_as(ctypes.c_void_p), ref(ldw), ref(info),
          ctypes.c_size_t(1), ctypes.c_size_t(1))     # (hidden lengths of TRANA, TRANB)

    query = np.zeros(2)
    call(query, ctypes.c_int(-1))                      # workspace query: (rows, cols)
    if info.value < 0:
        raise ValueError(f"ztrsyl3: argument {-info.value} is illegal")
    rows, cols = max(2, int(query[0])), max(1, int(query[1]))
    work = np.zeros((rows, cols), order="F")
    call(work, ctypes.c_int(rows))
    if info.value < 0:
        raise ValueError(f"ztrsyl3: argument {-info.value} is illegal")
    if scale.value != 1.0:
        X /= scale.value
    return X
