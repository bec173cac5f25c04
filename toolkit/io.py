"""Self-describing HDF5 result files: time series, atomic checkpoints, run status and history.

Layout (all written by rank 0; schema ``qcspin_format = 2``)::

    /time (nt,)                     attrs: units, description
    /step (nt,), /wall_time (nt,)
    /spins (nt, n_spin, 3)          classical spins
    /spin_density (nt, n_site, 3)   electron spin density s_j = Tr(rho_j sigma)/2
    /layer_magnetization (nt, n_layer, 3)
    /energy/{electronic,classical,total,sd} (nt,)
    /angular_momentum (nt, 3)       sum_j S_j + sum_j s_j
    /electron_number (nt,)
    /device/...                     site coordinates, spin sites, layer names
    /checkpoint/slot0, slot1        two complete checkpoints (rho, spins and every auxiliary
                                    component by name, e.g. pi:left; attr leads: the lead
                                    models and representations), see below
    /history (n_segments,)          one JSON text per run segment (start, restarts)
    root attrs: kind = "run", status, status_message, config (resolved TOML), petsc_options,
                versions, units, time_unit, energy_unit, mpi_size, created, qcspin_format

**Atomic checkpoints.**  A checkpoint is written into the slot that is *not* current, flushed
and synced, then its attributes (step, time, n_output, CRC-32 of every array) are written and
synced, and only then does the ``checkpoint`` group's ``slot`` attribute (with mirrors of step,
time and n_output) switch over.  A process killed at any moment leaves the previous checkpoint
intact and current; :func:`load_checkpoint` verifies sizes, step and checksums of the slot it
restores and falls back to the other slot if the current one is damaged.

**One writer.**  A run holds an exclusive lock (``fcntl.flock`` on ``OUT.h5.lock``) for its
whole life; a second writer is refused before it touches anything.  A new file is written
under a temporary name in the same directory and renamed into place once its first record and
checkpoint are on disk, so ``--overwrite`` never destroys a result before its replacement
exists.

Files of the previous schema (``qcspin_format = 1``: one checkpoint directly in
``/checkpoint``) still restart; their next checkpoint is written in the new form.
"""
from __future__ import annotations

import datetime
import errno
import json
import os
import platform
import subprocess
import sys
import zlib
from typing import Any

import h5py
import numpy as np

from .errors import InputError

__all__ = ["ResultFile", "load_checkpoint", "read_status", "FileExistsErrorQC",
           "ResultFileError", "OutputLock", "versions", "git_revision", "FORMAT_VERSION",
           "STATUSES", "open_result", "write_table", "save_table"]

FORMAT_VERSION = 2
STATUSES = ("running", "finished", "interrupted", "failed")


class FileExistsErrorQC(FileExistsError):
    """An output file exists (or is being written) and may not be replaced."""


class ResultFileError(InputError):
    """A file given as a qcspin result is missing, foreign, damaged or has no checkpoint."""


def versions() -> dict[str, str]:
    import scipy

    import toolkit

    from petsc4py import PETSc

    out = {"qcspin": toolkit.__version__, "python": platform.python_version(),
           "numpy": np.__version__, "scipy": scipy.__version__, "h5py": h5py.__version__,
           "petsc": ".".join(map(str, PETSc.Sys.getVersion()))}
    try:
        from slepc4py import SLEPc

        out["slepc"] = ".".join(map(str, SLEPc.Sys.getVersion()))
    except ImportError:
        pass
    rev = git_revision()
    if rev:
        out["git"] = rev
    return out


_GIT: list[str | None] = []


def git_revision() -> str | None:
    """``<commit>[+dirty]`` of the qcspin source tree when it is a git checkout, else None."""
    if _GIT:
        return _GIT[0]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rev = None
    if os.path.isdir(os.path.join(root, ".git")):
        try:
            head = subprocess.run(["git", "-C", root, "rev-parse", "--short=12", "HEAD"],
                                  capture_output=True, text=True, timeout=5)
            if head.returncode == 0:
                rev = head.stdout.strip()
                dirty = subprocess.run(["git", "-C", root, "status", "--porcelain",
                                        "--untracked-files=no"], capture_output=True, text=True,
                                       timeout=5)
                if dirty.returncode == 0 and dirty.stdout.strip():
                    rev += "+dirty"
        except (OSError, subprocess.SubprocessError):
            rev = None
    _GIT.append(rev)
    return rev


