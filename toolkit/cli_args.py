"""Options and checks of command-line values shared by the ``qcspin`` commands (each
command's parser and output live in its own ``*_cli`` module; toolkit/cli.py registers them):
:func:`add_output_args` (``-o/--output``, ``--png``, ``--overwrite``) and :func:`add_set_arg`
(``--set KEY=VALUE``) declare the common options the same way in every command.

    >>> values("0:1:0.25")
    [0.0, 0.25, 0.5, 0.75, 1.0]
    >>> values("1,3.3,5")
    [1.0, 3.3, 5.0]

Errors name the flag or value and what is allowed, in one line (ConfigError / argparse's
ArgumentTypeError), on every rank.
"""
from __future__ import annotations

import argparse
import math
import os

import numpy as np

from .io import FileExistsErrorQC
from .parallel import bcast, get_comm
from .schema import ConfigError

__all__ = ["RANGE_LIMIT", "values", "range_arg", "number", "check_outputs", "RANGE_HELP",
           "add_output_args", "add_set_arg"]

#: most values a START:STOP:STEP range or a list of the command line may have (a typo such as
#: a step of 1e-9 would otherwise allocate without bound or run for ever)
RANGE_LIMIT = 10 ** 6
RANGE_HELP = "expected START:STOP:STEP (finite numbers, step > 0, stop >= start; stop included)"
LIST_HELP = RANGE_HELP + " or V1,V2,... (finite numbers)"
#: help of --overwrite where a command has nothing to add
OVERWRITE_HELP = "replace existing output files"


def add_output_args(p: argparse.ArgumentParser, output: str | None, *,
                    default: str | None = None, png: str | bool = False,
                    overwrite: str | bool = True) -> None:
    """The output options of a command, in this order: ``-o/--output`` (dest ``output``,
    default ``default``; help ``output``, which says what is written and the default; left out
    when ``output`` is None), ``--png`` (dest ``png``, default None; when ``png``: help "also
    write a PNG", with "of <png>" when it is a text) and ``--overwrite`` (store_true; help
    :data:`OVERWRITE_HELP`, or ``overwrite`` when it is a text; left out when False)."""
    if output is not None:
        p.add_argument("-o", "--output", default=default, help=output)
    if png:
        p.add_argument("--png", help="also write a PNG" + (f" of {png}" if isinstance(png, str)
                                                            else ""))
    if overwrite:
        p.add_argument("--overwrite", action="store_true",
                       help=overwrite if isinstance(overwrite, str) else OVERWRITE_HELP)


def add_set_arg(p: argparse.ArgumentParser, *, what: str = "a config value",
                example: str = "time.dt=0.05", note: str = "") -> None:
    """``--set KEY=VALUE`` (repeatable: dest ``set``, a list, default []; the overrides of
    :func:`toolkit.overrides.apply_overrides`), help "override ``what``, e.g. --set
    ``example`` (repeatable; ``note``)"."""
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override {what}, e.g. --set {example} (repeatable"
                        + (f"; {note})" if note else ")"))


def values(spec: str, *, lists: bool = True, decimals: int | None = None) -> list[float]:
    """``start:stop:step`` -> start + k step for k = 0, 1, ... up to stop (included when on the
    grid, to 1e-9 of a step), or (``lists``) ``v1,v2,...``; finite numbers, at most
    :data:`RANGE_LIMIT` of them.  ``decimals``: grid values rounded to that many decimals
    (``round(x, decimals)``).  ValueError saying what is allowed otherwise."""
    allowed = LIST_HELP if lists else RANGE_HELP
    if ":" in spec or not lists:
        try:
            a, b, h = (float(s) for s in spec.split(":"))
        except ValueError:
            raise ValueError(allowed) from None
        if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(h) and h > 0
                and b >= a):
            raise ValueError(allowed)
        q = (b - a) / h
        n = math.floor(q + 1e-9) + 1 if math.isfinite(q) else math.inf
        if n > RANGE_LIMIT:
            raise ValueError(f"it gives {n:.3g} values; expected at most {RANGE_LIMIT} (a "
                             f"larger step)")
        grid = [a + h * k for k in range(int(n))]
        return grid if decimals is None else [round(x, decimals) for x in grid]
    try:
        vals = [float(s) for s in spec.split(",")]  # '' (an empty item) is refused here too
    except ValueError:
        raise ValueError(allowed) from None
    if not all(math.isfinite(v) for v in vals):
        raise ValueError(allowed)
    if len(vals) > RANGE_LIMIT:
        raise ValueError(f"it gives {len(vals)} values; expected at most {RANGE_LIMIT}")
    return vals


