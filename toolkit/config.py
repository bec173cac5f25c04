"""TOML configuration -> validated, frozen dataclasses.

The schema is the dataclasses below; every value check is one of :mod:`toolkit.schema`'s (the
lead keys are declared with their models in :mod:`toolkit.lead_schema`); the ``--set``
language is :mod:`toolkit.overrides` and the TOML syntax :mod:`toolkit.tomlio`.

Every key is checked: unknown keys, bad values and keys that would have no effect raise
:class:`ConfigError` with a one-line message that names the key, the value and what is allowed;
:func:`config_warnings` lists what is allowed but probably not meant (e.g. columns in no
layer).  Values are kept in the *user's* units (see ``[units]``); :mod:`toolkit.units` converts
times to the internal natural units.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from dataclasses import field as dc_field
from typing import Any, NoReturn

from .lead_schema import (
    LEAD_COMMON_KEYS,
    LEAD_SCHEMAS,
    N_POLES_LIMIT,
    check_n_poles,
    validate_lead_table,
)
from .overrides import apply_overrides
from .schema import ConfigError, boolean, fail, integer, real, string
from .tomlio import read_toml, toml_document
from .units import get_units

__all__ = [
    "ConfigError", "Config", "LatticeConfig", "LeadConfig", "BiasConfig", "LayerConfig",
    "BondConfig", "ExchangeConfig",
    "ElectronsConfig", "TimeConfig", "SolverConfig", "OutputConfig", "LLGConfig", "load_config",
    "LEAD_COMMON_KEYS",
    "config_from_dict", "config_to_toml", "config_warnings", "N_POLES_LIMIT",
]


# ----------------------------------------------------------------------------- value checks
# (toolkit/schema.py holds every check; these name config keys: "config key 'k' = v ...")
def _fail(key: str, value: Any, allowed: str) -> NoReturn:
    fail(f"config key '{key}'", value, allowed, ConfigError)


def _real(key: str, v: Any, *, positive: bool = False, nonneg: bool = False) -> float:
    return real(f"config key '{key}'", v, positive=positive, nonneg=nonneg, exc=ConfigError)


def _int(key: str, v: Any, *, minimum: int | None = None) -> int:
    return integer(f"config key '{key}'", v, minimum=minimum, exc=ConfigError)


def _bool(key: str, v: Any) -> bool:
    return boolean(f"config key '{key}'", v, exc=ConfigError)


def _str(key: str, v: Any, choices: tuple[str, ...] | None = None) -> str:
    return string(f"config key '{key}'", v, choices, exc=ConfigError)


def _vec3(key: str, v: Any, *, nonzero: bool = False) -> tuple[float, float, float]:
    if not isinstance(v, (list, tuple)) or len(v) != 3:
        _fail(key, v, "expected a list of 3 real numbers [x, y, z]")
    out = tuple(_real(f"{key}[{i}]", c) for i, c in enumerate(v))
    if nonzero and math.hypot(*out) == 0.0:
        _fail(key, v, "expected a vector of non-zero length")
    return out  # type: ignore[return-value]


def _check_keys(section: str, d: Any, allowed: set[str]) -> dict:
    if not isinstance(d, dict):
        _fail(section, d, "expected a table")
    unknown = sorted(set(d) - allowed)
    if unknown:
        where = f"[{section}]" if section else "the top level"
        _fail(f"{section + '.' if section else ''}{unknown[0]}", d[unknown[0]],
              f"unknown key in {where}; allowed keys are {sorted(allowed)}")
    return d


# ----------------------------------------------------------------------------- dataclasses
@dataclass(frozen=True)
class LatticeConfig:
    """Simple-cubic lattice ``Lx[, Ly[, Lz]]`` (open boundaries), uniform hopping and mu_bar."""

    size: tuple[int, ...]
    hopping: float = 1.0
    mu_bar: float = 0.0


@dataclass(frozen=True)
class LayerConfig:
    """A named slab of columns ``x in [start, stop)`` with its own magnetic parameters.

    A layer carries classical spins when ``spin`` (one direction for all sites) or ``spins``
    (one direction per site, in site order) is given; otherwise it is non-magnetic and refuses
    the spin keys J_sd, J_ex, K, easy_axis, spin_length, frozen, damping (except at their
    default values, which the resolved configs of older result files list).
    """

    name: str
    columns: tuple[int, int]
    J_sd: float = 0.0
    J_ex: float = 0.0
    K: float = 0.0
    easy_axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    spin: tuple[float, float, float] | None = None
    spins: tuple[tuple[float, float, float], ...] | None = None
    spin_length: float = 1.0
    frozen: bool = False
    damping: float = 0.0
    hopping: float | None = None

    @property
    def magnetic(self) -> bool:
        return self.spin is not None or self.spins is not None


@dataclass(frozen=True)
class BondConfig:
    """Hopping on the bonds between the last column of one layer and the first of the next
    (the layers must touch: the stop of one = the start of the other)."""

    between: tuple[str, str]
    hopping: float


@dataclass(frozen=True)
class ExchangeConfig:
    """Direct exchange J_ex on nearest-neighbour bonds between the spins of two touching
    magnetic layers."""

    between: tuple[str, str]
    J_ex: float


@dataclass(frozen=True)
class LeadConfig:
    """A lead on the left (x = 0) or right (x = Lx - 1) face, reservoir at ``mu`` (before any
    bias) and ``temperature`` (k_B T > 0, energy units), ``n_poles`` Padé poles of its Fermi
    function (None: electrons.n_poles).  ``model`` selects the model's own keys, declared
    with their constraints and defaults in toolkit/lead_schema.py (``LEAD_SCHEMAS``):

    * ``"wide-band"`` (paper 004, Eqs. 5-9): ``gamma`` (required);
    * ``"tight-binding"`` (paper 000 Sec. II): ``hopping``, ``onsite``, ``coupling`` and the
      time-domain keys ``representation``, ``sites``, ``absorbing``, ``absorber_gamma``,
      ``absorber_power``, ``lorentzians``, ``lorentzian_width``.

    ``options`` holds the model keys that were given, validated, as (key, value) pairs in
    schema order; ``lead.sites`` reads one (None if not given), :meth:`with_options` changes
    them.
    """

    side: str
    mu: float = 0.0
    temperature: float = 0.025
    name: str = ""
    model: str = "wide-band"
    n_poles: int | None = None
    options: tuple[tuple[str, Any], ...] = ()

    def __getattr__(self, key: str) -> Any:
        if key in _MODEL_KEYS:
            return dict(self.options).get(key)
        raise AttributeError(key)

    def table(self) -> dict[str, Any]:
        """The ``[[leads]]`` table of this lead: the common keys (``name`` if set, ``n_poles``
        if given), then the model keys that were given."""
        t: dict[str, Any] = {"side": self.side, "mu": self.mu, "temperature": self.temperature}
        if self.name:
            t["name"] = self.name
        t["model"] = self.model
        if self.n_poles is not None:
            t["n_poles"] = self.n_poles
        t.update(self.options)
        return t

    def with_options(self, **changes: Any) -> "LeadConfig":
        """A copy with model keys changed (validated; a value None removes the key)."""
        table = {**self.table(), **changes}
        return _lead_config(validate_lead_table(self.name or self.side, {
            k: v for k, v in table.items() if v is not None}))


_MODEL_KEYS = frozenset(k for s in LEAD_SCHEMAS.values() for k in s.schema.names)


def _lead_config(v: dict) -> LeadConfig:
    """A LeadConfig from a table validated by validate_lead_table."""
    names = LEAD_SCHEMAS[v["model"]].schema.names
    return LeadConfig(side=v["side"], mu=v.get("mu", 0.0), temperature=v.get("temperature",
                      0.025), name=v.get("name", v["side"]), model=v["model"],
                      n_poles=v.get("n_poles"),
                      options=tuple((k, v[k]) for k in names if k in v))


@dataclass(frozen=True)
class BiasConfig:
    """Bias protocol applied on top of the leads' ``mu`` from time ``t_on`` (a sudden quench):
    ``symmetric``: mu_left += V/2, mu_right -= V/2;  ``asymmetric``: mu_left += V;
    ``none``: the leads keep their ``mu``.  ``t_off`` (optional) ends a square pulse.
    ``ramp`` > 0: V rises linearly from 0 to V over [t_on, t_on + ramp] (and falls back over
    [t_off, t_off + ramp]).  ``table``: V(t) given as [[t0, V0], [t1, V1], ...] (t ascending,
    linear in between, constant outside), instead of V/t_on/t_off/ramp.  The protocol splits
    V(t) between the leads as above; every shift is rigid (band and mu of the lead together)."""

    protocol: str = "none"
    V: float = 0.0
    t_on: float = 0.0
    t_off: float | None = None
    ramp: float = 0.0
    table: tuple[tuple[float, float], ...] | None = None


@dataclass(frozen=True)
class ElectronsConfig:
    """Initial electron state: ``ground`` (lowest ``n_electrons`` levels, default half filling),
    ``fermi`` (Fermi-Dirac occupation f(eps) at ``temperature``, chemical potential 0; eps are
    eigenvalues of H including +mu_bar) or ``stationary`` (open junctions: the stationary state
    of Eqs. 4, 9 for the initial spins and the leads' mu at t = 0).  ``partitioned`` (paper
    000's start): device and leads disconnected before t = 0, each in its own equilibrium (the
    device at the first lead's mu and T), connected at t = 0; ``partitioned-empty``: the same
    with an empty device.  ``auto``: ``stationary`` with leads, else ``ground``.
    ``n_poles``: Padé poles of the lead Fermi functions (default of every lead).
    ``stationary``: how a stationary start under a bias is solved: ``dense`` (the Sylvester
    equation, O(N_s^3), on rank 0 with its node's cores), ``window`` (sparse solves along the
    real axis, the energies split over the ranks: integrators/window.py) or ``auto`` (dense up
    to 4000 orbitals)."""

    initial: str = "auto"
    n_electrons: int | None = None
    temperature: float = 0.0
    eigensolver: str = "auto"
    n_poles: int = 30
    stationary: str = "auto"


@dataclass(frozen=True)
class TimeConfig:
    dt: float = 0.1
    t_end: float = 100.0
    output_every: int = 10
    checkpoint_every: int = 1000


STIFF_SCHEMES = ("none", "imex", "expint")
SCHEMES = ("monolithic", "staggered-heun")


@dataclass(frozen=True)
class SolverConfig:
    """PETSc TS settings; ``options`` are extra PETSc options without the ``-qcspin_`` prefix.

    ``ts_type``, ``rk_type``: the explicit PETSc scheme (default Kutta's 3/8 rule, as in paper
    004).  Closed systems always use it.

    ``stiff`` (open junctions only; ignored without ``[[leads]]``): how the pole decay
    -(xi_p/beta_l) Pi_{l,p} of Eq. (9) is integrated.  Its largest rate, xi_max/beta ~= 2.6
    N_p^2/beta (58 for N_p = 30, beta = 40), would limit an explicit step to dt < 2.8/58 ~= 0.048,
    far below what the band width and the spins allow.

    * ``"expint"`` (default): Krogstad's exponential RK4 with the decay integrated exactly
      (``integrators/expint.py``; TS type ``python``).  Four right-hand sides per step like
      RK 3/8; the step is limited by the band width (2D 12x4 valve of paper 004: stable up to
      dt = 0.33 instead of 0.048; errors of M/N_S and lead currents < 1e-4 up to dt = 0.2);
      fourth order also with moving spins; the stationary state stays stationary to round-off.
      Fixed step only.
    * ``"imex"``: PETSc ARKIMEX with the decay in the implicit part (solved exactly: SNES
      ksponly, KSP preonly, PC jacobi); type ``-qcspin_ts_arkimex_type`` (default ``4``), fixed
      step unless ``-qcspin_ts_adapt_type`` is set.  Stable up to dt = 0.5 on the 12x4 valve,
      but six stages and ~2.5x the cost of 'expint' per step, and its order drops to ~2.5 with
      moving spins (stage order 2): a cross-check, or for an adaptive step.
    * ``"none"``: the explicit ``ts_type``/``rk_type`` on the whole right-hand side (the
      behaviour before this option; needs dt < 2.785 beta/xi_max).

    With leads and ``stiff`` other than ``"none"``, ``ts_type``/``rk_type`` must keep their
    defaults (they would not be used).

    ``scheme``: ``"monolithic"`` (default: one TS integrates electrons and spins together,
    fourth order) or ``"staggered-heun"`` (paper 000: the electrons one step with the spins
    frozen, by exponential RK4 (open, ``stiff = "expint"``) or RK4 (closed), then Heun with
    projection to the sphere for the LLG; first order in the coupling;
    integrators/heun.py).
    """

    ts_type: str = "rk"
    rk_type: str = "rk38"
    options: tuple[tuple[str, str], ...] = ()
    stiff: str = "expint"
    scheme: str = "monolithic"


@dataclass(frozen=True)
class OutputConfig:
    """What is recorded besides the always-present series.  ``planes``: monolayer planes x
    (between columns x and x + 1) for bond currents (Eqs. 13, 14); None = the planes in front
    of every layer that does not start at x = 0.  ``spin_balance``: record the residual of the
    total spin balance (one extra right-hand-side evaluation per output)."""

    spin_density: bool = True
    planes: tuple[int, ...] | None = None
    spin_balance: bool = True


#: g_e, the electron's g-factor (CODATA 2018, |g_e|)
G_ELECTRON = 2.00231930436

LLG_EQUATIONS = ("spin", "moment")
LLG_DRIVES = ("full", "current-driven", "steady-state")


@dataclass(frozen=True)
class LLGConfig:
    """What the classical vectors are and which electron spin density drives them.

    ``equation = "spin"`` (default; paper 004 Eq. 10): angular momenta S (length
    ``spin_length``, units of hbar), dS/dt = -S x dH/dS + Gilbert damping.
    ``equation = "moment"`` (paper 000 Eq. 2): unit vectors M of localized magnetic moments,

        dM/dt = -g/(1 + lambda^2) [M x B + lambda M x (M x B)],   B = -(1/mu_M) dH/dM,

    precessing in the opposite sense to a spin; ``g`` and ``mu_M`` enter only as g/mu_M, in
    1/(energy x time) of the config's units.  Default g/mu_M = g_e/hbar (a moment of one
    electron spin: 3.0420 /(eV fs) in eV-fs, 2.0023 in natural units); a moment then carries
    the angular momentum -(mu_M/g) M = -(hbar/g_e) M, and electrons plus moments conserve the
    total angular momentum (tested).  ``drive``: the electron spin density in the LLG's
    s-d field: ``"full"`` (Tr rho sigma, paper 004) or ``"current-driven"`` (paper 000 Eqs.
    6-7: Tr (rho - rho_eq(M(t))) sigma with rho_eq the grand-canonical equilibrium of the
    instantaneous moments for the leads of the run) or ``"steady-state"`` (paper 000's
    steady-state-NEGF+LLG, Fig. 3c,d: s_CD of the stationary NEGF state of the instantaneous
    moments and bias with the exact lead self-energies, no electron memory; the electrons are
    still evolved for their observables but do not act back); default "current-driven" for
    moments with leads, else "full".
    """

    equation: str = "spin"
    g: float = G_ELECTRON
    mu_M: float = 1.0
    drive: str = "full"

    @property
    def rate(self) -> float:
        """g/mu_M in the config's units."""
        return self.g / self.mu_M


