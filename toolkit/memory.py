"""Memory estimate of a run from its config alone (before anything is allocated).

The state per rank is the local rows of rho (N_s x N_s / ranks, complex) plus the lead blocks
(N_s x N_p n_l per lead / ranks) plus the spins.  A run's peak was measured at 12-14 state sizes
(the solution, the right-hand side, the integrator's stage vectors, NumPy temporaries of the
right-hand side and PETSc work matrices; open 3D valve, N_s = 4000), rank 0 gathers the whole
state for a checkpoint, and the initial state needs dense N_s x N_s work arrays on every rank:
the stationary Sylvester solve ~18 of them, LAPACK diagonalisation ~6, plus ~128 MiB for the
interpreter and libraries.  The estimate counts these leading terms (measured: within 5 % of the
peak resident memory for closed 2D valves with N_s = 1600-2400 and an open 2D valve, 1 rank);
it is printed in the run header and a
run whose estimate exceeds the memory available on its node is refused before it starts.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

__all__ = ["MemoryEstimate", "estimate_memory", "available_memory", "fmt_bytes",
           "MemoryLimitError"]

STATE_VECTORS = 14      # measured peak / state of a run (y, F, stages, temporaries)
BASELINE = 128 * 2**20  # the interpreter with NumPy, SciPy, PETSc, SLEPc, h5py loaded
STATIONARY_DENSE = 18   # dense N_s x N_s arrays of the Sylvester solve (scipy)
LAPACK_DENSE = 6        # H, eigenvectors, LAPACK work, rho, temporaries
DENSE_LIMIT = 4000      # integrators.initial: LAPACK up to this N_s


class MemoryLimitError(ValueError):
    """The estimated memory of a run exceeds what the machine has."""


@dataclass(frozen=True)
class MemoryEstimate:
    n_orbitals: int
    ranks: int
    rho: int             # bytes of rho (whole)
    leads: int           # bytes of all lead blocks (whole)
    initial: int         # bytes of the initial-state work arrays, per rank
    per_rank: int        # peak bytes per rank (rank 0: + the gathered checkpoint)
    rank0: int

    @property
    def state(self) -> int:
        return self.rho + self.leads

    def summary(self) -> str:
        return (f"state {fmt_bytes(self.state)} (rho {fmt_bytes(self.rho)}"
                + (f", lead blocks {fmt_bytes(self.leads)}" if self.leads else "")
                + f"), estimated peak {fmt_bytes(self.rank0)} on rank 0"
                + (f", {fmt_bytes(self.per_rank)} on the others" if self.ranks > 1 else ""))


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"


def estimate_memory(cfg, ranks: int = 1) -> MemoryEstimate:
    """Leading memory terms of a run of ``cfg`` on ``ranks`` MPI ranks."""
    n_sites = math.prod(cfg.lattice.size)
    n_face = 2 * math.prod(cfg.lattice.size[1:])
    cols = []      # per lead: orbitals it adds to the electron problem, columns of its Pi block
    ny = nx = nu = 0   # auxiliary modes: the small second-tier matrices
    for lc in cfg.leads:
        n_p = lc.n_poles or cfg.electrons.n_poles
        rep = lc.representation or "extended"
        if lc.model == "tight-binding" and rep == "extended":   # explicit columns + absorbers
            L = lc.sites or 60
            cols.append((L * n_face, n_p * (lc.absorbing or L) * n_face))
        elif lc.model == "tight-binding":          # channels x (poles + 2 modes) vectors
            n = (lc.lorentzians or 60) if rep == "lorentzian" else (lc.sites or 60)
            cols.append((0, n_face * (n_p + 2 * n)))
            ny, nx, nu = ny + n_face * n, nx + n_face * (n_p + n), nu + n_face * (n + n_p)
        else:
            cols.append((0, n_p * n_face))
    N = 2 * n_sites + sum(a for a, _ in cols)
    z = 16  # complex128
    rho = N * N * z
    leads = sum(N * c * z for _, c in cols) + (ny * nx + ny * ny + nu * ny) * z
    initial = cfg.electrons.initial
    if initial == "auto":
        initial = "stationary" if cfg.leads else "ground"
    if initial in ("stationary", "partitioned", "partitioned-empty"):
        work = STATIONARY_DENSE * rho
    elif cfg.electrons.eigensolver == "lapack" or (cfg.electrons.eigensolver == "auto"
                                                     and N <= DENSE_LIMIT):
        work = LAPACK_DENSE * rho
    else:
        work = 2 * rho // max(1, ranks)
    per_state = (rho + leads) // max(1, ranks)
    run = STATE_VECTORS * per_state
    per_rank = BASELINE + max(run, work + per_state)
    rank0 = per_rank + rho + leads  # the checkpoint gathered on rank 0
    return MemoryEstimate(N, ranks, rho, leads, work, per_rank, rank0)


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


def check_memory(cfg, ranks: int = 1, ranks_on_node: int | None = None) -> MemoryEstimate:
    """The estimate, or :class:`MemoryLimitError` when the ranks on this node would need more
    than it has available."""
    est = estimate_memory(cfg, ranks)
    avail = available_memory()
    local = ranks if ranks_on_node is None else ranks_on_node
    need = est.rank0 + (local - 1) * est.per_rank
    if avail is not None and need > avail:
        size = "x".join(map(str, cfg.lattice.size))
        key, value = "lattice.size", list(cfg.lattice.size)
        n_dev = 2 * math.prod(cfg.lattice.size)
        sites = [(k, lc.sites or 60) for k, lc in enumerate(cfg.leads)
                 if lc.model == "tight-binding"]
        if sites and est.n_orbitals > 2 * n_dev:     # explicit lead sites dominate
            k, L = max(sites, key=lambda x: x[1])
            key, value = f"leads[{k}].sites", L
        raise MemoryLimitError(
            f"config key '{key}' = {value} is not allowed here: the "
            f"{size} junction (N_s = {est.n_orbitals}) needs about {fmt_bytes(need)} on this "
            f"node ({est.summary()}) but {fmt_bytes(avail)} is available; use a smaller "
            f"lattice, shorter leads, fewer poles or more nodes")
    return est
