"""Paper 000's observables of a run with magnetic moments (``[llg] equation = "moment"``).

Recorded at every output besides the standard series (toolkit.io.SERIES):

* ``spin_density_cd``: s_CD,j = Tr((rho - rho_eq(M)) sigma_jj)/2 per device site (Eq. 6,
  halved: qcspin's s), rho_eq the adiabatic equilibrium of the instantaneous moments for the
  run's own lead representation (integrators/adiabatic.py);
* ``torque``: T_j = J_sd M_j x s_CD,j (Eq. 7 in qcspin's conventions, operators/torques.py)
  per classical vector, and ``torque_fl_dl`` its (T_FL, T_DL) along x (Eq. 11); with
  ``drive = "steady-state"`` the steady-state s_CD that drives the moments (0 on frozen ones);
  ``torque_neq``: the same with the full s (T^neq of Eq. A2);
* ``plane_current_cd``, ``plane_spin_current_cd``: the bond currents of Eqs. (9)-(10) with
  rho_CD through the planes of ``output.planes`` (``plane_current``, ``plane_spin_current``
  are the full-rho versions of App. A);
* ``magnon_current``: J_ex S_i x S_j per exchange bond (Eq. 14);
* ``spin_continuity_residual`` (n_magnetic_layers, 3): Eqs. (A1)-(A4) summed over each layer
  with moments, d/dt sum_i s_i - sum_i T^neq_i - (spin current in - out) [through the planes in
  front of and behind the layer, or from the lead on that face], zero up to round-off for the
  exact right-hand side (the printed Eq. 12 has the opposite sign of the current term).

Needs leads whose reservoirs share mu, T and poles (one equilibrium); without them only
``torque_neq`` and ``magnon_current`` are recorded.
"""
from __future__ import annotations

import numpy as np

from operators.torques import fl_dl, magnon_currents, sd_torque

from .adiabatic import AdiabaticEquilibrium, CurrentDrivenSpinDensity
from .steady_state import SteadyStateSource

__all__ = ["MomentObservables"]

_W = 0.5 * np.array([[0, 1, 1, 0], [0, 1j, -1j, 0], [1, 0, 0, -1]], complex)


