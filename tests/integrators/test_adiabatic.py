"""rho_eq(M) of the instantaneous moments (integrators/adiabatic.py) against the run's own
equilibrium solvers, for every lead representation."""
import os

import numpy as np
import pytest
import seed_valve

from integrators import Simulation
from integrators.adiabatic import AdiabaticEquilibrium
from integrators.stationary import equilibrium_density
from toolkit.config import config_from_dict
from toolkit.parallel import allreduce, gather_rows


def _moving_valve(representation, L=8):
    cfg = seed_valve.valve(L=L, lead_keys={"representation": representation}, protocol="none")
    cfg["layers"][2]["frozen"] = False            # the analyzer moves
    cfg["layers"][2]["damping"] = 0.05
    cfg["llg"] = {"equation": "moment", "drive": "full"}
    if representation != "extended":
        for ld in cfg["leads"]:
            del ld["sites"]
    return config_from_dict(cfg)


def _reference_rho(sim):
    """The full equilibrium density of the spins now in sim.H with the run's own solver."""
    if sim.problem.auxiliary:
        return sim.rhs.stationary()["rho"]
    l0 = sim.problem.leads[0]
    loc = equilibrium_density(sim.H, sim.problem, sim.poles[0], l0.mu, l0.temperature)
    return gather_rows(loc, sim.comm, root=None)


@pytest.mark.parametrize("representation", ["modes", "extended", "lorentzian"])
def test_adiabatic_equilibrium_equals_full_solver(comm, representation):
    """rho_eq for a tilted analyzer (not the configuration of the setup): the Dyson-reduced
    spin density on the moving moments and the dense rho_eq agree with the run's equilibrium
    solver (a separate pole sum / the auxiliary-mode fixed point) to 1e-10 (round-off of 20
    inverses of conditioning ~1e3)."""
    sim = Simulation(_moving_valve(representation), comm)
    S0 = sim.state(root=None)[1]
    ad = AdiabaticEquilibrium(sim.H, sim.problem, sim.poles, S0)
    S = S0.copy()
    rng = np.random.default_rng(5)
    mv = ad.moving
    S[mv] = rng.normal(size=(len(mv), 3))
    S[mv] /= np.linalg.norm(S[mv], axis=1, keepdims=True)
    sim.H.set_spins_global(S)
    ref = _reference_rho(sim)
    rho = ad.density(S)
    assert np.abs(rho - ref).max() < 1e-10
    s = ad.spin_density(S)
    sites = sim.H.device.spin_sites[mv]
    sig = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]])
    s_ref = np.array([[0.5 * np.trace(ref[2 * j:2 * j + 2, 2 * j:2 * j + 2] @ sig[a]).real
                       for a in range(3)] for j in sites])
    assert np.abs(s - s_ref).max() < 1e-10
    assert np.abs(s).max() > 1e-3                      # a spin density to compare
    sim.destroy()


def test_stationary_start_has_no_current_driven_density(comm):
    """At zero bias the run's stationary start is rho_eq of its own spins: rho - rho_eq = 0 to
    round-off (1e-11) on every moving moment, also after the moments were turned (the
    equilibrium follows them; the evolved rho does not)."""
    sim = Simulation(_moving_valve("modes"), comm)
    rho, S0 = sim.state(root=None)
    ad = AdiabaticEquilibrium(sim.H, sim.problem, sim.poles, S0)
    sites = sim.H.device.spin_sites[ad.moving]
    sig = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]])
    s_neq = np.array([[0.5 * np.trace(rho[2 * j:2 * j + 2, 2 * j:2 * j + 2] @ sig[a]).real
                       for a in range(3)] for j in sites])
    assert np.abs(s_neq - ad.spin_density(S0)).max() < 1e-11
    S1 = S0.copy()
    S1[ad.moving] = [1.0, 0.0, 0.0]
    assert np.abs(s_neq - ad.spin_density(S1)).max() > 1e-3
    sim.destroy()


@pytest.mark.skip_in_parallel
def test_equilibrium_needs_one_reservoir_state():
    cfg = seed_valve.valve(L=8, lead_keys={"representation": "modes"}, protocol="none")
    for ld in cfg["leads"]:
        del ld["sites"]
    cfg["leads"][1]["mu"] = -1.5
    cfg["llg"] = {"equation": "moment", "drive": "full"}
    with pytest.warns(RuntimeWarning, match="no current-driven observables"):
        sim = Simulation(config_from_dict(cfg))
    with pytest.raises(ValueError, match="lead 'right': mu = -1.5"):
        AdiabaticEquilibrium(sim.H, sim.problem, sim.poles, sim.state(root=None)[1])
    sim.destroy()


