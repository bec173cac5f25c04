"""Magnetic moments (config [llg] equation = "moment", paper 000 Eq. 2) against the analytic
LLG solution, and the angular-momentum balance of electrons plus moments."""
import numpy as np
import pytest
from helpers import single_spin

from integrators import Simulation
from operators.currents import spin_balance
from toolkit import DeviceBuilder
from toolkit.config import G_ELECTRON, ConfigError, config_from_dict


def _moment(B=1.0, theta0=1.0, damping=0.1, dt=0.01, units="natural", **llg):
    b = single_spin(B=(0, 0, B), S0=(np.sin(theta0), 0, np.cos(theta0)), dt=dt, damping=damping)
    b.set("llg", equation="moment", **llg)
    b._doc["units"] = units
    return b


def _trajectory(builder, n_steps, every, comm):
    sim = Simulation(builder.finalized(), comm)
    out = []
    for _ in range(n_steps // every):
        sim.step(every)
        out.append((sim.time, sim.state(root=None)[1][0].copy()))
    sim.destroy()
    return out


def _analytic(t, theta0, omega, lam, sense):
    """LLG with B along +z: phi = sense omega t/(1+lam^2), tan(theta/2) = tan(theta0/2)
    exp(-lam omega t/(1+lam^2)) (both conventions relax towards +B: H = -B.M)."""
    r = 1.0 + lam ** 2
    th = 2 * np.arctan(np.tan(theta0 / 2) * np.exp(-lam * omega * t / r))
    ph = sense * omega * t / r
    return np.array([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)])


@pytest.mark.parametrize("equation", ["moment", "spin"])
def test_damped_precession_analytic(comm, equation):
    """One damped vector in B = 0.7 z (J_sd = 0): a moment precesses counter-clockwise seen
    from +z at omega = g_e B (g/mu_M = g_e/hbar), a spin clockwise at omega = B, both relaxing
    with the rate lam omega/(1 + lam^2).  RK 3/8 (dt = 0.005 for the moment, 0.01 for the
    spin, 2000 steps): global error ~ t omega^5 dt^4/120 ~ 3e-10; the opposite sense or a
    rate off by 1 % would miss by > 1e-2."""
    B, th0, lam = 0.7, 1.2, 0.1
    if equation == "moment":
        b = _moment(B=B, theta0=th0, damping=lam, dt=0.005)
        omega, sense = G_ELECTRON * B, 1.0
    else:
        b = single_spin(B=(0, 0, B), S0=(np.sin(th0), 0, np.cos(th0)), dt=0.01, damping=lam)
        omega, sense = B, -1.0
    for t, M in _trajectory(b, 2000, 250, comm):
        assert np.abs(M - _analytic(t, th0, omega, lam, sense)).max() < 1e-9, (t, M)


def test_moment_rate_follows_g_over_mu_in_ev_fs(comm):
    """eV-fs: g/mu_M defaults to g_e/hbar = 3.0420 /(eV fs); g = 6, mu_M = 2 gives 3 /(eV fs).
    The precession angle after t fs is (g/mu_M) B t (no damping; 400 steps of 0.05 fs: RK
    error ~ t omega^5 dt^4/120 ~ 1e-10 against 3e-2 for a rate off by 1 %)."""
    B = 0.05                                        # eV
    for llg, rate in (({}, G_ELECTRON / 0.6582119569), ({"g": 6.0, "mu_M": 2.0}, 3.0)):
        b = _moment(B=B, theta0=np.pi / 2, damping=0.0, dt=0.05, units="eV-fs", **llg)
        dev = b.finalized()
        assert abs(dev.config.llg.rate - rate) < 1e-12
        (t_int, M), = _trajectory(b, 400, 400, comm)
        t_fs = t_int * 0.6582119569                  # internal time -> fs
        phi = rate * B * t_fs
        assert np.abs(M - [np.cos(phi), np.sin(phi), 0.0]).max() < 1e-9


