"""Finite-band tight-binding leads (operators.leads.TightBindingLead) against independent answers:
the closed-form 1D surface Green function (values inside and outside the band, branch, analytic
structure, asymptotics), brute-force long finite leads and Sancho-Rubio decimation (1D, 2D and
3D cross-sections), exact transport of clean wires (open channels), a dense NEGF reference for
spin valves, the DOS sum rule with bound states, the Landauer current in closed form, and the
[[leads]] configuration (parsing, round trip, errors, ``qcspin transport``).
Rank-agnostic (serial and ``mpirun -n 2``)."""
import math
import os

import h5py
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.optimize import brentq

from analysis.transport import GreenSolver, landauer_current, transmission
from operators import leads as leads_mod
from operators.hamiltonian import dense_hamiltonian
from operators.leads import (
    LEAD_COMMON_KEYS,
    LEAD_MODELS,
    PrecalculatedLead,
    TightBindingLead,
    WideBandLead,
    chain_surface_green,
    leads_from_config,
    time_domain_models,
)
from toolkit import ConfigError, DeviceBuilder
from toolkit.config import LeadConfig, config_from_dict, config_to_toml, load_config

PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]])


def esc(s):
    return s.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")


# ----------------------------------------------------------------------------- devices
def clean(size, t=1.0):
    return DeviceBuilder(size=size, hopping=t).finalized()


def valve(size, J_sd=1.5, seed=4, n_m=2):
    """PL (columns 0..n_m-1) | spacer | FL (last n_m columns), random non-collinear spins."""
    Lx, n_face = size[0], math.prod(size[1:])
    rng = np.random.default_rng(seed)
    S = rng.normal(size=(2 * n_m * n_face, 3))
    S /= np.linalg.norm(S, axis=1, keepdims=True)
    b = DeviceBuilder(size=size)
    b.add_layer("PL", (0, n_m), J_sd=J_sd, spins=S[:n_m * n_face].tolist())
    b.add_layer("FL", (Lx - n_m, Lx), J_sd=J_sd, spins=S[n_m * n_face:].tolist())
    return b.finalized()


def g_reference(w, t):
    """Retarded root of t^2 g^2 - w g + 1 = 0 chosen as the brief states (independent of the
    library's formula): |t g| < 1 off the real band; on the real axis inside the band Im g < 0."""
    w = complex(w)
    r = np.sqrt(w * w - 4 * t * t + 0j)
    g1, g2 = (w - r) / (2 * t * t), (w + r) / (2 * t * t)
    if w.imag == 0 and abs(w.real) < 2 * abs(t):
        return g1 if g1.imag < 0 else g2
    return g1 if abs(t * g1) < 1 else g2


def strip_modes(Ly, t):
    """Analytic transverse modes of an open chain of Ly sites with hopping -t:
    e_k = -2t cos(pi k/(Ly + 1)), phi_k(y) = sqrt(2/(Ly + 1)) sin(pi k (y + 1)/(Ly + 1))."""
    k = np.arange(1, Ly + 1)
    y = np.arange(Ly)
    return (-2 * t * np.cos(np.pi * k / (Ly + 1)),
            np.sqrt(2 / (Ly + 1)) * np.sin(np.pi * np.outer(y + 1, k) / (Ly + 1)))


def sigma_reference(dev, side, z, t, eps0=0.0, tc=None):
    """Dense N_s x N_s Sigma of a tight-binding lead on a 1D or 2D (Ly) device from the analytic
    strip modes and g_reference (independent of operators.leads)."""
    tc = t if tc is None else tc
    Ly = dev.size[1] if len(dev.size) > 1 else 1
    e, phi = strip_modes(Ly, t) if Ly > 1 else (np.zeros(1), np.ones((1, 1)))
    gs = np.array([g_reference(z - eps0 - ek, t) for ek in e])
    site = tc ** 2 * (phi * gs) @ phi.T
    x0 = 0 if side == "left" else dev.size[0] - 1
    face = np.flatnonzero(dev.coords[:, 0] == x0)
    S = np.zeros((dev.n_sites, dev.n_sites), complex)
    S[np.ix_(face, face)] = site
    return np.kron(S, np.eye(2))


def negf_reference(dev, S, E, sig_l, sig_r):
    """theta, spin_r (3), dos per site from dense numpy: G = (E - H - Sigma_l - Sigma_r)^-1,
    Theta = Tr[Gamma_l G Gamma_r G^dag]."""
    H = dense_hamiltonian(dev, S)
    spin = [np.kron(np.eye(dev.n_sites), p) for p in PAULI]
    out = []
    for e, sl, sr in zip(E, sig_l, sig_r):
        G = np.linalg.inv(e * np.eye(len(H)) - H - sl - sr)
        gl, gr = 1j * (sl - sl.conj().T), 1j * (sr - sr.conj().T)
        out.append([np.trace(gl @ G @ gr @ G.conj().T).real]
                   + [np.trace(s @ gr @ G @ gl @ G.conj().T).real for s in spin]
                   + [-np.trace(G).imag / (np.pi * dev.n_sites)])
    return np.array(out)


