"""Analysis of bias quenches of the open spin valve (paper 004, Sec. III B, Figs. 6-14, 20-22).

A *quench file* is a stage-2 result file: a run started at t = 0 from the relaxed stage-1
(V = 0) state with the bias switched on (``qcspin sweep`` writes one per V).  From it
:func:`analyze_quench` extracts

* the equilibrium layer magnetizations M_eq = M(t = 0) and the steady state M_ss, the mean over
  whole periods of the free-layer oscillation at the end of the record (the centre of the
  oscillation even when it has not decayed), and their difference dM = M_ss - M_eq;
* the relaxation fit of Eq. (22) to the envelope of M_r^x / N_S (t_R, R = 1/t_R, M_inf);
* the current-driven torque T_cd = J_F - J_r - J_F(t = 0) of Eq. (15) on the free layer,
  averaged like M_ss, where J_F is the spin current across the SL-FL plane (Eq. 14) and J_r the
  spin current from the valve into the right lead (Eq. 12);
* the effective torque T_eff = 2 K e x dM of every magnetic layer (Figs. 12, 13) and the exact
  anisotropy torque change T_ani = -(<tau_K>_ss - tau_K(0)), tau_K = sum_i 2K (S_i.e)(S_i x e),
  of which T_eff is the linearisation;
* the steady monolayer spin polarization P^z (Eq. F1) and plane charge currents (Eq. 13);
* the steady lead charge and spin currents (Eqs. 11, 12), averaged like M_ss.

:func:`analyze_sweep` does that for every ``V_*.h5`` of a sweep directory and writes the table
``analysis.h5``; ``qcspin quench DIR...`` is its command line.

Torque balance.  In a stationary state the spin entering the region between the SL-FL plane and
the right lead, J_F - J_r, is absorbed by the free-layer spins and balances the anisotropy
torque sum_i 2K (S_i.e)(S_i x e) (the intralayer exchange torques cancel pairwise).  Subtracting
the equilibrium balance and linearising in dM gives T_cd = 2K e x dM for unit spins near e:
``T_eff`` of the FL checks ``T_cd`` without any fitted factor.

Units: those of the files (natural: energy = hopping, time = hbar/hopping, spin = hbar, torque =
hbar per time unit).  Currents follow the project convention (README, "Conventions"): the
recorded ``lead_current`` is Re Tr Pi_l, half the electron inflow.

:func:`paper_valve` builds the config of the paper's 2D valve (12 x 4, N_S = 4 x 4, Gamma = 1,
T = 0.025, J_ex = -1, K_l = 0.4 along x, K_r = 0.02 along z, N_p = 30), optionally extended by
six metallic monolayers on each side (App. F, 24 x 4).
"""
from __future__ import annotations

import glob
import json
import os
import tomllib
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from analysis.relaxation import RelaxationFit, fit_relaxation, oscillation_envelope
from toolkit.config import Config, config_from_dict

__all__ = ["paper_valve", "paper_valve_doc", "QuenchAnalysis", "analyze_quench",
           "analyze_sweep", "read_analysis", "read_quench", "ensure_stage1", "quench_sweeps",
           "relaxation_plan", "equilibrium_transmission"]

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


@dataclass(frozen=True)
class QuenchAnalysis:
    """What :func:`analyze_quench` extracts from one stage-2 file (see module doc; units of
    the file).  Arrays over layers follow ``layers`` (all layers, non-magnetic ones are zero);
    over leads ``leads``."""

    path: str
    protocol: str
    V: float
    mu: np.ndarray              # (n_leads,) lead chemical potentials at the end
    layers: tuple[str, ...]
    n_spins: np.ndarray         # (n_layers,) classical spins per layer
    M_eq: np.ndarray            # (n_layers, 3) at t = 0
    M_ss: np.ndarray            # (n_layers, 3) mean over whole periods at the end
    dM: np.ndarray              # M_ss - M_eq
    T_eff: np.ndarray           # (n_layers, 3) 2 K e x dM
    T_ani: np.ndarray           # (n_layers, 3) -(<tau_K>_ss - tau_K(0)), exact in S
    T_cd: np.ndarray            # (3,) Eq. (15), free layer, averaged like M_ss
    lead_current: np.ndarray    # (n_leads,) Re Tr Pi_l, averaged
    lead_spin_current: np.ndarray  # (n_leads, 3) Re Tr sigma Pi_l, averaged
    polarization: np.ndarray    # (Lx,) monolayer P^z (Eq. F1), averaged
    plane_current: np.ndarray   # (n_planes,) Eq. (13), averaged
    planes: np.ndarray          # plane positions x (between columns x and x + 1)
    window: tuple[float, float]  # averaging window
    fit: RelaxationFit          # Eq. (22) on M_r^x / N_S
    t_end: float


