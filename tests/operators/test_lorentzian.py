"""Lorentzian auxiliary modes (operators/lorentzian.py): the fit and the dense reference of the
equations of motion, against independent answers: the equivalent pseudomode model, the
wide-band equations of paper 004 as run by qcspin, and an exact closed-chain evolution."""
from __future__ import annotations

import numpy as np
import pytest
from seed_valve import EF, T300

from operators.lorentzian import AuxiliaryModes, LeadChannels, LorentzianFit, chain_fit, rk4
from operators.pade import pade_poles

pytestmark = pytest.mark.skip_in_parallel   # serial NumPy reference (identical on every rank)


def _pseudomode_rhs(H, leads, V):
    """The pseudomode model of ``leads`` (device + one level per channel and Lorentzian,
    coupled by sqrt(a) B_c, damped by a wide-band reservoir Gamma = 2 w at the lead's mu, T),
    integrated with paper 004's wide-band equations written here densely.  V(t): the leads'
    bias (rigid: levels and reservoir mu shift together)."""
    N = H.shape[0]
    lev = []                      # (lead k, B column, eps, w, a)
    for k, ld in enumerate(leads):
        for c in range(ld.B.shape[1]):
            f = ld.fits[c]
            for e, w, a in zip(f.eps, f.w, f.a):
                lev.append((k, ld.B[:, c], e, w, a))
    M = len(lev)
    NF = N + M
    H0 = np.zeros((NF, NF), complex)
    H0[:N, :N] = H
    G = np.zeros(M)
    for q, (_k, b, e, w, a) in enumerate(lev):
        H0[N + q, N + q] = e
        H0[:N, N + q] = -np.sqrt(a) * b
        H0[N + q, :N] = -np.sqrt(a) * b.conj()
        G[q] = 2 * w
    lead_of = np.array([k for k, *_ in lev])

    def Ht(t):
        h = H0.copy()
        v = V(t)
        h[N + np.arange(M), N + np.arange(M)] += v[lead_of]
        return h

    def start(rho0):
        """Levels in equilibrium with their reservoirs, disconnected from the device."""
        rho = np.zeros((NF, NF), complex)
        rho[:N, :N] = rho0
        n_p = max(len(ld.poles.xi) for ld in leads)      # padded with unused zero rows
        Pi = []
        for q, (k, _b, e, w, _a) in enumerate(lev):
            ld = leads[k]
            beta = 1 / ld.temperature
            Pq = np.zeros((n_p, NF), complex)
            occ = 0.5
            for p, (xi, eta) in enumerate(zip(ld.poles.xi, ld.poles.eta)):
                chi = ld.mu + 1j * xi / beta
                g = 1 / (chi - (e - 1j * w))
                occ += eta / beta * (g + np.conj(g))
                Pq[p, N + q] = -(eta * G[q] / beta) / (e - 1j * w - chi)
            rho[N + q, N + q] = occ.real
            Pi.append(Pq)
        return rho, np.array(Pi)

    def rhs(t, state):
        rho, Pi = state
        h = Ht(t)
        heff = h - 0.5j * np.diag(np.concatenate([np.zeros(N), G]))
        drho = -1j * (h @ rho - rho @ h)
        dPi = np.zeros_like(Pi)
        v = V(t)
        for q, (k, *_) in enumerate(lev):
            ld = leads[k]
            beta = 1 / ld.temperature
            E = np.zeros(NF)
            E[N + q] = 1.0
            C = Pi[q].sum(axis=0) - rho[:, N + q] * G[q] / 2 + E * G[q] / 4
            drho[:, N + q] += C
            drho[N + q, :] += C.conj()
            for p, (xi, eta) in enumerate(zip(ld.poles.xi, ld.poles.eta)):
                chi = ld.mu + v[k] + 1j * xi / beta
                dPi[q, p] = -1j * eta * G[q] / beta * E - 1j * (heff @ Pi[q, p] - chi * Pi[q, p])
        return drho, dPi
    return start, rhs


def _fit(eps, w, a):
    return LorentzianFit(np.array(eps, float), np.array(w, float), np.array(a, float), 0.0, 0.0)