def _llg(d: Any, units: str, layers: tuple[LayerConfig, ...], has_leads: bool) -> LLGConfig:
    d = _check_keys("llg", d, {"equation", "g", "mu_M", "drive"})
    eq = _str("llg.equation", d.get("equation", "spin"), LLG_EQUATIONS)
    if eq == "spin":
        for k in ("g", "mu_M"):
            if k in d:
                _fail(f"llg.{k}", d[k], "only with llg.equation = 'moment' (spins precess "
                      "with hbar = 1)")
    hbar = get_units(units).hbar
    g = (_real("llg.g", d["g"], positive=True) if "g" in d
         else G_ELECTRON / hbar if eq == "moment" else G_ELECTRON)
    mu = _real("llg.mu_M", d.get("mu_M", 1.0), positive=True)
    default = "current-driven" if eq == "moment" and has_leads else "full"
    drive = _str("llg.drive", d.get("drive", default), LLG_DRIVES)
    if eq == "moment":
        for i, lc in enumerate(layers):
            if lc.magnetic and lc.spin_length != 1.0:
                _fail(f"layers[{i}].spin_length", lc.spin_length,
                      "llg.equation = 'moment' evolves unit vectors M: expected 1")
    if drive != "full" and not has_leads:
        _fail("llg.drive", drive, "the equilibrium rho_eq(M(t)) is that of the reservoirs: "
              "needs [[leads]] (or use 'full')")
    return LLGConfig(equation=eq, g=g, mu_M=mu, drive=drive)


