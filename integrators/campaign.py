"""Run campaigns: several coupled runs organised as one study (paper 004, Sec. III B).

* :func:`bias_sweep`: stage 1 (V = 0, spins released from their initial directions) once,
  stored as ``stage1.h5`` and reused if it exists, then one stage-2 bias quench per V from the
  stage-1 end state (:meth:`integrators.Simulation.from_checkpoint`).  The V points are shared
  round robin over groups of MPI ranks (``group_size`` ranks per run), every run writes
  ``V_<value>.h5``, and rank 0 writes the summary table ``sweep.h5``.  Nothing is lost when a
  sweep is interrupted: with ``resume`` (``--resume``) finished V files are reused as they are
  and unfinished ones continue from their last checkpoint.  ``stage1`` may point to a stage-1
  file shared by several sweeps (e.g. the symmetric and asymmetric protocols of one valve).
* :func:`ensure_stage1` / :func:`quench_sweeps`: the resumable cache of the Sec. III B figure
  runs (``results/figures/valve_runs``: ``J<J_sd>_stage1.h5`` and one sweep directory per J_sd
  and protocol) for :func:`toolkit.presets.paper_valve`.
* :class:`Recorder` / :func:`run_periods`: advance a run while sampling two layer
  magnetizations, for as many precession periods as an estimator asks (the J_eff points of
  ``analysis.jeff``).

    qcspin sweep examples/valve_2d_open.toml --V 0.5:4:0.5 --protocol symmetric \\
        --stage1 500 --t-end 2000 -o sweep_dir
"""
from __future__ import annotations

import math
import os
import time as _time
from dataclasses import dataclass, fields
from typing import Callable

import numpy as np

from toolkit.config import Config, ConfigError, with_changes
from toolkit.io import FileExistsErrorQC, ResultFileError, write_table
from toolkit.parallel import barrier, bcast, gather_rows, get_comm, split_comm
from toolkit.presets import paper_valve
from toolkit.results import load_result

from .simulation import Simulation

__all__ = ["bias_sweep", "SweepResult", "bias_file_name", "ensure_stage1", "quench_sweeps",
           "Recorder", "run_periods"]


@dataclass(frozen=True)
class SweepResult:
    V: np.ndarray
    files: tuple[str, ...]
    lead_current: np.ndarray          # (n_V, n_leads), last output
    layer_magnetization: np.ndarray   # (n_V, n_layers, 3), last output
    stage1: str


def has_checkpoint(path: str) -> bool:
    """An existing result file that holds a checkpoint (a run killed before its first
    checkpoint is started again)."""
    if not os.path.exists(path):
        return False
    try:
        return "step" in load_result(path).group_attrs("checkpoint", raw=True)
    except ResultFileError:
        return False


def _stage1_action(path: str, cfg1: Config, stage1_time: float) -> tuple[str, str]:
    """What to do with the stage-1 file ``path`` asked for as ``cfg1`` run to ``stage1_time``:
    ('run', '') if it does not exist, ('reuse', '') if it is that run, finished, ('resume', '')
    if it is that run, stopped early with a checkpoint, else ('', why it may not be used: another
    length or config, failed, unreadable).  Serial (rank 0)."""
    if not os.path.exists(path):
        return "run", ""
    try:
        r = load_result(path)
        have = r.config if r.kind == "run" else None
    except ResultFileError as exc:
        return "", str(exc)
    if have is None:
        return "", f"'{path}' is not a run file"
    want = with_changes(cfg1, time={"t_end": float(stage1_time)})
    if have != want:
        if with_changes(have, time={"t_end": want.time.t_end}) == want:
            why = f"a stage 1 of length {have.time.t_end:g}, not {want.time.t_end:g}"
        else:
            keys = [f.name for f in fields(want) if getattr(have, f.name) != getattr(want, f.name)]
            why = f"a stage 1 of another config (differing: {', '.join(keys)})"
        return "", f"'{path}' is {why}"
    if r.status == "finished":
        return "reuse", ""
    if r.status in ("running", "interrupted") and has_checkpoint(path):
        return "resume", ""
    return "", f"'{path}' is a stage 1 with status '{r.status}' ({r.message or 'no checkpoint'})"


