"""Plots of qcspin files (matplotlib, Agg backend); ``qcspin plot FILE`` is :func:`plot_file`.

:func:`plot_file` recognises what a file is and draws it, or raises :class:`PlotError` (a
ValueError) with a one-line message: missing path, directory, not HDF5, truncated or damaged
HDF5, file held open by a writer, foreign HDF5, a qcspin kind it does not draw, a run without
records.  The kinds, how each is recognised, and what draws it:

* ``run``: ``qcspin run`` results (also the ``V_*.h5``/``stage1.h5`` of ``qcspin sweep``);
  root ``kind = "run"`` (qcspin_format 2), else a ``config`` attribute with ``device`` or
  ``time`` (format 1) -> :func:`plot_run`.
* ``transport``: ``qcspin transport``; ``kind = "transport"`` ->
  :func:`analysis.transport_cli.plot_transport`.
* ``spectrum``: ``qcspin spectrum``; ``kind = "spectrum"`` ->
  :func:`analysis.spectrum_plots.plot_spectrum`.
* ``jeff``: ``qcspin jeff`` tables; ``qcspin_table = "jeff_sweep"`` on the root or on groups
  (scripts/fig04a, fig05) -> :func:`analysis.jeff.plot_sweep`.
* ``sweep``: the ``qcspin sweep`` summary ``sweep.h5``; no marker: datasets ``V``,
  ``lead_current``, ``layer_magnetization`` and attribute ``stage1`` ->
  :func:`plot_sweep_summary`.
* ``quench``: the ``qcspin quench`` table ``analysis.h5``; no marker: datasets ``V``, ``t_R``,
  ``T_cd``, ``dM`` -> :func:`plot_quench_table`.

Every file is read with :func:`toolkit.results.load_result` (which also recognises the kinds).
Serial: call on one rank (``qcspin plot`` uses rank 0).
"""
from __future__ import annotations

import glob
import json
import os
import tomllib

import numpy as np

from toolkit.errors import InputError
from toolkit.io import ResultFileError
from toolkit.log import get_logger
from toolkit.results import Result, ResultReadError, is_hdf5, load_result

_log = get_logger(__name__)

__all__ = ["PlotError", "plot_file", "file_kind", "plot_run", "plot_sweep_summary",
           "plot_quench_table", "save_figure", "use_agg", "png_on_root", "PLOTTABLE"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: what ``qcspin plot`` can draw (for the messages)
PLOTTABLE = ("run results of 'qcspin run' (and the V_*.h5/stage1.h5 of 'qcspin sweep')",
             "'qcspin transport' files", "'qcspin spectrum' files", "'qcspin jeff' tables",
             "'qcspin sweep' summaries (sweep.h5)", "'qcspin quench' tables (analysis.h5)")
#: plane/lead currents up to this size (per time unit) in a device without leads are round-off
CURRENT_ROUNDOFF = 1e-10


class PlotError(InputError):
    """A file that ``qcspin plot`` cannot draw; the message is one line."""


def use_agg():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, png: str) -> str:
    """``fig.savefig(png)`` and close it; PlotError (one line) if the PNG cannot be written."""
    import matplotlib.pyplot as plt

    try:
        fig.savefig(png, dpi=110)
    except (OSError, ValueError) as exc:
        raise PlotError(f"cannot write '{png}': {_one_line(exc)}") from None
    finally:
        plt.close(fig)
    return png


# ----------------------------------------------------------------------------- small helpers
def png_on_root(plot, comm) -> None:
    """Call ``plot`` (returns the PNG path or None) on rank 0 and log the path (INFO); a PlotError
    is raised on every rank (the same exit status everywhere, nobody left in a collective).
    Collective."""
    from toolkit.parallel import barrier, first_message

    err = None
    if comm.getRank() == 0:
        try:
            png = plot()
            if png:
                _log.info(f"  figure:  {os.path.abspath(png)}")
        except PlotError as exc:
            err = str(exc)
    err = first_message(err, comm)
    barrier(comm)
    if err:
        raise PlotError(err)


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) if isinstance(exc, OSError) and not str(exc) else None
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])  # str(KeyError) adds quotes
    text = text or str(exc) or type(exc).__name__
    return " ".join(text.split())


def _text(v, default: str = "") -> str:
    if v is None:
        return default
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, np.ndarray) and v.shape == ():
        return _text(v[()], default)
    return str(v)


def _attr(r: Result, key: str, default: str = "") -> str:
    """Root attribute ``key`` of ``r`` as text (``default`` when it is absent)."""
    return _text(r.attrs.get(key), default)


def _units(r: Result, name: str, default: str = "") -> str:
    """The unit of dataset ``name`` (``default`` when it has none or is dimensionless)."""
    u = r.unit(name)
    return u if u not in ("", "1") else default