# ----------------------------------------------------------------------------- (1) closed form
def test_chain_selfenergy_analytic_values():
    """Sec. II leads, hopping 1: the closed form inside and outside the band and off the axis.
    Tolerances 1e-15..1e-14: a few complex roundings of O(1) numbers."""
    dev = clean((4,))
    L = TightBindingLead(dev, "left")
    assert (L.hopping, L.onsite, L.coupling, L.side) == (1.0, 0.0, 1.0, "left")
    assert L.is_diagonal and not L.energy_independent and L.n_interface == 2
    s = L.selfenergy(-1.6)
    assert s.shape == (2, 2) and np.abs(s - (-0.8 - 0.6j) * np.eye(2)).max() < 1e-15
    # above the band: real, 0 < Sigma < t (decaying root), = (3 - sqrt 5)/2; below: odd
    for E, ref in [(3.0, (3 - math.sqrt(5)) / 2), (-3.0, -(3 - math.sqrt(5)) / 2)]:
        v = L.selfenergy(E)[0, 0]
        assert v.imag == 0.0 and abs(v - ref) < 1e-15 and abs(v) < 1
    # imaginary axis: Sigma(iy) = -i (sqrt(y^2 + 4) - y)/2, purely imaginary and negative
    for y in (1e-3, 0.5, 2.0, 40.0):
        v = L.selfenergy(1j * y)[0, 0]
        assert abs(v.real) < 1e-15 and abs(v.imag + (math.sqrt(y * y + 4) - y) / 2) < 1e-14
    # band edges: the limit g(+-2t) = +-1/t (continuous, Gamma = 0: the channel is closed)
    assert L.selfenergy(2.0)[0, 0] == 1.0 and L.selfenergy(-2.0)[0, 0] == -1.0
    # hopping t_L, on-site eps_0 and coupling t_c: Sigma = t_c^2 g_s(z - eps_0; t_L)
    M = TightBindingLead(dev, "right", hopping=0.7, onsite=0.3, coupling=0.4)
    for z in (-1.2, 0.3, 1.9, 2.5, -3.0 + 0.2j, 0.1 + 3j):
        ref = 0.16 * g_reference(z - 0.3, 0.7)
        assert abs(M.selfenergy(z)[0, 0] - ref) < 1e-14 * max(1, abs(ref)), z
    assert np.array_equal(M.interface, [6, 7])
    assert M.open_channels([0.0, 1.8, -1.2]).tolist() == [1, 0, 0]   # band -1.1 < E < 1.7


def test_surface_green_branch_and_analytic_structure():
    """Im g <= 0 on a grid of the upper half-plane (retarded), |t g| < 1 off the real axis,
    g solves t^2 g^2 - w g + 1 = 0, the brief's root selection is reproduced, the real axis is
    the continuous limit from above, and g ~ 1/z + t^2/z^3 at large |z|."""
    for t in (1.0, 0.6, -1.3):  # a negative t gives the same g (bipartite chain)
        x, y = np.meshgrid(np.linspace(-5, 5, 81), np.concatenate([[0.0], np.geomspace(1e-6, 20,
                                                                                        40)]))
        w = x + 1j * y
        g = chain_surface_green(w, t)
        assert g.imag.max() <= 0.0
        assert np.abs(t * g[1:]).max() < 1                    # off the axis: decaying root
        # root of the quadratic: residual is round-off of O(1 + |w|) terms
        assert np.abs(t * t * g * g - w * g + 1).max() < 1e-13
        ref = np.vectorize(lambda v, t=t: g_reference(v, abs(t)))(w)
        assert np.abs(g - ref).max() < 1e-12 * np.abs(ref).max()
        # continuity from above, away from the band edges: |g(E + i eta) - g(E)| = O(eta)
        E = np.linspace(-4.5, 4.5, 91)
        E = E[np.abs(np.abs(E) - 2 * abs(t)) > 0.05]
        d = np.abs(chain_surface_green(E + 1e-9j, t) - chain_surface_green(E + 0j, t))
        assert d.max() < 1e-7   # |g'| <= 1/sqrt(|E^2 - 4t^2| t^2) < 20 here: 2e-8 expected
    # asymptotics z g(z) = 1 + t^2/z^2 + 2 t^4/z^4 + ...: the stable form keeps full precision
    for z in (1e3, -1e3, 1e6 * (0.6 + 0.8j), 1e9j):
        g = chain_surface_green(z, 1.0)
        assert abs(z * g - 1 - 1 / z ** 2) < 3 / abs(z) ** 4 + 1e-15


