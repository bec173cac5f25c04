"""Distributed junction observables (operators.currents) against independent answers: the dense
bond currents of analysis.transport, charge and spin continuity from the right-hand side, the lead
currents of a stationary open chain, Eq. (F1) for polarized states, the spin balance with moving
spins, and serial vs MPI.  Rank-agnostic (serial and ``mpirun -n 2``)."""
import numpy as np
import pytest
from helpers import valve_1d

from analysis.transport import bond_currents
from integrators import Simulation
from operators.currents import (
    PlaneCurrent,
    current_driven_torque,
    electron_spin_total,
    external_torque,
    interface_plane,
    monolayer_densities,
    monolayer_polarization,
    spin_balance,
    spin_continuity_residual,
)
from operators.hamiltonian import ElectronHamiltonian
from toolkit import DeviceBuilder
from toolkit.parallel import gather_rows

from petsc4py import PETSc

PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], complex)


def junction(size=(8,), *, leads=True, V=0.5, t_on=0.0, frozen=True, K=0.0, B=(0, 0, 0),
             damping=0.0, J_ex=0.0, n_poles=10, T=0.1, dt=0.02):
    """PL (2 columns) | spacer | FL (2 columns), non-collinear spins; wide-band leads (Gamma = 1)
    with an asymmetric bias V from t_on (t_on < 0: the initial stationary state is biased)."""
    b = DeviceBuilder(size=size)
    Lx = size[0]
    b.add_layer("PL", (0, 2), J_sd=1.5, J_ex=J_ex, K=K, easy_axis=(1, 0, 0), spin=(1, 0.3, 0.5),
                frozen=frozen, damping=damping)
    b.add_layer("SL", (2, Lx - 2))
    b.add_layer("FL", (Lx - 2, Lx), J_sd=1.0, J_ex=J_ex, K=0.5 * K, easy_axis=(0, 0, 1),
                spin=(0.2, -0.4, 1), frozen=frozen, damping=damping)
    b.set_field(B)
    if leads:
        b._doc["leads"] = [{"side": "left", "gamma": 1.0, "temperature": T},
                           {"side": "right", "gamma": 1.0, "temperature": T}]
        b._doc["bias"] = {"protocol": "asymmetric", "V": V, "t_on": t_on}
        b.set("electrons", n_poles=n_poles)
    b.set("time", dt=dt)
    return b.finalized()


def rhs_F(sim):
    """F = RHS(y) at the current time (the vector the integrator would use)."""
    F = sim.y.duplicate()
    sim.rhs(None, sim.time, sim.y, F)
    return F


def local_rho(sim, vec):
    return sim.layout.rho(vec.getArray(readonly=True))


def all_planes(dev):
    return np.arange(dev.size[0] - 1)


def gather_bonds(pc, rho_loc, comm):
    return (gather_rows(pc.bonds.copy(), comm, root=None),
            gather_rows(pc.bond_values(rho_loc), comm, root=None))


# ----------------------------------------------------------------------------- Eqs. 13, 14
@pytest.mark.parametrize("size", [(7,), (5, 3), (4, 3, 2)])
def test_plane_current_equals_dense_bond_currents(comm, size):
    """Eq. (13)/(14) from local rows (Hermitian shortcut) = half of the dense bond currents of
    analysis.transport (which read rho_j'j from the full matrix), for a random Hermitian rho.
    Each plane has up to 6 bonds of O(1) terms: round-off ~1e-15, tolerance 1e-13."""
    b = DeviceBuilder(size=size)
    b.add_layer("M", (1, 3), J_sd=2.0, spin=(0.3, -0.5, 1.0))
    dev = b.finalized()
    rng = np.random.default_rng(3)
    N = dev.n_orbitals
    X = rng.normal(size=(N, N)) + 1j * rng.normal(size=(N, N))
    rho = (X + X.conj().T) / 4
    H = ElectronHamiltonian(dev, comm)
    d = H.dist
    rho_loc = rho[d.row_start:d.row_start + d.n_local_rows]
    pc = PlaneCurrent(dev, H, all_planes(dev))
    I, J = pc(rho_loc)
    x = dev.coords[:, 0]
    ref = np.zeros((dev.size[0] - 1, 4))
    bc = bond_currents(dev, rho)           # full flows j -> j' (j < j': lower x first)
    for k, (j, jp) in enumerate(dev.bonds):
        if x[jp] == x[j] + 1:
            ref[x[j]] += 0.5 * bc[k]
    assert np.abs(I - ref[:, 0]).max() < 1e-13
    assert np.abs(J - ref[:, 1:]).max() < 1e-13
    assert pc.n_bonds.tolist() == [dev.cross_section] * (dev.size[0] - 1)
    # bond by bond, and a single plane as a scalar
    bonds, vals = gather_bonds(pc, rho_loc, comm)
    assert len(bonds) == (dev.size[0] - 1) * dev.cross_section
    for (j, jp), v in zip(bonds, vals):
        k = np.flatnonzero((dev.bonds[:, 0] == j) & (dev.bonds[:, 1] == jp))[0]
        assert np.abs(v - 0.5 * bc[k]).max() < 1e-13
    I1, J1 = PlaneCurrent(dev, H, 1)(rho_loc)
    assert np.ndim(I1) == 0 and J1.shape == (3,) and abs(I1 - I[1]) < 1e-14
    H.destroy()


