"""Padé spectrum decomposition of the Fermi function (Eq. 7 of paper 004, operators/pade.py).

Independent answers: closed-form Padé approximants for N = 1, 2; Hu et al.'s product formula for
eta (numerator zeros instead of eigenvectors); the Taylor series of f (Padé order); the exact
sum rule sum_p eta_p = N(2N+1)/2; the Lorentzian-weighted occupation in closed form (digamma)
and by quadrature.  Rank-agnostic: pure NumPy/SciPy, identical on every rank.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from helpers import ROOT
from scipy.integrate import quad
from scipy.linalg import eigh_tridiagonal
from scipy.special import psi, zeta

from operators.pade import (
    PadePoles,
    choose_n_poles,
    fermi_exact,
    fermi_pade,
    pade_error,
    pade_poles,
)

BETA = 40.0  # T = 0.025, paper 004


def _f_eq7(eps, mu, beta, poles):
    """Eq. (7) literally, in complex arithmetic with chi^-+ (independent of fermi_pade)."""
    e = np.asarray(eps, dtype=complex)[..., None]
    s = poles.eta * (1 / (e - poles.chi(mu, beta, -1)) + 1 / (e - poles.chi(mu, beta, +1)))
    return 0.5 - s.sum(-1) / beta


def _hu_product(n):
    """xi, eta from Hu, Luo, Jiang, Xu & Yan, JCP 134, 244106 (2011): xi from the 2N x 2N matrix
    (b_m = 2m - 1), numerator zeros zeta from the (2N-1) x (2N-1) one (b_m = 2m + 1), and
    eta_j = (N (2N+1)/2) prod_k (zeta_k^2 - xi_j^2) / prod_{k != j} (xi_k^2 - xi_j^2)."""
    def roots(m, shift, count):
        b = 2.0 * np.arange(1, m + 1) - 1.0 + shift
        lam = eigh_tridiagonal(np.zeros(m), 1 / np.sqrt(b[:-1] * b[1:]), eigvals_only=True)
        return np.sort(2 / lam[::-1][:count])
    xi, zt = roots(2 * n, 0, n), roots(2 * n - 1, 2, n - 1)
    eta = np.empty(n)
    for j in range(n):
        other = np.delete(xi, j)            # N-1 zeros, N-1 other poles: ratios do not overflow
        eta[j] = 0.5 * n * (2 * n + 1) * np.prod((zt**2 - xi[j]**2) / (other**2 - xi[j]**2))
    return xi, eta


# ----------------------------------------------------------------------------- the poles
def test_n1_and_n2_closed_forms():
    # N = 1: tanh z ~ z/(1 + z^2/3)  ->  f = 1/2 - 3x/(x^2 + 12): xi = 2 sqrt(3), eta = 3/2.
    p1 = pade_poles(1)
    assert np.allclose(p1.xi, [2 * math.sqrt(3)], rtol=1e-15, atol=0)
    assert np.allclose(p1.eta, [1.5], rtol=1e-14, atol=0)
    # N = 2: tanh z ~ z (105 + 10 z^2)/(z^4 + 45 z^2 + 105) (Lambert's fraction, 4 levels).
    # Tolerance 1e-14: a few ulp of the O(1) terms.
    x = np.linspace(-60, 60, 2401)
    z = x / 2
    ref = 0.5 - 0.5 * z * (105 + 10 * z**2) / (z**4 + 45 * z**2 + 105)
    assert np.max(np.abs(fermi_pade(x, 0.0, 1.0, pade_poles(2)) - ref)) < 1e-14
    xi2 = np.sort(2 * np.sqrt((45 - np.array([-1, 1]) * math.sqrt(1605)) / 2))
    assert np.allclose(pade_poles(2).xi, xi2, rtol=1e-14, atol=0)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 30, 50, 100])
def test_eigenvectors_match_hu_product_formula(n):
    # Two routes to eta (eigenvector components vs numerator zeros); the product formula loses
    # ~N ulp per factor, measured agreement <= 1.2e-11 up to N = 100: tolerance 1e-10.
    xi, eta = _hu_product(n)
    p = pade_poles(n)
    assert np.allclose(p.xi, xi, rtol=1e-10, atol=0)
    assert np.allclose(p.eta, eta, rtol=1e-10, atol=0)


@pytest.mark.parametrize("n", [1, 2, 5, 10, 30, 50, 100])
def test_poles_positive_sorted_and_matsubara_like(n):
    p = pade_poles(n)
    assert p.n_poles == n and p.method == "psd"
    assert np.all(p.xi > 0) and np.all(np.diff(p.xi) > 0) and np.all(p.eta > 0)
    # Low poles reproduce Matsubara, xi_p = (2p-1) pi and eta_p = 1, to 1e-12 for the lowest
    # 13 of 30, 24 of 50, 51 of 100 (measured; 2 of 10): tested for the lowest N/5.
    k = n // 5
    if k:
        odd = (2 * np.arange(1, k + 1) - 1) * np.pi
        assert np.allclose(p.xi[:k], odd, rtol=1e-12, atol=0)
        assert np.allclose(p.eta[:k], 1.0, rtol=1e-12, atol=0)
    with pytest.raises(ValueError):
        p.xi[0] = 1.0                      # read-only: the cached poles are shared


@pytest.mark.parametrize("n", range(1, 9))
def test_taylor_moments_give_pade_order(n):
    # f = 1/2 - sum_p 2 eta_p x/(x^2+xi_p^2)
    #   = 1/2 - sum_m (-1)^(m-1) x^(2m-1) sum_p 2 eta_p/xi_p^2m;
    # exact f has sum_p 2/((2p-1)pi)^2m = 2 (1 - 2^-2m) zeta(2m)/pi^2m.  [N-1/N] Padé: exact for
    # m = 1..2N (orders x^1..x^(4N-1)); 1e-13 = ~100 ulp.  m = 2N+1 must differ (for N <= 3 the
    # difference is > 1e-7; for larger N it hides behind the dominant p = 1 term).
    p = pade_poles(n)
    m = np.arange(1, 2 * n + 2)
    got = np.array([np.sum(2 * p.eta / p.xi**(2 * k)) for k in m])
    exact = 2 * (1 - 2.0**(-2 * m)) * zeta(2 * m) / np.pi**(2 * m)
    assert np.allclose(got[:-1], exact[:-1], rtol=1e-13, atol=0)
    if n <= 3:
        assert abs(got[-1] / exact[-1] - 1) > 1e-7


def test_low_moments_at_paper_size():
    # N = 30: m = 1 weighs the far poles (eta_N / xi_N^2 ~ 1e-4 of 1/4); ~100 ulp: 1e-13.
    p = pade_poles(30)
    for k, c in ((1, 0.25), (2, 1 / 48), (3, 1 / 480)):
        assert abs(np.sum(2 * p.eta / p.xi**(2 * k)) / c - 1) < 1e-13


def test_matsubara_method():
    p = pade_poles(4, method="matsubara")
    assert p.method == "matsubara"
    assert np.allclose(p.xi, [np.pi, 3 * np.pi, 5 * np.pi, 7 * np.pi], rtol=1e-15, atol=0)
    assert np.array_equal(p.eta, np.ones(4))
    # the truncated series is far worse than PSD at equal N (measured 0.4 vs 1.3e-8 at N = 30)
    assert pade_error(30, BETA, 10.0, method="matsubara") > 1e-2 > 1e4 * pade_error(30, BETA, 10.0)


# ----------------------------------------------------------------------------- accuracy
def test_acceptance_n30_beta40():
    # Paper 004, App. A: N_P = 30 is sufficient at beta = 40.  Required: within 1e-7 of the exact
    # f for |eps| <= 10 (measured 1.29e-8, at the window edge).  Checked twice: pade_error, and
    # Eq. (7) evaluated literally with chi^-+ on a dense independent grid (step 2e-4 in eps).
    p = pade_poles(30)
    assert pade_error(30, BETA, 10.0) < 1e-7
    eps = np.linspace(-10, 10, 100001)
    f = 1 / (1 + np.exp(np.clip(BETA * eps, -700, 700)))
    assert np.max(np.abs(_f_eq7(eps, 0.0, BETA, p).real - f)) < 1e-7
    # fermi_pade agrees with the literal Eq. (7) to round-off (1e-14)
    assert np.max(np.abs(fermi_pade(eps, 0.0, BETA, p) - _f_eq7(eps, 0.0, BETA, p).real)) < 1e-14


def test_pade_error_is_the_grid_maximum_and_mu_independent():
    # pade_error refines the grid maximum: never below a dense sample (1e-12 relative slack).
    for n in (10, 20, 30):
        eps = np.linspace(-10, 10, 200001)
        e = eps + 0.3
        dense = np.max(np.abs(fermi_pade(e, 0.3, BETA, n) - fermi_exact(e, 0.3, BETA)))
        assert pade_error(n, BETA, 10.0) >= dense * (1 - 1e-12)
        assert pade_error(n, BETA, 10.0) <= dense * (1 + 1e-3)   # grid step 5e-5 in eps
    assert pade_error(20, BETA, (-10.0, 10.0)) == pade_error(20, BETA, 10.0)
    assert pade_error(20, BETA, (0.0, 10.0)) == pytest.approx(pade_error(20, BETA, 10.0), rel=1e-9)


def test_error_decreases_with_n_poles():
    # Strictly decreasing while above the round-off floor (~2e-14): N = 1..40 at beta = 40.
    errs = [pade_error(n, BETA, 10.0) for n in range(1, 41)]
    assert all(b < a for a, b in zip(errs, errs[1:]))
    assert errs[-1] < 1e-12


def test_choose_n_poles_is_minimal():
    for beta, window, tol in ((BETA, 10.0, 1e-7), (BETA, 2.0, 1e-10), (10.0, (-3.0, 5.0), 1e-4),
                              (1.0, 1.0, 0.4)):
        n = choose_n_poles(beta, window, tol)
        assert pade_error(n, beta, window) <= tol
        assert n == 1 or pade_error(n - 1, beta, window) > tol
    assert choose_n_poles(BETA, 10.0, 1e-7) == 29           # the paper's 30 is just above
    with pytest.raises(ValueError, match=r"beta=40.*n_max = 5"):
        choose_n_poles(BETA, 10.0, 1e-7, n_max=5)


# ------------------------------------------------------------------------ symmetry, asymptotics
def test_half_at_mu_and_particle_hole_symmetry():
    # The pole sum is odd in eps - mu: f(mu) = 1/2 exactly, f(mu + d) + f(mu - d) = 1 up to the
    # rounding of (mu + d) - mu (a few ulp of O(1) terms): 4e-15.
    p = pade_poles(30)
    for mu in (0.0, 0.37, -1.2):
        assert fermi_pade(mu, mu, BETA, p) == 0.5
        d = np.linspace(0, 50, 5001)
        assert np.max(np.abs(fermi_pade(mu + d, mu, BETA, p) + fermi_pade(mu - d, mu, BETA, p)
                             - 1)) < 4e-15


@pytest.mark.parametrize("n", [1, 5, 30, 100])
def test_large_energy_tail(n):
    # Derivation: with x = beta (eps - mu) >> xi_N,
    #   f_pade = 1/2 - (2/x) sum_p eta_p + O(x^-3) = 1/2 - (2/beta) sum_p eta_p / (eps - mu) + ...
    # so the finite pole sum does NOT cancel the offset at infinity: f_pade -> 1/2 on both sides
    # (it cannot make the steps to 1 and 0); the correct condition is the 1/(eps - mu) tail.
    # From the resolvent, sum_p eta_p = (L^-2)_11 / 2 = N (2N + 1)/2 exactly (L^-1 e_1 has
    # components sqrt(b_1 b_2k) on even sites).  Tolerances: sum rule 1e-12 (round-off of N
    # terms of size <= N^2); tail at x = 1e4 xi_N, where the O(x^-3) correction is ~ 1e-8.
    p = pade_poles(n)
    assert p.eta.sum() == pytest.approx(n * (2 * n + 1) / 2, rel=1e-12)
    mu = 0.2
    d = 1e4 * p.xi[-1] / BETA
    for sign in (1, -1):
        tail = sign * d * (0.5 - fermi_pade(mu + sign * d, mu, BETA, p))
        assert tail == pytest.approx(n * (2 * n + 1) / BETA, rel=1e-6)


def test_residue_theorem_lorentzian_occupation():
    # Occupation of a level eps0 = mu + d broadened by a Lorentzian of half-width g (the integral
    # that Eqs. (8)-(9) do by residues).  Closing the contour in the half-plane away from each
    # pole of Eq. (7): int L f_pade = 1/2 - (2/beta) sum_p eta_p Re[1/(d + i(g + xi_p/beta))].
    # Exact (Matsubara sum -> digamma): int L f = 1/2 + Im psi(1/2 + beta (g - i d)/(2 pi)) / pi.
    mu, g = 0.1, 0.05

    def lorentz(e, d):
        return (g / np.pi) / ((e - mu - d)**2 + g**2)

    def residues(p, d):
        return 0.5 - (2 / BETA) * np.sum(p.eta * np.real(1 / (d + 1j * (g + p.xi / BETA))))

    def exact(d):
        return 0.5 + np.imag(psi(0.5 + BETA * (g - 1j * d) / (2 * np.pi))) / np.pi

    def integral(fun, d):
        pts = sorted({mu, mu + d})
        parts = [(-np.inf, pts[0])] + list(zip(pts, pts[1:])) + [(pts[-1], np.inf)]
        return sum(quad(lambda e: fun(e) * lorentz(e, d), a, b, limit=400, epsabs=1e-13,
                        epsrel=1e-12)[0] for a, b in parts)

    p10 = pade_poles(10)
    for d in (-2.0, 0.7):
        # (i) the residue formula is Eq. (7) integrated (sign/half-plane conventions): 1e-9
        assert residues(p10, d) == pytest.approx(integral(
            lambda e: fermi_pade(e, mu, BETA, p10), d), abs=1e-9)
        # (ii) the digamma reference is the exact f integrated: 1e-9
        assert exact(d) == pytest.approx(integral(lambda e: fermi_exact(e, mu, BETA), d), abs=1e-9)
    # (iii) Padé error of this integral.  Outside |eps - mu| ~ xi_N/beta the pole sum returns to
    # 1/2 and the Lorentzian tails (~ g/eps^2) sample that; the odd error cancels between the two
    # tails except for a term ~ g d: Delta = (4 g d beta^2/pi) int_0^inf (f_pade - f) x^-3 dx.
    # Measured Delta / (g |d| (beta/xi_N)^2) = 0.1061-0.1101 ~ 1/(3 pi) for N >= 30, g = 0.05 and
    # 0.5, |d| <= 9 (1.5e-5 at N = 30, d = 9: far above the 1.3e-8 pointwise error of Eq. 7).
    # Test the law within [0.10, 0.12]; exactly 1/2 at d = 0 (symmetry); falls with N.
    prev = None
    for n in (30, 50, 80):
        p = pade_poles(n)
        ds = np.array([-9.0, -2.0, -0.3, 0.7, 3.0, 9.0])
        err = np.array([abs(residues(p, d) - exact(d)) for d in ds])
        ratio = err / (g * np.abs(ds) * (BETA / p.xi[-1])**2)
        assert np.all((ratio > 0.10) & (ratio < 0.12)), ratio
        assert abs(residues(p, 0.0) - 0.5) < 1e-15
        if prev is not None:
            assert np.all(err < prev)
        prev = err


# ------------------------------------------------------------------------ Fermi function, input
def test_fermi_exact_overflow_safe():
    with np.errstate(all="raise"):
        f = fermi_exact(np.array([-1e6, -50.0, 0.0, 50.0, 1e6]), 0.0, 1e4)
    assert np.array_equal(f, [1.0, 1.0, 0.5, 0.0, 0.0])
    e = np.linspace(-1, 1, 101)
    assert np.allclose(fermi_exact(e, 0.2, 3.0), 1 / (1 + np.exp(3.0 * (e - 0.2))), rtol=1e-14,
                       atol=0)
    assert isinstance(fermi_exact(0.1, 0.0, 2.0), float)
    # broadcasting over leads: mu of shape (2, 1) against eps of shape (5,)
    assert fermi_pade(np.zeros(5), np.array([[-0.5], [0.5]]), BETA, 30).shape == (2, 5)


@pytest.mark.parametrize("call, match", [
    (lambda: pade_poles(0), r"n_poles = 0 .*>= 1"),
    (lambda: pade_poles(2.5), r"n_poles = 2\.5 .*integer"),
    (lambda: pade_poles(True), r"n_poles = True"),
    (lambda: pade_poles(3, method="bose"), r"method = 'bose' .*'psd', 'matsubara'"),
    (lambda: fermi_pade(0.0, 0.0, 0.0, 10), r"beta = 0\.0 .*> 0"),
    (lambda: fermi_pade(0.0, 0.0, -1, 10), r"beta = -1 .*> 0"),
    (lambda: fermi_exact(0.0, 0.0, float("inf")), r"beta = inf .*finite"),
    (lambda: fermi_pade(0.0, 0.0, 40.0, 0), r"poles = 0 .*>= 1"),
    (lambda: fermi_pade(0.0, 0.0, 40.0, "x"), r"poles = 'x' .*PadePoles"),
    (lambda: fermi_pade(np.nan, 0.0, 40.0, 5), r"eps .*finite"),
    (lambda: fermi_pade(1j, 0.0, 40.0, 5), r"eps = 1j .*real"),
    (lambda: pade_error(10, 40.0, 0.0), r"window = 0\.0 .*W > 0"),
    (lambda: pade_error(10, 40.0, (2.0, 1.0)), r"window = \(2\.0, 1\.0\) .*lo < hi"),
    (lambda: choose_n_poles(40.0, 10.0, 1e-15), r"tol = 1e-15 .*1e-12"),
    (lambda: choose_n_poles(40.0, 10.0, 1e-7, n_max=0), r"n_max = 0"),
    (lambda: PadePoles(xi=[2.0, 1.0], eta=[1.0, 1.0]), r"ascending"),
    (lambda: pade_poles(3).chi(0.0, 40.0, sign=2), r"sign = 2"),
])
def test_bad_input_messages(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------- the figure script
@pytest.mark.skip_in_parallel
def test_fig15_script_writes_and_refuses_overwrite(tmp_path):
    script = os.path.join(ROOT, "scripts", "fig15_pade.py")
    cmd = [sys.executable, script, "--outdir", str(tmp_path)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    with h5py.File(tmp_path / "fig15.h5") as f:
        assert list(f["n_poles"][...]) == [10, 20, 30, 50]
        err = f["max_error_window"][...]
        assert err[2] < 1e-7 and np.all(np.diff(err) < 0)
    assert (tmp_path / "fig15.png").stat().st_size > 10_000
    mtime = os.path.getmtime(tmp_path / "fig15.h5")
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "--overwrite" in r.stderr
    assert os.path.getmtime(tmp_path / "fig15.h5") == mtime
