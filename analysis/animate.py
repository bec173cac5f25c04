"""Animations of a run: every classical moment M_i(t) at its site, with the bias and the spin
currents (paper 000, Videos 1-3; ``qcspin animate``).

    >>> from analysis.animate import animate, draw_frame
    >>> animate("run.h5", "run.mp4")                   # MP4 (ffmpeg) or GIF (Pillow), by suffix
    >>> fig = draw_frame("run.h5", -1)                 # the last record as a Matplotlib figure
    >>> write_frame("run.h5", "run_t5.png", t=5.0)     # the record nearest t = 5 as a PNG

A frame: on top the device in 3D (orthographic), each moment M_i as an arrow from its site
(x along the chain; ARROW M_i/max|M(0)| site spacings long), coloured by layer, with its shadow
on the floor and the path of its tip over the last stretch of time, the spacer sites as grey
dots and the leads at the ends; below, time
traces with a cursor at the frame's time: V_L(t) = mu_left(t) - mu_left (the left lead's shift
from its config ``mu``, i.e. from its value before the bias), the mean M_z of the last
magnetic layer (the analyzer), the spin current from the right lead into the device
(``lead_spin_current``, Eq. 12) and, if present, the spin current through the plane in front
of the analyzer towards +x (``plane_spin_current``, Eq. 14).  Panels of series a run does not
have (a closed run has no leads) are left out.  Run files are read through
:func:`toolkit.results.load_result` only.  Serial (the command draws on rank 0).
"""
from __future__ import annotations

import math
import os
import time as _time
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toolkit.errors import InputError
from toolkit.io import FileExistsErrorQC, ResultFileError
from toolkit.results import Result, ResultReadError, load_result

__all__ = ["AnimateError", "AnimationInfo", "animate", "draw_frame", "write_frame",
           "frame_records", "nearest_record", "read_run", "RunSeries", "ffmpeg_available",
           "FORMATS", "MAX_FRAMES", "FIGSIZE", "DPI"]

#: default frame budget: ``every`` is chosen so that an animation has at most this many frames
MAX_FRAMES = 300
#: figure size [inch] and resolution: 1280 x 720 pixels (even sizes, as H.264 requires)
FIGSIZE = (12.8, 7.2)
DPI = 100
#: GIF frames are drawn smaller (Pillow keeps every frame in memory until the file is written)
GIF_DPI = 60
FORMATS = (".mp4", ".gif")
#: colours of the magnetic layers (in file order), of the spacer sites and of x, y, z
LAYER_COLOURS = ("#6a3d9a", "#1b9e77", "#d95f02", "#1f78b4", "#e7298a", "#a6761d")
SPACER_COLOUR = "#9e9e9e"
XYZ_COLOURS = ("#d62728", "#2ca02c", "#1f77b4")
#: the tip of each arrow leaves a trail over this fraction of the animated time span
TRAIL_FRACTION = 0.06
TRAIL_POINTS = 40
#: trails are drawn for at most this many moments (a large 2D device would be cluttered)
TRAIL_MAX_SPINS = 64
#: length of an arrow of |M_i| = max|M| [site spacings]; the leads' stubs; the view [degrees]
ARROW = 0.8
LEAD_LENGTH = 2.4
ELEV, AZIM = 16.0, -74.0
#: arrow heads: length and half width as fractions of the arrow's length
HEAD_LENGTH, HEAD_WIDTH = 0.32, 0.13
#: height of a row of time traces with its title and axis labels [pixels of a 720 p frame]
TRACE_PX = 185


class AnimateError(InputError):
    """A file or a choice ``qcspin animate`` cannot animate (one-line message naming it)."""


def ffmpeg_available() -> bool:
    """Whether Matplotlib finds the ``ffmpeg`` program (needed for MP4)."""
    from matplotlib.animation import FFMpegWriter

    return bool(FFMpegWriter.isAvailable())


# ----------------------------------------------------------------------------- reading
def _pretty_unit(u: str, time_unit: str = "") -> str:
    """Units as text for a label: 'hbar/(fs)' -> 'ħ/fs', 'hbar/(hbar/hopping)' -> 'hopping',
    '1/(fs)' -> '1/fs', 'hbar/hopping' -> 'ħ/hopping'."""
    if time_unit and u in (f"hbar/({time_unit})", f"hbar/{time_unit}"):
        u = time_unit[5:] if time_unit.startswith("hbar/") else f"hbar/{time_unit}"
    elif time_unit and u in (f"1/({time_unit})", f"1/{time_unit}"):
        u = f"{time_unit[5:]}/hbar" if time_unit.startswith("hbar/") else f"1/{time_unit}"
    return u.replace("hbar", "ħ")


def _label(name: str, unit: str) -> str:
    return f"{name} [{unit}]" if unit and unit != "1" else name


@dataclass
class Trace:
    """One time-trace panel: ``y`` (n_records,) or (n_records, 3) (x, y, z)."""

    title: str
    ylabel: str
    y: np.ndarray
    colour: str = "black"
    symmetric: bool = False     # y limits symmetric about 0
    limits: tuple[float, float] | None = None
    zero: bool = False          # y limits include 0
    steps: bool = False         # a step function between the records (a sudden bias step)


