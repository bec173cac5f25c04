"""PETSc TS set-up: the RK 3/8 tableau, option prefixes, command line over config."""
from __future__ import annotations

import ctypes
import warnings

import numpy as np

from petsc4py import PETSc

from toolkit import _petscenv
from toolkit.config import SolverConfig

__all__ = ["register_rk38", "create_ts", "effective_options", "DEFAULT_PREFIX"]

DEFAULT_PREFIX = "qcspin_"
_RK38: bool | None = None

# Kutta's 3/8 rule (paper 004, Sec. II): classic fourth order, four stages
RK38_A = np.array([[0, 0, 0, 0], [1 / 3, 0, 0, 0], [-1 / 3, 1, 0, 0], [1, -1, 1, 0]], float)
RK38_B = np.array([1 / 8, 3 / 8, 3 / 8, 1 / 8])
RK38_C = np.array([0, 1 / 3, 2 / 3, 1.0])


def register_rk38() -> bool:
    """Register the 3/8 rule as TSRK type 'rk38' (ctypes; petsc4py 3.18 has no TSRKRegister)."""
    global _RK38
    if _RK38 is not None:
        return _RK38
    try:
        lib = _petscenv.libpetsc()
        D = ctypes.POINTER(ctypes.c_double)
        I = ctypes.c_int64 if np.dtype(PETSc.IntType).itemsize == 8 else ctypes.c_int32
        f = lib.TSRKRegister
        f.argtypes = [ctypes.c_char_p, I, I, D, D, D, D, I, D]
        err = f(b"rk38", 4, 4, RK38_A.ctypes.data_as(D), RK38_B.ctypes.data_as(D),
                RK38_C.ctypes.data_as(D), None, 0, None)
        _RK38 = err == 0
    except Exception:  # pragma: no cover - depends on the PETSc build
        _RK38 = False
    return _RK38


def _insert_defaults(prefix: str, defaults: dict[str, str]) -> list[str]:
    """Put options into the database unless the user already set them; return inserted names."""
    opts = PETSc.Options()
    inserted = []
    for k, v in defaults.items():
        name = prefix + k
        if not opts.hasName(name):
            opts.setValue(name, v)
            inserted.append(name)
    return inserted


def create_ts(comm: PETSc.Comm, rhs, F: PETSc.Vec, dt: float, solver: SolverConfig,
              prefix: str = DEFAULT_PREFIX) -> tuple[PETSc.TS, dict[str, str]]:
    """A TS for dy/dt = rhs(t, y) and the config options applied to it.  Collective.

    Order of precedence: code defaults < config ``[solver]`` < PETSc command-line options
    (``-qcspin_ts_type``, ``-qcspin_ts_rk_type``, ``-qcspin_ts_adapt_type``, ``-qcspin_ts_dt``...).
    """
    ts = PETSc.TS().create(comm=comm)
    ts.setOptionsPrefix(prefix)
    ts.setProblemType(PETSc.TS.ProblemType.NONLINEAR)
    rk_type = solver.rk_type
    if solver.ts_type == "rk" and rk_type == "rk38" and not register_rk38():
        warnings.warn("could not register the RK 3/8 tableau through libpetsc; using classic RK4",
                      RuntimeWarning, stacklevel=2)
        rk_type = "4"
    ts.setType(solver.ts_type)
    if solver.ts_type == "rk":
        ts.setRKType(rk_type)
    ts.setRHSFunction(rhs, F)
    ts.setTimeStep(dt)
    ts.setMaxSteps(2 ** 31 - 1)
    ts.setMaxTime(1e300)
    ts.setExactFinalTime(PETSc.TS.ExactFinalTime.STEPOVER)
    config_opts = dict(solver.options)
    config_opts.setdefault("ts_adapt_type", "none")
    inserted = _insert_defaults(prefix, config_opts)
    try:
        ts.setFromOptions()
    finally:
        opts = PETSc.Options()
        applied = {n: opts.getString(n) for n in inserted}
        for n in inserted:
            opts.delValue(n)
    return ts, applied


def effective_options(ts: PETSc.TS, applied: dict[str, str],
                      prefix: str = DEFAULT_PREFIX) -> dict[str, str]:
    """The TS settings actually in force plus every option under ``prefix``."""
    out = {f"{prefix}ts_type": ts.getType(), f"{prefix}ts_dt": repr(ts.getTimeStep())}
    if ts.getType() == "rk":
        out[f"{prefix}ts_rk_type"] = ts.getRKType()
    out.update(applied)
    for k, v in PETSc.Options().getAll().items():
        if k.startswith(prefix):
            out[k] = str(v)
    return out


def adaptive(applied: dict[str, str], prefix: str = DEFAULT_PREFIX) -> bool:
    """Whether the TS adapts its step (``-<prefix>ts_adapt_type`` other than none)."""
    name = prefix + "ts_adapt_type"
    value = applied.get(name) or PETSc.Options().getString(name, "none")
    return value not in ("none", "")
