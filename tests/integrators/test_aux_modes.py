"""Tight-binding leads as auxiliary modes in qcspin run (integrators/aux_rhs.py), serially and
under mpirun -n 2: against the dense NumPy reference of the same equations
(operators.lorentzian.AuxiliaryModes, itself tested against the pseudomode model), against an
exact closed-chain evolution, and the data-safety paths (checkpoints with small components)."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_restart_is_exact, record_lead_currents, rhs_norm
from seed_valve import EF, T300, _closed_chain_currents, valve

from integrators import Simulation
from toolkit.config import ConfigError, config_from_dict


def _aux(rep="modes", **kw):
    d = valve(**kw)
    for lead in d["leads"]:
        lead["representation"] = rep
    d["electrons"]["initial"] = "partitioned"
    return d


def _reference(sim):
    """The NumPy reference built from the same leads, H and initial state."""
    am = sim.rhs.dense_reference()
    return am, am.partitioned(sim.state(root=None)[0])


def test_run_equals_the_numpy_reference(comm):
    """qcspin's distributed right-hand side (PETSc RK4, no stiff split) and the dense NumPy
    reference integrated with the same classic RK4: the same trajectory to round-off (1e-13;
    measured 8e-17 serially and on 2 ranks) through a 0.25 V step of the left lead at t = 0,
    with the lead currents; with the default exponential integrator the difference is its
    time-step error (4th order: 1.4e-8 at dt = 0.02 and 8.7e-6 at dt = 0.1 against a
    dt = 0.005 reference)."""
    d = _aux(L=10, n_poles=10, dt=0.02)
    d["solver"] = {"stiff": "none", "ts_type": "rk", "rk_type": "4"}
    sim = Simulation(config_from_dict(d), comm)
    try:
        am, s = _reference(sim)

        def V(t):
            return np.array([0.25, 0.0])

        for k in range(4):
            sim.step(25, record=False)
            s = am.evolve(s, 0.02, 25, V, t0=0.5 * k)
            assert np.abs(sim.state(root=None)[0] - s[0]).max() < 1e-13
            I = sim.observables(root=None)["lead_current"]
            assert np.allclose(I, am.currents(s), rtol=0, atol=1e-13)
        assert abs(I[0]) > 1e-3
    finally:
        sim.destroy()
    errs = []
    for dt in (0.02, 0.1):
        d = _aux(L=10, n_poles=10, dt=dt)
        sim = Simulation(config_from_dict(d), comm)
        try:
            am, s = _reference(sim)
            sim.step(int(round(2.0 / dt)), record=False)
            s = am.evolve(s, 0.005, 400, lambda t: np.array([0.25, 0.0]))
            errs.append(np.abs(sim.state(root=None)[0] - s[0]).max())
        finally:
            sim.destroy()
    assert errs[0] < 1e-7 and errs[1] < 5e-5 and errs[1] > 100 * errs[0], errs


def test_modes_follow_the_closed_chain(comm):
    """Paper 000's seed valve, partitioned start, leads as the damped-chain modes (the extended
    reservoir's exact self-energy with L = 40, N_p = 20, dt = 0.1): the currents into the
    valve follow the exact evolution with 300-site closed leads to 2e-5 up to t = 30 (the
    extended reservoir itself: 2.4e-5), with 109k instead of 594k unknowns."""
    times = np.arange(0, 30.0001, 0.5)
    ref, _ = _closed_chain_currents(times, partitioned=True)
    d = _aux(L=40, t_end=30.0)
    d["bias"] = {}
    sim = Simulation(config_from_dict(d), comm)
    try:
        assert sim.layout.n_global < 120_000
        cur = record_lead_currents(sim, len(times) - 1)
    finally:
        sim.destroy()
    err = np.abs(cur - ref).max()
    assert err < 3e-5, err


def test_lorentzian_fit_representation_runs(comm):
    """representation = 'lorentzian' (positive Lorentzians fitted to the exact self-energy):
    the same equations with the fitted poles, equal to the NumPy reference (1e-13), and the
    fit error is stored with the representation."""
    d = _aux("lorentzian", L=10, n_poles=10, dt=0.02,
             lead_keys={"lorentzians": 20, "lorentzian_width": 1.0})
    d["solver"] = {"stiff": "none", "ts_type": "rk", "rk_type": "4"}
    sim = Simulation(config_from_dict(d), comm)
    try:
        am, s = _reference(sim)
        sim.step(25, record=False)
        s = am.evolve(s, 0.02, 25, lambda t: np.array([0.25, 0.0]))
        assert np.abs(sim.state(root=None)[0] - s[0]).max() < 1e-13
        attrs = sim.problem.describe()[0]
        assert attrs["representation"] == "lorentzian" and attrs["gamma_error"] > 0
    finally:
        sim.destroy()


def test_restart_with_small_components(comm, mpi_tmp_path):
    """A run with auxiliary modes checkpoints its row-distributed and small (rank-0)
    components by name and restarts bitwise, serially and on 2 ranks."""
    d = _aux(L=6, n_poles=8, t_end=1.0)
    out, ref = assert_restart_is_exact(config_from_dict(d), comm, mpi_tmp_path, "aux.h5")
    sim = Simulation.from_checkpoint(out, comm=comm)
    assert np.array_equal(sim.state(root=None)[0], ref)
    sim.destroy()


def test_equilibrium_start(comm):
    """With auxiliary modes the default start is the equilibrium (every lead at E_F, no bias
    before t = 0): an exact fixed point of the equations (|F| < 1e-12; measured 2e-15), no
    current, and for 'modes' the same device density as the extended reservoir's equilibrium
    (the same self-energy: 1e-12, measured 4e-16); a bias step at t = 0 then drives a current
    that approaches the Landauer value of the representation."""
    d = _aux(L=20, n_poles=20, t_on=0.0, t_end=2.0)
    d["electrons"]["initial"] = "auto"
    sim = Simulation(config_from_dict(d), comm)
    ext = Simulation(config_from_dict(valve(L=20, n_poles=20, t_on=0.0)), comm)
    try:
        assert rhs_norm(sim, -1.0) < 1e-12          # before the bias
        rho = sim.state(root=None)[0]
        r2 = ext.state(root=None)[0]
        o = 2 * ext.extension.offset
        assert np.abs(rho - r2[o:o + 16, o:o + 16]).max() < 1e-12
        o1, o2 = sim.observables(root=None), ext.observables(root=None)
        assert np.abs(o1["lead_current"]).max() < 1e-12
        # the device's observables agree (energy: Tr(H_DD rho_DD), without the lead bonds)
        for key in ("energy/electronic", "electron_number", "spin_density"):
            assert np.allclose(o1[key], o2[key], rtol=0, atol=1e-11), key
        sim.step(20, record=False)
        assert sim.observables(root=None)["lead_current"][0] > 0.01
    finally:
        sim.destroy()
        ext.destroy()


def test_biased_stationary_state(comm):
    """The stationary state under a bias already on before t = 0 (0.25 V on the left,
    'modes' L = 20): closed forms plus bias-window integrals, a fixed point of the equations
    to the quadrature accuracy (1e-9; measured 8e-11), with the Landauer current of the
    representation's self-energy at both leads (1e-8)."""
    from seed_valve import _Extended, _landauer

    d = _aux(L=20, n_poles=20, t_on=-1.0)
    d["electrons"]["initial"] = "stationary"
    own = _landauer(d, comm, _Extended).current
    sim = Simulation(config_from_dict(d), comm)
    try:
        assert rhs_norm(sim, 0.0) < 1e-9
        I = sim.observables(root=None)["lead_current"]
        assert I[0] == pytest.approx(own, rel=1e-8) and I[1] == pytest.approx(-own, rel=1e-8)
    finally:
        sim.destroy()