def _moments_junction(damping=0.0, K=0.0, B=(0, 0, 0)):
    b = DeviceBuilder(size=(8,))
    b.add_layer("PL", (0, 2), J_sd=-0.4, J_ex=-0.2, K=K, spin=(1, 0.3, 0.5), damping=damping)
    b.add_layer("SL", (2, 6))
    b.add_layer("FL", (6, 8), J_sd=-0.3, J_ex=-0.2, K=K, spin=(0.2, -0.4, 1),
                damping=damping)
    b.set_field(B)
    b._doc["leads"] = [{"side": "left", "gamma": 1.0, "temperature": 0.1},
                       {"side": "right", "gamma": 1.0, "temperature": 0.1}]
    b._doc["bias"] = {"protocol": "asymmetric", "V": 0.5, "t_on": 0.0}
    b.set("electrons", n_poles=10)
    b.set("llg", equation="moment", drive="full")
    b.set("time", dt=0.02)
    return b.finalized()


@pytest.mark.parametrize("damping,K,B", [(0.0, 0.0, (0, 0, 0)), (0.2, 0.3, (0.1, 0, 0.2))])
def test_moment_angular_momentum_balance(comm, damping, K, B):
    """Electrons (s = Tr(sigma rho)/2) plus moments carrying -M/g_e [hbar]: d/dt of the total
    = lead spin inflow + external torque, to round-off (1e-12; terms O(0.01-1)).  With the
    moments counted as spins (+M) the balance misses by O(0.1): the test can fail."""
    dev = _moments_junction(damping, K, B)
    sim = Simulation(dev, comm)
    rho, S = sim.state(root=None)
    S = np.random.default_rng(3).normal(size=S.shape)
    S /= np.linalg.norm(S, axis=1, keepdims=True)
    sim.set_state(rho, S, leads=sim.layout.leads_to_global(sim.y, root=None))
    sim.step(5)
    F = sim.y.duplicate()
    sim.rhs(None, sim.time, sim.y, F)
    t = spin_balance(sim.rhs, sim.y, F)
    sim.destroy()
    assert np.abs(t["classical"]).max() > 1e-3 and np.abs(t["electron"]).max() > 1e-3
    assert np.abs(t["residual"]).max() < 1e-12, t
    c = dev.angular_momentum_per_vector
    assert abs(c + 1 / G_ELECTRON) < 1e-15
    wrong = t["electron"] + t["classical"] / c - t["leads"] - t["external"]
    assert np.abs(wrong).max() > 1e-2


def test_closed_moments_conserve_angular_momentum(comm):
    """Closed chain, moving moments, exchange and s-d only: the recorded angular_momentum
    (sum of s - M/g_e) is constant to the RK error (< 1e-11 over 200 steps), sum of M is not."""
    b = DeviceBuilder(size=(6,))
    b.add_layer("A", (0, 3), J_sd=-0.8, J_ex=0.3, spin=(1, 0.2, 0))
    b.add_layer("B", (3, 6), J_sd=-0.5, J_ex=-0.2, spin=(0, 0.3, 1))
    b.set("llg", equation="moment")
    b.set("time", dt=0.05)
    sim = Simulation(b.finalized(), comm)
    o0 = sim.observables(root=None)
    sim.step(200)
    o1 = sim.observables(root=None)
    sim.destroy()
    assert np.abs(o1["angular_momentum"] - o0["angular_momentum"]).max() < 1e-11
    assert np.abs(o1["spins"].sum(axis=0) - o0["spins"].sum(axis=0)).max() > 1e-3


@pytest.mark.skip_in_parallel
@pytest.mark.parametrize("llg,msg", [
    ({"equation": "spin", "g": 2.0}, "llg.g"),
    ({"equation": "moment", "mu_M": 0.0}, "llg.mu_M"),
    ({"equation": "rotor"}, "llg.equation"),
    ({"equation": "moment", "drive": "current-driven"}, "llg.drive"),
    ({"equation": "moment", "drive": "half"}, "llg.drive"),
])
def test_llg_config_errors(llg, msg):
    d = {"lattice": {"size": [4]}, "layers": [{"name": "M", "columns": [0, 2],
                                               "spin": [0, 0, 1]}], "llg": llg}
    with pytest.raises(ConfigError, match=msg):
        config_from_dict(d)


@pytest.mark.skip_in_parallel
def test_moments_need_unit_vectors():
    d = {"lattice": {"size": [4]}, "llg": {"equation": "moment", "drive": "full"},
         "layers": [{"name": "M", "columns": [0, 2], "spin": [0, 0, 1], "spin_length": 2.0}]}
    with pytest.raises(ConfigError, match=r"layers\[0\].spin_length' = 2.0"):
        config_from_dict(d)
