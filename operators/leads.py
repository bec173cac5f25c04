"""Leads: the one-method contract, the wide-band lead of paper 004 (Eqs. 5-9, 16-18) and the
finite-band tight-binding lead of paper 000 (Sec. II: semi-infinite clean leads of Eq. 3).

A lead couples a reservoir (chemical potential ``mu``, temperature ``temperature``) to a set of
*interface* spinor orbitals of the device.  Everything a transport or dynamics code needs is the
retarded self-energy on those orbitals,

    Sigma_l^R(z) : (n_l, n_l) complex, rows/columns ordered like ``lead.interface``,

for any complex energy z with Im z >= 0 (real z: the limit from the upper half-plane, z + i0),
and from it the broadening Gamma_l(E) = i (Sigma_l^R - Sigma_l^R^dag) (Hermitian, >= 0).  The
retarded Green function of the open device is G^R(z) = (z - H - sum_l Sigma_l^R(z))^-1.

Models (``LEAD_MODELS``, selected by ``[[leads]] model = ...``):

* ``"wide-band"`` (:class:`WideBandLead`, paper 004): Gamma_l is energy independent, diagonal and
  equal to ``gamma`` on every spinor orbital of the end face of the device (column x = 0 for the
  left lead, x = Lx - 1 for the right lead; in 2D/3D the whole face), so

      Sigma_l^R = -i Gamma_l / 2,         Gamma_l^up/down = Gamma_l P_up/down

  (P_up/down: projector on spin up/down of each interface site; Gamma^up - Gamma^down =
  Gamma sigma_z enters Eq. 17).  This is the Gamma_l of Eqs. (6), (8), (9): G^R =
  (eps - H + i Gamma/2)^-1, Gamma = Gamma_l + Gamma_r.  ``gamma`` may also be given per
  interface orbital.

* ``"tight-binding"`` (:class:`TightBindingLead`, paper 000 Sec. II): a semi-infinite clean
  continuation of the lattice (hopping t_L, on-site eps_0, the device's cross-section, open
  transverse boundaries) coupled by the hopping t_c to the end face.  Exact self-energy by
  transverse modes (H_perp phi_k = e_k phi_k on the face, real orthonormal phi_k):

      Sigma_l^R(z) = t_c^2 sum_k phi_k g_s(z - eps_0 - e_k) phi_k^T  (x) 1_spin,
      g_s(w) = (w - sqrt(w^2 - 4 t_L^2)) / (2 t_L^2) = 2 / (w + sqrt(w - 2t_L) sqrt(w + 2t_L))

  (:func:`chain_surface_green`): the surface Green function of a semi-infinite chain, retarded
  branch (|t_L g_s| < 1 off the band, Im g_s < 0 inside it).  Finite band: channel k is open
  for |E - eps_0 - e_k| < 2 t_L; outside every band Sigma is real (Gamma = 0, no transmission)
  and the open device can have bound states (real poles of G^R, delta peaks of the DOS that a
  real energy grid does not resolve).

Time domain.  :meth:`Lead.time_domain` returns the lead's :class:`LeadModes`: explicit lead
sites it adds to the electron problem (:class:`ExtraSites`) and wide-band couplings
(:class:`WideBandCoupling`, each integrated with its Padé auxiliary block).  A wide-band lead
is one coupling on the face; a tight-binding lead in the ``"extended"`` representation is L
explicit columns whose outermost n carry graded absorbing couplings; in ``"modes"`` (the same
self-energy as poles) or ``"lorentzian"`` (a positive fit) it is auxiliary modes
(:class:`AuxiliaryChannels`, operators/lorentzian.py).  The integrators consume only these
objects (nothing there reads a model's parameters).

Signs.  qcspin's H = -sum t (c^dag c + h.c.): the lead's bonds are -t_L and the lead-device
bonds -t_c, so Sigma = (-t_c)^2 g_s; g_s of a chain with hopping -t_L equals that of +t_L
(bipartite), while the transverse modes use -t_L like the device.

Units: energies (gamma, hopping, onsite, coupling, mu, temperature = k_B T) in the energy unit
E0 of the device.

    >>> left = WideBandLead(device, "left", 1.0, mu=0.5)
    >>> left.selfenergy(0.0).shape == (left.n_interface, left.n_interface)
    True

No MPI here: leads are small, identical on every rank.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from toolkit.device import Device, lattice_bonds
from toolkit.lead_schema import (
    LEAD_COMMON_KEYS,
    LEAD_SCHEMAS,
    TIGHT_BINDING,
    WIDE_BAND,
    LeadSchema,
    validate_lead_table,
)
from toolkit.schema import ConfigError
from toolkit.schema import fail as _fail
from toolkit.schema import real as _real

from .fermi import fermi  # re-exported: the one Fermi function (operators/fermi.py)

if TYPE_CHECKING:
    from toolkit.config import LeadConfig

__all__ = ["Lead", "LeadModes", "WideBandCoupling", "ExtraSites", "AuxiliaryChannels",
           "WideBandLead", "TightBindingLead", "PrecalculatedLead", "fermi", "pauli_on",
           "chain_surface_green", "SIDES", "LEAD_MODELS", "LEAD_COMMON_KEYS", "LEAD_KEYS",
           "leads_from_config", "time_domain_models"]

SIDES = ("left", "right")
PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], complex)


def _energy(z: Any) -> complex:
    """A complex energy of the contract: finite, Im z >= 0 (returned with imaginary part +0.0
    on the real axis, i.e. the limit from above)."""
    # call-overload: typeshed's numbers.Number has no __complex__; the numeric types registered
    # as Numbers (int, float, complex, NumPy scalars) convert, others raise TypeError as before
    if isinstance(z, bool) or not isinstance(z, numbers.Number) \
            or not (math.isfinite(complex(z).real)  # type: ignore[call-overload]
                    and math.isfinite(complex(z).imag)):  # type: ignore[call-overload]
        _fail("energy", z, "expected a finite real or complex number with Im >= 0")
    z = complex(z)  # type: ignore[call-overload]
    if z.imag < 0:
        _fail("energy", z, "the retarded self-energy is defined for Im energy >= 0 (upper "
              "half-plane; use the conjugate transpose for the advanced one)")
    return complex(z.real, abs(z.imag))   # -0.0 -> +0.0: the real axis is approached from above


def pauli_on(interface: np.ndarray, alpha: int) -> np.ndarray:
    """sigma_alpha (alpha = 0, 1, 2 for x, y, z) restricted to the spinor orbitals ``interface``,
    which must hold both spins of each of its sites (2s, 2s + 1 adjacent): (n, n) complex."""
    idx = np.asarray(interface)
    if len(idx) % 2 or np.any(idx[0::2] % 2) or np.any(idx[1::2] != idx[0::2] + 1):
        _fail("interface", idx.tolist(), "sigma needs both spin orbitals (2s, 2s+1) of each site")
    return np.kron(np.eye(len(idx) // 2), PAULI[alpha])


def chain_surface_green(w, t: float) -> np.ndarray:
    """Retarded surface Green function of a semi-infinite chain with on-site 0 and hopping t
    (either sign), g_s(w) = (w - sqrt(w^2 - 4t^2))/(2t^2), for complex w with Im w >= 0
    (broadcasts; complex result).

    The root of t^2 g^2 - w g + 1 = 0 that is analytic in the upper half-plane and ~ 1/w at
    infinity: |t g| < 1 off the band, Im g < 0 on the band |w| < 2|t| (real w: the limit
    w + i0; pass Im w = +0.0, not -0.0).  Evaluated as 2/(w + sqrt(w - 2|t|) sqrt(w + 2|t|))
    (principal square roots: the product has its only cut on [-2|t|, 2|t|]), which avoids the
    cancellation of w - sqrt(...) at large |w|.
    """
    w = np.asarray(w, complex)
    a = 2.0 * abs(float(t))
    return 2.0 / (w + np.sqrt(w - a) * np.sqrt(w + a))


def _face(device: Device, side: str) -> tuple[np.ndarray, np.ndarray]:
    """(sites of the end face, ascending; their spinor orbitals 2 site + spin, ascending)."""
    x = device.coords[:, 0]
    sites = np.flatnonzero(x == (0 if side == "left" else device.size[0] - 1))
    return sites, np.stack([2 * sites, 2 * sites + 1], axis=1).ravel()


def _check_device_side(device: Any, side: Any) -> None:
    if not isinstance(device, Device):
        _fail("device", type(device).__name__, "expected a frozen Device (call "
              ".finalized() on a DeviceBuilder)", TypeError)
    if side not in SIDES:
        _fail("side", side, f"expected one of {list(SIDES)}")


def _check_params(params) -> None:
    if params is not None and not isinstance(params, Mapping):
        _fail("params", params, "expected None or a dict of named parameters")


@dataclasses.dataclass(frozen=True, eq=False)
class WideBandCoupling:
    """A wide-band coupling of a lead's time-domain representation: a reservoir at ``mu`` and
    ``temperature`` coupled with the diagonal, energy-independent Gamma (``gamma``, one value
    per orbital) to the orbitals of ``columns`` of the electron problem, integrated with the
    Padé auxiliary block Pi of paper 004's Eq. (9) (N_s x N_p n columns).

    columns : 0 = the device's end face on the lead's side; j >= 1 = the j-th explicit lead
              column counted outward from the face (:class:`ExtraSites`)
    gamma   : (n,) >= 0, ordered column by column (as in ``columns``), then by face site
              (site order of the device), then spin (up, down)
    name    : the state component that holds Pi (unique in a run), e.g. ``pi:left``
    """

    name: str
    columns: tuple[int, ...]
    gamma: np.ndarray
    mu: float
    temperature: float


@dataclasses.dataclass(frozen=True, eq=False)
class ExtraSites:
    """Explicit lead sites a time-domain representation adds to the electron problem:
    ``columns`` copies of the device's end face continuing the lattice outward, hopping
    ``hopping`` on their bonds (along x and across), on-site ``onsite`` (spin independent,
    shifted with the lead under a bias), ``coupling`` on the bonds to the device's face."""

    columns: int
    hopping: float
    onsite: float
    coupling: float