def test_refusal_of_a_partitioned_extended_lead_beside_modes(comm):
    """An extended lead beside auxiliary modes cannot start partitioned (its explicit sites
    would start without the memory of their absorbers): one line naming the key and the ways
    out."""
    d = _aux(L=6, n_poles=8)
    d["leads"][1]["representation"] = "extended"
    with pytest.raises(ConfigError, match=r"electrons\.initial.*'partitioned'.*stationary"):
        Simulation(config_from_dict(d), comm)


@pytest.mark.parametrize("t_on", [0.0, -1.0])
def test_extended_lead_beside_modes(comm, t_on):
    """An 'extended' lead (explicit sites, absorbers as channels without poles) beside a
    'modes' lead in one hierarchy, with the bias on the extended lead (a rigid shift of its
    explicit sites: -i V [P, rho], -i V P R, -i V P lambda); against the independent path of
    the same physics (both leads 'extended': paper 004's equations with Padé blocks; the
    'modes' self-energy is the extended one): the whole density of the extended device and the
    lead currents agree to 1e-9 over t = 2 (both exponential RK4 at dt = 0.02, which split the
    state differently and so differ by their time-step errors; measured 2e-11 after the bias
    step at t = 0 from the equilibrium, 2e-14 from the stationary state under a bias already
    on, t_on = -1: the dense stationary state with the shifted sites, a fixed point to 1e-11,
    measured 2e-14)."""
    def cfg(rep):
        d = valve(L=10, n_poles=20, t_on=t_on, dt=0.02, t_end=2.0)
        d["leads"][1]["representation"] = rep
        d["electrons"]["initial"] = "stationary"
        return config_from_dict(d)

    a, b = Simulation(cfg("modes"), comm), Simulation(cfg("extended"), comm)
    try:
        assert a.problem.auxiliary and a.problem.extended and not b.problem.auxiliary
        assert [m["representation"] for m in a.problem.describe()] == ["extended", "modes"]
        oa, ob = 2 * a.extension.offset, 2 * b.extension.offset
        assert oa == ob > 0           # the same explicit sites on the left
        n = a.layout.N
        assert rhs_norm(a, 0.0 if t_on < 0 else -1.0) < (1e-11 if t_on < 0 else 1e-12)
        for _ in range(4):
            ra, rb = a.state(root=None)[0], b.state(root=None)[0][:n, :n]
            assert np.abs(ra - rb).max() < 1e-9
            ia = a.observables(root=None)["lead_current"]
            ib = b.observables(root=None)["lead_current"]
            assert np.allclose(ia, ib, rtol=0, atol=1e-9), (ia, ib)
            a.step(25, record=False)
            b.step(25, record=False)
        assert abs(ia[0]) > 1e-3        # a current flows
    finally:
        a.destroy()
        b.destroy()


