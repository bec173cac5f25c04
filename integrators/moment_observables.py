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
* ``magnon_current``: J_ex S_i x S_j per exchange bond (Eq. 14).

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

    def __call__(self, a: np.ndarray, S_all: np.ndarray) -> dict:
        """Collective: rho_eq on every rank, the rho_CD plane currents, s_eq per site."""
        if self.eq is None:
            return {}
        sim = self.sim
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
        return out

    def finish(self, out: dict, S_all: np.ndarray, s_all: np.ndarray) -> dict:
        """Root: the series from all spins S_all and the device's full spin density s_all."""
        dev = self.sim.device
        s_eq = out.pop("_s_eq", None)
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