@dataclasses.dataclass(frozen=True, eq=False)
class AuxiliaryChannels:
    """Auxiliary modes of a lead (operators.lorentzian): channel vectors as the columns of
    ``coefficients`` (n_l x m, orthonormal, over the lead's interface orbitals), one pole fit
    (:class:`operators.lorentzian.LorentzianFit`) of the self-energy per channel, and the
    reservoir ``mu``, ``temperature``."""

    coefficients: np.ndarray
    fits: tuple
    mu: float
    temperature: float


@dataclasses.dataclass(frozen=True, eq=False)
class LeadModes:
    """What the equations of motion need from one lead (:meth:`Lead.time_domain`).

    lead, side, model, representation : names (the representation is stored with checkpoints)
    sites     : explicit lead sites added to the electron problem, or None
    couplings : the wide-band couplings (each one Padé auxiliary component)
    attrs     : the parameters that fix the representation (stored with every checkpoint; a
                state is refused by a run whose leads describe another representation)
    channels  : auxiliary modes (:class:`AuxiliaryChannels`) instead of sites and couplings
    """

    lead: str
    side: str
    model: str
    representation: str
    sites: ExtraSites | None
    couplings: tuple[WideBandCoupling, ...]
    attrs: dict
    channels: AuxiliaryChannels | None = None


