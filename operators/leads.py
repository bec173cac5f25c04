"""Leads: the one-method contract and the wide-band lead of paper 004 (Eqs. 5-9, 16-18).

A lead couples a reservoir (chemical potential ``mu``, temperature ``temperature``) to a set of
*interface* spinor orbitals of the device.  Everything a transport or dynamics code needs is the
retarded self-energy on those orbitals,

    Sigma_l^R(eps) : (n_l, n_l) complex, rows/columns ordered like ``lead.interface``,

and from it the broadening Gamma_l(eps) = i (Sigma_l^R - Sigma_l^R^dag) (Hermitian, >= 0).  The
retarded Green function of the open device is G^R(eps) = (eps - H - sum_l Sigma_l^R)^-1.

Wide-band limit (WBL, paper 004): Gamma_l is energy independent, diagonal and equal to ``gamma``
on every spinor orbital of the end face of the device (column x = 0 for the left lead, x = Lx - 1
for the right lead; in 2D/3D the whole face), so

    Sigma_l^R = -i Gamma_l / 2,         Gamma_l^up/down = Gamma_l P_up/down

(P_up/down: projector on spin up/down of each interface site; Gamma^up - Gamma^down = Gamma sigma_z
enters Eq. 17).  This is the Gamma_l of Eqs. (6), (8), (9): G^R = (eps - H + i Gamma/2)^-1,
Gamma = Gamma_l + Gamma_r.  The leads are spin independent, so Gamma_l commutes with sigma_a.

Units: energies (gamma, mu, temperature = k_B T) in the energy unit E0 of the device.

    >>> left = WideBandLead(device, "left", 1.0, mu=0.5)
    >>> left.selfenergy(0.0).shape == (left.n_interface, left.n_interface)
    True

No MPI here: leads are small, identical on every rank.
"""
from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.special import expit

from toolkit.config import ConfigError
from toolkit.device import Device

__all__ = ["Lead", "WideBandLead", "PrecalculatedLead", "fermi", "pauli_on", "SIDES",
           "LEAD_KEYS", "leads_from_config"]

SIDES = ("left", "right")
LEAD_MODELS = ("wide-band",)
LEAD_KEYS = ("name", "side", "model", "gamma", "mu", "temperature")
PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], complex)


def _fail(name: str, value: Any, allowed: str, exc=ValueError) -> None:
    raise exc(f"{name} = {value!r} is not allowed: {allowed}")


def _real(name: str, value: Any, *, positive: bool = False, nonneg: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value):
        _fail(name, value, "expected a finite real number")
    if positive and value <= 0:
        _fail(name, value, "expected a number > 0")
    if nonneg and value < 0:
        _fail(name, value, "expected a number >= 0")
    return float(value)


def fermi(energy, mu: float, temperature: float):
    """Exact Fermi function f(eps) = 1/(1 + exp((eps - mu)/T)); T = 0: step, f(mu) = 1/2.

    Broadcasts ``energy``; overflow-safe (scipy.special.expit).  T = k_B T in E0.
    """
    e = np.asarray(energy, float)
    if temperature > 0:
        with np.errstate(over="ignore"):
            return expit(-(e - mu) / temperature)
    return np.where(e < mu, 1.0, np.where(e > mu, 0.0, 0.5))


