"""Dense stationary solve under a bias: the Sylvester equation Heff X - X Heff^dag = C.

Prints, for each N, the time of integrators.stationary._sylvester (one Schur form + LAPACK's
blocked ZTRSYL3 + four products) beside the previous method in the same run (scipy's
solve_sylvester: three Schur forms and the unblocked ZTRSYL), and the relative residual.
Heff is a 3D tight-binding valve's (sites on a simple-cubic grid, spin-split by J_sd along
random moments, wide-band leads of Gamma = 1 eV on both x faces): the spectrum and the
broadening of the real use.

    python scripts/bench_sylvester.py --sizes 6x4x4 10x6x6 --baseline-max 1000
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

import toolkit  # noqa: F401  (the environment)
from integrators.stationary import BOUND_RATE, _sylvester
from toolkit.blas import blas_threads


def heff(Lx: int, Ly: int, Lz: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ns = Lx * Ly * Lz
    idx = np.arange(ns).reshape(Lx, Ly, Lz)
    rows, cols = [], []
    for ax in range(3):
        a = np.take(idx, range(idx.shape[ax] - 1), axis=ax).ravel()
        b = np.take(idx, range(1, idx.shape[ax]), axis=ax).ravel()
        rows += [a, b]
        cols += [b, a]
    r, c = np.concatenate(rows), np.concatenate(cols)
    hop = sp.coo_matrix((-np.ones(len(r)), (r, c)), shape=(ns, ns)).toarray()
    m = rng.standard_normal((ns, 3))
    m /= np.linalg.norm(m, axis=1)[:, None]
    sx = np.array([[0, 1], [1, 0]], complex)
    sy = np.array([[0, -1j], [1j, 0]])
    sz = np.diag([1.0 + 0j, -1.0])
    H = np.kron(hop, np.eye(2)).astype(complex)
    for i in range(ns):
        H[2 * i:2 * i + 2, 2 * i:2 * i + 2] -= 0.5 * (m[i, 0] * sx + m[i, 1] * sy + m[i, 2] * sz)
    gamma = np.zeros(2 * ns)
    faces = np.concatenate([idx[0].ravel(), idx[-1].ravel()])
    gamma[np.concatenate([2 * faces, 2 * faces + 1])] = 1.0
    Heff = H - 0.5j * np.diag(gamma)
    k = 2 * len(faces)                       # a bias-window source of the interface's rank
    B = rng.standard_normal((2 * ns, k)) + 1j * rng.standard_normal((2 * ns, k))
    C = -1j * (B @ B.conj().T) / k
    return Heff, C


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["6x4x4", "10x5x5", "10x6x6"])
    ap.add_argument("--baseline-max", type=int, default=1000,
                    help="run scipy's solve_sylvester up to this N (default 1000)")
    a = ap.parse_args()
    print(f"OpenBLAS threads: {blas_threads()}")
    print(f"{'size':>9} {'N':>6} {'new [s]':>9} {'resid':>8} {'scipy [s]':>10} {'resid':>8}"
          f" {'speed-up':>8}")
    for s in a.sizes:
        Lx, Ly, Lz = (int(v) for v in s.split("x"))
        A, C = heff(Lx, Ly, Lz)
        N = len(A)
        scale = np.abs(C).max()
        t = time.perf_counter()
        X = _sylvester(A, C, BOUND_RATE)
        tn = time.perf_counter() - t
        rn = np.abs(A @ X - X @ A.conj().T - C).max() / scale
        line = f"{s:>9} {N:>6} {tn:9.2f} {rn:8.1e}"
        if N <= a.baseline_max:
            t = time.perf_counter()
            Y = sla.solve_sylvester(A, -A.conj().T, C)
            to = time.perf_counter() - t
            ro = np.abs(A @ Y - Y @ A.conj().T - C).max() / scale
            line += f" {to:10.2f} {ro:8.1e} {to / tn:8.1f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
