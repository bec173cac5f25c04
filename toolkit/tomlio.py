"""TOML in and out for config documents (plain dicts): reading a file with a one-line error,
and the value and table syntax of the resolved configs that qcspin writes into result files
(:func:`toolkit.config.config_to_toml`; the output round-trips through ``tomllib``).
"""
from __future__ import annotations

import tomllib
from typing import Any, Iterable

from .schema import ConfigError

__all__ = ["read_toml", "toml_value", "toml_document"]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def read_toml(path: str) -> dict:
    """The parsed TOML document of ``path``; anything else (a directory, binary data, non-UTF-8
    text, invalid TOML) is a ConfigError naming the path."""
    want = "expected a TOML config file"
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file '{path}' is a directory: {want}") from None
    except OSError as exc:
        raise ConfigError(f"config file '{path}' cannot be read ({exc.strerror}): {want}") from None
    if data.startswith(_HDF5_SIGNATURE):
        raise ConfigError(f"config file '{path}' is an HDF5 file (a result file?): {want}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file '{path}' is not UTF-8 text (byte {exc.start} = "
                          f"{data[exc.start]:#04x}): {want}") from None
    if "\x00" in text:
        raise ConfigError(f"config file '{path}' contains binary data (NUL bytes): {want}")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file '{path}' is not valid TOML: {exc}") from None


def toml_value(v: Any) -> str:
    """A TOML value (bool, int, float, str or a list of them)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def toml_document(top: dict, tables: Iterable[tuple[str, dict]],
                  arrays: Iterable[tuple[str, list]]) -> str:
    """TOML text: the ``top`` keys, then ``[name]`` tables (a key whose value is a dict becomes
    the sub-table ``[name.key]`` after the table's own keys), then ``[[name]]`` arrays of
    tables."""
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()] + [""]
    for name, t in tables:
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in t.items() if not isinstance(v, dict)]
        for k, sub in ((k, v) for k, v in t.items() if isinstance(v, dict)):
            lines.append(f"[{name}.{k}]")
            lines += [f"{kk} = {toml_value(vv)}" for kk, vv in sub.items()]
        lines.append("")
    for name, items in arrays:
        for item in items:
            lines.append(f"[[{name}]]")
            lines += [f"{k} = {toml_value(v)}" for k, v in item.items()]
            lines.append("")
    return "\n".join(lines)
