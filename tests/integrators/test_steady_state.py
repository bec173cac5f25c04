"""The stationary NEGF spin density of the instantaneous moments and bias
(integrators/steady_state.py, paper 000's steady-state-NEGF+LLG mode) against the run's
stationary state (wide-band leads), an independent real-axis integral (tight-binding leads) and
its own Dyson reduction."""
import numpy as np
import pytest
import seed_valve
from scipy.integrate import quad_vec

from analysis.transport_landauer import steady_state_density
from integrators.electrons import ElectronProblem
from integrators.stationary import stationary_state
from integrators.steady_state import SteadyStateSpinDensity
from operators.fermi import fermi
from operators.hamiltonian import ElectronHamiltonian, dense_hamiltonian
from operators.leads import TightBindingLead, leads_from_config
from operators.pade import pade_poles
from toolkit import DeviceBuilder
from toolkit.config import config_from_dict
from toolkit.device import device_from_config
from toolkit.parallel import gather_rows

SIGMA = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], complex)
TILT = [[0.6, -0.48, 0.64], [-0.36, 0.8, 0.48], [0.0, 0.6, -0.8]]   # unit vectors


def _spins_of(rho, sites):
    """s_j = Tr(rho_jj sigma)/2 on ``sites`` from a dense rho."""
    return np.array([[0.5 * np.trace(rho[2 * j:2 * j + 2, 2 * j:2 * j + 2] @ SIGMA[a]).real
                      for a in range(3)] for j in sites])


def _wide_band_valve():
    """test_open.open_valve's 6-site chain (wide-band leads, Gamma = 1, T = 0.025) with the
    second layer free."""
    b = DeviceBuilder(size=(6,))
    b.add_layer("PL", (0, 2), J_sd=1.5, spin=(1, 0.3, 0.5), frozen=True)
    b.add_layer("FL", (4, 6), J_sd=1.0, spin=(0, 0, 1), frozen=False)
    b._doc["leads"] = [{"side": "left", "gamma": 1.0, "temperature": 0.025},
                       {"side": "right", "gamma": 1.0, "temperature": 0.025}]
    dev = b.finalized()
    return dev, leads_from_config(dev, dev.config.leads)


def _seed_valve(J_sd=-0.2, **lead_keys):
    """Paper 000's seed valve (tests/seed_valve.py) with the analyzer free and exact
    tight-binding leads (the physical device, no explicit lead sites)."""
    layers = [{"name": "P", "columns": [0, 3], "J_sd": J_sd, "spin": [1, 0, 0], "frozen": True},
              {"name": "N", "columns": [3, 5]},
              {"name": "F", "columns": [5, 8], "J_sd": J_sd, "spin": [0, 0, 1]}]
    cfg = seed_valve.valve(L=8, layers=layers, lead_keys={"representation": "modes",
                                                           **lead_keys})
    for ld in cfg["leads"]:
        del ld["sites"]
    c = config_from_dict(cfg)
    dev = device_from_config(c)
    return c, dev, leads_from_config(dev, c.leads)


def _tilted(ss):
    S = np.array(ss.S_all0, float)
    S[ss.moving] = TILT[:ss.n]
    return S


def test_wide_band_density_equals_stationary_state(comm):
    """Wide-band leads, a bias (mu_l = 0.6, mu_r = -0.2) and a tilted free layer: rho_ss equals
    the run's exact stationary state (integrators.stationary, dense Sylvester) with the same
    100 Pade poles.  The two share the pole part; they differ by the Pade error of the run's
    window (f_a - f_ref as pole sums) on the Lorentzian tails of the wide-band spectral
    function, ~ (beta/xi_N)^2 ~ N_p^-4 (measured 9e-6, 6e-7, 8e-8 at N_p = 30, 60, 100, on
    the interface orbitals' charge): 3e-7.  That difference has no spin (measured 7e-14 in s of
    the moving moments): 1e-11.  Against the exact closed form (analysis.transport, exact Fermi
    functions everywhere) the remaining difference is the pole sum's own tail, measured 9e-8 at
    100 poles and 5.5e-9 at 200 (N_p^-4): 3e-7 and 2e-8."""
    dev, leads = _wide_band_valve()
    V = np.array([0.6, -0.2])
    S = np.array(dev.spins0, float)
    S[~np.asarray(dev.frozen)] = TILT[:2]
    H = ElectronHamiltonian(dev, comm)
    try:
        H.set_spins_global(S)
        loc, _ = stationary_state(H, ElectronProblem(dev, leads), pade_poles(100),
                                  [l.mu + v for l, v in zip(leads, V)])
        ref = gather_rows(loc, comm, root=None)
    finally:
        H.destroy()
    ss = SteadyStateSpinDensity(dev, leads, dev.spins0, 100)
    rho = ss.density(S, V)
    assert np.abs(rho - ref).max() < 3e-7
    s = ss.spin_density(S, V)
    assert np.abs(s - _spins_of(ref, dev.spin_sites[ss.moving])).max() < 1e-11
    assert np.abs(ss.current_driven(S, V)).max() > 1e-3           # a bias effect to compare
    exact = steady_state_density(dev, leads, mu_l=V[0], mu_r=V[1], spins=S, comm=comm)
    assert np.abs(rho - exact).max() < 3e-7
    fine = SteadyStateSpinDensity(dev, leads, dev.spins0, 200)
    assert np.abs(fine.density(S, V) - exact).max() < 2e-8


