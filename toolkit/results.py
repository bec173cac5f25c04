"""One reader for every file qcspin writes: :func:`load_result`.

    >>> r = load_result("valve.h5")
    >>> r.kind, r.status, r.units["time"]            # 'run', 'finished', 'hbar/hopping'
    >>> t, M = r["time"], r["layer_magnetization"]   # NumPy arrays, read when asked for
    >>> M[:, r.device.layer("FL")]                   # the free layer's magnetization
    >>> r.unit("lead_current"), r.config.time.dt     # a dataset's unit; the resolved Config
    >>> r["layer_magnetization", -1], r["spins", :, 0]   # a part only: the last record, spin 0
    >>> r.device.n_spins("FL"), r.checkpoint()["spins"]  # N_S of a layer; the final state

Schema (``qcspin_format`` 2; the writers are toolkit/io.py for runs and the analysis commands
for the others).  Every file has the root attributes ``kind`` and ``qcspin_format``:

==========  ==================================================  ==============================
kind        written by                                          main datasets
==========  ==================================================  ==============================
run         ``qcspin run``, ``Simulation.run``                  time series (``time``,
                                                                ``spins``, ``energy/*``, ...),
                                                                ``device/*``, ``checkpoint``
transport   ``qcspin transport``                                ``energies``, ``theta``, ...
spectrum    ``qcspin spectrum``                                 ``eigenvalues``, ...
jeff        ``qcspin jeff`` (one group per table)               ``value``, ``J_eff``, ...
sweep       ``qcspin sweep`` (``sweep.h5``)                     ``V``, ``lead_current``, ...
quench      ``qcspin quench`` (``analysis.h5``)                 ``V``, ``t_R``, ``T_cd``, ...
==========  ==================================================  ==============================

Run files: the root attributes ``config`` (the resolved TOML), ``status``/``status_message``,
``time_unit``, ``energy_unit``, ``leads`` (JSON), ...; the group ``device`` with
``coords``, ``layer_of_site``, ``spin_sites``, ``spin_layer`` and the attributes
``layer_names``, ``lead_names`` (JSON), ``planes``, ``size``; each series dataset has ``units``
and ``description``.  Jeff files hold one table per group (``Result.tables``; '' for a table at
the root).  The full table is in docs/guide/results.md.  Files of format 1 (runs
without ``kind``/status, sweep and analysis files without ``kind``) are recognised by their
content and read the same way.
"""
from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from .io import ResultFileError, is_locked, load_checkpoint, open_result

__all__ = ["load_result", "Result", "DeviceInfo", "ResultReadError", "kind_of", "is_hdf5",
           "KINDS"]

KINDS = ("run", "transport", "spectrum", "jeff", "sweep", "quench")


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _one_line(exc: BaseException) -> str:
    """An exception's message in one line (a KeyError's without the quotes str() adds)."""
    text = getattr(exc, "strerror", None) if isinstance(exc, OSError) and not str(exc) else None
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    text = text or str(exc) or type(exc).__name__
    return " ".join(text.split())