@dataclass
class RunSeries:
    """What a frame shows, read once from a run file (:func:`read_run`)."""

    path: str
    title: str
    time_unit: str
    t: np.ndarray                    # (n,) record times
    n: int                           # usable records (every drawn series has them)
    pos: np.ndarray                  # (n_spins, 3) site of each moment (lattice units)
    spin_layer: np.ndarray           # (n_spins,) layer of each moment
    layer_names: tuple[str, ...]
    magnetic: tuple[int, ...]        # layers with moments, in file order
    site_pos: np.ndarray             # (n_sites, 3) every device site
    site_layer: np.ndarray
    lead_sides: tuple[str, ...]      # 'left'/'right' of each lead
    s_max: float                     # max |M_i| at the first record (arrow scale)
    traces: list[Trace] = field(default_factory=list)
    _result: Result | None = field(default=None, repr=False)

    def spins(self, sel: slice | int) -> np.ndarray:
        """The moments of records ``sel`` (read from the file when asked for)."""
        assert self._result is not None
        return np.asarray(self._result["spins", sel], float)

    def colour(self, layer: int) -> str:
        return LAYER_COLOURS[self.magnetic.index(layer) % len(LAYER_COLOURS)]


def _as_result(result: Result | str | os.PathLike) -> Result:
    if isinstance(result, Result):
        return result
    path = os.fspath(result)
    if not os.path.exists(path):
        raise AnimateError(f"'{path}' does not exist")
    if os.path.isdir(path):
        raise AnimateError(f"'{path}' is a directory; qcspin animate takes one run file")
    try:
        return load_result(path)
    except ResultReadError as exc:
        raise AnimateError(str(exc)) from None