@dataclass(frozen=True)
class Config:
    lattice: LatticeConfig
    layers: tuple[LayerConfig, ...] = ()
    bonds: tuple[BondConfig, ...] = ()
    exchange: tuple[ExchangeConfig, ...] = ()
    leads: tuple[LeadConfig, ...] = ()
    bias: BiasConfig = dc_field(default_factory=BiasConfig)
    field: tuple[float, float, float] = (0.0, 0.0, 0.0)
    electrons: ElectronsConfig = dc_field(default_factory=ElectronsConfig)
    time: TimeConfig = dc_field(default_factory=TimeConfig)
    solver: SolverConfig = dc_field(default_factory=SolverConfig)
    output: OutputConfig = dc_field(default_factory=OutputConfig)
    llg: LLGConfig = dc_field(default_factory=LLGConfig)
    units: str = "natural"
    name: str = "qcspin run"


# ----------------------------------------------------------------------------- parsing
def _lattice(d: Any) -> LatticeConfig:
    d = _check_keys("lattice", d, {"size", "hopping", "mu_bar"})
    if "size" not in d:
        _fail("lattice.size", None, "required: [Lx], [Lx, Ly] or [Lx, Ly, Lz]")
    size = d["size"]
    if isinstance(size, int) and not isinstance(size, bool):
        size = [size]
    if not isinstance(size, list) or not 1 <= len(size) <= 3:
        _fail("lattice.size", size, "expected [Lx], [Lx, Ly] or [Lx, Ly, Lz]")
    dims = tuple(_int(f"lattice.size[{i}]", s, minimum=1) for i, s in enumerate(size))
    return LatticeConfig(size=dims, hopping=_real("lattice.hopping", d.get("hopping", 1.0)),
                         mu_bar=_real("lattice.mu_bar", d.get("mu_bar", 0.0)))