def bias_file_name(v: float) -> str:
    """The stage-2 file name of bias ``v`` in a sweep directory."""
    return f"V_{v:+.6g}.h5"


def bias_sweep(cfg: Config, V, *, outdir: str, protocol: str = "symmetric",
               stage1_time: float = 100.0, t_end: float | None = None, group_size: int = 1,
               overwrite: bool = False, resume: bool = False, stage1: str | None = None,
               stage1_config: Config | None = None, comm=None, progress=None) -> SweepResult:
    """Run stage 1 once (or reuse ``stage1``, default ``outdir/stage1.h5``) and one stage-2 run
    per bias V.  Times in the config's units; ``t_end``: stage-2 length (default ``[time]
    t_end``).  ``resume``: reuse finished V files, continue unfinished ones from their
    checkpoint.  ``stage1_config``: the config of stage 1 (default: ``cfg`` without bias), e.g.
    with extra Gilbert damping to reach equilibrium faster.  Collective."""
    if not cfg.leads:
        raise ConfigError("config key 'leads' = [] is not allowed: a bias sweep needs [[leads]]")
    if protocol not in ("symmetric", "asymmetric"):
        raise ValueError(f"protocol = {protocol!r} is not allowed: expected 'symmetric' or "
                         f"'asymmetric'")
    comm = get_comm(comm)
    rank0 = comm.getRank() == 0
    V = np.atleast_1d(np.asarray(V, float))
    if rank0:
        os.makedirs(outdir, exist_ok=True)
    barrier(comm)
    stage1 = stage1 or os.path.join(outdir, "stage1.h5")
    files = [os.path.join(outdir, bias_file_name(v)) for v in V]
    clash = bcast([f for f in files + [os.path.join(outdir, "sweep.h5")] if os.path.exists(f)]
                  if rank0 else None, comm)
    if clash and not (overwrite or resume):
        raise FileExistsErrorQC(f"{clash[0]} exists (and {len(clash) - 1} more); use --overwrite "
                                f"or --resume")
    cfg1 = with_changes(stage1_config or cfg, bias={"protocol": "none", "V": 0.0, "t_on": 0.0,
                                                  "t_off": None, "ramp": 0.0, "table": None})
    if not bcast(os.path.exists(stage1) if rank0 else None, comm):
        Simulation(cfg1, comm).run(stage1, t_end=stage1_time, progress=False,
                                   handle_signals=False)
    barrier(comm)  # the file is closed by rank 0 before anyone reads it
    group, color, n_groups = split_comm(comm, group_size)
    mine = list(range(color, len(V), n_groups))
    rows = []
    for i in mine:
        cfg2 = with_changes(cfg, bias={"protocol": protocol, "V": float(V[i]), "t_on": 0.0,
                                       "table": None})
        cont = resume and bcast(has_checkpoint(files[i]) if group.getRank() == 0 else None, group)
        sim = Simulation.from_checkpoint(files[i] if cont else stage1, cfg2, group)
        t0 = _time.perf_counter()
        sim.run(files[i], t_end=t_end, overwrite=(overwrite or resume) and not cont, restart=cont,
                progress=False, handle_signals=False)
        obs = sim.observables(root=0)  # the final state (the last output may be earlier)
        if obs is not None:
            rows.append((i, obs["lead_current"], obs["layer_magnetization"]))
            if progress:
                progress(i, float(V[i]), obs, _time.perf_counter() - t0)
        sim.destroy()
    allrows = gather_rows(np.array(rows, dtype=object).reshape(-1, 3), comm, root=None)
    order = np.argsort([int(r[0]) for r in allrows])
    result = SweepResult(V=V, files=tuple(files),
                         lead_current=np.array([allrows[k][1] for k in order]),
                         layer_magnetization=np.array([allrows[k][2] for k in order]),
                         stage1=stage1)
    if rank0:
        write_table(os.path.join(outdir, "sweep.h5"),
                    {"V": (V, "energy", None), "lead_current": result.lead_current,
                     "layer_magnetization": result.layer_magnetization},
                    {"protocol": protocol, "stage1": stage1,
                     "files": [os.path.basename(x) for x in files]}, kind="sweep",
                    overwrite=True)
    barrier(comm)
    return result