SERIES = {  # name: (unit key, description)
    "time": ("time", "simulation time"),
    "step": ("1", "time-step number"),
    "wall_time": ("s", "wall-clock seconds since the start of this run segment"),
    "spins": ("hbar", "classical spins S_j (|S| = spin_length)"),
    "spin_density": ("hbar", "electron spin density s_j = Tr(rho_j sigma)/2 per site"),
    "layer_magnetization": ("hbar", "M_l = sum of the classical spins of layer l"),
    "angular_momentum": ("hbar", "total spin: sum_j S_j + sum_j s_j"),
    "electron_number": ("1", "Tr rho"),
    "energy/electronic": ("energy", "Tr(rho H), includes the s-d coupling"),
    "energy/classical": ("energy", "exchange + Zeeman + anisotropy of the classical spins"),
    "energy/total": ("energy", "electronic + classical (conserved without damping/leads)"),
    "energy/sd": ("energy", "J_sd sum_j s_j.S_j (part of the electronic energy)"),
    "plane_current": ("1/time", "Eq. 13 through each plane of output.planes (half the electrons "
                                "crossing towards +x per unit time)"),
    "plane_spin_current": ("hbar/time", "Eq. 14: electron spin s = sigma/2 crossing towards +x "
                                        "per unit time"),
    "monolayer_polarization": ("1", "Eq. F1: sum Tr(sigma rho_jj)/sum Tr(rho_jj) per monolayer x"),
    "lead_current": ("1/time", "Eq. 11: Re Tr Pi_l, from lead l into the device (half the "
                               "electrons per unit time)"),
    "lead_spin_current": ("hbar/time", "Eq. 12: Re Tr(sigma Pi_l), spin s = sigma/2 from lead l "
                                       "into the device per unit time"),
    "lead_mu": ("energy", "chemical potentials of the leads"),
    "spin_density_cd": ("hbar", "paper 000 Eq. 6 (halved): Tr((rho - rho_eq(M)) sigma_j)/2 per "
                                "site, rho_eq the equilibrium of the instantaneous moments"),
    "torque": ("energy", "paper 000 Eq. 7: T_j = J_sd M_j x s_CD,j per classical vector (the "
                         "electron spin's rate from the s-d term; the moment receives -T_j)"),
    "torque_neq": ("energy", "paper 000 Eq. A2: J_sd M_j x s_j with the full spin density"),
    "torque_fl_dl": ("energy", "paper 000 Eq. 11: (T_FL, T_DL) of torque, T = T_FL M x x + "
                               "T_DL M x (M x x)"),
    "plane_current_cd": ("1/time", "plane_current of rho - rho_eq(M) (paper 000 Eq. 9)"),
    "plane_spin_current_cd": ("hbar/time", "plane_spin_current of rho - rho_eq(M) (paper 000 "
                                           "Eq. 10)"),
    "magnon_current": ("energy", "paper 000 Eq. 14: J_ex S_i x S_j per exchange bond, the "
                                 "angular momentum moved from i to j per internal time unit"),
    "spin_continuity_residual": ("hbar/time", "paper 000 Eqs. A1-A4 per layer with moments: "
                                              "d/dt sum s - sum T^neq - (spin in - out)"),
    "spin_balance_residual": ("hbar/time", "d/dt(S_tot + s_tot) - lead spin inflow - external "
                                           "torques (zero up to round-off for the exact RHS)"),
}


#: what changes in SERIES for localized moments (llg.equation = "moment", paper 000 Eq. 2):
#: the classical vectors are unit vectors M_j, their angular momentum is -hbar M_j / g_e
MOMENT_SERIES = {
    "spins": ("1", "unit vectors M_j of the localized moments (paper 000 Eq. 2; each carries "
                   "the angular momentum -hbar M_j / g_e)"),
    "layer_magnetization": ("1", "M_l = sum of the unit vectors M_j of layer l"),
}


def series_for(config) -> dict:
    """The units and descriptions of the records of a run of ``config`` that differ from
    :data:`SERIES` (the moments' unit vectors)."""
    llg = getattr(config, "llg", None)
    return dict(MOMENT_SERIES) if getattr(llg, "equation", "spin") == "moment" else {}