_LAYER_KEYS = {f.name for f in fields(LayerConfig)}


def _layer(i: int, d: Any, Lx: int, n_cross: int) -> LayerConfig:
    sec = f"layers[{i}]"
    d = _check_keys(sec, d, _LAYER_KEYS)
    name = _str(f"{sec}.name", d.get("name", f"layer{i}"))
    cols = d.get("columns")
    if not isinstance(cols, list) or len(cols) != 2:
        _fail(f"{sec}.columns", cols, "required: [start, stop) column range along x")
    a, b = (_int(f"{sec}.columns[{k}]", c) for k, c in enumerate(cols))
    if not 0 <= a < b <= Lx:
        _fail(f"{sec}.columns", cols, f"expected 0 <= start < stop <= Lx = {Lx}")
    kw: dict[str, Any] = dict(name=name, columns=(a, b))
    for key in ("J_sd", "J_ex", "K"):
        if key in d:
            kw[key] = _real(f"{sec}.{key}", d[key])
    if "easy_axis" in d:
        kw["easy_axis"] = _vec3(f"{sec}.easy_axis", d["easy_axis"], nonzero=True)
    if "spin" in d and "spins" in d:
        _fail(f"{sec}.spins", d["spins"], "give either 'spin' or 'spins', not both")
    if "spin" in d:
        kw["spin"] = _vec3(f"{sec}.spin", d["spin"], nonzero=True)
    if "spins" in d:
        lst = d["spins"]
        n_sites = (b - a) * n_cross
        if not isinstance(lst, list) or len(lst) != n_sites:
            _fail(f"{sec}.spins", lst, f"expected a list of {n_sites} vectors (one per site)")
        kw["spins"] = tuple(_vec3(f"{sec}.spins[{k}]", v, nonzero=True) for k, v in enumerate(lst))
    if "spin_length" in d:
        kw["spin_length"] = _real(f"{sec}.spin_length", d["spin_length"], positive=True)
    if "frozen" in d:
        kw["frozen"] = _bool(f"{sec}.frozen", d["frozen"])
    if "damping" in d:
        kw["damping"] = _real(f"{sec}.damping", d["damping"], nonneg=True)
    if "hopping" in d:
        kw["hopping"] = _real(f"{sec}.hopping", d["hopping"])
    layer = LayerConfig(**kw)
    if not layer.magnetic:
        _check_no_spin_keys(sec, d, layer)
    return layer


