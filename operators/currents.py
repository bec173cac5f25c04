"""Distributed observables of the open junction: bond currents through a plane, monolayer spin
polarization, current-driven torque and the spin continuity balance (paper 004, Eqs. 11-15,
F1).

Conventions: rho_ab = <c_b^dag c_a>, spinor index 2 site + spin, hbar = 1, e = 1 (currents count
particles, not electric charge), time unit hbar/E0.

**Plane currents (Eqs. 13, 14).**  The plane ``x_plane`` separates monolayer x_plane (sites j) from
monolayer x_plane + 1 (sites j').  For the number of electrons left of the plane,
N_L = sum_{x <= x_plane} Tr rho_jj, the closed dynamics d rho/dt = -i [H, rho] gives (only bonds
that cross the plane survive; nearest-neighbour hopping)

    d N_L/dt = -i sum_(j,j') Tr[H_jj' rho_j'j - rho_jj' H_j'j] = -2 I_F,

    I_F     = (i/2)  sum_(j,j') Tr[H_jj' rho_j'j - rho_jj' H_j'j]                (Eq. 13)
    J_F^a   = (i/2)  sum_(j,j') Tr[sigma_a (H_jj' rho_j'j - rho_jj' H_j'j)]      (Eq. 14)

exactly as printed in the paper.  So **I_F is half the number of electrons crossing the plane
from x_plane to x_plane + 1 per unit time** (positive = flow towards +x, the paper's SL -> FL), and
**J_F^a is the flow of electron spin s = sigma/2 (units of hbar) towards +x**, i.e. half the flow
of sigma_a (number of up minus down electrons along a).  This is the normalisation of the lead
currents of ``integrators.open_rhs.OpenRHS.lead_currents`` (paper Eqs. 11, 12):
``lead_current = Re Tr Pi_l`` is half the number of electrons entering from lead l per unit time
(d Tr rho/dt = sum_l 2 Re Tr Pi_l) and ``lead_spin_current = Re Tr(sigma_a Pi_l)`` is the spin
(s = sigma/2) entering from lead l.  Hence in a stationary state I_F = lead_current[left] =
-lead_current[right] on every plane, and for any state d N_L/dt = 2 lead_current[left] - 2 I_F.
``analysis.transport.bond_currents`` returns the full flows, i.e. 2 x these per bond.

Distributed evaluation.  rho and H are Hermitian: rho_j'j = rho_jj'^dag, H_j'j = H_jj'^dag, so
with A = H_jj' rho_jj'^dag (Tr[rho_jj' H_j'j] = conj Tr A, Tr[sigma rho_jj' H_j'j] =
conj Tr[sigma A])

    I_F = -sum Im Tr A,      J_F^a = -sum Im Tr[sigma_a A],

which needs only the 2x2 blocks rho_jj' and H_jj' in the rows of site j: the rank that owns j
evaluates the bond, then one allreduce.  (Eq. 14 is the flow of sigma_a/2 across the plane because
the hopping blocks are spin independent, H_jj' = -t_jj' 1; then it is the same measured at j or
at j'.)

**Polarization (Eq. F1).**  P^a_x = sum_{j in x} Tr sigma_a rho_jj / sum_{j in x} Tr rho_jj for
every monolayer x (a = x, y, z; in [-1, 1]; 1 for a fully polarized monolayer).

**Spin balance.**  With S_tot = sum_j S_j and s_tot = sum_j s_j, s_j = Tr(sigma rho_jj)/2,
Eqs. (4) and (10) give (the s-d torques J_sd S_j x s_j on the electrons and -J_sd S_j x s_j on
the spins cancel, exchange torques cancel pairwise, and (1/2) Tr[sigma (Pi_l + Pi_l^dag)] =
Re Tr sigma Pi_l)

    d/dt (S_tot + s_tot) = sum_l Re Tr(sigma Pi_l) + tau_ext,
    tau_ext = sum_{moving j} [S_j x (B + 2 K_j (S_j.e_j) e_j) - (alpha_j/|S_j|) S_j x dS_j/dt]
              + sum_{frozen k} S_k x (dH_C/dS_k - dH_ext/dS_k),   H_ext = -B.S - K (S.e)^2,

with the Gilbert term of the Landau-Lifshitz form of ``operators.spin`` rewritten as
dS/dt = -S x g - (alpha/|S|) S x dS/dt, and frozen spins acting as external sources of torque on
the electrons (s-d) and on their moving neighbours (exchange).  tau_ext = 0 for K = 0, B = 0,
alpha = 0 and no frozen spins.

Physics code here never imports mpi4py; reductions go through ``toolkit.parallel``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp

from toolkit.device import Device
from toolkit.parallel import SiteDistribution, allreduce, get_comm
from toolkit.schema import fail as _fail

from .spin import cross

__all__ = ["PlaneCurrent", "interface_plane", "site_moments", "monolayer_densities",
           "monolayer_polarization", "electron_spin_total", "current_driven_torque",
           "external_torque", "spin_continuity_residual", "spin_balance"]

# 1, sigma_x, sigma_y, sigma_z
_OPS = np.array([np.eye(2), [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], complex)
# (Tr rho, Tr sigma_x rho, Tr sigma_y rho, Tr sigma_z rho) = Re(_W4 @ (uu, ud, du, dd))
_W4 = np.array([[1, 0, 0, 1], [0, 1, 1, 0], [0, 1j, -1j, 0], [1, 0, 0, -1]], complex)


def _check_rho(rho_loc: np.ndarray, dist: SiteDistribution, n_orbitals: int) -> None:
    shape = getattr(rho_loc, "shape", None)
    if shape != (dist.n_local_rows, n_orbitals):
        _fail("rho_loc.shape", shape, f"expected the local rows ({dist.n_local_rows}, "
              f"{n_orbitals}) of this rank")


def _binsum(index: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Row sums of ``values`` (m, k) grouped by ``index`` (m,) into (n, k) float64 (also for
    m = 0, where np.bincount would return integers and break the reduction buffer type)."""
    out = np.zeros((n, values.shape[1]))
    for k in range(values.shape[1]):   # loop over the k components, not over sites
        out[:, k] = np.bincount(index, weights=values[:, k], minlength=n)
    return out


