"""The electron problem of a run: the device plus what its leads' time-domain representations
add (explicit lead sites), and the wide-band couplings resolved to orbitals of it.

    >>> ep = ElectronProblem(device, leads)      # leads: operators.leads.Lead objects
    >>> ep.edevice                               # the device the Hamiltonian is built from
    >>> ep.couplings                             # one Padé auxiliary component each

A lead's :meth:`~operators.leads.Lead.time_domain` gives its :class:`~operators.leads.LeadModes`;
this module is the only place that turns them into orbital indices.  Site numbering of the
extended device: the left lead's explicit columns first (outermost at x = 0), then the device,
then the right lead's (``toolkit.device.extend_device``), so every component stays distributed
by slabs of sites along x.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from toolkit.device import Device, extend_device

__all__ = ["ElectronProblem", "Coupling", "per_lead_poles"]


def per_lead_poles(poles, n_leads: int) -> list:
    """One PadePoles per lead from a list (one per lead) or a single set for all leads."""
    out = list(poles) if isinstance(poles, (list, tuple)) else [poles] * n_leads
    if len(out) != n_leads:
        raise ValueError(f"{len(out)} pole sets for {n_leads} leads")
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class Coupling:
    """A wide-band coupling resolved to the electron problem.

    name        : state component holding its Pi block (``pi:<lead>`` or ``pi:<lead>:absorber``)
    lead_index  : index of its lead (for the lead's mu(t) under a bias)
    interface   : (n,) ascending spinor orbitals of the electron problem, both spins of each site
    gamma       : (n,) Gamma on each of them [E0]
    mu, temperature : the reservoir before any bias [E0]
    """

    name: str
    lead_index: int
    interface: np.ndarray
    gamma: np.ndarray
    mu: float
    temperature: float


class ElectronProblem:
    """The device, its leads and their time-domain representations, resolved.

    device   : the physical Device (observables are reported on its sites only)
    leads    : the physical leads (operators.leads.Lead), in config order
    modes    : each lead's LeadModes
    edevice  : the device of the electron problem (= device when no lead adds sites)
    ext      : toolkit.device.Extension (where the added columns sit)
    couplings: list of :class:`Coupling`, in lead order
    shifts   : [(lead index, orbital slice)]: explicit lead orbitals that shift with V_l(t)
    """

    def __init__(self, device: Device, leads: Sequence) -> None:
        self.device, self.leads = device, list(leads)
        self.modes = [l.time_domain() for l in self.leads]
        extra = {m.side: m.sites for m in self.modes if m.sites is not None}
        self.edevice, self.ext = extend_device(device, extra.get("left"), extra.get("right"))
        self.shifts = [(k, self.ext.lead_orbitals(m.side)) for k, m in enumerate(self.modes)
                       if m.sites is not None]
        self.couplings = [self._resolve(k, m, c) for k, m in enumerate(self.modes)
                          for c in m.couplings]
        names = [c.name for c in self.couplings]
        if len(set(names)) != len(names):
            from toolkit.config import ConfigError

            dup = next(n for i, n in enumerate(names) if n in names[:i])
            k = next(c.lead_index for c in self.couplings[::-1] if c.name == dup)
            raise ConfigError(f"config key 'leads[{k}].name' = {self.leads[k].name!r} is not "
                              f"allowed: its state component '{dup}' collides with another "
                              f"lead's; choose another name")
        # auxiliary modes: (lead index, interface orbitals, channel coefficients, channels).
        # Beside them every wide-band coupling (a wide-band lead on the face, the absorbers of
        # an extended lead) runs as channels without poles, one per orbital it couples to
        interface: dict[int, np.ndarray] = {}
        if any(m.channels is not None for m in self.modes):
            from operators.leads import AuxiliaryChannels
            from operators.lorentzian import LorentzianFit

            empty = np.zeros(0)
            for k, m in enumerate(self.modes):
                if m.channels is not None:    # device orbitals -> orbitals of edevice
                    interface[k] = np.asarray(self.leads[k].interface) + 2 * self.ext.offset
                    continue
                mine = [c for c in self.couplings if c.lead_index == k]
                orb = np.concatenate([c.interface for c in mine])
                gam = np.concatenate([c.gamma for c in mine])
                fits = tuple(LorentzianFit(empty, empty, empty.astype(complex), 0.0, 0.0,
                                           float(g)) for g in gam)
                ch = AuxiliaryChannels(np.eye(len(orb)), fits, mine[0].mu, mine[0].temperature)
                self.modes[k] = dataclasses.replace(m, couplings=(), channels=ch)
                interface[k] = orb
            self.couplings = []
        self.auxiliary = [(k, interface[k], m.channels.coefficients, m.channels)
                          for k, m in enumerate(self.modes) if m.channels is not None]

    @property
    def extended(self) -> bool:
        return self.edevice is not self.device

    def _resolve(self, k: int, modes, c) -> Coupling:
        x = self.edevice.coords[:, 0]
        orb, gam = [], []
        per = 2 * self.ext.cross
        for n, j in enumerate(c.columns):
            sites = np.flatnonzero(x == self.ext.column(modes.side, j))
            orb.append(np.stack([2 * sites, 2 * sites + 1], axis=1).ravel())
            gam.append(np.asarray(c.gamma, float)[n * per:(n + 1) * per])
        orb, gam = np.concatenate(orb), np.concatenate(gam)
        if len(gam) != len(orb):
            raise ValueError(f"coupling {c.name}: {len(c.gamma)} Gamma values for {len(orb)} "
                             f"orbitals")
        order = np.argsort(orb, kind="stable")
        return Coupling(c.name, k, orb[order], gam[order], float(c.mu), float(c.temperature))

    def local_shifts(self, row_start: int, n_local_rows: int) -> list[tuple[int, slice, slice]]:
        """[(lead, local rows, columns)] of the explicit lead orbitals that shift with V_l(t),
        for a rank owning rows [row_start, row_start + n_local_rows)."""
        r0, r1 = row_start, row_start + n_local_rows
        return [(k, slice(max(sl.start, r0) - r0, max(min(sl.stop, r1), r0) - r0), sl)
                for k, sl in self.shifts]

    def interface_plane(self, k: int) -> tuple[int, float] | None:
        """(plane x, sign) of the bonds between lead k's explicit sites and the device (the
        current into the device is sign x the plane current towards +x), None for a lead
        without explicit sites."""
        m = self.modes[k]
        if m.sites is None:
            return None
        if m.side == "left":
            return self.ext.left - 1, 1.0
        return self.ext.left + self.ext.device_columns - 1, -1.0

    def describe(self) -> list[dict]:
        """Per lead: model, representation and the parameters that fix it (checkpoint attrs)."""
        return [{"lead": m.lead, "model": m.model, "representation": m.representation,
                 **m.attrs} for m in self.modes]