def range_arg(text: str) -> np.ndarray:
    """argparse ``type`` for START:STOP:STEP (:func:`values` without lists) as an array."""
    try:
        return np.array(values(text, lists=False))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: {exc}") from None


def values_arg(text: str) -> np.ndarray:
    """argparse ``type`` for START:STOP:STEP or V1,V2,... (grid rounded to 12 decimals)."""
    try:
        return np.array(values(text, decimals=12))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: {exc}") from None


def number(flag: str, value, *, integer: bool = False, gt: float | None = None,
           ge: float | None = None, le: float | None = None, lt: float | None = None):
    """``value`` (None = not given, accepted) must be a finite number (an integer if
    ``integer``) with value > gt, >= ge, <= le, < lt; otherwise ConfigError ``FLAG = VALUE is
    not allowed: expected ...``.  Returns ``value``.  Not collective."""
    if value is None:
        return value
    bounds = [(gt, ">", lambda x, b: x > b), (ge, ">=", lambda x, b: x >= b),
              (le, "<=", lambda x, b: x <= b), (lt, "<", lambda x, b: x < b)]
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
          and np.isfinite(value) and (not integer or float(value).is_integer())
          and all(test(value, b) for b, _, test in bounds if b is not None))
    if not ok:
        what = " and ".join(f"{op} {b:g}" for b, op, _ in bounds if b is not None)
        raise ConfigError(f"{flag} = {value!r} is not allowed: expected "
                          f"{'an integer' if integer else 'a finite number'}"
                          f"{' ' + what if what else ''}")
    return value


def check_outputs(paths: dict, overwrite: bool, comm=None) -> None:
    """Output files {flag: path or None} checked before any work: a directory, a missing or
    read-only parent directory, one path given twice (ConfigError) and an existing file
    without ``overwrite`` (FileExistsErrorQC) are refused on every rank.  Collective (rank 0
    looks at the file system)."""
    comm = get_comm(comm)
    err = None
    if comm.getRank() == 0:
        seen: dict[str, str] = {}
        for flag, path in paths.items():
            if not path:
                continue
            full = os.path.abspath(path)
            parent = os.path.dirname(full)
            if os.path.isdir(path):
                err = ("config", f"{flag} = {path!r} is not allowed: it is a directory; give a "
                                 f"file name")
            elif not os.path.isdir(parent):
                err = ("config", f"{flag} = {path!r} is not allowed: directory '{parent}' does "
                                 f"not exist; create it first")
            elif not os.access(parent, os.W_OK | os.X_OK):
                err = ("config", f"{flag} = {path!r} is not allowed: directory '{parent}' is "
                                 f"not writable")
            elif full in seen:
                err = ("config", f"{flag} = {path!r} is not allowed: it is also the "
                                 f"{seen[full]} file")
            elif os.path.exists(path) and not overwrite:
                err = ("exists", f"output file '{path}' ({flag}) exists; use --overwrite to "
                                 f"replace it")
            if err:
                break
            seen[full] = flag
    err = bcast(err, comm)
    if err:
        raise (FileExistsErrorQC if err[0] == "exists" else ConfigError)(err[1])
