"""Effective interlayer exchange J_eff of an isolated spin valve (paper 004, Sec. III A 2-3).

One *point* = one QC-EOM run of an isolated valve (1D by default: N_S spins per magnetic layer,
N_NM spacer sites, J_ex = -1, K = 0, PL spins along x, FL spins along z, half filling) followed by
a macrospin fit (:func:`analysis.macrospin.fit_macrospin`).  A *sweep* distributes points over
MPI ranks (round robin, each point on ``PETSc.COMM_SELF``), gathers them and writes one HDF5
table.  Sign convention: H_MS = -J_eff M_l.M_r, J_eff > 0 ferromagnetic.

    >>> p = jeff_point(J_sd=1.0, N_NM=10, N_S=5)            # one run + fit
    >>> s = jeff_sweep("J_sd", [1, 2, 3], N_S=5, path="jeff.h5")   # collective

Command line: ``qcspin jeff [CONFIG.toml] --sweep J_sd=0.5:6:0.5 [...]`` (see ``-h``;
analysis/jeff_cli.py).
"""
from __future__ import annotations

import json
import os
import time as _time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np

import toolkit  # noqa: F401  (complex PETSc)
from toolkit.config import Config, ConfigError, config_to_toml
from toolkit.device import Device
from toolkit.io import write_table
from toolkit.parallel import barrier, bcast, gather_rows, get_comm, round_robin
from toolkit.presets import valve_device
from toolkit.results import load_result

from petsc4py import PETSc

from .macrospin import MacrospinFit, fit_macrospin, guess_omega

__all__ = ["JeffPoint", "JeffSweep", "jeff_point", "jeff_static", "jeff_sweep", "plot_sweep",
           "read_sweep", "write_sweep"]

SWEEP_PARAMS = ("J_sd", "N_NM")
#: defaults of the automatic run length (natural units, 1/gamma)
N_PERIODS = 1.5
T_CAP = 2.0e4
T_PILOT = 50.0
SAMPLE_DT = 1.0


def _magnetic_pair(dev: Device) -> tuple[int, int, int]:
    """Layer indices (left, right) of the two magnetic layers and N_S."""
    names = [n for n in dev.layer_names if n in dev.magnetic_layers]
    idx = sorted((int(dev.layer_sites(n).min()), dev.layer_index(n)) for n in names)
    if len(idx) != 2:
        raise ConfigError(f"the J_eff analysis needs two magnetic layers, found {names}")
    return idx[0][1], idx[1][1], len(dev.layer_spins(names[0]))


# ----------------------------------------------------------------------------- one point
@dataclass(frozen=True)
class JeffPoint:
    """One valve run and its macrospin fit.  ``series`` = (t, M_l, M_r) when kept."""

    params: dict
    fit: MacrospinFit
    t_end: float
    steps: int
    wall_time: float
    capped: bool
    notes: str = ""
    series: tuple | None = field(default=None, compare=False, repr=False)

    @property
    def J_eff(self) -> float:
        return self.fit.J_eff