def ensure_stage1(runs_dir: str, J_sd: float, *, stage1_time: float, comm=None,
                  config_kw: dict | None = None, stage1_damping: float = 0.0) -> str:
    """``runs_dir/J<J_sd>_stage1.h5``: stage 1 of ``paper_valve(J_sd, **config_kw)`` (V = 0,
    spins released from their easy axes, ``stage1_time`` long), run unless the file exists.
    ``stage1_damping``: extra Gilbert damping in stage 1 only (same equilibrium, sooner).
    An existing file is reused only if it is that run (same config and length) and finished;
    stopped early, it is continued from its checkpoint; anything else (another length or
    config, e.g. a cache filled by a script with other stage lengths) is refused with
    FileExistsErrorQC on every rank, never silently reused.  Collective."""
    comm = get_comm(comm)
    kw = dict(config_kw or {})
    path = os.path.join(runs_dir, f"J{J_sd:g}_stage1.h5")
    cfg1 = paper_valve(J_sd, **{**kw, **({"damping": stage1_damping} if stage1_damping
                                         else {})})
    action, why = "", ""
    if comm.getRank() == 0:
        os.makedirs(runs_dir, exist_ok=True)
        action, why = _stage1_action(path, cfg1, stage1_time)
    action, why = bcast((action, why), comm)
    if not action:
        raise FileExistsErrorQC(f"{why}: the cache '{runs_dir}' holds another stage 1 than the "
                                f"one asked for (J_sd = {J_sd:g}, length {stage1_time:g}); "
                                f"remove the file or use another runs directory")
    if action != "reuse":
        sim = (Simulation.from_checkpoint(path, cfg1, comm) if action == "resume"
               else Simulation(cfg1, comm))
        try:
            sim.run(path, t_end=stage1_time, restart=action == "resume", progress=False,
                    handle_signals=False)
        finally:
            sim.destroy()
    barrier(comm)
    return path


def quench_sweeps(runs_dir: str, J_sd: float, grids: dict[str, np.ndarray], *,
                  stage1_time: float, t_end: float | dict[str, float], comm=None,
                  config_kw: dict | None = None,
                  stage1_damping: float = 0.0, stage1: str | None = None,
                  progress=None) -> dict[str, str]:
    """Stage 1 once for ``paper_valve(J_sd, **config_kw)`` (:func:`ensure_stage1`, or the
    given ``stage1`` file) and one sweep directory ``runs_dir/J<J_sd>_<protocol>`` per entry
    of ``grids`` ({protocol: V values}), resuming whatever exists (finished quench files are
    reused).  ``t_end``: stage-2 length, one value or {protocol: value}.  Returns {protocol:
    sweep directory}.  Collective."""
    kw = dict(config_kw or {})
    cfg = paper_valve(J_sd, **kw)
    stage1 = stage1 or ensure_stage1(runs_dir, J_sd, stage1_time=stage1_time, comm=comm,
                                     config_kw=kw, stage1_damping=stage1_damping)
    out = {}
    for protocol, V in grids.items():
        d = os.path.join(runs_dir, f"J{J_sd:g}_{protocol}")
        T = t_end[protocol] if isinstance(t_end, dict) else t_end
        bias_sweep(cfg, V, outdir=d, protocol=protocol, stage1_time=stage1_time, t_end=T,
                   resume=True, stage1=stage1, comm=comm, progress=progress)
        out[protocol] = d
    return out


