"""Paper 000's 8-site seed spin valve with tight-binding leads, shared by the lead tests
(tests/integrators/test_extended.py, test_aux_modes.py, tests/operators/test_lorentzian.py):
its config, Landauer currents with exact or represented leads, and an exact evolution of the
valve between long closed chains (3 moments along x, 2 normal sites, 3 along z; hopping 1,
-J_sd sigma.M with J_sd = 0.1, i.e. qcspin's +J_sd/2 sigma.S with J_sd = -0.2; E_F = -1.6;
T = 0.025852 = 300 K in eV)."""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from analysis.transport import landauer_current
from operators.leads import Lead, TightBindingLead, leads_from_config
from toolkit.config import config_from_dict
from toolkit.device import device_from_config

T300 = 0.025852
EF = -1.6
V = 0.25


def valve(L=20, *, n_poles=20, protocol="asymmetric", t_on=0.0, dt=0.1, t_end=1.0,
          absorbing=None, lead_keys=None, layers=None, bonds=None):
    lead = {"model": "tight-binding", "mu": EF, "temperature": T300, "sites": L,
            "n_poles": n_poles, **(lead_keys or {})}
    if absorbing is not None:
        lead["absorbing"] = absorbing
    return {
        "lattice": {"size": [8], "hopping": 1.0},
        "layers": layers or [
            {"name": "P", "columns": [0, 3], "J_sd": -0.2, "spin": [1, 0, 0], "frozen": True},
            {"name": "N", "columns": [3, 5]},
            {"name": "F", "columns": [5, 8], "J_sd": -0.2, "spin": [0, 0, 1], "frozen": True}],
        "bonds": bonds or [],
        "leads": [dict(lead, side="left"), dict(lead, side="right")],
        "bias": {"protocol": protocol, "V": V, "t_on": t_on},
        "electrons": {"initial": "stationary"},
        "time": {"dt": dt, "t_end": t_end, "output_every": 5, "checkpoint_every": 5},
    }


class _Extended(Lead):
    """The self-energy the extended representation of ``lead`` puts on the face (for Landauer)."""

    def __init__(self, lead: TightBindingLead) -> None:
        super().__init__(lead.name, lead.interface, lead.mu, lead.temperature)
        self.side, self.lead = lead.side, lead

    def selfenergy(self, energy, params=None):
        return self.lead.extended_selfenergy(energy)


def _landauer(cfg: dict, comm, wrap=None, shift=V):
    """Landauer current (Re Tr Pi convention) of ``cfg`` with the left lead shifted by
    ``shift`` (band and mu), exact leads or ``wrap``-ped ones."""
    c = config_from_dict(cfg)
    dev = device_from_config(c)
    left, right = leads_from_config(dev, c.leads)
    left = left.shifted(shift)
    if wrap is not None:
        left, right = wrap(left), wrap(right)
    return landauer_current(dev, (left, right), method="quad", comm=comm, rtol=1e-11,
                            breakpoints=np.linspace(-2.0, 2.0, 41))


def _closed_chain_currents(times, L=300, partitioned=False):
    """Exact evolution of the closed chain lead(L) + valve + lead(L) after the left lead's
    on-site energy steps by V at t = 0 (thermal state at E_F, T before), or (``partitioned``)
    after the lead-valve bonds are switched on at t = 0 (thermal state of the three
    disconnected pieces before): the currents into the valve at both ends (Re Tr Pi
    convention: half the electron flow), and the initial state."""
    n = L + 8 + L
    N = 2 * n
    H = np.zeros((N, N), complex)
    i = np.arange(n - 1)
    for s in (0, 1):
        H[2 * i + s, 2 * i + 2 + s] = H[2 * i + 2 + s, 2 * i + s] = -1.0
    sx, sz = np.array([[0, 1], [1, 0]]), np.diag([1.0, -1.0])
    for k in range(8):
        j = 2 * (L + k)
        if k < 3:
            H[j:j + 2, j:j + 2] += -0.1 * sx
        if k >= 5:
            H[j:j + 2, j:j + 2] += -0.1 * sz
    H0 = H.copy()
    if partitioned:
        for a, b in ((2 * (L - 1), 2 * L), (2 * (L + 7), 2 * (L + 8))):
            for s in (0, 1):
                H0[a + s, b + s] = H0[b + s, a + s] = 0.0
    w, U = np.linalg.eigh(H0)
    rho0 = (U * expit(-(w - EF) / T300)) @ U.conj().T
    if not partitioned:
        H[np.arange(2 * L), np.arange(2 * L)] += V
    w1, U1 = np.linalg.eigh(H)
    R = U1.conj().T @ rho0 @ U1
    a, b, a2, b2 = 2 * (L - 1), 2 * L, 2 * (L + 7), 2 * (L + 8)
    out = []
    for t in times:
        ph = np.exp(-1j * w1 * t)
        r1 = (U1[a:a + 2] * ph) @ R @ (U1[b:b + 2] * ph).conj().T
        r2 = (U1[a2:a2 + 2] * ph) @ R @ (U1[b2:b2 + 2] * ph).conj().T
        out.append((-np.trace(r1).imag, np.trace(r2).imag))
    return np.array(out), rho0
