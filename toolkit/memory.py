"""Memory estimate of a run before anything large is allocated: from its config and the sizes
of its electron problem (:class:`StateSize`, which the leads' time-domain representations fix).

The state per rank is the local rows of rho (N_s x N_s / ranks, complex) plus the lead blocks
(N_s x N_p n_l per lead / ranks) plus the spins.  A run's peak above the interpreter, in state
sizes (measured with ``VmHWM`` on open 3D valves of N_s = 864 and 1792, 1 rank):

- exponential RK4 (``solver.stiff = "expint"``, open junctions): 6.1-6.7 = the solution, the
  products H x (rho, lead blocks), the integrator's four stage vectors (two of them the ones
  petsc4py's TS of type python allocates anyway), the pole sum's work freed before the TS
  starts (``release_free_memory``);
- the staggered Heun scheme: 7.7 (one stage vector more);
- PETSc's own TS types (explicit RK of closed systems or ``stiff = "none"``, ARKIMEX): 11.7-12.2
  (their stage vectors, the right-hand side vector and the TS's copies).

Checkpoints are written and read by rows (no rank holds more than its own).  The initial
state needs dense N_s x N_s work on every rank: the pole sum (``integrators.stationary``) ~5 of
them (unit columns, solutions, the sum and its transpose, rho) plus the lead blocks and the
MUMPS factors; a start under bias
adds the dense Sylvester solve (~9: one Schur form, ZTRSYL3); LAPACK diagonalisation ~6;
plus ~128 MiB for the interpreter and libraries.  The estimate counts these leading terms; it
is printed in the run header and a run whose estimate exceeds the memory available on its node
is refused before it starts.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from .errors import InputError

__all__ = ["MemoryEstimate", "StateSize", "estimate_memory", "available_memory", "fmt_bytes",
           "MemoryLimitError", "release_free_memory", "check_indices"]

#: measured peak / state of a run by its time stepping (module docstring), with a margin
STATE_VECTORS = {"expint": 7, "staggered-heun": 8, "petsc": 13}
BASELINE = 128 * 2**20  # the interpreter with NumPy, SciPy, PETSc, SLEPc, h5py loaded
POLE_SUM_DENSE = 6      # dense N_s x N_s arrays of the pole sum (and the MUMPS factors)
STATIONARY_DENSE = 9    # dense N_s x N_s arrays of the Sylvester solve under bias (8.2 measured)
STATIONARY_DENSE_MAX_N = 4000  # integrators.stationary.DENSE_MAX_N (the window above)
LAPACK_DENSE = 6        # H, eigenvectors, LAPACK work, rho, temporaries
DENSE_LIMIT = 4000      # integrators.initial: LAPACK up to this N_s


class MemoryLimitError(InputError):
    """The estimated memory of a run exceeds what the machine has."""


@dataclass(frozen=True)
class MemoryEstimate:
    n_orbitals: int
    ranks: int
    rho: int             # bytes of rho (whole)
    leads: int           # bytes of all lead blocks (whole)
    initial: int         # bytes of the initial-state work arrays, per rank
    per_rank: int        # peak bytes per rank
    rank0: int           # rank 0's (= per_rank: checkpoints are written by rows, no gather)

    @property
    def state(self) -> int:
        return self.rho + self.leads

    def summary(self) -> str:
        return (f"state {fmt_bytes(self.state)} (rho {fmt_bytes(self.rho)}"
                + (f", lead blocks {fmt_bytes(self.leads)}" if self.leads else "")
                + f"), estimated peak {fmt_bytes(self.rank0)}"
                + (" per rank" if self.ranks > 1 else ""))


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"


@dataclass(frozen=True)
class StateSize:
    """What the electron problem of a run holds, from its leads' time-domain representations
    (integrators.electrons.ElectronProblem.state_size): ``n_orbitals`` N of rho (device plus
    explicit lead sites), ``lead_columns`` (columns of all N-row lead components), ``small``
    (entries of the small components on rank 0) and ``lead_sites`` [(lead index, explicit
    sites)] for the message when explicit sites dominate."""

    n_orbitals: int
    lead_columns: int = 0
    small: int = 0
    lead_sites: tuple[tuple[int, int], ...] = ()


def estimate_memory(cfg, ranks: int = 1, size: StateSize | None = None) -> MemoryEstimate:
    """Leading memory terms of a run of ``cfg`` on ``ranks`` MPI ranks; ``size``: the state
    its electron problem holds (required with leads; without: the closed device)."""
    if size is None:
        if cfg.leads:
            raise ValueError("estimate_memory: a config with leads needs the StateSize of its "
                             "electron problem (integrators.electrons.ElectronProblem)")
        size = StateSize(2 * math.prod(cfg.lattice.size))
    N = size.n_orbitals
    z = 16  # complex128
    rho = N * N * z
    leads = (N * size.lead_columns + size.small) * z
    initial = cfg.electrons.initial
    if initial == "auto":
        initial = "stationary" if cfg.leads else "ground"
    if initial in ("stationary", "partitioned", "partitioned-empty"):
        method = cfg.electrons.stationary
        dense = method == "dense" or (method == "auto" and N <= STATIONARY_DENSE_MAX_N)
        work = (STATIONARY_DENSE if dense and _biased_start(cfg) else POLE_SUM_DENSE) * rho \
            + leads
    elif cfg.electrons.eigensolver == "lapack" or (cfg.electrons.eigensolver == "auto"
                                                     and N <= DENSE_LIMIT):
        work = LAPACK_DENSE * rho
    elif cfg.electrons.eigensolver == "poles" or (cfg.electrons.eigensolver == "auto"
                                                   and initial == "fermi"):
        work = POLE_SUM_DENSE * rho // max(1, ranks)
    else:
        work = 2 * rho // max(1, ranks)
    per_state = (rho + leads) // max(1, ranks)
    run = STATE_VECTORS[_stepping(cfg)] * per_state
    per_rank = BASELINE + max(run, work + per_state)
    rank0 = per_rank        # (checkpoints by rows since toolkit/checkpoint.py: no gather)
    return MemoryEstimate(N, ranks, rho, leads, work, per_rank, rank0)


def release_free_memory() -> None:
    """Give the heap memory freed so far back to the operating system (glibc ``malloc_trim``;
    nothing elsewhere).  The initial state's solver work (MUMPS factors, dense right-hand
    sides) leaves ~1.7 state sizes of freed but mapped heap that would otherwise count in the
    run's peak."""
    try:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("c")
        if name:
            ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):   # not glibc
        pass


