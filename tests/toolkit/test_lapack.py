"""toolkit.lapack.trsyl (LAPACK's blocked ZTRSYL3 through ctypes) against SciPy's unblocked
ztrsyl and against the residual of the equation."""
import numpy as np
import pytest
import scipy.linalg as sla

from toolkit.lapack import has_trsyl3, trsyl


def _triangular(n, rng, shift):
    T = np.triu(rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))) / np.sqrt(n)
    T[np.diag_indices(n)] = rng.standard_normal(n) + 1j * shift * (1 + rng.random(n))
    return T


@pytest.mark.parametrize("m,n", [(1, 1), (7, 3), (150, 130), (260, 260)])
def test_trsyl_solves_the_triangular_sylvester_equation(m, n):
    """A X - X B^dag = C, Im spec(A) < 0 < Im spec(B^dag): relative residual < 1e-13 (the
    condition number is O(1) here, round-off is ~1e-15 x size); blocked equals unblocked to
    1e-12.  (150, 130) and (260, 260) span several ZTRSYL3 blocks."""
    rng = np.random.default_rng(m + n)
    A, B = _triangular(m, rng, -0.5), _triangular(n, rng, -0.3)
    C = rng.standard_normal((m, n)) + 1j * rng.standard_normal((m, n))
    X = trsyl(A, B, C)
    res = np.abs(A @ X - X @ B.conj().T - C).max() / np.abs(C).max()
    assert res < 1e-13, res
    Xu = trsyl(A, B, C, blocked=False)
    assert np.abs(X - Xu).max() < 1e-12 * np.abs(X).max()


def test_bookworms_lapack_has_the_blocked_solver():
    """Debian bookworm's LAPACK 3.11 / OpenBLAS 0.3.21 export ztrsyl3_: without it the dense
    stationary solve is ~10x slower (it would still be right)."""
    assert has_trsyl3()


def test_trsyl_with_a_schur_form_solves_the_full_equation():
    """The use in integrators/stationary.py: Heff = Z T Z^dag, T Y - Y T^dag = Z^dag C Z."""
    rng = np.random.default_rng(3)
    n = 200
    H = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    Heff = (H + H.conj().T) / (2 * np.sqrt(n)) - 0.05j * np.eye(n)
    Heff[np.diag_indices(20)] -= 0.4j
    C = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    T, Z = sla.schur(Heff, output="complex")
    X = Z @ trsyl(T, T, Z.conj().T @ C @ Z) @ Z.conj().T
    res = np.abs(Heff @ X - X @ Heff.conj().T - C).max() / np.abs(X).max()
    assert res < 1e-12, res         # (|Heff| ~ 2: round-off ~1e-15 x n relative to |X|)
