"""rho_eq(M) of the instantaneous moments (integrators/adiabatic.py) against the run's own
equilibrium solvers, for every lead representation."""
import numpy as np
import pytest
import seed_valve

from integrators import Simulation
from integrators.adiabatic import AdiabaticEquilibrium
from integrators.stationary import equilibrium_density
from toolkit.config import config_from_dict
from toolkit.parallel import gather_rows


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
    sim = Simulation(config_from_dict(cfg))
    with pytest.raises(ValueError, match="lead 'right': mu = -1.5"):
        AdiabaticEquilibrium(sim.H, sim.problem, sim.poles, sim.state(root=None)[1])
    sim.destroy()