class Recorder:
    """Advances a Simulation by ``every`` steps at a time and samples the magnetizations of
    layers ``left`` and ``right`` (internal time units).  Collective."""

    def __init__(self, sim, left: int, right: int, every: int) -> None:
        self.sim, self.left, self.right, self.every = sim, left, right, every
        self.t: list[float] = []
        self.Ml: list[np.ndarray] = []
        self.Mr: list[np.ndarray] = []
        self.sample()

    def sample(self) -> None:
        obs = self.sim.observables(root=None)
        M = obs["layer_magnetization"]
        self.t.append(float(self.sim.time))  # internal units hbar/E0
        self.Ml.append(M[self.left].copy())
        self.Mr.append(M[self.right].copy())

    def advance_to(self, t_target: float) -> None:
        dt_out = self.every * self.sim.dt
        while self.t[-1] + 0.5 * dt_out <= t_target:
            self.sim.step(self.every, record=False)
            self.sample()

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.array(self.t), np.array(self.Ml), np.array(self.Mr)


def run_periods(rec: Recorder, n_periods: float, t_cap: float, t_pilot: float,
                omega: Callable) -> bool:
    """Integrate until ``n_periods`` of the precession are covered or ``t_cap`` (internal
    time units): a pilot run to ``t_pilot``, then chunks, re-estimating the angular frequency
    with ``omega(t, M_l, M_r)`` after each.  Returns whether the cap stopped the run."""
    half = 0.5 * rec.every * rec.sim.dt
    rec.advance_to(min(t_pilot, t_cap))
    while True:
        t, Ml, Mr = rec.arrays()
        w = omega(t, Ml, Mr)
        need = n_periods * 2 * math.pi / abs(w) if w != 0 else math.inf
        target = min(max(need, t_pilot), t_cap)
        if t[-1] + half >= target:
            return need > t[-1] + half
        rec.advance_to(min(target, t[-1] + max(0.25 * target, t_pilot)))


# ----------------------------------------------------------------------------- pulse sweeps
@dataclass(frozen=True)
class PulseSweepResult:
    V_H: np.ndarray                   # (n_H,) pulse heights
    V_D: np.ndarray                   # (n_D,) pulse durations
    files: tuple[tuple[str, ...], ...]  # [i_H][i_D]
    switched: np.ndarray              # (n_H, n_D) bool
    decided: np.ndarray               # (n_H, n_D) bool: False if the run ended inside a dwell
    t_switch: np.ndarray              # (n_H, n_D) switching time (NaN: none)
    final_mz: np.ndarray              # (n_H, n_D) mean M_z of the layer at the end


def pulse_file_name(vh: float, vd: float) -> str:
    """The run file of the pulse (V_H, V_D) in a pulse-sweep directory."""
    return f"pulse_VH{vh:+.6g}_VD{vd:.6g}.h5"