def pauli_on(interface: np.ndarray, alpha: int) -> np.ndarray:
    """sigma_alpha (alpha = 0, 1, 2 for x, y, z) restricted to the spinor orbitals ``interface``,
    which must hold both spins of each of its sites (2s, 2s + 1 adjacent): (n, n) complex."""
    idx = np.asarray(interface)
    if len(idx) % 2 or np.any(idx[0::2] % 2) or np.any(idx[1::2] != idx[0::2] + 1):
        _fail("interface", idx.tolist(), "sigma needs both spin orbitals (2s, 2s+1) of each site")
    return np.kron(np.eye(len(idx) // 2), PAULI[alpha])


class Lead(ABC):
    """A reservoir coupled to ``interface`` orbitals of a device: the one-method contract.

    Attributes (set by :meth:`__init__`, read-only by convention):
      name        : str, unique among the leads of a device
      interface   : (n_l,) int64, global spinor orbital indices (2 site + spin), ascending
      mu          : chemical potential of the reservoir [E0]
      temperature : k_B T of the reservoir [E0], >= 0 (0: step Fermi function)
    Class attributes (hints for solvers):
      parameters         : names that :meth:`selfenergy` reads from ``params``
      is_diagonal        : True if Sigma^R is always diagonal (solvers store only the diagonal)
      energy_independent : True if Sigma^R does not depend on the energy (wide band)

    Subclasses implement :meth:`selfenergy` only.
    """

    parameters: frozenset = frozenset()
    is_diagonal: bool = False
    energy_independent: bool = False

    def __init__(self, name: str, interface, mu: float = 0.0, temperature: float = 0.0) -> None:
        if not isinstance(name, str) or not name:
            _fail("name", name, "expected a non-empty string")
        idx = np.asarray(interface)
        if idx.ndim != 1 or not len(idx) or not np.issubdtype(idx.dtype, np.integer) \
                or np.any(idx < 0) or np.any(np.diff(idx) <= 0):
            _fail("interface", interface, "expected a non-empty ascending array of distinct "
                  "spinor orbital indices >= 0")
        self.name = name
        self.interface = idx.astype(np.int64)
        self.interface.setflags(write=False)
        self.mu = _real("mu", mu)
        self.temperature = _real("temperature", temperature, nonneg=True)

    @abstractmethod
    def selfenergy(self, energy: float, params: Mapping | None = None) -> np.ndarray:
        """Retarded self-energy Sigma^R(energy) on the interface orbitals.

        energy : real energy [E0];  params : dict of named parameters (see ``parameters``)
        Returns a complex (n_l, n_l) array, rows and columns ordered like ``interface``, with
        i (Sigma - Sigma^dag) positive semi-definite.  The caller must not modify it.
        """

    @property
    def n_interface(self) -> int:
        return int(len(self.interface))

    @property
    def interface_sites(self) -> np.ndarray:
        """Sites (ascending, unique) that carry interface orbitals."""
        return np.unique(self.interface // 2)

    def broadening(self, energy: float, params: Mapping | None = None) -> np.ndarray:
        """Gamma(energy) = i (Sigma^R - Sigma^R^dag), (n_l, n_l) Hermitian."""
        s = self.selfenergy(energy, params)
        return 1j * (s - s.conj().T)

    def fermi(self, energy, *, mu: float | None = None, temperature: float | None = None):
        """Occupation f_l(energy) of the reservoir (exact Fermi function; T = 0: step)."""
        return fermi(energy, self.mu if mu is None else mu,
                     self.temperature if temperature is None else temperature)

    def spin_operator(self, alpha: int) -> np.ndarray:
        """sigma_alpha on the interface orbitals (alpha = 0, 1, 2 -> x, y, z), (n_l, n_l)."""
        return pauli_on(self.interface, alpha)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, n_interface={self.n_interface}, "
                f"mu={self.mu}, temperature={self.temperature})")


def _check_params(params) -> None:
    if params is not None and not isinstance(params, Mapping):
        _fail("params", params, "expected None or a dict of named parameters")


class WideBandLead(Lead):
    """Wide-band lead on the left (x = 0) or right (x = Lx - 1) face of ``device``.

    gamma       : Gamma_l > 0 [E0], the same on every spinor orbital of the face
    mu          : chemical potential [E0];  temperature : k_B T >= 0 [E0] (paper 004: 0.025)
    name        : defaults to ``side``

    ``selfenergy(eps) = -i gamma/2 * 1`` (n_l x n_l, energy independent, no parameters);
    :meth:`gamma_matrix` gives Gamma_l or its spin-resolved parts Gamma_l^up/down (Eq. 17).
    """

    is_diagonal = True
    energy_independent = True

    def __init__(self, device: Device, side: str, gamma: float, mu: float = 0.0,
                 temperature: float = 0.025, name: str | None = None) -> None:
        if not isinstance(device, Device):
            _fail("device", type(device).__name__, "expected a frozen Device (call "
                  ".finalized() on a DeviceBuilder)", TypeError)
        if side not in SIDES:
            _fail("side", side, f"expected one of {list(SIDES)}")
        self.side = side
        self.gamma = _real("gamma", gamma, positive=True)
        x = device.coords[:, 0]
        sites = np.flatnonzero(x == (0 if side == "left" else device.size[0] - 1))
        orbitals = np.stack([2 * sites, 2 * sites + 1], axis=1).ravel()
        super().__init__(side if name is None else name, orbitals, mu, temperature)
        self.n_orbitals_device = device.n_orbitals
        n = self.n_interface
        self._sigma = np.diag(np.full(n, -0.5j * self.gamma))
        self._sigma.setflags(write=False)

    def selfenergy(self, energy: float, params: Mapping | None = None) -> np.ndarray:
        """-i gamma/2 on the diagonal, (n_l, n_l); the same array for every energy."""
        _real("energy", energy)
        _check_params(params)
        return self._sigma

    def gamma_diagonal(self, spin: str | None = None) -> np.ndarray:
        """Diagonal of Gamma_l (spin None) or of Gamma_l^up / Gamma_l^down ('up'/'down'), (n_l,)."""
        g = np.full(self.n_interface, self.gamma)
        if spin is None:
            return g
        if spin not in ("up", "down"):
            _fail("spin", spin, "expected None, 'up' or 'down'")
        return g * ((self.interface % 2) == (0 if spin == "up" else 1))

    def gamma_matrix(self, spin: str | None = None) -> np.ndarray:
        """Gamma_l, or Gamma_l^up/down (projected on one spin), as a (n_l, n_l) real matrix."""
        return np.diag(self.gamma_diagonal(spin))

    def replace(self, **changes: Any) -> "WideBandLead":
        """A copy with other ``gamma``, ``mu``, ``temperature`` or ``name`` (validated)."""
        bad = set(changes) - {"gamma", "mu", "temperature", "name"}
        if bad:
            _fail("replace", sorted(bad), "expected keys among gamma, mu, temperature, name")
        new = object.__new__(WideBandLead)
        new.__dict__.update(self.__dict__)
        kw = {"gamma": self.gamma, "mu": self.mu, "temperature": self.temperature,
              "name": self.name, **changes}
        Lead.__init__(new, kw["name"], self.interface, kw["mu"], kw["temperature"])
        new.gamma = _real("gamma", kw["gamma"], positive=True)
        new._sigma = np.diag(np.full(self.n_interface, -0.5j * new.gamma))
        new._sigma.setflags(write=False)
        return new

    def __repr__(self) -> str:
        return (f"WideBandLead(name={self.name!r}, side={self.side!r}, gamma={self.gamma}, "
                f"mu={self.mu}, temperature={self.temperature}, n_interface={self.n_interface})")


class PrecalculatedLead(Lead):
    """``lead`` with its self-energy evaluated once at ``energies`` (a cache for expensive leads,
    e.g. surface Green functions).  ``selfenergy(e)`` returns the stored matrix for an energy of
    the list (exact match) and raises ValueError for any other energy or other ``params``."""

    def __init__(self, lead: Lead, energies, params: Mapping | None = None) -> None:
        if not isinstance(lead, Lead):
            _fail("lead", type(lead).__name__, "expected a Lead", TypeError)
        _check_params(params)
        super().__init__(lead.name, lead.interface, lead.mu, lead.temperature)
        self.lead = lead
        self.is_diagonal, self.energy_independent = lead.is_diagonal, lead.energy_independent
        self.parameters = lead.parameters
        self._params = None if params is None else dict(params)
        self._cache = {}
        for e in np.atleast_1d(np.asarray(energies, float)):
            m = np.array(lead.selfenergy(float(e), params), complex)
            m.setflags(write=False)
            self._cache[float(e)] = m

    def selfenergy(self, energy: float, params: Mapping | None = None) -> np.ndarray:
        if (None if params is None else dict(params)) != self._params:
            _fail("params", params, f"this PrecalculatedLead was evaluated with {self._params}")
        try:
            return self._cache[float(energy)]
        except KeyError:
            if self.energy_independent and self._cache:
                return next(iter(self._cache.values()))
            _fail("energy", energy, f"not among the {len(self._cache)} precalculated energies")


def leads_from_config(device: Device, tables: Sequence[Mapping]) -> tuple[Lead, ...]:
    """Leads from ``[[leads]]`` tables of a config (dicts, or ``toolkit.config.LeadConfig``
    dataclasses, e.g. ``cfg.leads``), validated.

    Keys: ``side`` ('left'/'right', required), ``gamma`` (> 0, required), ``name`` (default:
    side), ``model`` ('wide-band', default), ``mu`` (default 0.0), ``temperature`` (>= 0,
    default 0.025).  Raises toolkit.ConfigError naming the key (``leads[i].key``).
    """
    if not isinstance(tables, Sequence) or isinstance(tables, (str, bytes)):
        _fail("config key 'leads'", tables, "expected a list of [[leads]] tables", ConfigError)
    out: list[Lead] = []
    for i, t in enumerate(tables):
        key = f"config key 'leads[{i}]'"
        if dataclasses.is_dataclass(t) and not isinstance(t, type):
            t = {k: v for k, v in dataclasses.asdict(t).items() if not (k == "name" and not v)}
        if not isinstance(t, Mapping):
            _fail(key, t, "expected a table", ConfigError)
        unknown = sorted(set(t) - set(LEAD_KEYS))
        if unknown:
            _fail(f"config key 'leads[{i}].{unknown[0]}'", t[unknown[0]],
                  f"unknown key; allowed keys are {list(LEAD_KEYS)}", ConfigError)
        for req in ("side", "gamma"):
            if req not in t:
                _fail(f"config key 'leads[{i}].{req}'", None, "missing required key", ConfigError)
        model = t.get("model", "wide-band")
        if model not in LEAD_MODELS:
            _fail(f"config key 'leads[{i}].model'", model, f"expected one of {list(LEAD_MODELS)}",
                  ConfigError)
        try:
            lead = WideBandLead(device, t["side"], t["gamma"], mu=t.get("mu", 0.0),
                                temperature=t.get("temperature", 0.025), name=t.get("name"))
        except (ValueError, TypeError) as exc:
            name = str(exc).split(" = ")[0]
            raise ConfigError(f"config key 'leads[{i}].{name}'"
                              f"{str(exc)[len(name):]}") from None
        out.append(lead)
    names = [l.name for l in out]
    sides = [getattr(l, "side", None) for l in out]
    for i, n in enumerate(names):
        if n in names[:i]:
            _fail(f"config key 'leads[{i}].name'", n, "lead names must be unique", ConfigError)
        if sides[i] in sides[:i]:
            _fail(f"config key 'leads[{i}].side'", sides[i], "only one lead per side",
                  ConfigError)
    return tuple(out)