def test_energy_argument_contract():
    """selfenergy accepts real and complex energies with Im z >= 0 (both lead models) and
    refuses Im z < 0 or non-finite values, naming 'energy'."""
    dev = clean((3, 2))
    tb, wb = TightBindingLead(dev, "left"), WideBandLead(dev, "left", 0.8)
    for lead in (tb, wb):
        for z in (0.3, np.float64(-1.0), 2 + 0.5j, np.complex128(1j), complex(0.2, -0.0)):
            s = lead.selfenergy(z)
            assert s.shape == (4, 4) and not s.flags.writeable
            assert np.linalg.eigvalsh(1j * (s - s.conj().T)).min() > -1e-15   # Gamma >= 0
        for bad in (0.1 - 1e-3j, float("nan"), complex(0, float("inf")), "1.0", True):
            with pytest.raises(ValueError, match="energy = "):
                lead.selfenergy(bad)
    assert np.array_equal(wb.selfenergy(3 + 2j), -0.4j * np.eye(4))
    # -0.0 imaginary part is the real axis approached from above (the retarded limit)
    assert np.array_equal(tb.selfenergy(complex(0.5, -0.0)), tb.selfenergy(0.5))


# ----------------------------------------------------------------------------- (2) brute force
def test_1d_against_long_finite_lead():
    """The surface element of (z - H_lead)^-1 for a 2000-site chain (hopping -t_L, on-site
    eps_0) at z = E + 0.05i: the truncation error is |t g|^(2 x 2000) <= exp(-2000 x 0.05/1.6)
    ~ 1e-27 inside the band, so 1e-8 (brief) bounds round-off of the banded LU (~1e-14)."""
    from scipy.linalg import solve_banded

    t, eps0, tc, n = 0.8, 0.25, 0.5, 2000
    L = TightBindingLead(clean((3,)), "left", hopping=t, onsite=eps0, coupling=tc)
    for E in (-2.3, -1.55, -0.2, 0.9, 1.6, 2.4):
        z = E + 0.05j
        ab = np.zeros((3, n), complex)
        ab[0, 1:] = ab[2, :-1] = t          # z - H has +t off the diagonal (H = -t on bonds)
        ab[1] = z - eps0
        rhs = np.zeros(n, complex)
        rhs[0] = 1
        g00 = solve_banded((1, 1), ab, rhs)[0]
        assert abs(L.surface_green(z)[0, 0] - g00) < 1e-8, E
        assert abs(L.selfenergy(z)[0, 0] - tc ** 2 * g00) < 1e-8, E


def sancho_rubio(z, H0, H1, tol=1e-15, max_iter=200):
    """Surface Green function of a semi-infinite stack of columns with intra-column H0 and
    column-to-next-column H1 (Lopez Sancho et al. 1985 decimation)."""
    n = len(H0)
    eps_s, eps, a, b = H0.astype(complex), H0.astype(complex), H1.astype(complex), \
        H1.conj().T.astype(complex)
    for _ in range(max_iter):
        g = np.linalg.inv(z * np.eye(n) - eps)
        agb, bga = a @ g @ b, b @ g @ a
        eps_s = eps_s + agb
        eps = eps + agb + bga
        a, b = a @ g @ a, b @ g @ b
        if max(np.abs(a).max(), np.abs(b).max()) < tol:
            break
    return np.linalg.inv(z * np.eye(n) - eps_s)


@pytest.mark.parametrize("size", [(4, 3), (3, 2, 3), (2, 5)])
def test_2d_3d_against_sancho_rubio(size):
    """Transverse-mode sum against decimation with the full column matrices (H0 = eps_0 - t_L on
    the face bonds in the device's site order, H1 = -t_L): no mode decomposition, no closed form.
    Converged to 1e-15 in ~12 doublings at Im z = 0.05 and on the real axis outside the bands;
    1e-8 (brief) bounds the inversions' round-off (~1e-13)."""
    t, eps0 = 1.1, -0.2
    dev = clean(size)
    cross = size[1:]
    n = math.prod(cross)
    # face Hamiltonian built from the (y, z) coordinates of the x = 0 sites, not lattice_bonds
    face = np.flatnonzero(dev.coords[:, 0] == 0)
    yz = dev.coords[face, 1:]
    dist = np.abs(yz[:, None, :] - yz[None, :, :]).sum(-1)
    H0 = eps0 * np.eye(n) - t * (dist == 1)
    H1 = -t * np.eye(n)
    lead = TightBindingLead(dev, "right", hopping=t, onsite=eps0, coupling=0.9)
    for z in (-3.0 + 0.05j, -0.7 + 0.05j, 0.4 + 0.05j, 2.9 + 0.05j, 7.0 + 0j, -6.5 + 0j):
        ref = sancho_rubio(z, H0, H1)
        assert np.abs(lead.surface_green(z) - ref).max() < 1e-8, z
        assert np.abs(lead.selfenergy(z) - np.kron(0.81 * ref, np.eye(2))).max() < 1e-8, z
    assert len(lead.band_edges()) <= 2 * n


