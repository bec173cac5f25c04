#!/usr/bin/env python
"""Paper 000's runs (FM/NM/FM spin valve, Fig. 1b; FM/NM/AFI/FM junction, Fig. 1a): the run
definitions and the resumable run cache shared by the ``scripts/fig000_*.py`` figures, and
(run as a script) an overview of every run: the mean M_z(t) of the FM analyzer and a table of
pulses, switching times and the analyzer's largest tilt.

Every run is one of the two example configs (``examples/valve_000.toml``,
``examples/afi_junction_000.toml``, read with ``toolkit.config.load_config`` and overrides),
from the stationary start, a square pulse on the left lead from t = 0 (the paper's t_0 = 1 ps
after its 1 ps of lead coupling: here t = 0 *is* the pulse onset), bond currents through every
plane of the device (``output.planes``), records every 5 fs (``--quick``: 2 fs):

=============  =========  ==========  ==================================================
run            V_H (V)    V_D (ps)    what
=============  =========  ==========  ==================================================
valve_paper    0.25       0.6         Figs. 2b, 3a,b, 4e-h, Video 1: the paper's pulse
valve_switch   1.0        1.3         a pulse that does switch the valve (see below)
valve_steady   0.25       0.6         Fig. 3c,d: ``[llg] drive = "steady-state"``
afi_paper      0.55       1.0         Figs. 2a, 4a-d, 5, 6a,c, 7a,b, Video 2
afi_noexch     0.55       1.0         J_AFI-FM = 0 (``exchange.0.J_ex = 0``): Figs. 4, 6b,d,
                                      Video 3
afi_nosd       0.55       1.0         J_sd = 0 in the analyzer F only: Figs. 2c, 7c,d
afi_strong     2.0        2.0         the AFI junction's largest torque found (no switch)
=============  =========  ==========  ==================================================

No square pulse found switches the AFI junction: 600 fs scans of V_H = 0.4..2.5 V give a mean
field-like torque on the first AFI moment of at most ~4 meV (0.85-1.0 V and 2.0 V; the sign
changes with V_H), 3 ps pulses of 1.0 and 1.25 V tilt the analyzer by at most 21 and 15
degrees, while rotating the 23 coupled moments over the anisotropy barrier needs of the order
of 23 K = 6 meV; ``afi_strong`` is the strongest of them.  Pulse trains at the AFI's free
precession period (175 fs) and at the analyzer mode's (1.4 ps) tilt the analyzer by at most
15 and 21 degrees (docs/papers/paper000.md).  The spin valve switches for
|sum of T_FL| > ~3K = 0.75 meV (0.25 V: +0.30 meV, a 10 degree tilt; 1.0 V: -2.5 meV).

Full runs: 6 ps (explicit lead sites as in the examples, 40 per lead); ``--quick`` (a pipeline
test, not physics): 8 lead sites, 100 fs (valve) / 80 fs (AFI), every pulse 40 fs long.
Cache: ``OUTDIR/paper000_runs`` (``_quick``), one ``<run>.h5`` each.  A file that holds the same
run (config equal apart from ``time.t_end``), finished at least as far, is reused; a shorter
finished one, or one stopped early (checkpoint), is continued; a file of another config is
refused (remove it), never replaced.

    python scripts/fig000_runs.py [--quick] [--runs valve_paper,afi_paper] [--outdir DIR]

Data DIR/fig000_runs.h5; plot DIR/fig000_runs.png.  Serial or under mpirun (each run on all
ranks together).
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time as _time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from integrators.campaign import has_checkpoint  # noqa: E402
from integrators.switching import SwitchingCriterion, layer_switching  # noqa: E402
from toolkit import log  # noqa: E402
from toolkit.config import Config, load_config, with_changes  # noqa: E402
from toolkit.io import FileExistsErrorQC, ResultFileError, is_locked  # noqa: E402
from toolkit.parallel import barrier, bcast, get_comm  # noqa: E402
from toolkit.results import load_result  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
_log = log.get_logger("fig000_runs")

#: hbar in eV fs (toolkit.units' value): rates per fs -> energies (e/hbar x eV units)
HBAR = 0.6582119569


@dataclasses.dataclass(frozen=True)
class Run:
    """One run of the cache: ``example`` config, pulse height ``V`` (V) and duration ``V_D``
    (fs, full mode), extra ``--set`` overrides, what it is for."""

    example: str
    V: float
    V_D: float
    overrides: tuple[str, ...] = ()
    what: str = ""

    @property
    def device(self) -> str:
        return "valve" if self.example.startswith("valve") else "afi"


VALVE, AFI = "valve_000.toml", "afi_junction_000.toml"
RUNS: dict[str, Run] = {
    "valve_paper": Run(VALVE, 0.25, 600.0, (), "spin valve, the paper's pulse (Fig. 2b)"),
    "valve_switch": Run(VALVE, 1.0, 1300.0, (), "spin valve, a pulse that switches"),
    "valve_steady": Run(VALVE, 0.25, 600.0, ('llg.drive="steady-state"',),
                        "spin valve, steady-state-NEGF+LLG (Fig. 3c,d)"),
    "afi_paper": Run(AFI, 0.55, 1000.0, (), "AFI junction, the paper's pulse (Fig. 2a)"),
    "afi_noexch": Run(AFI, 0.55, 1000.0, ("exchange.0.J_ex=0.0",),
                      "AFI junction, J_AFI-FM = 0 (Video 3)"),
    "afi_nosd": Run(AFI, 0.55, 1000.0, ("layers.F.J_sd=0.0",),
                    "AFI junction, J_sd = 0 in the analyzer (Fig. 2c)"),
    "afi_strong": Run(AFI, 2.0, 2000.0, (), "AFI junction, the largest torque found"),
}

T_END = {"valve": 6000.0, "afi": 6000.0}            # fs, full mode
T_END_QUICK = {"valve": 100.0, "afi": 80.0}         # fs, --quick (pipeline test)
V_D_QUICK = 40.0                                    # fs, every pulse in --quick
LX = {"valve": 8, "afi": 28}                        # device columns of the two examples
#: the switching criterion of the figures (integrators.switching defaults: M_z <= -0.9 for 500 fs)
CRITERION = SwitchingCriterion()
CRITERION_QUICK = SwitchingCriterion(dwell=10.0)


def runs_dir(outdir: str, quick: bool) -> str:
    """The run cache directory below ``outdir``."""
    return os.path.join(outdir, "paper000_runs" + ("_quick" if quick else ""))


def base_overrides(device: str, quick: bool) -> list[str]:
    """Overrides of every run of ``device`` ('valve' or 'afi'): planes, output, length."""
    Lx = LX[device]
    ov = [f"output.planes={list(range(Lx - 1))}",
          f"time.t_end={(T_END_QUICK if quick else T_END)[device]}",
          f"time.output_every={10 if quick else 25}"]
    if quick:
        ov += ["leads.left.sites=8", "leads.right.sites=8"]
    return ov


def example_config(device: str, quick: bool, overrides=()) -> Config:
    """The example config of ``device`` with :func:`base_overrides` and ``overrides``."""
    ex = VALVE if device == "valve" else AFI
    return load_config(os.path.join(EXAMPLES, ex), base_overrides(device, quick)
                       + list(overrides))


def pulse(name: str, quick: bool) -> tuple[float, float]:
    """(V_H in V, V_D in fs) of run ``name``."""
    r = RUNS[name]
    return r.V, (V_D_QUICK if quick else r.V_D)


def run_config(name: str, quick: bool) -> Config:
    """The config of run ``name`` (KeyError naming the runs otherwise)."""
    if name not in RUNS:
        raise KeyError(f"run {name!r} is not defined: expected one of {sorted(RUNS)}")
    r = RUNS[name]
    V, VD = pulse(name, quick)
    return example_config(r.device, quick, [f"bias.V={V}", "bias.t_on=0.0",
                                            f"bias.t_off={VD}", *r.overrides])


def run_path(name: str, quick: bool, outdir: str) -> str:
    return os.path.join(runs_dir(outdir, quick), f"{name}.h5")


def _action(path: str, cfg: Config) -> tuple[str, str]:
    """('run' | 'reuse' | 'resume', '') or ('', why the file may not be used).  Serial."""
    if not os.path.exists(path):
        return "run", ""
    if is_locked(path):
        return "", f"'{path}' is being written by another run"
    try:
        r = load_result(path)
        have = r.config if r.kind == "run" else None
    except ResultFileError as exc:
        return "", str(exc)
    if have is None:
        return "", f"'{path}' is not a run file"
    want_t = cfg.time.t_end
    if with_changes(have, time={"t_end": want_t}) != cfg:
        keys = [f.name for f in dataclasses.fields(cfg)
                if getattr(have, f.name) != getattr(cfg, f.name)]
        return "", f"'{path}' holds another run (config sections differing: {', '.join(keys)})"
    t_have = float(r["time", -1]) if r.names and "time" in r.names and r.shape("time")[0] else 0.
    if r.status == "finished" and t_have >= want_t - 1e-6:
        return "reuse", ""
    if r.status in ("finished", "running", "interrupted") and has_checkpoint(path):
        return "resume", ""
    return "", f"'{path}' has status '{r.status}' ({r.message or 'no checkpoint'})"


def ensure_run(name: str, quick: bool, outdir: str, comm=None) -> str:
    """The file of run ``name`` in the cache of ``outdir``: run (or continued) unless a
    finished file of the same run exists.  FileExistsErrorQC on every rank if the file holds
    something else.  Collective (the run uses every rank of ``comm``)."""
    from integrators.simulation import Simulation

    comm = get_comm(comm)
    cfg = run_config(name, quick)
    path = run_path(name, quick, outdir)
    action, why = "", ""
    if comm.getRank() == 0:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        action, why = _action(path, cfg)
    action, why = bcast((action, why), comm)
    if not action:
        raise FileExistsErrorQC(f"{why}: the cache '{os.path.dirname(path)}' has another run "
                                f"{name!r} than the one asked for; remove the file or use "
                                f"another --outdir")
    if action != "reuse":
        t0 = _time.perf_counter()
        _log.info(f"{name}: {'continuing' if action == 'resume' else 'running'} {path} "
                  f"(to {cfg.time.t_end:g} fs)", extra={"label": ""})
        sim = (Simulation.from_checkpoint(path, cfg, comm) if action == "resume"
               else Simulation(cfg, comm))
        try:
            sim.run(path, restart=action == "resume", progress=False, handle_signals=False)
        finally:
            sim.destroy()
        _log.info(f"{name}: done in {_time.perf_counter() - t0:.0f} s", extra={"label": ""})
    barrier(comm)
    return path


def ensure_runs(names, quick: bool, outdir: str, comm=None) -> dict[str, str]:
    """{name: file} of :func:`ensure_run` for each name, in order.  Collective."""
    return {n: ensure_run(n, quick, outdir, comm) for n in names}


# ----------------------------------------------------------------------------- reading
def layer_index(r, layer: str) -> np.ndarray:
    """Indices (into the classical vectors) of the moments of ``layer`` of run file ``r``."""
    dev = r.device
    return np.flatnonzero(np.asarray(dev.spin_layer) == dev.layer(layer))


def pulse_window(r) -> tuple[float, float]:
    """(t_on, t_off) of the run's square pulse in fs."""
    b = r.config.bias
    return float(b.t_on), float(b.t_off)


