"""The right-hand side composed from its terms (integrators/rhs.py CoupledRHS): the sum of the
terms evaluated one by one, the stiff split, the checks of what terms write, and the pluggable
spin-density source of the LLG term; serially and under mpirun -n 2."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import valve_1d
from seed_valve import valve

from integrators import Simulation
from integrators.assembly import build_simulation, rhs_terms
from integrators.aux_rhs import AuxiliaryLeads, AuxiliaryRHS
from integrators.open_rhs import OpenRHS, PadeLeads, RigidShift
from integrators.rhs import LLG, ClosedRHS, Coherent, CoupledRHS, Evaluation, Term
from toolkit import DeviceBuilder
from toolkit.config import config_from_dict
from toolkit.parallel import allreduce


def _open_valve():
    """Wide-band leads (two temperatures and Gammas), moving spins with exchange, anisotropy
    and damping, a symmetric bias switched on at t = 0."""
    b = DeviceBuilder(size=(6,))
    b.add_layer("PL", (0, 2), J_sd=1.5, J_ex=-1.0, K=0.1, easy_axis=(1, 0, 0),
                spin=(1, 0.3, 0.5), damping=0.05)
    b.add_layer("FL", (4, 6), J_sd=1.0, spin=(0, 0, 1))
    b._doc["leads"] = [{"side": "left", "gamma": 1.0, "temperature": 0.025},
                       {"side": "right", "gamma": 0.7, "temperature": 0.03}]
    b._doc["bias"] = {"protocol": "symmetric", "V": 0.8, "t_on": 0.0}
    b.set("electrons", n_poles=10)
    b.set("time", dt=0.02)
    return b.finalized()


def _extended(rep1="extended"):
    """Paper 000's seed valve, tight-binding leads with explicit sites (rigid shift under the
    bias) and absorbers (Padé blocks), or the right lead as auxiliary modes; P moves."""
    d = valve(L=4, n_poles=8, dt=0.02)
    d["layers"][0]["frozen"] = False
    d["leads"][1]["representation"] = rep1
    return config_from_dict(d)


CASES = {
    "closed": lambda: valve_1d(N=8, K=0.05, damping=0.1, B=(0, 0, 0.3)).finalized(),
    "wide-band": _open_valve,
    "extended": _extended,
    "extended+modes": lambda: _extended("modes"),
}
TERMS = {
    "closed": [Coherent, LLG],
    "wide-band": [Coherent, PadeLeads, LLG],
    "extended": [Coherent, PadeLeads, RigidShift, LLG],
    "extended+modes": [Coherent, AuxiliaryLeads, RigidShift, LLG],
}
T_EVAL = 0.37        # under the bias (t_on = 0)


def _sim(case, comm):
    sim = Simulation(CASES[case](), comm)
    sim.step(2, record=False)          # a generic state (spins moved, after the bias step)
    return sim


def _evaluate(rhs, sim, full=True) -> np.ndarray:
    """The local right-hand side at T_EVAL, F filled with NaN before (every entry must be
    written).  Collective."""
    F = sim.y.duplicate()
    try:
        F.set(np.nan)
        (rhs if full else rhs.nonstiff)(None, T_EVAL, sim.y, F)
        return F.getArray(readonly=True).copy()
    finally:
        F.destroy()


def _alone(sim, term) -> CoupledRHS:
    """A right-hand side of one term on the run's H, layout and bias."""
    return CoupledRHS(sim.H, sim.spinH, sim.layout, [term], mu0=sim.rhs.mu0,
                      mu_of_t=sim.rhs.mu_of_t)


def _max(a, comm) -> float:
    return allreduce(float(np.abs(a).max()) if a.size else 0.0, comm, "max")


@pytest.mark.parametrize("case", list(CASES))
def test_composed_rhs_is_the_sum_of_its_terms(comm, case):
    """build_simulation composes the terms the problem needs; the composed right-hand side
    equals its terms evaluated one by one (each alone, the components it does not set zeroed)
    and summed: round-off, 1e-14 relative to max |F| (at most four contributions per entry,
    summed in another order)."""
    sim = _sim(case, comm)
    try:
        assert [type(t) for t in sim.rhs.terms] == TERMS[case]
        full = _evaluate(sim.rhs, sim)
        scale = _max(full, comm)
        assert scale > 1e-2            # a generic state: F is not zero
        total = np.zeros_like(full)
        for term in rhs_terms(sim.problem, sim.poles):
            one = _alone(sim, term)
            try:
                part = _evaluate(one, sim)
                assert _max(part, comm) > 0       # every term contributes here
                total += part
            finally:
                one.destroy()
        assert _max(total - full, comm) < 1e-14 * scale
        # the standard compositions build the same right-hand side, bitwise
        args = (sim.H, sim.spinH, sim.layout)
        std = (ClosedRHS(*args) if not sim.leads
               else (AuxiliaryRHS if sim.problem.auxiliary else OpenRHS)(
                   *args, sim.problem, sim.poles, sim.mu_of_t))
        try:
            assert [type(t) for t in std.terms] == TERMS[case]
            assert np.array_equal(_evaluate(std, sim), full)
        finally:
            std.destroy()
    finally:
        sim.destroy()