def test_selfenergy_equals_explicit_finite_leads():
    """The sign and coupling convention end to end: G^R of a 2D spin valve (4 x 3, random spins)
    with Sigma_l + Sigma_r equals the device block of (z - H_total)^-1, H_total = device + two
    explicit 600-column leads (-t_L bonds, on-site eps_0, -t_c between the lead's first column
    and the face, site (y) to site (y)).  At Im z = 0.05 the slowest mode decays by
    exp(-2 x 600 x 0.05/(2 t_L)) ~ 1e-16 over the round trip; 1e-8 (brief) bounds the sparse
    LU round-off."""
    t, eps0, tc, n_col = 0.8, 0.3, 0.6, 600
    dev = valve((4, 3), J_sd=1.2)
    Ly, Lx = 3, 4
    Hd = sp.csr_matrix(dense_hamiltonian(dev, dev.spins0))
    Nd = Hd.shape[0]
    # one lead: n_col columns of Ly sites, column c at distance c + 1 from the face
    Hy = eps0 * np.eye(Ly) - t * (np.eye(Ly, k=1) + np.eye(Ly, k=-1))
    Hl = sp.kron(sp.kron(sp.eye(n_col), Hy)
                 - t * sp.kron(sp.eye(n_col, k=1) + sp.eye(n_col, k=-1), sp.eye(Ly)), sp.eye(2))
    nl = Hl.shape[0]
    blocks = [[Hd, None, None], [None, Hl, None], [None, None, Hl]]
    H = sp.bmat(blocks, format="lil")
    for k, x0 in enumerate((0, Lx - 1)):
        face = np.flatnonzero(dev.coords[:, 0] == x0)   # ascending y
        off = Nd + k * nl
        for y, site in enumerate(face):
            for s in (0, 1):
                i, j = 2 * site + s, off + 2 * y + s    # lead column 0, row y, spin s
                H[i, j] = H[j, i] = -tc
    H = H.tocsc()
    left = TightBindingLead(dev, "left", hopping=t, onsite=eps0, coupling=tc)
    right = TightBindingLead(dev, "right", hopping=t, onsite=eps0, coupling=tc)
    for E in (-2.4, -0.5, 1.1):
        z = E + 0.05j
        lu = spla.splu((z * sp.eye(H.shape[0], format="csc") - H).tocsc())
        ref = lu.solve(np.eye(H.shape[0], Nd, dtype=complex))[:Nd]
        A = z * np.eye(Nd) - dense_hamiltonian(dev, dev.spins0)
        for lead in (left, right):
            A[np.ix_(lead.interface, lead.interface)] -= lead.selfenergy(z)
        assert np.abs(np.linalg.inv(A) - ref).max() < 1e-8, E


# ----------------------------------------------------------------------------- (3) transport
@pytest.mark.parametrize("size", [(6,), (5, 3)])
@pytest.mark.parametrize("method", ["mumps", "dense"])
def test_clean_wire_transmits_open_channels(comm, size, method):
    """Device hopping = lead hopping, no J_sd: device + leads is the infinite wire, so Theta =
    2 (spins) x #{k : |E - e_k| < 2t} with the analytic strip modes e_k; 1D: 2 for |E| < 2t,
    0 outside.  Energies avoid the band edges (threshold singularities).  Exact up to the
    round-off of an LU of a <= 30 x 30 matrix: 1e-10."""
    t = 1.3
    dev = clean(size, t)
    leads = (TightBindingLead(dev, "left"), TightBindingLead(dev, "right"))
    assert leads[0].hopping == t and leads[0].coupling == t   # defaults: lattice.hopping
    E = np.linspace(-4.7, 4.7, 48)
    e_k = strip_modes(size[1], t)[0] if len(size) > 1 else np.zeros(1)
    edges = np.concatenate([e_k - 2 * t, e_k + 2 * t])
    E = E[np.abs(E[:, None] - edges).min(1) > 1e-3]
    count = np.sum(np.abs(E[:, None] - e_k) < 2 * t, axis=1)
    assert np.array_equal(leads[0].open_channels(E), count)
    res = transmission(dev, leads, E, comm=comm, method=method)
    assert res.method == method
    assert np.abs(res.theta - 2 * count).max() < 1e-10
    assert np.abs(res.theta_rl - 2 * count).max() < 1e-10
    assert np.abs(res.spin_r).max() < 1e-10
    assert count.min() == 0 and count.max() == (size[1] if len(size) > 1 else 1)