def test_closed_chain_charge_and_spin_continuity(comm):
    """Closed valve with moving spins, electrons given a current by a phase twist: for every
    plane d N_left/dt (from the RHS F) = -2 I_F, and in each spacer monolayer x
    d sum Tr(sigma rho_jj)/dt = 2 (J_F(x - 1) - J_F(x)) (no s-d term there; J_F is the flow of
    sigma/2).  F entries are O(|H| |rho|) ~ 4: round-off 1e-14, tolerance 1e-12."""
    dev = valve_1d(N=12, n_s=3).finalized()
    sim = Simulation(dev, comm)
    rho, S = sim.state(root=None)
    phase = np.exp(0.7j * np.repeat(dev.coords[:, 0], 2))
    sim.set_state(phase[:, None] * rho * phase.conj()[None, :], S)
    F = rhs_F(sim)
    dN = monolayer_densities(local_rho(sim, F), dev, sim.H.dist, comm)
    I, J = PlaneCurrent(dev, sim.H, all_planes(dev))(local_rho(sim, sim.y))
    assert np.abs(I).min() > 0.05                      # a real current flows through every plane
    assert np.abs(np.cumsum(dN[:, 0])[:-1] + 2 * I).max() < 1e-12
    for x in range(3, 9):                              # the spacer SL
        assert np.abs(dN[x, 1:] - 2 * (J[x - 1] - J[x])).max() < 1e-12
    assert np.abs(J[2:9]).max() > 1e-2
    sim.destroy()


# ----------------------------------------------------------------------------- open chain
@pytest.mark.parametrize("size", [(8,), (6, 2)])
def test_stationary_open_chain_plane_current_equals_lead_current(comm, size):
    """Biased stationary state (asymmetric V = 0.5, N_p = 10, T = 0.1): Eq. (13) on every plane
    equals lead_current[left] = -lead_current[right] (same half-particle normalisation).
    I_F - I_l = -(1/2) d N_left/dt, and the stationary state (MUMPS + Sylvester) is a fixed point
    to ~1e-13 or better (measured deviation 1.3e-15): tolerance 1e-12 against currents ~0.07."""
    dev = junction(size, t_on=-1.0)
    sim = Simulation(dev, comm)
    obs = sim.observables(root=None)
    I_l, I_r = obs["lead_current"]
    I, J = PlaneCurrent(dev, sim.H, all_planes(dev))(local_rho(sim, sim.y))
    assert I_l > 1e-2                      # mu_l > mu_r: electrons flow towards +x, I_F > 0
    assert abs(I_l + I_r) < 1e-12
    assert np.abs(I - I_l).max() < 1e-12
    # spin: constant through the spacer (no s-d torque there), and Eq. (15) in the stationary
    # state = s-d torque on the FL spins, sum_j J_sd s_j x S_j (J_r = -lead_spin_current[right])
    spacer = slice(interface_plane(dev, "SL"), interface_plane(dev, "FL") + 1)
    assert np.abs(J[spacer] - J[spacer][0]).max() < 1e-12
    J_F = J[interface_plane(dev, "FL")]
    T_cd = current_driven_torque(J_F, -obs["lead_spin_current"][1], 0.0)
    fl = dev.layer_spins("FL")
    s = obs["spin_density"][dev.spin_sites[fl]]
    stt = (dev.J_sd[fl, None] * np.cross(s, obs["spins"][fl])).sum(axis=0)
    assert np.abs(stt).max() > 1e-3
    assert np.abs(T_cd - stt).max() < 1e-12
    sim.destroy()