def read_run(result: Result | str | os.PathLike | RunSeries) -> RunSeries:
    """The series of a run file a frame draws (the moments are read per frame).  AnimateError
    (one line naming the file) for a file that is not a run with classical moments and
    records.  A RunSeries is returned as it is."""
    if isinstance(result, RunSeries):
        return result
    r = _as_result(result)
    try:
        return _read_run(r)
    except AnimateError:
        raise
    except ResultFileError as exc:
        raise AnimateError(f"'{r.path}' is damaged or incomplete: it is a qcspin run file "
                           f"but {exc}") from None
    except (OSError, KeyError, RuntimeError, ValueError, TypeError, IndexError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise AnimateError(f"'{r.path}' is damaged: it is a qcspin run file but part of it "
                           f"cannot be read ({msg})") from None


def _read_run(r: Result) -> RunSeries:
    path = r.path
    if r.kind != "run":
        raise AnimateError(f"'{path}' is a qcspin {r.kind.replace('other:', '')} file, not a "
                           f"run file: qcspin animate takes the files of qcspin run")
    dev = r.device
    if "spins" not in r or "time" not in r or dev is None:
        missing = [k for k in ("time", "spins") if k not in r] + ([] if dev else ["device"])
        raise AnimateError(f"'{path}' is an incomplete run file: {', '.join(missing)} missing")
    shape = r.shape("spins")
    if len(shape) != 3 or shape[1] == 0:
        raise AnimateError(f"'{path}' is a run without classical spins (dataset 'spins' has "
                           f"shape {shape}): there are no moments to animate")
    used = ["time", "spins"] + [k for k in ("lead_mu", "lead_spin_current", "plane_spin_current",
                                            "layer_magnetization") if k in r]
    n = min(r.shape(k)[0] for k in used)
    if n == 0:
        raise AnimateError(f"'{path}' is a run file without records (status "
                           f"'{r.status or 'unknown'}'): nothing to animate")
    tu_raw = r.units["time"] or r.unit("time")
    tu = _pretty_unit(tu_raw)
    t = np.asarray(r["time", :n], float)
    n_spins = shape[1]
    coords = np.zeros((len(dev.coords), 3))
    if dev.coords.size:
        c = np.asarray(dev.coords, float).reshape(len(dev.coords), -1)
        coords[:, :min(3, c.shape[1])] = c[:, :3]
    sites = np.asarray(dev.spin_sites, int)
    if len(sites) != n_spins or (len(sites) and sites.max() >= len(coords)):
        raise AnimateError(f"'{path}' is damaged: device/spin_sites ({len(sites)} sites) does "
                           f"not fit the {n_spins} moments of 'spins'")
    spin_layer = np.asarray(dev.spin_layer, int)
    names = tuple(dev.layer_names) or tuple(f"layer {k}" for k in range(int(spin_layer.max()) + 1))
    magnetic = tuple(int(k) for k in dict.fromkeys(spin_layer.tolist()))
    first = np.asarray(r["spins", 0], float)
    norms = np.linalg.norm(first, axis=-1)
    s_max = float(np.nanmax(norms)) if np.any(np.isfinite(norms)) else 1.0
    s_max = s_max if s_max > 0 else 1.0
    cfg = None
    try:
        cfg = r.config
    except ResultFileError:
        pass
    title = cfg.name if cfg is not None and cfg.name else os.path.basename(path)
    leads = tuple(cfg.leads) if cfg is not None else ()
    lead_names = tuple(l.name for l in leads) or tuple(dev.lead_names)
    sides = tuple(l.side for l in leads) or tuple(
        ("left", "right")[min(k, 1)] for k in range(len(dev.lead_names)))
    series = RunSeries(path=path, title=title, time_unit=tu, t=t, n=n, pos=coords[sites],
                       spin_layer=spin_layer, layer_names=names, magnetic=magnetic,
                       site_pos=coords, site_layer=np.asarray(dev.layer_of_site, int),
                       lead_sides=sides, s_max=s_max, _result=r)
    eu = _pretty_unit(r.units["energy"] or (r.unit("lead_mu") if "lead_mu" in r else ""))
    v_unit = "V" if eu == "eV" else (f"{eu}/e" if eu else "")
    # V_L(t): the left lead's chemical potential minus its config mu (its value before the bias)
    if "lead_mu" in r and len(r.shape("lead_mu")) == 2 and r.shape("lead_mu")[1]:
        mu = np.asarray(r["lead_mu", :n], float)
        left = sides.index("left") if "left" in sides else 0
        if left < len(leads):
            ref, how = float(leads[left].mu), "bias $V_L = μ_L(t) − μ_L$(before the bias)"
        else:  # no readable config: relative to the first record
            ref, how = float(mu[0, left]), "bias $V_L = μ_L(t) − μ_L(t_0)$"
        steps = cfg is not None and cfg.bias.ramp == 0 and cfg.bias.table is None
        series.traces.append(Trace(how, _label("$V_L$", v_unit), mu[:, left] - ref,
                                   zero=True, steps=steps))
    # the analyzer: the last magnetic layer
    k = magnetic[-1]
    count = int(np.count_nonzero(spin_layer == k))
    mz = None
    if "layer_magnetization" in r and len(r.shape("layer_magnetization")) == 3 \
            and r.shape("layer_magnetization")[1] > k:
        mz = np.asarray(r["layer_magnetization", :n, k, 2], float) / count
    else:
        idx = np.flatnonzero(spin_layer == k)
        mz = np.asarray(r["spins", :n, int(idx[0]):int(idx[-1]) + 1, 2], float).mean(axis=1)
    # moments (paper 000) are unit vectors M_i (magnitude mu_M), spins carry hbar
    moments = cfg is not None and getattr(cfg.llg, "equation", "spin") == "moment"
    s_unit = "" if moments else _pretty_unit(r.unit("spins"))
    which = "analyzer" if len(magnetic) > 1 else "magnetic layer"
    series.traces.append(Trace(f"{which} {names[k]}: mean $M_z$ ({count} moments)",
                               _label(r"$\langle M_z\rangle$", s_unit), mz, colour=series.colour(k),
                               limits=(-1.08 * s_max, 1.08 * s_max)))
    # spin currents: from the right lead into the device, and into the analyzer
    if "lead_spin_current" in r and len(r.shape("lead_spin_current")) == 3 \
            and r.shape("lead_spin_current")[1]:
        n_leads = r.shape("lead_spin_current")[1]
        j = sides.index("right") if "right" in sides else n_leads - 1
        j = min(j, n_leads - 1)
        name = lead_names[j] if j < len(lead_names) else f"lead {j}"
        unit = _pretty_unit(r.unit("lead_spin_current"), tu_raw)
        series.traces.append(Trace(f"spin current from the {name} lead into the device",
                                   _label("$I^S$", unit),
                                   np.asarray(r["lead_spin_current", :n, j], float),
                                   symmetric=True))
    if "plane_spin_current" in r and len(r.shape("plane_spin_current")) == 3 \
            and r.shape("plane_spin_current")[1]:
        planes = list(dev.planes)
        x0 = float(np.min(coords[sites[spin_layer == k], 0]))
        before = [p for p in range(min(len(planes), r.shape("plane_spin_current")[1]))
                  if planes[p] < x0]
        if before:
            p = max(before, key=lambda q: planes[q])
            unit = _pretty_unit(r.unit("plane_spin_current"), tu_raw)
            x = planes[p]
            series.traces.append(Trace(f"spin current through plane {x}|{x + 1} (towards "
                                       f"{names[k]})", _label("$I^S$", unit),
                                       np.asarray(r["plane_spin_current", :n, p], float),
                                       symmetric=True))
    return series


# ----------------------------------------------------------------------------- records
def frame_records(series: RunSeries, *, every: int | None = None, t_min: float | None = None,
                  t_max: float | None = None, max_frames: int = MAX_FRAMES) -> np.ndarray:
    """The record indices an animation shows: those with t_min <= t <= t_max, every
    ``every``-th (default: the smallest step giving at most ``max_frames`` frames).
    AnimateError naming the range when no record is in it."""
    t = series.t[:series.n]
    lo = -np.inf if t_min is None else t_min
    hi = np.inf if t_max is None else t_max
    tol = 1e-9 * max(1.0, float(np.nanmax(np.abs(t))) if len(t) else 1.0)
    sel = np.flatnonzero((t >= lo - tol) & (t <= hi + tol))
    if not len(sel):
        raise AnimateError(f"no record of '{series.path}' has {_range_text(t_min, t_max)} "
                           f"{series.time_unit}: its records span t = {t[0]:g} .. {t[-1]:g} "
                           f"{series.time_unit}")
    if every is None:
        every = max(1, math.ceil(len(sel) / max_frames))
    return sel[::every]


def _range_text(t_min: float | None, t_max: float | None) -> str:
    if t_min is not None and t_max is not None:
        return f"{t_min:g} <= t <= {t_max:g}"
    if t_min is not None:
        return f"t >= {t_min:g}"
    return f"t <= {t_max:g}"


def nearest_record(series: RunSeries, t: float, *, flag: str = "t") -> int:
    """The record nearest time ``t``; AnimateError (naming ``flag``) when ``t`` is outside
    the records' span by more than one record spacing."""
    times = series.t[:series.n]
    gap = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    if not (times[0] - gap - 1e-12 <= t <= times[-1] + gap + 1e-12):
        raise AnimateError(f"{flag} = {t:g} is not allowed: the records of '{series.path}' "
                           f"span t = {times[0]:g} .. {times[-1]:g} {series.time_unit}")
    return int(np.argmin(np.abs(times - t)))


# ----------------------------------------------------------------------------- drawing
class _Frame:
    """A figure laid out for ``series`` once; :meth:`draw` moves it to a record."""

    def __init__(self, series: RunSeries, fig, t_range: tuple[float, float] | None = None):
        self.s = series
        self.fig = fig
        t = series.t[:series.n]
        self.t_range = t_range or (float(t[0]), float(t[-1]))
        span = self.t_range[1] - self.t_range[0]
        self.trail_time = TRAIL_FRACTION * span
        self._arrows: list[tuple[int, Any, Any]] = []     # layer, shadows, arrows
        self._trails: list[tuple[int, Any]] = []
        self._cursors: list[tuple[np.ndarray, list[Any], list[Any], Any]] = []
        self._blit = False           # blitting: the static parts are drawn once
        self._background: Any = None
        fig.clf()
        self._layout()

    # -- layout
    def _limits(self) -> np.ndarray:
        """(3, 2) box of the 3D panel: the sites, one arrow length around them, the leads."""
        s, p = self.s, self.s.site_pos
        lo = p.min(axis=0) - ARROW
        hi = p.max(axis=0) + ARROW
        lo[0] -= LEAD_LENGTH if "left" in s.lead_sides else 0.15
        hi[0] += LEAD_LENGTH if "right" in s.lead_sides else 0.15
        lo[2] -= 0.25                 # the floor carries the shadows of the arrows
        hi[2] += 0.65                 # room for the layer names
        return np.stack([lo, hi], axis=1)

    def _layout(self) -> None:
        s, fig = self.s, self.fig
        n_tr = len(s.traces)
        cols = 2 if n_tr == 4 else max(n_tr, 1)
        rows = 2 if n_tr == 4 else 1
        fw, fh = fig.bbox.width, fig.bbox.height
        px = fh / 720             # sizes below are pixels of the 1280 x 720 frame
        self.title = fig.suptitle("", fontsize=14, y=1 - 12 * px / fh, va="top")
        box = self._limits()
        # the 3D panel: as wide as the frame allows, as high as the traces leave room for
        top_px = 46 * px
        room = fh - top_px - 0.075 * fh - rows * TRACE_PX * px - 40 * px
        self.ax3 = fig.add_axes((0.0, 0.3, 1.0, 0.6), projection="3d")
        lo, hi = self._fit_3d(box, 0.975 * fw, room)
        # the traces fill what is left below the box and its tick labels
        traces_top = (lo[1] - 40 * px - 26 * px) / fh
        gs = fig.add_gridspec(rows, cols, left=0.075, right=0.985, bottom=0.075, top=traces_top,
                              hspace=0.62 if rows == 2 else 0, wspace=0.2 if cols > 1 else 0)
        self.ax_tr = [fig.add_subplot(gs[i // cols, i % cols]) for i in range(n_tr)]
        self._layout_3d(box)
        for a, tr in zip(self.ax_tr, s.traces):
            self._layout_trace(a, tr)

    def _fit_3d(self, box: np.ndarray, width: float, height: float) -> tuple[np.ndarray,
                                                                              np.ndarray]:
        """Set the view and zoom of the 3D panel so that its box is at most ``width`` x
        ``height`` pixels, centred, below the title; returns the box's pixel extent."""
        from mpl_toolkits.mplot3d import proj3d

        ax, fig = self.ax3, self.fig
        ax.set_xlim(*box[0])
        ax.set_ylim(*box[1])
        ax.set_zlim(*box[2])
        ext = tuple(box[:, 1] - box[:, 0])
        ax.set_proj_type("ortho")
        ax.view_init(elev=ELEV, azim=AZIM)
        # the panes are drawn 1/48 of each range beyond the limits (Matplotlib < 3.9)
        pad = (box[:, 1] - box[:, 0])[:, None] / 48 * np.array([-1, 1])
        corners = np.array(np.meshgrid(*(box + pad))).reshape(3, -1)

        def extent() -> tuple[np.ndarray, np.ndarray]:
            ax.apply_aspect()
            x, y, _ = proj3d.proj_transform(*corners, ax.get_proj())
            d = ax.transData.transform(np.c_[x, y])
            return d.min(axis=0), d.max(axis=0)
        # Matplotlib keeps a 3D axes square: zoom so that the box fills the room ...
        ax.set_box_aspect(ext, zoom=1.0)
        lo, hi = extent()
        size = hi - lo
        ax.set_box_aspect(ext, zoom=float(min(width / size[0], height / size[1])))
        lo, hi = extent()
        # ... and move it to the middle of the frame, its top below the title
        fw, fh = fig.bbox.width, fig.bbox.height
        dx = 0.5 * fw - 0.5 * (lo[0] + hi[0])
        dy = fh - 50 * fh / 720 - hi[1]
        pos = ax.get_position(original=True)
        ax.set_position((pos.x0 + dx / fw, pos.y0 + dy / fh, pos.width, pos.height))
        shift = np.array([dx, dy])
        return lo + shift, hi + shift

    def _layout_3d(self, box: np.ndarray) -> None:
        s, ax = self.s, self.ax3
        p = s.site_pos
        for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
            axis.set_pane_color((0.965, 0.965, 0.975, 1.0))
            axis._axinfo["grid"]["color"] = (0.86, 0.86, 0.88, 1.0)
            axis._axinfo["grid"]["linewidth"] = 0.6
        ax.set_yticks([])
        ax.set_zticks([])
        ax.set_xlabel("")
        ax.tick_params(axis="x", pad=-2, labelsize=9)
        ticks = np.unique(np.round(p[:, 0]))
        if len(ticks) > 26:
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(nbins=14, integer=True))
        else:
            ax.set_xticks(ticks)
        z_floor = box[2, 0]
        self.z_floor = z_floor
        # the sites: spacers grey, magnetic ones in their layer's colour
        mag_sites = {tuple(q) for q in s.pos}
        has_spin = np.array([tuple(q) in mag_sites for q in p], bool)
        arts = [ax.scatter(*p[~has_spin].T, s=22, c=SPACER_COLOUR, depthshade=False)]
        for k in s.magnetic:
            q = s.pos[s.spin_layer == k]
            arts.append(ax.scatter(*q.T, s=16, c=s.colour(k), depthshade=False))
        if len(p) and np.ptp(p[:, 1]) == 0 and np.ptp(p[:, 2]) == 0:  # a chain: its bonds
            x_lo = p[:, 0].min() - (LEAD_LENGTH - 0.3 if "left" in s.lead_sides else 0)
            x_hi = p[:, 0].max() + (LEAD_LENGTH - 0.3 if "right" in s.lead_sides else 0)
            arts += ax.plot([x_lo, x_hi], [p[0, 1]] * 2, [p[0, 2]] * 2, color=SPACER_COLOUR,
                            lw=1.0, alpha=0.6)
        y_mid, z_mid = float(np.mean(p[:, 1])), float(np.mean(p[:, 2]))
        # the leads: fading sites beyond the ends
        for side in dict.fromkeys(s.lead_sides):
            sign, x_end = (-1, p[:, 0].min()) if side == "left" else (1, p[:, 0].max())
            xs = x_end + sign * np.arange(1, 4) * (LEAD_LENGTH - 0.4) / 3
            for m, x in enumerate(xs):
                arts.append(ax.scatter([x], [y_mid], [z_mid], s=26, marker="o",
                                       facecolors="none", edgecolors="#616161",
                                       alpha=0.85 - 0.25 * m, depthshade=False))
            arts.append(ax.text(xs[1], float(p[:, 1].min()), z_mid - 0.45, f"{side} lead",
                                ha="center",
                                va="top", fontsize=10, color="#424242"))
        # layer names: magnetic layers above their moments, spacers below the chain
        z_top = p[:, 2].max() + ARROW + 0.3
        for k, name in enumerate(s.layer_names):
            on = s.site_layer == k
            if not np.any(on):
                continue
            x_mid = 0.5 * (p[on, 0].min() + p[on, 0].max())
            if k in s.magnetic:
                n_k = int(np.count_nonzero(s.spin_layer == k))
                arts.append(ax.text(x_mid, float(p[:, 1].max()), z_top,
                                    f"{name} ({n_k} moments)",
                                    ha="center", va="bottom", fontsize=11, fontweight="bold",
                                    color=s.colour(k)))
            else:
                arts.append(ax.text(x_mid, y_mid, z_mid - 0.45, name, ha="center", va="top",
                                    fontsize=10, color="#757575"))
        # the moments (segments set per frame): shadow on the floor, arrow, tip trail
        from mpl_toolkits.mplot3d.art3d import Line3DCollection

        def lines(**kw) -> Any:
            c = Line3DCollection([np.zeros((2, 3))], capstyle="round", joinstyle="round", **kw)
            ax.add_collection3d(c)
            arts.append(c)
            return c
        trails = len(s.pos) <= TRAIL_MAX_SPINS and self.trail_time > 0
        for k in s.magnetic:
            if trails:
                self._trails.append((k, lines(colors=s.colour(k), linewidths=1.0, alpha=0.5)))
            self._arrows.append((k, lines(colors="#9e9e9e", linewidths=1.4, alpha=0.55),
                                 lines(colors=s.colour(k), linewidths=2.8)))
        for art in arts:
            art.set_clip_on(False)

    def _layout_trace(self, a, tr: Trace) -> None:
        s = self.s
        t = s.t[:s.n]
        y = tr.y[:s.n]
        a.set_title(tr.title, fontsize=10)
        a.set_ylabel(tr.ylabel, fontsize=10)
        a.set_xlabel(_label("t", s.time_unit), fontsize=10)
        a.set_xlim(*self.t_range) if self.t_range[1] > self.t_range[0] else None
        a.tick_params(labelsize=9)
        a.grid(alpha=0.25)
        ys = y.reshape(len(y), -1)
        colours = XYZ_COLOURS if ys.shape[1] == 3 else (tr.colour,)
        lines, dots = [], []
        for c in range(ys.shape[1]):
            style = "steps-post" if tr.steps else "default"
            a.plot(t, ys[:, c], color=colours[c], lw=1.0, alpha=0.28, drawstyle=style)
            (ln,) = a.plot([], [], color=colours[c], lw=1.7, drawstyle=style,
                           label="xyz"[c] if ys.shape[1] == 3 else None)
            (dot,) = a.plot([], [], "o", color=colours[c], ms=5, clip_on=False, zorder=5)
            lines.append(ln)
            dots.append(dot)
        if ys.shape[1] == 3:
            a.legend(loc="upper right", ncol=3, fontsize=8, frameon=False, handlelength=1.2,
                     borderaxespad=0.2)
        in_range = (t >= self.t_range[0]) & (t <= self.t_range[1])
        vals = ys[in_range] if np.any(in_range) else ys
        finite = vals[np.isfinite(vals)]
        if tr.limits is not None:
            a.set_ylim(*tr.limits)
        elif finite.size:
            top, bot = float(finite.max()), float(finite.min())
            if tr.zero:
                top, bot = max(top, 0.0), min(bot, 0.0)
            if tr.symmetric:
                top = max(abs(top), abs(bot))
                bot = -top
            pad = 0.12 * (top - bot) if top > bot else max(abs(top), 1e-12) * 0.5 or 1.0
            a.set_ylim(bot - pad, top + pad * (2.2 if ys.shape[1] == 3 else 1.0))
        cursor = a.axvline(t[0], color="#424242", lw=1.0, ls="--", alpha=0.8)
        self._cursors.append((ys, lines, dots, cursor))

    # -- one record
    def draw(self, i: int) -> None:
        """Move the moments, trails, traces, cursors and title to record ``i``."""
        s = self.s
        t = s.t[:s.n]
        i = int(range(s.n)[i])
        spins = s.spins(i) * (ARROW / s.s_max)
        for k, shadow, arrow in self._arrows:
            on = s.spin_layer == k
            P, M = s.pos[on], spins[on]
            floor = P.copy()
            floor[:, 2] = self.z_floor
            M_xy = M * np.array([1.0, 1.0, 0.0])
            shadow.set_segments(_arrow_segments(floor, M_xy, up=True))
            arrow.set_segments(_arrow_segments(P, M))
        self._draw_trails(i)
        self.title.set_text(f"{s.title}     t = {t[i]:.{_decimals(t)}f} {s.time_unit}")
        for ys, lines, dots, cursor in self._cursors:
            for c, (ln, dot) in enumerate(zip(lines, dots)):
                ln.set_data(t[:i + 1], ys[:i + 1, c])
                dot.set_data([t[i]], [ys[i, c]])
            cursor.set_xdata([t[i], t[i]])

    def _draw_trails(self, i: int) -> None:
        """The path of every arrow's tip over the last ``trail_time``."""
        if not self._trails:
            return
        s = self.s
        t = s.t[:s.n]
        a = int(np.searchsorted(t, t[i] - self.trail_time))
        step = max(1, (i - a) // TRAIL_POINTS)
        past = s.spins(slice(a, i + 1, step)) * (ARROW / s.s_max) if i - a >= 2 else None
        for k, coll in self._trails:
            if past is None:
                coll.set_segments([])
                continue
            tips = s.pos[None, s.spin_layer == k] + past[:, s.spin_layer == k]
            coll.set_segments([tips[:, j] for j in range(tips.shape[1])])

    def _moving(self) -> list[Any]:
        """The artists that change from frame to frame."""
        out: list[Any] = [self.title]
        for _, lines, dots, cursor in self._cursors:
            out += lines + dots + [cursor]
        return (out + [c for _, c in self._trails]
                + [c for _, shadow, arrow in self._arrows for c in (shadow, arrow)])

    def blit(self, i: int) -> None:
        """Draw record ``i`` into the canvas (Agg) by blitting: the static parts (axes,
        panes, labels, the faint full traces) are rendered at the first call only, then only
        the moments, trails, traces up to t, cursors and title are drawn on a copy of them.
        The canvas then holds the frame (``fig.canvas.buffer_rgba()``).  A figure blitted
        once keeps drawing this way; ``savefig`` still draws every artist."""
        canvas = self.fig.canvas
        if self._background is None:
            self._blit = True
            for a in self._moving():
                a.set_animated(True)
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.fig.bbox)
        else:
            canvas.restore_region(self._background)
        self.draw(i)
        for a in self._moving():
            if hasattr(a, "do_3d_projection"):   # 3D collections project when drawn by
                a.do_3d_projection()             # their axes only
            self.fig.draw_artist(a)


def _arrow_segments(P: np.ndarray, M: np.ndarray, up: bool = False) -> list[np.ndarray]:
    """Line segments of arrows from ``P`` along ``M`` (n, 3): the shaft and two barbs in the
    plane seen face-on from the view direction (``up``: in the plane normal to z, for the
    shadows on the floor), so that every head shows as a V whatever the arrow's direction."""
    tip = P + M
    L = np.linalg.norm(M, axis=1, keepdims=True)
    d = np.divide(M, L, out=np.zeros_like(M), where=L > 0)
    el, az = np.radians(ELEV), np.radians(AZIM)
    view = (np.array([0.0, 0.0, 1.0]) if up else
            np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)]))
    n = np.cross(d, view)
    bad = np.linalg.norm(n, axis=1) < 1e-3        # an arrow along the view: any normal
    n[bad] = np.cross(d[bad], [1.0, 0.0, 0.0])
    bad = np.linalg.norm(n, axis=1) < 1e-3
    n[bad] = [0.0, 1.0, 0.0]
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    back = tip - HEAD_LENGTH * L * d
    wing = HEAD_WIDTH * L * n
    segs = []
    for j in range(len(P)):
        segs += [np.array([P[j], tip[j]]), np.array([back[j] + wing[j], tip[j],
                                                     back[j] - wing[j]])]
    return segs


