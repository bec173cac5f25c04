"""MPI helpers: the library-owned communicator, site-aligned row distribution, reductions.

Physics code never imports mpi4py; it takes the communicator from the object it acts on and calls
the reductions here (the one place where mpi4py is touched).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import numpy as np

from . import _petscenv

_petscenv.init()
from petsc4py import PETSc  # noqa: E402

_COMM: PETSc.Comm | None = None


def get_comm(comm: PETSc.Comm | None = None) -> PETSc.Comm:
    """``comm`` or, when None, a library-owned duplicate of COMM_WORLD."""
    global _COMM
    if comm is not None:
        return comm
    if _COMM is None:
        _COMM = PETSc.COMM_WORLD.duplicate()
    return _COMM


def _mpi(comm: PETSc.Comm):
    return comm.tompi4py()


def allreduce(value, comm: PETSc.Comm, op: str = "sum"):
    """Sum (or max/min) of a scalar or NumPy array over ``comm``.  Collective."""
    if comm.getSize() == 1:
        return value
    from mpi4py import MPI

    ops = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}
    if np.isscalar(value):
        return _mpi(comm).allreduce(value, op=ops[op])
    arr = np.ascontiguousarray(value)
    out = np.empty_like(arr)
    _mpi(comm).Allreduce(arr, out, op=ops[op])
    return out


@overload
def gather_rows(local: np.ndarray, comm: PETSc.Comm, root: None) -> np.ndarray: ...


@overload
def gather_rows(local: np.ndarray, comm: PETSc.Comm, root: int = 0) -> np.ndarray | None: ...


def gather_rows(local: np.ndarray, comm: PETSc.Comm, root: int | None = 0) -> np.ndarray | None:
    """Concatenate per-rank row blocks (along axis 0) on ``root`` (all ranks if None).

    Numeric arrays of the same dtype and trailing shape on every rank go as MPI buffers
    (Gatherv/Allgatherv: no pickling, so a rank's block may exceed 2 GiB as long as it has
    fewer than 2^31 elements); anything else (object arrays, mixed shapes) is pickled."""
    if comm.getSize() == 1:
        return local
    mpi = _mpi(comm)
    arr = np.asarray(local)
    meta = (arr.dtype.str, arr.shape[1:], arr.shape[0] if arr.ndim else -1)
    metas = mpi.allgather(meta)
    numeric = (arr.dtype.kind in "biufc" and arr.ndim >= 1
               and all(m[0] == meta[0] and m[1] == meta[1] for m in metas))
    if not numeric:
        parts = mpi.gather(local, root=root) if root is not None else mpi.allgather(local)
        if parts is None:
            return None
        return np.concatenate(parts, axis=0)
    counts, displ = _one_message(
        _element_layout([m[2] for m in metas], int(np.prod(meta[1], dtype=np.int64))),
        "gather_rows")
    send = np.ascontiguousarray(arr)
    rows = int(sum(m[2] for m in metas))
    if root is None:
        out = np.empty((rows,) + tuple(meta[1]), dtype=arr.dtype)
        mpi.Allgatherv(send, [out, (counts, displ)])
        return out
    if comm.getRank() == root:
        out = np.empty((rows,) + tuple(meta[1]), dtype=arr.dtype)
        mpi.Gatherv(send, [out, (counts, displ)], root=root)
        return out
    mpi.Gatherv(send, None, root=root)
    return None


def bcast(obj, comm: PETSc.Comm, root: int = 0):
    if comm.getSize() == 1:
        return obj
    return _mpi(comm).bcast(obj, root=root)


def barrier(comm: PETSc.Comm) -> None:
    if comm.getSize() > 1:
        comm.barrier()


@dataclass(frozen=True)
class SiteDistribution:
    """Contiguous block of sites per rank; matrix rows 2*s0 .. 2*s1 follow the sites.

    Classical spins live on the rank that owns their site, so the s-d blocks, the spin density
    and the spin equations of motion are all local.
    """

    n_sites: int
    site_start: int
    site_stop: int
    spin_start: int
    spin_stop: int
    size: int
    rank: int
    site_ranges: tuple[tuple[int, int], ...]
    spin_ranges: tuple[tuple[int, int], ...]

    @classmethod
    def create(cls, n_sites: int, spin_sites: np.ndarray, comm: PETSc.Comm) -> "SiteDistribution":
        size, rank = comm.getSize(), comm.getRank()
        counts = [n_sites // size + (1 if r < n_sites % size else 0) for r in range(size)]
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(int)
        site_ranges = tuple((int(starts[r]), int(starts[r + 1])) for r in range(size))
        sp = np.searchsorted(spin_sites, starts)
        spin_ranges = tuple((int(sp[r]), int(sp[r + 1])) for r in range(size))
        site_start, site_stop = site_ranges[rank]
        spin_start, spin_stop = spin_ranges[rank]
        return cls(n_sites, site_start, site_stop, spin_start, spin_stop, size, rank, site_ranges,
                   spin_ranges)

    @property
    def n_local_sites(self) -> int:
        return self.site_stop - self.site_start

    @property
    def n_local_rows(self) -> int:
        return 2 * self.n_local_sites

    @property
    def row_start(self) -> int:
        return 2 * self.site_start

    @property
    def n_local_spins(self) -> int:
        return self.spin_stop - self.spin_start


class RowHermitianTranspose:
    """Local rows of X^dag from the local rows of a row-distributed square matrix X.

    ``Y[i, j] = conj(X[j, r0 + i])``: one Alltoallv of the (n_q x n_r) blocks.  (PETSc 3.18's
    MatHermitianTranspose of MPIDENSE conjugates its input in place and MAT_REUSE_MATRIX
    transposes are wrong, so qcspin does this exchange itself.)  Collective.
    """

    def __init__(self, row_ranges: list[tuple[int, int]], comm: PETSc.Comm) -> None:
        self.comm = comm
        self.mpi = _mpi(comm)
        self.ranges = row_ranges
        r = comm.getRank()
        self.n = np.array([b - a for a, b in row_ranges])
        me = self.n[r]
        counts = self.n * me  # what I send to / receive from each rank
        displ = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.send = np.empty(int(counts.sum()), complex)
        self.recv = np.empty(int(counts.sum()), complex)
        self.counts, self.displ = counts, displ

    def __call__(self, X: np.ndarray, out: np.ndarray) -> np.ndarray:
        from mpi4py import MPI

        me = X.shape[0]
        for q, (a, b) in enumerate(self.ranges):
            d, c = self.displ[q], self.counts[q]
            # block X[:, a:b] (me x n_q), stored so that the receiver reads it as (n_q x me)^T
            self.send[d:d + c].reshape(b - a, me)[...] = X[:, a:b].T
        self.mpi.Alltoallv([self.send, (self.counts, self.displ), MPI.C_DOUBLE_COMPLEX],
                           [self.recv, (self.counts, self.displ), MPI.C_DOUBLE_COMPLEX])
        for q, (a, b) in enumerate(self.ranges):
            d, c = self.displ[q], self.counts[q]
            # received: X_q[:, my rows] transposed -> (my rows x n_q) = X_q[:, r0:r1].T
            np.conjugate(self.recv[d:d + c].reshape(me, b - a), out=out[:, a:b])
        return out


def _element_layout(rows, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(elements per rank, displacements) of row blocks of ``width`` elements per row."""
    sizes = np.asarray(rows, dtype=np.int64) * width
    return sizes, np.concatenate([[0], np.cumsum(sizes)[:-1]])


