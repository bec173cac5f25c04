"""Open junction with wide-band leads: stationary state, currents vs Landauer, quench dynamics."""
import os

import h5py
import numpy as np
import pytest
from scipy.integrate import quad

from integrators import Simulation
from operators.hamiltonian import dense_hamiltonian
from operators.pade import fermi_exact
from toolkit import DeviceBuilder

SIGMA = [np.array(m, complex) for m in ([[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]])]


def open_valve(size=(6,), T=0.025, n_poles=30, protocol="none", V=0.0, dt=0.02, gamma=1.0):
    b = DeviceBuilder(size=size)
    Lx = size[0]
    b.add_layer("PL", (0, 2), J_sd=1.5, spin=(1, 0.3, 0.5), frozen=True)
    b.add_layer("FL", (Lx - 2, Lx), J_sd=1.0, spin=(0, 0, 1), frozen=True)
    b._doc["leads"] = [{"side": "left", "gamma": gamma, "temperature": T},
                       {"side": "right", "gamma": gamma, "temperature": T}]
    b._doc["bias"] = {"protocol": protocol, "V": V, "t_on": 0.0 if protocol != "none" else 0.0}
    b.set("electrons", n_poles=n_poles)
    b.set("time", dt=dt, output_every=10)
    return b


def landauer(dev, leads_mu, T, gamma=1.0):
    """Independent NEGF reference: particle and spin currents from the left lead,
    (1/2pi) int dE (f_l - f_r) Re Tr[O Gamma_l G^R Gamma_r G^A], exact Fermi functions, adaptive
    quadrature over the window where f_l - f_r > 1e-17."""
    H = dense_hamiltonian(dev)
    N = H.shape[0]
    x = dev.coords[:, 0]
    gl, gr = np.zeros(N), np.zeros(N)
    for g, col in ((gl, 0), (gr, dev.size[0] - 1)):
        s = np.flatnonzero(x == col)
        g[2 * s] = g[2 * s + 1] = gamma
    ops = [np.eye(N)] + [np.kron(np.eye(N // 2), s) for s in SIGMA]
    mu_l, mu_r = leads_mu
    beta = 1.0 / T

    def integrand(e, k):
        G = np.linalg.inv(e * np.eye(N) - H + 0.5j * np.diag(gl + gr))
        M = (gl[:, None] * G) @ (gr[:, None] * G.conj().T)
        return (fermi_exact(e, mu_l, beta) - fermi_exact(e, mu_r, beta)) * np.trace(ops[k] @ M).real

    lo, hi = min(mu_l, mu_r) - 45 * T, max(mu_l, mu_r) + 45 * T
    return np.array([quad(integrand, lo, hi, args=(k,), limit=400, epsabs=1e-13, epsrel=1e-11)[0]
                     for k in range(4)]) / (2 * np.pi)


def test_stationary_state_is_a_fixed_point(comm):
    """d rho/dt and d Pi/dt vanish at the stationary state (round-off, ~1e-14 for |H| ~ 4)."""
    sim = Simulation(open_valve(size=(6, 2), protocol="asymmetric", V=0.4).finalized(), comm)
    # stationary state for the *initial* (unbiased) mu; evaluate the RHS before the quench
    sim.rhs.mu_of_t = lambda t: sim.mu_of_t.initial
    F = sim.y.duplicate()
    sim.rhs(None, 0.0, sim.y, F)
    from toolkit.parallel import allreduce

    assert allreduce(float(np.abs(F.getArray(readonly=True)).max()), comm, "max") < 1e-12
    sim.destroy()


@pytest.mark.parametrize("size,protocol,V", [((6,), "asymmetric", 0.6), ((6,), "symmetric", 0.8),
                                             ((5, 2), "asymmetric", 0.5),
                                             ((5, 2), "symmetric", 1.0)])
def test_stationary_currents_equal_landauer(comm, size, protocol, V):
    """Charge and all three spin currents of both leads from the stationary Pi_{l,p} (N_p = 30,
    T = 0.025) equal the Landauer/NEGF integrals with the exact Fermi function: 1e-6 relative
    (the Padé error inside the band is ~1e-14, the quadrature is held to 1e-11)."""
    b = open_valve(size=size, protocol=protocol, V=V)
    b._doc["bias"]["t_on"] = -1.0  # biased from the start: the stationary state is the biased one
    sim = Simulation(b.finalized(), comm)
    obs = sim.observables(root=None)
    mu = sim.mu_of_t.initial
    ref = landauer(sim.device, mu, 0.025)
    scale = abs(ref[0])
    assert scale > 1e-3
    got_l = 2 * np.concatenate([[obs["lead_current"][0]], obs["lead_spin_current"][0]])
    assert np.abs(got_l - ref).max() < 1e-6 * scale, (got_l, ref)
    # right lead: the same particle current leaves the device; spin currents differ (torques)
    assert abs(2 * obs["lead_current"][1] + ref[0]) < 1e-6 * scale
    sim.destroy()


def test_zero_bias_no_currents(comm):
    sim = Simulation(open_valve(size=(5, 2)).finalized(), comm)
    obs = sim.observables(root=None)
    assert np.abs(obs["lead_current"]).max() < 1e-12
    assert np.abs(obs["lead_spin_current"]).max() < 1e-12
    sim.destroy()


def test_quench_relaxes_to_biased_stationary_state(comm):
    """Time evolution after a symmetric quench reaches the stationary state of the biased leads.
    Two sites, both coupled (Gamma = 1): transients decay like exp(-t/2); t = 40 -> ~1e-9."""
    def two_site(t_on):
        b = DeviceBuilder(size=(2,))
        b.add_layer("M", (0, 1), J_sd=1.0, spin=(1, 0, 1), frozen=True)
        b._doc["leads"] = [{"side": "left", "gamma": 1.0, "temperature": 0.1},
                           {"side": "right", "gamma": 1.0, "temperature": 0.1}]
        b._doc["bias"] = {"protocol": "symmetric", "V": 0.7, "t_on": t_on}
        b.set("electrons", n_poles=20)
        b.set("time", dt=0.01)
        return Simulation(b.finalized(), comm)

    dyn, ref = two_site(0.0), two_site(-1.0)
    o0 = dyn.observables(root=None)
    assert np.abs(o0["lead_current"]).max() < 1e-12  # unbiased stationary start
    dyn.run(None, t_end=40.0, progress=False, handle_signals=False)
    o1, o_ref = dyn.observables(root=None), ref.observables(root=None)
    assert abs(o1["lead_current"][0]) > 1e-2
    assert np.abs(o1["lead_current"] - o_ref["lead_current"]).max() < 1e-8
    (r1, _), (r2, _) = dyn.state(root=None), ref.state(root=None)
    assert np.abs(r1 - r2).max() < 1e-8
    dyn.destroy(), ref.destroy()


def test_open_run_output_and_restart(comm, mpi_tmp_path):
    """A biased run writes the lead currents; a restart (lead blocks in the checkpoint)
    continues it exactly."""
    dev = open_valve(size=(4, 2), T=0.1, n_poles=10, protocol="asymmetric", V=0.5).finalized()
    full, part = os.path.join(mpi_tmp_path, "f.h5"), os.path.join(mpi_tmp_path, "p.h5")
    Simulation(dev, comm).run(full, t_end=1.0, progress=False)
    Simulation(dev, comm).run(part, t_end=1.0, progress=False, max_steps=23)
    Simulation(dev, comm).run(part, t_end=1.0, progress=False, restart=True)
    if comm.getRank() == 0:
        with h5py.File(full) as a, h5py.File(part) as b:
            assert a["lead_current"].shape == (6, 2)
            assert np.abs(a["lead_current"][...] - b["lead_current"][...]).max() <= 1e-13
            assert np.allclose(a["lead_mu"][-1], [0.5, 0.0])


def test_run_records_plane_currents_polarization_and_spin_balance(comm, mpi_tmp_path):
    """Stationary open valve: the plane currents equal the lead current on every plane
    (1e-12: same stationary state, round-off); moving spins after a quench: the recorded
    spin-balance residual stays at round-off (1e-11) while the terms are O(1e-2)."""
    b = open_valve(size=(6, 2), T=0.1, n_poles=10, protocol="asymmetric", V=0.5)
    b._doc["bias"]["t_on"] = -1.0
    sim = Simulation(b.finalized(), comm)
    o = sim.observables(root=None)
    assert sim.plane_x == (3,)  # in front of FL (columns 4, 5)
    assert abs(o["plane_current"][0] - o["lead_current"][0]) < 1e-12
    assert o["monolayer_polarization"].shape == (6, 3)
    sim.destroy()
    b = open_valve(size=(6,), T=0.1, n_poles=10, protocol="symmetric", V=0.8)
    for layer in b._doc["layers"]:
        layer["frozen"] = False
    b.set("output", planes=[1, 2, 3])
    out = os.path.join(mpi_tmp_path, "bal.h5")
    Simulation(b.finalized(), comm).run(out, t_end=2.0, progress=False)
    if comm.getRank() == 0:
        with h5py.File(out) as f:
            assert list(f["device"].attrs["planes"]) == [1, 2, 3]
            assert f["plane_current"].shape == (f["time"].shape[0], 3)
            assert np.abs(f["spin_balance_residual"][...]).max() < 1e-11
            assert np.abs(f["lead_spin_current"][...]).max() > 1e-3


def test_stage_two_from_checkpoint(comm, mpi_tmp_path):
    """Paper 004's protocol: stage 1 (V = 0, spins released) is run once and checkpointed; stage 2
    (bias quench at t = 0) starts from that state.  Continuing stage 1 with the bias switched on at
    its end (t_on = T1) gives the same trajectory: equal to round-off (1e-12)."""
    from toolkit.config import with_changes

    b = open_valve(size=(6,), T=0.1, n_poles=10)
    for layer in b._doc["layers"]:
        layer["frozen"] = False
    cfg1 = b.to_config()
    stage1 = os.path.join(mpi_tmp_path, "stage1.h5")
    Simulation(cfg1, comm).run(stage1, t_end=1.0, progress=False)
    cfg2 = with_changes(cfg1, bias={"protocol": "symmetric", "V": 0.6, "t_on": 0.0})
    s2 = Simulation.from_checkpoint(stage1, cfg2, comm)
    assert abs(s2.time) == 0.0
    s2.run(None, t_end=0.5, progress=False, handle_signals=False)
    one = Simulation(with_changes(cfg1, bias={"protocol": "symmetric", "V": 0.6, "t_on": 1.0}),
                     comm)
    one.run(None, t_end=1.5, progress=False, handle_signals=False)
    (r2, S2), (r1, S1) = s2.state(root=None), one.state(root=None)
    assert np.abs(r2 - r1).max() < 1e-12 and np.abs(S2 - S1).max() < 1e-12
    assert abs(s2.observables(root=None)["lead_current"][0]) > 1e-3
    s2.destroy(), one.destroy()


def test_per_lead_pole_counts(comm, mpi_tmp_path):
    """Each lead has its own number of Padé poles ([[leads]] n_poles, default electrons.n_poles):
    the lead blocks have N_p,l x n_l columns, the stationary state is a fixed point (1e-12,
    round-off) and its currents equal Landauer with the exact Fermi function (1e-6 relative:
    N_p = 20 and 40 at T = 0.1 are accurate to < 1e-10 over the band); a checkpoint of that
    state restarts, and one computed with other pole counts is refused with a clear message."""
    b = open_valve(size=(6,), protocol="asymmetric", V=0.6, T=0.1)
    b._doc["bias"]["t_on"] = -1.0
    b._doc["leads"][0]["n_poles"] = 20
    b._doc["leads"][1]["n_poles"] = 40
    dev = b.finalized()
    sim = Simulation(dev, comm)
    n_l = [len(l.interface) for l in sim.leads]
    assert sim.layout.lead_columns == (20 * n_l[0], 40 * n_l[1])
    F = sim.y.duplicate()
    sim.rhs(None, 0.0, sim.y, F)
    from toolkit.parallel import allreduce

    assert allreduce(float(np.abs(F.getArray(readonly=True)).max()), comm, "max") < 1e-12
    obs = sim.observables(root=None)
    ref = landauer(sim.device, sim.mu_of_t.initial, 0.1)
    got = 2 * np.concatenate([[obs["lead_current"][0]], obs["lead_spin_current"][0]])
    assert np.abs(got - ref).max() < 1e-6 * abs(ref[0])
    out = os.path.join(mpi_tmp_path, "np.h5")
    sim.run(out, t_end=0.1, progress=False)
    F.destroy(), sim.destroy()
    Simulation.from_checkpoint(out, comm=comm).destroy()
    from toolkit.config import ConfigError, with_changes

    cfg = dev.config
    other = with_changes(cfg, leads=tuple(
        __import__("dataclasses").replace(lc, n_poles=30) for lc in cfg.leads))
    with pytest.raises(ConfigError, match=r"leads\[0\]\.n_poles"):
        Simulation.from_checkpoint(out, other, comm)


@pytest.mark.parametrize("replicated", [True, False])
def test_pole_solves_equal_a_dense_inverse_3d(comm, replicated):
    """The pole solves of the stationary state (a sequential factorisation with a sparse
    right-hand side on one rank or replicated on several; MUMPS distributed with dense unit
    columns otherwise) equal columns of the dense inverse of H_eff - z (1e-12: a
    well-conditioned 4 x 2 x 2 junction, |G| ~ 1), and the stationary state of a 3D junction,
    by either route, is a fixed point of the right-hand side (round-off) and the same state
    (1e-12)."""
    import integrators.stationary as st
    from integrators.stationary import _Solver, effective_matrix
    from operators.hamiltonian import gather_dense
    from toolkit.parallel import allreduce

    sim = Simulation(open_valve(size=(4, 2, 2)).finalized(), comm)
    try:
        A0 = effective_matrix(sim.H, sim.problem)
        N = sim.device.n_orbitals
        dense = gather_dense(A0, N, comm)
        z = 0.3 + 0.7j
        ref = np.linalg.inv(dense - z * np.eye(N))
        r0, r1 = A0.getOwnershipRange()
        with _Solver(A0, "test_pole_", replicated=replicated) as solver:
            for cols in (np.arange(N), np.array([0, 5, N - 1])):
                X = solver.solve_columns(z, cols)
                err = float(np.abs(X - ref[r0:r1][:, cols]).max()) if r1 > r0 else 0.0
                assert allreduce(err, comm, "max") < 1e-12
            assert solver.sparse == (comm.getSize() == 1 or replicated)
        A0.destroy()
        old = st.REPLICATED_MAX_N
        st.REPLICATED_MAX_N = N if replicated else 0
        try:
            rho, blocks = st.stationary_state(sim.H, sim.problem, sim.poles)
        finally:
            st.REPLICATED_MAX_N = old
        y = sim.y.duplicate()
        sim.y.copy(y)
        a = y.getArray()
        sim.layout.rho(a)[...] = rho
        sim.layout.fill(a, blocks.items(), local=True)
        y.stateIncrease()
        diff = float(np.abs(a - sim.y.getArray(readonly=True)).max())
        assert allreduce(diff, comm, "max") < 1e-12
        F = sim.y.duplicate()
        sim.rhs(None, 0.0, y, F)
        assert allreduce(float(np.abs(F.getArray(readonly=True)).max()), comm, "max") < 1e-12
        F.destroy()
        y.destroy()
    finally:
        sim.destroy()