@pytest.mark.parametrize("size", [(8,), (5, 3)])
def test_spin_valve_against_dense_negf(comm, size):
    """A spin valve (J_sd on PL and FL, random spins) between tight-binding leads with t_L, eps_0,
    t_c != device values: theta, spin_r and the DOS against G = (E - H - Sigma_l - Sigma_r)^-1 in
    dense numpy with the reference closed form and analytic strip modes (2D: non-diagonal
    Sigma), MUMPS and dense solvers.  Both sides are exact: 1e-10 bounds round-off of LUs of
    |G| <~ 10 matrices."""
    dev = valve(size)
    kw = dict(hopping=0.9, onsite=0.15, coupling=0.7)
    leads = (TightBindingLead(dev, "left", **kw), TightBindingLead(dev, "right", **kw))
    assert leads[0].is_diagonal == (len(size) == 1)
    E = np.linspace(-3.3, 3.3, 23)
    sl = [sigma_reference(dev, "left", e, 0.9, 0.15, 0.7) for e in E]
    sr = [sigma_reference(dev, "right", e, 0.9, 0.15, 0.7) for e in E]
    ref = negf_reference(dev, dev.spins0, E, sl, sr)
    assert ref[:, 0].max() > 0.1 and np.abs(ref[:, 3]).max() > 1e-3   # not trivially zero
    for method in ("mumps", "dense"):
        res = transmission(dev, leads, E, comm=comm, method=method)
        assert np.abs(res.theta - ref[:, 0]).max() < 1e-10, method
        assert np.abs(res.spin_r - ref[:, 1:4]).max() < 1e-10, method
        assert np.abs(res.dos - ref[:, 4]).max() < 1e-10, method
        assert np.abs(res.theta - res.theta_rl).max() < 1e-12
    # outside all bands Gamma = 0: no transmission
    far = transmission(dev, leads, [-4.5, 4.2], comm=comm)
    assert np.abs(far.theta).max() < 1e-14
    # a PrecalculatedLead of the tight-binding leads gives the same answer
    pre = tuple(PrecalculatedLead(l, E) for l in leads)
    same = transmission(dev, pre, E, comm=comm, method="mumps")
    assert np.abs(same.theta - ref[:, 0]).max() < 1e-10
    with pytest.raises(NotImplementedError, match="cannot be shifted by a bias"):
        pre[0].shifted(0.1)          # its cached Sigma(E) would need Sigma(E - V)


def test_green_solver_evaluates_each_selfenergy_once(monkeypatch):
    """GreenSolver.evaluate computes Sigma(E) of each energy-dependent lead once per energy (the
    same matrices build the LU and Gamma); the MUMPS matrix holds the full n_l x n_l blocks."""
    dev = valve((5, 3))
    leads = (TightBindingLead(dev, "left"), TightBindingLead(dev, "right"))
    calls = []
    orig = TightBindingLead.surface_green
    monkeypatch.setattr(TightBindingLead, "surface_green",
                        lambda self, z: calls.append(z) or orig(self, z))
    E = np.linspace(-2, 2, 7)
    for method in ("mumps", "dense"):
        calls.clear()
        with GreenSolver(dev, leads, method=method) as g:
            g.evaluate(E)
        assert len(calls) == 2 * len(E), method
    with GreenSolver(dev, leads, method="mumps") as g:   # nonzeros: H + two 6 x 6 blocks
        nnz = g.A.getInfo()["nz_used"]
        assert nnz == len(g._base) and len(g._pos[0]) == 36


def test_singular_energy_is_named(comm):
    """Isolated energies where eps - H - Sigma is exactly singular are named, by both solvers
    and on every rank (round robin gives the bad energy to rank 1 under mpirun -n 2): a matched
    clean chain at the band edge E = -2t (threshold: an integer matrix, exactly singular for
    LAPACK), and a site decoupled by zero hoppings at its level E = 0 (a MUMPS zero pivot)."""
    dev = clean((6,))
    leads = (TightBindingLead(dev, "left"), TightBindingLead(dev, "right"))
    with pytest.raises(ValueError, match=r"energy = -2.0 is not allowed: .*singular"):
        transmission(dev, leads, [-1.0, -2.0], comm=comm, method="dense")
    b = DeviceBuilder(size=(3,))
    for name, x in (("A", 0), ("B", 1), ("C", 2)):
        b.add_layer(name, (x, x + 1))
    b.set_bond_hopping("A", "B", 0.0).set_bond_hopping("B", "C", 0.0)
    dev = b.finalized()
    leads = (TightBindingLead(dev, "left"), TightBindingLead(dev, "right"))
    for method in ("mumps", "dense"):
        with pytest.raises(ValueError, match=r"energy = 0.0 is not allowed: .*singular"):
            transmission(dev, leads, [0.5, 0.0], comm=comm, method=method)