_SPIN_KEYS = ("J_sd", "J_ex", "K", "easy_axis", "spin_length", "frozen", "damping")
_LAYER_DEFAULTS = LayerConfig(name="", columns=(0, 1))


def _check_no_spin_keys(sec: str, d: dict, layer: LayerConfig) -> None:
    """A layer without classical spins: its spin keys would be ignored.  Their default values are
    accepted (the resolved configs of result files list every key of every layer)."""
    for key in _SPIN_KEYS:
        if key in d and getattr(layer, key) != getattr(_LAYER_DEFAULTS, key):
            _fail(f"{sec}.{key}", d[key], f"layer '{layer.name}' has no classical spins; give "
                  f"'spin' or 'spins', or remove the key")


def _pair(sec: str, v: Any, names: set[str]) -> tuple[str, str]:
    if not isinstance(v, list) or len(v) != 2 or not all(isinstance(s, str) for s in v):
        _fail(f"{sec}.between", v, "expected two layer names [\"a\", \"b\"]")
    for s in v:
        if s not in names:
            _fail(f"{sec}.between", v, f"layer '{s}' is not defined; layers are {sorted(names)}")
    if v[0] == v[1]:
        _fail(f"{sec}.between", v, "expected two different layers")
    return (v[0], v[1])


def _couplings(arr: str, items: Any, layers: tuple[LayerConfig, ...], key: str) -> list[tuple]:
    """``[[bonds]]`` (key 'hopping') or ``[[exchange]]`` (key 'J_ex'): (between, value) pairs
    between touching layers, each pair once; exchange needs spins on both sides."""
    if not isinstance(items, list):
        _fail(arr, items, f"expected an array of tables [[{arr}]]")
    by_name = {l.name: l for l in layers}
    out: list[tuple] = []
    for i, it in enumerate(items):
        sec = f"{arr}[{i}]"
        it = _check_keys(sec, it, {"between", key})
        for req in ("between", key):
            if req not in it:
                _fail(f"{sec}.{req}", None, "required key")
        pair = _pair(sec, it["between"], set(by_name))
        _check_touching(sec, pair, by_name)
        if arr == "exchange":
            for s in pair:
                if not by_name[s].magnetic:
                    _fail(f"{sec}.between", list(pair), f"layer '{s}' has no classical spins "
                          f"(no 'spin' or 'spins'); exchange couples spins")
        for j, (other, _) in enumerate(out):
            if set(other) == set(pair):
                _fail(f"{sec}.between", list(pair), f"the pair is already set by {arr}[{j}]")
        out.append((pair, _real(f"{sec}.{key}", it[key])))
    return out


def _check_touching(sec: str, pair: tuple[str, str], by_name: dict) -> None:
    (a0, a1), (b0, b1) = by_name[pair[0]].columns, by_name[pair[1]].columns
    if a1 != b0 and b1 != a0:
        _fail(f"{sec}.between", list(pair),
              f"layers '{pair[0]}' (columns [{a0}, {a1})) and '{pair[1]}' (columns [{b0}, {b1})) "
              f"do not touch; the layers must be adjacent (the stop of one = the start of the "
              f"other)")


def _electrons(d: Any) -> ElectronsConfig:
    d = _check_keys("electrons", d, {f.name for f in fields(ElectronsConfig)})
    kw: dict[str, Any] = {}
    if "initial" in d:
        kw["initial"] = _str("electrons.initial", d["initial"],
                             ("auto", "ground", "fermi", "stationary", "partitioned",
                              "partitioned-empty"))
    if "n_electrons" in d:
        kw["n_electrons"] = _int("electrons.n_electrons", d["n_electrons"], minimum=0)
    if "temperature" in d:
        kw["temperature"] = _real("electrons.temperature", d["temperature"], nonneg=True)
    if "eigensolver" in d:
        kw["eigensolver"] = _str("electrons.eigensolver", d["eigensolver"],
                                 ("auto", "lapack", "slepc", "poles"))
    if "n_poles" in d:
        kw["n_poles"] = _n_poles(d["n_poles"])
    if "stationary" in d:
        kw["stationary"] = _str("electrons.stationary", d["stationary"],
                                ("auto", "dense", "window"))
    e = ElectronsConfig(**kw)
    if e.eigensolver == "poles" and e.initial != "fermi":
        _fail("electrons.eigensolver", "poles", "expected 'auto', 'lapack' or 'slepc': the "
              "pole sum gives the Fermi-Dirac state (initial = 'fermi') only")
    if e.initial == "fermi" and e.temperature <= 0:
        _fail("electrons.temperature", e.temperature, "expected > 0 when initial = 'fermi'")
    if e.initial != "fermi" and e.temperature != 0:
        _fail("electrons.temperature", d["temperature"],
              f"it is used only with electrons.initial = 'fermi' (here '{e.initial}'; the "
              f"stationary state of an open junction uses the leads' temperature)")
    return e


def _n_poles(v: Any, key: str = "electrons.n_poles") -> int:
    return check_n_poles(f"config key '{key}'", v)


def _time(d: Any) -> TimeConfig:
    d = _check_keys("time", d, {f.name for f in fields(TimeConfig)})
    t = TimeConfig(
        dt=_real("time.dt", d.get("dt", 0.1), positive=True),
        t_end=_real("time.t_end", d.get("t_end", 100.0), nonneg=True),
        output_every=_int("time.output_every", d.get("output_every", 10), minimum=1),
        checkpoint_every=_int("time.checkpoint_every", d.get("checkpoint_every", 1000), minimum=1),
    )
    return t


