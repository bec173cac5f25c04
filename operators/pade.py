"""Padé spectrum decomposition (PSD) of the Fermi function, Eq. (7) of paper 004.

The wide-band leads of the open spin valve (Eqs. 4-9) need the Fermi function of each lead as a
finite sum of simple poles,

    f(eps) ~= 1/2 - (1/beta) sum_{p=1}^{N_p} eta_p [1/(eps - chi_p^-) + 1/(eps - chi_p^+)],
    chi_p^(+/-) = mu +/- i xi_p / beta,                                             (Eq. 7)

i.e. with x = beta (eps - mu),  f = 1/2 - sum_p 2 eta_p x / (x^2 + xi_p^2).  The Matsubara series
is the exact infinite sum with xi_p = (2p - 1) pi, eta_p = 1; it converges slowly.  Here the
truncation is the [N-1/N] Padé spectrum decomposition of Hu, Xu & Yan, J. Chem. Phys. 133,
101106 (2010) (Ref. [80] of paper 004): of their [N-1/N], [N/N], [N+1/N] schemes the one of
highest order at x = 0 for a given N (the others spend parameters on the large-x limit).

Derivation (what :func:`pade_poles` computes).  f(x) = 1/2 - tanh(z)/2 with z = x/2, and Lambert's
continued fraction  tanh z = z/(b_1 + z^2/(b_2 + z^2/(b_3 + ...))),  b_m = 2m - 1.  Truncated
after M = 2N levels it is the [2N-1/2N] Padé approximant of tanh in z, i.e.
f ~= 1/2 - x P_{N-1}(x^2)/Q_N(x^2): the [N-1/N] PSD, exact through order x^{4N-1} of the Taylor
series of f (2N "moments", tested).  An equivalence transformation turns the truncated fraction
into a resolvent,

    tanh z ~= (1/b_1) e_1^T (1/z - i L)^{-1} e_1,   L = real symmetric tridiagonal (M x M),
    L_mm = 0,  L_{m,m+1} = 1/sqrt(b_m b_{m+1}),

so with L v_k = lambda_k v_k (the spectrum is +/- symmetric, partners share v_{1k}^2) each pair
+/- lambda_k > 0 gives one pole pair of Eq. (7):

    xi_k = 2 / lambda_k,        eta_k = v_{1k}^2 xi_k^2 / 4    (b_1 = 1).

These equal Hu et al.'s determinant/product formulas (J. Chem. Phys. 134, 244106 (2011));
tests/operators/test_pade.py checks both.  For p << N, xi_p -> (2p-1) pi and eta_p -> 1 (the
Matsubara values, to 1e-12 for the lowest ~40% of the poles at N >= 30); the last pole sits far out
(xi_N ~= 2.6 N^2) with a large weight (eta_N ~= 0.8 N^2), standing in for the Matsubara tail.

Large |eps|: f_pade(eps) = 1/2 - (2/beta) (sum_p eta_p) / (eps - mu) + O((eps - mu)^-3), with
sum_p eta_p = (L^{-2})_{11}/2 = N (2N + 1)/2 exactly.  A finite pole sum therefore returns to the
offset 1/2 on both sides (it cannot produce the steps to 0 and 1 at infinity); the approximation
holds only well inside |eps - mu| < xi_N / beta (N = 30, beta = 40: error 1.3e-8 at |eps| = 10,
xi_N / beta = 58), which is what :func:`pade_error` measures.  Integrals over all energies see the
far region: the occupation of a Lorentzian level (half-width g, at mu + d) from Eq. (7) by
residues is off by ~ g |d| (beta/xi_N)^2 / (3 pi) (1.5e-5 for N = 30, beta = 40, g = 0.05, d = 9;
tested), not by the pointwise error.

Only NumPy/SciPy; no MPI, every rank may call everything (the poles are identical on all ranks).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import eigh_tridiagonal
from scipy.optimize import minimize_scalar

from .fermi import fermi

__all__ = ["PadePoles", "pade_poles", "fermi_pade", "fermi_exact", "pade_error",
           "choose_n_poles", "METHODS", "N_POLES_MAX", "TOL_FLOOR"]

METHODS = ("psd", "matsubara")
N_POLES_MAX = 200      # default cap of choose_n_poles (N_p = 30 suffices at beta = 40, paper 004)
TOL_FLOOR = 1e-12      # round-off of the pole sum is ~1e-14..1e-13 for N_p <= 200
_GRID_STEP = 0.1       # grid step in x = beta (eps - mu) for pade_error (error varies on >~ 1)
_CHUNK = 1 << 15       # grid points evaluated at once (memory ~ _CHUNK x N_p doubles)


@dataclass(frozen=True, eq=False)
class PadePoles:
    """Poles and weights of Eq. (7): xi_p > 0 ascending, eta_p real (read-only arrays).

    ``method`` is 'psd' ([N-1/N] Padé spectrum decomposition) or 'matsubara' (truncated exact
    series).  The poles of lead ell are chi_p^(+/-) = mu_ell +/- i xi_p / beta (:meth:`chi`).
    """

    xi: np.ndarray
    eta: np.ndarray
    method: str = "psd"

    def __post_init__(self):
        xi = np.array(self.xi, dtype=float, ndmin=1)
        eta = np.array(self.eta, dtype=float, ndmin=1)
        if xi.ndim != 1 or xi.shape != eta.shape or xi.size == 0:
            raise ValueError(f"PadePoles: xi (shape {xi.shape}) and eta (shape {eta.shape}) must "
                             f"be non-empty 1D arrays of equal length")
        if not (np.all(np.isfinite(xi)) and np.all(np.isfinite(eta))
                and np.all(xi > 0) and np.all(np.diff(xi) > 0)):
            raise ValueError(f"PadePoles: xi = {xi} is not allowed: need finite xi_p > 0 in "
                             f"strictly ascending order and finite eta_p")
        for name, arr in (("xi", xi), ("eta", eta)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def n_poles(self) -> int:
        return int(self.xi.size)

    def chi(self, mu: float, beta: float, sign: int = +1) -> np.ndarray:
        """The poles chi_p^(sign) = mu + sign i xi_p / beta of Eq. (7) (sign = +1 or -1)."""
        if sign not in (1, -1):
            raise ValueError(f"sign = {sign!r} is not allowed: use +1 (chi^+) or -1 (chi^-)")
        return float(mu) + sign * 1j * self.xi / _check_beta(beta)


# ----------------------------------------------------------------------------- validation
def _check_n_poles(n_poles, name: str = "n_poles") -> int:
    if isinstance(n_poles, (bool, np.bool_)) or not isinstance(n_poles, (int, np.integer)):
        raise ValueError(f"{name} = {n_poles!r} is not allowed: need an integer >= 1")
    if n_poles < 1:
        raise ValueError(f"{name} = {n_poles} is not allowed: need an integer >= 1")
    return int(n_poles)


def _check_beta(beta) -> float:
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise ValueError(f"beta = {beta!r} is not allowed: need a finite number > 0 "
                         f"(inverse temperature 1/T)") from None
    if not (math.isfinite(b) and b > 0):
        raise ValueError(f"beta = {beta!r} is not allowed: need a finite number > 0 "
                         f"(inverse temperature 1/T)")
    return b


def _check_window(window) -> tuple[float, float]:
    """window: W > 0 (|eps - mu| <= W) or (lo, hi) with lo < hi, energies relative to mu."""
    msg = (f"window = {window!r} is not allowed: need a half-width W > 0 (|eps - mu| <= W) or a "
           f"pair (lo, hi) of finite energies relative to mu with lo < hi")
    try:
        w = np.asarray(window, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(msg) from None
    if w.shape == () and math.isfinite(w) and w > 0:
        return -float(w), float(w)
    if w.shape == (2,) and np.all(np.isfinite(w)) and w[0] < w[1]:
        return float(w[0]), float(w[1])
    raise ValueError(msg)


def _as_poles(poles) -> PadePoles:
    if isinstance(poles, PadePoles):
        return poles
    if isinstance(poles, (int, np.integer)) and not isinstance(poles, (bool, np.bool_)):
        return pade_poles(_check_n_poles(poles, "poles"))
    raise ValueError(f"poles = {poles!r} is not allowed: need a PadePoles (from pade_poles) or "
                     f"a number of poles >= 1")


def _real_array(name: str, value) -> np.ndarray:
    arr = np.asarray(value)
    if np.iscomplexobj(arr) or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} = {value!r} is not allowed: need real numbers")
    return arr.astype(float, copy=False)


# ----------------------------------------------------------------------------- poles
@functools.lru_cache(maxsize=64)
def _psd(n: int) -> PadePoles:
    m = 2 * n
    b = 2.0 * np.arange(1, m + 1) - 1.0                       # b_m = 2m - 1
    lam, vec = eigh_tridiagonal(np.zeros(m), 1.0 / np.sqrt(b[:-1] * b[1:]))
    lam, v1 = lam[n:][::-1], vec[0, n:][::-1]                 # the n positive ones, descending
    if not np.all(lam > 0):
        raise RuntimeError(f"PSD matrix for n_poles = {n} has non-positive eigenvalues {lam}")
    xi = 2.0 / lam
    return PadePoles(xi=xi, eta=v1**2 * xi**2 / 4.0, method="psd")


@functools.lru_cache(maxsize=64)
def _matsubara(n: int) -> PadePoles:
    return PadePoles(xi=(2.0 * np.arange(1, n + 1) - 1.0) * np.pi, eta=np.ones(n),
                     method="matsubara")


def pade_poles(n_poles: int, method: str = "psd") -> PadePoles:
    """The N_p = ``n_poles`` pole pairs of Eq. (7).

    method 'psd': [N-1/N] Padé spectrum decomposition (Hu, Xu & Yan 2010): xi_k = 2/lambda_k and
    eta_k = v_{1k}^2 xi_k^2/4 from the positive eigenpairs of the 2N x 2N zero-diagonal
    tridiagonal matrix L_{m,m+1} = 1/sqrt((2m-1)(2m+1)) (module docstring), via
    ``scipy.linalg.eigh_tridiagonal``.  Exact through order x^{4N-1} at x = beta(eps - mu) = 0.
    method 'matsubara': xi_p = (2p-1) pi, eta_p = 1 (the truncated exact series; reference only).
    The result is cached and immutable.
    """
    n = _check_n_poles(n_poles)
    if method not in METHODS:
        raise ValueError(f"method = {method!r} is not allowed: choose one of {METHODS}")
    return _psd(n) if method == "psd" else _matsubara(n)


# ----------------------------------------------------------------------------- Fermi functions
def fermi_exact(eps, mu, beta):
    """f(eps) = 1/(1 + exp(beta (eps - mu))), overflow-safe; broadcasts.  The checked front of
    :func:`operators.fermi.fermi` (beta finite > 0, real eps and mu; a float for scalars)."""
    beta = _check_beta(beta)
    out = fermi(_real_array("eps", eps), _real_array("mu", mu), beta=beta)
    return float(out) if np.ndim(out) == 0 else out


def _pole_sum(x: np.ndarray, poles: PadePoles) -> np.ndarray:
    """sum_p 2 eta_p x / (x^2 + xi_p^2) for an array x (finite)."""
    xc = x[..., None]
    with np.errstate(over="ignore"):                          # |x| > 1e154: term -> 0, correct
        return (xc / (xc * xc + poles.xi**2)) @ (2.0 * poles.eta)


def fermi_pade(eps, mu, beta, poles):
    """Eq. (7): 1/2 - sum_p 2 eta_p x/(x^2 + xi_p^2), x = beta (eps - mu); broadcasts eps and mu.

    ``poles`` is a :class:`PadePoles` or a number of poles (then the PSD poles).  eps and mu must
    be finite reals.  Returns a float array of the broadcast shape (a float for scalar input).
    """
    beta = _check_beta(beta)
    poles = _as_poles(poles)
    e, m = _real_array("eps", eps), _real_array("mu", mu)
    for name, arr in (("eps", e), ("mu", m)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains non-finite values: need finite real energies")
    x = beta * (e - m)
    out = 0.5 - _pole_sum(np.asarray(x, dtype=float), poles)
    return float(out) if np.ndim(out) == 0 else out


# ----------------------------------------------------------------------------- accuracy
def _abs_err_x(x, poles: PadePoles):
    x = np.asarray(x, dtype=float)
    return np.abs(0.5 - _pole_sum(x, poles) - fermi(x, beta=1.0))     # beta x = x exactly


def _max_error_x(lo: float, hi: float, poles: PadePoles) -> float:
    """max_{x in [lo, hi]} |f_pade - f| on a grid of step <= _GRID_STEP, refined locally."""
    n = max(int(math.ceil((hi - lo) / _GRID_STEP)) + 1, 3)
    best, x_best = -1.0, lo
    for start in range(0, n, _CHUNK):
        x = lo + (hi - lo) * np.arange(start, min(start + _CHUNK, n)) / (n - 1)
        err = _abs_err_x(x, poles)
        k = int(np.argmax(err))
        if err[k] > best:
            best, x_best = float(err[k]), float(x[k])
    h = (hi - lo) / (n - 1)
    a, b = max(lo, x_best - h), min(hi, x_best + h)
    res = minimize_scalar(lambda t: -float(_abs_err_x(t, poles)), bounds=(a, b),
                          method="bounded", options={"xatol": 1e-10 * max(1.0, abs(x_best))})
    return max(best, -float(res.fun))


def pade_error(n_poles, beta, window, method: str = "psd") -> float:
    """max |f_pade(eps) - f(eps)| over the energy window (relative to mu; independent of mu).

    ``window``: half-width W > 0 (|eps - mu| <= W) or a pair (lo, hi).  Evaluated on a grid of
    step 0.1 in x = beta (eps - mu) (both curves vary on scales >~ 1 in x) and refined around the
    largest value by a bounded scalar search.  Cost ~ N_p beta (hi - lo) / 0.1 flops.
    ``n_poles`` may also be a :class:`PadePoles` (then ``method`` is ignored).
    """
    beta = _check_beta(beta)
    lo, hi = _check_window(window)
    poles = n_poles if isinstance(n_poles, PadePoles) else pade_poles(n_poles, method)
    return _max_error_x(beta * lo, beta * hi, poles)


def choose_n_poles(beta, window, tol, n_max: int = N_POLES_MAX) -> int:
    """Smallest N_p with ``pade_error(N_p, beta, window) <= tol`` (PSD poles).

    Doubling followed by bisection: the PSD error falls monotonically with N_p down to its
    round-off floor (checked for N_p <= 60 at beta = 40, |eps| <= 10), hence ``tol`` must be
    >= TOL_FLOOR = 1e-12.  Raises ValueError naming beta, window, tol and n_max when N_p = n_max
    does not reach tol.
    """
    beta = _check_beta(beta)
    _check_window(window)
    n_max = _check_n_poles(n_max, "n_max")
    try:
        tol_f = float(tol)
    except (TypeError, ValueError):
        tol_f = float("nan")
    if not (math.isfinite(tol_f) and TOL_FLOOR <= tol_f < 0.5):
        raise ValueError(f"tol = {tol!r} is not allowed: need {TOL_FLOOR:g} <= tol < 0.5 (the "
                         f"pole sum has a round-off floor of ~1e-13; |f_pade - f| <= 1/2 always)")

    def ok(n: int) -> bool:
        return pade_error(n, beta, window) <= tol_f

    lo, hi = 0, 1                                  # invariant: ok(hi) unknown, lo fails (or 0)
    while not ok(hi):
        if hi == n_max:
            err = pade_error(n_max, beta, window)
            raise ValueError(
                f"choose_n_poles(beta={beta!r}, window={window!r}, tol={tol!r}): not reached with "
                f"n_max = {n_max} poles (error {err:.3g}); raise n_max, loosen tol or narrow the "
                f"window")
        lo, hi = hi, min(2 * hi, n_max)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi
