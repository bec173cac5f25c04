"""Value checks and declarative key schemas: every input check of qcspin is written once here.

Two naming styles share the same checks: config keys (``ConfigError``: "config key
'leads[0].sites' = 0 is not allowed: expected an integer >= 1") and arguments of the Python API
(``ValueError``: "sites = 0 is not allowed: expected an integer >= 1").  A message always names
the key, the value and what is allowed.

    >>> real("gamma", -1.0, positive=True)
    Traceback (most recent call last):
    ...
    ValueError: gamma = -1.0 is not allowed: expected a number > 0

A :class:`Schema` is a tuple of :class:`Key` declarations (name, kind, constraint, default,
documentation); ``Schema.validate`` checks one config table against it.  The lead models'
schemas are in toolkit/lead_schema.py (each ``operators.leads`` model class points to its own).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Mapping, NoReturn

from .errors import InputError

__all__ = ["ConfigError", "fail", "real", "integer", "boolean", "string", "Key", "Schema"]


class ConfigError(InputError):
    """A configuration key has a value that is not allowed."""


def fail(name: str, value: Any, allowed: str, exc: type[Exception] = ValueError) -> NoReturn:
    """Raise ``exc("<name> = <value!r> is not allowed: <allowed>")``."""
    raise exc(f"{name} = {value!r} is not allowed: {allowed}")


def real(name: str, v: Any, *, positive: bool = False, nonneg: bool = False,
         exc: type[Exception] = ValueError) -> float:
    """A finite real number (not a bool), optionally > 0 or >= 0, as float."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        fail(name, v, "expected a finite real number", exc)
    if positive and v <= 0:
        fail(name, v, "expected a number > 0", exc)
    if nonneg and v < 0:
        fail(name, v, "expected a number >= 0", exc)
    return float(v)


def integer(name: str, v: Any, *, minimum: int | None = None,
            exc: type[Exception] = ValueError) -> int:
    """An integer (not a bool), optionally >= ``minimum``, as int."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        fail(name, v, "expected an integer", exc)
    if minimum is not None and v < minimum:
        fail(name, v, f"expected an integer >= {minimum}", exc)
    return int(v)


def boolean(name: str, v: Any, exc: type[Exception] = ValueError) -> bool:
    if not isinstance(v, bool):
        fail(name, v, "expected true or false", exc)
    return v


def string(name: str, v: Any, choices: tuple[str, ...] | None = None,
           exc: type[Exception] = ValueError) -> str:
    if not isinstance(v, str) or (choices is not None and v not in choices):
        fail(name, v, f"expected one of {list(choices)}" if choices else "expected a string",
             exc)
    return v


def reals(name: str, v: Any, *, length: int | None = None,
          exc: type[Exception] = ValueError) -> float | tuple[float, ...]:
    """One number > 0, or a non-empty list of numbers >= 0, not all 0 (of ``length`` if given):
    e.g. a broadening per orbital."""
    if not isinstance(v, (list, tuple)):
        return real(name, v, positive=True, exc=exc)
    what = f"{length} numbers >= 0" if length is not None else "a list of numbers >= 0"
    if not v or (length is not None and len(v) != length):
        fail(name, v if len(v) <= 8 else f"<{len(v)} values>",
             f"expected a number > 0 or {what}, not all 0", exc)
    vals = tuple(real(f"{name}[{k}]", x, nonneg=True, exc=exc) for k, x in enumerate(v))
    if not any(vals):
        fail(name, v, "expected at least one value > 0", exc)
    return vals


_KINDS = ("real", "int", "str", "reals")


@dataclass(frozen=True)
class Key:
    """One key of a config table.

    kind     : 'real' (finite float), 'int', 'str' (``choices`` if given) or 'reals' (a
               number > 0 or a list of numbers >= 0, see :func:`reals`)
    default  : the value an absent key takes (None: none, or resolved by the model; ``doc``
               says which)
    required : the key must be given
    positive, nonneg, minimum, choices : the constraint
    doc      : one line for the reference (units included)
    """

    name: str
    kind: str
    doc: str = ""
    default: Any = None
    required: bool = False
    positive: bool = False
    nonneg: bool = False
    minimum: int | None = None
    choices: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"Key {self.name!r}: kind {self.kind!r} not in {_KINDS}")

    @property
    def constraint(self) -> str:
        """The constraint as text ('> 0', '>= 1', "in ['a', 'b']"; '' for none)."""
        return ("> 0" if self.positive else ">= 0" if self.nonneg else
                f">= {self.minimum}" if self.minimum is not None else
                f"in {list(self.choices)}" if self.choices else "")

    def check(self, name: str, v: Any, exc: type[Exception] = ValueError, **context) -> Any:
        """The validated value of ``v`` (messages name ``name``); ``context``: ``length`` for
        'reals'."""
        if self.kind == "real":
            return real(name, v, positive=self.positive, nonneg=self.nonneg, exc=exc)
        if self.kind == "int":
            return integer(name, v, minimum=self.minimum, exc=exc)
        if self.kind == "str":
            return string(name, v, self.choices, exc=exc)
        return reals(name, v, length=context.get("length"), exc=exc)

    def resolve(self, name: str, v: Any, exc: type[Exception] = ValueError, **context) -> Any:
        """:meth:`check`, with None meaning the default (which may be None)."""
        return self.default if v is None else self.check(name, v, exc, **context)


@dataclass(frozen=True)
class Schema:
    """The keys of one kind of config table, in documentation order."""

    keys: tuple[Key, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys if k.required)

    def __getitem__(self, name: str) -> Key:
        for k in self.keys:
            if k.name == name:
                return k
        raise KeyError(name)

    def validate(self, section: str, table: Mapping[str, Any], **context) -> dict[str, Any]:
        """The given keys of ``table`` validated (ConfigError naming ``section.key``); keys not
        in the schema are the caller's to refuse.  ``context`` goes to :meth:`Key.check`."""
        for name in self.required:
            if name not in table:
                fail(f"config key '{section}.{name}'", None, "missing required key", ConfigError)
        return {k.name: k.check(f"config key '{section}.{k.name}'", table[k.name], ConfigError,
                                **context)
                for k in self.keys if k.name in table}

    def reference(self) -> str:
        """The keys as a reference list (name, kind, default, doc), one per line."""
        lines = []
        for k in self.keys:
            d = " (required)" if k.required else ("" if k.default is None
                                                     else f" (default {k.default!r})")
            c = f" {k.constraint}" if k.constraint else ""
            lines.append(f"{k.name} : {k.kind}{c}{d}  {k.doc}")
        return "\n".join(lines)
