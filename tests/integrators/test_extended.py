"""Finite-band tight-binding leads in the time domain: the "extended" representation (explicit
lead sites, graded wide-band absorbers), the lead contract and the stationary/equilibrium
states built on it.

The device of the benchmarks is paper 000's 8-site spin-valve chain (3 moments along x, 2
normal sites, 3 along z; hopping 1, -J_sd sigma.M with J_sd = 0.1, i.e. qcspin's
+J_sd/2 sigma.S with J_sd = -0.2; E_F = -1.6; T = 0.025852 = 300 K in eV).
"""
from __future__ import annotations

import json
import os
import zlib

import h5py
import numpy as np
import pytest
from helpers import assert_restart_is_exact, record_lead_currents, rhs_norm
from scipy.special import expit
from seed_valve import EF, T300, _closed_chain_currents, _Extended, _landauer, valve

from analysis.transport import landauer_current
from integrators import Simulation
from operators.hamiltonian import dense_hamiltonian
from operators.leads import leads_from_config
from toolkit.config import ConfigError, config_from_dict
from toolkit.device import device_from_config, extend_device
from toolkit.parallel import barrier


# ---------------------------------------------------------------------------- the contract
def test_extend_device_adds_lead_columns_and_keeps_the_device():
    """The extended device's H: the device block is the device's H, the explicit columns are
    a clean lattice with the lead's hopping and on-site energy, the coupling bonds carry t_c,
    nothing else connects them (2D strip, both sides, different parameters)."""
    cfg = config_from_dict({"lattice": {"size": [4, 2], "mu_bar": 0.3},
                            "layers": [{"name": "A", "columns": [0, 2], "J_sd": 1.0,
                                        "spin": [0, 1, 0]}, {"name": "B", "columns": [2, 4]}]})
    dev = device_from_config(cfg)

    class Spec:
        def __init__(self, columns, hopping, onsite, coupling):
            self.columns, self.hopping, self.onsite, self.coupling = (columns, hopping, onsite,
                                                                      coupling)

    edev, ext = extend_device(dev, Spec(3, 0.7, -0.2, 0.4), Spec(2, 1.3, 0.5, 0.9))
    assert ext.offset == 6 and edev.n_sites == dev.n_sites + 10
    H, He = dense_hamiltonian(dev), dense_hamiltonian(edev)
    d = slice(2 * ext.offset, 2 * (ext.offset + dev.n_sites))
    assert np.array_equal(He[d, d], H)
    for side, spec, ncol in (("left", Spec(3, 0.7, -0.2, 0.4), 3),
                             ("right", Spec(2, 1.3, 0.5, 0.9), 2)):
        sl = ext.lead_orbitals(side)
        blk = He[sl, sl]
        assert np.allclose(np.diag(blk), spec.onsite)
        n = ncol * 2      # sites of the explicit columns (cross-section 2)
        ref = np.zeros((n, n))
        for x in range(ncol):
            for y in range(2):
                i = x * 2 + y
                if y == 0:
                    ref[i, i + 1] = ref[i + 1, i] = -spec.hopping
                if x + 1 < ncol:
                    ref[i, i + 2] = ref[i + 2, i] = -spec.hopping
        assert np.allclose(blk[0::2, 0::2] - np.diag(np.diag(blk[0::2, 0::2])), ref)
        assert np.allclose(blk[0::2, 1::2], 0)
        # coupling: only between the column next to the device and the face, x bonds, t_c
        face = ext.column(side, 0)
        lead_col = ext.column(side, 1)
        sites_face = np.flatnonzero(edev.coords[:, 0] == face)
        sites_lead = np.flatnonzero(edev.coords[:, 0] == lead_col)
        C = He[np.ix_(2 * sites_lead, 2 * sites_face)]
        assert np.allclose(C, -spec.coupling * np.eye(2))
    # device orbitals couple to lead orbitals only through the face
    L = ext.lead_orbitals("left")
    assert np.count_nonzero(He[L, d][:, 4:]) == 0


