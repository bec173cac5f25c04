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
import logging
import warnings

import numpy as np

from toolkit import _petscenv
from toolkit.config import SolverConfig
from toolkit.log import get_logger
from toolkit.petsc_options import (
    DEFAULT_PREFIX,
    OptionError,
    check_choice,
    check_ts_options,
    in_database,
    known_options,
    petsc_key,
    petsc_message,
    rk_types,
    suggest,
    ts_types,
    unused_options,
)

from petsc4py import PETSc

__all__ = ["register_rk38", "create_ts", "effective_options", "DEFAULT_PREFIX", "STIFF_TS_TYPE",
           "IMEX_DEFAULTS", "call_monitors", "view_from_options", "ts_settings", "adapt_type",
           "explicit_rk_types", "OptionError"]

_log = get_logger(__name__)
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


def explicit_rk_types() -> tuple[str, ...]:
    """The TSRK types: 'rk38' (ours, if registered) and PETSc's."""
    return rk_types(("rk38",) if register_rk38() else ())


def _insert_defaults(prefix: str, defaults: dict[str, str]) -> list[str]:
    """Put options into the database unless the user already set them; return inserted names.
    (``in_database``, not ``Options.hasName``: that would mark the user's option used.)"""
    opts = PETSc.Options()
    inserted = []
    for k, v in defaults.items():
        name = prefix + k
        if not in_database(name):
            opts.setValue(name, v)
            inserted.append(name)
    return inserted


def create_ts(comm: PETSc.Comm, rhs, F: PETSc.Vec | None, dt: float, solver: SolverConfig,
              prefix: str = DEFAULT_PREFIX, linear=None,
              coupled=None) -> tuple[PETSc.TS, dict[str, str]]:
    """A TS for dy/dt = rhs(t, y) [+ L y] and the config options applied to it.  Collective.

    Order of precedence: code defaults < config ``[solver]`` < PETSc command-line options
    (``-qcspin_ts_type``, ``-qcspin_ts_rk_type``, ``-qcspin_ts_adapt_type``, ``-qcspin_ts_dt``...).

    ``linear``: a :class:`integrators.expint.DiagonalLinear` L that ``rhs`` leaves out; it is
    integrated by the scheme ``solver.stiff`` ('expint' or 'imex', see the module docstring).
    Without ``linear`` (closed systems, or ``solver.stiff = 'none'``) ``solver.stiff`` is not
    used.  The TS type of a stiff scheme is fixed: a ``-qcspin_ts_type`` naming another type
    raises OptionError, as does an adaptive step with 'expint'.

    Bad values raise :class:`toolkit.petsc_options.OptionError` (a ValueError) naming the
    option or config key, the value and what is allowed, before PETSc sees them: the config
    keys ``solver.ts_type``/``solver.rk_type``, the options (command line or
    ``[solver.options]``) ``ts_type``, ``ts_rk_type``, ``ts_arkimex_type``, ``ts_adapt_type``
    (registered names), ``ts_dt`` (> 0), ``ts_rtol``/``ts_atol`` (>= 0, not both 0 when
    adaptive), ``ts_max_time``/``ts_max_steps``, and ``[solver.options]`` entries that no
    PETSc object reads.  Any other error of ``setFromOptions`` becomes an OptionError with
    PETSc's reason.  A TS that fails is destroyed.

    ``solver.scheme = "staggered-heun"`` (integrators/heun.py) needs ``coupled``, the run's
    CoupledRHS; ``linear`` is then the decay (or None for a closed system: L = 0).
    """
    stiff = "none" if linear is None else solver.stiff
    if stiff not in ("none", *STIFF_TS_TYPE):
        raise OptionError(f"config key 'solver.stiff' = {solver.stiff!r} is not allowed: "
                          f"expected one of {['none', *STIFF_TS_TYPE]}")
    if linear is not None and stiff == "none":
        raise ValueError("create_ts: a linear part L was given but solver.stiff = 'none'; "
                         "the right-hand side must then include L")
    if not (isinstance(dt, (int, float)) and np.isfinite(dt) and dt > 0):
        raise OptionError(f"config key 'time.dt' = {dt!r} is not allowed: expected a finite "
                          f"number > 0")
    user_opts = {k.lower(): str(v) for k, v in dict(solver.options).items()}
    if stiff == "none":
        _check_solver_keys(solver)
        check_ts_options(prefix, user_opts, extra_rk_types=explicit_rk_types())
    else:
        _check_stiff_type(stiff, prefix)
        check_ts_options(prefix, user_opts, ts_allowed=[STIFF_TS_TYPE[stiff]],
                         extra_rk_types=explicit_rk_types())
    ts = PETSc.TS().create(comm=comm)
    decay = None
    try:
        ts.setOptionsPrefix(prefix)
        ts.setProblemType(PETSc.TS.ProblemType.NONLINEAR)
        defaults: dict[str, str] = {}
        if getattr(solver, "scheme", "monolithic") == "staggered-heun":
            from .expint import DiagonalLinear, track
            from .heun import StaggeredHeun

            if coupled is None:
                raise ValueError("create_ts: solver.scheme = 'staggered-heun' needs the "
                                 "CoupledRHS (coupled=...)")
            ts.setType("python")
            ts.setPythonContext(StaggeredHeun(
                linear if linear is not None else DiagonalLinear(coupled.layout, {}), coupled))
            track(ts, comm)
        elif stiff == "none":
            _set_explicit_type(ts, solver)
        elif stiff == "expint":
            from .expint import ExpRK, track

            ts.setType("python")
            ts.setPythonContext(ExpRK(linear))
            track(ts, comm)
        else:
            ts.setType("arkimex")
            decay = _ImplicitDecay(linear, F)
            decay.attach(ts)
            defaults = dict(IMEX_DEFAULTS)
        ts.setRHSFunction(rhs, F)
        ts.setTimeStep(dt)
        ts.setMaxSteps(MAX_STEPS)
        ts.setMaxTime(MAX_TIME)
        ts.setExactFinalTime(PETSc.TS.ExactFinalTime.STEPOVER)
        # the spelling the loaded PETSc reads (solver.options.ts_dt is -ts_time_step on >= 3.25)
        given = {petsc_key(k): k for k in user_opts}
        config_opts = {petsc_key(k): v for k, v in user_opts.items()}
        config_opts.setdefault("ts_adapt_type", "none")
        for k, v in defaults.items():
            config_opts.setdefault(k, v)
        inserted = _insert_defaults(prefix, config_opts)
        opts = PETSc.Options()
        try:
            ts.setFromOptions()
        except PETSc.Error as exc:
            raise OptionError(f"PETSc could not apply the options under -{prefix}: "
                              f"{petsc_message(exc)}") from None
        finally:
            # before anything reads them (getString marks an option used)
            unused = unused_options(n for n in inserted if n[len(prefix):] in given)
            db = PETSc.Options().getAll()
            applied = {n: "" if db.get(n) is None else str(db[n]) for n in inserted}
            for n in inserted:
                opts.delValue(n)
        if unused:
            k = given[unused[0][1 + len(prefix):]]
            hint = suggest(unused[0], prefix)
            why = (f"did you mean {hint[1 + len(prefix):]!r}?" if hint else
                   "it is for another TS type or solver" if k in known_options() else
                   "unknown option")
            raise OptionError(f"config key 'solver.options.{k}' = {user_opts[k]!r} is not "
                              f"allowed: no PETSc object of this run reads -{prefix}{k} ({why})")
        if stiff != "none":
            _check_stiff_ts(ts, stiff, applied, prefix)
        if getattr(solver, "scheme", "monolithic") == "staggered-heun" \
                and ts.getType() != "python":
            raise OptionError(f"PETSc option -{prefix}ts_type {ts.getType()} is not allowed "
                              f"with solver.scheme = 'staggered-heun' (a TS of its own)")
        _check_tolerances(ts, prefix)
    except BaseException:
        ts.destroy()
        if decay is not None:
            decay.destroy()
        raise
    if _log.isEnabledFor(logging.DEBUG):  # qcspin -v
        _log.debug(f"TS {ts.getType()}, options prefix -{prefix}, dt = {ts.getTimeStep():g} "
                   f"(internal units), stiff = {stiff}; options applied from the config and "
                   f"code defaults: " + (" ".join(f"-{n} {v}".rstrip()
                                                  for n, v in applied.items()) or "none"))
    return ts, applied