def _solver(d: Any) -> SolverConfig:
    d = _check_keys("solver", d, {"ts_type", "rk_type", "options", "stiff", "scheme"})
    opts = d.get("options", {})
    if not isinstance(opts, dict):
        _fail("solver.options", opts,
              "expected a table of PETSc options, e.g. {ts_adapt_type = \"basic\"}")
    items = []
    for k, v in opts.items():
        if k.startswith("-"):
            _fail(f"solver.options.{k}", v, "write option names without the leading '-' and prefix")
        if isinstance(v, (list, dict)):
            _fail(f"solver.options.{k}", v, "expected a string, a number or true/false")
        items.append((k, str(v).lower() if isinstance(v, bool) else str(v)))
    return SolverConfig(ts_type=_str("solver.ts_type", d.get("ts_type", "rk")),
                        rk_type=_str("solver.rk_type", d.get("rk_type", "rk38")),
                        options=tuple(items),
                        stiff=_str("solver.stiff", d.get("stiff", "expint"), STIFF_SCHEMES),
                        scheme=_str("solver.scheme", d.get("scheme", "monolithic"), SCHEMES))


def _check_stiff(cfg: Config) -> None:
    """Open junctions with a stiff scheme: the explicit-scheme keys are unused, and the
    exponential RK has a fixed step."""
    s = cfg.solver
    default = SolverConfig()
    if s.scheme == "staggered-heun":
        if cfg.leads and s.stiff != "expint":
            _fail("solver.scheme", s.scheme, f"the staggered scheme steps the electrons of an "
                  f"open junction by exponential RK4: needs solver.stiff = 'expint' (not "
                  f"{s.stiff!r})")
        for key in ("ts_type", "rk_type"):
            if getattr(s, key) != getattr(default, key):
                _fail(f"solver.{key}", getattr(s, key), "it is not used with solver.scheme = "
                      "'staggered-heun'; keep the default")
        opts = dict(s.options)
        for key in ("ts_type", "ts_adapt_type"):
            if key in opts and not (key == "ts_adapt_type" and opts[key] == "none"):
                _fail(f"solver.options.{key}", opts[key], "solver.scheme = 'staggered-heun' "
                      "is a fixed-step scheme of its own TS type")
    if not cfg.leads or s.stiff == "none":
        return
    for key in ("ts_type", "rk_type"):
        if getattr(s, key) != getattr(default, key):
            _fail(f"solver.{key}", getattr(s, key),
                  f"it is not used when solver.stiff = '{s.stiff}' (open junction); keep the "
                  f"default {getattr(default, key)!r} or set solver.stiff = 'none' to integrate "
                  f"with an explicit PETSc scheme")
    opts = dict(s.options)
    if s.stiff == "expint" and opts.get("ts_adapt_type", "none") != "none":
        _fail("solver.options.ts_adapt_type", opts["ts_adapt_type"],
              "solver.stiff = 'expint' has a fixed step; allowed: 'none', or choose "
              "solver.stiff = 'imex' or 'none' for an adaptive step")
    if "ts_type" in opts:
        _fail("solver.options.ts_type", opts["ts_type"],
              f"the TS type is set by solver.stiff = '{s.stiff}'; set solver.stiff = 'none' "
              f"to choose a TS type")


def _leads(items: Any, n_cross: int | None = None) -> tuple[LeadConfig, ...]:
    if not isinstance(items, list):
        _fail("leads", items, "expected an array of tables [[leads]]")
    n_face = None if n_cross is None else 2 * n_cross
    out = tuple(_lead_config(validate_lead_table(f"leads[{i}]", ld, n_face))
                for i, ld in enumerate(items))
    for key in ("side", "name"):
        vals = [getattr(l, key) for l in out]
        for i, v in enumerate(vals):
            if v in vals[:i]:
                _fail(f"leads[{i}].{key}", v, f"each lead needs its own {key}")
    return out


def _bias_table(v: Any) -> tuple[tuple[float, float], ...] | None:
    if v is None:
        return None
    if not isinstance(v, list) or len(v) < 2 or not all(isinstance(r, list) and len(r) == 2
                                                         for r in v):
        _fail("bias.table", v, "expected at least two rows [t, V], e.g. [[0, 0], [10, 1]]")
    rows = tuple((_real(f"bias.table[{i}][0]", r[0]), _real(f"bias.table[{i}][1]", r[1]))
                 for i, r in enumerate(v))
    for i in range(1, len(rows)):
        if rows[i][0] <= rows[i - 1][0]:
            _fail(f"bias.table[{i}][0]", rows[i][0], f"expected times in increasing order "
                  f"(> {rows[i - 1][0]})")
    return rows


