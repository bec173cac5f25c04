"""The PETSc options database: options nobody used, the closest known name, checked values.

PETSc ignores an option that nothing queries: a misspelt ``-qcspin_ts_rk_typ 5dp``, an option
without the prefix (``-ts_rk_type 5dp``: the TS of qcspin reads ``-qcspin_ts_rk_type``) or one
for a solver the run does not use.  :func:`unused_options` lists them (``PetscOptionsLeftGet`` /
``PetscOptionsUsed`` through ctypes: petsc4py 3.18 does not wrap them), :func:`suggest` names
the closest option PETSc knows, :func:`unused_report` says both in one line per option.

The allowed values of the TS options that select a scheme or set a step or a tolerance are
checked before PETSc sees them (:func:`check_ts_options`): PETSc would stop with a traceback
(unknown type) or accept them silently (``-qcspin_ts_rtol -1``, ``-qcspin_ts_dt 0``).  Errors
are :class:`OptionError` (a :class:`toolkit.config.ConfigError`, hence a ``ValueError``) with a
one-line message naming the option, the value and what is allowed.

Nothing here is collective: every process has its own options database (the same on every
rank when the options come from the command line).
"""
from __future__ import annotations

import ctypes
import difflib
import math
import re
from functools import lru_cache
from typing import Iterable, Mapping

import numpy as np

from . import _petscenv
from .config import ConfigError

_petscenv.init()
from petsc4py import PETSc  # noqa: E402

__all__ = ["OptionError", "DEFAULT_PREFIX", "sub_prefix", "unused_options", "unused_report",
           "check_unused", "suggest", "known_options", "in_database", "not_ours", "ts_types",
           "rk_types", "arkimex_types", "ADAPT_TYPES", "check_choice", "check_ts_options",
           "petsc_message"]

DEFAULT_PREFIX = "qcspin_"

# TSAdaptRegisterAll of PETSc 3.18 (TSAdaptList is static in libpetsc; petsc4py 3.18 has no
# TSAdapt class): none, basic, dsp, cfl, glee, history
ADAPT_TYPES = ("none", "basic", "dsp", "cfl", "glee", "history")

# Options PETSc reads at start-up (PetscInitialize) or at the end (PetscFinalize), and global
# switches of other libraries: not ours to judge.  Inserted after PetscInitialize (as
# ``qcspin`` does), the start-up ones stay unused, although PETSc may have honoured them.
_NOT_OURS_EXACT = frozenset({
    "h", "help", "v", "version", "info", "log", "nox", "display", "history", "python",
    "objects_dump", "memory_view", "fp_trap", "no_signal_handler", "skip_petscrc",
    "check_pointer_intensity", "checkfunctionlist", "checkstack", "get_total_flops",
    "use_gpu_aware_mpi", "citations", "viewfromoptions", "x_virtual", "sleep", "compare",
    "start_in_debugger", "stop_for_debugger", "tmp", "shared_tmp", "not_shared_tmp",
})
_NOT_OURS_PREFIX = (
    "help_", "info_", "log_", "malloc", "memory_", "options_", "objects_", "on_error_",
    "debugger_", "start_in_debugger_", "stop_for_debugger_", "error_output_", "nox_",
    "saws_", "viewer_", "device_", "cuda_", "hip_", "sycl_", "kokkos_", "omp_", "blas_",
    "mpi_linear_solver_server", "petsc_ci", "slepc_", "fp_trap_", "compare_",
)


class OptionError(ConfigError):
    """A PETSc option, or the config key that sets one, has a value that is not allowed (or, in
    strict mode, was never used)."""


# ----------------------------------------------------------------------------- ctypes
def sub_prefix(prefix: str, name: str) -> str:
    """The options prefix of a PETSc object that belongs to the object of ``prefix``:
    ``prefix + name + "_"`` (``qcspin_`` -> ``qcspin_stationary_``, ``stage2_`` ->
    ``stage2_stationary_``).  Every qcspin object has a prefix (PETSc's global options never
    reach it by accident); ``prefix`` must be non-empty and end with '_'."""
    if not prefix or not prefix.endswith("_") or not prefix.replace("_", "").isalnum():
        raise ValueError(f"PETSc options prefix {prefix!r} is not allowed: expected letters "
                         f"and digits ending with '_' (e.g. 'qcspin_')")
    return f"{prefix}{name}_"