@pytest.mark.parametrize("initial", ["partitioned", "auto", "biased"])
def test_wide_band_lead_beside_modes(comm, initial):
    """A wide-band lead (per-orbital Gamma) beside a tight-binding lead in 'modes' runs as
    channels without poles in the same hierarchy; against the independent path of the same
    physics (the tight-binding lead 'extended', the wide-band lead with its Padé block, paper
    004's equations): the device density agrees to 1e-8 over t = 2 after a bias step (both
    exponential RK4 at dt = 0.02; measured 8e-10), from the partitioned start and from the
    stationary state (a fixed point, 1e-12), and from the stationary state under a symmetric
    bias already on, which biases the wide-band lead too (its Padé f_a - f_ref reaches far
    outside the band, where Gamma does not decay: a fixed point to 1e-11, measured 1e-13;
    without the far panels it was 1.5e-5)."""
    def cfg(rep):
        biased = initial == "biased"
        d = valve(L=10, n_poles=20, t_on=-1.0 if biased else 0.0, dt=0.02, t_end=2.0,
                  protocol="symmetric" if biased else "asymmetric")
        d["leads"][0]["representation"] = rep
        d["leads"][1] = {"side": "right", "gamma": [0.8, 0.6], "mu": EF, "temperature": T300,
                         "n_poles": 20}
        d["electrons"]["initial"] = "stationary" if biased else initial
        return config_from_dict(d)

    a, b = Simulation(cfg("modes"), comm), Simulation(cfg("extended"), comm)
    try:
        o = 2 * b.extension.offset
        if initial != "partitioned":
            biased = initial == "biased"
            assert rhs_norm(a, 0.0 if biased else -1.0) < (1e-11 if biased else 1e-12)
        for _ in range(4):
            ra, rb = a.state(root=None)[0], b.state(root=None)[0][o:o + 16, o:o + 16]
            assert np.abs(ra - rb).max() < 1e-8
            assert np.allclose(a.observables(root=None)["lead_current"],
                               b.observables(root=None)["lead_current"], rtol=0, atol=1e-8)
            a.step(25, record=False)
            b.step(25, record=False)
    finally:
        a.destroy()
        b.destroy()