def _bias(d: Any) -> BiasConfig:
    d = _check_keys("bias", d, {f.name for f in fields(BiasConfig)})
    b = BiasConfig(protocol=_str("bias.protocol", d.get("protocol", "none"),
                                 ("none", "symmetric", "asymmetric")),
                   V=_real("bias.V", d.get("V", 0.0)),
                   t_on=_real("bias.t_on", d.get("t_on", 0.0)),
                   t_off=None if d.get("t_off") is None else _real("bias.t_off", d["t_off"]),
                   ramp=_real("bias.ramp", d.get("ramp", 0.0), nonneg=True),
                   table=_bias_table(d.get("table")))
    if b.table is not None:
        if b.protocol == "none":
            _fail("bias.table", d["table"], "a V(t) table needs bias.protocol = 'symmetric' or "
                  "'asymmetric' (how V is split between the leads)")
        for key in ("V", "t_on", "t_off", "ramp"):
            if key in d:
                _fail(f"bias.{key}", d[key], "give either bias.table or V/t_on/t_off/ramp")
    if b.protocol == "none" and b.ramp:
        _fail("bias.ramp", d["ramp"], "a ramp has no effect with bias.protocol = 'none'")
    if b.t_off is not None and b.ramp and b.t_off < b.t_on + b.ramp:
        _fail("bias.t_off", b.t_off, f"expected t_off >= t_on + ramp = {b.t_on + b.ramp} (the "
              f"ramp up must end before the pulse ends)")
    if b.t_off is not None and b.t_off <= b.t_on:
        _fail("bias.t_off", b.t_off, f"expected t_off > t_on = {b.t_on}")
    if b.protocol == "none" and b.t_off is not None:
        _fail("bias.t_off", d["t_off"], "a pulse end has no effect with bias.protocol = 'none'; "
              "choose bias.protocol = 'symmetric' or 'asymmetric'")
    return b


def config_from_dict(d: dict) -> Config:
    """Validate a parsed TOML document and return a frozen :class:`Config`."""
    top = {"name", "units", "lattice", "layers", "bonds", "exchange", "field", "electrons",
           "time", "solver", "output", "leads", "bias", "llg"}
    d = _check_keys("", d, top)
    if "lattice" not in d:
        _fail("lattice", None, "a [lattice] table with 'size' is required")
    lat = _lattice(d["lattice"])
    n_cross = math.prod(lat.size[1:])
    layers_in = d.get("layers", [])
    if not isinstance(layers_in, list):
        _fail("layers", layers_in, "expected an array of tables [[layers]]")
    layers = tuple(_layer(i, ld, lat.size[0], n_cross) for i, ld in enumerate(layers_in))
    names = [l.name for l in layers]
    for i, n in enumerate(names):
        if names.index(n) != i:
            _fail(f"layers[{i}].name", n, "layer names must be unique")
    spans = sorted((l.columns, l.name) for l in layers)
    for (c0, n0), (c1, n1) in zip(spans, spans[1:]):
        if c1[0] < c0[1]:
            _fail("layers.columns", [list(c0), list(c1)],
                  f"layers '{n0}' and '{n1}' overlap; column ranges must be disjoint")
    bonds = [BondConfig(p, v) for p, v in _couplings("bonds", d.get("bonds", []), layers,
                                                      "hopping")]
    exch = [ExchangeConfig(p, v) for p, v in _couplings("exchange", d.get("exchange", []),
                                                         layers, "J_ex")]
    fld = d.get("field", {})
    fld = _check_keys("field", fld, {"B"})
    B = _vec3("field.B", fld.get("B", [0.0, 0.0, 0.0]))
    out = _check_keys("output", d.get("output", {}), {"spin_density", "planes", "spin_balance"})
    planes = out.get("planes")
    if planes is not None:
        if not isinstance(planes, list):
            _fail("output.planes", planes, "expected a list of plane indices x (0 <= x < Lx - 1)")
        planes = tuple(_int(f"output.planes[{i}]", x, minimum=0) for i, x in enumerate(planes))
        for i, x in enumerate(planes):
            if x >= lat.size[0] - 1:
                _fail(f"output.planes[{i}]", x, f"expected 0 <= x < Lx - 1 = {lat.size[0] - 1}")
            if x in planes[:i]:
                _fail(f"output.planes[{i}]", x, "each plane may be listed once")
    cfg = Config(
        lattice=lat, layers=layers, bonds=tuple(bonds), exchange=tuple(exch), field=B,
        leads=_leads(d.get("leads", []), n_cross), bias=_bias(d.get("bias", {})),
        electrons=_electrons(d.get("electrons", {})), time=_time(d.get("time", {})),
        solver=_solver(d.get("solver", {})),
        output=OutputConfig(
            spin_density=_bool("output.spin_density", out.get("spin_density", True)),
            planes=planes,
            spin_balance=_bool("output.spin_balance", out.get("spin_balance", True))),
        units=_str("units", d.get("units", "natural"), ("natural", "eV-fs")),
        name=_str("name", d.get("name", "qcspin run")),
    )
    cfg = replace(cfg, llg=_llg(d.get("llg", {}), cfg.units, layers, bool(cfg.leads)))
    if cfg.bias.protocol != "none":
        sides = {l.side for l in cfg.leads}
        if sides != {"left", "right"}:
            _fail("bias.protocol", cfg.bias.protocol, "a bias needs a left and a right lead")
    _check_stiff(cfg)
    if cfg.electrons.initial in ("stationary", "partitioned", "partitioned-empty") \
            and not cfg.leads:
        _fail("electrons.initial", cfg.electrons.initial, "this initial state needs [[leads]]")
    n_sites = math.prod(lat.size)
    ne = cfg.electrons.n_electrons
    if ne is not None and ne > 2 * n_sites:
        _fail("electrons.n_electrons", ne, f"expected at most 2 x sites = {2 * n_sites}")
    return cfg




