"""Threads of the BLAS that NumPy uses (OpenBLAS on Debian), for small dense kernels.

Multithreaded OpenBLAS slows batched inverses of small matrices by 10-20x (the adiabatic
equilibrium of integrators/adiabatic.py: 20 inverses of 6 x 6 took 0.28 ms with 2 threads,
0.028 ms with one).  :func:`single_thread` runs a block with one BLAS thread and restores the
previous count; without OpenBLAS (another BLAS, or none found) it does nothing.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import re
from typing import Iterator

__all__ = ["single_thread", "blas_threads", "threads", "loaded_library"]

_lib: ctypes.CDLL | None = None
_looked_up = False


def loaded_library(pattern: str, symbol: str) -> ctypes.CDLL | None:
    """The first shared library already mapped into this process whose path matches the
    regular expression ``pattern`` and that exports ``symbol`` (None if none, or not
    Linux): the BLAS/LAPACK NumPy and SciPy loaded, found in /proc/self/maps."""
    try:
        with open("/proc/self/maps") as f:
            libs = sorted(set(re.findall(pattern, f.read())))
        for path in libs:
            lib = ctypes.CDLL(path)
            if hasattr(lib, symbol):
                return lib
    except OSError:
        pass
    return None


def _openblas() -> ctypes.CDLL | None:
    global _lib, _looked_up
    if not _looked_up:
        _looked_up = True
        import numpy  # noqa: F401  (loads the BLAS)

        _lib = loaded_library(r"(/\S*libopenblas\S*\.so\S*)", "openblas_set_num_threads")
        if _lib is not None:
            _lib.openblas_get_num_threads.restype = ctypes.c_int
    return _lib


def blas_threads() -> int | None:
    """The number of OpenBLAS threads (None without OpenBLAS)."""
    lib = _openblas()
    return None if lib is None else int(lib.openblas_get_num_threads())


def single_thread():
    """Run the block with one OpenBLAS thread (:func:`threads` (1))."""
    return threads(1)


@contextlib.contextmanager
def threads(n: int, cpus: set[int] | None = None) -> Iterator[None]:
    """Run the block with ``n`` OpenBLAS threads (more than the start-up count is allowed:
    OpenBLAS starts the extra threads), then restore the previous count.  ``cpus``: the
    cores every thread of this process may run on during the block (then restored): mpirun
    binds each rank to one core by default, where n threads would share that one core."""
    lib = _openblas()
    if lib is None or n < 1:
        yield
        return
    old = int(lib.openblas_get_num_threads())
    if old == n and not cpus:
        yield
        return
    masks = _widen(cpus) if cpus else {}
    lib.openblas_set_num_threads(int(n))
    try:
        yield
    finally:
        lib.openblas_set_num_threads(old)
        for tid, mask in masks.items():
            try:
                os.sched_setaffinity(tid, mask)
            except OSError:
                pass


def _widen(cpus: set[int]) -> dict[int, set[int]]:
    """Let every thread of this process run on ``cpus``; their previous masks (Linux)."""
    masks: dict[int, set[int]] = {}
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return masks
    for tid in tids:
        try:
            masks[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, cpus)
        except OSError:      # a thread that ended, or a mask the system refuses
            masks.pop(tid, None)
    return masks