def _decimals(t: np.ndarray) -> int:
    """Decimals that tell the records apart (0 to 4)."""
    if len(t) < 2:
        return 2
    d = float(np.median(np.diff(t)))
    return int(min(4, max(0, math.ceil(-math.log10(d)) + 1))) if d > 0 else 2


_FRAMES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _use_agg():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _new_figure(dpi: int = DPI):
    plt = _use_agg()
    return plt.figure(figsize=FIGSIZE, dpi=dpi)


def draw_frame(result: Result | str | os.PathLike | RunSeries, index: int, fig=None, *,
               t_min: float | None = None, t_max: float | None = None):
    """Draw record ``index`` (negative counts from the end) of a run into ``fig`` (a new
    1280 x 720 figure when None) and return the figure.  The traces span ``t_min``..``t_max``
    (default: the whole run).  Drawing into the same figure again only moves the moments and
    the cursors.  AnimateError for a file it cannot draw or an index out of range."""
    series = read_run(result)
    if not -series.n <= index < series.n:
        raise AnimateError(f"record index {index} is not allowed: '{series.path}' has "
                           f"{series.n} records")
    fig = fig if fig is not None else _new_figure()
    _frame_for(series, fig, t_min, t_max).draw(index)
    return fig


def _frame_for(series: RunSeries, fig, t_min: float | None, t_max: float | None) -> _Frame:
    """The layout of ``series`` in ``fig``: the one made before for the same run and time
    range, or a new one (the figure is cleared)."""
    t = series.t[:series.n]
    t_range = (float(t[0] if t_min is None else max(t_min, t[0])),
               float(t[-1] if t_max is None else min(t_max, t[-1])))
    frame = _FRAMES.get(fig)
    if (frame is None or (frame.s is not series and frame.s.path != series.path)
            or frame.t_range != t_range):
        frame = _Frame(series, fig, t_range)
        _FRAMES[fig] = frame
    return frame