def _real_axis_density(dev, leads, S, V):
    """rho = sum_a int dE/2pi f_a(E) G Gamma_a G^dag over the lead bands, G = (E - H - Sigma)^-1
    of the whole device (no poles, no Dyson), exact Fermi functions, the shifted leads' exact
    self-energies; adaptive (scipy quad_vec, 1e-13) in theta on each interval between band
    edges, E = c - (h/2) cos(theta) (analytic at the square-root edges)."""
    H = dense_hamiltonian(dev, S)
    N = len(H)
    sh = [l.shifted(v) for l, v in zip(leads, V)]

    def sigmas(E):
        out = []
        for l in sh:
            s = np.zeros((N, N), complex)
            s[np.ix_(l.interface, l.interface)] = l.selfenergy(E)
            out.append(s)
        return out

    def integrand(th, a, b):
        E = 0.5 * (a + b) - 0.5 * (b - a) * np.cos(th)
        sg = sigmas(E)
        G = np.linalg.inv(E * np.eye(N) - H - sum(sg))
        out = np.zeros((N, N), complex)
        for l, s in zip(sh, sg):
            out += fermi(E, l.mu, l.temperature) * (G @ (1j * (s - s.conj().T)) @ G.conj().T)
        return out * 0.5 * (b - a) * np.sin(th) / (2 * np.pi)

    edges = np.unique(np.concatenate([l.band_edges() for l in sh]))
    top = max(l.mu + 40 * l.temperature for l in sh)       # f < e^-40 above
    rho = np.zeros((N, N), complex)
    for a, b in zip(edges[:-1], edges[1:]):
        if a >= top:
            break
        pts = [np.arccos((0.5 * (a + b) - l.mu) / (0.5 * (b - a))) for l in sh if a < l.mu < b]
        rho += quad_vec(integrand, 0, np.pi, args=(a, b), epsabs=1e-13, epsrel=1e-12,
                        norm="max", points=pts or None, limit=2000)[0]
    return rho, H, sigmas


@pytest.mark.skip_in_parallel
def test_tight_binding_density_equals_real_axis_integral():
    """Seed valve, exact tight-binding leads, V_left = 0.25, the analyzer tilted.  (a) The
    Dyson-reduced spin density equals that of the dense rho (round-off: 1e-14).  (b) With
    J_sd = -0.05 the biased device has no bound state (a 1D well of -0.1 binds one below the
    band at zero bias; the raised left lead lifts it into the continuum): lambda_min(H +
    Sigma(E_lo)) > E_lo and lambda_max(H + Sigma(E_hi)) < E_hi at the lowest/highest band edge
    (lambda(H + Sigma(E)) - E decreases monotonically outside the bands).  Then rho_ss equals
    the real-axis integral of the whole lesser Green function to the window quadrature (the
    rule's estimate 9e-11, measured 2.3e-10; 30 poles: Pade error 2e-14 over the band):
    5e-10."""
    c, dev, leads = _seed_valve()
    V = (0.25, 0.0)
    ss = SteadyStateSpinDensity(dev, leads, dev.spins0, 20)
    S = _tilted(ss)
    s = ss.spin_density(S, V)
    assert np.abs(s - _spins_of(ss.density(S, V), dev.spin_sites[ss.moving])).max() < 1e-14
    assert np.abs(s).max() > 1e-2

    c, dev, leads = _seed_valve(J_sd=-0.05)
    ss = SteadyStateSpinDensity(dev, leads, dev.spins0, 30)
    S = _tilted(ss)
    ref, H, sigmas = _real_axis_density(dev, leads, S, V)
    edges = np.concatenate([l.shifted(v).band_edges() for l, v in zip(leads, V)])
    lo, hi = edges.min(), edges.max()
    assert np.linalg.eigvalsh(H + sum(sigmas(lo)).real).min() > lo + 1e-3
    assert np.linalg.eigvalsh(H + sum(sigmas(hi)).real).max() < hi - 1e-3
    rho = ss.density(S, V)
    assert np.abs(rho - ref).max() < 5e-10
    assert abs(np.trace(rho - ss.density(S, None))) > 1e-2      # the bias moves charge