def test_lead_modes_of_each_model():
    """A wide-band lead is one coupling on the face (its per-orbital Gamma); a tight-binding lead
    is L explicit columns with the graded absorber on the outermost n (Gamma = g (k/n)^p)."""
    c = config_from_dict(valve(L=12, absorbing=5, lead_keys={"absorber_gamma": 0.8,
                                                              "absorber_power": 2}))
    dev = device_from_config(c)
    tb = leads_from_config(dev, c.leads)[0]
    m = tb.time_domain()
    assert (m.model, m.representation, m.sites.columns) == ("tight-binding", "extended", 12)
    (cp,) = m.couplings
    assert cp.columns == (8, 9, 10, 11, 12) and cp.name == "pi:left:absorber"
    assert np.allclose(cp.gamma[::2], 0.8 * (np.arange(1, 6) / 5) ** 2)
    wb_cfg = config_from_dict({"lattice": {"size": [3, 2]},
                               "leads": [{"side": "left", "gamma": [1, 1, 0.5, 0.5]}]})
    wb = leads_from_config(device_from_config(wb_cfg), wb_cfg.leads)[0]
    mw = wb.time_domain()
    assert mw.sites is None and mw.couplings[0].columns == (0,)
    assert np.array_equal(mw.couplings[0].gamma, [1, 1, 0.5, 0.5])
    with pytest.raises(ValueError, match="representation"):
        tb.time_domain("pseudo")
    assert tb.time_domain("modes").channels is not None


@pytest.mark.parametrize("bad, match", [
    ({"sites": 0}, r"leads\[0\]\.sites"),
    ({"sites": 4, "absorbing": 5}, r"leads\[0\]\.absorbing"),
    ({"absorber_gamma": -1}, r"leads\[0\]\.absorber_gamma"),
    ({"representation": "pseudo"}, r"leads\[0\]\.representation"),
    ({"lorentzians": 0}, r"leads\[0\]\.lorentzians"),
    ({"lorentzian_width": 0.0}, r"leads\[0\]\.lorentzian_width"),
    ({"sites": 2.5}, r"leads\[0\]\.sites"),
])
def test_bad_extended_keys_are_refused(bad, match):
    d = valve()
    d["leads"][0].update(bad)
    with pytest.raises(ConfigError, match=match):
        config_from_dict(d)


# ---------------------------------------------------------------------------- accuracy
def test_absorber_error_falls_with_length(comm):
    """Stationary current of the 8-site valve under 0.25 V, Landauer with the self-energy the
    extended representation puts on the face vs the exact one: relative error 5e-6 with the
    defaults (L = n = 60), falling with L (measured 7.9e-4, 1.6e-5, 4.7e-6, 2.2e-6 at
    L = n = 20, 40, 60, 80, power 4; README table).  Both integrals to rtol 1e-11."""
    exact = _landauer(valve(), comm).current
    errs = []
    for L in (20, 40, 60, 80):
        d = valve(L=L)
        errs.append(abs(_landauer(d, comm, _Extended).current / exact - 1))
    assert errs[2] < 1e-5, errs            # the defaults meet the stated accuracy
    assert errs[0] > errs[1] > errs[2] > errs[3], errs
    d = valve()
    for lead in d["leads"]:
        del lead["sites"]
    lead = leads_from_config(device_from_config(config_from_dict(d)),
                             config_from_dict(d).leads)[0]
    assert lead.sites == lead.absorbing == 60 and lead.absorber_power == 4.0


def test_extended_stationary_state_is_exact_for_its_representation(comm):
    """The biased stationary state (bias on before t = 0) is a fixed point of the right-hand
    side (|F| < 1e-10: round-off of the LU solves and the Sylvester solve) and its lead
    currents (on the lead-device bonds) are the Landauer current of the representation's own
    self-energy to 1e-8 relative (Padé Fermi functions, N_p = 30, vs the exact ones in
    Landauer), equal and opposite at the two leads, and within the absorber error of L = 20
    (7.9e-4 measured) of the exact tight-binding lead."""
    d = valve(L=20, n_poles=30, t_on=-1.0)
    sim = Simulation(config_from_dict(d), comm)
    try:
        assert rhs_norm(sim, 0.0) < 1e-10
        obs = sim.observables(root=None)
        I = obs["lead_current"]
        assert I[0] == pytest.approx(-I[1], rel=1e-10)
        own = _landauer(d, comm, _Extended).current
        assert I[0] == pytest.approx(own, rel=1e-8)
        exact = _landauer(d, comm).current
        assert abs(I[0] / exact - 1) < 1e-3
        # the explicit sites are not part of the device's observables
        assert obs["spin_density"].shape == (8, 3)
        assert obs["monolayer_polarization"].shape == (8, 3)
        assert sim.state(root=None)[0].shape == (2 * (8 + 40),) * 2
    finally:
        sim.destroy()