def _json_list(v, default: str = "[]") -> list:
    """A list attribute: JSON text as load_result decodes it (a list), or text it could not
    decode (parsed here: ValueError when it is not JSON), or an array (older files)."""
    if isinstance(v, (str, bytes)):
        return json.loads(_text(v) or default)
    return [_text(x) for x in v] if isinstance(v, np.ndarray) else list(v)


def _per_time(time_unit: str) -> str:
    """The unit of 'per time unit': hopping/hbar for hbar/hopping, 1/fs for fs."""
    if time_unit.startswith("hbar/"):
        return f"{time_unit[5:]}/hbar"
    return f"1/{time_unit}" if time_unit else "1/time unit"


def _clean_units(u: str, time_unit: str) -> str:
    """'1/(hbar/hopping)' -> 'hopping/hbar', 'hbar/(hbar/hopping)' -> 'hopping'."""
    if u in (f"1/({time_unit})", f"1/{time_unit}"):
        return _per_time(time_unit)
    if time_unit.startswith("hbar/") and u in (f"hbar/({time_unit})", f"hbar/{time_unit}"):
        return time_unit[5:]
    return u


def _label(name: str, unit: str) -> str:
    return f"{name} [{unit}]" if unit else name


def _config(r: Result) -> dict:
    try:
        return tomllib.loads(r.config_text)
    except (tomllib.TOMLDecodeError, TypeError):
        return {}


def _finite(a: np.ndarray) -> tuple[np.ndarray, bool]:
    """``a`` as float with non-finite entries replaced by NaN, and whether there were any."""
    a = np.asarray(a, float)
    bad = ~np.isfinite(a)
    if bad.any():
        a = np.where(bad, np.nan, a)
    return a, bool(bad.any())


def _check_png(path: str, png: str | None) -> str:
    png = os.fspath(png) if png is not None else os.path.splitext(path)[0] + ".png"
    if os.path.exists(png) and os.path.samefile(png, path):
        raise PlotError(f"the PNG '{png}' would replace the file being plotted; give another "
                        f"name with -o")
    if os.path.isdir(png):
        raise PlotError(f"the PNG path '{png}' is a directory; give a file name with -o")
    if is_hdf5(png):
        raise PlotError(f"'{png}' exists and is an HDF5 file; it is not replaced by a PNG (give "
                        f"another name with -o)")
    d = os.path.dirname(os.path.abspath(png))
    if not os.path.isdir(d):
        raise PlotError(f"cannot write '{png}': directory '{d}' does not exist")
    return png


# ----------------------------------------------------------------------------- recognising files
def _unreadable(path: str, exc: ResultReadError) -> PlotError:
    """The PlotError for a file :func:`toolkit.results.load_result` cannot read."""
    if exc.reason == "foreign":
        return _foreign(path, exc.members)
    if exc.reason == "damaged":
        return PlotError(f"'{path}' is damaged: HDF5 cannot read part of it "
                         f"({exc.hdf5_message})")
    if exc.reason != "open":
        return PlotError(_one_line(exc))
    msg = exc.hdf5_message
    if "truncated" in msg:
        size = os.path.getsize(path)
        stored = msg.split("stored_eof = ")[-1].rstrip(")") if "stored_eof" in msg else "?"
        return PlotError(f"'{path}' is damaged: the HDF5 file is truncated ({size} of "
                         f"{stored} bytes; an incomplete copy or a full disk?)")
    if "lock" in msg and ("errno = 11" in msg or "unavailable" in msg):
        return PlotError(f"'{path}' is open for writing by another process (HDF5 file "
                         f"lock): plot it when the run has finished, or now with "
                         f"HDF5_USE_FILE_LOCKING=FALSE")
    if "lock" in msg:
        return PlotError(f"'{path}' cannot be locked for reading ({msg}); on file systems "
                         f"without locking set HDF5_USE_FILE_LOCKING=FALSE")
    if "signature" in msg:
        return PlotError(f"'{path}' is not an HDF5 file")
    return PlotError(f"'{path}' is damaged: HDF5 cannot open it ({msg})")


def _not_hdf5(path: str) -> PlotError:
    with open(path, "rb") as fh:
        head = fh.read(512)
    ext = os.path.splitext(path)[1].lower()
    if head.startswith(b"\x89PNG"):
        what = "a PNG image"
    elif ext == ".toml":
        what = "a text file (a config? 'qcspin run' it and plot the result)"
    elif head and b"\0" not in head:
        what = "a text file"
    else:
        what = "an unknown binary file"
    damaged = (" (it has no HDF5 signature: if it was a qcspin result, it is damaged)"
               if ext in (".h5", ".hdf5", ".he5") else "")
    return PlotError(f"'{path}' is not an HDF5 file: {what}{damaged}")