MAX_STEPS = 2 ** 31 - 1   # "no limit" set by create_ts (ts.step() ignores both anyway)
MAX_TIME = 1e300


def _check_solver_keys(solver: SolverConfig) -> None:
    """The config keys solver.ts_type / solver.rk_type of an explicit scheme."""
    allowed = [t for t in ts_types() if t != "python"]
    check_choice("ts_type", solver.ts_type, allowed, source="solver.ts_type")
    if solver.ts_type == "rk":
        # 'rk38' always: without the ctypes registration it falls back to '4' with a warning
        check_choice("rk_type", solver.rk_type, rk_types(("rk38",)), source="solver.rk_type")
    elif solver.rk_type != SolverConfig().rk_type:
        raise OptionError(f"config key 'solver.rk_type' = {solver.rk_type!r} is not allowed: "
                          f"it is only used with solver.ts_type = 'rk' (now "
                          f"{solver.ts_type!r})")


def _check_stiff_type(stiff: str, prefix: str) -> None:
    """Before the TS exists: a TS type other than that of the stiff scheme."""
    want = STIFF_TS_TYPE[stiff]
    db = PETSc.Options().getAll()
    got = db.get(prefix + "ts_type")
    if got is not None and str(got) != want:
        raise OptionError(_stiff_type_message(str(got), stiff, prefix))


def _stiff_type_message(got: str, stiff: str, prefix: str) -> str:
    want = STIFF_TS_TYPE[stiff]
    return (f"PETSc option -{prefix}ts_type {got} is not allowed with solver.stiff = '{stiff}' "
            f"(TS type '{want}'): the right-hand side leaves out the pole decay; set "
            f"solver.stiff = 'none' to choose an explicit TS type")