def _representation(lead: "Lead", representation: str | None) -> str:
    reps = lead.representations
    rep = reps[0] if representation is None else representation
    if rep not in reps:
        _fail(f"lead '{lead.name}' representation", rep,
              f"model {lead.model!r} has the time-domain representations {list(reps)}"
              if reps else f"model {lead.model!r} has no time-domain representation")
    return rep


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
    Models of ``[[leads]]`` (see :data:`LEAD_MODELS`) also define ``model`` (the config name),
    ``schema`` (their :class:`toolkit.lead_schema.LeadSchema`: own config keys besides
    :data:`LEAD_COMMON_KEYS`, constraints, defaults; ``config_keys``, ``required_keys`` and
    ``time_domain_keys`` are read from it) and the classmethod :meth:`from_config`.

    Subclasses implement :meth:`selfenergy` (transport, stationary and equilibrium states) and,
    for the time domain, :meth:`time_domain` with its ``representations``.
    """

    parameters: frozenset = frozenset()
    is_diagonal: bool = False
    energy_independent: bool = False
    model: str | None = None
    schema: LeadSchema | None = None
    config_keys: tuple[str, ...] = ()        # from schema (set by __init_subclass__)
    required_keys: tuple[str, ...] = ()
    time_domain_keys: tuple[str, ...] = ()   # config keys of the representations only
    representations: tuple[str, ...] = ()   # time-domain representations, default first
    # the model with some parameters changed (``mu`` at least), for :meth:`shifted`; declared
    # only (no default): the models define it, a Lead without it has no default ``shifted``
    replace: Callable[..., Lead]

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.schema is not None:
            cls.model = cls.schema.model
            cls.config_keys = cls.schema.schema.names
            cls.required_keys = cls.schema.schema.required
            cls.time_domain_keys = cls.schema.time_domain

    @classmethod
    def _option(cls, key: str, value: Any, **context: Any) -> Any:
        """A constructor argument checked by the model's schema (None: the schema default)."""
        assert cls.schema is not None
        return cls.schema.schema[key].resolve(key, value, **context)

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
    def selfenergy(self, energy: complex, params: Mapping | None = None) -> np.ndarray:
        """Retarded self-energy Sigma^R(energy) on the interface orbitals.

        energy : real or complex energy z [E0] with Im z >= 0 (a real z means z + i0; leads
                 raise ValueError naming 'energy' for Im z < 0, where Sigma^R is not defined)
        params : dict of named parameters (see ``parameters``)
        Returns a complex (n_l, n_l) array, rows and columns ordered like ``interface``, with
        i (Sigma - Sigma^dag) positive semi-definite, analytic in z for Im z > 0 and
        ~ (coupling^2)/z at large |z| (or constant, wide band).  The caller must not modify it.
        """

    def time_domain(self, representation: str | None = None) -> LeadModes:
        """The lead's representation for the equations of motion (:class:`LeadModes`);
        ``representation`` one of :attr:`representations` (None: the first).  ValueError for a
        model without one."""
        _representation(self, representation)
        raise NotImplementedError

    @property
    def n_interface(self) -> int:
        return int(len(self.interface))

    @property
    def interface_sites(self) -> np.ndarray:
        """Sites (ascending, unique) that carry interface orbitals."""
        return np.unique(self.interface // 2)

    def broadening(self, energy: complex, params: Mapping | None = None) -> np.ndarray:
        """Gamma(energy) = i (Sigma^R - Sigma^R^dag), (n_l, n_l) Hermitian."""
        s = self.selfenergy(energy, params)
        return 1j * (s - s.conj().T)

    def band_edges(self) -> np.ndarray:
        """Real energies where Sigma^R(E + i0) is not analytic (band edges of a finite-band
        lead; quadratures split their panels there), ascending.  None for a wide-band lead."""
        return np.zeros(0)

    def fermi(self, energy, *, mu: float | None = None, temperature: float | None = None):
        """Occupation f_l(energy) of the reservoir (exact Fermi function; T = 0: step)."""
        return fermi(energy, self.mu if mu is None else mu,
                     self.temperature if temperature is None else temperature)

    def spin_operator(self, alpha: int) -> np.ndarray:
        """sigma_alpha on the interface orbitals (alpha = 0, 1, 2 -> x, y, z), (n_l, n_l)."""
        return pauli_on(self.interface, alpha)

    def shifted(self, delta: float) -> "Lead":
        """The lead under a bias potential ``delta``: a rigid shift of the whole lead, its
        band and its chemical potential together (for a wide-band lead the band is flat, so
        only mu moves).  NotImplementedError for a lead without ``replace`` (e.g. a
        PrecalculatedLead: shift the lead it wraps, then precalculate)."""
        if not hasattr(self, "replace"):
            raise NotImplementedError(f"{type(self).__name__} {self.name!r} cannot be shifted by "
                                      f"a bias: shift the lead it is built from instead")
        return self.replace(mu=self.mu + float(delta))

    def describe(self) -> dict:
        """The lead's model parameters as a flat dict of str/float (``model``, ``side`` if any,
        the model's ``config_keys`` that fix its self-energy, not those of its time-domain
        representation; for result-file attributes and summaries)."""
        d = {"model": self.model or type(self).__name__}
        if hasattr(self, "side"):
            d["side"] = self.side
        d.update({k: getattr(self, k) for k in self.config_keys
                  if k not in self.time_domain_keys})
        return d

    @classmethod
    def from_config(cls, device: Device, table: Mapping) -> "Lead":
        """The lead of one ``[[leads]]`` table whose keys were checked against
        :data:`LEAD_COMMON_KEYS` + ``config_keys`` and ``required_keys`` (see
        :func:`leads_from_config`); raises ValueError naming the key."""
        raise NotImplementedError(f"{cls.__name__} cannot be configured by [[leads]]")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, n_interface={self.n_interface}, "
                f"mu={self.mu}, temperature={self.temperature})")