def _foreign(path: str, top: tuple[str, ...]) -> PlotError:
    shown = ", ".join(top[:6]) + (", ..." if len(top) > 6 else "") if top else "nothing"
    stem = os.path.splitext(os.path.basename(path))[0]
    scripts = sorted(glob.glob(os.path.join(ROOT, "scripts", f"{stem}_*.py"))) if \
        stem.startswith("fig") else []
    hint = (f"; it looks like the data of scripts/{os.path.basename(scripts[0])}, which "
            f"re-plots it with --plot-only" if len(scripts) == 1 else "")
    return PlotError(f"'{path}' is an HDF5 file but not a qcspin file (no qcspin attributes; it "
                     f"holds {shown}){hint}. qcspin plot draws: " + "; ".join(PLOTTABLE))


def file_kind(path: str) -> str:
    """What :func:`plot_file` takes ``path`` for ('run', 'transport', 'spectrum', 'jeff',
    'sweep', 'quench'); PlotError for anything it cannot plot."""
    path = _check_path(path)
    try:
        kind = load_result(path).kind   # one reader and recogniser of file kinds
    except ResultReadError as exc:
        raise _unreadable(path, exc) from None
    if kind.startswith("other:"):
        raise PlotError(f"'{path}' is a qcspin file of kind '{kind[6:]}', which qcspin plot "
                        f"does not draw. It draws: " + "; ".join(PLOTTABLE))
    return kind


def _check_path(path) -> str:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise PlotError(f"'{path}' does not exist")
    if os.path.isdir(path):
        inside = [n for n in ("sweep.h5", "analysis.h5") if os.path.exists(os.path.join(path, n))]
        hint = (f" (a 'qcspin sweep' directory: plot {os.path.join(path, inside[-1])}"
                + ("" if "analysis.h5" in inside else
                   f", or run 'qcspin quench {path}' and plot its analysis.h5") + ")"
                if inside else "")
        raise PlotError(f"'{path}' is a directory; qcspin plot takes one file{hint}")
    if not os.access(path, os.R_OK):
        raise PlotError(f"'{path}' cannot be read (permission denied)")
    if os.path.getsize(path) == 0:
        raise PlotError(f"'{path}' is empty (0 bytes), not an HDF5 file")
    if not is_hdf5(path):
        raise _not_hdf5(path)
    return path


def plot_file(path: str, png: str | None = None) -> str:
    """Recognise ``path`` (see the module docstring) and plot it to ``png`` (default: the file
    name with .png); returns the PNG path.  Raises :class:`PlotError` with a one-line message
    for anything it cannot plot.  Serial."""
    kind = file_kind(path)
    path = os.fspath(path)
    png = _check_png(path, png)
    try:
        if kind == "run":
            return plot_run(path, png)
        if kind == "transport":
            return _plot_transport_file(path, png)
        if kind == "spectrum":
            return _plot_spectrum_file(path, png)
        if kind == "jeff":
            from analysis.jeff import plot_sweep

            return plot_sweep(path, png)
        if kind == "sweep":
            if _is_pulse_sweep(path):
                return plot_pulse_sweep(path, png)
            return plot_sweep_summary(path, png)
        return plot_quench_table(path, png)
    except PlotError:
        raise
    except ResultFileError as exc:  # a dataset of the kind is missing (toolkit.results)
        raise PlotError(f"'{path}' is damaged or incomplete: it is a qcspin {kind} file but "
                        f"{_one_line(exc)}") from None
    except (OSError, KeyError, RuntimeError) as exc:  # what h5py raises for damaged parts
        raise PlotError(f"'{path}' is damaged: it is a qcspin {kind} file but HDF5 cannot read "
                        f"part of it ({_one_line(exc)})") from None
    except (ValueError, TypeError, IndexError) as exc:  # inconsistent shapes or attributes
        raise PlotError(f"'{path}' is damaged or incomplete: it is a qcspin {kind} file but "
                        f"its contents do not fit together ({type(exc).__name__}: "
                        f"{_one_line(exc)})") from None


# ----------------------------------------------------------------------------- run files
_SERIES = ("time", "layer_magnetization", "energy/total", "energy/electronic",
           "energy/classical", "angular_momentum")