def bound_states(dev, lo, hi, t=1.0):
    """Real energies E outside the band |E| < 2t of 1D leads (t_c = t, eps_0 = 0) with E an
    eigenvalue of H + Sigma(E) (Hermitian there), and their weights 1/(1 - psi^dag Sigma'(E) psi)
    (residue of Tr G), by bracketing each sorted eigenvalue branch: lambda_n(E) - E is strictly
    decreasing (Sigma' <= 0).  Sigma = t^2 g_reference, Sigma' = t^2 g/(2t^2 g - w) (derivative
    of t^2 g^2 - w g + 1 = 0): independent of operators.leads."""
    H = dense_hamiltonian(dev, dev.spins0)
    ends = np.flatnonzero(np.isin(np.repeat(dev.coords[:, 0], 2), (0, dev.size[0] - 1)))

    def heff(E):
        A = H.copy()
        A[ends, ends] += t * t * g_reference(E, t).real
        return A

    def dsig(E):
        g = g_reference(E, t).real
        D = np.zeros_like(H)
        D[ends, ends] = t * t * g / (2 * t * t * g - E)
        return D

    out = []
    for a, b in ((lo, -2.0 - 1e-12), (2.0 + 1e-12, hi)):
        for n in range(len(H)):
            f = lambda E, n=n: np.linalg.eigvalsh(heff(E))[n] - E    # noqa: E731
            if f(a) * f(b) < 0:
                Eb = brentq(f, a, b, xtol=1e-14)
                w, v = np.linalg.eigh(heff(Eb))
                psi = v[:, n]
                out.append((Eb, 1 / (1 - (psi.conj() @ dsig(Eb) @ psi).real)))
    return out


def test_dos_sum_rule_with_bound_states(comm):
    """int DOS = number of device orbitals, bound states counted.  A 1D valve whose magnetic
    layers have hopping 1.8 > t_L = 1 (device band wider than the leads'): 8 bound states.
    (a) the real-axis band integral (library DOS, MUMPS; E = 2 cos theta makes the integrand
    analytic in theta, 400-point Gauss-Legendre converges to ~1e-12) plus the bound-state
    residues (brentq to 1e-14, analytic Sigma') equals 2 N_sites; (b) the same from Tr G on the
    line z = E + 0.5i (complex energies of the lead contract; E = 4 tan u, 400 points: ~1e-11),
    which encloses the bound-state poles without resolving them.  Tolerance 1e-9 for both."""
    rng = np.random.default_rng(4)
    S = rng.normal(size=(4, 3))
    S /= np.linalg.norm(S, axis=1, keepdims=True)
    b = DeviceBuilder(size=(6,))
    b.add_layer("PL", (0, 2), J_sd=1.0, spins=S[:2].tolist(), hopping=1.8)
    b.add_layer("FL", (4, 6), J_sd=1.0, spins=S[2:].tolist(), hopping=1.8)
    dev = b.finalized()
    leads = (TightBindingLead(dev, "left"), TightBindingLead(dev, "right"))
    N = dev.n_orbitals
    bs = bound_states(dev, -12.0, 12.0)
    assert len(bs) == 8 and all(0 < w < 1 for _, w in bs)
    x, wq = np.polynomial.legendre.leggauss(400)
    th = 0.5 * np.pi * (x + 1)                                  # theta in (0, pi)
    E = 2 * np.cos(th)
    res = transmission(dev, leads, E, comm=comm, method="mumps")
    band = dev.n_sites * np.sum(0.5 * np.pi * wq * res.dos * 2 * np.sin(th))
    total = band + sum(w for _, w in bs)
    assert abs(total - N) < 1e-9, (band, bs)
    assert N - band > 0.5                    # the bound states carry visible weight
    # (b) line integral in the upper half-plane
    H = dense_hamiltonian(dev, dev.spins0)
    u = 0.5 * np.pi * x * (1 - 1e-12)
    Eline = 4 * np.tan(u)
    acc = 0.0
    for e, wu, uu in zip(Eline, wq, u):
        z = e + 0.5j
        A = z * np.eye(N) - H
        for l in leads:
            A[np.ix_(l.interface, l.interface)] -= l.selfenergy(z)
        acc += -np.trace(np.linalg.inv(A)).imag / np.pi * 4 / np.cos(uu) ** 2 * 0.5 * np.pi * wu
    assert abs(acc - N) < 1e-9


def test_landauer_current_closed_form(comm):
    """Clean 6 x 3 strip, symmetric bias V = 0.5, T = 0.025: Theta = 2 x open channels, so the
    particle current is (1/pi) sum_k int_{e_k - 2t}^{e_k + 2t} (f_l - f_r) in closed form
    (int f = E - T log(1 + e^((E - mu)/T))).  Two band edges (+-0.586) lie inside the Fermi
    window: the leads' band_edges() split the quadrature panels there.  quad targets
    rtol = 1e-10: tolerance 1e-9 relative."""
    dev = clean((6, 3))
    leads = (TightBindingLead(dev, "left", mu=0.25), TightBindingLead(dev, "right", mu=-0.25))
    T = 0.025
    F = lambda E, mu: E - T * np.logaddexp(0, (E - mu) / T)   # noqa: E731
    e_k = strip_modes(3, 1.0)[0]
    ref = sum((F(e + 2, 0.25) - F(e - 2, 0.25)) - (F(e + 2, -0.25) - F(e - 2, -0.25))
              for e in e_k) / np.pi
    cur = landauer_current(dev, leads, comm=comm)
    assert cur.method.startswith("quad")
    assert abs(cur.particle - ref) < 1e-9 * ref, (cur.particle, ref)
    assert np.abs(cur.spin_r).max() < 1e-12