def switching(r, quick: bool) -> tuple[float | None, bool]:
    """(t_s, decided) of the analyzer F of run file ``r`` (:data:`CRITERION`)."""
    return layer_switching(r, "F", CRITERION_QUICK if quick else CRITERION)


def tilt_deg(M: np.ndarray) -> np.ndarray:
    """Angle (degrees) of unit vectors M (..., 3) from +z."""
    return np.degrees(np.arccos(np.clip(M[..., 2], -1.0, 1.0)))


def wall_seconds(r) -> float:
    """Wall time of a run file: the sum over its run segments (each restarts wall_time)."""
    w = np.asarray(r["wall_time"], float)
    if len(w) == 0:
        return 0.0
    seg = np.flatnonzero(np.diff(w) < 0)          # a new segment restarts the clock
    return float(sum(w[i] for i in seg) + w[-1])


def note(quick: bool) -> str:
    """What every paper-000 figure does differently from the paper."""
    text = ("Differences from paper 000: g/mu_M = g_e/hbar (a moment of one electron spin) and "
            "the current-driven drive from the stationary start (t = 0 here is the pulse onset, "
            "the paper's t_0 = 1 ps); the TB leads as auxiliary modes of 40 explicit sites with "
            "a graded absorber; T = 300 K (not stated in the paper); dt = 0.2 fs "
            "(paper: 0.1 fs). With these conventions the paper's pulses give much smaller "
            "torques and no switching; the numbers do not match the paper's, only the "
            "quantities, orderings and trends are comparable.")
    if quick:
        text += (" QUICK MODE (pipeline test, not physics): 8 lead sites, 40 fs pulses, "
                 "runs of 80-100 fs.")
    return text


