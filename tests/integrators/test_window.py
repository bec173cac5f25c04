"""The biased stationary state by the bias-window quadrature (integrators/window.py) against the
dense Sylvester solve (integrators/stationary.py), and as a fixed point of the equations."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from helpers import rhs_norm
from seed_valve import valve
from test_open import open_valve

from integrators import Simulation
from integrators import stationary as st
from integrators.assembly import build_simulation
from integrators.window import TOL
from operators.quadrature import gauss_kronrod
from toolkit.config import ConfigError, config_from_dict
from toolkit.parallel import allreduce


def test_gauss_kronrod_rule_is_exact_to_its_degrees():
    """The (7, 15) constants: Kronrod exact for x^k, k <= 22, Gauss for k <= 13 (1e-15), the
    Gauss nodes are Legendre's 7 and the Gauss weights vanish at the other 8 nodes."""
    x, wk, wg = gauss_kronrod()
    assert np.all(np.diff(x) > 0)
    for k in range(23):
        exact = 0.0 if k % 2 else 2.0 / (k + 1)
        assert abs(wk @ x**k - exact) < 1e-15, k
        if k <= 13:
            assert abs(wg @ x**k - exact) < 1e-15, k
    assert abs(wk @ x**24 - 2 / 25) > 1e-10         # not exact beyond: the check can fail
    xg, _ = np.polynomial.legendre.leggauss(7)
    assert np.allclose(x[wg != 0], xg, atol=1e-15, rtol=0)
    assert np.count_nonzero(wg) == 7


def _biased(size, protocol, V, n_poles, comm):
    b = open_valve(size=size, protocol=protocol, V=V, n_poles=n_poles)
    b._doc["bias"]["t_on"] = -1.0                  # the bias is on before t = 0
    return build_simulation(b.finalized(), comm)


@pytest.mark.parametrize("size,protocol,V,n_poles", [
    ((6,), "asymmetric", 0.4, 30),      # one biased lead
    ((6,), "symmetric", 0.8, 20),       # both leads biased (two channels), 20 poles
    ((5, 2), "asymmetric", 0.5, 30),
    ((4, 2, 2), "symmetric", 1.0, 30)])
def test_window_equals_dense_sylvester(comm, size, protocol, V, n_poles):
    """Both solve the same fixed point: equal to 1e-11 (measured 1e-15; the quadrature's own
    estimate is held to 1e-10 and overestimates by 1e2-1e4).  The Padé tail beyond the
    spectrum (~1e-5 here) is included: without it they would differ by that much."""
    asm = _biased(size, protocol, V, n_poles, comm)
    mu = asm.mu_of_t.initial
    dense, bd = st.stationary_state(asm.H, asm.problem, asm.poles, mu, method="dense")
    win, bw = st.stationary_state(asm.H, asm.problem, asm.poles, mu, method="window")
    info = st.last_window[0]
    assert info.error <= TOL
    assert info.tail_weight > 1e-7                 # the tail was there to be integrated
    assert allreduce(float(np.abs(win - dense).max()), comm, "max") < 1e-11
    for k in bd:
        assert np.array_equal(bd[k], bw[k])       # the Pi blocks: the same solves
    asm.H.destroy()


def test_window_with_distributed_mumps_equals_dense(comm, monkeypatch):
    """The path of large systems (N_s > REPLICATED_MAX_N: one MUMPS factorisation over all
    ranks, the columns all-gathered): the same state as the dense solve (1e-11)."""
    monkeypatch.setattr(st, "REPLICATED_MAX_N", 0)
    asm = _biased((5, 2), "symmetric", 0.6, 20, comm)
    mu = asm.mu_of_t.initial
    dense, _ = st.stationary_state(asm.H, asm.problem, asm.poles, mu, method="dense")
    win, _ = st.stationary_state(asm.H, asm.problem, asm.poles, mu, method="window")
    assert allreduce(float(np.abs(win - dense).max()), comm, "max") < 1e-11
    asm.H.destroy()