def test_effective_matrix_is_h_plus_shifts_minus_i_gamma_half(comm):
    """integrators.stationary.effective_matrix, the one H_eff of the stationary solves (the
    dense Sylvester step gathers the same matrix), is H + sum_l V_l P_l - i Gamma/2 entry for
    entry, bitwise: a wide-band lead on the left face (Gamma/2 on its orbitals), an extended
    tight-binding lead on the right (absorber Gamma on the outer sites, bias shift V on its
    explicit sites).  The reference adds the same numbers with NumPy (exact: one addition per
    entry of the diagonal real and imaginary parts)."""
    from integrators.stationary import effective_matrix
    from operators.hamiltonian import gather_dense

    d = valve(L=6, n_poles=10)
    d["leads"][0] = {"side": "left", "gamma": 0.8, "mu": EF, "temperature": T300,
                     "n_poles": 10}
    sim = Simulation(config_from_dict(d), comm)
    try:
        prob, N = sim.problem, sim.edevice.n_orbitals
        assert prob.shifts and [c.lead_index for c in prob.couplings] == [0, 1]
        V = [0.0, 0.35]
        A = effective_matrix(sim.H, prob, V)
        got = gather_dense(A, N, comm)
        A.destroy()
        gam = np.zeros(N)
        for c in prob.couplings:
            np.add.at(gam, np.asarray(c.interface), c.gamma)
        shift = np.zeros(N)
        for k, sl in prob.shifts:
            shift[sl] = V[k]
        ref = sim.H.to_dense()
        ref[np.diag_indices(N)] += shift - 0.5j * gam
        assert np.count_nonzero(gam[:16]) and np.count_nonzero(gam[16:])
        assert np.array_equal(got, ref)
    finally:
        sim.destroy()


def test_equilibrium_fills_isolated_sites_by_the_fermi_function(comm):
    """At zero bias the stationary state is the pole-sum equilibrium: a fixed point, no
    current, and the density of two sites cut off from everything (zero hopping, as inside
    paper 000's antiferromagnetic insulator) is sum_levels f(eps) (Padé Fermi function of
    N_p = 30 poles vs the exact one: 1e-10), where the Sylvester equation is singular.  Under a
    bias the isolated sites keep this occupation (the first lead's mu before the bias)."""
    layers = [{"name": "A", "columns": [0, 3]},
              {"name": "X", "columns": [3, 5], "J_sd": -0.6, "spin": [0, 0, 1], "frozen": True,
               "hopping": 0.0},
              {"name": "B", "columns": [5, 8]}]
    bonds = [{"between": ["A", "X"], "hopping": 0.0}, {"between": ["X", "B"], "hopping": 0.0}]
    f = expit(-np.array([-0.3, 0.3]) / T300)   # levels (up, down) = -/+ 0.3 at mu = 0
    for t_on in (1e9, -1.0):
        d = valve(L=10, n_poles=30, t_on=t_on, layers=layers, bonds=bonds)
        for lead in d["leads"]:
            lead["mu"] = 0.0
        sim = Simulation(config_from_dict(d), comm)
        try:
            assert rhs_norm(sim, 0.0) < 1e-10
            rho = sim.state(root=None)[0]
            off = 2 * sim.extension.offset
            for site in (3, 4):
                blk = rho[off + 2 * site:off + 2 * site + 2, off + 2 * site:off + 2 * site + 2]
                assert np.allclose(np.diag(blk).real, f, atol=1e-10)
                assert abs(blk[0, 1]) < 1e-12
            obs = sim.observables(root=None)
            # the cut device carries no current, with or without bias
            assert np.abs(obs["lead_current"]).max() < 1e-10
            if t_on < 0:      # but the left half fills up to the left lead's raised mu
                assert rho[off, off].real > 0.59
        finally:
            sim.destroy()


