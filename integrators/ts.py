"""PETSc TS set-up: the RK 3/8 tableau, option prefixes, command line over config, and the
two treatments of a stiff diagonal linear part L (the pole decay of open junctions):

* ``solver.stiff = "expint"``: Krogstad's exponential RK4, L exactly (:mod:`integrators.expint`,
  TS type ``python``; fixed step).
* ``solver.stiff = "imex"``: PETSc ``TSARKIMEX`` with L in the implicit part, IFunction
  G = ydot - L y, IJacobian shift I - L (a diagonal AIJ matrix), RHS function = the rest; the
  implicit solve is exact (SNES ``ksponly``, KSP ``preonly``, PC ``jacobi``).  Default type
  ``-qcspin_ts_arkimex_type 4`` (ARK4(3)6L[2]SA, order 4, L-stable implicit part), fixed step
  unless ``-qcspin_ts_adapt_type`` says otherwise.
"""
from __future__ import annotations

import ctypes
import warnings

import numpy as np

from petsc4py import PETSc

from toolkit import _petscenv
from toolkit.config import SolverConfig

__all__ = ["register_rk38", "create_ts", "effective_options", "DEFAULT_PREFIX", "STIFF_TS_TYPE",
           "IMEX_DEFAULTS"]

DEFAULT_PREFIX = "qcspin_"
_RK38: bool | None = None
STIFF_TS_TYPE = {"expint": "python", "imex": "arkimex"}
# code defaults of the imex scheme (config [solver.options] and the command line win)
IMEX_DEFAULTS = {"ts_arkimex_type": "4", "snes_type": "ksponly", "ksp_type": "preonly",
                 "pc_type": "jacobi"}

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
              prefix: str = DEFAULT_PREFIX, linear=None) -> tuple[PETSc.TS, dict[str, str]]:
    """A TS for dy/dt = rhs(t, y) [+ L y] and the config options applied to it.  Collective.

    Order of precedence: code defaults < config ``[solver]`` < PETSc command-line options
    (``-qcspin_ts_type``, ``-qcspin_ts_rk_type``, ``-qcspin_ts_adapt_type``, ``-qcspin_ts_dt``...).

    ``linear``: a :class:`integrators.expint.DiagonalLinear` L that ``rhs`` leaves out; it is
    integrated by the scheme ``solver.stiff`` ('expint' or 'imex', see the module docstring).
    Without ``linear`` (closed systems, or ``solver.stiff = 'none'``) ``solver.stiff`` is not
    used.  The TS type of a stiff scheme is fixed: a ``-qcspin_ts_type`` naming another type
    raises ValueError, as does an adaptive step with 'expint'.
    """
    stiff = "none" if linear is None else solver.stiff
    if stiff not in ("none", *STIFF_TS_TYPE):
        raise ValueError(f"solver.stiff = {solver.stiff!r} is not allowed: expected one of "
                         f"{['none', *STIFF_TS_TYPE]}")
    if linear is not None and stiff == "none":
        raise ValueError("create_ts: a linear part L was given but solver.stiff = 'none'; "
                         "the right-hand side must then include L")
    ts = PETSc.TS().create(comm=comm)
    ts.setOptionsPrefix(prefix)
    ts.setProblemType(PETSc.TS.ProblemType.NONLINEAR)
    defaults: dict[str, str] = {}
    if stiff == "none":
        _set_explicit_type(ts, solver)
    elif stiff == "expint":
        from .expint import ExpRK, track

        ts.setType("python")
        ts.setPythonContext(ExpRK(linear))
        track(ts)
    else:
        ts.setType("arkimex")
        _ImplicitDecay(linear, F).attach(ts)
        defaults = dict(IMEX_DEFAULTS)
    ts.setRHSFunction(rhs, F)
    ts.setTimeStep(dt)
    ts.setMaxSteps(2 ** 31 - 1)
    ts.setMaxTime(1e300)
    ts.setExactFinalTime(PETSc.TS.ExactFinalTime.STEPOVER)
    config_opts = dict(solver.options)
    config_opts.setdefault("ts_adapt_type", "none")
    for k, v in defaults.items():
        config_opts.setdefault(k, v)
    inserted = _insert_defaults(prefix, config_opts)
    try:
        ts.setFromOptions()
    finally:
        opts = PETSc.Options()
        applied = {n: opts.getString(n) for n in inserted}
        for n in inserted:
            opts.delValue(n)
    if stiff != "none":
        _check_stiff_ts(ts, stiff, applied, prefix)
    return ts, applied