@pytest.mark.skip_in_parallel
def test_window_rule_converges():
    """The default rule (8 Gauss nodes, panels <= distance to the Fermi poles, tol = 1e-10)
    against one with half the panel width, 16 nodes and tol = 1e-13, at a configuration other
    than the set-up's: the seed valve (V_left = 0.25; measured 8e-13 in s, 4e-12 in rho) and a
    negative bias on the right lead (the sign s_a = -1): 1e-10, the tolerance of the rule."""
    c, dev, leads = _seed_valve()
    ss = SteadyStateSpinDensity(dev, leads, dev.spins0, 20)
    fine = SteadyStateSpinDensity(dev, leads, dev.spins0, 20, n_gauss=16, scale=0.5, tol=1e-13)
    S = _tilted(ss)
    for V in ((0.25, 0.0), (0.1, -0.15)):
        q = ss.quadrature(V)
        assert q.error < 1e-10 and len(q.energies) < 200
        assert len(fine.quadrature(V).energies) > len(q.energies)
        assert np.abs(ss.spin_density(S, V) - fine.spin_density(S, V)).max() < 1e-10
        assert np.abs(ss.density(S, V) - fine.density(S, V)).max() < 1e-10
    assert ss.quadrature(0) is None
    # the rule from the config's own pole count (20) is the same object of study
    assert SteadyStateSpinDensity.from_config(c).poles.n_poles == 20


@pytest.mark.skip_in_parallel
def test_current_driven_part_is_linear_in_small_bias():
    """s_CD(V) = s(M, V) - s(M, 0) vanishes exactly at V = 0 (the same cached evaluation), and
    for V = (d, 0) it is linear in d: the departures from linearity s(2d) - 2 s(d) and from
    oddness s(d) + s(-d) are O(d^2) (relative O(d/T): measured 2.2% at d = 0.01, T = 0.026;
    bound 5%), so halving d divides them by 4 (measured 3.9 and 4.0 from d = 0.01 to 0.005;
    within 20%: the next order.  The quadrature noise, ~1e-10, is 1e-4 of them)."""
    c, dev, leads = _seed_valve()
    ss = SteadyStateSpinDensity(dev, leads, dev.spins0, 20, cache_size=8)
    S = _tilted(ss)
    assert np.array_equal(ss.current_driven(S, (0.0, 0.0)), np.zeros((ss.n, 3)))
    assert np.array_equal(ss.current_driven(S, 0), np.zeros((ss.n, 3)))

    def cd(d):
        return ss.current_driven(S, (d, 0.0))

    d = 0.01
    s1, s2, sm = cd(d), cd(2 * d), cd(-d)
    h1, h2, hm = cd(d / 2), cd(d), cd(-d / 2)
    assert np.abs(s1).max() > 1e-4
    nl, nl_half = np.abs(s2 - 2 * s1).max(), np.abs(h2 - 2 * h1).max()
    odd, odd_half = np.abs(s1 + sm).max(), np.abs(h1 + hm).max()
    assert nl < 0.05 * np.abs(s1).max() and odd < 0.05 * np.abs(s1).max()
    assert 3.2 < nl / nl_half < 4.8 and 3.2 < odd / odd_half < 4.8
    assert len(ss._cache) <= 8


@pytest.mark.skip_in_parallel
def test_cache_keeps_a_few_bias_vectors():
    """A square pulse alternates two bias vectors: both stay cached (no recomputation, the
    same result bitwise); an LRU of cache_size entries."""
    c, dev, leads = _seed_valve()
    ss = SteadyStateSpinDensity(dev, leads, dev.spins0, 20, cache_size=2)
    S = _tilted(ss)
    on = ss.spin_density(S, (0.25, 0.0))
    b_on, b_off = ss._bias((0.25, 0.0)), ss._bias((0.0, 0.0))
    for _ in range(3):
        assert np.array_equal(ss.spin_density(S, (0.25, 0.0)), on)
        ss.spin_density(S, 0)
    assert ss._bias((0.25, 0.0)) is b_on and ss._bias((0.0, 0.0)) is b_off
    ss.spin_density(S, (0.1, 0.0))
    assert len(ss._cache) == 2 and (0.25, 0.0) not in ss._cache   # least recently used out