def _read_run(path: str) -> dict:
    r = load_result(path)
    status = _attr(r, "status")
    lengths = {k: r.shape(k)[0] for k in _SERIES if k in r}
    if not lengths or min(lengths.values()) == 0:  # killed before the first record
        cont = ("; 'qcspin run --restart' continues it from its checkpoint"
                if "checkpoint" in r.groups else "")
        raise PlotError(f"'{path}' is a qcspin run file without records (status "
                        f"'{status or 'unknown'}'): the run stopped before its first "
                        f"output, nothing to plot{cont}")
    missing = [k for k in _SERIES + ("device", "device/spin_layer")
               if k not in r and k not in r.groups]
    dev = r.group_attrs("device") if "device" in r.groups else {}
    if missing or "layer_names" not in dev:
        raise PlotError(f"'{path}' is an incomplete run file: "
                        f"{', '.join(missing) or 'device/layer_names'} missing")
    n = min(lengths.values())
    tu = _units(r, "time", _attr(r, "time_unit"))
    d = {"n": n, "n_records": max(lengths.values()), "status": status, "time_unit": tu,
         "energy_unit": _units(r, "energy/total", _attr(r, "energy_unit")),
         "spin_unit": _units(r, "layer_magnetization", "hbar"),
         "L_unit": _units(r, "angular_momentum", "hbar"),
         "names": _json_list(dev["layer_names"], ""),
         "spin_layer": r["device/spin_layer"],
         "cfg": _config(r)}
    for k, v in r.read(*_SERIES).items():
        d[k] = v[:n]
    d["S_len"] = (float(np.nanmax(np.linalg.norm(r["spins", 0], axis=-1)))
                  if "spins" in r and r.shape("spins")[0] and r.shape("spins")[1] else 1.0)
    currents, cunit = {}, ""
    leads = _json_list(dev.get("lead_names", "[]"))
    if "lead_current" in r and len(r.shape("lead_current")) == 2 \
            and r.shape("lead_current")[1]:
        cunit = _units(r, "lead_current")
        I = r["lead_current"]
        for j in range(I.shape[1]):
            name = leads[j] if j < len(leads) else f"{j}"
            currents[f"lead {name} (Eq. 11)"] = I[:n, j]
    if "plane_current" in r and len(r.shape("plane_current")) == 2:
        cunit = cunit or _units(r, "plane_current")
        planes = list(np.atleast_1d(dev.get("planes", [])))
        Ip = r["plane_current"]
        for j in range(Ip.shape[1]):
            x = int(planes[j]) if j < len(planes) else j
            currents[f"plane {x}|{x + 1} (Eq. 13)"] = Ip[:n, j]
    d["currents"] = currents
    d["current_unit"] = _clean_units(cunit, tu) or _per_time(tu)
    d["n_leads"] = sum(1 for k in currents if k.startswith("lead "))
    return d


def _conserved_note(cfg: dict, n_leads: int) -> str:
    """Why the total energy need not be conserved ('' if it should be)."""
    why = []
    if n_leads or cfg.get("leads"):
        why.append("leads")
    if any(float(l.get("damping", 0) or 0) for l in cfg.get("layers", [])):
        why.append("damping")
    return f"not conserved: {' and '.join(why)}" if why else ""