def _comm_for(dist: SiteDistribution, comm):
    comm = get_comm(comm)
    if comm.getSize() != dist.size:
        _fail("comm size", comm.getSize(), f"expected the size {dist.size} of the distribution")
    return comm


def interface_plane(device: Device, layer: str) -> int:
    """The plane just before the first monolayer of ``layer``: x_plane = first column - 1.

    ``interface_plane(dev, "FL")`` is the paper's SL-FL interface (j in the last SL monolayer,
    j' in the first FL monolayer).  Raises ValueError if the layer starts at x = 0.
    """
    x0 = int(device.coords[device.layer_sites(layer), 0].min())
    if x0 == 0:
        _fail(f"layer '{layer}' first column", x0, "no plane before column 0")
    return x0 - 1


class PlaneCurrent:
    """Charge and spin current through one or several planes x_plane | x_plane + 1 (Eqs. 13, 14).

    device  : the frozen Device of ``H``
    H       : operators.hamiltonian.ElectronHamiltonian (its local rows give the blocks H_jj';
              they are read once here: bond blocks do not change when the spins move)
    x_plane : int, or a sequence of ints, 0 <= x_plane < Lx - 1

    ``pc(rho_loc)`` -> (I, J): I = Eq. (13) [half electrons per time unit hbar/E0], J = Eq. (14)
    (a = x, y, z) [spin hbar per time unit]; positive = flow from x_plane to x_plane + 1.  Shapes
    () and (3,) for an int ``x_plane``, (n_planes,) and (n_planes, 3) for a sequence.
    Collective (one allreduce of 4 n_planes numbers).
    """

    def __init__(self, device: Device, H, x_plane: int | Sequence[int]) -> None:
        if not isinstance(device, Device):
            _fail("device", type(device).__name__, "expected a frozen Device", TypeError)
        if H.device.n_sites != device.n_sites or H.device.bonds.shape != device.bonds.shape:
            _fail("H", H, "expected the ElectronHamiltonian of this device")
        self.scalar = np.ndim(x_plane) == 0
        planes = np.atleast_1d(np.asarray(x_plane))
        Lx = device.size[0]
        if not np.issubdtype(planes.dtype, np.integer) or planes.ndim != 1 or not len(planes) \
                or np.any(planes < 0) or np.any(planes >= Lx - 1):
            _fail("x_plane", x_plane, f"expected integers 0 <= x_plane < Lx - 1 = {Lx - 1}")
        self.device, self.H, self.comm, self.dist = device, H, H.comm, H.dist
        self.planes = planes.astype(np.int64)
        d = self.dist
        x = device.coords[:, 0]
        b = device.bonds
        # orient every bond with the lower x first; keep bonds crossing one of the planes
        lo = np.where(x[b[:, 0]] <= x[b[:, 1]], b[:, 0], b[:, 1])
        hi = np.where(x[b[:, 0]] <= x[b[:, 1]], b[:, 1], b[:, 0])
        cross_ = (x[hi] == x[lo] + 1)
        where = np.full(Lx, -1)
        where[self.planes] = np.arange(len(self.planes))
        plane_of = np.where(cross_, where[x[lo]], -1)
        keep = plane_of >= 0
        self.n_bonds = np.bincount(plane_of[keep], minlength=len(self.planes))
        mine = keep & (lo >= d.site_start) & (lo < d.site_stop)
        self.bonds = np.stack([lo[mine], hi[mine]], axis=1)     # local bonds (j, j'), global sites
        self.plane_index = plane_of[mine]
        j, jp = self.bonds.T
        s = np.arange(2)
        self._rows = (2 * (j - d.site_start))[:, None, None] + s[None, :, None]  # (n, 2, 1)
        self._cols = (2 * jp)[:, None, None] + s[None, None, :]                  # (n, 1, 2)
        self.Hb = self._hamiltonian_blocks()

    def _hamiltonian_blocks(self) -> np.ndarray:
        ai, aj, av = self.H.mat.getValuesCSR()
        if not len(self.bonds):  # (scipy returns a 1x1 matrix for empty fancy indices)
            return np.zeros((0, 2, 2), complex)
        N = self.device.n_orbitals
        loc = sp.csr_matrix((av, aj, ai), shape=(self.dist.n_local_rows, N))
        r = np.broadcast_to(self._rows, (len(self.bonds), 2, 2)).ravel()
        c = np.broadcast_to(self._cols, (len(self.bonds), 2, 2)).ravel()
        return np.asarray(loc[r, c]).reshape(len(self.bonds), 2, 2).astype(complex)

    def bond_values(self, rho_loc: np.ndarray) -> np.ndarray:
        """(I, J_x, J_y, J_z) of each local bond (rows of ``self.bonds``), (n_local_bonds, 4).
        Local (not collective)."""
        _check_rho(rho_loc, self.dist, self.device.n_orbitals)
        R = rho_loc[self._rows, self._cols]                          # rho_jj', (n, 2, 2)
        A = np.einsum("bik,bjk->bij", self.Hb, R.conj())             # H_jj' rho_jj'^dag
        return -np.einsum("aij,bji->ba", _OPS, A).imag

    def __call__(self, rho_loc: np.ndarray):
        """(I, J) summed over the bonds of each plane.  Collective."""
        v = self.bond_values(rho_loc)
        out = allreduce(_binsum(self.plane_index, v, len(self.planes)), self.comm)
        if self.scalar:
            return float(out[0, 0]), out[0, 1:].copy()
        return out[:, 0].copy(), out[:, 1:].copy()