# ----------------------------------------------------------------------------- the lock
class OutputLock:
    """Exclusive lock on ``path + '.lock'`` for the life of a run (``fcntl.flock``: released by
    the kernel when the process dies, so a killed run never leaves a stale lock)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock_path = path + ".lock"
        self.fd: int | None = None

    def acquire(self) -> "OutputLock":
        import fcntl

        d = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(d):
            raise FileExistsErrorQC(f"output directory '{d}' does not exist (for '{self.path}');"
                                    f" create it first")
        if os.path.isdir(self.path):
            raise FileExistsErrorQC(f"output '{self.path}' is a directory; give a file name "
                                    f"such as {os.path.join(self.path, 'run.h5')}")
        while True:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise FileExistsErrorQC(f"cannot create the lock file '{self.lock_path}': "
                                        f"{exc.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read_holder(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                    raise FileExistsErrorQC(
                        f"'{self.path}' is being written by another qcspin run{holder}; wait "
                        f"for it to finish or choose another output") from None
                raise
            try:  # the file we locked must still be the one at lock_path (not unlinked)
                same = os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {platform.node()} since "
                     f"{_now()}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.lock_path)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        return ""
    return f" ({text})" if text else ""


def is_locked(path: str) -> bool:
    """Whether a live process holds the run lock of ``path``."""
    import fcntl

    lock = path + ".lock"
    if not os.path.exists(lock):
        return False
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


# ----------------------------------------------------------------------------- opening files
def open_result(path: str, mode: str = "r", *, what: str = "result file",
                locking: bool = True) -> h5py.File:
    """``h5py.File(path, mode)`` with one-line :class:`ResultFileError` messages for a missing
    path, a directory, a file that is not HDF5, a truncated or damaged file."""
    if not os.path.exists(path):
        raise ResultFileError(f"{what} '{path}' does not exist")
    if os.path.isdir(path):
        raise ResultFileError(f"{what} '{path}' is a directory, not an HDF5 file")
    try:
        return h5py.File(path, mode) if locking else h5py.File(path, mode, locking=False)
    except OSError as exc:
        msg = str(exc)
        if "signature" in msg:
            raise ResultFileError(f"{what} '{path}' is not an HDF5 file") from None
        if "truncated" in msg:
            raise ResultFileError(f"{what} '{path}' is truncated (an incomplete copy or a full "
                                  f"disk?): {msg.split('(')[-1].rstrip(')')}") from None
        if "lock" in msg:
            raise ResultFileError(f"{what} '{path}' is being written by another qcspin run (or "
                                  f"another program holds it open); wait for it to "
                                  f"finish") from None
        raise ResultFileError(f"{what} '{path}' cannot be read (damaged HDF5?): {msg}") from None


def _is_run_file(f: h5py.File) -> bool:
    return f.attrs.get("kind", "run" if "config" in f.attrs and "time" in f else "") == "run"


def _create_allocated(g: h5py.Group, name: str, shape: tuple, dtype) -> None:
    """A contiguous dataset whose storage is allocated now (no fill pass): writing its data
    later changes no metadata, which parallel HDF5 requires of independent writes from
    several ranks (toolkit/checkpoint.py)."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    space = h5py.h5s.create_simple(tuple(shape)) if len(shape) else h5py.h5s.create(
        h5py.h5s.SCALAR)
    h5py.h5d.create(g.id, name.encode(), h5py.h5t.py_create(np.dtype(dtype)), space, dcpl=dcpl)