def test_hierarchy_equals_the_pseudomode_model():
    """The auxiliary-mode equations are exact for the fitted self-energy: a 4-site device with a
    two-channel lead on the left (channels = orthonormal combinations of two orbitals, each
    with its own Lorentzians) and a one-channel lead on the right, partitioned start, and a
    bias ramp on the left lead, against the equivalent pseudomode model integrated with the
    wide-band equations: the device density agrees to 1e-12 (both RK4 with dt = 0.002: the
    same truncation error, round-off 1e-15 measured) over t = 4."""
    N = 4
    H = np.diag([0.2, -0.1, 0.3, 0.0]).astype(complex)
    for i in range(N - 1):
        H[i, i + 1] = H[i + 1, i] = -1.0
    H[0, 2] = H[2, 0] = 0.3j
    H[2, 0] = -0.3j
    Bl = np.zeros((N, 2), complex)
    Bl[0, 0], Bl[1, 0] = 1 / np.sqrt(2), 1 / np.sqrt(2)
    Bl[0, 1], Bl[1, 1] = 1 / np.sqrt(2), -1 / np.sqrt(2)
    Br = np.zeros((N, 1), complex)
    Br[3, 0] = 1.0
    P = pade_poles(8)
    leads = [LeadChannels(Bl, [_fit([-1.0, 0.0, 1.2], [0.5, 0.8, 0.4], [0.3, 0.5, 0.2]),
                               _fit([0.4], [0.6], [0.7])], 0.3, 0.1, P),
             LeadChannels(Br, [_fit([-0.5, 0.7], [0.6, 0.3], [0.4, 0.25])], -0.2, 0.15,
                          pade_poles(6))]

    def V(t):
        return np.array([0.4 * min(t, 1.0), 0.0])

    rho0 = np.diag([0.9, 0.2, 0.6, 0.4]).astype(complex)
    rho0[0, 1], rho0[1, 0] = 0.1 + 0.05j, 0.1 - 0.05j
    am = AuxiliaryModes(H, leads)
    s = am.partitioned(rho0)
    start, rhs = _pseudomode_rhs(H, leads, V)
    p = start(rho0)
    for k in range(4):                                  # four segments of 1.0 each
        s = am.evolve(s, 0.002, 500, V, t0=float(k))
        p = rk4(rhs, p, 0.002, 500, float(k))
        assert np.abs(s[0] - p[0][:N, :N]).max() < 1e-12
    assert abs(s[0][0, 0] - rho0[0, 0]) > 0.1        # the leads did something


def test_chain_fit_converges_and_stays_physical():
    """The fit of the semi-infinite chain's t_c^2 g_s: weights >= 0 (so Gamma_fit >= 0 and the
    equations are those of a physical reservoir), widths >= w_min, and the error inside the
    band falls with N_L (max |dGamma| over |E| < 1.8: measured 1.4e-1, 2.9e-2, 1.2e-2 for
    N_L = 20, 40, 60; the band-edge square roots make it slow)."""
    errs = []
    for n in (20, 40, 60):
        fit = chain_fit(1.0, 1.0, n, width=1.0)
        assert np.all(fit.a >= 0) and np.all(fit.w >= 1e-3)
        E = np.linspace(-1.8, 1.8, 3001)
        from operators.leads import chain_surface_green

        exact = chain_surface_green(E + 0j, 1.0)
        errs.append(np.abs(-2 * fit(E).imag + 2 * exact.imag).max())
        assert np.all(-fit(np.linspace(-5, 5, 2001)).imag >= 0)
    assert errs[0] > errs[1] > errs[2], errs


def test_wide_lorentzians_give_the_wide_band_lead(comm):
    """One Lorentzian per channel with w -> infinity and a = Gamma w/2 is the wide-band lead:
    lead currents of qcspin's wide-band run (paper 004's equations, partitioned start, spins
    frozen, N_p = 20) are reproduced with an error falling like 1/w (measured 6.7e-4, 6.6e-5
    at w = 10, 100 over t = 3; currents 0.064)."""
    from integrators import Simulation
    from toolkit.config import config_from_dict

    d = {"lattice": {"size": [3]},
         "layers": [{"name": "A", "columns": [0, 3], "J_sd": 1.0, "spin": [1, 0, 1],
                     "frozen": True}],
         "leads": [{"side": "left", "gamma": 0.8, "mu": 0.4, "temperature": 0.1},
                   {"side": "right", "gamma": 0.5, "mu": -0.3, "temperature": 0.1}],
         "electrons": {"initial": "partitioned", "n_poles": 20},
         "time": {"dt": 0.01, "t_end": 3.0}}
    sim = Simulation(config_from_dict(d), comm)
    H = sim.H.to_dense()
    rho0 = sim.state(root=None)[0]
    sim.step(300, record=False)
    I_ref = sim.observables(root=None)["lead_current"]
    sim.destroy()
    P = pade_poles(20)
    errs = []
    for w in (10.0, 100.0):
        leads = []
        for orbs, g, mu in (((0, 1), 0.8, 0.4), ((4, 5), 0.5, -0.3)):
            B = np.zeros((6, 2))
            B[orbs[0], 0] = B[orbs[1], 1] = 1.0
            leads.append(LeadChannels(B, [_fit([0.0], [w], [g * w / 2])] * 2, mu, 0.1, P))
        am = AuxiliaryModes(H, leads)
        dt = 0.2 / w
        s = am.evolve(am.partitioned(rho0), dt, int(round(3.0 / dt)))
        errs.append(np.abs(am.currents(s) - I_ref).max())
    assert errs[1] < 2e-4 and errs[0] > 5 * errs[1], errs