def test_transient_after_a_bias_step_matches_a_long_closed_chain(comm):
    """Currents into the valve after a 0.25 V step of the left lead (band and mu), started
    from the equilibrium at E_F: the extended representation against the exact evolution of
    the closed chain with 300 explicit sites per lead, whose reflections return only at
    t ~ 300.  Up to t = 30: max deviation 1.8e-4 with L = 20 and 8.6e-6 with L = 40 (N_p = 20,
    dt = 0.1; 5.9e-7 with N_p = 30, dt = 0.05), i.e. the error falls with L; the currents
    themselves are ~0.04."""
    times = np.arange(0, 30.0001, 0.5)
    ref = _closed_chain_currents(times)[0]
    errs = []
    for L in (20, 40):
        sim = Simulation(config_from_dict(valve(L=L, t_end=30.0)), comm)
        try:
            cur = record_lead_currents(sim, len(times) - 1)
        finally:
            sim.destroy()
        errs.append(np.abs(cur - ref).max())
    assert ref[:, 0].max() > 0.035                 # a real transient, not zeros
    assert errs[1] < 2e-5 and errs[0] > 5 * errs[1], errs


def test_partitioned_start_matches_a_long_closed_chain(comm):
    """Paper 000's start: valve and leads disconnected before t = 0, each in its own
    equilibrium at E_F, connected at t = 0 (no bias).  The valve block of the initial state is
    the Fermi function of the valve's own H (1e-10: Padé N_p = 20 vs the exact f; measured
    1.4e-11), it has no coherence with the leads, and the currents into the valve follow the
    exact evolution of the partitioned closed chain (300 sites per lead) to 7.3e-4 (L = 20)
    and 2.4e-5 (L = 40) up to t = 30; 'partitioned-empty' starts with an empty valve."""
    times = np.arange(0, 30.0001, 0.5)
    ref, rho_closed = _closed_chain_currents(times, partitioned=True)
    errs = []
    for L in (20, 40):
        d = valve(L=L, t_end=30.0)
        d["bias"] = {}
        d["electrons"]["initial"] = "partitioned"
        sim = Simulation(config_from_dict(d), comm)
        try:
            rho = sim.state(root=None)[0]
            o = 2 * sim.extension.offset
            dv = slice(o, o + 16)
            assert np.abs(rho[dv, dv] - rho_closed[600:616, 600:616]).max() < 1e-10
            assert np.abs(rho[dv, :o]).max() == 0 and np.abs(rho[dv, o + 16:]).max() == 0
            cur = record_lead_currents(sim, len(times) - 1)
        finally:
            sim.destroy()
        errs.append(np.abs(cur - ref).max())
    assert np.abs(ref).max() > 0.02
    assert errs[0] < 1e-3 and errs[1] < 5e-5 and errs[0] > 10 * errs[1], errs
    d = valve(L=6)
    d["electrons"]["initial"] = "partitioned-empty"
    sim = Simulation(config_from_dict(d), comm)
    rho = sim.state(root=None)[0]
    o = 2 * sim.extension.offset
    assert np.abs(rho[o:o + 16, :]).max() == 0 and np.trace(rho).real > 1   # leads filled
    sim.destroy()