def test_energy_split_equals_row_updates(comm, monkeypatch):
    """Under MPI the energies are split over the ranks (integrators.window.SPLIT_MAX_N); with
    SPLIT_MAX_N = 0 every rank solves every energy and updates its rows.  Both accept the same
    panels (the acceptance test is local to a panel) and so give the same rho up to the order
    of the sums (1e-13); the solve count is the same.  On one rank both are the serial path."""
    import integrators.window as wmod

    asm = _biased((4, 2, 2), "asymmetric", 0.7, 30, comm)
    mu = asm.mu_of_t.initial
    split, _ = st.stationary_state(asm.H, asm.problem, asm.poles, mu, method="window")
    a = st.last_window[0]
    monkeypatch.setattr(wmod, "SPLIT_MAX_N", 0)
    rows, _ = st.stationary_state(asm.H, asm.problem, asm.poles, mu, method="window")
    b = st.last_window[0]
    assert allreduce(float(np.abs(split - rows).max()), comm, "max") < 1e-13
    assert a.edges == sorted(b.edges) and a.energies == b.energies and a.panels == b.panels
    assert a.tail_columns == b.tail_columns
    asm.H.destroy()


def test_window_start_is_a_fixed_point_with_explicit_leads_and_a_bound_state(comm):
    """Paper 000's seed valve with extended leads (absorbers: wide-band couplings on the
    explicit lead sites) and its bound state below the band: the window start equals the
    dense one (1e-11) and d/dt of the whole state vanishes there (< 1e-10, as the dense
    start's test in test_extended.py)."""
    d = valve(L=20, n_poles=30, t_on=-1.0)
    states = {}
    for method in ("dense", "window"):
        dm = copy.deepcopy(d)
        dm["electrons"]["stationary"] = method
        sim = Simulation(config_from_dict(dm), comm)
        try:
            if method == "window":
                assert rhs_norm(sim, 0.0) < 1e-10
            states[method] = sim.state(root=None)[0]
        finally:
            sim.destroy()
    assert np.abs(states["window"] - states["dense"]).max() < 1e-11


def test_stationary_method_and_pole_sum_eigensolver_are_checked():
    d = valve(L=4, n_poles=10)
    d["electrons"]["stationary"] = "sylvester"
    with pytest.raises(ConfigError, match="electrons.stationary"):
        config_from_dict(d)
    d = valve(L=4, n_poles=10)
    d["electrons"] = {"initial": "ground", "eigensolver": "poles"}
    with pytest.raises(ConfigError, match="electrons.eigensolver.*initial = 'fermi'"):
        config_from_dict(d)
    with pytest.raises(ValueError, match="stationary method"):
        st.stationary_state(None, None, None, method="eigen")   # type: ignore[arg-type]


def test_mumps_workspace_is_set_on_the_factor_not_left_in_the_options(comm):
    """ICNTL(14) = MUMPS_WORKSPACE on the factor matrix; a user's -<prefix>mat_mumps_icntl_14
    wins; no key is left in PETSc's global options database (it would leak into every later
    solver and into the checks that nothing of a run stays there)."""
    from petsc4py import PETSc

    asm = _biased((6,), "asymmetric", 0.4, 30, comm)
    A0 = st.effective_matrix(asm.H, asm.problem)
    opts = PETSc.Options()
    before = dict(opts.getAll())
    try:
        with st._Solver(A0, "tw_ws_") as s:
            s._factor(-1.0 + 0.0j)
            F = s.ksp.getPC().getFactorMatrix()
            assert F.getMumpsIcntl(14) == st.MUMPS_WORKSPACE
        assert dict(opts.getAll()) == before
        opts.setValue("tw_ws2_mat_mumps_icntl_14", 55)
        with st._Solver(A0, "tw_ws2_") as s:
            s._factor(-1.0 + 0.0j)
            assert s.ksp.getPC().getFactorMatrix().getMumpsIcntl(14) == 55
    finally:
        opts.delValue("tw_ws2_mat_mumps_icntl_14")
        A0.destroy()
