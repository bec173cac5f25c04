"""The device: lattice, layers, bonds and classical spins, built once and then frozen.

``DeviceBuilder`` is mutable and validates through the same rules as the TOML config;
``DeviceBuilder.finalized()`` returns a frozen :class:`Device` of NumPy arrays that the operators
consume.  Site index = x*Ly*Lz + y*Lz + z; spinor index = 2*site + spin (0 = up, 1 = down).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .config import Config, _fail, config_from_dict
from .units import get_units

__all__ = ["Device", "DeviceBuilder", "device_from_config", "lattice_bonds", "Extension",
           "extend_device"]


def lattice_bonds(size: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Site coordinates (n, 3) and nearest-neighbour bonds (m, 2) with i < j, open boundaries."""
    L = tuple(size) + (1,) * (3 - len(size))
    idx = np.arange(math.prod(L)).reshape(L)
    coords = np.stack(np.unravel_index(idx.ravel(), L), axis=1)
    pairs = []
    for axis in range(3):
        if L[axis] > 1:
            a = np.take(idx, np.arange(L[axis] - 1), axis=axis).ravel()
            b = np.take(idx, np.arange(1, L[axis]), axis=axis).ravel()
            pairs.append(np.stack([a, b], axis=1))
    bonds = np.concatenate(pairs) if pairs else np.zeros((0, 2), int)
    order = np.lexsort((bonds[:, 1], bonds[:, 0]))
    return coords, bonds[order]