def _lib() -> ctypes.CDLL:
    return _petscenv.libpetsc()


def _pint():
    """ctypes type of PetscInt (32 or 64 bit, as the loaded PETSc was built)."""
    return ctypes.c_int64 if np.dtype(PETSc.IntType).itemsize == 8 else ctypes.c_int32


_CHARPP = ctypes.POINTER(ctypes.c_char_p)


def _left() -> list[str]:
    """Names (no leading '-') of the options never queried, as PetscOptionsLeftGet lists them."""
    lib = _lib()
    I = _pint()
    get, restore = lib.PetscOptionsLeftGet, lib.PetscOptionsLeftRestore
    for f in (get, restore):
        f.argtypes = [ctypes.c_void_p, ctypes.POINTER(I), ctypes.POINTER(_CHARPP),
                      ctypes.POINTER(_CHARPP)]
        f.restype = ctypes.c_int
    n, names, values = I(0), _CHARPP(), _CHARPP()
    if get(None, ctypes.byref(n), ctypes.byref(names), ctypes.byref(values)) != 0:
        raise RuntimeError("PetscOptionsLeftGet failed")
    try:
        return [names[i].decode() for i in range(n.value) if names[i]]
    finally:
        restore(None, ctypes.byref(n), ctypes.byref(names), ctypes.byref(values))


def _used(name: str) -> bool:
    """Whether option ``name`` (no '-') was queried (PetscOptionsUsed; False if not set)."""
    f = _lib().PetscOptionsUsed
    f.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]  # PetscBool
    f.restype = ctypes.c_int
    flag = ctypes.c_int(0)
    if f(None, name.encode(), ctypes.byref(flag)) != 0:
        raise RuntimeError("PetscOptionsUsed failed")
    return bool(flag.value)


def _database() -> dict[str, str]:
    """The options database, names lower-case without '-' (PetscOptionsGetAll: reading it does
    not mark anything used, unlike ``Options.hasName``/``getString``)."""
    return {k.lstrip("-").lower(): ("" if v is None else str(v))
            for k, v in PETSc.Options().getAll().items()}


# ----------------------------------------------------------------------------- renamed options
# Options PETSc renamed: (qcspin's documented spelling, the new one, the first PETSc version that
# reads only the new one).  qcspin accepts both spellings on every version and hands PETSc the one
# it reads (PETSc >= 3.25 would move -ts_dt to -ts_time_step itself, with a deprecation warning
# on stderr, so that deleting the name that was set leaves the value behind).
RENAMED = (("ts_dt", "ts_time_step", (3, 25)),
           ("ts_max_reject", "ts_max_step_rejections", (3, 25)))


def petsc_key(key: str) -> str:
    """The spelling of option ``key`` (no '-', no prefix; either spelling of a renamed option)
    that the loaded PETSc reads; other keys unchanged.  Not collective."""
    version = tuple(PETSc.Sys.getVersion()[:2])
    for old, new, since in RENAMED:
        if key in (old, new):
            return new if version >= since else old
    return key


def documented_key(key: str) -> str:
    """qcspin's spelling of option ``key`` (``ts_time_step`` -> ``ts_dt``); others unchanged."""
    return next((old for old, new, _ in RENAMED if key == new), key)


def spellings(name: str) -> tuple[str, ...]:
    """Every spelling of option ``name`` (with or without '-' and a prefix), without '-':
    ``qcspin_ts_dt`` -> (``qcspin_ts_dt``, ``qcspin_ts_time_step``)."""
    n = name.lstrip("-").lower()
    for old, new, _ in RENAMED:
        for a, b in ((old, new), (new, old)):
            if n.endswith(a) and (len(n) == len(a) or n[-len(a) - 1] == "_"):
                return n, n[:-len(a)] + b
    return (n,)


def normalize_renamed(prefix: str = DEFAULT_PREFIX) -> None:
    """Move renamed options under ``prefix`` given in the spelling the loaded PETSc does not
    read to the one it reads (``-qcspin_ts_dt`` -> ``-qcspin_ts_time_step`` on PETSc >= 3.25 and
    back on older ones); the spelling PETSc reads wins when both are set.  Not collective."""
    db = _database()
    opts = PETSc.Options()
    for old, new, _ in RENAMED:
        want = petsc_key(old)
        other = new if want == old else old
        if prefix + other in db:
            if prefix + want not in db:
                opts.setValue(prefix + want, db[prefix + other])
            opts.delValue(prefix + other)