@pytest.mark.skip_in_parallel
def test_errors_name_the_lead_and_the_value():
    c, dev, leads = _seed_valve()
    S0 = dev.spins0
    right = leads[1].replace(mu=-1.5)
    with pytest.raises(ValueError, match="lead 'right': mu = -1.5"):
        SteadyStateSpinDensity(dev, [leads[0], right], S0, 20)
    with pytest.raises(ValueError, match="lead 'right': .* 30 poles is not allowed"):
        SteadyStateSpinDensity(dev, leads, S0, [20, 30])
    cold = TightBindingLead(dev, "left", temperature=0.0, mu=leads[0].mu)
    with pytest.raises(ValueError, match="lead 'left': temperature = 0.0"):
        SteadyStateSpinDensity(dev, [cold, leads[1]], S0, 20)
    with pytest.raises(ValueError, match="leads = .* reservoirs"):
        SteadyStateSpinDensity(dev, [], S0, 20)
    with pytest.raises(ValueError, match="S_all0 = .*shape \\(6, 3\\)"):
        SteadyStateSpinDensity(dev, leads, S0[:3], 20)
    with pytest.raises(ValueError, match="poles = 'many'"):
        SteadyStateSpinDensity(dev, leads, S0, "many")
    with pytest.raises(ValueError, match="tol = 0.0"):
        SteadyStateSpinDensity(dev, leads, S0, 20, tol=0.0)
    ss = SteadyStateSpinDensity(dev, leads, S0, 20)
    with pytest.raises(ValueError, match="V = 0.25 is not allowed: expected 2 finite lead "
                                         "potentials .*'left', 'right'"):
        ss.spin_density(S0, 0.25)
    with pytest.raises(ValueError, match="V = "):
        ss.current_driven(S0, (0.1, np.nan))
    with pytest.raises(ValueError, match="S_all = "):
        ss.density(np.zeros((6, 2)), None)


def test_steady_state_drive_in_a_run(comm):
    """[llg] drive = "steady-state": the LLG's spin density is SteadyStateSpinDensity's
    current-driven part for the run's M(t) and V(t), whatever the evolved rho: the moments'
    dM/dt equals ClassicalSpinHamiltonian.rhs with it (1e-13) under a bias, and with V = 0 the
    drive vanishes exactly (the stationary start, tilted analyzer: only exchange and
    anisotropy act)."""
    import seed_valve

    from integrators import Simulation
    from integrators.steady_state import SteadyStateSource
    from toolkit.config import config_from_dict

    for V, t_on in ((0.25, -1.0), (0.0, 0.0)):
        cfg = seed_valve.valve(L=8, lead_keys={"representation": "modes"},
                               protocol="asymmetric", t_on=t_on)
        cfg["bias"]["V"] = V
        for ld in cfg["leads"]:
            del ld["sites"]
        cfg["layers"][2].update(frozen=False, damping=0.05, J_ex=-0.1, spin=[0.3, 0.2, 1.0])
        cfg["llg"] = {"equation": "moment", "drive": "steady-state"}
        sim = Simulation(config_from_dict(cfg), comm)
        from integrators.rhs import LLG

        src = sim.rhs.term(LLG).source
        assert isinstance(src, SteadyStateSource)
        F = sim.y.duplicate()
        sim.rhs(None, sim.time, sim.y, F)
        x = sim.y.getArray(readonly=True)
        S_all = np.array(sim.rhs.spins_all(sim.y, x), float)
        s_all = src.ss.current_driven(S_all, src.bias(sim.time))   # every moving moment
        s = np.zeros((src.n_local, 3))
        s[src.rows] = s_all[src.pick]
        dS = sim.layout.spins(F.getArray(readonly=True)).real
        if len(dS):                           # a rank may own no spins
            assert np.abs(dS - sim.spinH.rhs(S_all, s)).max() < 1e-13
        if V == 0.0:
            assert np.abs(s_all).max() == 0.0
        else:
            assert np.abs(s_all).max() > 1e-4
        F.destroy()
        sim.destroy()