def _config_of(f: h5py.File) -> Config:
    return config_from_dict(tomllib.loads(f.attrs["config"]))


def _mean_window(t: np.ndarray, m: np.ndarray, tail: float) -> tuple[float, float]:
    """Whole periods of ``m`` inside the last ``tail`` fraction of the record (between the
    first and last maximum found there); the whole tail when fewer than two maxima."""
    t0 = t[0] + (1.0 - tail) * (t[-1] - t[0])
    try:
        env = oscillation_envelope(t, m, t0, kind="upper")
        tm = env.t
    except (ValueError, RuntimeError):
        tm = np.array([])
    if len(tm) >= 2:
        return float(tm[0]), float(tm[-1])
    return float(t0), float(t[-1])


def _average(t: np.ndarray, y: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Time average of y over ``window`` (trapezoid on the output grid, interpolated ends)."""
    a, b = window
    if b <= a:
        return np.asarray(y[-1], float)
    inner = (t > a) & (t < b)
    tt = np.concatenate([[a], t[inner], [b]])
    flat = y.reshape(len(t), -1)
    ya = np.array([np.interp(a, t, c) for c in flat.T])
    yb = np.array([np.interp(b, t, c) for c in flat.T])
    yy = np.concatenate([ya[None], flat[inner], yb[None]])
    return (np.trapz(yy, tt, axis=0) / (b - a)).reshape(y.shape[1:])


def read_quench(path: str, t_max: float | None = None) -> dict:
    """The series of a result file that the quench analysis and the figures use (the record up
    to ``t_max``): ``t``, ``M`` (layer magnetizations), ``names``, ``n_spins`` per layer, the
    SL-FL plane currents ``JF`` (spin, Eq. 14) and ``I_F`` (charge, Eq. 13), the currents from
    the valve into the right lead ``J_r`` and ``I_r`` (Eqs. 11, 12 with the paper's minus sign),
    the anisotropy torque ``tau`` per layer, and the raw series (``I``, ``J``, ``IF``, ``Pz``,
    ``S``, ``mu``, ``cfg``).  Raises ValueError when the SL-FL plane was not recorded."""
    with h5py.File(path, "r") as f:
        cfg = _config_of(f)
        t = f["time"][:]
        n = len(t) if t_max is None else int(np.searchsorted(t, t_max * (1 + 1e-12), "right"))
        t = t[:n]
        d = {"cfg": cfg, "t": t, "M": f["layer_magnetization"][:n],
             "planes": list(f["device"].attrs["planes"]),
             "names": tuple(json.loads(f["device"].attrs["layer_names"])),
             "spin_layer": f["device/spin_layer"][:], "S": f["spins"][:n],
             "Pz": f["monolayer_polarization"][:n],
             "IF": f["plane_current"][:n] if "plane_current" in f else np.zeros((n, 0)),
             "I": f["lead_current"][:n] if "lead_current" in f else np.zeros((n, 0)),
             "J": (f["lead_spin_current"][:n] if "lead_spin_current" in f
                   else np.zeros((n, 0, 3))),
             "mu": f["lead_mu"][n - 1] if "lead_mu" in f and n else np.zeros(0)}
        JF = f["plane_spin_current"][:n] if "plane_spin_current" in f else None
    if len(t) < 3:
        raise ValueError(f"{path}: {len(t)} output times; a quench analysis needs a record")
    layers = {l.name: l for l in cfg.layers}
    if "FL" not in layers:
        raise ValueError(f"{path}: no layer named 'FL' (layers {list(layers)})")
    x_plane = layers["FL"].columns[0] - 1
    if JF is None or x_plane not in d["planes"]:
        raise ValueError(f"{path}: the SL-FL plane x = {x_plane} is not among the recorded "
                         f"planes {d['planes']} ([output] planes)")
    d["JF"] = JF[:, d["planes"].index(x_plane)]
    d["I_F"] = d["IF"][:, d["planes"].index(x_plane)]
    right = [k for k, l in enumerate(cfg.leads) if l.side == "right"]
    d["J_r"] = -d["J"][:, right[0]] if right else np.zeros((len(t), 3))
    d["I_r"] = -d["I"][:, right[0]] if right else np.zeros(len(t))
    names = d["names"]
    d["n_spins"] = np.array([int(np.sum(d["spin_layer"] == k)) for k in range(len(names))])
    d["i_fl"] = names.index("FL")
    d["tau"] = np.zeros((len(t), len(names), 3))
    d["e"] = {}
    for k, name in enumerate(names):
        lay = layers[name]
        if lay.magnetic and lay.K:
            e = np.asarray(lay.easy_axis, float)
            e = e / np.linalg.norm(e)
            Sk = d["S"][:, d["spin_layer"] == k]
            d["tau"][:, k] = (2.0 * lay.K * (Sk @ e)[..., None] * np.cross(Sk, e)).sum(axis=1)
            d["e"][k] = (lay.K, e)
    d["m"] = d["M"][:, d["i_fl"], 0] / d["n_spins"][d["i_fl"]]
    return d


def analyze_quench(path: str, *, equilibrium: str | None = None, t_min: float = 200.0,
                   tail: float = 0.5, kind: str = "both",
                   t_max: float | None = None) -> QuenchAnalysis:
    """Analyse one stage-2 file (see module doc).  ``equilibrium``: the stage-1 file; the
    equilibrium values (M_eq, J_F^eq, anisotropy torque) are then its means over whole periods
    of the free-layer oscillation in the last ``tail`` of its record -- the centre of what is
    left of the stage-1 precession -- instead of the values at t = 0 of the quench (the same
    when stage 1 has relaxed).  ``t_min``: the transient left out of the Eq. (22) fit (the
    paper drops t ~ 100-300); ``tail``: fraction of the record at the end in which whole
    periods are averaged for the steady state; ``kind``: envelope of
    :func:`analysis.relaxation.fit_relaxation`; ``t_max``: analyse the record up to this time
    only (e.g. to check that a steady state does not depend on the record length)."""
    d = read_quench(path, t_max)
    t, cfg, names = d["t"], d["cfg"], d["names"]
    window = _mean_window(t, d["m"], tail)
    if equilibrium is not None:
        q = read_quench(equilibrium)
        if q["names"] != names or q["M"].shape[1:] != d["M"].shape[1:]:
            raise ValueError(f"equilibrium file '{equilibrium}' describes another valve "
                             f"(layers {q['names']}) than '{path}' ({names})")
        w_eq = _mean_window(q["t"], q["m"], tail)
        M_eq = _average(q["t"], q["M"], w_eq)
        JF_eq = _average(q["t"], q["JF"], w_eq)
        tau_eq = _average(q["t"], q["tau"], w_eq)
    else:
        M_eq, JF_eq, tau_eq = d["M"][0], d["JF"][0], d["tau"][0]
    M_ss = _average(t, d["M"], window)
    dM = M_ss - M_eq
    T_eff = np.zeros_like(dM)
    for k, (K, e) in d["e"].items():
        T_eff[k] = 2.0 * K * np.cross(e, dM[k])
    T_ani = -(_average(t, d["tau"], window) - tau_eq)
    T_cd = _average(t, d["JF"] - d["J_r"], window) - JF_eq
    fit = fit_relaxation(t, d["m"], t_min=min(t_min, 0.5 * t[-1]), kind=kind)
    return QuenchAnalysis(
        path=path, protocol=cfg.bias.protocol, V=float(cfg.bias.V),
        mu=np.asarray(d["mu"], float), layers=names, n_spins=d["n_spins"], M_eq=M_eq,
        M_ss=M_ss, dM=dM, T_eff=T_eff, T_ani=T_ani, T_cd=T_cd,
        lead_current=_average(t, d["I"], window),
        lead_spin_current=_average(t, d["J"], window),
        polarization=_average(t, d["Pz"], window),
        plane_current=_average(t, d["IF"], window), planes=np.asarray(d["planes"]),
        window=window, fit=fit, t_end=float(t[-1]))


def _stage1_of(outdir: str) -> str | None:
    """The stage-1 file of a sweep directory (``sweep.h5`` attribute ``stage1``; looked up
    as given, next to the directory and inside it, so that moved run trees still work)."""
    summary = os.path.join(outdir, "sweep.h5")
    if not os.path.exists(summary):
        return None
    with h5py.File(summary, "r") as f:
        s1 = f.attrs.get("stage1")
    if not s1:
        return None
    base = os.path.basename(str(s1))
    for cand in (str(s1), os.path.join(os.path.dirname(os.path.abspath(outdir)), base),
                 os.path.join(outdir, base)):
        if os.path.exists(cand):
            return cand
    return None


_TABLE = ("V", "mu", "n_spins", "M_eq", "M_ss", "dM", "T_eff", "T_ani", "T_cd", "lead_current",
          "lead_spin_current", "polarization", "plane_current", "planes", "window", "t_end")
_FIT = ("t_R", "t_R_err", "R", "M_inf", "A_ref", "rms", "n_points", "t_span", "valid",
        "lower_bound", "t_R_lower")


def analyze_sweep(outdir: str, *, output: str | None = None, overwrite: bool = False,
                  **kw) -> dict[str, Any]:
    """:func:`analyze_quench` of every ``outdir/V_*.h5`` (sorted by V; equilibrium from the
    sweep's stage-1 file when ``sweep.h5`` names one that exists); writes the table to
    ``output`` (default ``outdir/analysis.h5``; never replaced without ``overwrite``) and
    returns it, with the layer names under ``"layers"`` (a tuple; an attribute in the file).
    Serial (call it on one rank)."""
    files = sorted(glob.glob(os.path.join(outdir, "V_*.h5")))
    if not files:
        raise FileNotFoundError(f"no V_*.h5 quench files in '{outdir}'")
    output = output or os.path.join(outdir, "analysis.h5")
    if os.path.exists(output) and not overwrite:  # refuse before the work
        from toolkit.io import FileExistsErrorQC

        raise FileExistsErrorQC(f"'{output}' exists; use --overwrite")
    kw.setdefault("equilibrium", _stage1_of(outdir))
    res = sorted((analyze_quench(p, **kw) for p in files), key=lambda r: r.V)
    protocols = {r.protocol for r in res}
    if len(protocols) != 1:
        raise ValueError(f"{outdir}: mixed bias protocols {sorted(protocols)}")
    table: dict[str, Any] = {k: np.array([getattr(r, k) for r in res]) for k in _TABLE}
    fits = [r.fit.as_dict() for r in res]
    for k in _FIT:
        table[k] = np.array([d.get(k, np.nan) for d in fits],
                            dtype=bool if k in ("valid", "lower_bound") else float)
    table["reason"] = np.array([d.get("reason", "") for d in fits], dtype=object)
    with h5py.File(output, "w") as f:
        from toolkit.io import FORMAT_VERSION

        f.attrs["kind"] = "quench"
        f.attrs["qcspin_format"] = FORMAT_VERSION
        for k, v in table.items():
            if v.dtype == object:
                f[k] = v.astype(h5py.string_dtype())
            else:
                f[k] = v
        f.attrs["protocol"] = protocols.pop()
        f.attrs["layers"] = json.dumps(list(res[0].layers))
        f.attrs["files"] = json.dumps([os.path.basename(r.path) for r in res])
        f.attrs["description"] = (__doc__.split("\n\n")[1] if __doc__   # None under -OO
                                  else "qcspin quench analysis")
    table["layers"] = tuple(res[0].layers)
    return table


def read_analysis(path: str) -> dict:
    """The table written by :func:`analyze_sweep` (strings decoded, attrs under '_attrs')."""
    with h5py.File(path, "r") as f:
        out = {k: (f[k].asstr()[()] if f[k].dtype.kind == "O" else f[k][()]) for k in f}
        out["_attrs"] = dict(f.attrs)
    return out


def ensure_stage1(runs_dir: str, J_sd: float, *, stage1_time: float, comm=None,
                  config_kw: dict | None = None, stage1_damping: float = 0.0) -> str:
    """``runs_dir/J<J_sd>_stage1.h5``: stage 1 of ``paper_valve(J_sd, **config_kw)`` (V = 0,
    spins released from their easy axes, ``stage1_time`` long), run unless the file exists.
    ``stage1_damping``: extra Gilbert damping in stage 1 only (same equilibrium, sooner).
    Collective."""
    from integrators.simulation import Simulation
    from toolkit.parallel import barrier, bcast, get_comm

    comm = get_comm(comm)
    kw = dict(config_kw or {})
    path = os.path.join(runs_dir, f"J{J_sd:g}_stage1.h5")
    if comm.getRank() == 0:
        os.makedirs(runs_dir, exist_ok=True)
    if not bcast(os.path.exists(path) if comm.getRank() == 0 else None, comm):
        cfg1 = paper_valve(J_sd, **{**kw, **({"damping": stage1_damping} if stage1_damping
                                             else {})})
        sim = Simulation(cfg1, comm)
        try:
            sim.run(path, t_end=stage1_time, progress=False, handle_signals=False)
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
    from analysis.sweep import bias_sweep

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


def relaxation_plan(quick: bool) -> dict:
    """The bias grids of Figs. 8 and 11 ({J_sd: {protocol: V values}}) and the stage lengths
    (time units).  Full: V = 0.5:12:0.5 and V' = 0.25:6:0.25 (the same mu_l) at J_sd = 2,
    V = 2:12:2 and V' = 1:6:1 at J_sd = 3; stage 1 3000, stage 2 3000 (symmetric, t_R up to
    ~1e5) and 1500 (asymmetric, t_R of a few hundred); quick: J_sd = 2, three V per protocol,
    600/800."""
    if quick:
        return {"grids": {2.0: {"symmetric": np.array([1.0, 4.0, 8.0]),
                                "asymmetric": np.array([0.5, 2.0, 4.0])}},
                "stage1": 600.0, "t_end": 800.0}
    fine = {"symmetric": np.arange(1, 25) * 0.5, "asymmetric": np.arange(1, 25) * 0.25}
    coarse = {"symmetric": np.arange(1, 7) * 2.0, "asymmetric": np.arange(1, 7) * 1.0}
    return {"grids": {2.0: fine, 3.0: coarse}, "stage1": 3000.0,
            "t_end": {"symmetric": 3000.0, "asymmetric": 1500.0}}


def equilibrium_transmission(stage1: str, energies, *, comm=None):
    """Theta, P and DOSh (Eqs. 16-18, ``analysis.transport.transmission``) of the valve of the
    stage-1 file ``stage1`` with its final (equilibrium) spins and zero bias.  Collective."""
    from analysis.transport import transmission, transport_leads
    from toolkit.device import device_from_config
    from toolkit.io import load_checkpoint
    from toolkit.parallel import bcast, get_comm

    comm = get_comm(comm)
    ck = bcast(load_checkpoint(stage1) if comm.getRank() == 0 else None, comm)
    cfg = config_from_dict(tomllib.loads(ck["config"]))
    dev = device_from_config(cfg)
    leads = transport_leads(cfg, dev).leads
    return transmission(dev, leads, np.asarray(energies, float), ck["spins"], comm=comm)