def site_moments(rho_loc: np.ndarray, dist: SiteDistribution) -> np.ndarray:
    """(Tr rho_jj, Tr sigma_x rho_jj, Tr sigma_y rho_jj, Tr sigma_z rho_jj) of every local site
    (n_local_sites, 4); linear in rho (apply it to d rho/dt for rates).  Local."""
    r = 2 * np.arange(dist.n_local_sites)
    c = r + dist.row_start
    blk = np.stack([rho_loc[r, c], rho_loc[r, c + 1], rho_loc[r + 1, c], rho_loc[r + 1, c + 1]])
    return (_W4 @ blk).real.T


def monolayer_densities(rho_loc: np.ndarray, device: Device, dist: SiteDistribution,
                        comm=None) -> np.ndarray:
    """sum_{j in x} (Tr rho_jj, Tr sigma_a rho_jj) for every monolayer x, (Lx, 4): electrons and
    twice the electron spin (units hbar) of each monolayer.  Linear in rho.  Collective."""
    comm = _comm_for(dist, comm)
    _check_rho(rho_loc, dist, device.n_orbitals)
    m = site_moments(rho_loc, dist)
    x = device.coords[dist.site_start:dist.site_stop, 0]
    return allreduce(_binsum(x, m, device.size[0]), comm)