# ----------------------------------------------------------------------------- the writer
class ResultFile:
    """Rank-0 writer of one run's time series, checkpoints, status and history.

    ``mode="create"`` writes ``path`` under a temporary name (``.NAME.partial``) until
    :meth:`publish` renames it into place; ``mode="append"`` continues an existing file.
    The caller holds the :class:`OutputLock` of ``path``.
    """

    def __init__(self, path: str, *, mode: str, units, meta: dict | None = None,
                 device=None, series: dict | None = None) -> None:
        self.path = path
        self.units = units
        self.series = {**SERIES, **(series or {})}
        self.published = mode == "append"
        if mode == "create":
            d, name = os.path.split(os.path.abspath(path))
            self.write_path = os.path.join(d, f".{name}.partial")
            if os.path.exists(self.write_path):
                os.unlink(self.write_path)  # left by a run killed before its first record
            self.f = h5py.File(self.write_path, "w")
            self._setup(meta or {}, device)
        elif mode == "append":
            self.write_path = path
            self.f = open_result(path, "r+")
        else:
            raise ValueError(mode)

    def _setup(self, meta: dict, device) -> None:
        f = self.f
        f.attrs["kind"] = "run"
        f.attrs["qcspin_format"] = FORMAT_VERSION
        f.attrs["created"] = _now()
        f.attrs["units"] = self.units.name
        f.attrs["energy_unit"] = self.units.energy
        f.attrs["time_unit"] = self.units.time
        f.attrs["status"] = "running"
        f.attrs["status_message"] = ""
        for k, v in meta.items():
            f.attrs[k] = v if isinstance(v, (str, int, float)) else json.dumps(v)
        if device is not None:
            g = f.create_group("device")
            g["coords"] = device.coords
            g["spin_sites"] = device.spin_sites
            g["spin_layer"] = device.spin_layer
            g["layer_of_site"] = device.layer_of_site
            g.attrs["layer_names"] = json.dumps(list(device.layer_names))
            g.attrs["size"] = list(device.size)

    def publish(self) -> None:
        """Rename the new file into place (after its first record and checkpoint)."""
        if self.published:
            return
        self.f.flush()
        _fsync(self.f)
        os.replace(self.write_path, self.path)
        self.write_path = self.path
        self.published = True

    def _unit(self, key: str) -> str:
        t, e = self.units.time, self.units.energy
        return {"time": t, "energy": e, "1/time": f"1/({t})", "hbar/time": f"hbar/({t})"}.get(
            key, key)

    def append(self, record: dict[str, np.ndarray]) -> None:
        for name, value in record.items():
            value = np.asarray(value)
            if name not in self.f:
                unit, desc = self.series.get(name, ("", ""))
                chunk = max(1, min(256, 2 ** 20 // max(1, value.nbytes)))
                # (a zero-size axis, e.g. the spins of a device without any: (0, 3), needs an
                # unlimited max shape there, since a chunk may not exceed a fixed axis)
                ds = self.f.create_dataset(name, shape=(0,) + value.shape, dtype=value.dtype,
                                           maxshape=(None,) + tuple(n or None
                                                                    for n in value.shape),
                                           chunks=(chunk,) + tuple(max(1, n) for n in
                                                                   value.shape),
                                           fletcher32=True)
                ds.attrs["units"] = self._unit(unit)
                ds.attrs["description"] = desc
                if name == "time":
                    ds.make_scale("time")
                elif "time" in self.f:  # records along the time axis
                    ds.dims[0].attach_scale(self.f["time"])
                    ds.dims[0].label = "time"
            ds = self.f[name]
            n = ds.shape[0]
            ds.resize(n + 1, axis=0)
            ds[n] = value
        self.f.flush()

    @property
    def n_output(self) -> int:
        return self.f["time"].shape[0] if "time" in self.f else 0

    def truncate(self, n: int) -> None:
        """Drop records after the first ``n`` (used when continuing from a checkpoint)."""
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not name.startswith(("device", "checkpoint",
                                                                      "history")):
                if obj.maxshape and obj.maxshape[0] is None and obj.shape[0] > n:
                    obj.resize(n, axis=0)
        self.f.visititems(visit)

    def prepare_slot(self, shapes: dict[str, tuple[tuple, Any]]) -> str:
        """Mark the spare checkpoint slot incomplete and give it one dataset per name of
        ``shapes`` ({name: (shape, dtype)}; kept if it has that shape, else recreated, others
        deleted); synced.  Returns the slot's name.  The data are written next (in place, by
        any process), then :meth:`commit_slot`."""
        g = self.f.require_group("checkpoint")
        _drop_legacy(g)
        cur = int(g.attrs.get("slot", 1))
        target = f"slot{1 - cur}"
        s = g.require_group(target)
        s.attrs["step"] = -1  # incomplete until commit_slot writes the attributes
        self.f.flush()
        for name in [k for k in s if k not in shapes]:
            del s[name]
        for name, (shape, dtype) in shapes.items():
            shape, dtype = tuple(int(n) for n in shape), np.dtype(dtype)
            if name in s and s[name].shape == shape and s[name].dtype == dtype:
                continue
            if name in s:
                del s[name]
            _create_allocated(s, name, shape, dtype)
        self.f.flush()
        _fsync(self.f)
        return target

    def commit_slot(self, target: str, parts: dict[str, list], time: float, step: int, *,
                    t_output: float | None = None, attrs: dict[str, str] | None = None) -> None:
        """Complete the slot ``target`` (its data written and synced): the checksums ``parts``
        ({name: [[row_start, row_stop, crc32 of those rows], ...]}), time, step and ``attrs``;
        then switch over to it (one object header, written last)."""
        g = self.f["checkpoint"]
        s = g[target]
        for k, text in (attrs or {}).items():
            s.attrs[k] = text
        t_out = float(time) if t_output is None else float(t_output)
        info = {"step": int(step), "time": float(time), "t": t_out, "n_output": int(self.n_output)}
        for k, v in info.items():
            s.attrs[k] = v
        s.attrs["crc32_parts"] = json.dumps(parts)
        if "crc32" in s.attrs:
            del s.attrs["crc32"]
        self.f.flush()
        _fsync(self.f)
        g.attrs["slot"] = int(target[-1])
        for k, v in info.items():
            g.attrs[k] = v
        g.attrs["time_units"] = "internal (hbar/E0); 't' is in the time unit of the file"
        self.f.flush()
        _fsync(self.f)

    def suspend(self) -> None:
        """Close the file (synced) so that other processes can write into it; :meth:`resume`
        reopens it."""
        self.f.flush()
        _fsync(self.f)
        self.f.close()

    def resume(self) -> None:
        self.f = open_result(self.write_path, "r+")

    def use_slot(self, k: int) -> None:
        """Make slot ``k`` current (after a restart fell back to it), so that the next
        checkpoint writes over the damaged one, never over the one just restored."""
        g = self.f["checkpoint"]
        _drop_legacy(g)
        s = g[f"slot{k}"]
        g.attrs["slot"] = k
        for key in ("step", "time", "t", "n_output"):
            if key in s.attrs:
                g.attrs[key] = s.attrs[key]
        self.f.flush()
        _fsync(self.f)

    # -- status and history ------------------------------------------------------------------
    def set_status(self, status: str, message: str = "") -> None:
        if status not in STATUSES:
            raise ValueError(status)
        self.f.attrs["status"] = status
        self.f.attrs["status_message"] = message
        self.f.flush()

    def set_config(self, toml_text: str, petsc_options: dict | None = None) -> None:
        self.f.attrs["config"] = toml_text
        if petsc_options is not None:
            self.f.attrs["petsc_options"] = json.dumps(petsc_options)

    def begin_segment(self, entry: dict) -> None:
        """Append a run-segment entry (start or restart) to ``/history``."""
        text = json.dumps(entry)
        if "history" not in self.f:
            self.f.create_dataset("history", shape=(0,), maxshape=(None,),
                                  dtype=h5py.string_dtype(), chunks=(16,))
            self.f["history"].attrs["description"] = "one JSON object per run segment"
        h = self.f["history"]
        h.resize(h.shape[0] + 1, axis=0)
        h[-1] = text
        self.f.flush()

    def end_segment(self, **fields) -> None:
        h = self.f.get("history")
        if h is None or h.shape[0] == 0:
            return
        entry = json.loads(_text(h[-1]))
        entry.update(fields)
        h[-1] = json.dumps(entry)
        self.f.flush()

    def close(self) -> None:
        try:
            self.f.flush()
            _fsync(self.f)
        finally:
            self.f.close()
        if not self.published and os.path.exists(self.write_path):
            os.unlink(self.write_path)  # never published: no valid first record


def write_table(path: str, datasets: dict, attrs: dict | None = None, *, kind: str,
                group: str | None = None, overwrite: bool = False,
                scale: str | list[str] | None = None, scale_name: str | None = None,
                group_attrs: dict[str, dict] | None = None) -> str:
    """Write a table (sweeps, spectra, analyses: everything that is not a run file) and return
    its absolute path.  Serial: call it on one rank.

    datasets : {name: array | (array, units, description)}; names may contain '/' (groups);
               arrays of Python strings (dtype object or str) are stored as HDF5 strings
    attrs    : root (or ``group``) attributes: str/int/float/bool/NumPy numbers as they are,
               anything else as JSON text
    kind     : the table's kind (``toolkit.results.kind_of`` reads it); with ``qcspin_format``,
               ``created`` and ``versions`` always written
    group    : write into this group of ``path`` (the file is created or appended to; an
               existing group is replaced only with ``overwrite``); otherwise ``path`` is a new
               file, written under a temporary name and renamed into place when complete, so
               an interrupted write leaves no half-written table and ``overwrite`` never
               destroys the old one before the new one exists
    scale    : the name of a 1D dataset to make the dimension scale (named ``scale_name``,
               default its own name) of dimension 0 of every other dataset of the same length;
               a list of names: each is the scale of the datasets of its own group (e.g. one
               table per group, ``["N_S=1/value", "N_S=5/value"]``)
    group_attrs : {group: attrs} attributes of groups inside the table (e.g. ``"J_sd=2"`` of
               the datasets ``"J_sd=2/..."``; relative to ``group``), encoded as ``attrs``; a
               group that no dataset creates is created empty
    """
    def set_attrs(obj: h5py.Group, items: dict) -> None:
        for k, v in items.items():
            ok = isinstance(v, (str, int, float, bool, np.number, np.bool_))
            obj.attrs[k] = v if ok else json.dumps(v)

    path = os.path.abspath(path)
    if group is None and os.path.exists(path) and not overwrite:
        raise FileExistsErrorQC(f"output file '{path}' exists; use --overwrite to replace it")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    target = path if group is not None else f"{path}.part{os.getpid()}"
    try:
        with h5py.File(target, "a" if group is not None else "w") as f:
            g: h5py.Group = f
            if group is not None:
                if group in f:
                    if not overwrite:
                        raise FileExistsErrorQC(f"group '{group}' exists in '{path}'; use "
                                                f"--overwrite to replace it")
                    del f[group]
                g = f.create_group(group)
            g.attrs["kind"] = kind
            g.attrs["qcspin_format"] = FORMAT_VERSION
            g.attrs["created"] = _now()
            g.attrs["versions"] = json.dumps(versions())
            set_attrs(g, attrs or {})
            for name, item in datasets.items():
                arr, units, desc = item if isinstance(item, tuple) else (item, None, None)
                a = np.asarray(arr)
                if a.dtype.kind in "OU":
                    a = a.astype(h5py.string_dtype())
                ds = g.create_dataset(name, data=a)
                if units is not None:
                    ds.attrs["units"] = units
                if desc is not None:
                    ds.attrs["description"] = desc
            for sub, sub_attrs in (group_attrs or {}).items():
                set_attrs(g.require_group(sub), sub_attrs)
            for sname in ([scale] if isinstance(scale, str) else list(scale or [])):
                sc = g[sname]
                sc.make_scale(scale_name or sname.rsplit("/", 1)[-1])
                parent = sname.rsplit("/", 1)[0] if "/" in sname else ""
                for name in datasets:
                    ds = g[name]
                    own = isinstance(scale, str) or (name.rsplit("/", 1)[0] if "/" in name
                                                     else "") == parent
                    if own and name != sname and ds.ndim and ds.shape[0] == sc.shape[0]:
                        ds.dims[0].attach_scale(sc)
        if group is None:
            os.replace(target, path)
    except BaseException:
        if group is None and os.path.exists(target):
            os.unlink(target)
        raise
    return path


def save_table(path: str, datasets: dict, attrs: dict | None = None, *, kind: str,
               comm=None, **kw) -> str:
    """:func:`write_table` on rank 0 of ``comm`` (an existing file is refused on every rank
    before anything is written; the file is complete when this returns).  Collective."""
    from .parallel import barrier, bcast, first_message, get_comm

    comm = get_comm(comm)
    err = None
    if comm.getRank() == 0 and kw.get("group") is None and not kw.get("overwrite") \
            and os.path.exists(path):
        err = f"output file '{os.path.abspath(path)}' exists; use --overwrite to replace it"
    err = bcast(err, comm)
    if err:
        raise FileExistsErrorQC(err)
    failed: Exception | None = None
    if comm.getRank() == 0:
        try:
            write_table(path, datasets, attrs, kind=kind, **kw)
        except Exception as exc:    # raised below, after the other ranks know
            failed = exc
    msg = first_message(f"{type(failed).__name__}: {failed}" if failed else None, comm)
    if failed is not None:
        raise failed
    if msg:
        raise OSError(f"writing '{path}' on rank 0 failed: {msg}")
    barrier(comm)
    return os.path.abspath(path)


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _crc(a: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(a).tobytes() if a.size == 0
                      else np.ascontiguousarray(a).data.cast("B"))


def _fsync(f: h5py.File) -> None:
    try:
        handle = f.id.get_vfd_handle()
        os.fsync(handle if isinstance(handle, int) else int(handle))
    except (OSError, TypeError, ValueError, RuntimeError):
        pass


def _legacy_t(f: h5py.File, g: h5py.Group) -> float:
    """The format-1 checkpoint time (stored in internal units) in the file's time unit."""
    from .units import get_units

    try:
        return float(get_units(_text(f.attrs.get("units", "natural"))).time_from_internal(
            float(g.attrs["time"])))
    except ValueError:
        return float(g.attrs["time"])


def _drop_legacy(g: h5py.Group) -> None:
    """A format-1 checkpoint (datasets directly in /checkpoint) is copied to slot1 (with its
    checksums), slot1 is made current and synced, and only then are the old datasets deleted:
    at every moment one complete checkpoint is current."""
    legacy = [k for k in g if isinstance(g[k], h5py.Dataset)]
    if not legacy:
        return
    f = g.file
    if "slot" not in g.attrs:
        s = g.require_group("slot1")
        s.attrs["step"] = -1
        sums = {}
        for k in legacy:
            data = g[k][...]
            if k in s:
                del s[k]
            s.create_dataset(k, data=data)
            sums[k] = _crc(data)
        f.flush()
        _fsync(f)
        for k in ("time", "n_output"):
            s.attrs[k] = g.attrs[k]
        s.attrs["t"] = _legacy_t(f, g)
        s.attrs["crc32"] = json.dumps(sums)
        s.attrs["step"] = g.attrs["step"]
        f.flush()
        _fsync(f)
        g.attrs["slot"] = 1
        g.attrs["t"] = s.attrs["t"]
        f.flush()
        _fsync(f)
    for k in legacy:
        del g[k]
    f.attrs["qcspin_format"] = FORMAT_VERSION
    f.flush()


# ----------------------------------------------------------------------------- reading
def slot_parts(s: h5py.Group) -> dict[str, list] | None:
    """The checksums of a checkpoint slot as {name: [[row_start, row_stop, crc32], ...]}
    (``crc32_parts``, or the whole-array ``crc32`` of earlier files as one part), None if it
    has none."""
    if "crc32_parts" in s.attrs:
        return {k: [list(map(int, p)) for p in v]
                for k, v in json.loads(s.attrs["crc32_parts"]).items()}
    if "crc32" in s.attrs:
        sums = json.loads(s.attrs["crc32"])
        return {k: [[0, int(s[k].shape[0]) if k in s and s[k].ndim else 0, int(c)]]
                for k, c in sums.items()}
    return None


def slot_problem(s: h5py.Group, check_parts: bool = True) -> str:
    """Why the checkpoint slot ``s`` is not valid before its data are read ('' if it is):
    incomplete (step < 0, rho or spins missing) or, with ``check_parts``, checksums that name
    other datasets than it holds."""
    if "step" not in s.attrs or int(s.attrs["step"]) < 0:
        return "incomplete (the run was stopped while writing it)"
    names = [k for k in s if isinstance(s[k], h5py.Dataset)]
    if "rho" not in names or "spins" not in names:
        return "incomplete (rho or spins missing)"
    parts = slot_parts(s)
    if check_parts and parts is not None and set(parts) != set(names):
        return f"holds {sorted(names)} but its checksums name {sorted(parts)}"
    return ""


def slot_info(s: h5py.Group) -> dict:
    """time (internal units), step, n_output, t (file time unit) and, if stored, leads of a
    checkpoint slot."""
    out = {k: s.attrs[k] for k in ("time", "step", "n_output")}
    out["t"] = float(s.attrs.get("t", s.attrs["time"]))
    if "leads" in s.attrs:
        out["leads"] = _text(s.attrs["leads"])
    return out


def _read_slot(s: h5py.Group, verify: bool) -> tuple[dict | None, str]:
    """The arrays and attributes of a checkpoint slot, or (None, why it is not valid)."""
    why = slot_problem(s, check_parts=verify)
    if why:
        return None, why
    out = {k: s[k][...] for k in s if isinstance(s[k], h5py.Dataset)}
    parts = slot_parts(s)
    if verify and parts is not None:
        for k, v in out.items():
            for r0, r1, crc in parts[k]:
                if _crc(v[r0:r1] if v.ndim else v) != int(crc):
                    return None, f"checksum of '{k}' does not match (damaged)"
    out.update(slot_info(s))
    return out, ""


def open_checkpoint_file(f: h5py.File, path: str) -> h5py.Group:
    """The /checkpoint group of the open run file ``f`` (at ``path``), or a one-line
    :class:`ResultFileError`: not a run file, or no checkpoint."""
    if "config" not in f.attrs or not _is_run_file(f):
        kind = f.attrs.get("kind", "")
        raise ResultFileError(
            f"'{path}' is not a qcspin run file{f' (it is a {kind} file)' if kind else ''}"
            f"; --restart needs a file written by 'qcspin run'")
    if "checkpoint" not in f:
        raise ResultFileError(f"'{path}' has no checkpoint to continue from")
    return f["checkpoint"]


def load_checkpoint(path: str, *, verify: bool = True) -> dict:
    """The checkpoint of a result file: rho, spins, the auxiliary components by name (``pi:<lead>``
    ...; ``lead_k`` in older files), ``leads`` (their models and representations,
    JSON), time (internal units), t (file time unit), step, n_output, config, petsc_options,
    slot.

    The current slot is verified (sizes, step, CRC-32); if it is damaged the other slot is used
    and ``fallback`` in the result says why.  Raises :class:`ResultFileError` with a one-line
    message for anything that cannot be restarted."""
    with open_result(path, "r") as f:
        g = open_checkpoint_file(f, path)
        legacy = [k for k in g if isinstance(g[k], h5py.Dataset)]
        fallback = ""
        try:
            if legacy and "slot" not in g.attrs:  # format 1
                out = {k: g[k][...] for k in legacy}
                if "rho" not in out or "spins" not in out:
                    raise ResultFileError(f"'{path}' has an incomplete checkpoint (rho or "
                                          f"spins missing)")
                out.update({k: g.attrs[k] for k in ("time", "step", "n_output")})
                out["t"] = _legacy_t(f, g)
                out["slot"] = -1
            else:
                cur = int(g.attrs.get("slot", 0))
                order = [cur, 1 - cur]
                out, why = None, {}
                for k in order:
                    name = f"slot{k}"
                    if name not in g:
                        why[name] = "missing"
                        continue
                    try:
                        out, why[name] = _read_slot(g[name], verify)
                    except (OSError, KeyError, ValueError) as exc:
                        out, why[name] = None, f"cannot be read (damaged: {exc})"
                    if out is not None:
                        out["slot"] = k
                        break
                if out is None:
                    raise ResultFileError(f"'{path}' has no valid checkpoint: " + "; ".join(
                        f"{k}: {v}" for k, v in why.items()))
                if out["slot"] != cur:
                    fallback = f"slot{cur} {why[f'slot{cur}']}; using the previous checkpoint"
        except (OSError, KeyError) as exc:
            raise ResultFileError(f"'{path}': the checkpoint cannot be read (damaged file?): "
                                  f"{exc}") from None
        out["fallback"] = fallback
        out["config"] = _text(f.attrs["config"])
        out["petsc_options"] = json.loads(f.attrs.get("petsc_options", "{}"))
    return out


def read_status(path: str) -> dict:
    """Status, history, config and checkpoint summary of a run file (for ``qcspin info``).
    Works while a run writes the file (read without HDF5's file lock)."""
    with open_result(path, "r", locking=not is_locked(path)) as f:
        if not _is_run_file(f):
            kind = f.attrs.get("kind", "")
            raise ResultFileError(f"'{path}' is not a qcspin run file"
                                  f"{f' (it is a {kind} file)' if kind else ''}")
        a = f.attrs
        out = {"status": _text(a.get("status", "unknown (written before qcspin_format 2)")),
               "message": _text(a.get("status_message", "")),
               "format": int(a.get("qcspin_format", 1)),
               "config": _text(a.get("config", "")),
               "created": _text(a.get("created", "")),
               "units": _text(a.get("time_unit", "")),
               "n_output": f["time"].shape[0] if "time" in f else 0,
               "t_last": float(f["time"][-1]) if "time" in f and f["time"].shape[0] else None,
               "history": [json.loads(_text(x)) for x in f["history"][...]]
               if "history" in f else [],
               "versions": json.loads(a.get("versions", "{}")),
               "mpi_size": int(a.get("mpi_size", 1))}
        if "checkpoint" in f:
            g = f["checkpoint"]
            out["checkpoint"] = {k: (float(g.attrs[k]) if k in ("time", "t")
                                     else int(g.attrs[k]))
                                 for k in ("step", "time", "t", "n_output") if k in g.attrs}
    out["writing"] = is_locked(path)
    if out["status"] == "running" and not out["writing"]:
        out["status"] = "killed"
        out["message"] = ("the file says 'running' but no process is writing it: the run was "
                          "killed or crashed; continue it with qcspin run --restart")
    return out


def fmt_history(entry: dict) -> str:
    """One line of a run segment for ``qcspin info``."""
    bits = [entry.get("started", "?"), entry.get("status", "?")]
    if "step_start" in entry:
        bits.append(f"steps {entry['step_start']} -> {entry.get('step_stop', '?')}")
    if "t_start" in entry:
        bits.append(f"t {entry['t_start']:.6g} -> {entry.get('t_stop', float('nan')):.6g}"
                    f" (target {entry.get('t_end', float('nan')):.6g})")
    bits.append(f"{entry.get('mpi_size', '?')} rank(s) on {entry.get('host', '?')}")
    bits.append(f"qcspin {entry.get('qcspin', '?')}"
                + (f" ({entry['git']})" if entry.get("git") else ""))
    return ", ".join(bits)


def _argv() -> list[str]:
    return [os.path.basename(sys.argv[0])] + sys.argv[1:] if sys.argv else []