def in_database(name: str) -> bool:
    """Whether ``name`` is set, without marking it used (``PETSc.Options().hasName`` does)."""
    return name.lstrip("-").lower() in _database()


# ----------------------------------------------------------------------------- unused options
def not_ours(name: str) -> bool:
    """Options PETSc itself consumes at start-up or finalization (``-log_view``, ``-malloc_debug``,
    ``-options_left``, ``-help``, ``-info`` ...) and one-letter names: never reported as
    unused."""
    n = name.lstrip("-").lower()
    # one letter: the interpreter's own flags (``python -c``: argv[0] = '-c' reaches PETSc)
    return len(n) <= 1 or n in _NOT_OURS_EXACT or n.startswith(_NOT_OURS_PREFIX)


def unused_options(names: Iterable[str] | None = None) -> list[str]:
    """Options in the database that nothing queried so far, as ``'-name'``, in database order.

    ``names``: check only these (with or without '-', e.g. the ones given on the command line;
    names not in the database are skipped); None: the whole database.  Options PETSc consumes
    at start-up or at the end (:func:`not_ours`) are left out.  Call it after the objects that
    read the options are set up (for a run: after ``create_ts`` and the first step; the TS reads
    its options in ``setFromOptions``).  Not collective.
    """
    if names is None:
        left = [n.lower() for n in _left()]
    else:
        db = _database()
        left = [k for k in (str(n).lstrip("-").lower() for n in names)
                if k and k in db and not _used(k)]
    return ["-" + n for n in dict.fromkeys(left) if not not_ours(n)]


_FAMILIES = ("ts", "snes", "ksp", "pc")
_FALLBACK = (
    "ts_type", "ts_rk_type", "ts_arkimex_type", "ts_adapt_type", "ts_dt", "ts_rtol", "ts_atol",
    "ts_max_time", "ts_max_steps", "ts_monitor", "ts_adapt_monitor", "ts_view",
    "ts_exact_final_time", "ts_adapt_dt_min", "ts_adapt_dt_max", "ts_adapt_safety",
    "ts_adapt_clip", "ts_max_reject", "ts_error_if_step_fails", "ts_time_step",
    "ts_max_step_rejections", "snes_type", "snes_monitor",
    "snes_rtol", "snes_atol", "snes_max_it", "snes_view", "ksp_type", "ksp_monitor", "ksp_rtol",
    "ksp_atol", "ksp_max_it", "ksp_view", "pc_type", "pc_factor_mat_solver_type",
)


@lru_cache(maxsize=None)
def known_options() -> tuple[str, ...]:
    """Names (no '-', no prefix) of the TS/TSAdapt, SNES, KSP and PC options of the loaded
    PETSc: the ``-ts_...``, ``-snes_...``, ``-ksp_...``, ``-pc_...`` literals in libpetsc's
    string table (541 for Debian's 3.18), or a short list of the common ones if the library
    file cannot be read.  Not collective."""
    try:
        path = _lib()._name
        with open(path, "rb") as f:
            data = f.read()
    except (OSError, TypeError, AttributeError):
        return _FALLBACK
    fam = "|".join(_FAMILIES).encode()
    pat = rb"(?<=\x00)-((?:" + fam + rb")_[a-z0-9_]+)(?=\x00)"
    names = {m.decode() for m in re.findall(pat, data)}
    return tuple(sorted(names | set(_FALLBACK))) if names else _FALLBACK


def _known_form(rest: str, known: frozenset) -> bool:
    """``rest`` is a known option or one under a sub-prefix (``stationary_ksp_type``)."""
    if rest in known:
        return True
    parts = rest.split("_")
    return any("_".join(parts[i:]) in known for i in range(1, len(parts)))