def test_partitioned_start_with_wide_band_leads(comm):
    """With wide-band leads the partitioned start is the isolated device's equilibrium at the
    first lead's mu and T (Padé vs exact Fermi function, 1e-10) and Pi = 0."""
    d = {"lattice": {"size": [4]},
         "layers": [{"name": "A", "columns": [0, 4], "J_sd": 1.0, "spin": [1, 0, 0]}],
         "leads": [{"side": "left", "gamma": 1.0, "mu": 0.2, "temperature": 0.05},
                   {"side": "right", "gamma": 1.0, "mu": 0.2, "temperature": 0.05}],
         "electrons": {"initial": "partitioned", "n_poles": 30},
         "time": {"dt": 0.1, "t_end": 1.0}}
    cfg = config_from_dict(d)
    sim = Simulation(cfg, comm)
    try:
        rho = sim.state(root=None)[0]
        w, U = np.linalg.eigh(dense_hamiltonian(device_from_config(cfg)))
        ref = (U * expit(-(w - 0.2) / 0.05)) @ U.conj().T
        assert np.abs(rho - ref).max() < 1e-10
        assert all(np.abs(b).max() == 0 for b in sim.layout.leads_to_global(sim.y, root=None))
        sim.step(3, record=False)     # connected from t = 0: charge flows in
        assert np.all(np.isfinite(sim.state(root=None)[0]))
    finally:
        sim.destroy()


# ---------------------------------------------------------------------------- state files
def test_restart_and_refusals_with_extended_leads(comm, mpi_tmp_path):
    """A run with extended leads checkpoints its components by name with the representation,
    restarts bitwise, and a state is refused by a run with another representation (other
    'sites') with a one-line message naming the key."""
    d = valve(L=8, n_poles=10, t_end=1.0)
    out, _ = assert_restart_is_exact(config_from_dict(d), comm, mpi_tmp_path, "ext.h5")
    if comm.getRank() == 0:
        with h5py.File(out, "r") as f:
            g = f["checkpoint"][f"slot{f['checkpoint'].attrs['slot']}"]
            assert {"pi:left:absorber", "pi:right:absorber"} <= set(g)
            leads = json.loads(g.attrs["leads"])
            assert leads[0]["representation"] == "extended" and leads[0]["sites"] == 8
    barrier(comm)
    other = valve(L=9, n_poles=10)
    with pytest.raises(ConfigError, match=r"leads\[0\]\.sites. = 9.*sites = 8"):
        Simulation.from_checkpoint(out, config_from_dict(other), comm)


def test_legacy_checkpoint_names_still_restart(comm, mpi_tmp_path):
    """Checkpoints of the previous release name the wide-band lead blocks lead_0, lead_1 (no
    'leads' attribute): they still restart, bitwise like the named ones."""
    d = {"lattice": {"size": [4]},
         "layers": [{"name": "A", "columns": [0, 2], "J_sd": 1.0, "spin": [1, 0, 0]},
                    {"name": "B", "columns": [2, 4], "J_sd": 1.0, "spin": [0, 0, 1]}],
         "leads": [{"side": "left", "gamma": 1.0, "mu": 0.2},
                   {"side": "right", "gamma": 0.5}],
         "electrons": {"n_poles": 8},
         "time": {"dt": 0.1, "t_end": 1.0, "output_every": 2, "checkpoint_every": 2}}
    out = os.path.join(mpi_tmp_path, "old.h5")
    sim = Simulation(config_from_dict(d), comm)
    sim.run(out, progress=False, max_steps=4)
    sim.destroy()
    if comm.getRank() == 0:
        with h5py.File(out, "r+") as f:
            for s in ("slot0", "slot1"):
                g = f["checkpoint"][s]
                # that release stored one CRC-32 per whole array ("crc32"), not per part
                del g.attrs["crc32_parts"]
                for k, name in enumerate(("pi:left", "pi:right")):
                    g.move(name, f"lead_{k}")
                sums = {n: zlib.crc32(np.ascontiguousarray(g[n][()]).tobytes()) for n in g}
                g.attrs["crc32"] = json.dumps(sums)
                del g.attrs["leads"]
    barrier(comm)
    sim = Simulation(config_from_dict(d), comm)
    sim.run(out, progress=False, restart=True)
    got = sim.state(root=None)[0]
    sim.destroy()
    sim = Simulation(config_from_dict(d), comm)
    sim.run(None, progress=False)
    assert np.array_equal(sim.state(root=None)[0], got)
    sim.destroy()


