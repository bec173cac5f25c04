"""Device presets of the reproduced papers: the configs and devices their figures use.

Paper 004 (QC-EOM of a spin valve, wide-band leads):

* :func:`paper_valve_doc` / :func:`paper_valve`: the open 2D valve of Sec. III B (12 x 4,
  N_S = 4 x 4, Gamma = 1, T = 0.025, J_ex = -1, K_l = 0.4 along x, K_r = 0.02 along z,
  N_p = 30), optionally extended by six metallic monolayers on each side (App. F, 24 x 4);
  ``PAPER`` holds those parameters;
* :func:`valve_device`: the isolated valve of Sec. III A (PL along x | N_NM spacer sites |
  FL along z), a 1D chain or the magnetic layers of a base config;
* :func:`valve_stages`: the stage lengths of the shared run cache of Figs. 6-13 and 19 (full and
  --quick), :func:`relaxation_plan`: the bias grids and stage lengths of Figs. 8 and 11.

Natural units (energy = hopping, time = hbar/hopping) unless a config says otherwise.  The
example configs of ``examples/`` are the user-facing form of the same devices.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from .config import Config, ConfigError, config_from_dict
from .device import Device, DeviceBuilder, device_from_config

__all__ = ["PAPER", "paper_valve_doc", "paper_valve", "valve_device", "valve_stages",
           "relaxation_plan"]

PAPER = dict(size=(12, 4), gamma=1.0, temperature=0.025, J_ex=-1.0, K_l=0.4, K_r=0.02,
             n_poles=30)


def paper_valve_doc(J_sd: float = 2.0, *, extended: bool = False, n_poles: int = 30,
                    gamma: float = 1.0, temperature: float = 0.025, dt: float = 0.2,
                    damping: float = 0.0, output_every: int = 25, t_end: float = 100.0,
                    mu: float = 0.0) -> dict:
    """The TOML document (a dict) of paper 004's open 2D valve, Sec. III B.

    ``extended``: App. F, six metallic monolayers before the PL and after the FL (24 x 4, PL at
    columns 6-9, FL at 14-17).  ``damping``: extra Gilbert damping of both magnetic layers (it
    changes the approach, not the stationary states).  ``mu``: chemical potential of both
    leads at zero bias (the equilibrium mu-bar of Fig. 14).  Natural units, dt = 0.2 with the
    exponential RK4 (the pole decay is treated exactly)."""
    off = 6 if extended else 0
    Lx = 12 + 2 * off
    mag = dict(J_sd=float(J_sd), J_ex=-1.0, damping=float(damping))
    layers: list[dict[str, Any]] = []
    if extended:
        layers.append({"name": "ML", "columns": [0, off]})
    layers += [
        {"name": "PL", "columns": [off, off + 4], "K": 0.4, "easy_axis": [1.0, 0.0, 0.0],
         "spin": [1.0, 0.0, 0.0], **mag},
        {"name": "SL", "columns": [off + 4, off + 8]},
        {"name": "FL", "columns": [off + 8, off + 12], "K": 0.02, "easy_axis": [0.0, 0.0, 1.0],
         "spin": [0.0, 0.0, 1.0], **mag},
    ]
    if extended:
        layers.append({"name": "MR", "columns": [off + 12, Lx]})
    leads = [{"side": side, "gamma": float(gamma), "temperature": float(temperature),
              "mu": float(mu)} for side in ("left", "right")]
    return {
        "name": f"paper 004 valve {Lx}x4, J_sd = {J_sd:g}" + (" (extended)" if extended else ""),
        "units": "natural",
        "lattice": {"size": [Lx, 4]},
        "layers": layers,
        "leads": leads,
        "bias": {"protocol": "none", "V": 0.0, "t_on": 0.0},
        "electrons": {"initial": "stationary", "n_poles": int(n_poles)},
        "time": {"dt": float(dt), "t_end": float(t_end), "output_every": int(output_every),
                 "checkpoint_every": 2500},
    }


def paper_valve(J_sd: float = 2.0, **kw) -> Config:
    """:func:`paper_valve_doc` as a validated :class:`toolkit.config.Config`."""
    return config_from_dict(paper_valve_doc(J_sd, **kw))


def valve_device(*, N_S: int = 5, N_NM: int = 10, J_sd: float = 1.0, J_ex: float = -1.0,
                 K: float = 0.0, B: Sequence[float] = (0.0, 0.0, 0.0), dt: float | None = None,
                 base: Config | None = None) -> Device:
    """The isolated valve of Sec. III A: PL (spins along x) | N_NM spacer sites | FL (along z).

    Without ``base``: a 1D chain of 2 N_S + N_NM sites (``N_S``, ``N_NM``, ``J_ex``, ``K``, ``B``
    used).  With ``base`` (a Config): its lattice, layers, electrons, solver and field are kept;
    the two magnetic layers get ``J_sd`` and initial spins x (first) and z (second), as Eq. (21)
    assumes; ``N_S``, ``N_NM``, ``J_ex``, ``K``, ``B`` are then ignored.  ``dt`` (default: the
    base config's, else 0.1) is the fixed RK 3/8 step.
    """
    if base is not None:
        return _device_from_base(base, J_sd, dt)
    if N_S < 1 or N_NM < 0:
        raise ConfigError(f"valve needs N_S >= 1 and N_NM >= 0, got N_S = {N_S}, N_NM = {N_NM}")
    n = 2 * N_S + N_NM
    b = DeviceBuilder(size=(n,))
    common = dict(J_sd=float(J_sd), J_ex=float(J_ex), K=float(K))
    b.add_layer("PL", (0, N_S), spin=(1.0, 0.0, 0.0), easy_axis=(1.0, 0.0, 0.0), **common)
    if N_NM:
        b.add_layer("SL", (N_S, N_S + N_NM))
    b.add_layer("FL", (n - N_S, n), spin=(0.0, 0.0, 1.0), easy_axis=(0.0, 0.0, 1.0), **common)
    b.set_field(tuple(float(x) for x in B))  # type: ignore[arg-type]  # length: config check
    b.set("time", dt=0.1 if dt is None else float(dt), output_every=1)
    b.set("output", spin_density=False)
    return b.finalized()


def _device_from_base(base: Config, J_sd: float, dt: float | None) -> Device:
    mag = [i for i, layer in enumerate(base.layers) if layer.magnetic]
    if len(mag) != 2:
        raise ConfigError(f"the J_eff analysis needs exactly two magnetic layers; the config "
                          f"has {len(mag)} ({[base.layers[i].name for i in mag]})")
    layers = list(base.layers)
    mag.sort(key=lambda i: layers[i].columns[0])
    for i, s in zip(mag, ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0))):
        layers[i] = replace(layers[i], J_sd=float(J_sd), spin=s, spins=None)
    time_cfg = base.time if dt is None else replace(base.time, dt=float(dt))
    cfg = replace(base, layers=tuple(layers), time=time_cfg)
    dev = device_from_config(cfg)
    counts = [len(dev.layer_spins(layers[i].name)) for i in mag]
    if counts[0] != counts[1]:
        raise ConfigError(f"Eq. (21) needs equal layers; the magnetic layers have {counts} spins")
    return dev


def valve_stages(quick: bool) -> dict:
    """The stage lengths (time units hbar/hopping) of the Sec. III B runs in the shared cache
    ``valve_runs`` (``valve_runs_quick`` for the --quick figures) of Figs. 6-13 and 19:
    ``stage1`` (V = 0) and ``t_end`` ({protocol: stage-2 length}).  Every script that shares
    the cache takes its lengths from here, so that a stage-1 or quench file one script left
    is the run the next one asks for (:func:`integrators.campaign.ensure_stage1` refuses a
    stage 1 of another length).  Full: stage 1 3000, stage 2 3000 (symmetric, t_R up to
    ~1e5) and 1500 (asymmetric, t_R of a few hundred); quick (a pipeline test, not
    converged; stage 2 is shorter than one free-layer period, too short for a relaxation
    fit): stage 1 80, stage 2 100."""
    if quick:
        return {"stage1": 80.0, "t_end": {"symmetric": 100.0, "asymmetric": 100.0}}
    return {"stage1": 3000.0, "t_end": {"symmetric": 3000.0, "asymmetric": 1500.0}}


def relaxation_plan(quick: bool) -> dict:
    """The bias grids of Figs. 8 and 11 ({J_sd: {protocol: V values}}) and the stage lengths
    of :func:`valve_stages` (``stage1``, ``t_end``).  Full: V = 0.5:12:0.5 and V' = 0.25:6:0.25
    (the same mu_l) at J_sd = 2, V = 2:12:2 and V' = 1:6:1 at J_sd = 3; quick: J_sd = 2, V = 1,
    8 and V' = 0.5, 4 (the cases of Figs. 6 and 9 among them)."""
    if quick:
        return {"grids": {2.0: {"symmetric": np.array([1.0, 8.0]),
                                "asymmetric": np.array([0.5, 4.0])}}, **valve_stages(True)}
    fine = {"symmetric": np.arange(1, 25) * 0.5, "asymmetric": np.arange(1, 25) * 0.25}
    coarse = {"symmetric": np.arange(1, 7) * 2.0, "asymmetric": np.arange(1, 7) * 1.0}
    return {"grids": {2.0: fine, 3.0: coarse}, **valve_stages(False)}