def _valve_currents(H, fit, rho0, poles, n_times):
    """Lead currents of the 16-orbital seed valve H with one lead of channels ``fit`` (both
    spins) on each end orbital pair, from the partitioned start rho0, every 0.5 (10 RK4 steps
    of 0.05), n_times records."""
    leads = []
    for orbs in ((0, 1), (14, 15)):
        B = np.zeros((16, 2))
        B[orbs[0], 0] = B[orbs[1], 1] = 1.0
        leads.append(LeadChannels(B, [fit, fit], EF, T300, poles))
    am = AuxiliaryModes(H, leads)
    s = am.partitioned(rho0)
    cur = [am.currents(s)]
    for _ in range(n_times - 1):
        s = am.evolve(s, 0.05, 10)
        cur.append(am.currents(s))
    return np.array(cur)


def test_partitioned_transient_of_the_valve_against_a_closed_chain():
    """Paper 000's seed valve with tight-binding leads in the Lorentzian representation
    (fit of t_c^2 g_s, 2 spin channels per lead, N_p = 20), partitioned start: the currents
    into the valve follow the exact evolution of the partitioned closed chain (300 sites per
    lead) within the fit error, which falls with N_L but slowly: the band-edge square roots
    of the exact self-energy are hard to fit with positive Lorentzians (measured 1.3e-2,
    7.3e-3 for N_L = 30, 60 up to t = 20; the currents are ~0.02)."""
    from scipy.special import expit
    from seed_valve import _closed_chain_currents

    times = np.arange(0, 20.0001, 0.5)
    ref, rho_closed = _closed_chain_currents(times, partitioned=True)
    H = _valve_h()
    w, U = np.linalg.eigh(H)
    rho0 = (U * expit(-(w - EF) / T300)) @ U.conj().T
    assert np.abs(rho0 - rho_closed[600:616, 600:616]).max() < 1e-12
    P = pade_poles(20)
    errs = []
    for n in (30, 60):
        fit = chain_fit(1.0, 1.0, n, width=1.0)
        errs.append(np.abs(_valve_currents(H, fit, rho0, P, len(times)) - ref).max())
    assert np.abs(ref).max() > 0.02
    assert errs[1] < 1e-2 and errs[0] > errs[1], errs


def _valve_h():
    H = np.zeros((16, 16), complex)
    for i in range(7):
        for s in (0, 1):
            H[2 * i + s, 2 * i + 2 + s] = H[2 * i + 2 + s, 2 * i + s] = -1.0
    sx, sz = np.array([[0, 1], [1, 0]]), np.diag([1.0, -1.0])
    for k in range(8):
        if k < 3:
            H[2 * k:2 * k + 2, 2 * k:2 * k + 2] += -0.1 * sx
        if k >= 5:
            H[2 * k:2 * k + 2, 2 * k:2 * k + 2] += -0.1 * sz
    return H


def test_damped_chain_poles_are_the_extended_self_energy():
    """The pole expansion of L explicit sites with the graded absorber (complex residues) is the
    extended representation's self-energy (TightBindingLead.extended_selfenergy) to 1e-10 on
    and off the real axis, and Gamma from it is >= 0."""
    from operators.leads import TightBindingLead
    from operators.lorentzian import damped_chain_poles
    from toolkit.config import config_from_dict
    from toolkit.device import device_from_config

    dev = device_from_config(config_from_dict({"lattice": {"size": [4]}}))
    lead = TightBindingLead(dev, "left", hopping=1.0, coupling=0.8, onsite=0.1, sites=30)
    poles = damped_chain_poles(lead.hopping, lead.coupling, lead.absorber_profile(),
                               onsite=lead.onsite)
    for E in (-2.5, -1.6, -0.3, 0.9, 1.99, 3.0, -1.0 + 0.4j):
        assert abs(poles(E) - lead.extended_selfenergy(E)[0, 0]) < 1e-10
    assert np.all(poles.w > 0)
    assert np.all(-poles(np.linspace(-4, 4, 801)).imag >= -1e-14)


def test_auxiliary_modes_of_the_extended_lead_against_a_closed_chain():
    """The auxiliary-mode equations with the damped-chain poles (the extended reservoir's
    exact self-energy, 2 spin channels per lead, N_p = 20, RK4 dt = 0.05): the partitioned
    transient of paper 000's seed valve follows the closed chain with 300 sites per lead to
    3.1e-4 (L = 20) and 3.0e-6 (L = 40) up to t = 20, as accurate as the extended reservoir
    with ~6x fewer unknowns (109k instead of 594k at L = 40)."""
    from scipy.special import expit
    from seed_valve import _closed_chain_currents

    from operators.lorentzian import damped_chain_poles

    times = np.arange(0, 20.0001, 0.5)
    ref, _ = _closed_chain_currents(times, partitioned=True)
    H = _valve_h()
    w, U = np.linalg.eigh(H)
    rho0 = (U * expit(-(w - EF) / T300)) @ U.conj().T
    P = pade_poles(20)
    errs = []
    for L in (20, 40):
        fit = damped_chain_poles(1.0, 1.0, (np.arange(1, L + 1) / L) ** 4)
        errs.append(np.abs(_valve_currents(H, fit, rho0, P, len(times)) - ref).max())
    assert errs[0] < 1e-3 and errs[1] < 1e-5, errs