def test_per_orbital_wide_band_gamma(comm):
    """A wide-band lead with Gamma given per orbital: uniform values give bitwise the scalar
    run; non-uniform ones give the Landauer current of that Gamma (poles method, exact for
    wide-band leads; Padé N_p = 30: 1e-9 relative)."""
    base = {"lattice": {"size": [5]},
            "layers": [{"name": "A", "columns": [0, 2], "J_sd": 1.0, "spin": [1, 0, 0],
                        "frozen": True},
                       {"name": "B", "columns": [2, 5], "J_sd": 1.0, "spin": [0, 1, 0],
                        "frozen": True}],
            "leads": [{"side": "left", "gamma": 0.8, "mu": 0.3},
                      {"side": "right", "gamma": 1.0, "mu": -0.3}],
            "electrons": {"n_poles": 30}, "time": {"dt": 0.1, "t_end": 1.0}}
    vec = json.loads(json.dumps(base))
    vec["leads"][0]["gamma"] = [0.8, 0.8]
    runs = []
    for d in (base, vec):
        sim = Simulation(config_from_dict(d), comm)
        sim.step(5, record=False)
        runs.append(sim.state(root=None)[0])
        sim.destroy()
    assert np.array_equal(runs[0], runs[1])
    vec["leads"][0]["gamma"] = [0.8, 0.3]         # spin-dependent coupling
    cfg = config_from_dict(vec)
    sim = Simulation(cfg, comm)
    I = sim.observables(root=None)["lead_current"]
    sim.destroy()
    dev = device_from_config(cfg)
    ref = landauer_current(dev, leads_from_config(dev, cfg.leads), method="poles", comm=comm)
    assert I[0] == pytest.approx(ref.current, rel=1e-9)
    assert I[1] == pytest.approx(-ref.current, rel=1e-9)


def test_currents_are_per_time_unit_of_the_config(comm):
    """In eV-fs units every current is per fs (the internal unit is hbar/eV = 0.658 fs): the
    same junction in natural units (E0 = 1 eV) and in eV-fs gives lead and plane currents that
    differ by exactly the factor hbar = 0.6582119569 eV fs (1e-12), so a file's '1/(fs)' label
    is true."""
    from toolkit.units import HBAR_EV_FS

    d = valve(L=6, n_poles=10, t_on=-1.0)
    d["output"] = {"planes": [3], "spin_balance": True}
    obs = []
    for units in ("natural", "eV-fs"):
        d["units"] = units
        sim = Simulation(config_from_dict(d), comm)
        obs.append(sim.observables(root=None))
        sim.destroy()
    for key in ("lead_current", "lead_spin_current", "plane_current", "plane_spin_current"):
        assert np.allclose(obs[1][key] * HBAR_EV_FS, obs[0][key], rtol=1e-12, atol=1e-15), key
    assert abs(obs[0]["lead_current"][0]) > 1e-3


def test_equilibrium_with_bound_states_matches_the_exact_lead(comm):
    """A strongly magnetic site (J_sd = 8: levels at -/+ 4, outside the leads' band [-2, 2])
    binds states below and above the band.  The stationary state at zero bias is the pole sum,
    a fixed point of the equations of motion (1e-10), and its device block equals the
    pole-sum equilibrium with the *exact* tight-binding self-energy, written here with dense
    NumPy, within the absorber error at the complex pole energies (measured 6e-4, 3.4e-6,
    1.3e-8, 2.2e-9 for L = 15, 30, 60, 90), the bound states included (the Sylvester equation
    cannot fill them)."""
    from operators.pade import pade_poles

    layers = [{"name": "A", "columns": [0, 2]},
              {"name": "X", "columns": [2, 3], "J_sd": 8.0, "spin": [0, 0, 1], "frozen": True},
              {"name": "B", "columns": [3, 5]}]
    errs = []
    for L in (30, 60):
        d = valve(L=L, n_poles=30, t_on=1e9, layers=layers)
        d["lattice"]["size"] = [5]
        cfg = config_from_dict(d)
        sim = Simulation(cfg, comm)
        try:
            assert rhs_norm(sim, 0.0) < 1e-10
            rho = sim.state(root=None)[0]
            o = 2 * sim.extension.offset
            rho_dev = rho[o:o + 10, o:o + 10]
        finally:
            sim.destroy()
        dev = device_from_config(cfg)
        left, right = leads_from_config(dev, cfg.leads)
        H = dense_hamiltonian(dev)
        poles, beta = pade_poles(30), 1.0 / T300
        ref = 0.5 * np.eye(10, dtype=complex)
        for xi, eta in zip(poles.xi, poles.eta):
            z = EF + 1j * xi / beta
            A = z * np.eye(10) - H
            A[:2, :2] -= left.selfenergy(z)
            A[-2:, -2:] -= right.selfenergy(z)
            G = np.linalg.inv(A)
            ref += (eta / beta) * (G + G.conj().T)
        errs.append(np.abs(rho_dev - ref).max())
    assert errs[0] < 1e-5 and errs[1] < 1e-7, errs
    # the bound state below the band is (nearly) full, the one above it empty
    w, U = np.linalg.eigh(H)
    assert w[0] < -2 and w[-1] > 2
    assert (U[:, 0].conj() @ ref @ U[:, 0]).real > 0.5
    assert (U[:, -1].conj() @ ref @ U[:, -1]).real < 1e-3   # (device-only eigenvector)