def suggest(name: str, prefix: str = DEFAULT_PREFIX, cutoff: float = 0.8) -> str | None:
    """The closest known option to ``name`` (``'-name'``), or None when ``name`` already is a
    known option under ``prefix`` or nothing is close.  ``-ts_rk_type`` -> ``-qcspin_ts_rk_type``
    (options need the prefix); ``-qcspin_ts_rk_typ`` -> ``-qcspin_ts_rk_type``.  Not collective.
    """
    key = name.lstrip("-").lower()
    known = known_options()
    kset = frozenset(known)
    if key.startswith(prefix):
        rest = key[len(prefix):]
        if _known_form(rest, kset):
            return None
    else:
        rest = key
        if rest in kset:
            return f"-{prefix}{rest}"
    match = difflib.get_close_matches(rest, known, n=1, cutoff=cutoff)
    return f"-{prefix}{match[0]}" if match else None


def _describe(name: str, value: str, prefix: str) -> str:
    key = name.lstrip("-").lower()
    shown = f"-{key}" + (f" {value}" if value else "")
    hint = suggest(key, prefix)
    if not key.startswith(prefix):
        why = f"options need the {prefix} prefix"
        return f"{shown}: not used ({why}" + (f"; did you mean {hint}?)" if hint else ")")
    if hint:
        return f"{shown}: not used (unknown option; did you mean {hint}?)"
    rest = key[len(prefix):]
    if _known_form(rest, frozenset(known_options())):
        return (f"{shown}: not used (a PETSc option, but nothing in this run reads it: it is "
                f"for another TS type or solver, or read only by TSSolve)")
    return f"{shown}: not used (unknown option)"


def unused_report(names: Iterable[str] | None = None, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """One line per unused option (:func:`unused_options`) with the closest known name, e.g.
    ``-ts_rk_type 5dp: not used (options need the qcspin_ prefix; did you mean
    -qcspin_ts_rk_type?)``.  Not collective."""
    db = _database()
    return [_describe(n, db.get(n[1:], ""), prefix) for n in unused_options(names)]


def check_unused(names: Iterable[str] | None = None, prefix: str = DEFAULT_PREFIX,
                 strict: bool = False) -> list[str]:
    """:func:`unused_report`; with ``strict`` raise :class:`OptionError` if it is not empty.
    Not collective (the same answer on every rank for options given on the command line)."""
    lines = unused_report(names, prefix)
    if strict and lines:
        raise OptionError("PETSc options that nothing uses (refused by --strict): "
                          + "; ".join(lines))
    return lines


# ----------------------------------------------------------------------------- allowed values
def _function_list(symbol: str) -> tuple[str, ...]:
    """Names in the PetscFunctionList ``symbol`` of libpetsc (e.g. ``TSList``), or ()."""
    lib = _lib()
    try:
        head = ctypes.c_void_p.in_dll(lib, symbol)
        get = lib.PetscFunctionListGet
        free_addr = ctypes.c_void_p.in_dll(lib, "PetscTrFree").value
        assert free_addr is not None  # libpetsc initialises PetscTrFree statically (never NULL)
        free = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p,
                                ctypes.c_char_p)(free_addr)
    except (ValueError, AttributeError):  # pragma: no cover - a static or other PETSc build
        return ()
    get.argtypes = [ctypes.c_void_p, ctypes.POINTER(_CHARPP), ctypes.POINTER(ctypes.c_int)]
    get.restype = ctypes.c_int
    arr, n = _CHARPP(), ctypes.c_int(0)
    if not head.value or get(head, ctypes.byref(arr), ctypes.byref(n)) != 0:
        return ()
    try:
        out = []
        for i in range(n.value):
            if not arr[i]:
                break
            out.append(arr[i].decode())
        return tuple(out)
    finally:
        free(ctypes.cast(arr, ctypes.c_void_p), 0, b"ts_types", b"toolkit/petsc_options.py")


def _enum_values(enum) -> tuple[str, ...]:
    return tuple(sorted({v for k, v in vars(enum).items()
                         if not k.startswith("_") and isinstance(v, str)}))


@lru_cache(maxsize=None)
def ts_types() -> tuple[str, ...]:
    """The registered TS types (PETSc's TSList, sorted; petsc4py's ``PETSc.TS.Type`` names if
    the list cannot be read).  Not collective."""
    PETSc.TS().create(comm=PETSc.COMM_SELF).destroy()   # TSInitializePackage: fills TSList
    return tuple(sorted(_function_list("TSList"))) or _enum_values(PETSc.TS.Type)