class WideBandLead(Lead):
    """Wide-band lead on the left (x = 0) or right (x = Lx - 1) face of ``device``.

    gamma       : Gamma_l > 0 [E0]: one number (the same on every spinor orbital of the face)
                  or one value >= 0 per interface orbital (length n_l, ordered like
                  ``interface``; at least one > 0)
    mu          : chemical potential [E0];  temperature : k_B T >= 0 [E0] (paper 004: 0.025)
    name        : defaults to ``side``

    ``selfenergy(z) = -i Gamma_l/2`` (diagonal n_l x n_l, the same for every z with Im z >= 0,
    no parameters); :meth:`gamma_matrix` gives Gamma_l or its spin-resolved parts
    Gamma_l^up/down (Eq. 17).  Config: ``model = "wide-band"`` (default) with ``gamma``
    (required).  Time domain (:meth:`time_domain`): the Padé auxiliary block Pi_l of paper
    004's Eq. (9) in the columns of the face.
    """

    is_diagonal = True
    energy_independent = True
    schema = WIDE_BAND
    model: str               # set from ``schema`` by Lead.__init_subclass__
    representations = ("poles",)

    def __init__(self, device: Device, side: str, gamma, mu: float = 0.0,
                 temperature: float = 0.025, name: str | None = None) -> None:
        _check_device_side(device, side)
        self.side = side
        _, orbitals = _face(device, side)
        super().__init__(side if name is None else name, orbitals, mu, temperature)
        self.gamma = _gamma(gamma, self.n_interface)
        self.n_orbitals_device = device.n_orbitals
        self._sigma = np.diag(-0.5j * self.gamma_diagonal())
        self._sigma.setflags(write=False)

    @classmethod
    def from_config(cls, device: Device, table: Mapping) -> "WideBandLead":
        return cls(device, table["side"], table["gamma"], mu=table.get("mu", 0.0),
                   temperature=table.get("temperature", 0.025), name=table.get("name"))

    def selfenergy(self, energy: complex, params: Mapping | None = None) -> np.ndarray:
        """-i Gamma_l/2 on the diagonal, (n_l, n_l); the same array for every energy."""
        _energy(energy)
        _check_params(params)
        return self._sigma

    def time_domain(self, representation: str | None = None) -> "LeadModes":
        """One wide-band coupling on the face (paper 004, Eq. 9): component ``pi:<name>``."""
        _representation(self, representation)
        c = WideBandCoupling(f"pi:{self.name}", (0,), self.gamma_diagonal(), self.mu,
                             self.temperature)
        return LeadModes(self.name, self.side, self.model, "poles", None, (c,),
                         {"gamma": self.gamma_diagonal().tolist()})

    def gamma_diagonal(self, spin: str | None = None) -> np.ndarray:
        """Diagonal of Gamma_l (spin None) or of Gamma_l^up / Gamma_l^down ('up'/'down'), (n_l,)."""
        g = (np.full(self.n_interface, self.gamma) if np.ndim(self.gamma) == 0
             else np.array(self.gamma, float))
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
        new.gamma = _gamma(kw["gamma"], self.n_interface)
        new._sigma = np.diag(-0.5j * new.gamma_diagonal())
        new._sigma.setflags(write=False)
        return new

    def describe(self) -> dict:
        d = super().describe()
        if np.ndim(self.gamma):
            d["gamma"] = np.asarray(self.gamma).tolist()
        return d

    def __repr__(self) -> str:
        g = self.gamma if np.ndim(self.gamma) == 0 else "per-orbital"
        return (f"WideBandLead(name={self.name!r}, side={self.side!r}, gamma={g}, "
                f"mu={self.mu}, temperature={self.temperature}, n_interface={self.n_interface})")