def test_run_file_of_a_device_without_spins(comm, mpi_tmp_path):
    """A junction without classical spins (spins of shape (0, 3)) writes its records and
    checkpoints and restarts (zero-size datasets need unlimited axes and a CRC of no bytes)."""
    d = {"lattice": {"size": [4, 2]},
         "leads": [{"side": "left", "gamma": [1.0, 1.0, 0.5, 0.5], "mu": 0.3},
                   {"side": "right", "gamma": 1.0}],
         "electrons": {"n_poles": 8},
         "time": {"dt": 0.1, "t_end": 0.4, "output_every": 2, "checkpoint_every": 2}}
    out = os.path.join(mpi_tmp_path, "nospin.h5")
    sim = Simulation(config_from_dict(d), comm)
    sim.run(out, progress=False)
    sim.destroy()
    d["time"]["t_end"] = 0.8
    sim = Simulation(config_from_dict(d), comm)
    res = sim.run(out, progress=False, restart=True)
    sim.destroy()
    assert res["status"] == "finished" and res["steps"] == 8
    if comm.getRank() == 0:
        with h5py.File(out, "r") as f:
            assert f["spins"].shape == (5, 0, 3) and f["time"].shape == (5,)
    barrier(comm)


def test_extended_leads_on_a_2d_strip(comm):
    """Extended leads with the device's cross-section (a 5 x 2 strip: two transverse channels
    per spin): the biased stationary state is a fixed point whose lead currents equal Landauer
    with the representation's own self-energy (transverse modes, 1e-8) and the exact lead
    within its absorber error (measured 7.4e-3, 1.2e-4, 5.6e-6 for L = 20, 40, 60: the upper
    transverse band starts 0.35 below this bias window, slow electrons), and the spin
    continuity over the whole electron problem (moving spins, absorber inflow included) holds
    to 1e-12."""
    d = {"lattice": {"size": [5, 2], "hopping": 1.0},
         "layers": [{"name": "A", "columns": [0, 2], "J_sd": 0.8, "spin": [1, 0, 0],
                     "J_ex": -0.3},
                    {"name": "B", "columns": [2, 5], "J_sd": 0.8, "spin": [0, 1, 1]}],
         "leads": [{"side": "left", "model": "tight-binding", "mu": -0.5, "sites": 20,
                    "n_poles": 20, "temperature": 0.05},
                   {"side": "right", "model": "tight-binding", "mu": -0.5, "sites": 20,
                    "n_poles": 20, "temperature": 0.05, "coupling": 0.8}],
         "bias": {"protocol": "symmetric", "V": 0.3, "t_on": -1.0},
         "output": {"spin_balance": True},
         "time": {"dt": 0.1, "t_end": 1.0}}
    cfg = config_from_dict(d)
    sim = Simulation(cfg, comm)
    try:
        F = sim.y.duplicate()
        sim.rhs.nonstiff(None, 0.0, sim.y, F)
        rho_part = sim.layout.rho(F.getArray(readonly=True))
        # rho is stationary (spins move: their own part of F is not 0)
        assert allreduce_max(np.abs(rho_part).max(), comm) < 1e-10
        F.destroy()
        obs = sim.observables(root=None)
        assert np.abs(obs["spin_balance_residual"]).max() < 1e-12
    finally:
        sim.destroy()
    dev = device_from_config(cfg)
    left, right = leads_from_config(dev, cfg.leads)
    args = dict(method="quad", comm=comm, rtol=1e-10, breakpoints=np.linspace(-3, 3, 61))
    own = landauer_current(dev, (_Extended(left.shifted(0.15)), _Extended(right.shifted(-0.15))),
                           **args).current
    exact = landauer_current(dev, (left.shifted(0.15), right.shifted(-0.15)), **args).current
    I = obs["lead_current"]
    assert I[0] == pytest.approx(own, rel=1e-8) and I[1] == pytest.approx(-own, rel=1e-8)
    assert abs(I[0] / exact - 1) < 1e-2
    errs = []
    for L in (40, 60):
        lw, rw = (lead.replace(sites=L, absorbing=L) for lead in (left, right))
        errs.append(abs(landauer_current(dev, (_Extended(lw.shifted(0.15)),
                                              _Extended(rw.shifted(-0.15))), **args).current
                        / exact - 1))
    assert errs[0] < 3e-4 and errs[1] < 1e-5, errs