# ----------------------------------------------------------------------------- output
@dataclass(frozen=True)
class AnimationInfo:
    """What :func:`animate` or :func:`write_frame` wrote."""

    path: str
    n_frames: int
    writer: str          # 'ffmpeg', 'pillow' or 'png'
    size: tuple[int, int]
    seconds: float       # wall time of drawing and encoding
    records: np.ndarray  # the record index of each frame


def _check_output(path: str, overwrite: bool, suffixes: tuple[str, ...]) -> str:
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in suffixes:
        raise AnimateError(f"output = {path!r} is not allowed: expected a file ending in "
                           f"{' or '.join(suffixes)}")
    if os.path.isdir(path):
        raise AnimateError(f"output = {path!r} is not allowed: it is a directory")
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise AnimateError(f"output = {path!r} is not allowed: directory '{d}' does not exist")
    if os.path.exists(path) and not overwrite:
        raise FileExistsErrorQC(f"output file '{path}' exists; use --overwrite to replace it")
    return path


def _temporary(path: str) -> str:
    d, base = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(base)
    return os.path.join(d, f".{stem}.tmp-{os.getpid()}{ext}")


def _gif_palette(first):
    """A 256-colour palette for every frame of a GIF: the colours of the drawing (layers,
    x/y/z, greys) with their blends towards white (antialiasing, faint lines), the rest
    taken from the first frame (whose traces are not drawn yet, so its own palette lacks
    their colours)."""
    from matplotlib.colors import to_rgb
    from PIL import Image

    keys = [*LAYER_COLOURS, *XYZ_COLOURS, "black", "#424242", SPACER_COLOUR]
    colours = {tuple(int(round(255 * ((1 - a) * c + a))) for c in to_rgb(k))
               for k in keys for a in np.linspace(0.0, 0.9, 8)}
    colours |= {(g, g, g) for g in np.linspace(0, 255, 32).round().astype(int).tolist()}
    rest = first.quantize(colors=256 - len(colours), method=Image.Quantize.MEDIANCUT)
    flat = [v for c in sorted(colours) for v in c] + (rest.getpalette() or [])[:3 * (
        256 - len(colours))]
    pal = Image.new("P", (1, 1))
    pal.putpalette(flat + [255] * (768 - len(flat)))
    return pal


