"""How well a run's time-domain lead representation reproduces the exact lead: printed by
``qcspin run`` and stored with the run (attribute ``lead_representation`` of the result file).

For every tight-binding lead: the largest deviation of the representation's broadening from
the exact one over the lead's band, max_E |Gamma_rep(E) - Gamma(E)| (entries of the interface
matrices, 2001 energies), and, for a junction with one lead on each side, the relative error
of the Landauer current at the bias the run ends with (rigid shifts), the exact self-energy
against the representation's (adaptive quadrature, rtol 1e-8).  Skipped for electron problems
above ``max_orbitals`` (the quadrature is dense).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from operators.leads import Lead, TightBindingLead

__all__ = ["representation_errors"]


class _Represented(Lead):
    """``lead`` with the self-energy of its time-domain representation, rigidly shifted by
    ``shift``."""

    def __init__(self, lead: TightBindingLead, shift: float = 0.0, modes=None) -> None:
        moved = lead.shifted(shift) if shift else lead
        super().__init__(moved.name, moved.interface, moved.mu, moved.temperature)
        self.side, self.lead, self.shift = lead.side, moved, shift
        m = lead.time_domain() if modes is None else modes   # (callers may pass it in)
        self.channels = m.channels
        if m.channels is not None:
            self.fits = [f.shifted(shift) for f in m.channels.fits]
            self.C = m.channels.coefficients

    def selfenergy(self, energy, params=None):
        if self.channels is None:
            return self.lead.extended_selfenergy(energy)
        s = np.array([f(complex(energy)) for f in self.fits])
        return (self.C * s) @ self.C.conj().T

    def band_edges(self):
        return self.lead.band_edges()


def representation_errors(sim, *, max_orbitals: int = 400) -> dict | None:
    """{'leads': [{name, representation, gamma_error}], 'current_error': relative error of the
    final-bias Landauer current or None, 'V': the final bias shifts} for a Simulation with
    tight-binding leads; None without them or above ``max_orbitals``.  Collective."""
    from analysis.transport import landauer_current
    from integrators.bias import bias_function

    leads = sim.leads
    tb = [l for l in leads if isinstance(l, TightBindingLead)]
    if not tb or sim.device.n_orbitals > max_orbitals:
        return None
    out = []
    # the lead's own representation (not the ElectronProblem's modes: beside auxiliary modes
    # an extended lead's absorbers are recast as channels there, its self-energy is the same)
    modes = {id(l): l.time_domain() for l in tb}
    for l in tb:
        edges = l.band_edges()
        E = np.linspace(edges[0], edges[-1], 2001)[1:-1]
        rep = _Represented(l, modes=modes[id(l)])
        err = max(float(np.abs(rep.broadening(e) - l.broadening(e)).max()) for e in E)
        out.append({"name": l.name, "representation": modes[id(l)].representation,
                    "gamma_error": err})
    res: dict[str, Any] = {"leads": out, "current_error": None, "V": None}
    sides = sorted(getattr(l, "side", "") for l in leads)
    if len(leads) == 2 and sides == ["left", "right"]:
        mu_on = bias_function(sim.config, leads, sim.units).on
        V = [float(m - l.mu) for l, m in zip(leads, mu_on)]
        exact, reps = [], []
        for l, v in zip(leads, V):
            exact.append(l.shifted(v))
            reps.append(_Represented(l, v, modes[id(l)]) if isinstance(l, TightBindingLead)
                        else l.shifted(v))
        order = [0, 1] if getattr(leads[0], "side", "") == "left" else [1, 0]
        kw = dict(method="quad", rtol=1e-8, comm=sim.comm)
        I0 = landauer_current(sim.device, tuple(exact[i] for i in order), **kw).current
        I1 = landauer_current(sim.device, tuple(reps[i] for i in order), **kw).current
        res["V"] = V
        res["current_error"] = float(abs(I1 / I0 - 1)) if I0 != 0 else float(abs(I1 - I0))
    return res