def _gamma(value: Any, n: int):
    """A wide-band Gamma: a number > 0 (float) or n values >= 0, not all 0 (read-only array);
    the check is the schema's (toolkit/lead_schema.py)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    g = WIDE_BAND.schema["gamma"].check("gamma", value, length=n)
    if isinstance(g, float):
        return g
    g = np.array(g)
    g.setflags(write=False)
    return g


class TightBindingLead(Lead):
    """Semi-infinite tight-binding lead continuing ``device`` along -x (side 'left') or +x
    ('right'), with the exact (finite-band) retarded self-energy (paper 000 Sec. II).

    hopping  : t_L > 0 [E0] on the lead's bonds, along x and across (default: the device's
               ``lattice.hopping``); the lead's H is -t_L on every bond, like the device's
    onsite   : eps_0 [E0], spin independent (default 0; the device's mu_bar is *not* added)
    coupling : t_c > 0 [E0] on the bonds between the lead's first column and the end face
               (site (y, z) to site (y, z); default t_L); only t_c^2 enters
    mu, temperature, name : as for :class:`WideBandLead` (name defaults to ``side``)

    The lead has the device's cross-section (Ly x Lz, open transverse boundaries).  With H_perp
    the face Hamiltonian (-t_L on the face bonds) = sum_k e_k phi_k phi_k^T,

        Sigma(z) = t_c^2 sum_k phi_k g_s(z - eps_0 - e_k) phi_k^T (x) 1_spin

    (:func:`chain_surface_green`; interface orbitals = both spins of the face sites, ascending,
    as for WideBandLead).  Energy dependent; diagonal only in 1D.  Channel k is open for
    |E - eps_0 - e_k| < 2 t_L (:meth:`open_channels`); outside every band Sigma is Hermitian
    (Gamma = 0).  Config: ``model = "tight-binding"`` with ``hopping``, ``onsite``,
    ``coupling`` (all optional).

    Time domain (:meth:`time_domain`), representation ``"extended"`` (the default):
    ``sites`` = L explicit lead columns are added to the electron problem (the
    exact lead up to there), and the outermost ``absorbing`` = n of them are coupled to
    wide-band reservoirs at the lead's mu and T with the graded broadening

        Gamma_j = absorber_gamma (k/n)^absorber_power,  k = 1 .. n counted outward

    (one reservoir per orbital; defaults L = n = 60, absorber_gamma = t_L, power 4).  The
    smooth ramp absorbs the outgoing waves with little reflection: on paper 000's 8-site
    spin-valve chain (t_L = 1, E_F = -1.6, T = 0.0259, 0.25 V) the stationary current deviates
    from the exact self-energy by 5e-6 relative with the defaults, 2e-5 with L = n = 40 and
    2e-6 with L = n = 80 (measured by Landauer with the representation's own self-energy,
    :meth:`extended_selfenergy`; tests/integrators/test_extended.py); with the defaults
    <= 3e-6 for E_F in [-1.3, 1.0], but 3.4e-3 at E_F = -1.9, where the bias window touches
    the band edge (slow electrons are absorbed badly; 1.5e-4 with L = n = 200).  A bias
    shifts the explicit sites (on-site energy) and the reservoirs' mu together.

    ``"modes"``: the same self-energy (the explicit columns with their absorber, diagonalised:
    :func:`operators.lorentzian.damped_chain_poles` per transverse mode) as auxiliary modes, so
    the same accuracy with 5-6x fewer unknowns (no explicit sites).  ``"lorentzian"``:
    ``lorentzians`` positive Lorentzians (half-width ``lorentzian_width`` x spacing) fitted to
    the exact self-energy (:func:`operators.lorentzian.chain_fit`; stationary current error
    1.9e-2, 3.7e-3, 1.5e-4 for N_L = 20, 40, 80 on the seed valve).
    """

    energy_independent = False
    schema = TIGHT_BINDING
    model: str               # set from ``schema`` by Lead.__init_subclass__
    # the key declares its choices (not None)
    representations = cast(tuple[str, ...], TIGHT_BINDING.schema["representation"].choices)

    def __init__(self, device: Device, side: str, hopping: float | None = None,
                 onsite: float = 0.0, coupling: float | None = None, mu: float = 0.0,
                 temperature: float = 0.025, name: str | None = None, *,
                 representation: str | None = None, sites: int | None = None,
                 absorbing: int | None = None, absorber_gamma: float | None = None,
                 absorber_power: float | None = None, lorentzians: int | None = None,
                 lorentzian_width: float | None = None) -> None:
        _check_device_side(device, side)
        if hopping is None:
            t = device.config.lattice.hopping
            if not t > 0:
                _fail("hopping", t, "expected a number > 0 (the default is the device's "
                      "lattice.hopping, which is not > 0 here: give the lead's hopping)")
        self.side = side
        self.hopping = self._option("hopping", device.config.lattice.hopping if hopping is None
                                    else hopping)
        self.onsite = self._option("onsite", onsite)
        self.coupling = self._option("coupling", self.hopping if coupling is None else coupling)
        face_sites, orbitals = _face(device, side)
        super().__init__(side if name is None else name, orbitals, mu, temperature)
        self.n_orbitals_device = device.n_orbitals
        self._device = device
        # transverse modes of the face (site order y Lz + z, as in the device)
        cross = tuple(device.size[1:]) or (1,)
        _, bonds = lattice_bonds(cross)
        n = len(face_sites)
        Hp = np.zeros((n, n))
        Hp[bonds[:, 0], bonds[:, 1]] = Hp[bonds[:, 1], bonds[:, 0]] = -self.hopping
        e, phi = np.linalg.eigh(Hp)
        self.mode_energies, self.modes = e, phi
        for a in (self.mode_energies, self.modes):
            a.setflags(write=False)
        self.is_diagonal = n == 1
        self._last: tuple[complex, np.ndarray] | None = None
        # the time-domain representation (defaults and checks: toolkit/lead_schema.py)
        self.representation = self._option("representation", representation)
        self.sites = self._option("sites", sites)
        self.absorbing = self._option("absorbing", self.sites if absorbing is None
                                      else absorbing)
        if self.absorbing > self.sites:
            _fail("absorbing", absorbing, f"expected at most sites = {self.sites} (the "
                  f"absorbing columns are the outermost of the explicit ones)")
        self.absorber_gamma = self._option("absorber_gamma", self.hopping if absorber_gamma
                                           is None else absorber_gamma)
        self.absorber_power = self._option("absorber_power", absorber_power)
        self.lorentzians = self._option("lorentzians", lorentzians)
        self.lorentzian_width = self._option("lorentzian_width", lorentzian_width)

    @classmethod
    def from_config(cls, device: Device, table: Mapping) -> "TightBindingLead":
        extra = {k: table[k] for k in cls.time_domain_keys if k in table}
        return cls(device, table["side"], hopping=table.get("hopping"),
                   onsite=table.get("onsite", 0.0), coupling=table.get("coupling"),
                   mu=table.get("mu", 0.0), temperature=table.get("temperature", 0.025),
                   name=table.get("name"), **extra)

    def absorber_profile(self) -> np.ndarray:
        """Gamma_j of the explicit columns j = 1 .. sites (outward), (sites,): 0 on the clean
        columns, absorber_gamma (k/n)^absorber_power on the outermost n = absorbing."""
        g = np.zeros(self.sites)
        k = np.arange(1, self.absorbing + 1)
        g[self.sites - self.absorbing:] = self.absorber_gamma * (k / self.absorbing) \
            ** self.absorber_power
        return g

    def time_domain(self, representation: str | None = None) -> LeadModes:
        """``"extended"``: :class:`ExtraSites` (``sites`` columns with the lead's hopping,
        on-site energy and coupling) plus one wide-band coupling ``pi:<name>:absorber`` on the
        absorbing columns with the graded Gamma of :meth:`absorber_profile`."""
        rep = _representation(self, representation or self.representation)
        if rep != "extended":
            return self._auxiliary_modes(rep)
        g = self.absorber_profile()
        cols = tuple(int(j) for j in np.flatnonzero(g) + 1)
        n_face = self.n_interface                      # orbitals per column (both spins)
        gamma = np.repeat(g[np.array(cols) - 1], n_face)
        c = WideBandCoupling(f"pi:{self.name}:absorber", cols, gamma, self.mu, self.temperature)
        attrs = {"sites": self.sites, "absorbing": self.absorbing,
                 "absorber_gamma": self.absorber_gamma, "absorber_power": self.absorber_power,
                 "hopping": self.hopping, "onsite": self.onsite, "coupling": self.coupling}
        return LeadModes(self.name, self.side, self.model, rep,
                         ExtraSites(self.sites, self.hopping, self.onsite, self.coupling), (c,),
                         attrs)

    def _auxiliary_modes(self, rep: str) -> LeadModes:
        """``"modes"``: the extended representation's exact self-energy (L explicit columns,
        graded absorber) as poles, one channel per transverse mode and spin; ``"lorentzian"``:
        ``lorentzians`` positive Lorentzians fitted to the exact self-energy."""
        from .lorentzian import chain_fit, damped_chain_poles

        n = len(self.mode_energies)
        C = np.zeros((2 * n, 2 * n))
        fits = []
        base = (chain_fit(self.hopping, self.coupling, self.lorentzians,
                          width=self.lorentzian_width) if rep == "lorentzian" else None)
        for k, e in enumerate(self.mode_energies):
            fit = (base.shifted(self.onsite + e) if base is not None else
                   damped_chain_poles(self.hopping, self.coupling, self.absorber_profile(),
                                      onsite=self.onsite + e))
            for s in (0, 1):
                C[s::2, 2 * k + s] = self.modes[:, k]   # orbital 2 j + s of face site j
                fits.append(fit)
        if rep == "lorentzian":
            assert base is not None  # the fit of the "lorentzian" representation
            attrs = {"lorentzians": self.lorentzians, "lorentzian_width": self.lorentzian_width,
                     "gamma_error": base.gamma_error}
        else:
            attrs = {"sites": self.sites, "absorbing": self.absorbing,
                     "absorber_gamma": self.absorber_gamma, "absorber_power": self.absorber_power}
        attrs.update(hopping=self.hopping, onsite=self.onsite, coupling=self.coupling)
        ch = AuxiliaryChannels(C, tuple(fits), self.mu, self.temperature)
        return LeadModes(self.name, self.side, self.model, rep, None, (), attrs, ch)

    def extended_selfenergy(self, energy: complex) -> np.ndarray:
        """The self-energy that the extended representation puts on the face, (n_l, n_l):
        t_c^2 times the first-column block of (z - H_explicit + i Gamma_abs/2)^-1 for the
        ``sites`` explicit columns (for the error of the representation against
        :meth:`selfenergy`)."""
        z = _energy(energy)
        n = len(self.mode_energies)
        g_abs = self.absorber_profile()
        # transverse modes decouple (the absorber is uniform across a column): a chain per mode
        out = np.zeros(n, complex)
        for k, e in enumerate(self.mode_energies):
            G = np.zeros((), complex)
            for j in range(self.sites - 1, -1, -1):   # continued fraction from the far end
                G = 1.0 / (z - self.onsite - e + 0.5j * g_abs[j] - self.hopping ** 2 * G)
            out[k] = G
        site = (self.modes * out) @ self.modes.T
        return np.kron(self.coupling ** 2 * site, np.eye(2))

    def surface_green(self, energy: complex) -> np.ndarray:
        """Site-space surface Green function of the isolated semi-infinite lead on its first
        column (n_face, n_face) complex: sum_k phi_k g_s(z - eps_0 - e_k) phi_k^T."""
        z = _energy(energy)
        w = np.empty(len(self.mode_energies), complex)
        w.real = z.real - self.onsite - self.mode_energies
        w.imag = z.imag                       # +0.0 on the real axis: the retarded limit
        g = chain_surface_green(w, self.hopping)
        return (self.modes * g) @ self.modes.T

    def selfenergy(self, energy: complex, params: Mapping | None = None) -> np.ndarray:
        """t_c^2 g_surface(z) (x) 1_spin, (n_l, n_l) complex, read-only (the last energy's
        matrix is cached)."""
        _check_params(params)
        z = _energy(energy)
        if self._last is not None and self._last[0] == z:
            return self._last[1]
        s = np.kron(self.coupling ** 2 * self.surface_green(z), np.eye(2))
        s.setflags(write=False)
        self._last = (z, s)
        return s

    def band_edges(self) -> np.ndarray:
        """eps_0 + e_k -/+ 2 t_L for every transverse mode, ascending, unique."""
        e = self.onsite + self.mode_energies
        return np.unique(np.concatenate([e - 2 * self.hopping, e + 2 * self.hopping]))

    def open_channels(self, energy) -> np.ndarray:
        """Number of open transverse channels per spin, #{k : |E - eps_0 - e_k| < 2 t_L}
        (broadcasts over real energies): the transmission of a clean infinite lead is twice it."""
        E = np.asarray(energy, float)[..., None]
        return np.sum(np.abs(E - self.onsite - self.mode_energies) < 2 * self.hopping, axis=-1)

    def shifted(self, delta: float) -> "TightBindingLead":
        """Rigid shift: mu and the on-site energy of the lead move by ``delta`` together, so
        Sigma_shifted(E + delta) = Sigma(E)."""
        return self.replace(mu=self.mu + float(delta), onsite=self.onsite + float(delta))

    def replace(self, **changes: Any) -> "TightBindingLead":
        """A copy with other ``hopping``, ``onsite``, ``coupling``, ``mu``, ``temperature`` or
        ``name`` (validated)."""
        keys = {"mu", "temperature", "name"} | set(self.config_keys)
        bad = set(changes) - keys
        if bad:
            _fail("replace", sorted(bad), f"expected keys among {', '.join(sorted(keys))}")
        kw = {k: getattr(self, k) for k in keys}
        kw.update(changes)
        return TightBindingLead(self._device, self.side, **kw)

    def __repr__(self) -> str:
        return (f"TightBindingLead(name={self.name!r}, side={self.side!r}, "
                f"hopping={self.hopping}, onsite={self.onsite}, coupling={self.coupling}, "
                f"mu={self.mu}, temperature={self.temperature}, n_interface={self.n_interface})")


class PrecalculatedLead(Lead):
    """``lead`` with its self-energy evaluated once at ``energies`` (real or complex with
    Im >= 0; a cache for expensive leads, e.g. surface Green functions).  ``selfenergy(e)``
    returns the stored matrix for an energy of the list (exact match) and raises ValueError for
    any other energy or other ``params``."""

    def __init__(self, lead: Lead, energies, params: Mapping | None = None) -> None:
        if not isinstance(lead, Lead):
            _fail("lead", type(lead).__name__, "expected a Lead", TypeError)
        _check_params(params)
        super().__init__(lead.name, lead.interface, lead.mu, lead.temperature)
        self.lead = lead
        self.is_diagonal, self.energy_independent = lead.is_diagonal, lead.energy_independent
        self.parameters = lead.parameters
        if hasattr(lead, "side"):
            self.side = lead.side
        self._params = None if params is None else dict(params)
        self._cache = {}
        for e in np.atleast_1d(np.asarray(energies, complex)):
            z = _energy(complex(e))   # real energies reach ``lead`` as floats
            m = np.array(lead.selfenergy(z.real if z.imag == 0 else z, params), complex)
            m.setflags(write=False)
            self._cache[z] = m

    def selfenergy(self, energy: complex, params: Mapping | None = None) -> np.ndarray:
        if (None if params is None else dict(params)) != self._params:
            _fail("params", params, f"this PrecalculatedLead was evaluated with {self._params}")
        z = _energy(energy)
        try:
            return self._cache[z]
        except KeyError:
            if self.energy_independent and self._cache:
                return next(iter(self._cache.values()))
            _fail("energy", energy, f"not among the {len(self._cache)} precalculated energies")

    def band_edges(self) -> np.ndarray:
        return self.lead.band_edges()


#: ``[[leads]] model`` -> Lead class (each points to its schema in toolkit/lead_schema.py and
#: defines ``from_config``); one class per schema.
LEAD_MODELS: dict[str, type[Lead]] = {c.model: c for c in (WideBandLead, TightBindingLead)}
if set(LEAD_MODELS) != set(LEAD_SCHEMAS):
    raise ImportError(f"lead models {sorted(LEAD_MODELS)} and lead schemas "
                      f"{sorted(LEAD_SCHEMAS)} differ")
LEAD_KEYS = LEAD_COMMON_KEYS + tuple(k for c in LEAD_MODELS.values() for k in c.config_keys)


def time_domain_models() -> tuple[str, ...]:
    """The ``[[leads]]`` models that ``qcspin run`` / ``Simulation`` can integrate in time
    (those with a time-domain representation)."""
    return tuple(m for m, c in LEAD_MODELS.items() if c.representations)


def leads_from_config(device: Device, tables: Sequence[Mapping | LeadConfig]
                      ) -> tuple[Lead, ...]:
    """Leads from ``[[leads]]`` tables of a config (dicts, checked here against the schema of
    toolkit/lead_schema.py, or ``toolkit.config.LeadConfig``, e.g. ``cfg.leads``, checked when
    the config was read), validated.

    Keys of every model: ``side`` ('left'/'right', required), ``name`` (default: side),
    ``model`` (one of :data:`LEAD_MODELS`, default 'wide-band'), ``mu`` (default 0.0),
    ``temperature`` (> 0, default 0.025), ``n_poles``; each model's own keys are listed in
    :data:`toolkit.lead_schema.LEAD_SCHEMAS`.  A key of another model is refused.  Raises
    toolkit.ConfigError naming the key (``leads[i].key``), the value and what is allowed.
    """
    if not isinstance(tables, Sequence) or isinstance(tables, (str, bytes)):
        _fail("config key 'leads'", tables, "expected a list of [[leads]] tables", ConfigError)
    n_face = 2 * math.prod(device.size[1:])
    out: list[Lead] = []
    for i, t in enumerate(tables):
        key = f"config key 'leads[{i}]'"
        if dataclasses.is_dataclass(t) and not isinstance(t, type):   # a LeadConfig
            t = t.table()
        t = validate_lead_table(f"leads[{i}]", t, n_face)
        cls = LEAD_MODELS[t["model"]]
        try:
            lead = cls.from_config(device, t)
        except (ValueError, TypeError) as exc:
            name = str(exc).split(" = ")[0]
            raise ConfigError(f"{key[:-1]}.{name}'{str(exc)[len(name):]}") from None
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