@dataclass(frozen=True, eq=False)
class Device:
    """Frozen description of a junction.  All arrays are read-only.

    Electron part: ``n_sites``, ``bonds`` (m, 2), ``hopping`` (m,) [E0], ``mu_bar`` [E0].
    Spin part (n_spin classical spins on the sites ``spin_sites``): initial spins ``spins0``
    (n_spin, 3), ``J_sd``, ``K``, ``easy_axis``, ``damping``, ``frozen`` per spin, exchange bonds
    ``exchange_bonds`` (spin indices) with ``J_ex``, and the field ``B`` [E0].
    """

    config: Config
    size: tuple[int, ...]
    coords: np.ndarray
    bonds: np.ndarray
    hopping: np.ndarray
    mu_bar: float
    layer_names: tuple[str, ...]
    layer_of_site: np.ndarray
    spin_sites: np.ndarray
    spin_layer: np.ndarray
    spins0: np.ndarray
    J_sd: np.ndarray
    K: np.ndarray
    easy_axis: np.ndarray
    damping: np.ndarray
    frozen: np.ndarray
    exchange_bonds: np.ndarray
    J_ex: np.ndarray
    B: np.ndarray
    parameters: dict = field(default_factory=dict)
    onsite: np.ndarray | None = None   # per-site on-site energy [E0]; None: mu_bar everywhere
    #: the classical vectors' equation of motion (config [llg]): "spin" (paper 004) or
    #: "moment" (paper 000 Eq. 2) with ``gyro`` = g/mu_M in internal units (x hbar)
    equation: str = "spin"
    gyro: float = 1.0

    @property
    def angular_momentum_per_vector(self) -> float:
        """The angular momentum [hbar] one classical vector of length 1 carries along itself:
        1 for a spin S, -mu_M/(g hbar) = -1/gyro for a moment M (-1/g_e by default)."""
        return 1.0 if self.equation == "spin" else -1.0 / self.gyro

    @property
    def site_onsite(self) -> np.ndarray:
        """On-site energy of every site (n_sites,) [E0]: ``onsite`` or mu_bar."""
        if self.onsite is not None:
            return self.onsite
        return np.full(self.n_sites, float(self.mu_bar))

    def __post_init__(self) -> None:
        for _name, value in vars(self).items():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)

    @property
    def n_sites(self) -> int:
        return int(self.coords.shape[0])

    @property
    def n_orbitals(self) -> int:
        """N_s = 2 x sites (spinor orbitals)."""
        return 2 * self.n_sites

    @property
    def n_spins(self) -> int:
        return int(self.spin_sites.shape[0])

    @property
    def dim(self) -> int:
        return len(self.size)

    @property
    def cross_section(self) -> int:
        return math.prod(self.size[1:])

    def layer_sites(self, name: str) -> np.ndarray:
        """Site indices of a layer (ascending)."""
        return np.flatnonzero(self.layer_of_site == self.layer_index(name))

    def layer_index(self, name: str) -> int:
        try:
            return self.layer_names.index(name)
        except ValueError:
            raise KeyError(f"layer '{name}' does not exist; "
                           f"layers are {list(self.layer_names)}") from None

    def layer_spins(self, name: str) -> np.ndarray:
        """Indices (into the spin arrays) of the classical spins of a layer."""
        return np.flatnonzero(self.spin_layer == self.layer_index(name))

    @property
    def magnetic_layers(self) -> tuple[str, ...]:
        return tuple(n for i, n in enumerate(self.layer_names) if np.any(self.spin_layer == i))

    #: the parameters :meth:`with_params` changes (Kwant's ``params``): per magnetic layer
    #: J_sd and K (one value for all, or {layer name: value}), the field B (3,), the leads'
    #: chemical potentials mu (one for all, or {lead name: value}) and the bias V  [E0]
    PARAMS = ("J_sd", "K", "B", "mu", "V")

    def with_params(self, **params: Any) -> "Device":
        """A copy with other parameter values, the geometry shared (no config to rebuild):
        ``J_sd`` / ``K`` = a number for every magnetic layer or {layer name: number}; ``B`` =
        [Bx, By, Bz].  The copy's ``config`` is updated to match, so a run stores what it
        used.  ``mu`` = a number for every lead or {lead name: number} (the reservoirs before
        any bias); ``V`` = the bias height of the config's [bias] protocol.  The geometry and
        every array are shared: only the config's leads/bias change with mu and V.  Unknown
        names, layers or leads raise ConfigError."""
        from .schema import ConfigError, fail, real

        unknown = sorted(set(params) - set(self.PARAMS))
        if unknown:
            fail(f"parameter '{unknown[0]}'", params[unknown[0]],
                 f"expected one of {list(self.PARAMS)}", ConfigError)
        kw = dict(vars(self))
        layers = list(self.config.layers)
        cfg_kw: dict[str, Any] = {}
        for name in ("J_sd", "K"):
            if name not in params:
                continue
            value = params[name]
            per = value if isinstance(value, dict) else {
                n: value for n in self.magnetic_layers}
            arr = np.array(getattr(self, name), float)
            for layer, v in per.items():
                if layer not in self.magnetic_layers:
                    fail(f"parameter '{name}'", value, f"layer {layer!r} has no classical "
                         f"spins; magnetic layers are {list(self.magnetic_layers)}", ConfigError)
                x = real(f"parameter '{name}' of layer {layer!r}", v, exc=ConfigError)
                arr[self.spin_layer == self.layer_index(layer)] = x
                i = next(i for i, lc in enumerate(layers) if lc.name == layer)
                layers[i] = (replace(layers[i], J_sd=x) if name == "J_sd"
                             else replace(layers[i], K=x))
            kw[name] = arr
        if "B" in params:
            B = params["B"]
            if np.shape(B) != (3,):
                fail("parameter 'B'", B, "expected [Bx, By, Bz]", ConfigError)
            kw["B"] = np.array([real(f"parameter 'B'[{i}]", b, exc=ConfigError)
                                for i, b in enumerate(B)])
            cfg_kw["field"] = tuple(float(b) for b in kw["B"])
        if "mu" in params:
            mu = params["mu"]
            leads = list(self.config.leads)
            names = [lc.name or lc.side for lc in leads]
            if not leads:
                fail("parameter 'mu'", mu, "the device has no [[leads]]", ConfigError)
            per = mu if isinstance(mu, dict) else {n: mu for n in names}
            for name, v in per.items():
                if name not in names:
                    fail("parameter 'mu'", mu, f"lead {name!r} does not exist; leads are "
                         f"{names}", ConfigError)
                i = names.index(name)
                leads[i] = replace(leads[i], mu=real(f"parameter 'mu' of lead {name!r}", v,
                                                     exc=ConfigError))
            cfg_kw["leads"] = tuple(leads)
        if "V" in params:
            b = self.config.bias
            if b.protocol == "none" or b.table is not None:
                fail("parameter 'V'", params["V"], "needs a [bias] protocol 'symmetric' or "
                     "'asymmetric' with a height V (not none, not a table)", ConfigError)
            cfg_kw["bias"] = replace(b, V=real("parameter 'V'", params["V"], exc=ConfigError))
        kw["config"] = replace(self.config, layers=tuple(layers), **cfg_kw)
        return Device(**kw)

    def with_spins(self, spins: np.ndarray) -> "Device":
        """A copy with other initial spins (shape (n_spin, 3))."""
        spins = np.asarray(spins, float).reshape(self.n_spins, 3).copy()
        kw = {k: v for k, v in vars(self).items()}
        kw["spins0"] = spins
        return Device(**kw)