def _tilted(drive):
    cfg = seed_valve.valve(L=8, lead_keys={"representation": "modes"}, protocol="none")
    for ld in cfg["leads"]:
        del ld["sites"]
    cfg["layers"][2].update(frozen=False, damping=0.05, J_ex=-0.1, K=0.00025,
                            spin=[0.3, 0.2, 1.0])
    cfg["llg"] = {"equation": "moment", "drive": drive}
    return config_from_dict(cfg)


def test_current_driven_drive_in_the_rhs(comm):
    """At the stationary start (zero bias) rho_CD = 0: with drive = 'current-driven' the
    moments' dM/dt is that of exchange and anisotropy alone (ClassicalSpinHamiltonian with
    s = 0) to 1e-12 (the s-d field J_sd s_CD is ~1e-12 x 0.2), while the full rho's
    equilibrium spin density (the polarizer's, O(1e-2)) turns them with drive = 'full'."""
    out = {}
    for drive in ("current-driven", "full"):
        sim = Simulation(_tilted(drive), comm)
        F = sim.y.duplicate()
        sim.rhs(None, sim.time, sim.y, F)
        lay = sim.layout
        dS = lay.spins(F.getArray(readonly=True)).real.copy()
        S_all = sim.rhs.spins_all(sim.y, sim.y.getArray(readonly=True))
        free = sim.spinH.rhs(S_all, np.zeros_like(dS))
        # a rank may own no moving spins: the largest deviation over all ranks
        local = float(np.abs(dS - free).max()) if len(dS) else 0.0
        out[drive] = allreduce(local, comm, op="max")
        F.destroy()
        sim.destroy()
    assert out["current-driven"] < 1e-12, out
    assert out["full"] > 1e-5, out


def test_moment_observables_at_the_stationary_start(comm, mpi_tmp_path):
    """A moment run records paper 000's observables: at the zero-bias stationary start
    s_CD = 0 and the torque T = 0 to round-off (1e-12), the rho_CD plane currents vanish
    (1e-12) while the full ones carry the equilibrium spin current of the noncollinear valve
    (> 1e-5); torque_neq = J_sd M x s of the recorded spin density; magnon_current = J_ex
    M_i x M_j of the recorded moments (1e-15)."""
    from toolkit.results import load_result

    cfg = _tilted("current-driven")
    out = os.path.join(mpi_tmp_path, "moments.h5")
    sim = Simulation(cfg, comm)
    sim.run(out, progress=False, max_steps=0)
    sim.destroy()
    r = load_result(out)
    assert np.abs(r["spin_density_cd"][0]).max() < 1e-12
    assert np.abs(r["torque"][0]).max() < 1e-12
    assert np.abs(r["plane_spin_current_cd"][0]).max() < 1e-12
    assert np.abs(r["plane_spin_current"][0]).max() > 1e-5
    S, s = r["spins"][0], r["spin_density"][0]
    info = r.device
    J = np.array([-0.2] * 6)
    T = J[:, None] * np.cross(S, s[info.spin_sites])
    assert np.abs(r["torque_neq"][0] - T).max() < 1e-15
    b = [(3, 4), (4, 5)]                      # the analyzer's exchange bonds (spin indices)
    mc = np.array([-0.1 * np.cross(S[i], S[j]) for i, j in b])
    assert np.abs(r["magnon_current"][0] - mc).max() < 1e-15
    # the moments are unit vectors: no unit (a spin run's "spins" are in hbar)
    assert r.unit("spins") == "1" and r.unit("layer_magnetization") == "1"
    assert r.unit("angular_momentum") == "hbar"


def test_neel_afi_junction_is_stationary_without_bias(comm):
    """Paper 000's FM/AFI/FM junction (examples/afi_junction_000.toml, short modes leads, no
    bias): the Neel AFI and the analyzer along +z are a fixed point of the coupled equations
    (the stationary start has rho_CD = 0; exchange and anisotropy torques vanish on collinear
    moments): over 100 steps (10 fs) no moment moves by more than 1e-12; and the Neel state
    is a minimum of the classical energy (a random tilt of 1e-3 raises it)."""
    from helpers import EXAMPLES

    from operators.spin import ClassicalSpinHamiltonian
    from toolkit.config import load_config

    cfg = load_config(os.path.join(EXAMPLES, "afi_junction_000.toml"),
                      ["bias.V=0", "leads.left.sites=8", "leads.right.sites=8"])
    sim = Simulation(cfg, comm)
    S0 = sim.state(root=None)[1]
    sim.step(100)
    S1 = sim.state(root=None)[1]
    sim.destroy()
    assert np.abs(S1 - S0).max() < 1e-12
    dev = sim.device
    h = ClassicalSpinHamiltonian(dev)
    e0 = sum(h.energy(S0).values())
    rng = np.random.default_rng(1)
    moving = ~dev.frozen
    for _ in range(5):
        S = S0.copy()
        S[moving] += 1e-3 * rng.normal(size=(int(moving.sum()), 3))
        S /= np.linalg.norm(S, axis=1, keepdims=True)
        assert sum(h.energy(S).values()) > e0


