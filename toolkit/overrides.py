"""The ``--set section.key=value`` language: overrides applied to a config document (a dict
parsed from TOML) before validation.

    >>> apply_overrides(doc, ["layers.PL.J_sd=3", "leads.left.mu=0.1", "time.dt=0.05"])

A value is parsed as TOML (``3``, ``0.1``, ``"fermi"``, ``[1, 0, 0]``, ``{...}``), else taken as
a string.  Entries of an array are selected by index (``layers.0.J_sd=3``) or, for [[layers]]
and [[leads]], by name (a lead's name defaults to its side); a number always means an index.
Errors name the override, the value and what is allowed (:class:`toolkit.schema.ConfigError`).
"""
from __future__ import annotations

import tomllib
from typing import Any, NoReturn

from .schema import ConfigError, fail

__all__ = ["apply_overrides"]


def _fail(key: str, value: Any, allowed: str) -> NoReturn:
    fail(f"config key '{key}'", value, allowed, ConfigError)


_ARRAYS = ("layers", "bonds", "exchange", "leads")   # arrays of tables at the top level


def _entry_names(section: str, items: list) -> list:
    """Names that select entries of [[layers]] (``name``, default 'layer<i>') and [[leads]]
    (``name``, default the ``side``), as :func:`config_from_dict` assigns them."""
    if section not in ("layers", "leads"):
        return []
    names: list[Any] = []
    for i, it in enumerate(items):
        if not isinstance(it, dict):
            names.append(None)
        else:
            names.append(it.get("name", f"layer{i}" if section == "layers" else it.get("side")))
    return names


def _index(node: list, k: str, where: str, item: str, value: Any) -> int:
    """The list position that the override path part ``k`` selects in ``node`` (= ``where``)."""
    names = _entry_names(where, node)
    if k.isdigit() and k.isascii() and int(k) < len(node):
        return int(k)
    if not k.isdigit() and k in names:
        return names.index(k)
    if not node:
        _fail(item, value, f"'{where}' is empty; set the whole array, e.g. --set '{where}=[...]'")
    if names:
        listed = ", ".join(f"{i} = {n!r}" for i, n in enumerate(names))
        _fail(item, value, f"there are {len(node)} [[{where}]] ({listed}); select one by index "
              f"0..{len(node) - 1} or by name")
    _fail(item, value, f"'{where}' has {len(node)} entries; expected an index 0..{len(node) - 1}")
    return -1  # unreachable


def _child(node: Any, k: str, where: str, item: str, value: Any, last: bool) -> tuple[Any, Any]:
    """(container, key) for path part ``k`` below ``node`` (the value at ``where``)."""
    if isinstance(node, list):
        return node, _index(node, k, where, item, value)
    if not isinstance(node, dict):
        _fail(item, value, f"'{where}' = {node!r} is a value, not a table, so it has no key '{k}'")
    if not last and k not in node:
        if not where and k in _ARRAYS:
            _fail(item, value, f"the config has no [[{k}]]; add them to the file or set the "
                  f"whole array, e.g. --set '{k}=[{{...}}]'")
        node[k] = {}
    return node, k


def apply_overrides(d: dict, overrides: list[str]) -> dict:
    """Apply ``section.key=value`` strings (value parsed as TOML, else taken as a string) to a
    config dict.  Entries of an array are selected by index (``layers.0.J_sd=3``) or, for
    [[layers]] and [[leads]], by name (``layers.PL.J_sd=3``, ``leads.left.mu=0.1``; a lead's
    name defaults to its side); a number always means an index."""
    import copy

    d = copy.deepcopy(d)
    for item in overrides:
        path, _, text = item.partition("=")
        keys = [k.strip() for k in path.split(".")]
        if "=" not in item or not all(keys):
            raise ConfigError(f"override '{item}' is not allowed: expected section.key=value")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        node: Any = d
        for n, k in enumerate(keys):
            where = ".".join(keys[:n])
            parent, key = _child(node, k, where, ".".join(keys), value, n == len(keys) - 1)
            if n == len(keys) - 1:
                parent[key] = value
            else:
                node = parent[key]
    return d
