"""Macrospin model, fit, RKKY reference and the J_eff sweep (paper 004, Eqs. 19-21, App. C).

Rank-agnostic: the pure-NumPy tests run redundantly on every rank; the simulations either run on
``PETSc.COMM_SELF`` (identical on every rank) or are collective (the sweep, the CLI).
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

import toolkit  # noqa: F401
from analysis.jeff import jeff_point, jeff_static, jeff_sweep, read_sweep
from analysis.jeff_cli import parse_sweep
from analysis.macrospin import (
    fit_macrospin,
    fit_rkky_prefactor,
    guess_omega,
    integrate_macrospin,
    jeff_from_omega,
    macrospin_solution,
    omega_from_jeff,
    rkky_reference,
)
from integrators import Simulation
from toolkit import DeviceBuilder
from toolkit.config import ConfigError
from toolkit.io import FileExistsErrorQC
from toolkit.parallel import bcast, round_robin, snake

from petsc4py import PETSc


# ----------------------------------------------------------------------------- Eq. 21 vs Eq. 20
@pytest.mark.parametrize("J_eff", [0.3, -0.2])
@pytest.mark.parametrize("N_S", [1, 5])
def test_eq21_solves_eq20(J_eff, N_S):
    """Eq. (21) with omega = -sqrt2 N_S J_eff equals DOP853 on Eq. (20).

    Tolerance 1e-8 N_S: the integrator runs at rtol 1e-11 over ~3 periods, so its own error is
    ~1e-10; the opposite sense of rotation (the paper's printed omega = +sqrt2 N_S J_eff) is off by
    O(1), which the second assertion pins down.
    """
    t = np.linspace(0.0, 3 * 2 * math.pi / (math.sqrt(2) * N_S * abs(J_eff)), 601)
    num = integrate_macrospin(t, J_eff, (N_S, 0, 0), (0, 0, N_S))
    w = omega_from_jeff(J_eff, N_S)
    assert np.max(np.abs(macrospin_solution(t, w, N_S) - num)) < 1e-8 * N_S
    assert np.max(np.abs(macrospin_solution(t, -w, N_S) - num)) > 0.5 * N_S
    assert jeff_from_omega(w, N_S) == pytest.approx(J_eff, rel=1e-15)


def test_eq21_initial_state_and_invariants():
    """M_l(0) = N_S x, M_r(0) = N_S z, |M| = N_S and M_l + M_r conserved (to rounding, 1e-12)."""
    N_S, t = 5, np.linspace(0, 40, 81)
    M = macrospin_solution(t, 0.37, N_S, phi=0.0)
    assert np.allclose(M[0], [[N_S, 0, 0], [0, 0, N_S]], atol=1e-12)
    assert np.allclose(np.linalg.norm(M, axis=2), N_S, atol=1e-12)
    assert np.allclose(M.sum(axis=1), [N_S, 0, N_S], atol=1e-12)


# ----------------------------------------------------------------------------- the fit
def _synthetic(omega, phi, N_S=5, periods=3.0, n=1500, noise=0.01, seed=1):
    t = np.linspace(0, periods * 2 * math.pi / abs(omega), n)
    M = macrospin_solution(t, omega, N_S, phi)
    M = M + noise * N_S * np.random.default_rng(seed).standard_normal(M.shape)
    return t, M[:, 0], M[:, 1]


@pytest.mark.parametrize("omega", [-0.013, 0.0021])
def test_fit_recovers_omega_and_phase(omega):
    """Gaussian noise of 1 % of N_S on 6 x 1500 samples over 3 periods: the least-squares errors
    are ~1e-5 relative in omega and ~1e-3 rad in phi; tolerances 1e-3 and 1e-2 leave margin."""
    N_S, phi = 5, 0.3
    t, Ml, Mr = _synthetic(omega, phi, N_S)
    f = fit_macrospin(t, Ml, Mr, N_S, fit_phase=True)
    assert f.omega == pytest.approx(omega, rel=1e-3)
    assert f.phi == pytest.approx(phi, abs=1e-2)
    assert f.J_eff == pytest.approx(-omega / (math.sqrt(2) * N_S), rel=1e-3)
    assert f.valid, f.reason
    assert f.rms == pytest.approx(0.01, rel=0.1)  # the noise level, in N_S units
    assert np.sign(f.J_eff) == -np.sign(omega)


def test_fit_long_record_and_short_record():
    """Many periods (multimodal misfit in omega) and a fraction of a period (no FFT possible):
    the angle-slope guess lands in the right basin in both; 1e-4 relative with 0.2 % noise."""
    N_S, omega = 3, -0.05
    t, Ml, Mr = _synthetic(omega, 0.0, N_S, periods=25, n=6000, noise=0.002)
    assert fit_macrospin(t, Ml, Mr, N_S).omega == pytest.approx(omega, rel=1e-4)
    t, Ml, Mr = _synthetic(omega, 0.0, N_S, periods=0.3, n=300, noise=0.002)
    f = fit_macrospin(t, Ml, Mr, N_S)
    assert f.omega == pytest.approx(omega, rel=1e-3) and f.valid
    f = fit_macrospin(t, Ml, Mr, N_S, min_periods=0.5)
    assert not f.valid and "periods" in f.reason


def test_fit_flags_non_macrospin_signals():
    """Signals that are not Eq. (21) are rejected with a reason."""
    N_S, t = 5, np.linspace(0, 2000, 2001)
    # (a) precession about z instead of about M = (1, 0, 1): rms ~ 0.5 N_S
    w = 0.01
    Ml = N_S * np.stack([np.cos(w * t), np.sin(w * t), 0 * t], axis=1)
    Mr = N_S * np.stack([0 * t, 0 * t, np.ones_like(t)], axis=1)
    f = fit_macrospin(t, Ml, Mr, N_S)
    assert not f.valid and "rms" in f.reason
    # (b) the right cone but layers that lose 20 % of their length (no rigid macrospin)
    M = macrospin_solution(t, -0.01, N_S)
    shrink = (1 - 0.2 * t / t[-1])[:, None]
    f = fit_macrospin(t, M[:, 0] * shrink, M[:, 1] * shrink, N_S)
    assert not f.valid and "|M|/N_S" in f.reason
    # (c) two incommensurate precessions of equal weight
    M2 = macrospin_solution(t, 0.0173, N_S)
    f = fit_macrospin(t, 0.5 * (M[:, 0] + M2[:, 0]), 0.5 * (M[:, 1] + M2[:, 1]), N_S)
    assert not f.valid


def test_fft_fallback_for_heavy_noise():
    """Noise of 40 % of N_S breaks the angle unwrapping (slope off by ~30 %); the FFT peak over
    10 periods (resolution 2 pi / (8 T) -> ~1e-3 relative with zero padding) rescues the guess,
    the fit then lands within 1e-3 and the result is flagged invalid by its rms (~0.4)."""
    N_S, omega = 3, -0.05
    t, Ml, Mr = _synthetic(omega, 0.0, N_S, periods=10, n=4000, noise=0.4, seed=0)
    assert guess_omega(t, Ml, Mr)[0] == pytest.approx(omega, rel=1e-2)
    f = fit_macrospin(t, Ml, Mr, N_S)
    assert f.omega == pytest.approx(omega, rel=1e-3)
    assert not f.valid and "rms" in f.reason


def test_guess_omega_sign_and_value():
    """The angle slope is exact for noise-free data (1e-10) and carries the sense of rotation."""
    t = np.linspace(0, 300, 301)
    for w in (0.02, -0.02):
        M = macrospin_solution(t, w, 2, 0.1)
        wg, phg = guess_omega(t, M[:, 0], M[:, 1])
        assert wg == pytest.approx(w, rel=1e-10) and phg == pytest.approx(0.1, abs=1e-10)


# ----------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("J_ex", [-0.2, 0.3])
def test_direct_exchange_pair_is_a_macrospin(J_ex):
    """Two one-site layers coupled only by direct exchange H_C = J_ex S_1.S_2 (J_sd = 0) follow
    Eq. (21) with J_eff = -J_ex (H_MS = -J_eff M_l.M_r), both signs.

    Tolerance 1e-6: RK 3/8 (fourth order) at dt = 0.05 over ~1.6 periods has a global error
    ~ (|omega| dt)^4 |omega| t ~ 1e-7 for |omega| <= 0.43; the wrong sign of J_eff is off by O(1).
    """
    b = DeviceBuilder(size=(2,))
    b.add_layer("A", (0, 1), J_sd=0.0, spin=(1, 0, 0))
    b.add_layer("B", (1, 2), J_sd=0.0, spin=(0, 0, 1))
    b.add_exchange("A", "B", J_ex)
    b.set("time", dt=0.05)
    sim = Simulation(b.finalized(), PETSc.COMM_SELF)
    ts, M = [], []
    try:
        for _ in range(101):
            obs = sim.observables(root=None)
            ts.append(float(obs["time"]))
            M.append(obs["layer_magnetization"].copy())
            sim.step(10)
    finally:
        sim.destroy()
    t, M = np.array(ts), np.array(M)
    exact = macrospin_solution(t, omega_from_jeff(-J_ex, 1), 1)
    assert np.max(np.abs(M - exact)) < 1e-6
    f = fit_macrospin(t, M[:, 0], M[:, 1], 1)
    assert f.J_eff == pytest.approx(-J_ex, rel=1e-6)
    assert f.valid and f.rms < 1e-6


def test_electron_mediated_sign_matches_static_estimate():
    """Weak J_sd, N_S = 1: the fitted J_eff has the sign of the bipartite-lattice rule (spins at
    distance N_NM + 1: odd -> antiferro, even -> ferro), of the RKKY shape and of the adiabatic
    ground-state estimate (jeff_static).  Sizes: within 5 % for N_NM = 2 (closed shell; found
    0.7 %), within 40 % for N_NM = 3 (odd chain, Fermi level degenerate at J_sd = 0, so the static
    estimate is not adiabatic; found 31 %)."""
    for N_NM, sign, rel in ((2, -1, 0.05), (3, 1, 0.4)):
        p = jeff_point(J_sd=0.5, N_NM=N_NM, N_S=1, t_end=250.0, comm=PETSc.COMM_SELF)
        static = jeff_static(J_sd=0.5, N_NM=N_NM, N_S=1)
        assert np.sign(p.J_eff) == sign == np.sign(static) == np.sign(rkky_reference(N_NM, 0.5))
        assert p.J_eff == pytest.approx(static, rel=rel)
        assert p.fit.valid, p.fit.reason


def test_jeff_point_automatic_run_length():
    """Without t_end the run covers the requested periods (within one sample) or stops at t_cap
    with a warning that is also kept in the result."""
    p = jeff_point(J_sd=1.0, N_NM=2, N_S=1, n_periods=1.0, comm=PETSc.COMM_SELF)
    assert 0.95 < p.fit.n_periods < 1.2 and not p.capped
    with pytest.warns(RuntimeWarning, match="t_cap"):
        q = jeff_point(J_sd=1.0, N_NM=2, N_S=1, n_periods=3.0, t_cap=60.0, comm=PETSc.COMM_SELF)
    assert q.capped and q.t_end == pytest.approx(60.0) and "t_cap" in q.notes


def test_jeff_sweep_distributed(comm, mpi_tmp_path):
    """Two points over the ranks (round robin, COMM_SELF each): the gathered table is the same on
    every rank, equals each rank's own recomputation of its points exactly, and the file holds it.
    An existing file is refused on every rank."""
    path = os.path.join(mpi_tmp_path, "sweep.h5")
    kw = dict(N_S=1, N_NM=2, t_end=30.0)
    s = jeff_sweep("J_sd", [0.8, 1.6], path=path, comm=comm, **kw)
    tab = s.table()
    ref = bcast(tab, comm)
    for k in ("value", "J_eff", "omega", "rms", "valid"):
        assert np.array_equal(tab[k], ref[k])
    for i in round_robin(2, comm):
        p = jeff_point(J_sd=s.values[i], comm=PETSc.COMM_SELF, **kw)
        assert p.fit.J_eff == tab["J_eff"][i] and p.fit.rms == tab["rms"][i]
    disk = read_sweep(path)
    assert np.array_equal(disk["J_eff"], tab["J_eff"]) and disk["attrs"]["param"] == "J_sd"
    assert disk["attrs"]["N_S"] == 1 and disk["attrs"]["N_NM"] == 2
    with pytest.raises(FileExistsErrorQC):
        jeff_sweep("J_sd", [0.8], path=path, comm=comm, **kw)


def test_jeff_sweep_failure_is_collective(comm):
    """A point that fails on one rank raises on every rank (no deadlock in the gather); a bad
    first value fails before any run."""
    with pytest.raises(RuntimeError, match="N_NM = -1"):
        jeff_sweep("N_NM", [2, -1], comm=comm, N_S=1, J_sd=1.0, t_end=2.0)
    with pytest.raises(ConfigError):
        jeff_sweep("N_NM", [-1, 2], comm=comm, N_S=1, J_sd=1.0, t_end=2.0)
    with pytest.raises(ConfigError):
        jeff_sweep("K", [1.0], comm=comm)


def test_cli_jeff(comm, mpi_tmp_path):
    """``qcspin jeff`` runs collectively, writes the table and returns 0; bad sweeps give 2."""
    from toolkit.cli import main

    out = os.path.join(mpi_tmp_path, "cli.h5")
    rc = main(["jeff", "--sweep", "N_NM=2,3", "--n-spins", "1", "--J-sd", "0.5",
               "--t-end", "20", "-o", out])
    assert rc == 0 and os.path.exists(out)
    tab = read_sweep(out)
    assert list(tab["value"]) == [2, 3] and np.sign(tab["J_eff"]).tolist() == [-1, 1]
    assert main(["jeff", "--sweep", "K=1:2:1"]) == 2


def test_parse_sweep():
    assert parse_sweep("J_sd=0.5:6:0.5")[1] == [0.5 * k for k in range(1, 13)]
    assert parse_sweep("N_NM=2:30:1")[1] == list(range(2, 31))
    assert parse_sweep("J_sd=1,3.3,5") == ("J_sd", [1.0, 3.3, 5.0])
    for bad in ("J_sd", "N_NM=1.5:3:1", "J_sd=3:1:1", "B=1:2:1"):
        with pytest.raises(ConfigError):
            parse_sweep(bad)


# ----------------------------------------------------------------------------- RKKY
def test_rkky_reference_properties():
    """Sign (-1)^(N_NM + 1) (odd spacer ferro), |f| -> 1/(pi N_NM) (asymptotics of Si: relative
    error < 2/(pi N)^2 < 1 % for N >= 5), J_sd^2 scaling, and the prefactor fit (exact data ->
    1e-12)."""
    n = np.arange(1, 41)
    f = rkky_reference(n, 1.0)
    assert np.array_equal(np.sign(f), (-1.0) ** (n + 1))
    assert np.allclose(np.abs(f[4:]) * np.pi * n[4:], 1.0, rtol=1e-2)
    assert rkky_reference(7, 3.0) == pytest.approx(9 * rkky_reference(7, 1.0), rel=1e-14)
    J = rkky_reference(n, 2.0, prefactor=0.37)
    assert fit_rkky_prefactor(n, J, 2.0) == pytest.approx(0.37, rel=1e-12)


def test_rkky_normalisation_single_spins():
    """Prefactor 1 is the weak-coupling limit of one spin at each end of an open half-filled
    chain with an even spacer: static second-order coupling / shape = 0.97 at N_NM = 100 (tol
    5 %), J_sd^2 scaling to 1 %; an odd spacer is first order in J_sd (ratio 2 when J_sd
    doubles, tol 5 %) and not RKKY."""
    a, b = (jeff_static(J_sd=j, N_NM=100, N_S=1) for j in (0.05, 0.1))
    assert a / rkky_reference(100, 0.05) == pytest.approx(1.0, abs=0.05)
    assert b / a == pytest.approx(4.0, rel=0.01)
    c, d = (jeff_static(J_sd=j, N_NM=11, N_S=1) for j in (0.05, 0.1))
    assert d / c == pytest.approx(2.0, rel=0.05) and c > 0


@pytest.mark.parametrize("size", [1, 2, 3])
def test_distributions_cover_every_task_once(size):
    class Comm:      # the rank and size of a communicator
        def __init__(self, rank, size):
            self.getRank, self.getSize = (lambda: rank), (lambda: size)
    for dist in (round_robin, snake):
        got = sorted(int(i) for r in range(size) for i in dist(11, Comm(r, size)))
        assert got == list(range(11))
    assert snake(8, Comm(0, 2)).tolist() == [0, 3, 4, 7]
    assert snake(8, Comm(1, 2)).tolist() == [1, 2, 5, 6]