def pulse_text(g: dict) -> str:
    """'0.25 V / 0.6 ps' from a figure group's V_H, t_on_fs, t_off_fs attributes."""
    return f"{g['V_H']:g} V / {(g['t_off_fs'] - g['t_on_fs']) * 1e-3:g} ps"


def span(ax, g: dict) -> None:
    """Shade the pulse window of a figure group's t_on_fs..t_off_fs on an axis in ps."""
    ax.axvspan(g["t_on_fs"] * 1e-3, g["t_off_fs"] * 1e-3, color="0.85", lw=0, zorder=0)


def zoom(axes, t_ps, t_max: float = 3.0) -> None:
    """Time axes (ps) from just before 0 to ``t_max`` ps or the end of the record: the pulse
    and the first ps after it, where the currents and torques of paper 000 live."""
    hi = min(float(t_max), float(np.max(t_ps)))
    for ax in np.ravel(axes):
        ax.set_xlim(-0.02 * hi, hi)


def decade(*arrays) -> int:
    """k such that the largest |value| of ``arrays`` times 10^-k lies in [1, 10), or 0 when
    the values are readable as they are (1e-2 <= max < 1e3) or all zero."""
    m = max((float(np.nanmax(np.abs(a))) for a in arrays if np.size(a)), default=0.0)
    if not np.isfinite(m) or m == 0.0 or 1e-2 <= m < 1e3:
        return 0
    return int(np.floor(np.log10(m)))


