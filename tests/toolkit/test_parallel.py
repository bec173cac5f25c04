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