def _canvas_writer(gif: bool, fps: float, title: str, comment: str):
    """A Matplotlib movie writer whose ``grab_frame`` takes the frame already drawn in the
    figure's Agg canvas (:meth:`_Frame.blit`) instead of drawing the figure again.  MP4:
    FFMpegWriter (H.264, yuv420p); GIF: PillowWriter, every frame reduced to the palette of
    the first as it is grabbed (256 colours instead of RGBA in memory)."""
    from matplotlib.animation import FFMpegWriter, PillowWriter

    def rgba(writer):
        canvas = writer.fig.canvas
        if tuple(canvas.get_width_height()) != tuple(writer.frame_size):
            raise RuntimeError(f"the canvas is {canvas.get_width_height()} pixels, the movie "
                               f"{writer.frame_size}")
        return canvas.buffer_rgba()

    class Mp4(FFMpegWriter):
        def grab_frame(self, **savefig_kwargs):
            if self.frame_format != "rgba" or not hasattr(self, "_proc"):
                return super().grab_frame(**savefig_kwargs)   # draws the figure again
            self._proc.stdin.write(rgba(self))

    class Gif(PillowWriter):
        def grab_frame(self, **savefig_kwargs):
            from PIL import Image

            im = Image.frombuffer("RGBA", self.frame_size, bytes(rgba(self)), "raw", "RGBA",
                                  0, 1).convert("RGB")
            if not self._frames:
                self._palette = _gif_palette(im)
            self._frames.append(im.quantize(palette=self._palette, dither=Image.Dither.NONE))

    if gif:
        return Gif(fps=max(1, int(round(fps))))
    return Mp4(fps=fps, codec="h264", extra_args=["-pix_fmt", "yuv420p", "-crf", "20"],
               metadata={"title": title, "comment": comment})