class MomentObservables:
    """Collective ``__call__(a, S_all)`` -> the parts every rank computes; :meth:`finish`
    (root) adds the per-site and per-vector series from the gathered arrays."""

    def __init__(self, sim) -> None:
        self.sim = sim
        self.eq: AdiabaticEquilibrium | None = None
        self.reason = ""
        from .rhs import LLG

        src = sim.rhs.term(LLG).source
        self.steady = src if isinstance(src, SteadyStateSource) else None
        if isinstance(src, CurrentDrivenSpinDensity):
            self.eq = src.eq
        elif sim.leads:
            try:
                S0 = sim.rhs.spins_all(sim.y, sim.y.getArray(readonly=True))
                self.eq = AdiabaticEquilibrium(sim.H, sim.problem, sim.poles,
                                               np.array(S0, float))
            except ValueError as e:   # the same on every rank: the leads are replicated
                self.reason = str(e)
        else:
            self.reason = "no leads: no reservoir equilibrium"

    def _continuity_setup(self) -> None:
        """Planes at the faces of every magnetic layer (the lead on a device face)."""
        from operators.currents import PlaneCurrent

        sim = self.sim
        dev, ext = sim.device, sim.extension
        Lx = dev.size[0]
        self.c_layers = [n for n in dev.magnetic_layers]
        faces = []
        for n in self.c_layers:
            cols = dev.coords[dev.layer_sites(n), 0]
            faces.append((int(cols.min()), int(cols.max()) + 1))
        self.c_faces = faces
        planes = sorted({x for a, b in faces for x in (a - 1, b - 1) if 0 <= x < Lx - 1})
        self.c_planes = planes
        self.c_pc = (PlaneCurrent(sim.edevice, sim.H, [x + ext.left for x in planes])
                     if planes else None)
        sides = {l.side: k for k, l in enumerate(sim.leads)}
        self.c_leads = [(sides.get("left") if a == 0 else None,
                         sides.get("right") if b == Lx else None) for a, b in faces]
        d = sim.H.dist
        lay_of = sim.edevice.layer_of_site[d.site_start:d.site_stop]
        names = list(sim.edevice.layer_names)
        self.c_site_layer = np.array([self.c_layers.index(names[k]) if k >= 0 and names[k]
                                      in self.c_layers else -1 for k in lay_of], int)
        sp = sim.edevice.spin_layer[d.spin_start:d.spin_stop]
        self.c_spin_layer = np.array([self.c_layers.index(names[k]) for k in sp], int)
        from operators.observables import diag_block_indices

        sites = sim.edevice.spin_sites[d.spin_start:d.spin_stop]
        self.c_spin_idx = diag_block_indices(sites, d.site_start, d.n_local_rows)
        self.c_F = sim.y.duplicate()

    def continuity(self, a: np.ndarray, S_all: np.ndarray) -> np.ndarray:
        """(n_layers, 3): d/dt sum s - sum T^neq - planes' (in - out), before the leads' part
        (added on root by :meth:`finish`).  Collective (one RHS evaluation)."""
        from operators.observables import spin_density_local
        from toolkit.parallel import allreduce

        sim = self.sim
        if not hasattr(self, "c_F"):
            self._continuity_setup()
        sim.rhs(None, sim.time, sim.y, self.c_F)
        f = self.c_F.getArray(readonly=True)
        n = len(self.c_layers)
        loc = np.zeros((n, 3))
        ds = spin_density_local(f, sim._site_idx)              # d s_i/dt, local sites
        ok = self.c_site_layer >= 0
        np.add.at(loc, self.c_site_layer[ok], ds[ok])
        d = sim.H.dist
        s_sp = spin_density_local(a, self.c_spin_idx)
        M = S_all[d.spin_start:d.spin_stop]
        T = sd_torque(np.asarray(sim.device.J_sd)[d.spin_start:d.spin_stop], M, s_sp)
        np.subtract.at(loc, self.c_spin_layer, T)
        res = allreduce(loc, sim.comm)
        if self.c_pc is not None:
            _, J = self.c_pc(np.asfortranarray(sim.layout.rho(a)))
            J = np.atleast_2d(J)
            for k, (x0, x1) in enumerate(self.c_faces):
                if x0 - 1 in self.c_planes:     # inflow through the plane in front
                    res[k] -= J[self.c_planes.index(x0 - 1)]
                if x1 - 1 in self.c_planes:     # outflow through the plane behind
                    res[k] += J[self.c_planes.index(x1 - 1)]
        return res

    def __call__(self, a: np.ndarray, S_all: np.ndarray) -> dict:
        """Collective: rho_eq on every rank, the rho_CD plane currents, s_eq per site, the
        continuity residual."""
        sim = self.sim
        cont = {"_continuity": self.continuity(a, S_all)}
        if self.eq is None:
            return cont
        rho_eq = self.eq.density(S_all)
        d = sim.H.dist
        r0, nloc = d.row_start, d.n_local_rows
        out: dict = {}
        if sim.planes is not None:
            rho_cd = sim.layout.rho(a) - rho_eq[r0:r0 + nloc]
            I, J = sim.planes(np.asfortranarray(rho_cd))
            out["plane_current_cd"] = np.atleast_1d(I)
            out["plane_spin_current_cd"] = np.atleast_2d(J)
        sites = np.arange(sim.edevice.n_sites)[sim.extension.device_sites]
        blocks = np.stack([rho_eq[2 * sites, 2 * sites], rho_eq[2 * sites, 2 * sites + 1],
                           rho_eq[2 * sites + 1, 2 * sites], rho_eq[2 * sites + 1,
                                                                    2 * sites + 1]])
        out["_s_eq"] = (_W @ blocks).real.T
        out.update(cont)
        return out

    def finish(self, out: dict, S_all: np.ndarray, s_all: np.ndarray,
               lead_spin_current: np.ndarray | None = None) -> dict:
        """Root: the series from all spins S_all and the device's full spin density s_all."""
        dev = self.sim.device
        s_eq = out.pop("_s_eq", None)
        res = out.pop("_continuity", None)
        if res is not None:
            lsc = lead_spin_current
            for k, (left, right) in enumerate(self.c_leads):
                for lead in (left, right):
                    if lead is not None and lsc is not None:
                        res[k] -= lsc[lead]
            out["spin_continuity_residual"] = res
        s_spin = s_all[dev.spin_sites]
        out["torque_neq"] = sd_torque(dev.J_sd, S_all, s_spin)
        if s_eq is not None:
            s_cd = s_all - s_eq
            out["spin_density_cd"] = s_cd
            T = sd_torque(dev.J_sd, S_all, s_cd[dev.spin_sites])
            out["torque"] = T
            out["torque_fl_dl"] = fl_dl(T, S_all)
        if self.steady is not None:   # the torque that drives the moments: steady state's
            ss = self.steady.ss
            s = np.zeros_like(S_all)
            s[ss.moving] = ss.current_driven(S_all, self.steady.bias(self.sim.time))
            T = sd_torque(dev.J_sd, S_all, s)
            out["torque"] = T
            out["torque_fl_dl"] = fl_dl(T, S_all)
        out["magnon_current"] = magnon_currents(dev, S_all)
        return out