# ----------------------------------------------------------------------------- (4) config
TB_CFG = {"lattice": {"size": [6, 3], "hopping": 1.0}, "leads": [
    {"side": "left", "model": "tight-binding", "hopping": 0.9, "onsite": 0.1, "coupling": 0.5,
     "mu": 0.2},
    {"side": "right", "model": "tight-binding", "name": "drain"}]}


def test_registry_and_schema_are_one():
    """Each model class of operators.leads.LEAD_MODELS takes its keys from its schema in
    toolkit.lead_schema (the one declaration the TOML parser reads too); every model has a
    time-domain representation."""
    from toolkit.lead_schema import LEAD_SCHEMAS

    assert set(LEAD_MODELS) == set(LEAD_SCHEMAS)
    for m, c in LEAD_MODELS.items():
        assert c.schema is LEAD_SCHEMAS[m] and c.model == m
        assert c.config_keys == LEAD_SCHEMAS[m].schema.names
        assert set(c.time_domain_keys) <= set(c.config_keys)
    assert set(LEAD_COMMON_KEYS) == set(leads_mod.LEAD_COMMON_KEYS)
    assert time_domain_models() == ("wide-band", "tight-binding")
    assert LEAD_MODELS["tight-binding"].representations[0] == "extended"
    # the class's argument checks are the schema's: same constraint, Python-argument names
    with pytest.raises(ValueError, match=esc("sites = 0 is not allowed: expected an integer "
                                             ">= 1")):
        TightBindingLead(clean((4,)), "left", sites=0)


def test_tight_binding_config_parses_and_round_trips():
    cfg = config_from_dict(TB_CFG)
    a, b = cfg.leads
    assert a == LeadConfig(side="left", mu=0.2, name="left", model="tight-binding",
                           options=(("hopping", 0.9), ("onsite", 0.1), ("coupling", 0.5)))
    assert (b.name, b.hopping, b.onsite, b.coupling, b.gamma) == ("drain", None, None, None, None)
    assert a.with_options(sites=12).sites == 12 and a.with_options(onsite=None).onsite is None
    with pytest.raises(ConfigError, match=esc("'left.sites' = 0")):
        a.with_options(sites=0)
    text = config_to_toml(cfg)
    assert config_from_dict(__import__("tomllib").loads(text)) == cfg
    lead_part = text[text.index("[[leads]]"):]
    assert "gamma" not in lead_part and lead_part.count("hopping") == 1   # unused keys not written
    # wide-band tables are written as before: gamma, no tight-binding keys
    wb = config_from_dict({"lattice": {"size": [4]}, "leads": [{"side": "left", "gamma": 0.5}]})
    wtext = config_to_toml(wb)
    wpart = wtext[wtext.index("[[leads]]"):]
    assert "gamma = 0.5" in wpart and not any(k in wpart for k in ("hopping", "onsite",
                                                                   "coupling"))
    assert config_from_dict(__import__("tomllib").loads(wtext)) == wb
    # the leads built from the validated config: defaults resolved from the device
    from toolkit.device import device_from_config

    dev = device_from_config(cfg)
    L, R = leads_from_config(dev, cfg.leads)
    assert isinstance(L, TightBindingLead) and (L.hopping, L.onsite, L.coupling, L.mu) == \
        (0.9, 0.1, 0.5, 0.2)
    assert (R.name, R.hopping, R.onsite, R.coupling, R.side) == ("drain", 1.0, 0.0, 1.0, "right")
    R2 = R.replace(mu=-0.3)
    assert isinstance(R2, TightBindingLead) and R2.mu == -0.3 and R.mu == 0.0 \
        and np.array_equal(R2.selfenergy(0.4), R.selfenergy(0.4))
    with pytest.raises(ValueError, match="replace"):
        R.replace(gamma=1.0)
    assert R.describe() == {"model": "tight-binding", "side": "right", "hopping": 1.0,
                            "onsite": 0.0, "coupling": 1.0}
    assert WideBandLead(dev, "left", 0.5).describe() == {"model": "wide-band", "side": "left",
                                                         "gamma": 0.5}