def _plain(v: Any) -> Any:
    """Tuples and NumPy arrays/scalars as the lists and numbers of a parsed TOML document (other
    values unchanged: the config validation names what is wrong with them)."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


class DeviceBuilder:
    """Mutable builder; the Python twin of a TOML config.

    >>> b = DeviceBuilder(size=(20,))
    >>> b.add_layer("PL", (0, 5), J_sd=1.0, J_ex=-1.0, spin=(1, 0, 0))
    >>> b.add_layer("FL", (15, 20), J_sd=1.0, J_ex=-1.0, spin=(0, 0, 1))
    >>> dev = b.finalized()
    """

    def __init__(self, size: tuple[int, ...], *, hopping: float = 1.0, mu_bar: float = 0.0,
                 units: str = "natural") -> None:
        self._doc: dict[str, Any] = {
            "units": units,
            "lattice": {"size": _plain(size), "hopping": _plain(hopping), "mu_bar": _plain(mu_bar)},
            "layers": [], "bonds": [], "exchange": [], "field": {"B": [0.0, 0.0, 0.0]},
        }

    def add_layer(self, name: str, columns: tuple[int, int], **params: Any) -> "DeviceBuilder":
        """Add a layer; ``params`` are the keys of a ``[[layers]]`` table (J_sd, J_ex, K, ...).
        The spin keys (J_sd, J_ex, K, easy_axis, spin_length, frozen, damping) need ``spin`` or
        ``spins``."""
        entry = {"name": name, "columns": _plain(columns)}
        entry.update({k: _plain(v) for k, v in params.items()})
        self._doc["layers"].append(entry)
        return self

    def set_bond_hopping(self, a: str, b: str, hopping: float) -> "DeviceBuilder":
        """Hopping on the bonds between two touching layers."""
        self._doc["bonds"].append({"between": [a, b], "hopping": _plain(hopping)})
        return self

    def add_exchange(self, a: str, b: str, J_ex: float) -> "DeviceBuilder":
        """Exchange between the spins of two touching magnetic layers."""
        self._doc["exchange"].append({"between": [a, b], "J_ex": _plain(J_ex)})
        return self

    def set_field(self, B: tuple[float, float, float]) -> "DeviceBuilder":
        self._doc["field"] = {"B": _plain(B)}
        return self

    def set(self, section: str, **values: Any) -> "DeviceBuilder":
        """Set keys of another config section, e.g. ``set('time', dt=0.05)``."""
        table = self._doc.setdefault(section, {})
        if not isinstance(table, dict):
            _fail(section, values, "DeviceBuilder.set sets keys of a table such as 'time' or "
                  "'electrons'; use add_layer, set_bond_hopping, add_exchange, set_field or the "
                  "constructor (size, hopping, mu_bar, units)")
        table.update({k: _plain(v) for k, v in values.items()})
        return self

    def to_config(self) -> Config:
        return config_from_dict(self._doc)

    def finalized(self) -> Device:
        """Validate and freeze.  The builder is left unchanged."""
        return device_from_config(self.to_config())

    def __getattr__(self, name: str) -> Any:
        if name in Device.__dataclass_fields__ or hasattr(Device, name):
            raise AttributeError(
                f"DeviceBuilder has no attribute '{name}'; call .finalized() to get a Device first")
        raise AttributeError(name)


def device_from_config(cfg: Config) -> Device:
    """Build the frozen :class:`Device` described by a validated :class:`Config`."""
    coords, bonds = lattice_bonds(cfg.lattice.size)
    n = coords.shape[0]
    x = coords[:, 0]
    layer_of_site = np.full(n, -1, dtype=np.int64)
    for k, layer in enumerate(cfg.layers):
        a, b = layer.columns
        layer_of_site[(x >= a) & (x < b)] = k
    names = tuple(l.name for l in cfg.layers)

    hop = np.full(len(bonds), cfg.lattice.hopping)
    la, lb = layer_of_site[bonds[:, 0]], layer_of_site[bonds[:, 1]]
    for k, layer in enumerate(cfg.layers):
        if layer.hopping is not None:
            hop[(la == k) & (lb == k)] = layer.hopping
    for bc in cfg.bonds:
        ka, kb = names.index(bc.between[0]), names.index(bc.between[1])
        hop[((la == ka) & (lb == kb)) | ((la == kb) & (lb == ka))] = bc.hopping

    # classical spins
    sites, lays, S0, jsd, K, axis, alpha, frozen = [], [], [], [], [], [], [], []
    for k, layer in enumerate(cfg.layers):
        if not layer.magnetic:
            continue
        ls = np.flatnonzero(layer_of_site == k)
        dirs = np.array(layer.spins if layer.spins is not None else [layer.spin] * len(ls), float)
        dirs = dirs / np.linalg.norm(dirs, axis=1, keepdims=True) * layer.spin_length
        e = np.asarray(layer.easy_axis, float)
        sites.append(ls)
        lays.append(np.full(len(ls), k))
        S0.append(dirs)
        jsd.append(np.full(len(ls), layer.J_sd))
        K.append(np.full(len(ls), layer.K))
        axis.append(np.tile(e / np.linalg.norm(e), (len(ls), 1)))
        alpha.append(np.full(len(ls), layer.damping))
        frozen.append(np.full(len(ls), layer.frozen))
    cat = (lambda parts, shape: np.concatenate(parts) if parts else np.zeros(shape))
    spin_sites = cat(sites, (0,)).astype(np.int64)
    order = np.argsort(spin_sites, kind="stable")
    spin_sites = spin_sites[order]
    spin_layer = cat(lays, (0,)).astype(np.int64)[order]
    spins0 = cat(S0, (0, 3))[order]
    J_sd, Kk = cat(jsd, (0,))[order], cat(K, (0,))[order]
    easy, damp = cat(axis, (0, 3))[order], cat(alpha, (0,))[order]
    frz = cat(frozen, (0,)).astype(bool)[order]

    # exchange bonds between spins (intra-layer J_ex, optional inter-layer tables)
    spin_of_site = np.full(n, -1, dtype=np.int64)
    spin_of_site[spin_sites] = np.arange(len(spin_sites))
    sa, sb = spin_of_site[bonds[:, 0]], spin_of_site[bonds[:, 1]]
    both = (sa >= 0) & (sb >= 0)
    Jx = np.zeros(len(bonds))
    for k, layer in enumerate(cfg.layers):
        Jx[both & (la == k) & (lb == k)] = layer.J_ex
    for ec in cfg.exchange:
        ka, kb = names.index(ec.between[0]), names.index(ec.between[1])
        Jx[both & (((la == ka) & (lb == kb)) | ((la == kb) & (lb == ka)))] = ec.J_ex
    keep = both & (Jx != 0.0)
    ex_bonds = np.stack([sa[keep], sb[keep]], axis=1)

    return Device(
        config=cfg, size=cfg.lattice.size, coords=coords, bonds=bonds, hopping=hop,
        mu_bar=cfg.lattice.mu_bar, layer_names=names, layer_of_site=layer_of_site,
        spin_sites=spin_sites, spin_layer=spin_layer, spins0=spins0, J_sd=J_sd, K=Kk,
        easy_axis=easy, damping=damp, frozen=frz, exchange_bonds=ex_bonds, J_ex=Jx[keep],
        B=np.asarray(cfg.field, float), equation=cfg.llg.equation,
        gyro=(cfg.llg.rate * get_units(cfg.units).hbar if cfg.llg.equation == "moment"
              else 1.0),
    )


@dataclass(frozen=True)
class Extension:
    """Where the explicit lead columns of :func:`extend_device` sit in the extended device.

    left, right    : explicit columns added on each side (0: none)
    device_columns : Lx of the device;  cross : sites per column (Ly Lz)
    offset         : sites before the device (left * cross): device site s is s + offset
    """

    left: int
    right: int
    device_columns: int
    cross: int

    @property
    def offset(self) -> int:
        return self.left * self.cross

    @property
    def device_sites(self) -> slice:
        """The device's sites in the extended numbering (contiguous)."""
        return slice(self.offset, self.offset + self.device_columns * self.cross)

    def column(self, side: str, j: int) -> int:
        """The x of column j of the lead on ``side`` (0: the device's face, j >= 1: the j-th
        explicit column outward)."""
        if side == "left":
            return self.left - j
        return self.left + self.device_columns - 1 + j

    def lead_orbitals(self, side: str) -> slice:
        """The spinor orbitals of the explicit columns on ``side`` (contiguous)."""
        if side == "left":
            return slice(0, 2 * self.offset)
        a = 2 * (self.offset + self.device_columns * self.cross)
        return slice(a, a + 2 * self.right * self.cross)


