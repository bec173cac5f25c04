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

The paper's valve is :func:`toolkit.presets.paper_valve`; the runs are made by
``integrators.campaign`` (:func:`~integrators.campaign.bias_sweep`,
:func:`~integrators.campaign.quench_sweeps`).
"""
from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.relaxation import RelaxationFit, fit_relaxation, oscillation_envelope
from toolkit.io import FileExistsErrorQC, ResultFileError, write_table
from toolkit.results import load_result

__all__ = ["QuenchAnalysis", "analyze_quench", "analyze_sweep", "read_analysis",
           "read_quench", "equilibrium_transmission"]


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
    r = load_result(path)
    if r.kind != "run" or r.device is None:
        raise ResultFileError(f"'{path}' is a {r.kind} file, not a run's result file")
    cfg = r.config
    t = r["time"]
    n = len(t) if t_max is None else int(np.searchsorted(t, t_max * (1 + 1e-12), "right"))
    t = t[:n]

    def series(name: str, empty: tuple) -> np.ndarray:
        return r[name, :n] if name in r else np.zeros((n,) + empty)

    d = {"cfg": cfg, "t": t, "M": r["layer_magnetization", :n],
         "planes": list(r.device.planes), "names": r.device.layer_names,
         "spin_layer": r.device.spin_layer, "S": r["spins", :n],
         "Pz": r["monolayer_polarization", :n], "IF": series("plane_current", (0,)),
         "I": series("lead_current", (0,)), "J": series("lead_spin_current", (0, 3)),
         "mu": r["lead_mu", n - 1] if "lead_mu" in r and n else np.zeros(0)}
    JF = r["plane_spin_current", :n] if "plane_spin_current" in r else None
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
    s1 = load_result(summary).attrs.get("stage1")
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
    write_table(output, table,
                {"protocol": protocols.pop(), "layers": json.dumps(list(res[0].layers)),
                 "files": json.dumps([os.path.basename(r.path) for r in res]),
                 "description": (__doc__.split("\n\n")[1] if __doc__   # None under -OO
                                 else "qcspin quench analysis")},
                kind="quench", overwrite=overwrite)
    table["layers"] = tuple(res[0].layers)
    return table


def read_analysis(path: str) -> dict:
    """The table written by :func:`analyze_sweep` (strings decoded, the attributes under
    '_attrs')."""
    r = load_result(path)
    if r.kind != "quench":
        raise ResultFileError(f"'{path}' is a {r.kind} file, not a quench analysis table")
    out: dict[str, Any] = r.read(*r.names)
    out["_attrs"] = dict(r.attrs)        # JSON texts decoded (layers, files: lists)
    return out


def equilibrium_transmission(stage1: str, energies, *, comm=None):
    """Theta, P and DOSh (Eqs. 16-18, ``analysis.transport.transmission``) of the valve of the
    stage-1 file ``stage1`` with its final (equilibrium) spins and zero bias.  Collective."""
    from analysis.transport import transmission, transport_leads
    from toolkit.device import device_from_config
    from toolkit.parallel import bcast, get_comm

    comm = get_comm(comm)
    r = load_result(stage1)
    ck = bcast(r.checkpoint() if comm.getRank() == 0 else None, comm)
    cfg = r.config
    dev = device_from_config(cfg)
    leads = transport_leads(cfg, dev).leads
    return transmission(dev, leads, np.asarray(energies, float), ck["spins"], comm=comm)