def plot_run(path: str, png: str | None = None) -> str:
    """Layer magnetizations M/N_S, total-energy drift, electron/spin energy exchange, total
    spin and (when there are any) charge currents of a run; returns the PNG path.  Serial."""
    plt = use_agg()
    png = png or os.path.splitext(path)[0] + ".png"
    d = _read_run(path)
    t, tu, eu = d["time"].astype(float), d["time_unit"], d["energy_unit"]
    M, names = d["layer_magnetization"], d["names"]
    counts = np.bincount(d["spin_layer"], minlength=len(names))
    mag = [i for i in range(M.shape[1]) if counts[i] and np.any(M[:, i] != 0)]
    currents, roundoff = d["currents"], ""
    if currents and not d["n_leads"]:
        peak = max(float(np.nanmax(np.abs(v))) if len(v) else 0.0 for v in currents.values())
        if peak <= CURRENT_ROUNDOFF:  # a device without leads: plane currents are round-off
            roundoff = (f"plane currents (Eq. 13) <= {peak:.1e} {d['current_unit']}: round-off "
                        f"of a device without leads, not shown")
            currents = {}
    n_panels = len(mag) + 3 + (1 if currents else 0)
    nrow = (n_panels + 1) // 2
    fig, ax = plt.subplots(nrow, 2, figsize=(10, 3.1 * nrow + 0.4), squeeze=False)
    axes = ax.ravel()
    style = dict(marker="o", ms=3) if len(t) < 3 else {}
    nonfinite = []
    xlabel = _label("t", tu)
    ylim = 1.05 * max(d["S_len"], 1e-300)
    for n, i in enumerate(mag):
        a = axes[n]
        m, bad = _finite(M[:, i] / counts[i])
        if bad:
            nonfinite.append(f"M of {names[i]}")
        for c, col in zip(range(3), ("tab:red", "tab:green", "tab:blue")):
            a.plot(t, m[:, c], color=col, label="xyz"[c], **style)
        a.set_title(f"layer {names[i]}: M/N_S ({counts[i]} spins)", fontsize=10)
        a.set_ylabel(_label("M/N_S", d["spin_unit"]))
        a.set_ylim(-ylim, ylim)
        a.legend(loc="lower left", ncol=3, fontsize=8)
    # total energy drift, relative to |E(0)| (absolute if E(0) = 0), log scale, zeros left out
    a = axes[len(mag)]
    E, bad = _finite(d["energy/total"])
    if bad:
        nonfinite.append("energy")
    dE = np.abs(E - E[0])
    rel = abs(E[0]) > 0
    y = dE / abs(E[0]) if rel else dE
    pos = np.isfinite(y) & (y > 0)
    note = _conserved_note(d["cfg"], d["n_leads"])
    what = "total energy change" if note else "total energy drift"
    if pos.any():
        a.semilogy(t, np.where(pos, y, np.nan), color="k", lw=1.0, **style)
        worst = float(np.nanmax(y))
        title = (f"{what}: max {worst:.1e}" + (f" ({np.nanmax(dE):.1e} {eu})" if rel
                                               else f" {eu}"))
    else:
        a.text(0.5, 0.5, "E(t) = E(0) exactly at every output" if len(t) > 1 else
               "one record: no drift to show", ha="center", va="center", transform=a.transAxes)
        title = f"{what}: none"
    a.set_title(title + (f"\n({note})" if note else ""), fontsize=10)
    a.set_ylabel("|E(t) - E(0)| / |E(0)|" if rel else _label("|E(t) - E(0)|", eu))
    a = axes[len(mag) + 1]
    for key, lab, lw in (("energy/electronic", "electronic", 1.0),
                         ("energy/classical", "classical", 1.0)):
        e, _ = _finite(d[key])
        a.plot(t, e - e[0], label=lab, lw=lw, **style)
    a.axhline(0, color="0.6", lw=0.5)
    a.set_title("energy exchange: E(t) - E(0)", fontsize=10)
    a.set_ylabel(_label("E - E(0)", eu))
    a.legend(fontsize=8)
    a = axes[len(mag) + 2]
    L, bad = _finite(d["angular_momentum"])
    if bad:
        nonfinite.append("total spin")
    for c in range(3):
        a.plot(t, L[:, c] - L[0, c], label="xyz"[c], **style)
    a.set_title("total spin change (electrons + classical)", fontsize=10)
    a.set_ylabel(_label("S_tot - S_tot(0)", d["L_unit"]))
    a.legend(fontsize=8)
    if currents:
        a = axes[len(mag) + 3]
        for label, values in currents.items():
            a.plot(t, values, label=label, lw=1.0, **style)
        a.axhline(0, color="0.6", lw=0.5)
        a.set_title("charge currents (into the device / towards +x)", fontsize=10)
        a.set_ylabel(_label("I = Re Tr Π", d["current_unit"]))
        a.legend(fontsize=7)
    for a in axes[:n_panels]:
        a.set_xlabel(xlabel)
    for a in axes[n_panels:]:
        a.axis("off")
    title = str(d["cfg"].get("name") or os.path.basename(path))
    extra = []
    if d["status"] and d["status"] != "finished":
        extra.append(f"status: {d['status']}")
    if d["n_records"] != d["n"]:
        extra.append(f"last record incomplete: {d['n']} of {d['n_records']} shown")
    if nonfinite:
        extra.append("non-finite values in " + ", ".join(nonfinite) + " (diverged?)")
    fig.suptitle(title + (f"  ({'; '.join(extra)})" if extra else ""), fontsize=11)
    if roundoff:
        fig.text(0.5, 0.005, roundoff, ha="center", va="bottom", fontsize=8, color="0.3")
    fig.tight_layout(rect=(0, 0.02 if roundoff else 0, 1, 1))
    return save_figure(fig, png)


# ----------------------------------------------------------------------------- other qcspin files
def _plot_transport_file(path: str, png: str) -> str:
    from analysis.transport_cli import plot_transport

    r = load_result(path)
    d = r.read("energies", "theta", "polarization", *[k for k in ("dos", "current/particle")
                                                      if k in r])
    E, theta, P = d["energies"], d["theta"], d["polarization"]
    dos = d.get("dos")
    eu = _units(r, "energies", _attr(r, "energy_unit"))
    mu = tuple(float(r.attrs[k]) for k in ("mu_l", "mu_r") if k in r.attrs)
    cfg = _config(r)
    cur = float(d["current/particle"]) if "current/particle" in d else None
    proto, V = _attr(r, "bias_protocol", "none"), float(r.attrs.get("bias_V", 0.0))
    if dos is not None and (dos.shape != E.shape or not np.isfinite(dos).any()):
        dos = None
    title = str(cfg.get("name") or os.path.basename(path))
    if proto != "none" and "bias" not in title:
        title += f", bias {proto} V = {V:g}"
    if cur is not None:
        title += f"; particle current {cur:.4g}"
    return plot_transport(E, theta, P, dos, png, title=title, mu=mu if len(mu) == 2 else None,
                          energy_unit=eu)