def extend_device(device: Device, left=None, right=None) -> tuple[Device, Extension]:
    """The device with explicit lead columns added on its left and/or right end (the electron
    problem of a run with ``"extended"`` leads) and where they sit.

    ``left``/``right``: None or an object with ``columns`` (>= 1), ``hopping`` (on the lead's
    bonds, along x and across), ``onsite`` (spin independent) and ``coupling`` (on the x bonds
    between the lead's first column and the device's face); e.g. operators.leads.ExtraSites.
    The added sites form the layers ``lead:left`` / ``lead:right`` (no spins); the device's
    sites, bonds, hoppings, on-site energies, spins and exchange are unchanged, its sites move
    by ``Extension.offset``.  ``config`` stays the device's (it describes the physical device).
    """
    Ll = int(left.columns) if left is not None else 0
    Lr = int(right.columns) if right is not None else 0
    A = device.cross_section
    Lx = device.size[0]
    ext = Extension(Ll, Lr, Lx, A)
    if Ll == 0 and Lr == 0:
        return device, ext
    size = (Lx + Ll + Lr,) + tuple(device.size[1:])
    coords, bonds = lattice_bonds(size)
    n = coords.shape[0]
    o = ext.offset
    x = coords[:, 0]
    region = np.where(x < Ll, 0, np.where(x < Ll + Lx, 1, 2))   # 0 left lead, 1 device, 2 right
    ra, rb = region[bonds[:, 0]], region[bonds[:, 1]]
    hop = np.empty(len(bonds))
    # device bonds keep their hopping (same pairs, shifted by o)
    dev = (ra == 1) & (rb == 1)
    nd = device.n_sites
    old_key = device.bonds[:, 0].astype(np.int64) * nd + device.bonds[:, 1]
    new_key = (bonds[dev, 0] - o).astype(np.int64) * nd + (bonds[dev, 1] - o)
    pos = np.searchsorted(old_key, new_key)
    if not np.array_equal(old_key[pos], new_key):   # pragma: no cover - lattice invariant
        raise ValueError("extend_device: the device's bonds are not those of its lattice")
    hop[dev] = device.hopping[pos]
    onsite = np.empty(n)
    onsite[o:o + nd] = device.site_onsite
    names = list(device.layer_names)
    layer = np.empty(n, dtype=np.int64)
    layer[o:o + nd] = device.layer_of_site
    for side, spec, r in (("left", left, 0), ("right", right, 2)):
        if spec is None:
            continue
        inside = (ra == r) & (rb == r)
        cross = ((ra == r) & (rb == 1)) | ((ra == 1) & (rb == r))
        hop[inside] = float(spec.hopping)
        hop[cross] = float(spec.coupling)
        onsite[region == r] = float(spec.onsite)
        layer[region == r] = len(names)
        names.append(f"lead:{side}")
    kw = dict(vars(device))
    kw.update(size=size, coords=coords, bonds=bonds, hopping=hop, onsite=onsite,
              layer_names=tuple(names), layer_of_site=layer,
              spin_sites=np.asarray(device.spin_sites) + o)
    return Device(**kw), ext
