"""Bias sweeps of an open junction (paper 004, Sec. III B protocol).

Stage 1 (V = 0, spins released from their initial directions) is run once and stored as
``stage1.h5``; if that file exists it is reused.  Stage 2 is a bias quench at t = 0 from the
stage-1 end state (:meth:`integrators.Simulation.from_checkpoint`), one run per V.  The V points
are shared round robin over groups of MPI ranks (``group_size`` ranks per run), every run writes
``V_<value>.h5``, and rank 0 writes the summary table ``sweep.h5``.

Nothing is lost when a sweep is interrupted: with ``resume`` (``--resume``) finished V files are
reused as they are and unfinished ones continue from their last checkpoint.  ``stage1`` may
point to a stage-1 file shared by several sweeps (e.g. the symmetric and asymmetric protocols
of the same valve).

    qcspin sweep examples/valve_2d_open.toml --V 0.5:4:0.5 --protocol symmetric \\
        --stage1 500 --t-end 2000 -o sweep_dir
"""
from __future__ import annotations

import os
import time as _time
from dataclasses import dataclass

import h5py
import numpy as np

import toolkit  # noqa: F401
from integrators.simulation import Simulation
from toolkit.config import Config, ConfigError, with_changes
from toolkit.io import FORMAT_VERSION, FileExistsErrorQC
from toolkit.parallel import barrier, bcast, gather_rows, get_comm, split_comm

__all__ = ["bias_sweep"]


@dataclass(frozen=True)
class SweepResult:
    V: np.ndarray
    files: tuple[str, ...]
    lead_current: np.ndarray          # (n_V, n_leads), last output
    layer_magnetization: np.ndarray   # (n_V, n_layers, 3), last output
    stage1: str


def _has_checkpoint(path: str) -> bool:
    """An existing result file that holds a checkpoint (a run killed before its first
    checkpoint is started again)."""
    if not os.path.exists(path):
        return False
    try:
        with h5py.File(path, "r") as f:
            return "checkpoint" in f
    except OSError:
        return False


def _v_name(v: float) -> str:
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
    files = [os.path.join(outdir, _v_name(v)) for v in V]
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
        cont = resume and bcast(_has_checkpoint(files[i]) if group.getRank() == 0 else None, group)
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
        with h5py.File(os.path.join(outdir, "sweep.h5"), "w") as f:
            f.attrs["kind"] = "sweep"
            f.attrs["qcspin_format"] = FORMAT_VERSION
            f["V"] = V
            f["V"].attrs["units"] = "energy"
            f["lead_current"] = result.lead_current
            f["layer_magnetization"] = result.layer_magnetization
            f.attrs["protocol"] = protocol
            f.attrs["stage1"] = stage1
            f.attrs["files"] = [os.path.basename(x) for x in files]
    barrier(comm)
    return result
