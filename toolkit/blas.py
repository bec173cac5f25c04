"""Threads of the BLAS that NumPy uses (OpenBLAS on Debian), for small dense kernels.

Multithreaded OpenBLAS slows batched inverses of small matrices by 10-20x (the adiabatic
equilibrium of integrators/adiabatic.py: 20 inverses of 6 x 6 took 0.28 ms with 2 threads,
0.028 ms with one).  :func:`single_thread` runs a block with one BLAS thread and restores the
previous count; without OpenBLAS (another BLAS, or none found) it does nothing.
"""
from __future__ import annotations

import contextlib
import ctypes
import re
from typing import Iterator

__all__ = ["single_thread", "blas_threads"]

_lib: ctypes.CDLL | None = None
_looked_up = False


def _openblas() -> ctypes.CDLL | None:
    global _lib, _looked_up
    if not _looked_up:
        _looked_up = True
        try:
            import numpy  # noqa: F401  (loads the BLAS)

            with open("/proc/self/maps") as f:
                libs = sorted(set(re.findall(r"(/\S*libopenblas\S*\.so\S*)", f.read())))
            for path in libs:
                lib = ctypes.CDLL(path)
                if hasattr(lib, "openblas_set_num_threads"):
                    lib.openblas_get_num_threads.restype = ctypes.c_int
                    _lib = lib
                    break
        except OSError:
            _lib = None
    return _lib


def blas_threads() -> int | None:
    """The number of OpenBLAS threads (None without OpenBLAS)."""
    lib = _openblas()
    return None if lib is None else int(lib.openblas_get_num_threads())


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run the block with one OpenBLAS thread."""
    lib = _openblas()
    if lib is None:
        yield
        return
    n = int(lib.openblas_get_num_threads())
    if n == 1:
        yield
        return
    lib.openblas_set_num_threads(1)
    try:
        yield
    finally:
        lib.openblas_set_num_threads(n)