def _plot_spectrum_file(path: str, png: str) -> str:
    from analysis.spectrum import Spectrum, SpectrumSweep
    from analysis.spectrum_plots import plot_spectrum

    r = load_result(path)
    d = r.read("eigenvalues", "polarization", *[k for k in ("sigma_m", "localization", "J_sd")
                                                 if k in r])
    w, pol = d["eigenvalues"], d["polarization"]
    n = w.shape[-1]
    sm = d["sigma_m"] if "sigma_m" in d else np.zeros(w.shape)
    loc = d["localization"] if "localization" in d else np.zeros(w.shape[:-1] + (0, n))
    layers = tuple(_json_list(r.attrs.get("layers", "[]")))
    cfg = _config(r)
    n_sites = int(r.attrs.get("n_sites", n // 2))
    n_e = int(r.attrs.get("n_electrons", n_sites))
    complete = bool(r.attrs.get("complete", n == 2 * n_sites))
    method = _attr(r, "method", "?")
    target = float(r.attrs["target"]) if "target" in r.attrs else None
    eu = _units(r, "eigenvalues", _attr(r, "energy_unit"))
    jsd = d.get("J_sd")
    spin_config = _attr(r, "spin_config")
    mu_bar = float(cfg.get("lattice", {}).get("mu_bar", 0.0)) if cfg else None
    if not complete and target is None:
        target = mu_bar  # the default target of qcspin spectrum --nev
    res: Spectrum | SpectrumSweep
    if jsd is not None:
        res = SpectrumSweep(np.asarray(jsd, float), w, pol, sm, loc, layer_names=layers,
                            n_sites=n_sites, config=spin_config or None, method=method,
                            complete=complete)
    else:
        res = Spectrum(eigenvalues=w, polarization=pol, sigma_m=sm, localization=loc,
                       eigenvectors=None, layer_names=layers, n_sites=n_sites, method=method,
                       complete=complete, target=target)
    title = str(cfg.get("name") or os.path.basename(path))
    if spin_config and spin_config != "from config":
        title += f" ({spin_config} spins)"
    return plot_spectrum(res, png, title=title, n_electrons=n_e, mu_bar=mu_bar,
                         energy_unit=eu)


def _run_info(path: str) -> dict:
    """Layer names, spins per layer, lead names and units of a run file (empty if unreadable)."""
    try:
        r = load_result(path)
        dev = r.group_attrs("device")
        names = _json_list(dev.get("layer_names", ""), "")
        return {"names": names,
                "counts": np.bincount(r["device/spin_layer"], minlength=len(names)),
                "leads": _json_list(dev.get("lead_names", "[]")),
                "time_unit": _attr(r, "time_unit"), "energy_unit": _attr(r, "energy_unit")}
    except (OSError, KeyError, ValueError, RuntimeError):   # ResultFileError is a ValueError
        return {}


def _sweep_dir_run(path: str, names) -> dict:
    """:func:`_run_info` of the first readable of ``names`` (files next to ``path``)."""
    d = os.path.dirname(os.path.abspath(path))
    for name in names:
        for cand in (name, os.path.join(d, os.path.basename(str(name)))):
            if cand and os.path.isfile(cand):
                info = _run_info(cand)
                if info:
                    return info
    return {}


def _is_pulse_sweep(path: str) -> bool:
    """A ``qcspin sweep --durations`` table (paper 000 Fig. 2d) rather than a bias sweep."""
    r = load_result(path)
    return "V_H" in r.names and "V_D" in r.names


def plot_pulse_sweep(path: str, png: str | None = None) -> str:
    """The (V_D, V_H) switching diagram of a pulse sweep (``pulse_sweep.h5``, paper 000
    Fig. 2d): stars where the layer switched (labelled with t_s), filled squares where it did
    not, hollow squares where the run ended inside the dwell (undecided); the colour of the
    squares is the final mean M_z.  Serial; returns the PNG path."""
    plt = use_agg()
    png = png or os.path.splitext(path)[0] + ".png"
    r = load_result(path)
    d = r.read("V_H", "V_D", "switched", "decided", "t_switch", "final_mz")
    VH, VD = d["V_H"].astype(float), d["V_D"].astype(float)
    sw, dec = d["switched"].astype(bool), d["decided"].astype(bool)
    ts, mz = d["t_switch"].astype(float), d["final_mz"].astype(float)
    if not (len(VH) and len(VD)):
        raise PlotError(f"'{path}' is a pulse sweep without pulses")
    tu, eu = _units(r, "V_D"), _units(r, "V_H")
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    cmap = plt.get_cmap("coolwarm_r")
    for i, vh in enumerate(VH):
        for j, vd in enumerate(VD):
            if sw[i, j]:
                ax.plot(vd, vh, "*", color="tab:green", ms=16, zorder=3)
                ax.annotate(f"{ts[i, j]:g}", (vd, vh), textcoords="offset points",
                            xytext=(8, 5), fontsize=7, color="tab:green")
            else:
                c = cmap(0.5 * (1 + np.clip(mz[i, j], -1, 1)))
                ax.plot(vd, vh, "s", ms=11, color=c, mec="k", mew=0.5,
                        mfc=c if dec[i, j] else "none")
    ax.plot([], [], "*", color="tab:green", ms=12, label="switched (label: $t_s$)")
    ax.plot([], [], "s", color="0.6", mec="k", ms=9, label="not switched (colour: final $M_z$)")
    ax.plot([], [], "s", color="k", mfc="none", ms=9, label="undecided (ended in the dwell)")
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(-1, 1))
    fig.colorbar(sm, ax=ax, label="final mean $M_z$ of the layer")
    layer = _attr(r, "layer", "?")
    crit = f"(mean M_z <= {_attr(r, 'threshold', '?')} for {_attr(r, 'dwell', '?')} {tu})"
    ax.set_xlabel(_label("pulse duration $V_D$", tu))
    ax.set_ylabel(_label("pulse height $V_H$", eu))
    ax.set_xlim(0, VD.max() * 1.15)
    ax.set_ylim(0, VH.max() * 1.3)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"switching of layer {layer} {crit}", fontsize=9, loc="left")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def plot_sweep_summary(path: str, png: str | None = None) -> str:
    """The summary table of ``qcspin sweep`` (``sweep.h5``): lead currents and layer
    magnetizations at the end of each bias run versus V.  Serial; returns the PNG path."""
    plt = use_agg()
    png = png or os.path.splitext(path)[0] + ".png"
    r = load_result(path)
    d = r.read("V", "lead_current", "layer_magnetization")
    V = d["V"].astype(float)
    I, M = d["lead_current"], d["layer_magnetization"]
    proto = _attr(r, "protocol", "?")
    stage1 = _attr(r, "stage1")
    # JSON text (toolkit.io.write_table; decoded by load_result) or, in older files, an array
    files = _json_list(r.attrs.get("files", []), "")
    if not len(V):
        raise PlotError(f"'{path}' is a 'qcspin sweep' summary without bias points")
    info = _sweep_dir_run(path, files + [stage1])
    names = info.get("names") or [f"layer {k}" for k in range(M.shape[1])]
    counts = info.get("counts", np.ones(M.shape[1], int))
    leads = info.get("leads") or [f"lead {k}" for k in range(I.shape[1])]
    tu, eu = info.get("time_unit", ""), info.get("energy_unit", "")
    order = np.argsort(V, kind="stable")
    V, I, M = V[order], I[order], M[order]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for k in range(I.shape[1]):
        a.plot(V, I[:, k], "o-", ms=4, label=f"{leads[k] if k < len(leads) else k} (Eq. 11)")
    a.axhline(0, color="0.6", lw=0.5)
    a.set_xlabel(_label("V", eu))
    a.set_ylabel(_label("I = Re Tr Π_l, into the device", _per_time(tu) if tu else ""))
    a.set_title("lead currents at the end of each run", fontsize=10)
    a.legend(fontsize=8)
    mags = [i for i in range(M.shape[1]) if np.any(M[:, i] != 0)]
    styles = ("-", "--", ":", "-.")
    for n, i in enumerate(mags):
        norm = counts[i] if i < len(counts) and counts[i] else 1
        for c, col in zip(range(3), ("tab:red", "tab:green", "tab:blue")):
            b.plot(V, M[:, i, c] / norm, styles[n % 4], marker="o", ms=3, color=col,
                   label=f"{names[i] if i < len(names) else i} {'xyz'[c]}")
    b.set_xlabel(_label("V", eu))
    b.set_ylabel("M/N_S [hbar]" if info else "M [hbar] (layer sizes unknown)")
    b.set_title("layer magnetizations at the end of each run", fontsize=10)
    b.legend(fontsize=7, ncol=2, loc="best")
    fig.suptitle(f"qcspin sweep ({proto} bias, {len(V)} points; {os.path.basename(path)}) - "
                 f"steady states: 'qcspin quench {os.path.dirname(path) or '.'}'", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, png)