def _stepping(cfg) -> str:
    """The key of :data:`STATE_VECTORS` for the time stepping of ``cfg``."""
    if getattr(cfg.solver, "scheme", "monolithic") == "staggered-heun":
        return "staggered-heun"
    return "expint" if cfg.leads and cfg.solver.stiff == "expint" else "petsc"


def _biased_start(cfg) -> bool:
    """Whether the stationary start of ``cfg`` is out of equilibrium (leads at different mu or
    T before t = 0, or a bias already on at t < 0): then the Sylvester solve runs."""
    leads = cfg.leads
    if len({(l.mu, l.temperature) for l in leads}) > 1:
        return True
    b = cfg.bias
    if b.protocol == "none":
        return False
    if b.table:
        return float(b.table[0][1]) != 0.0 and float(b.table[0][0]) < 0.0
    return b.V != 0.0 and b.t_on < 0.0


def available_memory() -> int | None:
    """Bytes of memory available on this node (MemAvailable of /proc/meminfo), or None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_indices(cfg, size: StateSize, n_spins: int, max_index: int) -> None:
    """:class:`MemoryLimitError` when the state vector (rho, the lead blocks, the small
    components and the spins) has more entries than the PETSc build's indices can count
    (``max_index``: 2^31 - 1 for the default 32-bit PetscInt, Debian's build)."""
    N = size.n_orbitals
    n = N * N + N * size.lead_columns + size.small + 3 * n_spins
    if n > max_index:
        raise MemoryLimitError(
            f"config key 'lattice.size' = {list(cfg.lattice.size)} is not allowed with this "
            f"PETSc: the state vector has {n:,} entries (N_s = {N}), more than the "
            f"{max_index:,} its {max_index.bit_length() + 1}-bit indices can address; use a "
            f"PETSc configured with --with-64-bit-indices (built from source, or a 64-bit-index "
            f"build of conda-forge or spack) together with its petsc4py, or a smaller junction")


def check_memory(cfg, ranks: int = 1, ranks_on_node: int | None = None,
                 size: StateSize | None = None) -> MemoryEstimate:
    """The estimate, or :class:`MemoryLimitError` when the ranks on this node would need more
    than it has available."""
    est = estimate_memory(cfg, ranks, size)
    avail = available_memory()
    local = ranks if ranks_on_node is None else ranks_on_node
    need = est.rank0 + (local - 1) * est.per_rank
    if avail is not None and need > avail:
        shape = "x".join(map(str, cfg.lattice.size))
        key: str = "lattice.size"
        value: int | list[int] = list(cfg.lattice.size)
        n_dev = 2 * math.prod(cfg.lattice.size)
        sites = list(size.lead_sites) if size is not None else []
        if sites and est.n_orbitals > 2 * n_dev:     # explicit lead sites dominate
            k, L = max(sites, key=lambda x: x[1])
            key, value = f"leads[{k}].sites", L
        raise MemoryLimitError(
            f"config key '{key}' = {value} is not allowed here: the "
            f"{shape} junction (N_s = {est.n_orbitals}) needs about {fmt_bytes(need)} on this "
            f"node ({est.summary()}) but {fmt_bytes(avail)} is available; use a smaller "
            f"lattice, shorter leads, fewer poles or more nodes")
    return est