def load_config(path: str, overrides: list[str] | None = None) -> Config:
    """Read a TOML file, apply ``key=value`` overrides (``--set``), validate."""
    return config_from_dict(apply_overrides(read_toml(path), overrides or []))


# ----------------------------------------------------------------------------- warnings
def _uncovered(cfg: Config) -> list[tuple[int, int]]:
    """Maximal column ranges [a, b) of the lattice that belong to no layer."""
    Lx = cfg.lattice.size[0]
    covered = [False] * Lx
    for layer in cfg.layers:
        a, b = layer.columns
        covered[a:b] = [True] * (b - a)
    runs, start = [], None
    for x, c in enumerate(covered + [True]):
        if not c and start is None:
            start = x
        elif c and start is not None:
            runs.append((start, x))
            start = None
    return runs


def config_warnings(cfg: Config) -> list[str]:
    """Human-readable warnings about a valid config: settings that are allowed but probably not
    meant (uncovered columns, keys without effect).  The CLI prints them."""
    Lx = cfg.lattice.size[0]
    out = [f"columns [{a}, {b}) of the lattice (Lx = {Lx}) belong to no layer: they are "
           f"non-magnetic sites with the lattice hopping; add a layer or check lattice.size"
           for a, b in _uncovered(cfg)]
    e, s, default = cfg.electrons, cfg.solver, ElectronsConfig()
    stationary = e.initial in ("stationary", "partitioned", "partitioned-empty") or (
        e.initial == "auto" and bool(cfg.leads))
    if not cfg.leads:
        if e.n_poles != default.n_poles:
            out.append(f"electrons.n_poles = {e.n_poles} has no effect without [[leads]]")
        if s.stiff != SolverConfig().stiff:
            out.append(f"solver.stiff = '{s.stiff}' has no effect without [[leads]]")
    elif e.n_poles != default.n_poles and any(lc.n_poles is None for lc in cfg.leads):
        out.append(f"electrons.n_poles = {e.n_poles} is deprecated as the leads' pole count: "
                   f"give n_poles in each [[leads]] table (it is still the default of the "
                   f"leads without one)")
    if not stationary and e.stationary != default.stationary:
        out.append(f"electrons.stationary = {e.stationary!r} has no effect: the run does not "
                   f"start from a stationary state")
    if stationary:
        for key in ("n_electrons", "eigensolver"):
            if getattr(e, key) != getattr(default, key):
                out.append(f"electrons.{key} = {getattr(e, key)!r} has no effect on the "
                           f"stationary initial state of an open junction")
    if s.ts_type != "rk" and s.rk_type != SolverConfig().rk_type:
        out.append(f"solver.rk_type = '{s.rk_type}' has no effect with solver.ts_type = "
                   f"'{s.ts_type}'")
    for key in ("V", "t_on"):        # accepted: a 'none' reference run may keep the others' V
        value = getattr(cfg.bias, key)
        if cfg.bias.protocol == "none" and value != 0.0:
            out.append(f"bias.{key} = {value} has no effect with bias.protocol = 'none'")
    return out


# ----------------------------------------------------------------------------- writing
def config_to_dict(cfg: Config) -> dict:
    """Plain-dict form of a config (the resolved config written to result files)."""
    d = asdict(cfg)
    d["field"] = {"B": list(cfg.field)}
    d["solver"]["options"] = dict(cfg.solver.options)
    for layer, lc in zip(d["layers"], cfg.layers):
        for k in [k for k, v in layer.items() if v is None]:
            del layer[k]
        if not lc.magnetic:          # spin keys are refused on layers without spins
            for k in _SPIN_KEYS:
                del layer[k]
    if d["electrons"]["n_electrons"] is None:
        del d["electrons"]["n_electrons"]
    if d["bias"]["t_off"] is None:
        del d["bias"]["t_off"]
    if cfg.bias.table is None:          # asdict keeps None: same test as d["bias"]["table"]
        del d["bias"]["table"]
    else:
        d["bias"] = {k: d["bias"][k] for k in ("protocol", "table")}
        d["bias"]["table"] = [list(r) for r in cfg.bias.table]
    if d["output"]["planes"] is None:
        del d["output"]["planes"]
    d["leads"] = [{k: list(v) if isinstance(v, tuple) else v for k, v in ld.table().items()}
                  for ld in cfg.leads]
    return d


def config_to_toml(cfg: Config) -> str:
    """The resolved configuration as TOML text (round-trips through :func:`config_from_dict`)."""
    d = config_to_dict(cfg)
    return toml_document({"name": d["name"], "units": d["units"]},
                         [(sec, d[sec]) for sec in ("lattice", "field", "electrons", "bias",
                                                    "time", "output", "solver", "llg")
                          if sec != "llg" or cfg.llg != LLGConfig()],
                         [(arr, d[arr]) for arr in ("layers", "bonds", "exchange", "leads")])


def with_changes(cfg: Config, **sections: Any) -> Config:
    """``dataclasses.replace`` for nested sections, e.g. ``with_changes(cfg, time={'dt': .05})``."""
    kw = {}
    for name, value in sections.items():
        cur = getattr(cfg, name)
        kw[name] = replace(cur, **value) if isinstance(value, dict) else value
    return replace(cfg, **kw)