def test_open_charge_continuity_any_state(comm):
    """After a bias quench (non-stationary): d N_left/dt = 2 lead_current[left] - 2 I_F for every
    plane, an identity of the RHS (Tr_left(Pi_l + Pi_l^dag) = 2 Re Tr Pi_l): tolerance 1e-12."""
    dev = junction((6, 2), V=0.8)
    sim = Simulation(dev, comm)
    sim.step(10)
    F = rhs_F(sim)
    dN = monolayer_densities(local_rho(sim, F), dev, sim.H.dist, comm)
    I, _ = PlaneCurrent(dev, sim.H, all_planes(dev))(local_rho(sim, sim.y))
    I_l = sim.observables(root=None)["lead_current"][0]
    assert np.abs(dN[:, 0]).max() > 1e-3              # really not stationary
    assert np.abs(np.cumsum(dN[:, 0])[:-1] - 2 * I_l + 2 * I).max() < 1e-12
    sim.destroy()


# ----------------------------------------------------------------------------- Eq. (F1)
def test_monolayer_polarization(comm):
    """Diagonal blocks w_j (1 + n_x.sigma)/2 with monolayer directions n_x (|n_x| = 1: fully
    polarized) and random weights, random off-diagonal blocks: P_x = n_x exactly (1e-14); an
    all-spin-up state gives P = (0, 0, 1); an empty monolayer gives NaN."""
    dev = DeviceBuilder(size=(5, 3)).finalized()
    H = ElectronHamiltonian(dev, comm)
    d = H.dist
    rng = np.random.default_rng(5)
    N = dev.n_orbitals
    X = rng.normal(size=(N, N)) + 1j * rng.normal(size=(N, N))
    rho = (X + X.conj().T) / 4
    n = rng.normal(size=(5, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    w = rng.uniform(0.2, 1.0, dev.n_sites)
    for j in range(dev.n_sites):
        nx = n[dev.coords[j, 0]]
        blk = w[j] * (np.eye(2) + np.einsum("a,aij->ij", nx, PAULI)) / 2   # |n_x| = 1
        rho[2 * j:2 * j + 2, 2 * j:2 * j + 2] = blk
    loc = lambda r: r[d.row_start:d.row_start + d.n_local_rows]  # noqa: E731
    P = monolayer_polarization(loc(rho), dev, d, comm)
    assert P.shape == (5, 3) and np.abs(P - n).max() < 1e-14
    dens = monolayer_densities(loc(rho), dev, d, comm)
    assert abs(dens[:, 0].sum() - w.sum()) < 1e-13
    up = np.diag(np.tile([1.0, 0.0], dev.n_sites)).astype(complex)
    up[2 * 3:2 * 4, :] = up[:, 2 * 3:2 * 4] = 0          # site 3 (monolayer 1) emptied
    assert np.abs(monolayer_polarization(loc(up), dev, d, comm) - [0, 0, 1]).max() < 1e-15
    empty = np.zeros_like(up)
    assert np.isnan(monolayer_polarization(loc(empty), dev, d, comm)).all()
    H.destroy()


# ----------------------------------------------------------------------------- spin balance
def _balance(dev, comm, steps=5):
    """Spin balance terms after ``steps`` steps from the stationary electrons of the initial
    spins with every spin then turned to a random direction (large s-d torques)."""
    sim = Simulation(dev, comm)
    rho, S = sim.state(root=None)
    S = np.random.default_rng(11).normal(size=S.shape)
    S /= np.linalg.norm(S, axis=1, keepdims=True)
    sim.set_state(rho, S, leads=sim.layout.leads_to_global(sim.y, root=None))
    sim.step(steps)
    F = rhs_F(sim)
    out = spin_balance(sim.rhs, sim.y, F)
    sim.destroy()
    return out


@pytest.mark.parametrize("kind", ["open", "closed"])
def test_spin_balance_vanishes_k0_b0(comm, kind):
    """Moving spins, K = 0, B = 0, no damping, exchange on: d/dt(S_tot + s_tot) = lead spin
    inflow, with every term O(0.01-1); round-off of sums over ~50 entries: tolerance 1e-12."""
    dev = junction((8,), leads=kind == "open", frozen=False, J_ex=-1.0)
    t = _balance(dev, comm)
    assert np.abs(t["external"]).max() == 0.0
    for k in ("electron", "classical") + (("leads",) if kind == "open" else ()):
        assert np.abs(t[k]).max() > 1e-3, (k, t)
    assert np.abs(t["residual"]).max() < 1e-12, t


@pytest.mark.parametrize("damping,frozen", [(0.0, False), (0.1, False), (0.0, True)])
def test_spin_balance_with_external_torques(comm, damping, frozen):
    """K != 0, B != 0 (and Gilbert damping, or frozen layers): the balance fails by O(0.1)
    without the external torque and closes to round-off (1e-12) with it."""
    dev = junction((8,), frozen=frozen, K=0.4, B=(0.3, -0.2, 0.5), damping=damping, J_ex=-1.0)
    t = _balance(dev, comm)
    assert np.abs(t["residual"] + t["external"]).max() > 1e-2   # = the unbalanced sum
    assert np.abs(t["residual"]).max() < 1e-12, t
    # the pieces the residual is made of
    r = spin_continuity_residual(t["electron"], t["classical"], t["leads"], t["external"])
    assert np.array_equal(r, t["residual"])


def test_spin_balance_frozen_neighbours(comm):
    """A frozen layer next to a moving one with interlayer exchange: the frozen spins torque the
    electrons (s-d) and their moving neighbours (exchange) without reaction; tau_ext accounts for
    both and the balance closes to round-off (1e-12)."""
    b = DeviceBuilder(size=(8,))
    b.add_layer("A", (0, 2), J_sd=1.5, J_ex=-1.0, spin=(1, 0, 0), frozen=True)
    b.add_layer("B", (2, 4), J_sd=1.0, J_ex=-1.0, spin=(0, 0, 1))
    b.add_exchange("A", "B", -0.7)
    b._doc["leads"] = [{"side": "left", "gamma": 1.0, "temperature": 0.1},
                       {"side": "right", "gamma": 1.0, "temperature": 0.1}]
    b._doc["bias"] = {"protocol": "asymmetric", "V": 0.5, "t_on": 0.0}
    b.set("electrons", n_poles=10)
    b.set("time", dt=0.02)
    t = _balance(b.finalized(), comm)
    assert np.abs(t["external"]).max() > 1e-2 and np.abs(t["classical"]).max() > 1e-2
    assert np.abs(t["residual"]).max() < 1e-12, t


def test_external_torque_single_spin_larmor(comm):
    """One moving spin in a field, J_sd = 0: tau_ext = S x B (paper Eq. 10, -S x dH/dS with
    H = -B.S) = dS/dt, independently of the RHS."""
    b = DeviceBuilder(size=(2,))
    b.add_layer("M", (0, 1), J_sd=0.0, spin=(1, 0, 0))
    b.set_field((0, 0, 1.0))
    dev = b.finalized()
    sim = Simulation(dev, comm)
    t = spin_balance(sim.rhs, sim.y, rhs_F(sim))
    assert np.abs(t["external"] - [0, -1, 0]).max() < 1e-15
    assert np.abs(t["classical"] - [0, -1, 0]).max() < 1e-15
    S_all = np.array([[1.0, 0, 0]])
    n = sim.spinH.stop - sim.spinH.start
    tau = external_torque(sim.spinH, S_all, np.zeros((n, 3)), np.zeros((n, 3)), comm)
    assert np.abs(tau - [0, -1, 0]).max() < 1e-15
    sim.destroy()


# ----------------------------------------------------------------------------- MPI, errors
def test_serial_equals_mpi(comm):
    """The same state on ``comm`` and on PETSc.COMM_SELF (a serial copy on every rank): plane
    currents, polarization and spin balance agree to 1e-13 (only the summation order differs)."""
    dev = junction((6, 2), frozen=False, J_ex=-1.0, K=0.2, B=(0, 0, 0.2))
    sims = [Simulation(dev, comm), Simulation(dev, PETSc.COMM_SELF)]
    sims[0].step(5)
    rho, S = sims[0].state(root=None)
    blocks = sims[0].layout.leads_to_global(sims[0].y, root=None)
    sims[1].set_state(rho, S, sims[0].time, sims[0].step_number, blocks)
    res = []
    for sim, c in zip(sims, (comm, PETSc.COMM_SELF)):
        r = local_rho(sim, sim.y)
        I, J = PlaneCurrent(dev, sim.H, all_planes(dev))(r)
        P = monolayer_polarization(r, dev, sim.H.dist, c)
        t = spin_balance(sim.rhs, sim.y, rhs_F(sim))
        s = electron_spin_total(r, sim.H.dist, c)
        res.append(np.concatenate([I, J.ravel(), P.ravel(), s, *t.values()]))
    assert np.abs(res[0] - res[1]).max() < 1e-13
    for sim in sims:
        sim.destroy()


def test_bad_arguments(comm):
    dev = junction((6,), leads=False)
    H = ElectronHamiltonian(dev, comm)
    with pytest.raises(ValueError, match="x_plane = 5 is not allowed"):
        PlaneCurrent(dev, H, 5)
    with pytest.raises(ValueError, match="x_plane"):
        PlaneCurrent(dev, H, [0, -1])
    with pytest.raises(ValueError, match="rho_loc.shape"):
        PlaneCurrent(dev, H, 0)(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="no plane before column 0"):
        interface_plane(dev, "PL")
    assert interface_plane(dev, "FL") == 3
    assert np.allclose(current_driven_torque([1, 2, 3], [0.5, 0, 1], [0, 1, 0]), [0.5, 1, 2])
    H.destroy()