def rk_types(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The TSRK types (petsc4py's ``PETSc.TS.RKType``, as TSRKRegisterAll registers them) after
    ``extra`` (ours: 'rk38', if registered)."""
    base = _enum_values(PETSc.TS.RKType)
    extra = tuple(e for e in extra if e not in base)
    return extra + base


def arkimex_types() -> tuple[str, ...]:
    """The TSARKIMEX types (petsc4py's ``PETSc.TS.ARKIMEXType``)."""
    return _enum_values(PETSc.TS.ARKIMEXType)


def _fail(key: str, value, allowed: str, source: str, prefix: str) -> None:
    if source == "option":
        shown = f"-{prefix}{key}" + (f" {value}" if value != "" else "")
        raise OptionError(f"PETSc option {shown} is not allowed: {allowed}")
    raise OptionError(f"config key '{source}' = {value!r} is not allowed: {allowed}")


def check_choice(key: str, value: str, allowed: Iterable[str], source: str = "option",
                 prefix: str = DEFAULT_PREFIX, ignore_case: bool = False, why: str = "") -> None:
    """OptionError unless ``value`` is one of ``allowed``.  ``source``: 'option' (the PETSc
    option ``-<prefix><key>``) or a config key such as 'solver.rk_type'."""
    allowed = list(allowed)
    ok = (value.lower() in {a.lower() for a in allowed}) if ignore_case else value in allowed
    if not ok:
        _fail(key, value, f"expected one of {allowed}{why}", source, prefix)


# option -> (lower bound, bound allowed, integer)
_NUMBERS = {"ts_dt": (0.0, False, False), "ts_rtol": (0.0, True, False),
            "ts_atol": (0.0, True, False), "ts_max_time": (0.0, False, False),
            "ts_max_steps": (0, True, True)}


def _check_number(key: str, value: str, source: str, prefix: str, shown: str = "") -> None:
    lo, closed, integer = _NUMBERS[key]
    key = shown or key
    rel = ">=" if closed else ">"
    what = f"expected {'an integer' if integer else 'a finite number'} {rel} {lo:g}"
    try:
        x = float(value)
    except (TypeError, ValueError):
        _fail(key, value, what, source, prefix)
    if not math.isfinite(x) or (integer and not x.is_integer()) or x < lo or (
            x == lo and not closed):
        _fail(key, value, what, source, prefix)


def check_ts_options(prefix: str = DEFAULT_PREFIX, config: Mapping[str, str] | None = None, *,
                     ts_allowed: Iterable[str] | None = None,
                     extra_rk_types: Iterable[str] = ()) -> None:
    """Check the TS options that choose a scheme, a step or a tolerance: first those in the
    options database (``-<prefix>ts_type`` ...), else those of ``config`` (the
    ``[solver.options]`` table, reported as ``solver.options.<name>``).  ``ts_allowed``: the
    TS types allowed (default: every registered type but 'python').  Raises OptionError.
    Reading the values marks nothing used.  Not collective."""
    # as given (either spelling of a renamed option, named as given), then as PETSc reads it
    db = {documented_key(k[len(prefix):]): (k, v) for k, v in _database().items()
          if k.startswith(prefix)}
    normalize_renamed(prefix)
    given = {documented_key(k.lower()): (k, str(v)) for k, v in (config or {}).items()}
    allowed_ts = list(ts_allowed) if ts_allowed is not None else [
        t for t in ts_types() if t != "python"]
    choices = {
        "ts_type": (allowed_ts, False),
        "ts_rk_type": (rk_types(extra_rk_types), True),      # PetscOptionsEList: any case
        "ts_arkimex_type": (arkimex_types(), True),
        "ts_adapt_type": (ADAPT_TYPES, False),
    }
    for key in (*choices, *_NUMBERS):
        if key in db:  # as given or as PETSc reads it
            name, value = db[key]
            shown, source = name[len(prefix):], "option"
        elif key in given:
            shown, value = given[key]
            source = f"solver.options.{shown}"
        else:
            continue
        if key in choices:
            allowed, icase = choices[key]
            check_choice(shown, value, allowed, source, prefix, icase)
        else:
            _check_number(key, value, source, prefix, shown)


def petsc_message(exc: BaseException) -> str:
    """The last line of a PETSc error (its reason), without the '[0] ' rank tag."""
    lines = [l.strip() for l in str(exc).splitlines() if l.strip()]
    return re.sub(r"^\[\d+\]\s*", "", lines[-1]) if lines else repr(exc)