def jeff_point(*, J_sd: float = 1.0, N_NM: int = 10, N_S: int = 5, J_ex: float = -1.0,
               dt: float | None = None, base: Config | None = None, t_end: float | None = None,
               n_periods: float = N_PERIODS, t_cap: float = T_CAP, t_pilot: float = T_PILOT,
               sample_dt: float = SAMPLE_DT, fit_phase: bool = False, t_min: float = 0.0,
               keep_series: bool = False, comm: PETSc.Comm | None = None) -> JeffPoint:
    """Run one isolated valve (see :func:`valve_device`) and fit J_eff.  Collective on ``comm``.

    Run length: ``t_end`` when given; otherwise a pilot run to ``t_pilot`` estimates the
    precession frequency (angle slope, :func:`analysis.macrospin.guess_omega`), and the run is
    extended in chunks, re-estimating, until ``n_periods`` periods are covered -- at most
    ``t_cap`` (then a RuntimeWarning says how many periods were covered).  Layer magnetizations
    are sampled every ``sample_dt`` (rounded to whole steps; must resolve the precession).
    All times here are internal, hbar/E0 (= 1/gamma for natural units); J_eff is in E0.
    """
    dev = valve_device(N_S=N_S, N_NM=N_NM, J_sd=J_sd, J_ex=J_ex, dt=dt, base=base)
    left, right, n_s = _magnetic_pair(dev)
    from integrators.campaign import Recorder, run_periods
    from integrators.simulation import Simulation

    wall0 = _time.perf_counter()
    sim = Simulation(dev, comm)
    notes = []
    try:
        every = max(1, int(round(sample_dt / sim.dt)))
        rec = Recorder(sim, left, right, every)
        capped = False
        if t_end is not None:
            rec.advance_to(float(t_end))
        else:
            capped = run_periods(rec, n_periods, t_cap, t_pilot,
                                 lambda t, Ml, Mr: guess_omega(t, Ml, Mr)[0])
        t, Ml, Mr = rec.arrays()
        steps = sim.step_number
    finally:
        sim.destroy()
    fit = fit_macrospin(t, Ml, Mr, n_s, fit_phase=fit_phase, t_min=t_min)
    capped = capped and fit.n_periods < n_periods  # the pilot estimate may differ slightly
    if capped:
        msg = (f"t_cap = {t_cap:g} reached after {fit.n_periods:.2g} of {n_periods:g} requested "
               f"precession periods (J_sd = {J_sd:g}, N_NM = {N_NM}, N_S = {n_s})")
        notes.append(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
    params = {"J_sd": float(J_sd), "N_NM": int(N_NM) if base is None else None, "N_S": int(n_s),
              "J_ex": float(J_ex) if base is None else None, "dt": float(sim.dt),
              "n_sites": dev.n_sites, "config": None if base is None else base.name,
              "energy_unit": sim.units.energy}
    return JeffPoint(params=params, fit=fit, t_end=float(t[-1]), steps=int(steps),
                     wall_time=_time.perf_counter() - wall0, capped=bool(capped),
                     notes="; ".join(notes), series=(t, Ml, Mr) if keep_series else None)


# ----------------------------------------------------------------------------- sweeps
@dataclass(frozen=True)
class JeffSweep:
    """A gathered sweep (identical on every rank): ``values`` of ``param`` and their points."""

    param: str
    values: tuple
    points: tuple
    settings: dict
    wall_time: float
    mpi_size: int

    def table(self) -> dict[str, np.ndarray]:
        f = [p.fit for p in self.points]
        N_S = np.array([p.params["N_S"] for p in self.points], float)
        J = np.array([x.J_eff for x in f])
        return {
            "value": np.array(self.values, float), "J_eff": J, "J_eff_NS2": J * N_S ** 2,
            "omega": np.array([x.omega for x in f]), "phi": np.array([x.phi for x in f]),
            "rms": np.array([x.rms for x in f]), "norm_dev": np.array([x.norm_dev for x in f]),
            "n_periods": np.array([x.n_periods for x in f]),
            "valid": np.array([x.valid for x in f], bool),
            "t_end": np.array([p.t_end for p in self.points]),
            "capped": np.array([p.capped for p in self.points], bool),
            "wall_time": np.array([p.wall_time for p in self.points]),
            "reason": np.array([x.reason for x in f], object),
            "notes": np.array([p.notes for p in self.points], object),
        }


_UNITS = {  # dataset: (units, description)
    "J_eff": ("{E}", "effective interlayer exchange, H_MS = -J_eff M_l.M_r (>0: ferro)"),
    "J_eff_NS2": ("{E}", "J_eff * N_S^2"),
    "omega": ("rad/(hbar/{E})", "signed frequency of Eq. (21); omega = -sqrt2 N_S J_eff"),
    "phi": ("rad", "fitted phase (0 unless fit_phase)"),
    "rms": ("N_S", "rms residual of the fit divided by N_S"),
    "norm_dev": ("N_S", "max | |M|/N_S - 1 |"),
    "n_periods": ("", "precession periods covered by the fitted record"),
    "valid": ("", "macrospin fit accepted (see reason)"),
    "t_end": ("hbar/{E}", "length of the run"),
    "capped": ("", "run stopped at t_cap before n_periods"),
    "wall_time": ("s", "wall-clock time of the point"),
    "reason": ("", "why the fit is not valid"),
    "notes": ("", "warnings of the run"),
}


def jeff_sweep(param: str, values: Sequence[float], *, path: str | None = None,
               overwrite: bool = False, comm: PETSc.Comm | None = None,
               distribute: Callable[[int, Any], Any] = round_robin,
               report: Callable[[int, JeffPoint], None] | None = None,
               **point_kw: Any) -> JeffSweep:
    """Sweep ``param`` ('J_sd' or 'N_NM') over ``values``.  Collective on ``comm``.

    Every point is an independent :func:`jeff_point` on ``PETSc.COMM_SELF``; ``distribute``
    (default :func:`round_robin`) picks each rank's points.  The gathered :class:`JeffSweep` is
    returned on every rank; rank 0 writes ``path`` (never replacing an existing file unless
    ``overwrite``; checked before any work).  ``report(index, point)`` is called on the rank that
    computed the point, as it finishes.  ``point_kw`` are the fixed arguments of jeff_point.
    """
    comm = get_comm(comm)
    rank, size = comm.getRank(), comm.getSize()
    if param not in SWEEP_PARAMS:
        raise ConfigError(f"sweep parameter {param!r} is not allowed: expected one of "
                          f"{SWEEP_PARAMS}")
    if param in point_kw:
        raise ConfigError(f"{param} is swept; do not also pass it as a fixed argument")
    values = tuple(int(v) if param == "N_NM" else float(v) for v in values)
    if not values:
        raise ConfigError("the sweep has no values")
    if param == "N_NM" and point_kw.get("base") is not None:
        raise ConfigError("an N_NM sweep builds the 1D valve itself; it takes no base config")
    err = None
    if rank == 0 and path and os.path.exists(path) and not overwrite:
        err = f"output file '{path}' exists; use --overwrite (overwrite=True) to replace it"
    err = bcast(err, comm)
    if err:
        from toolkit.io import FileExistsErrorQC

        raise FileExistsErrorQC(err)
    dev_kw = {k: point_kw[k] for k in ("N_S", "N_NM", "J_sd", "J_ex", "dt", "base")
              if k in point_kw}
    swept: dict[str, Any] = {param: values[0]}
    valve_device(**swept, **dev_kw)  # bad parameters fail here, on every rank
    wall0 = _time.perf_counter()
    rows: list[tuple[int, JeffPoint | str]] = []
    for i in map(int, distribute(len(values), comm)):
        try:
            swept = {param: values[i]}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # kept in point.notes
                p = jeff_point(**swept, comm=PETSc.COMM_SELF, **point_kw)
        except Exception as exc:  # reported on every rank below instead of a deadlock
            rows.append((i, f"{param} = {values[i]}: {type(exc).__name__}: {exc}"))
            continue
        if report is not None:
            report(i, p)
        rows.append((i, p if point_kw.get("keep_series") else replace(p, series=None)))
    mine = np.empty((len(rows), 2), object)
    for k, (i, row) in enumerate(rows):
        mine[k, 0], mine[k, 1] = i, row
    allrows = gather_rows(mine, comm, root=0)
    points, err = None, None
    if rank == 0:
        assert allrows is not None  # gathered on root 0
        idx = allrows[:, 0].astype(int)
        failed = [p for p in allrows[:, 1] if isinstance(p, str)]
        if failed:
            err = "sweep points failed: " + "; ".join(failed)
        elif sorted(idx) != list(range(len(values))):
            err = "the distribution did not compute every point exactly once"
        else:
            points = tuple(allrows[np.argsort(idx, kind="stable"), 1])
    points, err = bcast((points, err), comm)
    if err:
        raise RuntimeError(err)
    settings = {k: (v.name if isinstance(v, Config) else v) for k, v in point_kw.items()}
    sweep = JeffSweep(param=param, values=values, points=points, settings=settings,
                      wall_time=_time.perf_counter() - wall0, mpi_size=size)
    if path:
        if rank == 0:
            write_sweep(sweep, path, overwrite=overwrite, base=point_kw.get("base"))
        barrier(comm)
    return sweep


def write_sweep(sweep: JeffSweep, path: str, *, overwrite: bool = False,
                base: Config | None = None, group: str | None = None) -> None:
    """Write the sweep table to HDF5 (:func:`toolkit.io.write_table`; serial, called on one
    rank).  With ``group`` the table goes into that group of ``path`` (an existing group is an
    error unless ``overwrite``); otherwise ``path`` is a new file."""
    tab = sweep.table()
    E = sweep.points[0].params.get("energy_unit", "hopping")
    param_units = E if sweep.param == "J_sd" else "sites"
    attrs: dict[str, Any] = {"qcspin_table": "jeff_sweep", "param": sweep.param,
                             "param_units": param_units}
    p0 = sweep.points[0].params
    for k in ("N_S", "N_NM", "J_sd", "J_ex", "dt", "n_sites"):
        if k != sweep.param and p0.get(k) is not None:
            attrs[k] = p0[k]
    attrs["units"] = json.dumps({"energy": E, "time": f"hbar/{E}", "J_sd": E, "J_ex": E,
                                 "dt": f"hbar/{E}", "N_S": "spins per layer",
                                 "N_NM": "spacer sites"})
    attrs["settings"] = json.dumps(sweep.settings, default=str)
    attrs["sign_convention"] = ("H_MS = -J_eff M_l.M_r (paper 004 Eq. 19); J_eff > 0 "
                                "ferromagnetic")
    attrs["mpi_size"] = sweep.mpi_size
    attrs["wall_time"] = sweep.wall_time
    if base is not None:
        attrs["config"] = config_to_toml(base)
    data: dict[str, Any] = {"value": (tab["value"], param_units,
                                      f"swept parameter {sweep.param}")}
    for name, (unit, desc) in _UNITS.items():
        data[name] = (tab[name], unit.format(E=E), desc)
    write_table(path, data, attrs, kind="jeff", group=group, overwrite=overwrite,
                scale="value", scale_name=sweep.param)


def read_sweep(path: str, group: str | None = None) -> dict[str, Any]:
    """The table of a sweep file (or of one ``group`` in it) as a dict of arrays plus its
    attributes under 'attrs' (as stored: JSON texts undecoded)."""
    return _read_table(load_result(path), group)


def _read_table(r, group: str | None) -> dict[str, Any]:
    """:func:`read_sweep` of an opened Result."""
    pre = "" if not group else f"{group}/"
    out: dict[str, Any] = r.read(*(pre + name for name in ["value"] + list(_UNITS)))
    out = {k[len(pre):]: v for k, v in out.items()}
    out["attrs"] = r.group_attrs(group or "", raw=True)
    return out


# ----------------------------------------------------------------------------- plotting
def _tables(path: str, group: str | None) -> dict[str, dict]:
    """{name: read_sweep table} of the file's root table, the given ``group`` or all groups
    holding a J_eff table (figure files such as fig05.h5 keep one table per group)."""
    if group is not None:
        return {group: read_sweep(path, group)}
    r = load_result(path)
    if r.kind != "jeff" or not r.tables:
        raise ValueError(f"'{path}' holds no J_eff sweep table")
    return {g: _read_table(r, g or None) for g in r.tables}


def _rkky(tab: dict) -> tuple[np.ndarray, np.ndarray, str] | None:
    """The RKKY reference of a table where it applies, as (x, y, label), else None.

    Only the 1D valve (no base config) at even spacer length: odd N_NM gives an odd number
    of sites, whose half-filled zero mode makes J_eff first order in J_sd (see
    :func:`analysis.macrospin.rkky_reference`).  N_NM sweeps: the shape A J_sd^2 [Si(pi N_NM)
    - pi/2] at even N_NM with A fitted to the valid even points (as Fig. 5).  J_sd sweeps: none
    (RKKY is the weak-coupling limit; already J_sd = 0.5 with N_S = 5 is outside it, so a
    parabola fitted to the smallest J_sd would mislead).  Plotted in the units of the table's y
    axis."""
    from .macrospin import fit_rkky_prefactor, rkky_reference

    a = tab["attrs"]
    if "config" in a:  # a base config's lattice: no 1D RKKY shape
        return None
    x, J = tab["value"].astype(float), tab["J_eff"].astype(float)
    ok = tab["valid"].astype(bool) & np.isfinite(J) & (J != 0)
    try:
        if a["param"] == "N_NM":
            J_sd = float(a["J_sd"])
            fit = ok & (x % 2 == 0)
            if not fit.any():
                return None
            A = fit_rkky_prefactor(x[fit], J[fit], J_sd)
            lo, hi = int(np.ceil(x.min() / 2) * 2), int(x.max())
            xx = np.arange(max(lo, 2), hi + 1, 2, dtype=float)
            return xx, rkky_reference(xx, J_sd, A), f"RKKY x {A:.3g} (even $N_{{NM}}$, fit)"
        return None  # J_sd sweeps reach far beyond the weak coupling where RKKY holds
    except (KeyError, ValueError, TypeError):
        return None


def plot_sweep(path: str, png: str, group: str | None = None) -> str:
    """J_eff versus the swept parameter (J_eff N_S^2 for J_sd sweeps; for N_NM sweeps also
    |J_eff| on a log scale) with the RKKY reference where it applies (:func:`_rkky`).  Lines
    join consecutive valid fits only; invalid fits are open red circles, points without a
    value are counted in the legend.  ``group``: one table of a file with several (default:
    the root table, else every table in the file, one colour each).  Serial; returns the path."""
    from .plots import save_figure, use_agg

    plt = use_agg()
    tabs = _tables(path, group)
    first = next(iter(tabs.values()))["attrs"]
    param = str(first["param"])
    n_nm = param == "N_NM"
    if any(str(t["attrs"]["param"]) != param for t in tabs.values()):
        raise ValueError(f"'{path}': the tables sweep different parameters")
    fig, axes = plt.subplots(1, 2 if n_nm else 1, figsize=(11 if n_nm else 6, 4.2),
                             squeeze=False)
    ax = axes[0, 0]
    b = axes[0, 1] if n_nm else None
    E = str(first.get("param_units", "")) if not n_nm else ""
    try:
        E = json.loads(first["units"]).get("energy", E) if "units" in first else E
    except (TypeError, ValueError):
        pass
    n_invalid = n_missing = 0
    for k, (name, tab) in enumerate(tabs.items()):
        col = "k" if len(tabs) == 1 else f"C{k}"
        tag = f"{name}: " if name else ""
        x = tab["value"].astype(float)
        y = tab["J_eff"].astype(float) if n_nm else tab["J_eff_NS2"].astype(float)
        fin = np.isfinite(y)
        ok = tab["valid"].astype(bool) & fin
        bad = ~tab["valid"].astype(bool) & fin
        n_invalid += int(bad.sum())
        n_missing += int((~fin).sum())
        order = np.argsort(x, kind="stable")
        x, y, ok, bad = x[order], y[order], ok[order], bad[order]
        line = np.where(ok, y, np.nan)  # no line across an invalid or missing point
        ax.plot(x, line, "-", color=col, lw=0.7)
        ax.plot(x[ok], y[ok], "o", color=col, ms=4, label=f"{tag}valid fit")
        if bad.any():
            ax.plot(x[bad], y[bad], "o", mfc="none", mec="tab:red", ms=6)
        ref = _rkky(tab)
        if ref is not None:
            rx, ry, rlab = ref
            ax.plot(rx, ry, ":" if n_nm else "--", color="C0" if len(tabs) == 1
                    else col, lw=1.0, marker="." if n_nm else None, label=f"{tag}{rlab}")
        if b is not None:
            b.semilogy(x, np.abs(line), "-", color=col, lw=0.7)
            b.semilogy(x[ok], np.abs(y[ok]), "o", color=col, ms=4)
            if bad.any():
                b.semilogy(x[bad], np.abs(y[bad]), "o", mfc="none", mec="tab:red", ms=6)
            if ref is not None:
                b.semilogy(rx, np.abs(ry), ":", color="C0" if len(tabs) == 1 else col,
                           marker=".", lw=1.0)
    if n_invalid:
        ax.plot([], [], "o", mfc="none", mec="tab:red", ms=6, label=f"invalid fit ({n_invalid})")
    if n_missing:
        ax.plot([], [], " ", label=f"{n_missing} point(s) without a value (not shown)")
    if not n_nm:  # a J_sd^2 reference must not set the scale: keep the data's range
        data = np.concatenate([t["J_eff_NS2"][np.isfinite(t["J_eff_NS2"].astype(float))]
                               for t in tabs.values()]).astype(float)
        if data.size:
            lo, hi = min(data.min(), 0.0), max(data.max(), 0.0)
            pad = 0.1 * (hi - lo or abs(hi) or 1.0)
            ax.set_ylim(lo - pad, hi + pad)
    ax.axhline(0, color="0.6", lw=0.5)
    unit = f" [{E}]" if E else ""
    xunit = f" [{first.get('param_units', '')}]" if not n_nm and first.get("param_units") else ""
    ax.set_xlabel(("$N_{NM}$ (spacer sites)" if n_nm else "$J_{sd}$") + xunit)
    ax.set_ylabel(("$J_{eff}$" if n_nm else "$J_{eff} N_S^2$") + unit + "  (>0: ferro)")
    ax.legend(fontsize=7)
    if b is not None:
        b.set_xlabel("$N_{NM}$ (spacer sites)")
        b.set_ylabel("$|J_{eff}|$" + unit)
    fixed = ", ".join(f"{k} = {first[k]:g}" for k in ("N_S", "N_NM", "J_sd")
                      if k in first and k != param and len(tabs) == 1)
    fig.suptitle(f"J_eff sweep over {param} ({os.path.basename(path)}"
                 f"{'; ' + fixed if fixed else ''})", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, png)


# ----------------------------------------------------------------------------- static estimate
def jeff_static(*, J_sd: float = 1.0, N_NM: int = 10, N_S: int = 5, J_ex: float = -1.0,
                base: Config | None = None) -> float:
    """Adiabatic estimate J_eff = (E_AP - E_P) / (2 N_S^2) from the electronic ground-state
    energies (half filling, dense LAPACK, serial) with rigid parallel (both layers along x) and
    antiparallel (x, -x) layers: H_MS = -J_eff M_l.M_r gives E_P - E_AP = -2 J_eff N_S^2.
    A cross-check of sign and size of the dynamical fit at weak coupling."""
    from operators.hamiltonian import dense_hamiltonian

    dev = valve_device(N_S=N_S, N_NM=N_NM, J_sd=J_sd, J_ex=J_ex, base=base)
    left, right, n_s = _magnetic_pair(dev)
    n_e = dev.config.electrons.n_electrons or dev.n_sites
    E = []
    for sign in (1.0, -1.0):
        S = np.zeros((dev.n_spins, 3))
        S[:, 0] = np.where(dev.spin_layer == right, sign, 1.0)
        E.append(np.linalg.eigvalsh(dense_hamiltonian(dev, S))[:n_e].sum())
    return float((E[1] - E[0]) / (2 * n_s ** 2))