def monolayer_polarization(rho_loc: np.ndarray, device: Device, dist: SiteDistribution,
                           comm=None) -> np.ndarray:
    """P^a_x of Eq. (F1) for every monolayer x and a = x, y, z, (Lx, 3), dimensionless in
    [-1, 1]: sum_{j in x} Tr sigma_a rho_jj / sum_{j in x} Tr rho_jj (NaN for an empty
    monolayer).  Collective."""
    d = monolayer_densities(rho_loc, device, dist, comm)
    with np.errstate(invalid="ignore", divide="ignore"):
        return d[:, 1:] / d[:, :1]


def electron_spin_total(rho_loc: np.ndarray, dist: SiteDistribution, comm=None) -> np.ndarray:
    """s_tot = sum_j Tr(sigma rho_jj)/2 (units hbar), (3,).  Linear in rho: applied to the rho
    part of the RHS it gives d s_tot/dt.  Collective."""
    comm = _comm_for(dist, comm)
    if rho_loc.shape[0] != dist.n_local_rows:
        _fail("rho_loc.shape", rho_loc.shape, f"expected {dist.n_local_rows} local rows")
    return allreduce(0.5 * site_moments(rho_loc, dist)[:, 1:].sum(axis=0), comm)


def current_driven_torque(J_F, J_r, J_F_eq):
    """Eq. (15): T_cd = J_F - J_r - J_F^eq (spin hbar per time unit; arrays broadcast).

    J_F    : Eq. (14) at the SL-FL plane (``PlaneCurrent``), flow towards +x
    J_r    : Eq. (12) with the paper's minus sign, spin flowing from the valve into the right
             lead = ``-lead_spin_current[right]`` of the Simulation observables
    J_F_eq : J_F of the equilibrium state (V = 0) before the bias is switched on
    J_F - J_r is the spin (s = sigma/2) absorbed per unit time between the plane and the right
    lead; in a stationary state it is the spin-transfer torque on the localized spins there.
    """
    return np.asarray(J_F) - np.asarray(J_r) - np.asarray(J_F_eq)