def test_bias_step_relaxes_to_the_landauer_current(comm):
    """From the equilibrium, a 0.25 V step of the left lead at t = 0 ('modes', L = 20): the
    currents at both leads ring down to the Landauer current of the representation's
    self-energy (the extended one), within 2e-4 relative at t = 90 and 100 (measured 2e-6 ..
    6e-5; the ringing comes from the slow states near the band edge)."""
    from seed_valve import _Extended, _landauer

    d = _aux(L=20, n_poles=20, t_on=0.0, t_end=100.0, dt=0.1)
    d["electrons"]["initial"] = "auto"
    own = _landauer(d, comm, _Extended).current
    sim = Simulation(config_from_dict(d), comm)
    try:
        sim.step(900, record=False)
        for _ in range(2):
            I = sim.observables(root=None)["lead_current"]
            assert abs(I[0] / own - 1) < 2e-4 and abs(-I[1] / own - 1) < 2e-4, (I, own)
            sim.step(100, record=False)
    finally:
        sim.destroy()


def test_modes_on_a_2d_strip_equal_the_reference(comm):
    """Auxiliary modes with transverse channels (5 x 2 strip: 2 modes x 2 spins per lead, each
    with its own shifted poles; coupling 0.8 on the right): qcspin's run equals the dense
    reference to 1e-13 through a symmetric bias step, and the equilibrium start is a fixed
    point."""
    d = {"lattice": {"size": [5, 2]},
         "layers": [{"name": "A", "columns": [0, 2], "J_sd": 0.8, "spin": [1, 0, 0],
                     "frozen": True},
                    {"name": "B", "columns": [2, 5], "J_sd": 0.8, "spin": [0, 1, 1],
                     "frozen": True}],
         "leads": [{"side": "left", "model": "tight-binding", "representation": "modes",
                    "mu": -0.5, "sites": 8, "n_poles": 10, "temperature": 0.05},
                   {"side": "right", "model": "tight-binding", "representation": "modes",
                    "mu": -0.5, "sites": 8, "n_poles": 10, "temperature": 0.05,
                    "coupling": 0.8}],
         "bias": {"protocol": "symmetric", "V": 0.3, "t_on": 0.0},
         "solver": {"stiff": "none", "ts_type": "rk", "rk_type": "4"},
         "time": {"dt": 0.02, "t_end": 1.0}}
    sim = Simulation(config_from_dict(d), comm)
    try:
        assert rhs_norm(sim, -1.0) < 1e-12
        am, _ = _reference(sim)
        s = tuple(np.array(v) for v in am.equilibrium())
        assert np.abs(s[0] - sim.state(root=None)[0]).max() < 1e-13
        sim.step(25, record=False)
        s = am.evolve(s, 0.02, 25, lambda t: np.array([0.15, -0.15]))
        assert np.abs(sim.state(root=None)[0] - s[0]).max() < 1e-13
        assert np.allclose(sim.observables(root=None)["lead_current"], am.currents(s),
                           rtol=0, atol=1e-13)
    finally:
        sim.destroy()


def test_spin_continuity_with_auxiliary_modes(comm):
    """Moving spins, one lead in 'modes' and one in 'lorentzian' (2D strip, transverse
    channels), a symmetric bias: the spin continuity residual (device electrons + classical
    spins + the spin entering through Re Tr(sigma Pi_alpha)) vanishes to round-off (1e-12)."""
    d = {"lattice": {"size": [5, 2]},
         "layers": [{"name": "A", "columns": [0, 2], "J_sd": 0.8, "spin": [1, 0, 0],
                     "J_ex": -0.3},
                    {"name": "B", "columns": [2, 5], "J_sd": 0.8, "spin": [0, 1, 1]}],
         "leads": [{"side": "left", "model": "tight-binding", "representation": "modes",
                    "mu": -0.5, "sites": 8, "n_poles": 10, "temperature": 0.05},
                   {"side": "right", "model": "tight-binding", "representation": "lorentzian",
                    "lorentzians": 10, "mu": -0.5, "n_poles": 10, "temperature": 0.05,
                    "coupling": 0.8}],
         "bias": {"protocol": "symmetric", "V": 0.3, "t_on": 0.0},
         "output": {"spin_balance": True}, "time": {"dt": 0.05, "t_end": 1.0}}
    sim = Simulation(config_from_dict(d), comm)
    try:
        sim.step(10, record=False)
        o = sim.observables(root=None)
        assert np.abs(o["spin_balance_residual"]).max() < 1e-12
        assert np.abs(o["lead_spin_current"]).max() > 1e-4
    finally:
        sim.destroy()
