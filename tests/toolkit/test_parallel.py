"""toolkit.parallel helpers that the physics code relies on."""
from __future__ import annotations

import numpy as np

from toolkit.parallel import ring_outer


def test_ring_outer_equals_the_gathered_product(comm):
    """ring_outer gives the local rows of A B^dag for row-distributed A, B with uneven blocks
    (3, 5, 7, ... rows per rank), equal to the product of the whole matrices (1e-13; the same
    BLAS products, summed in another order)."""
    P, me = comm.getSize(), comm.getRank()
    counts = np.array([3 + 2 * r for r in range(P)])
    offs = np.concatenate([[0], np.cumsum(counts)])
    rng = np.random.default_rng(7)
    N, k = int(offs[-1]), 4
    A = rng.standard_normal((N, k)) + 1j * rng.standard_normal((N, k))
    B = rng.standard_normal((N, k)) + 1j * rng.standard_normal((N, k))
    rows = slice(int(offs[me]), int(offs[me + 1]))
    got = ring_outer(A[rows], B[rows], comm, counts)
    assert got.shape == (int(counts[me]), N)
    assert np.abs(got - (A @ B.conj().T)[rows]).max() < 1e-13


def test_node_cpus_and_blas_threads_restore_the_masks(comm):
    """node_cpus covers this rank's own cores; toolkit.blas.threads(n, cpus) runs its block
    with n BLAS threads on those cores and restores the count and every thread's mask (the
    dense stationary solve on rank 0 borrows its node's cores this way)."""
    import os

    from toolkit.blas import blas_threads, threads
    from toolkit.parallel import node_cpus

    cpus = node_cpus(comm)
    mine = os.sched_getaffinity(0)
    assert mine <= cpus
    before = blas_threads()
    with threads(2, cpus):
        if before is not None:
            assert blas_threads() == 2
        assert os.sched_getaffinity(0) == cpus
    assert blas_threads() == before and os.sched_getaffinity(0) == mine


def test_scatter_rows_and_reduce_scatter_rows_invert_gather_rows(comm):
    """scatter_rows(gather_rows(x)) = x; reduce_scatter_rows of every rank's (rank + 1) M gives
    the rows of (sum of rank + 1) M, exactly (small integers)."""
    import numpy as np

    from toolkit.parallel import gather_rows, reduce_scatter_rows, scatter_rows

    r, size = comm.getRank(), comm.getSize()
    nloc = 3 + r
    local = (np.arange(nloc * 4).reshape(nloc, 4) + 100 * r) * (1 + 1j)
    full = gather_rows(local, comm, root=0)
    assert np.array_equal(scatter_rows(full, comm, nloc), local)
    N = int(sum(3 + k for k in range(size)))
    M = np.arange(N * 5, dtype=float).reshape(N, 5) + 0j
    start = int(sum(3 + k for k in range(r)))
    got = reduce_scatter_rows((r + 1) * M, comm, nloc)
    assert np.array_equal(got, size * (size + 1) / 2 * M[start:start + nloc])