def scaled_label(label: str, unit: str, k: int) -> str:
    """'label (unit)' or 'label (10^k unit)'."""
    return f"{label} ({unit})" if k == 0 else f"{label} ($10^{{{k}}}$ {unit})"


# ----------------------------------------------------------------------------- overview
def compute(h5, args, comm):
    from toolkit.io import write_table

    names = [n.strip() for n in args.runs.split(",") if n.strip()] if args.runs else list(RUNS)
    bad = [n for n in names if n not in RUNS]
    if bad:
        raise SystemExit(f"fig000_runs: --runs {bad[0]!r} is not defined: expected some of "
                         f"{sorted(RUNS)}")
    files = ensure_runs(names, args.quick, args.outdir, comm)
    if comm.getRank() != 0:
        return
    data, groups = {}, {}
    for n, path in files.items():
        r = load_result(path)
        F = layer_index(r, "F")
        M = r["spins"][:, F, :]
        ts, decided = switching(r, args.quick)
        V, VD = pulse(n, args.quick)
        data[f"{n}/time"] = (r["time"], "fs", "time from the pulse onset")
        data[f"{n}/M_F"] = (M, None, "analyzer moments M_1..3 (unit vectors)")
        data[f"{n}/mean_Mz"] = (M[:, :, 2].mean(axis=1), None, "mean M_z of the analyzer")
        groups[n] = {"V_H": V, "V_D_fs": VD, "overrides": list(RUNS[n].overrides),
                     "what": RUNS[n].what, "t_switch_fs": np.nan if ts is None else ts,
                     "switched": ts is not None, "decided": decided,
                     "max_tilt_deg": float(tilt_deg(M).max()),
                     "final_mean_Mz": float(M[-1, :, 2].mean()),
                     "t_end_fs": float(r["time", -1]), "wall_s": wall_seconds(r),
                     "file": os.path.abspath(path)}
    write_table(h5, data, {"note": note(args.quick), "criterion":
                           dataclasses.asdict(CRITERION_QUICK if args.quick else CRITERION)},
                kind="figure", group_attrs=groups, overwrite=args.overwrite)


def plot(h5, png):
    from analysis.plots import use_agg

    plt = use_agg()
    r = load_result(h5)
    names = [n for n in RUNS if f"{n}/time" in r.names]
    fig, (ax, axt) = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [3, 2]})
    rows = []
    for k, n in enumerate(names):
        g = r.group_attrs(n)
        t = r[f"{n}/time"] * 1e-3
        ls = "-" if RUNS[n].device == "valve" else "--"
        ax.plot(t, r[f"{n}/mean_Mz"], ls, color=f"C{k}", label=n)
        ax.axvline(g["V_D_fs"] * 1e-3, color=f"C{k}", lw=0.6, ls=":")
        ts = g["t_switch_fs"]
        rows.append([n, f"{g['V_H']:g}", f"{g['V_D_fs'] * 1e-3:g}",
                     "-" if not np.isfinite(ts) else f"{ts * 1e-3:.2f}",
                     f"{g['max_tilt_deg']:.1f}", f"{g['final_mean_Mz']:+.2f}",
                     f"{g['wall_s'] / 60:.0f}"])
    ax.set_xlabel("t (ps) from the pulse onset (dotted: pulse end)")
    ax.set_ylabel("mean $M^z$ of the FM analyzer")
    ax.axhline(CRITERION.threshold, color="0.5", lw=0.5)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    ax.set_title("paper 000 runs (solid: spin valve, dashed: AFI junction)", fontsize=10,
                 loc="left")
    axt.axis("off")
    tab = axt.table(cellText=rows, colLabels=["run", "$V_H$ (V)", "$V_D$ (ps)", "$t_s$ (ps)",
                                              "max tilt (°)", "final $M^z$", "wall (min)"],
                    loc="center", fontsize=8,
                    colWidths=[0.22, 0.12, 0.12, 0.12, 0.15, 0.13, 0.14])
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    tab.scale(1, 1.4)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    from analysis.figscript import figure_main

    sys.exit(figure_main("fig000_runs", compute, plot, doc=__doc__,
                         quick_help="8 lead sites, 80-100 fs runs (pipeline test)",
                         extra_args={"--runs": {"default": "", "help": "comma-separated run "
                                                "names (default: all)"}}))