@pytest.mark.parametrize("case", list(CASES))
def test_decay_plus_nonstiff_is_the_full_rhs(comm, case):
    """L y + N(t, y) = F(t, y) for the composed right-hand side and for every term alone
    (each leaves out its own decay): round-off, 1e-14 relative to max |F| (one sum per entry;
    |L| up to xi_max/beta ~ 25 here).  Without leads N = F and L = 0."""
    sim = _sim(case, comm)
    try:
        rhss = [sim.rhs] + [_alone(sim, t) for t in rhs_terms(sim.problem, sim.poles)]
        for rhs in rhss:
            full, nonstiff = _evaluate(rhs, sim), _evaluate(rhs, sim, full=False)
            D = sim.y.duplicate()
            rhs.decay().to_vec(D)
            Ly = D.getArray(readonly=True) * sim.y.getArray(readonly=True)
            D.destroy()
            assert _max(nonstiff + Ly - full, comm) <= 1e-14 * max(_max(full, comm), 1.0)
        L = sim.rhs.decay()
        assert (L.max_rate > 1.0) == bool(sim.leads)
        if not sim.leads:
            assert np.array_equal(_evaluate(sim.rhs, sim), _evaluate(sim.rhs, sim, False))
        for rhs in rhss[1:]:
            rhs.destroy()
    finally:
        sim.destroy()


class _Zero:
    """A spin-density source of no electrons."""

    def __init__(self, H, *args) -> None:
        self.n = H.dist.n_local_spins

    def __call__(self, t, x, S_all):
        return np.zeros((self.n, 3))


class _Recording:
    """A constant spin density s_c that records what it is called with."""

    def __init__(self, H, layout, problem, poles, mu_of_t) -> None:
        d = H.dist
        rng = np.random.default_rng(7)
        self.s = rng.normal(size=(H.device.n_spins, 3))[d.spin_start:d.spin_stop]
        self.calls: list = []

    def __call__(self, t, x, S_all):
        self.calls.append((t, x.copy(), S_all.copy()))
        return self.s


@pytest.mark.parametrize("case", ["closed", "wide-band", "extended+modes"])
def test_plugged_spin_density_source_changes_only_the_spin_equation(comm, case):
    """build_simulation plugs the source into the LLG term: with a source of no electron spin
    density the spins precess in the field, exchange and anisotropy only
    (ClassicalSpinHamiltonian.rhs with s = None; exact: the s-d term adds J_sd x 0.0), with a
    constant one dS/dt = rhs(S_all, s_c), exactly; the source gets t, the local state and all
    spins; rho and the lead components are the default run's, bitwise."""
    sim = _sim(case, comm)
    try:
        ref = _evaluate(sim.rhs, sim)
        lay = sim.layout
        S_all = sim.state(root=None)[1]
        for factory, s_of in ((_Zero, lambda src: None), (_Recording, lambda src: src.s)):
            made: list = []

            def plug(*args, factory=factory, made=made):
                made.append(factory(*args))
                return made[-1]

            asm = build_simulation(sim.config, comm, spin_density=plug)
            try:
                assert asm.rhs.term(LLG).source is made[0]
                got = _evaluate(asm.rhs, sim)
                n_sp = lay.spins(got).size
                assert np.array_equal(got[:got.size - n_sp], ref[:ref.size - n_sp])
                # the spins as the term gets them (a strided view serially: numpy's matmul
                # may sum in another order for a contiguous copy)
                S_term = asm.rhs.spins_all(sim.y, sim.y.getArray(readonly=True))
                want = asm.spinH.rhs(S_term, s_of(made[0]))
                assert np.array_equal(lay.spins(got).real, want)
                assert not np.array_equal(lay.spins(got), lay.spins(ref))
                if factory is _Recording:
                    (t, x, S), = made[0].calls
                    assert t == T_EVAL and np.array_equal(S, S_all)
                    assert np.array_equal(x, sim.y.getArray(readonly=True))
            finally:
                asm.rhs.destroy()
                asm.H.destroy()
    finally:
        sim.destroy()


class _Adds(Term):
    """Adds 1 to every entry of one component."""

    def __init__(self, component: str = "rho") -> None:
        self.component, self.name = component, f"adds-{component}"

    def bind(self, rhs):
        super().bind(rhs)
        self.adds = (self.component,)

    def evaluate(self, ev: Evaluation) -> None:
        self.rhs.layout.view(ev.f, self.component)[...] += 1.0


def test_what_terms_write_is_checked(comm):
    """Two setters of one component, a setter after an adder, an unknown component and a term
    reused in a second right-hand side are refused, naming the terms; offers are forwarded
    (no leads: no lead currents, no stationary state)."""
    sim = Simulation(CASES["closed"](), comm)
    args = (sim.H, sim.spinH, sim.layout)
    try:
        with pytest.raises(ValueError, match="'coherent' and 'coherent' both set component "
                                             "'rho'"):
            CoupledRHS(*args, [Coherent(), Coherent()])
        with pytest.raises(ValueError, match="'coherent' sets component 'rho' after term "
                                             "'adds-rho'"):
            CoupledRHS(*args, [_Adds(), Coherent()])
        with pytest.raises(ValueError, match="'adds-pi:left' writes component 'pi:left', "
                                             "which the state layout does not have"):
            CoupledRHS(*args, [_Adds("pi:left")])
        term = Coherent()
        one = CoupledRHS(*args, [term])
        with pytest.raises(ValueError, match="'coherent' is already part"):
            CoupledRHS(*args, [term])
        one.destroy()
        # an adder alone: rho zeroed first, the spins (set by nobody) zeroed
        alone = CoupledRHS(*args, [_Adds()])
        f = _evaluate(alone, sim)
        assert np.array_equal(sim.layout.rho(f), np.ones_like(sim.layout.rho(f)))
        assert not sim.layout.spins(f).any()
        alone.destroy()
        charge, spin = sim.rhs.lead_currents(sim.y.getArray(readonly=True))
        assert charge.shape == (0,) and spin.shape == (0, 3)
        with pytest.raises(AttributeError, match="no term of this right-hand side offers "
                                                 "'stationary'"):
            sim.rhs.stationary()
        with pytest.raises(KeyError, match="no term PadeLeads"):
            sim.rhs.term(PadeLeads)
    finally:
        sim.destroy()