def pulse_sweep(cfg: Config, V_H, V_D, *, outdir: str, layer: str, t0: float = 0.0,
                t_after: float = 3000.0, criterion=None, group_size: int = 1,
                overwrite: bool = False, resume: bool = False, comm=None,
                progress: Callable | None = None) -> PulseSweepResult:
    """Square voltage pulses of every height in ``V_H`` and duration in ``V_D`` (paper 000
    Fig. 2d): one run per pulse from the config's initial state, bias ``cfg.bias.protocol``
    ('asymmetric' if none: the left lead) of height V_H from ``t0`` to ``t0 + V_D``, run to
    ``t0 + V_D + t_after`` (config units), then the switching of ``layer``
    (integrators.switching, ``criterion``: a SwitchingCriterion).  Runs are shared round robin
    over groups of ``group_size`` ranks; ``resume`` reuses finished files and continues
    unfinished ones from their checkpoint.  Rank 0 writes ``outdir/pulse_sweep.h5`` (kind
    'sweep').  Collective."""
    from .switching import SwitchingCriterion, layer_switching

    if not cfg.leads:
        raise ConfigError("config key 'leads' = [] is not allowed: a pulse sweep needs "
                          "[[leads]]")
    crit = criterion or SwitchingCriterion()
    comm = get_comm(comm)
    rank0 = comm.getRank() == 0
    VH = np.atleast_1d(np.asarray(V_H, float))
    VD = np.atleast_1d(np.asarray(V_D, float))
    if np.any(VD <= 0):
        raise ValueError(f"V_D = {VD.tolist()} is not allowed: expected durations > 0")
    protocol = cfg.bias.protocol if cfg.bias.protocol != "none" else "asymmetric"
    if rank0:
        os.makedirs(outdir, exist_ok=True)
    barrier(comm)
    files = [[os.path.join(outdir, pulse_file_name(h, d)) for d in VD] for h in VH]
    flat = [(i, j) for i in range(len(VH)) for j in range(len(VD))]
    table = os.path.join(outdir, "pulse_sweep.h5")
    clash = bcast([f for f in [files[i][j] for i, j in flat] + [table] if os.path.exists(f)]
                  if rank0 else None, comm)
    if clash and not (overwrite or resume):
        raise FileExistsErrorQC(f"{clash[0]} exists (and {len(clash) - 1} more); use --overwrite "
                                f"or --resume")
    group, color, n_groups = split_comm(comm, group_size)
    rows = []
    for k in range(color, len(flat), n_groups):
        i, j = flat[k]
        path = files[i][j]
        cfg_k = with_changes(cfg, bias={"protocol": protocol, "V": float(VH[i]),
                                        "t_on": float(t0), "t_off": float(t0 + VD[j]),
                                        "ramp": 0.0, "table": None},
                             time={"t_end": float(t0 + VD[j] + t_after)})
        done = False
        if resume and group.getRank() == 0 and os.path.exists(path):
            try:
                r = load_result(path)
                done = r.status == "finished" and r.config == cfg_k
            except ResultFileError:
                done = False
        done = bool(bcast(done, group))
        t_wall = _time.perf_counter()
        if not done:
            cont = resume and bcast(has_checkpoint(path) if group.getRank() == 0 else None,
                                    group)
            sim = Simulation(cfg_k, group) if not cont else Simulation.from_checkpoint(
                path, cfg_k, group)
            sim.run(path, overwrite=(overwrite or resume) and not cont, restart=cont,
                    progress=False, handle_signals=False)
            sim.destroy()
        barrier(group)
        if group.getRank() == 0:
            r = load_result(path)
            ts, decided = layer_switching(r, layer, crit)
            info = r.device
            assert info is not None            # a run file
            idx = np.flatnonzero(np.asarray(info.spin_layer) == info.layer(layer))
            mz = float(np.mean(r["spins", -1][idx, crit.axis]))
            rows.append((i, j, ts is not None, decided, np.nan if ts is None else ts, mz))
            if progress:
                progress(float(VH[i]), float(VD[j]), ts, mz, _time.perf_counter() - t_wall)
    allrows = gather_rows(np.array(rows, dtype=object).reshape(-1, 6), comm, root=None)
    shape = (len(VH), len(VD))
    sw, dec = np.zeros(shape, bool), np.zeros(shape, bool)
    tsw, mzf = np.full(shape, np.nan), np.full(shape, np.nan)
    for i, j, s_, d_, t_, m_ in allrows:
        sw[i, j], dec[i, j], tsw[i, j], mzf[i, j] = s_, d_, t_, m_
    res = PulseSweepResult(VH, VD, tuple(tuple(f) for f in files), sw, dec, tsw, mzf)
    if rank0:
        from toolkit.units import get_units

        u = get_units(cfg.units)
        volt = "V" if u.energy == "eV" else f"{u.energy}/e"     # a bias: energy per charge
        write_table(table, {"V_H": (VH, volt, "pulse heights"),
                            "V_D": (VD, u.time, "pulse durations"),
                            "switched": (sw, None, "the layer switched (integrators.switching)"),
                            "decided": (dec, None, "False: the run ended inside a dwell"),
                            "t_switch": (tsw, u.time, "switching time (NaN: none)"),
                            "final_mz": (mzf, None, "mean M_z of the layer at the end")},
                    {"layer": layer, "t0": float(t0), "t_after": float(t_after),
                     "threshold": crit.threshold, "dwell": crit.dwell, "every": crit.every,
                     "protocol": protocol,
                     "files": [[os.path.basename(f) for f in row] for row in files]},
                    kind="sweep", overwrite=True)
    barrier(comm)
    return res