def _set_explicit_type(ts: PETSc.TS, solver: SolverConfig) -> None:
    rk_type = solver.rk_type
    if solver.ts_type == "rk" and rk_type == "rk38" and not register_rk38():
        warnings.warn("could not register the RK 3/8 tableau through libpetsc; using classic RK4",
                      RuntimeWarning, stacklevel=3)
        rk_type = "4"
    ts.setType(solver.ts_type)
    if solver.ts_type == "rk":
        ts.setRKType(rk_type)


def _check_stiff_ts(ts: PETSc.TS, stiff: str, applied: dict[str, str], prefix: str) -> None:
    """The options must not have replaced the TS type of a stiff scheme (the right-hand side
    lacks L) nor asked for an adaptive 'expint' step."""
    want = STIFF_TS_TYPE[stiff]
    if ts.getType() != want:
        got = ts.getType()
        ts.destroy()
        raise ValueError(f"PETSc option -{prefix}ts_type {got} is not allowed with "
                         f"solver.stiff = '{stiff}' (TS type '{want}'): the right-hand side "
                         f"leaves out the pole decay; set solver.stiff = 'none' to choose an "
                         f"explicit TS type")
    if stiff == "expint" and adaptive(applied, prefix):
        value = applied.get(prefix + "ts_adapt_type") or PETSc.Options().getString(
            prefix + "ts_adapt_type")
        ts.destroy()
        raise ValueError(f"PETSc option -{prefix}ts_adapt_type {value} is not allowed with "
                         f"solver.stiff = 'expint': the exponential RK4 has a fixed step (no "
                         f"error estimate); allowed: none, or solver.stiff = 'imex' / 'none' "
                         f"for an adaptive step")


class _ImplicitDecay:
    """The implicit part of the imex scheme: IFunction G = ydot - L y, IJacobian shift I - L
    (diagonal AIJ).  L is diagonal, so KSP preonly + PC jacobi solves exactly."""

    def __init__(self, linear, template: PETSc.Vec) -> None:
        self.d = template.duplicate()
        linear.to_vec(self.d)
        self.diag = template.duplicate()
        n, N = template.getLocalSize(), template.getSize()
        self.J = PETSc.Mat().createAIJ([(n, N), (n, N)], nnz=(1, 0), comm=template.getComm())
        self.J.setUp()
        self._shift: float | None = None

    def attach(self, ts: PETSc.TS) -> None:
        ts.setIFunction(self.ifunction, self.d.duplicate())
        ts.setIJacobian(self.ijacobian, self.J, self.J)

    def ifunction(self, ts, t, y, ydot, G) -> None:
        G.pointwiseMult(self.d, y)
        G.aypx(-1.0, ydot)                 # G = ydot - L y

    def ijacobian(self, ts, t, y, ydot, shift, J, P) -> None:
        if shift != self._shift:           # constant for a fixed step: set once
            self.diag.set(shift)
            self.diag.axpy(-1.0, self.d)   # shift - L
            P.setDiagonal(self.diag, addv=PETSc.InsertMode.INSERT_VALUES)
            P.assemble()
            self._shift = shift


def effective_options(ts: PETSc.TS, applied: dict[str, str],
                      prefix: str = DEFAULT_PREFIX) -> dict[str, str]:
    """The TS settings actually in force plus every option under ``prefix``."""
    out = {f"{prefix}ts_type": ts.getType(), f"{prefix}ts_dt": repr(ts.getTimeStep())}
    if ts.getType() == "rk":
        out[f"{prefix}ts_rk_type"] = ts.getRKType()
    elif ts.getType() == "arkimex":
        out[f"{prefix}ts_arkimex_type"] = ts.getARKIMEXType()
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