def _one_message(layout: tuple[np.ndarray, np.ndarray], what: str
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``layout`` = (elements per rank, displacements), checked against the 2^31 - 1 entries
    one MPI message can count."""
    counts = layout[0]
    if counts.max(initial=0) >= 2**31:
        raise ValueError(f"{what}: a block of {int(counts.max())} elements is more than one "
                         f"MPI message can count (2^31 - 1)")
    return layout


def _row_layout(comm: PETSc.Comm, nloc: int, width: int, what: str
                ) -> tuple[np.ndarray, np.ndarray]:
    """(elements per rank, displacements) of every rank's ``nloc`` rows of ``width`` entries
    (:func:`_one_message`).  Collective."""
    return _one_message(_element_layout(_mpi(comm).allgather(nloc), width), what)


def scatter_rows(full: np.ndarray | None, comm: PETSc.Comm, nloc: int) -> np.ndarray:
    """Each rank's ``nloc`` rows of rank 0's complex (N, m) ``full`` (the inverse of
    :func:`gather_rows`; ``full`` is only read on rank 0; on one rank it is returned).
    Collective."""
    if comm.getSize() == 1:
        assert full is not None
        return full
    from mpi4py import MPI

    width = int(bcast(None if full is None else full.shape[1], comm))
    counts, displ = _row_layout(comm, nloc, width, "scatter_rows")
    out = np.empty((nloc, width), complex)
    send = None
    if comm.getRank() == 0:
        assert full is not None
        send = [np.ascontiguousarray(full, dtype=complex), (counts, displ),
                MPI.DOUBLE_COMPLEX]
    _mpi(comm).Scatterv(send, [out, MPI.DOUBLE_COMPLEX], root=0)
    return out


def reduce_scatter_rows(full: np.ndarray, comm: PETSc.Comm, nloc: int) -> np.ndarray:
    """Each rank's ``nloc`` rows of the sum over the ranks of their complex (N, m) ``full``
    (C order).  Collective."""
    if comm.getSize() == 1:
        return full
    from mpi4py import MPI

    counts, _ = _row_layout(comm, nloc, full.shape[1], "reduce_scatter_rows")
    out = np.empty((nloc, full.shape[1]), complex)
    _mpi(comm).Reduce_scatter([full, MPI.DOUBLE_COMPLEX], [out, MPI.DOUBLE_COMPLEX],
                              recvcounts=counts.tolist(), op=MPI.SUM)
    return out


def allgather_rows(local: np.ndarray, comm: PETSc.Comm, counts: np.ndarray,
                   out: np.ndarray) -> np.ndarray:
    """Row blocks (n_r x m, complex) of every rank concatenated on every rank into ``out``
    (sum n_r x m, C order).  ``counts`` = rows per rank.  Collective."""
    if comm.getSize() == 1:
        out[...] = local
        return out
    from mpi4py import MPI

    sizes, displ = _element_layout(counts, local.shape[1])
    _mpi(comm).Allgatherv(np.ascontiguousarray(local),
                          [out, (sizes, displ), MPI.C_DOUBLE_COMPLEX])
    return out


def ring_outer(A: np.ndarray, B: np.ndarray, comm: PETSc.Comm, counts: np.ndarray
               ) -> np.ndarray:
    """Local rows of A B^dag (n_loc x sum n_r) for row-distributed A and B (n_r x k on rank r,
    ``counts`` = n_r): the blocks of B travel once around a ring of the ranks (Sendrecv), so no
    rank holds more than two of them (memory per rank ~2 N k / P instead of the N k of an
    all-gather; the same bytes on the wire).  Collective."""
    counts = np.asarray(counts, dtype=np.int64)
    offs = np.concatenate([[0], np.cumsum(counts)])
    out = np.empty((A.shape[0], int(offs[-1])), dtype=np.result_type(A, B))
    P, me = comm.getSize(), comm.getRank()
    if P == 1:
        np.matmul(A, B.conj().T, out=out)
        return out
    from mpi4py import MPI

    mpi = _mpi(comm)
    k = B.shape[1]
    cap = int(counts.max()) * k
    cur = np.empty(cap, complex)
    nxt = np.empty(cap, complex)
    cur[:B.size] = np.ascontiguousarray(B, dtype=complex).ravel()
    for s in range(P):
        q = (me + s) % P                          # whose block is in ``cur``
        blk = cur[:int(counts[q]) * k].reshape(int(counts[q]), k)
        out[:, offs[q]:offs[q + 1]] = A @ blk.conj().T
        if s == P - 1:
            break
        q_next = (me + s + 1) % P
        mpi.Sendrecv([cur[:int(counts[q]) * k], MPI.C_DOUBLE_COMPLEX], dest=(me - 1) % P,
                     recvbuf=[nxt[:int(counts[q_next]) * k], MPI.C_DOUBLE_COMPLEX],
                     source=(me + 1) % P)
        cur, nxt = nxt, cur
    return out


def gather_rows_to(local: np.ndarray, comm: PETSc.Comm, counts: np.ndarray,
                   out: np.ndarray, owners) -> np.ndarray | None:
    """Row blocks (n_r x m, complex) of every rank concatenated into ``out`` on the ranks in
    ``owners`` only (one Gatherv per owner: the ranks that need the whole matrix, e.g. those
    holding a lead's interface rows); returns ``out`` there, None elsewhere.  ``owners`` must
    be the same on every rank.  Collective."""
    if comm.getSize() == 1:
        out[...] = local
        return out
    from mpi4py import MPI

    sizes, displ = _element_layout(counts, local.shape[1])
    mpi = _mpi(comm)
    send = np.ascontiguousarray(local)
    me = comm.getRank()
    for root in owners:
        mpi.Gatherv(send, [out, (sizes, displ), MPI.C_DOUBLE_COMPLEX] if me == root else None,
                    root=int(root))
    return out if me in owners else None


def ranks_where(flag: bool, comm: PETSc.Comm) -> tuple[int, ...]:
    """The ranks of ``comm`` on which ``flag`` is true (the same tuple on every rank).
    Collective."""
    if comm.getSize() == 1:
        return (0,) if flag else ()
    flags = _mpi(comm).allgather(bool(flag))
    return tuple(r for r, f in enumerate(flags) if f)


def round_robin(n_tasks: int, comm) -> np.ndarray:
    """Task indices of this rank of ``comm``: rank, rank + size, ... (the default distribution
    of independent tasks: sweep points, energies, J_sd values)."""
    return np.arange(comm.getRank(), n_tasks, comm.getSize())


def snake(n_tasks: int, comm) -> np.ndarray:
    """Boustrophedon distribution 0, 1, .., size-1, size-1, .., 0, 0, ..: each rank gets
    neighbours of both parities (round robin on 2 ranks gives one rank all even tasks)."""
    rank, size = comm.getRank(), comm.getSize()
    i = np.arange(n_tasks)
    slot = np.where((i // size) % 2 == 0, i % size, size - 1 - i % size)
    return i[slot == rank]


def split_comm(comm: PETSc.Comm, group_size: int) -> tuple[PETSc.Comm, int, int]:
    """Split ``comm`` into consecutive groups of ``group_size`` ranks (the last may be smaller).
    Returns (the group's communicator, group index, number of groups).  Collective."""
    size, rank = comm.getSize(), comm.getRank()
    if group_size < 1:
        raise ValueError(f"group_size = {group_size} is not allowed: expected >= 1")
    n_groups = -(-size // group_size)
    color = rank // group_size
    if size == 1:
        return comm, 0, 1
    sub = _mpi(comm).Split(color, rank)
    return PETSc.Comm(sub), color, n_groups


def ranks_on_node(comm: PETSc.Comm) -> int:
    """How many ranks of ``comm`` share this rank's node (memory estimates).  Collective."""
    if comm.getSize() == 1:
        return 1
    from mpi4py import MPI

    node = _mpi(comm).Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return node.Get_size()
    finally:
        node.Free()


def idle_until_root_done(comm: PETSc.Comm, poll: float = 0.02) -> None:
    """Wait for rank 0, which calls this when it is done, without occupying a core: a
    non-blocking barrier tested every ``poll`` seconds (a blocking MPI call busy-polls and
    would take the core that rank 0's BLAS threads use).  Collective."""
    if comm.getSize() == 1:
        return
    import time

    req = _mpi(comm).Ibarrier()
    if comm.getRank() == 0:
        req.Wait()
        return
    while not req.Test():
        time.sleep(poll)


def node_cpus(comm: PETSc.Comm) -> set[int]:
    """The cores the ranks of ``comm`` on this rank's node may run on (the union of their
    affinity masks; Linux).  Collective."""
    import os

    mine = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()
    if comm.getSize() == 1:
        return mine
    from mpi4py import MPI

    node = _mpi(comm).Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return set().union(*node.allgather(mine))
    finally:
        node.Free()


def on_root(fn, comm: PETSc.Comm, errors: tuple[type[BaseException], ...],
            idle: bool = False):
    """``fn()`` on rank 0 (None elsewhere); an exception of ``errors`` raised there is raised
    again, with the same message, on every rank.  ``idle``: the other ranks wait without
    occupying their cores (:func:`idle_until_root_done`; for an ``fn`` that uses them through
    threads).  Collective: no rank is left waiting."""
    out, err = None, None
    kind: type[BaseException] | None = None
    if comm.getRank() == 0:
        try:
            out = fn()
        except errors as exc:
            err, kind = str(exc), type(exc)
    if idle:
        idle_until_root_done(comm)
    err = first_message(err, comm)
    if err:
        kind = bcast(kind, comm)
        assert kind is not None  # only rank 0 sets err, and then it also sets kind
        raise kind(err)
    return out


def first_message(msg: str | None, comm: PETSc.Comm) -> str | None:
    """The first non-empty ``msg`` of any rank (by rank), on every rank; None if none.
    Collective: lets all ranks raise the same error when only some of them found it."""
    if comm.getSize() == 1:
        return msg
    msgs = _mpi(comm).allgather(msg)
    return next((m for m in msgs if m), None)


class RowHalo:
    """The rows of a row-distributed, column-major block that a banded operator on the local
    rows reaches on the neighbouring ranks: the last ``below`` rows of the rank before and the
    first ``above`` rows of the rank after (none beyond the ends).  ``row_ranges``: (start,
    stop) of every rank's rows.  :attr:`usable` is False (on every rank) if a neighbour holds
    fewer rows than that (the halo would span several ranks).  The buffers are kept per column
    count and reused.  Collective (:meth:`exchange`)."""

    def __init__(self, comm: PETSc.Comm, row_ranges, below: int, above: int) -> None:
        self.comm = comm
        r, size = comm.getRank(), comm.getSize()
        n = [b - a for a, b in row_ranges]
        self.usable = all(n[k] >= below for k in range(size - 1)) and \
            all(n[k] >= above for k in range(1, size))
        self.n_below = below if r > 0 else 0            # rows received from rank r - 1
        self.n_above = above if r < size - 1 else 0     # rows received from rank r + 1
        self.n_down = above if r > 0 else 0             # my first rows, sent to rank r - 1
        self.n_up = below if r < size - 1 else 0        # my last rows, sent to rank r + 1
        self._buf: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    def _buffers(self, ncol: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if ncol not in self._buf:
            self._buf[ncol] = tuple(np.zeros((h, ncol), complex, order="F") for h in (
                self.n_below, self.n_above, self.n_down, self.n_up))  # type: ignore[assignment]
        return self._buf[ncol]

    def bytes_per_exchange(self, ncol: int) -> int:
        """Bytes this rank receives in one :meth:`exchange` of ``ncol`` columns."""
        return 16 * (self.n_below + self.n_above) * ncol

    def exchange(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows below, rows above) of the Fortran-ordered complex local block ``x``
        (n_local, ncol) from the neighbouring ranks (buffers reused by the next exchange of
        as many columns).  Collective."""
        from mpi4py import MPI

        mpi = _mpi(self.comm)
        r = self.comm.getRank()
        lo, hi, down, up = self._buffers(x.shape[1])
        t = MPI.C_DOUBLE_COMPLEX
        reqs = []
        if self.n_below:
            reqs.append(mpi.Irecv([lo, t], source=r - 1, tag=71))
        if self.n_above:
            reqs.append(mpi.Irecv([hi, t], source=r + 1, tag=72))
        if self.n_down:
            np.copyto(down, x[:self.n_down])
            reqs.append(mpi.Isend([down, t], dest=r - 1, tag=72))
        if self.n_up:
            np.copyto(up, x[x.shape[0] - self.n_up:])
            reqs.append(mpi.Isend([up, t], dest=r + 1, tag=71))
        MPI.Request.Waitall(reqs)
        return lo, hi