class ResultReadError(ResultFileError):
    """:func:`load_result` cannot read a file; the message is ResultFileError's one line, the
    attributes say why, for callers that explain it their own way (``qcspin plot``):

    ``reason``        'path' (missing, or a directory), 'open' (HDF5 cannot open it: not HDF5,
                      truncated, locked by a writer, damaged superblock), 'damaged' (it opens,
                      but its structure cannot be read) or 'foreign' (HDF5 that qcspin did not
                      write)
    ``hdf5_message``  'open', 'damaged': HDF5's own error, in one line ('' if unknown)
    ``members``       'foreign': the names at the file's root, sorted
    """

    def __init__(self, message: str, reason: str, *, hdf5_message: str = "",
                 members: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.reason = reason
        self.hdf5_message = hdf5_message
        self.members = members


def is_hdf5(path: str) -> bool:
    """Whether ``path`` is a file with an HDF5 signature (``h5py.is_hdf5``; False for a
    missing path or a directory)."""
    return os.path.isfile(path) and bool(h5py.is_hdf5(path))


def _value(v: Any) -> Any:
    """An attribute as Python: text (JSON text parsed when it is a list or a dict), numbers,
    arrays."""
    if isinstance(v, (bytes, str)):
        s = _text(v)
        if s[:1] in "[{":
            try:
                return json.loads(s)
            except json.JSONDecodeError:
                return s
        return s
    if isinstance(v, np.generic):
        return v.item()
    return v


def _jeff_groups(f: h5py.File) -> list[str]:
    out = []
    for k in f:
        try:
            g = f[k]
        except (KeyError, OSError, RuntimeError):  # a damaged member: not ours to judge here
            continue
        if isinstance(g, h5py.Group) and _text(g.attrs.get("qcspin_table", "")) == "jeff_sweep":
            out.append(k)
    return out


def kind_of(f: h5py.File) -> str:
    """The kind of an open file (one of :data:`KINDS`), 'other:<kind>' for a qcspin kind not in
    KINDS, '' for a file qcspin did not write."""
    a = f.attrs
    kind = _text(a.get("kind", ""))
    names = set(f.keys())
    if kind in ("run", "transport", "spectrum"):
        return kind
    if _text(a.get("qcspin_table", "")) == "jeff_sweep" or kind in ("jeff", "jeff_sweep"):
        return "jeff"
    if kind in ("sweep", "bias_sweep"):
        return "sweep"
    if kind in ("quench", "quench_analysis"):
        return "quench"
    if kind:
        return f"other:{kind}"
    # files without a kind marker (qcspin_format 1 runs, sweep.h5, analysis.h5): by content
    if "config" in a and ("device" in names or "time" in names):
        return "run"
    if {"V", "t_R", "T_cd", "dM"} <= names:
        return "quench"
    if {"V", "lead_current", "layer_magnetization"} <= names and "stage1" in a:
        return "sweep"
    if {"energies", "theta", "polarization"} <= names and "config" in a:
        return "transport"
    if {"eigenvalues", "polarization"} <= names and "config" in a:
        return "spectrum"
    if _jeff_groups(f):
        return "jeff"
    return ""


@dataclass(frozen=True)
class DeviceInfo:
    """The physical device of a run file (explicit lead sites are not part of it)."""

    layer_names: tuple[str, ...]
    lead_names: tuple[str, ...]
    size: tuple[int, ...]
    planes: tuple[int, ...]
    coords: np.ndarray          # (n_sites, dim) lattice coordinates
    layer_of_site: np.ndarray   # (n_sites,) index into layer_names
    spin_sites: np.ndarray      # (n_spins,) site of each classical spin
    spin_layer: np.ndarray      # (n_spins,) layer of each classical spin

    def layer(self, name: str) -> int:
        """Index of layer ``name`` (ResultFileError naming the layers otherwise)."""
        if name not in self.layer_names:
            raise ResultFileError(f"layer {name!r} is not in this file: its layers are "
                                  f"{list(self.layer_names)}")
        return self.layer_names.index(name)

    def n_spins(self, name: str) -> int:
        """The number of classical spins of layer ``name`` (N_S; 0 for a spacer)."""
        return int(np.count_nonzero(self.spin_layer == self.layer(name)))


@dataclass(frozen=True)
class Result:
    """A qcspin file, opened by :func:`load_result`.  Datasets are read when indexed
    (``r["time"]``, ``r["energy/total"]``, ``r["N_S=5/J_eff"]``), a part of one with an index
    after the name (``r["spins", -1]``); ``names`` lists them (``shape(name)``, ``unit(name)``
    without reading them), ``groups`` every group (checkpoints included), ``tables`` the J_eff
    tables of a jeff file.  :class:`ResultReadError` (a ResultFileError) when the file cannot
    be read."""

    path: str
    kind: str
    format: int
    attrs: dict[str, Any]
    names: tuple[str, ...]
    device: DeviceInfo | None = None
    tables: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    _units: dict[str, str] = field(default_factory=dict, repr=False)
    _shapes: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)

    @property
    def status(self) -> str | None:
        """'running', 'finished', 'interrupted', 'failed' (runs; None for other kinds)."""
        s = self.attrs.get("status")
        return None if s is None else str(s)

    @property
    def message(self) -> str:
        return str(self.attrs.get("status_message", ""))

    @property
    def units(self) -> dict[str, str]:
        """{'time': ..., 'energy': ...}: the units of the file's times and energies."""
        return {"time": str(self.attrs.get("time_unit", "")),
                "energy": str(self.attrs.get("energy_unit", self.attrs.get("energy", "")))}

    @property
    def config_text(self) -> str:
        return str(self.attrs.get("config", ""))

    @property
    def config(self):
        """The resolved config (toolkit.config.Config) stored in the file, or None."""
        if not self.config_text:
            return None
        from .config import config_from_dict

        try:
            return config_from_dict(tomllib.loads(self.config_text))
        except (tomllib.TOMLDecodeError, ValueError) as exc:
            raise ResultFileError(f"the config stored in '{self.path}' cannot be read: "
                                  f"{exc}") from None

    def unit(self, name: str) -> str:
        """The ``units`` attribute of dataset ``name`` ('' if it has none)."""
        self._check(name)
        return self._units.get(name, "")

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of dataset ``name`` when the file was opened (nothing is read; () for a
        scalar)."""
        self._check(name)
        return self._shapes[name]

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def __getitem__(self, key: str | tuple) -> np.ndarray:
        """``r[name]``: the whole dataset; ``r[name, i, ...]``: only that part, read from the
        file without the rest (integers, negative ones too, slices, ``...``: h5py's simple
        selections), e.g. ``r["lead_mu", -1]``, ``r["layer_magnetization", :, k, 0]``.
        String datasets come as Python ``str`` (arrays of dtype object)."""
        name, sel = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        self._check(name)
        with _open(self.path) as f:
            ds = _strings(f[name])
            if not sel:
                return ds[()]
            try:
                return ds[sel]
            except (IndexError, TypeError, ValueError) as exc:
                raise IndexError(f"index {sel!r} of dataset {name!r} (shape {ds.shape}) in "
                                 f"'{self.path}': {exc}") from None

    def group_attrs(self, group: str = "", *, raw: bool = False) -> dict[str, Any]:
        """The attributes of ``group`` ('' = the root; e.g. one J_eff table of a figure
        file), JSON texts decoded unless ``raw``."""
        with _open(self.path) as f:
            if group and group not in f:
                raise ResultFileError(f"group {group!r} is not in '{self.path}'")
            a = dict((f[group] if group else f).attrs)
        return a if raw else {k: _value(v) for k, v in a.items()}

    def checkpoint(self) -> dict[str, Any]:
        """The checkpoint of a run file, i.e. its last complete state (``rho``, ``spins``, the
        auxiliary components by name, ``t``, ``step``, ...: :func:`toolkit.io.load_checkpoint`,
        verified, from the previous slot if the current one is damaged; both formats)."""
        if self.kind != "run":
            raise ResultFileError(f"'{self.path}' is a {self.kind} file: only run files have "
                                  f"a checkpoint")
        return load_checkpoint(self.path)

    def read(self, *names: str) -> dict[str, np.ndarray]:
        """Several datasets in one opening of the file."""
        for n in names:
            self._check(n)
        with _open(self.path) as f:
            return {n: _strings(f[n])[()] for n in names}

    def _check(self, name: str) -> None:
        if name not in self.names:
            shown = ", ".join(self.names[:12]) + (", ..." if len(self.names) > 12 else "")
            raise ResultFileError(f"dataset {name!r} is not in '{self.path}' ({self.kind} "
                                  f"file): it holds {shown}")


def _strings(ds: h5py.Dataset):
    """``ds``, or for an HDF5 string dataset its ``asstr()`` view (str instead of bytes)."""
    return ds.asstr() if h5py.check_string_dtype(ds.dtype) is not None else ds


def _open(path: str) -> h5py.File:
    # a running qcspin run holds its own lock: read without HDF5's file lock then
    locking = not is_locked(path)
    try:
        return open_result(path, "r", locking=locking)
    except ResultFileError as exc:
        if not os.path.isfile(path):
            raise ResultReadError(str(exc), "path") from None
        raise ResultReadError(str(exc), "open",
                              hdf5_message=_open_error(path, locking)) from None


def _open_error(path: str, locking: bool) -> str:
    """HDF5's message (one line) for a file that open_result could not open: it is opened
    again here, as open_result keeps only its own summary ('' if it opens now)."""
    try:
        h5py.File(path, "r", locking=locking).close()
    except OSError as exc:
        return _one_line(exc)
    return ""


def _datasets(f: h5py.File) -> tuple[list[str], dict[str, str], dict[str, tuple[int, ...]],
                                      list[str]]:
    """The datasets (checkpoints excluded), their units and shapes, and every group."""
    names: list[str] = []
    units: dict[str, str] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    groups: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Group):
            groups.append(name)
        elif isinstance(obj, h5py.Dataset) and not name.startswith("checkpoint"):
            names.append(name)
            shapes[name] = tuple(obj.shape) if obj.shape is not None else ()
            if "units" in obj.attrs:
                units[name] = _text(obj.attrs["units"])
    f.visititems(visit)
    return names, units, shapes, groups


def _device(f: h5py.File) -> DeviceInfo | None:
    if "device" not in f or not isinstance(f["device"], h5py.Group):
        return None
    g = f["device"]
    a = g.attrs

    def arr(k: str, dtype: Any = int) -> np.ndarray:
        return np.asarray(g[k][()], dtype) if k in g else np.zeros(0, dtype)

    def names(k: str) -> tuple[str, ...]:
        v = _value(a.get(k, "[]"))
        return tuple(str(x) for x in (v if isinstance(v, list) else [v]))
    return DeviceInfo(layer_names=names("layer_names"), lead_names=names("lead_names"),
                      size=tuple(int(x) for x in np.atleast_1d(a.get("size", []))),
                      planes=tuple(int(x) for x in np.atleast_1d(a.get("planes", []))),
                      coords=arr("coords"), layer_of_site=arr("layer_of_site"),
                      spin_sites=arr("spin_sites"), spin_layer=arr("spin_layer"))


def load_result(path: str) -> Result:
    """Open a file written by qcspin (any kind, format 1 or 2): its root attributes (JSON
    decoded), the datasets it holds (read on demand), their units, the device of a run and the
    stored config.  ResultFileError (one line) for a missing, damaged or foreign file.  Not
    collective (call it on the ranks that read)."""
    with _open(path) as f:
        try:
            kind = kind_of(f)
            if not kind:
                raise ResultReadError(f"'{path}' is an HDF5 file but not one qcspin wrote (no "
                                      f"qcspin attributes)", "foreign",
                                      members=tuple(sorted(f.keys())))
            attrs = {k: _value(v) for k, v in f.attrs.items()}
            names, units, shapes, groups = _datasets(f)
            device = _device(f) if kind == "run" else None
            tables: tuple[str, ...] = ()
            if kind != "run":   # J_eff tables: a jeff file, or groups of a figure's file
                root = (_text(f.attrs.get("qcspin_table", "")) == "jeff_sweep"
                        or _text(f.attrs.get("kind", "")) in ("jeff", "jeff_sweep"))
                tables = ("",) if root else tuple(_jeff_groups(f))
        except ResultReadError:
            raise
        except (OSError, KeyError, RuntimeError, ValueError, TypeError) as exc:
            # what h5py raises for damaged members; ValueError, TypeError: device attributes
            # that are not what qcspin writes
            raise ResultReadError(f"'{path}' is damaged: {' '.join(str(exc).split())}",
                                  "damaged", hdf5_message=_one_line(exc)) from None
    return Result(path=str(path), kind=kind, format=int(attrs.get("qcspin_format", 1)),
                  attrs=attrs, names=tuple(names), device=device, tables=tables,
                  groups=tuple(groups), _units=units, _shapes=shapes)


def read_table(path: str, group: str = "") -> tuple[dict[str, tuple[Any, str | None,
                                                                    str | None]], dict[str, Any]]:
    """The datasets and attributes of a table (a file written by
    :func:`toolkit.io.write_table`, or its group ``group``) in the form ``write_table`` takes
    them: ({name relative to ``group``: (array, units, description)}, attributes as stored,
    JSON texts undecoded), units and description None where a dataset has none; strings as
    Python ``str``.  So ``write_table(new, *read_table(old, "g"), kind=...)`` copies a table
    (dimension scales are not carried over).  ResultFileError (one line) for a missing file or
    group.  Not collective."""
    r = load_result(path)
    pre = f"{group.strip('/')}/" if group.strip("/") else ""
    with _open(path) as f:
        if pre and pre[:-1] not in f:
            raise ResultFileError(f"group {pre[:-1]!r} is not in '{path}'")
        out: dict[str, tuple[Any, str | None, str | None]] = {}
        for name in r.names:
            if not name.startswith(pre):
                continue
            ds = f[name]
            a = ds.attrs
            out[name[len(pre):]] = (_strings(ds)[()],
                                    _text(a["units"]) if "units" in a else None,
                                    _text(a["description"]) if "description" in a else None)
        attrs = dict((f[pre[:-1]] if pre else f).attrs)
    return out, attrs