def _check_tolerances(ts: PETSc.TS, prefix: str) -> None:
    if adapt_type(ts) in (None, "none"):
        return
    rtol, atol = ts.getTolerances()
    if isinstance(rtol, float) and isinstance(atol, float) and rtol == 0 and atol == 0:
        raise OptionError(f"PETSc options -{prefix}ts_rtol 0 -{prefix}ts_atol 0 are not "
                          f"allowed with an adaptive step: expected rtol > 0 or atol > 0")


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
    lacks L) nor asked for an adaptive 'expint' step.  (The caller destroys the TS.)"""
    want = STIFF_TS_TYPE[stiff]
    if ts.getType() != want:
        raise OptionError(_stiff_type_message(ts.getType(), stiff, prefix))
    if stiff == "expint" and adaptive(applied, prefix):
        value = applied.get(prefix + "ts_adapt_type") or PETSc.Options().getString(
            prefix + "ts_adapt_type")
        raise OptionError(f"PETSc option -{prefix}ts_adapt_type {value} is not allowed with "
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

    def destroy(self) -> None:
        for obj in (self.d, self.diag, self.J):
            obj.destroy()

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


def adapt_type(ts: PETSc.TS) -> str | None:
    """The TSAdapt type in force ('none', 'basic', ...; None before setFromOptions/setUp).
    petsc4py 3.18 has no TSAdapt: TSGetAdapt + PetscObjectGetType through ctypes.  Local."""
    lib = _petscenv.libpetsc()
    get, gtype = lib.TSGetAdapt, lib.PetscObjectGetType
    get.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    gtype.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p)]
    get.restype = gtype.restype = ctypes.c_int
    adapt, name = ctypes.c_void_p(), ctypes.c_char_p()
    if get(ctypes.c_void_p(ts.handle), ctypes.byref(adapt)) != 0 or not adapt.value:
        return None
    if gtype(adapt, ctypes.byref(name)) != 0 or not name.value:
        return None
    return name.value.decode()


def ts_settings(ts: PETSc.TS, prefix: str = DEFAULT_PREFIX) -> dict:
    """What the TS uses, read back from it after ``setFromOptions`` (so command-line options are
    included): ``ts_type``, ``ts_rk_type`` / ``ts_arkimex_type`` / ``ts_python`` (the context
    class), ``ts_dt`` (the step, internal time units; the initial step if adaptive),
    ``ts_adapt_type`` and ``adaptive``; if adaptive ``ts_rtol``, ``ts_atol``,
    ``ts_adapt_dt_min``, ``ts_adapt_dt_max``; ``ts_max_time`` / ``ts_max_steps`` only if an
    option set them (the run loop's ``ts.step()`` does not check them).  Keys are the option
    names without ``-<prefix>``; values are str, float, int, bool (JSON-ready).  Local."""
    t = ts.getType()
    out: dict = {"prefix": prefix, "ts_type": t}
    if t == "rk":
        out["ts_rk_type"] = ts.getRKType()
    elif t == "arkimex":
        out["ts_arkimex_type"] = ts.getARKIMEXType()
    elif t == "python":
        ctx = ts.getPythonContext()
        out["ts_python"] = type(ctx).__name__ if ctx is not None else None
    out["ts_dt"] = float(ts.getTimeStep())
    a = adapt_type(ts)
    out["ts_adapt_type"] = a
    out["adaptive"] = a not in (None, "none") and t != "python"
    if out["adaptive"]:
        rtol, atol = ts.getTolerances()
        out["ts_rtol"] = float(rtol) if isinstance(rtol, float) else str(rtol)
        out["ts_atol"] = float(atol) if isinstance(atol, float) else str(atol)
        dt_min, dt_max = ts.getStepLimits()
        out["ts_adapt_dt_min"], out["ts_adapt_dt_max"] = float(dt_min), float(dt_max)
    if ts.getMaxTime() < MAX_TIME:
        out["ts_max_time"] = float(ts.getMaxTime())
    if ts.getMaxSteps() < MAX_STEPS:
        out["ts_max_steps"] = int(ts.getMaxSteps())
    return out


def call_monitors(ts: PETSc.TS) -> None:
    """Call the TS monitors (TSMonitor: those set by ``-qcspin_ts_monitor`` and its relatives in
    ``setFromOptions``, and Python ones from ``ts.setMonitor``) for the current step, time and
    solution, as TSSolve does at step 0 and after every step; a loop that calls ``ts.step()``
    itself must call this after each step and once before the first.  Without monitors it costs
    a function call.  Collective."""
    ts.monitor(ts.getStepNumber(), ts.getTime(), ts.getSolution())


def view_from_options(ts: PETSc.TS) -> None:
    """``-qcspin_ts_view`` and ``-qcspin_ts_view_solution``, which TSSolve honours at its end
    and a ``ts.step()`` loop does not: call once when the run ends.  Collective."""
    ts.viewFromOptions("-ts_view")
    ts.getSolution().viewFromOptions("-ts_view_solution", ts)