def animate(result: Result | str | os.PathLike | RunSeries, output: str, *, fps: float = 20,
            every: int | None = None, t_min: float | None = None, t_max: float | None = None,
            overwrite: bool = False, progress=None) -> AnimationInfo:
    """Write an animation of a run to ``output``: MP4 (``.mp4``, Matplotlib's FFMpegWriter,
    H.264; needs ``ffmpeg``) or GIF (``.gif``, Pillow).  Frames: the records with t_min <= t
    <= t_max, every ``every``-th (default: at most :data:`MAX_FRAMES` frames), at ``fps``
    frames per second.  The file is written under a temporary name and renamed into place
    when complete; an existing ``output`` is replaced only with ``overwrite``
    (FileExistsErrorQC otherwise).  ``progress(done, total)`` is called after each frame.
    Serial."""
    output = _check_output(output, overwrite, FORMATS)
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise AnimateError(f"fps = {fps!r} is not allowed: expected a number > 0")
    if every is not None and (not isinstance(every, (int, np.integer)) or every < 1):
        raise AnimateError(f"every = {every!r} is not allowed: expected an integer >= 1")
    if t_min is not None and t_max is not None and t_min > t_max:
        raise AnimateError(f"t_min = {t_min:g} is not allowed: expected <= t_max = {t_max:g}")
    gif = output.lower().endswith(".gif")
    if not gif and not ffmpeg_available():
        raise AnimateError(f"output = {output!r} needs ffmpeg for MP4, which is not "
                           f"installed (apt-get install ffmpeg); give a .gif instead")
    series = read_run(result)
    records = frame_records(series, every=every, t_min=t_min, t_max=t_max)
    t = series.t
    dpi = GIF_DPI if gif else DPI
    fig = _new_figure(dpi)
    writer = _canvas_writer(gif, fps, series.title, f"qcspin animate {series.path}")
    tmp = _temporary(output)
    t_range = (float(t[records[0]]) if t_min is not None else None,
               float(t[records[-1]]) if t_max is not None else None)
    t0 = _time.perf_counter()
    try:
        frame = _frame_for(series, fig, t_range[0], t_range[1])
        with writer.saving(fig, tmp, dpi):
            for m, i in enumerate(records):
                frame.blit(int(i))
                writer.grab_frame()
                if progress is not None:
                    progress(m + 1, len(records))
        os.replace(tmp, output)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        _use_agg().close(fig)
    w, h = int(round(FIGSIZE[0] * dpi)), int(round(FIGSIZE[1] * dpi))
    return AnimationInfo(path=output, n_frames=len(records),
                         writer="pillow" if gif else "ffmpeg", size=(w, h),
                         seconds=_time.perf_counter() - t0, records=records)


def write_frame(result: Result | str | os.PathLike | RunSeries, output: str, t: float, *,
                overwrite: bool = False, t_min: float | None = None,
                t_max: float | None = None) -> AnimationInfo:
    """The frame of the record nearest time ``t`` as a PNG (``output``, .png), drawn as in
    :func:`animate` (traces over t_min..t_max, default the whole run).  An existing file is
    replaced only with ``overwrite``.  Serial."""
    output = _check_output(output, overwrite, (".png",))
    series = read_run(result)
    i = nearest_record(series, t)
    t0 = _time.perf_counter()
    fig = draw_frame(series, i, t_min=t_min, t_max=t_max)
    tmp = _temporary(output)
    try:
        fig.savefig(tmp, dpi=DPI)
        os.replace(tmp, output)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise AnimateError(f"cannot write '{output}': {exc.strerror or exc}") from None
    finally:
        _use_agg().close(fig)
    return AnimationInfo(path=output, n_frames=1, writer="png",
                         size=(int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI)),
                         seconds=_time.perf_counter() - t0, records=np.array([i]))