def allreduce_max(x, comm):
    from toolkit.parallel import allreduce

    return allreduce(float(x), comm, "max")


def test_review_fixes(comm, mpi_tmp_path):
    """Lead names cannot break checkpoints ('/' or ':' refused, so components cannot collide);
    'ground' is refused with explicit lead sites (n_electrons would count them); a Gamma quench
    from a checkpoint is allowed, a state with more lead blocks than the config has leads is
    refused in one line; the partitioned start takes the first lead's mu with mixed leads."""
    from scipy.special import expit

    for name in ("a/b", "a:b"):
        d = valve()
        d["leads"][0]["name"] = name
        with pytest.raises(ConfigError, match=r"leads\[0\]\.name"):
            config_from_dict(d)
    d = valve(L=4)
    d["electrons"]["initial"] = "ground"
    with pytest.raises(ConfigError, match=r"electrons\.initial.*ground"):
        Simulation(config_from_dict(d), comm)
    # Gamma quench from a wide-band checkpoint; then a config with fewer leads
    wb = {"lattice": {"size": [4]},
          "leads": [{"side": "left", "gamma": 1.0, "mu": 0.2}, {"side": "right", "gamma": 0.5}],
          "electrons": {"n_poles": 8}, "time": {"dt": 0.1, "t_end": 0.2}}
    out = os.path.join(mpi_tmp_path, "wb.h5")
    sim = Simulation(config_from_dict(wb), comm)
    sim.run(out, progress=False)
    sim.destroy()
    q = json.loads(json.dumps(wb))
    q["leads"][0]["gamma"] = 0.7
    sim = Simulation.from_checkpoint(out, config_from_dict(q), comm)
    sim.destroy()
    one = json.loads(json.dumps(wb))
    one["leads"] = one["leads"][:1]
    with pytest.raises(ConfigError, match="leads"):
        Simulation.from_checkpoint(out, config_from_dict(one), comm)
    # mixed leads, partitioned: the device at lead 0's mu (a wide-band lead here)
    d = valve(L=10, n_poles=30)
    d["bias"] = {}
    d["leads"][0] = {"side": "left", "gamma": 1.0, "mu": -1.0, "temperature": T300,
                     "n_poles": 30}
    d["electrons"]["initial"] = "partitioned"
    cfg = config_from_dict(d)
    sim = Simulation(cfg, comm)
    try:
        rho = sim.state(root=None)[0][:16, :16]      # no explicit sites on the left
        w, U = np.linalg.eigh(dense_hamiltonian(device_from_config(cfg)))
        ref = (U * expit(-(w + 1.0) / T300)) @ U.conj().T
        assert np.abs(rho - ref).max() < 1e-10
    finally:
        sim.destroy()