def external_torque(spinH, S_all: np.ndarray, s_local: np.ndarray, dS_local: np.ndarray,
                    comm=None) -> np.ndarray:
    """tau_ext (3,), the torque on electrons + classical spins from outside (module docstring):
    field and anisotropy on moving spins, Gilbert damping, and frozen spins.  Collective.

    spinH    : operators.spin.ClassicalSpinHamiltonian of this rank (spins [start, stop))
    S_all    : all classical spins (n_spin, 3)
    s_local  : electron spin density s_j = Tr(sigma rho_jj)/2 at the local spin sites (n_loc, 3)
    dS_local : dS/dt of the local spins as the RHS computed it (n_loc, 3)
    """
    S = np.asarray(S_all, float)[spinH.start:spinH.stop]
    if np.shape(dS_local) != S.shape or np.shape(s_local) != S.shape:
        _fail("s_local/dS_local shape", (np.shape(s_local), np.shape(dS_local)),
              f"expected {S.shape} (the local spins)")
    comm = get_comm(comm)
    e = spinH.e
    g_ext = -spinH.B - 2.0 * spinH.K * np.einsum("ij,ij->i", S, e)[:, None] * e
    move = ~np.asarray(spinH.frozen, bool)
    norm = np.sqrt(np.einsum("ij,ij->i", S, S))[:, None]
    # the same for spins and moments (L = c M, c = angular_momentum_per_vector): the
    # Hamiltonian part gives dL/dt = -S x g either way, the Gilbert term -s c alpha S x dS/dt
    c = spinH.device.angular_momentum_per_vector
    tau = -cross(S, g_ext) - (spinH.sense * c) * spinH.alpha * cross(
        S, np.asarray(dS_local).real) / norm
    tot = tau[move].sum(axis=0)
    if not move.all():
        g = spinH.gradient(np.asarray(S_all, float), np.asarray(s_local, float))
        tot = tot + cross(S, g - g_ext)[~move].sum(axis=0)
    return allreduce(np.asarray(tot, float).reshape(3), comm)


def spin_continuity_residual(ds_dt, dS_dt, lead_spin_inflow, external=0.0) -> np.ndarray:
    """d s_tot/dt + d S_tot/dt - lead_spin_inflow - external, (3,) [hbar per time unit].

    ds_dt            : d/dt of the total electron spin (``electron_spin_total`` of d rho/dt)
    dS_dt            : d/dt of the sum of the classical spins
    lead_spin_inflow : sum_l Re Tr(sigma Pi_l) = ``lead_spin_current.sum(axis=0)`` (spin
                       s = sigma/2 entering from all leads; Tr(sigma/2 (Pi + Pi^dag)))
    external         : ``external_torque`` (0 for K = 0, B = 0, alpha = 0, nothing frozen)
    Zero up to round-off for the exact right-hand side.
    """
    return (np.asarray(ds_dt) + np.asarray(dS_dt) - np.asarray(lead_spin_inflow)
            - np.asarray(external))


def spin_balance(rhs, X, F) -> dict[str, np.ndarray]:
    """All terms of the spin balance from one RHS evaluation ``rhs(ts, t, X, F)``.  Collective.

    Only the rho and spin parts of F are read (an RHS that leaves out the pole decay of the
    lead blocks gives the same result).

    ``rhs`` is the ``integrators`` ClosedRHS/OpenRHS that filled F (used through its attributes
    ``layout``, ``H``, ``spinH``, ``spins_all`` and, if present, ``lead_currents``;
    nothing is imported from integrators).  Returns ``electron`` (d s_tot/dt), ``classical``
    (d S_tot/dt), ``leads`` (lead spin inflow), ``external`` (tau_ext) and ``residual``, each (3,).
    """
    lay, comm, dist = rhs.layout, rhs.H.comm, rhs.H.dist
    x, f = X.getArray(readonly=True), F.getArray(readonly=True)
    ds = electron_spin_total(lay.rho(f), dist, comm)
    dS_loc = lay.spins(f).real
    # classical angular momentum: S for spins, -M/gyro for moments
    dS = allreduce(rhs.spinH.device.angular_momentum_per_vector * dS_loc.sum(axis=0), comm)
    leads = (rhs.lead_currents(x)[1].sum(axis=0) if hasattr(rhs, "lead_currents")
             else np.zeros(3))
    S_all = np.array(rhs.spins_all(X, x)) if lay.n_spins_total else np.zeros((0, 3))
    s_loc = (0.5 * site_moments(lay.rho(x), dist)[:, 1:]
             [rhs.H.device.spin_sites[dist.spin_start:dist.spin_stop] - dist.site_start])
    tau = external_torque(rhs.spinH, S_all, s_loc, dS_loc, comm)
    return {"electron": ds, "classical": dS, "leads": leads, "external": tau,
            "residual": spin_continuity_residual(ds, dS, leads, tau)}