@pytest.mark.parametrize("table, key, needle", [
    ({"gamma": 1.0}, "gamma", "a key of model 'wide-band' leads, not of model 'tight-binding'"),
    ({"hopping": 0.0}, "hopping", "expected a number > 0"),
    ({"hopping": -1.0}, "hopping", "expected a number > 0"),
    ({"coupling": 0.0}, "coupling", "expected a number > 0"),
    ({"onsite": float("nan")}, "onsite", "expected a finite real number"),
    ({"t_L": 1.0}, "t_L", "unknown key"),
    ({"hopping": "1"}, "hopping", "expected a finite real number"),
])
def test_tight_binding_config_errors(table, key, needle):
    """Bad [[leads]] keys of a tight-binding lead, through the TOML parser and through
    leads_from_config (dict tables): ConfigError naming leads[0].<key> and what is allowed.
    t_c = 0 is refused (it would decouple the lead: remove it instead; only t_c^2 enters, so
    the sign carries no information and t_c > 0 is required)."""
    t = {"side": "left", "model": "tight-binding", **table}
    with pytest.raises(ConfigError, match=esc(f"'leads[0].{key}'") + ".*" + esc(needle)):
        config_from_dict({"lattice": {"size": [4]}, "leads": [t]})
    with pytest.raises(ConfigError, match=esc(f"'leads[0].{key}'") + ".*" + esc(needle)):
        leads_from_config(clean((4,)), [t])


def test_wide_band_config_errors_unchanged():
    """Wide-band tables keep their rules: gamma required; tight-binding keys refused."""
    for mod in ("config", "leads"):
        def check(t, match, mod=mod):
            with pytest.raises(ConfigError, match=match):
                if mod == "config":
                    config_from_dict({"lattice": {"size": [4]}, "leads": [t]})
                else:
                    leads_from_config(clean((4,)), [t])
        check({"side": "left"}, esc("'leads[0].gamma' = None"))
        check({"side": "left", "gamma": 1.0, "coupling": 0.5},
              esc("'leads[0].coupling' = 0.5 is not allowed: a key of model 'tight-binding' "
                  "leads, not of model 'wide-band'"))
        check({"side": "left", "gamma": 1.0, "model": "tb"}, esc("'leads[0].model' = 'tb'"))
    # the default hopping of a tight-binding lead needs lattice.hopping > 0
    dev = DeviceBuilder(size=(4,), hopping=-1.0).finalized()
    with pytest.raises(ConfigError, match=esc("'leads[0].hopping' = -1.0 is not allowed") +
                       ".*lattice.hopping"):
        leads_from_config(dev, [{"side": "left", "model": "tight-binding"}])
    assert leads_from_config(dev, [{"side": "left", "model": "tight-binding",
                                    "hopping": 1.0}])[0].hopping == 1.0


def test_cli_transport_with_tight_binding_leads(comm, mpi_tmp_path):
    """``qcspin transport`` on a clean 6 x 3 strip between two tight-binding leads (config
    defaults: lattice hopping): Theta = 2 x open channels (round-off of 36 x 36 LUs: 1e-10).
    Grid -3.75:4:0.5 (not -3:3:0.5: that grid hits the band edges +-2t of the e_k = 0 mode,
    where the matched wire's G^R diverges).  Overrides reach the lead keys."""
    from toolkit.cli import main
    from toolkit.parallel import barrier

    path = os.path.join(mpi_tmp_path, "tb.toml")
    text = ('name = "clean strip"\n[lattice]\nsize = [6, 3]\n'
            '[[leads]]\nside = "left"\nmodel = "tight-binding"\n'
            '[[leads]]\nside = "right"\nmodel = "tight-binding"\n')
    if comm.getRank() == 0:
        with open(path, "w") as fh:
            fh.write(text)
    barrier(comm)
    out = os.path.join(mpi_tmp_path, "tb.h5")
    assert main(["transport", path, "--energies", "-3.75:4:0.5", "-o", out]) == 0
    cfg = load_config(path, ["leads.left.coupling=0.5"])
    assert cfg.leads[0].coupling == 0.5 and cfg.leads[1].coupling is None
    if comm.getRank() == 0:
        with h5py.File(out) as f:
            E, theta = f["energies"][...], f["theta"][...]
            assert f.attrs["method"] == "mumps"
        e_k = strip_modes(3, 1.0)[0]
        count = np.sum(np.abs(E[:, None] - e_k) < 2, axis=1)
        assert len(E) == 16 and count.max() == 3 and count.min() == 0
        assert np.abs(theta - 2 * count).max() < 1e-10


def test_bias_is_a_rigid_shift_of_the_lead():
    """Under a bias the whole lead moves: Sigma_shifted(E + V) = Sigma(E) for a tight-binding
    lead (band and mu together), mu alone for the flat wide band.  Tolerance 1e-8: the shift
    changes w = E - eps_0 - e_k by a rounding error ~1e-16, which the square-root branch
    point amplifies near a transverse band edge (measured 9e-10 on this 3-mode strip)."""
    from toolkit.device import device_from_config

    dev = device_from_config(config_from_dict(TB_CFG))
    lead = leads_from_config(dev, config_from_dict(TB_CFG).leads)[0]
    moved = lead.shifted(0.3)
    assert moved.mu == pytest.approx(lead.mu + 0.3)
    for E in (-1.7, 0.2, 2.5):
        assert np.abs(moved.selfenergy(E + 0.3) - lead.selfenergy(E)).max() < 1e-8