def plot_quench_table(path: str, png: str | None = None) -> str:
    """The table of ``qcspin quench`` (``analysis.h5``) versus V: relaxation time t_R, the
    free layer's steady dM/N_S, T_cd against 2K e x dM, lead currents.  Serial."""
    from analysis.quench import read_analysis

    plt = use_agg()
    png = png or os.path.splitext(path)[0] + ".png"
    tab = read_analysis(path)
    a_ = tab["_attrs"]
    V = np.asarray(tab["V"], float)
    if not len(V):
        raise PlotError(f"'{path}' is a 'qcspin quench' table without bias points")
    layers, files = a_.get("layers", []), a_.get("files", [])   # decoded by load_result
    info = _sweep_dir_run(path, files)
    tu, eu = info.get("time_unit", ""), info.get("energy_unit", "")
    fl = (layers.index("FL") if "FL" in layers
          else int(np.argmax(np.abs(tab["dM"]).sum(axis=(0, 2)))))  # the layer that moves most
    n_fl = np.maximum(np.asarray(tab["n_spins"])[:, fl], 1)
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    (a, b), (c, d) = axes
    tR = np.asarray(tab["t_R"], float)
    ok = np.asarray(tab["valid"], bool) & np.isfinite(tR) & (tR > 0)
    lower = np.asarray(tab.get("lower_bound", np.zeros(len(V), bool)), bool)
    if ok.any():
        a.plot(V[ok], tR[ok], "ko", ms=4, label="valid fit (Eq. 22)")
    tl = np.asarray(tab.get("t_R_lower", np.full(len(V), np.nan)), float)
    lb = lower & np.isfinite(tl) & (tl > 0)
    if lb.any():
        a.plot(V[lb], tl[lb], "^", color="tab:orange", ms=5, label="lower bound")
    shown = np.concatenate([tR[ok], tl[lb]])
    if shown.size and shown.max() > 10 * shown.min():
        a.set_yscale("log")
    bad = ~ok & ~lb
    if bad.any():
        a.plot([], [], ":", color="tab:red", label=f"{int(bad.sum())} V without a valid t_R")
        for v in V[bad]:
            a.axvline(v, color="tab:red", lw=0.8, ls=":")
        reasons = [_text(r) for r in np.atleast_1d(tab.get("reason", []))[bad] if _text(r)]
        if reasons:
            a.text(0.02, 0.97, f"e.g. V = {V[bad][0]:g}: {reasons[0][:70]}", fontsize=7,
                   va="top", transform=a.transAxes, color="tab:red")
    a.set_xlabel(_label("V", eu))
    a.set_ylabel(_label("t_R", tu))
    a.set_title("relaxation time (dotted: no valid fit)", fontsize=10)
    a.legend(fontsize=8)
    dM = np.asarray(tab["dM"], float)[:, fl] / n_fl[:, None]
    for k, col in zip(range(3), ("tab:red", "tab:green", "tab:blue")):
        b.plot(V, dM[:, k], "o-", ms=3, color=col, label=f"ΔM^{'xyz'[k]}")
    b.axhline(0, color="0.6", lw=0.5)
    b.set_xlabel(_label("V", eu))
    b.set_ylabel("ΔM/N_S [hbar]")
    b.set_title(f"{layers[fl] if layers else 'free layer'}: steady M_ss - M_eq", fontsize=10)
    b.legend(fontsize=8)
    Tcd = np.asarray(tab["T_cd"], float)
    Teff = np.asarray(tab["T_eff"], float)[:, fl]
    tq = _clean_units(f"hbar/({tu})", tu) if tu else ""  # spin per time: hopping (natural)
    for k, col in zip(range(3), ("tab:red", "tab:green", "tab:blue")):
        c.plot(V, Tcd[:, k], "o", ms=4, color=col, label=f"T_cd^{'xyz'[k]} (Eq. 15)")
        c.plot(V, Teff[:, k], "--", color=col, lw=1.0, label=f"2K (e x ΔM)^{'xyz'[k]}")
    c.axhline(0, color="0.6", lw=0.5)
    c.set_xlabel(_label("V", eu))
    c.set_ylabel(_label("torque", tq))
    c.set_title("current-driven torque vs 2K e x ΔM", fontsize=10)
    c.legend(fontsize=7, ncol=2)
    I = np.asarray(tab["lead_current"], float)
    leads = info.get("leads") or [f"lead {k}" for k in range(I.shape[1])]
    for k in range(I.shape[1]):
        d.plot(V, I[:, k], "o-", ms=3, label=f"{leads[k] if k < len(leads) else k}")
    d.axhline(0, color="0.6", lw=0.5)
    d.set_xlabel(_label("V", eu))
    d.set_ylabel(_label("steady I = Re Tr Π_l", _per_time(tu) if tu else ""))
    d.set_title("steady lead currents (into the device)", fontsize=10)
    d.legend(fontsize=8)
    fig.suptitle(f"qcspin quench: {_text(a_.get('protocol', '?'))} bias, {len(V)} points "
                 f"({os.path.basename(path)})", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, png)