def test_grouped_inverse_on_the_afi_junction(comm):
    """Paper 000's AFI junction: D splits into groups of coupled moments (its interior AFI
    sites have no hopping: 18 single moments and one group of the 2 outer AFI sites with the
    analyzer), and the grouped spin density equals the ungrouped Dyson density's (1e-12) for
    random moments."""
    from helpers import EXAMPLES

    from toolkit.config import load_config

    cfg = load_config(os.path.join(EXAMPLES, "afi_junction_000.toml"),
                      ["leads.left.sites=8", "leads.right.sites=8"])
    sim = Simulation(cfg, comm)
    S0 = sim.state(root=None)[1]
    ad = AdiabaticEquilibrium(sim.H, sim.problem, sim.poles, S0)
    sizes = sorted(int(m.shape[1]) for m, _ in ad._groups for _ in range(m.shape[0]))
    assert sizes[:18] == [1] * 18 and sum(sizes) == len(ad.moving) and len(sizes) >= 19
    S = S0.copy()
    rng = np.random.default_rng(9)
    S[ad.moving] = rng.normal(size=(len(ad.moving), 3))
    S[ad.moving] /= np.linalg.norm(S[ad.moving], axis=1, keepdims=True)
    rho = ad.density(S)
    sites = sim.H.device.spin_sites[ad.moving]
    sig = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]])
    s_ref = np.array([[0.5 * np.trace(rho[2 * j:2 * j + 2, 2 * j:2 * j + 2] @ sig[a]).real
                       for a in range(3)] for j in sites])
    assert np.abs(ad.spin_density(S) - s_ref).max() < 1e-12
    sim.destroy()


def test_current_driven_run_mpi_equals_serial(comm):
    """A current-driven moment run under a bias (20 steps) on the communicator and on
    PETSc.COMM_SELF (a serial copy on every rank): moments and rho agree to 1e-12 (only the
    summation order differs)."""
    from petsc4py import PETSc

    cfg = seed_valve.valve(L=8, lead_keys={"representation": "modes"}, protocol="asymmetric",
                           t_on=-1.0)
    for ld in cfg["leads"]:
        del ld["sites"]
    cfg["layers"][2].update(frozen=False, damping=0.05, J_ex=-0.1, spin=[0.3, 0.2, 1.0])
    cfg["layers"][0]["J_sd"] = cfg["layers"][2]["J_sd"] = -1.0
    cfg["llg"] = {"equation": "moment", "drive": "current-driven"}
    c = config_from_dict(cfg)
    out = []
    for cm in (comm, PETSc.COMM_SELF):
        sim = Simulation(c, cm)
        sim.step(20)
        out.append(sim.state(root=None))
        sim.destroy()
    (r0, S0), (r1, S1) = out
    assert np.abs(S0 - S1).max() < 1e-12 and np.abs(r0 - r1).max() < 1e-12
    assert np.abs(S0[-1] - np.array([0.3, 0.2, 1.0]) / np.linalg.norm([0.3, 0.2, 1.0])).max() > 1e-6


@pytest.mark.parametrize("representation", ["modes", "extended"])
def test_spin_continuity_residual_per_layer(comm, mpi_tmp_path, representation):
    """Eqs. (A1)-(A4) summed over each magnetic layer in a biased run with moving moments: the
    recorded residual d/dt sum s - sum T^neq - (in - out) is round-off (1e-12) with terms of
    1e-3; the polarizer's inflow is the left lead's spin current, the analyzer's outflow the
    right lead's (both layers touch a face)."""
    from toolkit.results import load_result

    cfg = seed_valve.valve(L=8, lead_keys={"representation": representation},
                           protocol="asymmetric", t_end=0.4, dt=0.1)
    if representation != "extended":
        for ld in cfg["leads"]:
            del ld["sites"]
    cfg["layers"][2].update(frozen=False, damping=0.05, J_ex=-0.1, spin=[0.3, 0.2, 1.0])
    cfg["layers"][0]["J_sd"] = cfg["layers"][2]["J_sd"] = -1.0
    cfg["llg"] = {"equation": "moment", "drive": "current-driven"}
    cfg["time"]["output_every"] = 1
    out = os.path.join(mpi_tmp_path, f"cont_{representation}.h5")
    sim = Simulation(config_from_dict(cfg), comm)
    sim.run(out, progress=False)
    sim.destroy()
    r = load_result(out)
    res = r["spin_continuity_residual"]
    assert res.shape[1:] == (2, 3)
    assert np.abs(res).max() < 1e-12, np.abs(res).max()
    assert np.abs(r["torque_neq"][-1]).max() > 1e-3 and np.abs(r["lead_spin_current"]).max() > 1e-3
