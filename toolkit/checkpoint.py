"""Checkpoints of row-distributed states without gathering them on one rank.

A checkpoint slot of a run file (toolkit/io.py: two slots, the current one switched atomically)
holds the row-distributed arrays (rho and the lead components, (N_s, columns)) and a few small
whole arrays (spins, small components).  :func:`write_rows` lets every rank write its own rows
in place, in turn, into datasets that rank 0 created; each rank's rows carry their own CRC-32
(``crc32_parts``: [row_start, row_stop, crc] per part).  :func:`read_rows` verifies the parts
(spread over the ranks) and reads only this rank's rows, for any number of ranks, so a run can
continue on another rank count.  Nothing of the state's size is gathered, broadcast or pickled:
the memory per rank is its share plus one chunk of :data:`CHUNK_BYTES`, and no MPI message
carries more than a few kilobytes.  With parallel HDF5 (h5py built with MPI) the ranks write
at once through one collective open; with serial HDF5 one after the other.
"""
from __future__ import annotations

import json
import zlib
from typing import Callable

import h5py
import numpy as np

from .io import (
    ResultFile,
    ResultFileError,
    _fsync,
    load_checkpoint,
    open_checkpoint_file,
    open_result,
    slot_info,
    slot_parts,
    slot_problem,
)
from .parallel import _mpi, first_message

__all__ = ["write_rows", "read_rows", "CHUNK_BYTES"]

#: rows are copied to and from the file in chunks of about this many bytes
CHUNK_BYTES = 64 << 20

#: write checkpoints on several ranks through parallel HDF5 (h5py built with MPI: Debian's
#: python3-h5py-mpi, which ``import h5py`` selects under mpirun); otherwise the ranks write one
#: after the other.  Module-level so that tests can exercise both.
PARALLEL_HDF5 = bool(h5py.get_config().mpi)


def _chunks(n_rows: int, row_bytes: int):
    step = max(1, CHUNK_BYTES // max(row_bytes, 1))
    for a in range(0, n_rows, step):
        yield a, min(a + step, n_rows)


def _write_block(ds: h5py.Dataset, rows: np.ndarray, row_start: int) -> int:
    """Write ``rows`` (any memory order) at ``row_start`` of ``ds`` chunk by chunk; the CRC-32
    of their C-order bytes."""
    crc = 0
    for a, b in _chunks(rows.shape[0], rows[:1].nbytes):
        blk = np.ascontiguousarray(rows[a:b])
        ds[row_start + a:row_start + b] = blk
        crc = zlib.crc32(blk.data.cast("B") if blk.size else b"", crc)
    return crc


def _crc_rows(ds: h5py.Dataset, r0: int, r1: int) -> int:
    crc = 0
    if ds.ndim == 0:
        return zlib.crc32(np.ascontiguousarray(ds[()]).tobytes())
    row_bytes = int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize
    for a, b in _chunks(r1 - r0, row_bytes):
        blk = np.ascontiguousarray(ds[r0 + a:r0 + b])
        crc = zlib.crc32(blk.data.cast("B") if blk.size else b"", crc)
    return crc


def _shapes(rows: dict, whole: dict, n_total: int) -> dict[str, tuple[tuple, object]]:
    out: dict[str, tuple[tuple, object]] = {k: ((n_total, v.shape[1]), v.dtype)
                                            for k, v in rows.items()}
    out.update({k: (np.shape(v), np.asarray(v).dtype) for k, v in whole.items()})
    return out


def _write_mine(s: h5py.Group, rows: dict, whole: dict, row_start: int) -> dict[str, list]:
    """This rank's rows (and, on rank 0, the whole arrays) into slot ``s``: their parts."""
    parts = {k: [[row_start, row_start + len(v), _write_block(s[k], v, row_start)]]
             for k, v in rows.items()}
    for k, v in whole.items():
        v = np.ascontiguousarray(v)
        s[k][...] = v
        parts[k] = [[0, int(v.shape[0]) if v.ndim else 0, zlib.crc32(v.tobytes())]]
    return parts


def _write_serial(writer: ResultFile, rows: dict, whole: dict, row_start: int, n_total: int,
                  time: float, step: int, t_output: float | None, attrs: dict | None) -> None:
    """One rank: the rows through the writer's own open file."""
    target = writer.prepare_slot(_shapes(rows, whole, n_total))
    parts = _write_mine(writer.f["checkpoint"][target], rows, whole, row_start)
    writer.f.flush()
    _fsync(writer.f)
    writer.commit_slot(target, parts, time, step, t_output=t_output, attrs=attrs)


def write_rows(writer: ResultFile | None, comm, row_start: int, n_total: int,
               rows: dict[str, np.ndarray], whole: dict[str, np.ndarray] | None, time: float,
               step: int, *, t_output: float | None = None,
               attrs: dict[str, str] | None = None) -> None:
    """Write a checkpoint: ``rows`` = {name: this rank's rows (n_local, columns), any memory
    order} of arrays of ``n_total`` rows, starting at ``row_start``; ``whole`` = {name: array}
    on rank 0 (ignored elsewhere).  ``writer``: the run's ResultFile on rank 0 (None
    elsewhere).  The slot becomes current only after every rank's rows are synced.  Collective;
    a failure on any rank raises the same :class:`ResultFileError` on every rank, and the
    previous checkpoint stays current."""
    mpi = _mpi(comm) if comm.getSize() > 1 else None
    rank, size = comm.getRank(), comm.getSize()
    whole = whole or {}
    if size == 1:
        assert writer is not None
        _write_serial(writer, rows, whole, row_start, n_total, time, step, t_output, attrs)
        return
    assert mpi is not None
    cols = {k: int(v.shape[1]) for k, v in rows.items()}
    dtypes = {k: np.dtype(v.dtype).str for k, v in rows.items()}
    every = mpi.allgather((cols, dtypes))
    err: str | None = None
    if any(e != every[0] for e in every):
        err = "checkpoint: the ranks hold different components (a bug)"
    target: str | None = None
    path: str | None = None
    suspended = False
    if rank == 0 and err is None:
        assert writer is not None
        try:
            target = writer.prepare_slot(_shapes(rows, whole, n_total))
            path = writer.write_path
            writer.suspend()
            suspended = True
        except (OSError, ValueError) as exc:
            err = f"cannot write a checkpoint into '{writer.path}': {exc}"
    err, target, path = mpi.bcast((err, target, path), root=0)
    if err is not None:
        raise ResultFileError(err)
    parts: dict[str, list] = {}
    mine: str | None = None
    try:
        if PARALLEL_HDF5:
            # parallel HDF5: one collective open, every rank writes its rows at once
            try:
                with h5py.File(path, "r+", driver="mpio", comm=mpi) as f:
                    try:
                        parts = _write_mine(f["checkpoint"][target], rows,
                                            whole if rank == 0 else {}, row_start)
                    except (OSError, KeyError, ValueError) as exc:
                        mine = f"rank {rank} cannot write its checkpoint rows into " \
                               f"'{path}': {exc}"
                    f.flush()                         # MPI_File_sync, collective
            except OSError as exc:
                mine = mine or f"rank {rank} cannot open '{path}' for parallel HDF5: {exc}"
        else:
            # serial HDF5: the ranks write one after the other
            for r in range(size):
                if r == rank:
                    try:
                        with h5py.File(path, "r+") as f:
                            parts = _write_mine(f["checkpoint"][target], rows,
                                                whole if rank == 0 else {}, row_start)
                            f.flush()
                            _fsync(f)
                    except (OSError, KeyError, ValueError) as exc:
                        mine = f"rank {rank} cannot write its checkpoint rows into '{path}': " \
                               f"{exc}"
                mpi.Barrier()
        all_parts = mpi.gather(parts, root=0)
        err = first_message(mine, comm)
    finally:
        if rank == 0 and suspended:
            assert writer is not None
            writer.resume()
    if rank == 0 and err is None:
        assert writer is not None
        merged: dict[str, list] = {}
        for p in all_parts:
            for k, v in p.items():
                merged.setdefault(k, []).extend(v)
        for v in merged.values():
            v.sort()
        writer.commit_slot(target, merged, time, step, t_output=t_output, attrs=attrs)
    err = first_message(err if rank == 0 else None, comm)
    if err is not None:
        raise ResultFileError(err)


def _describe(f: h5py.File, k: int, n_total: int) -> tuple[dict | None, str]:
    """What rank 0 knows of slot ``k`` before any data are read: datasets (which are
    row-distributed), checksums, attributes; or (None, why it is not valid)."""
    g = f["checkpoint"]
    name = f"slot{k}"
    if name not in g:
        return None, "missing"
    s = g[name]
    why = slot_problem(s)
    if why:
        return None, why
    sets = {n: (tuple(s[n].shape), s[n].dtype.str) for n in s if isinstance(s[n], h5py.Dataset)}
    parts = slot_parts(s)
    row_names = [n for n, (shape, dt) in sets.items()
                 if n != "spins" and len(shape) == 2 and shape[0] == n_total
                 and np.dtype(dt).kind == "c"]
    d = {"slot": k, "sets": sets, "rows": row_names, "parts": parts, **slot_info(s)}
    return d, ""


def read_rows(path: str, comm, row_start: int, n_rows: int, n_total: int, *,
              check: Callable[[dict], str | None] | None = None, verify: bool = True) -> dict:
    """The current valid checkpoint of the run file ``path``, read without gathering:
    ``rows`` = {name: this rank's rows [row_start, row_start + n_rows) of every row-distributed
    dataset (complex, n_total rows)}, ``whole`` = {name: array} of the others (on every rank),
    and time, step, n_output, t, slot, fallback, config, petsc_options, leads as
    :func:`toolkit.io.load_checkpoint`.  The checksums are verified part by part, spread over
    the ranks; a damaged current slot falls back to the other one (``fallback`` says why).
    ``check(meta)``: a message that refuses the checkpoint before any data are read (e.g. a
    config mismatch).  Collective; every rank raises the same :class:`ResultFileError`."""
    mpi = _mpi(comm) if comm.getSize() > 1 else None
    rank = comm.getRank()

    def bcast(obj):
        return obj if mpi is None else mpi.bcast(obj, root=0)

    meta: dict | None = None
    order: list[int] = []
    err: str | None = None
    if rank == 0:
        try:
            meta, order = _header(path)
        except ResultFileError as exc:
            err = str(exc)
        if err is None and check is not None and meta is not None and not meta["legacy"]:
            err = check(meta)
    err, meta, order = bcast((err, meta, order))
    if err is not None:
        raise ResultFileError(err)
    assert meta is not None
    if meta.pop("legacy"):              # format 1 (small files of early versions): rank 0
        return _read_legacy(path, comm, row_start, n_rows, n_total, check, verify)
    why: dict[str, str] = {}
    chosen = None
    for k in order:
        d, reason = None, ""
        if rank == 0:
            try:
                with open_result(path, "r") as f:
                    d, reason = _describe(f, k, n_total)
            except (OSError, KeyError, ValueError) as exc:
                d, reason = None, f"cannot be read (damaged: {exc})"
        d, reason = bcast((d, reason))
        if d is None:
            why[f"slot{k}"] = reason
            continue
        bad = _verify(path, d, comm) if verify and d["parts"] is not None else None
        if bad:
            why[f"slot{k}"] = bad
            continue
        chosen = d
        break
    if chosen is None:
        raise ResultFileError(f"'{path}' has no valid checkpoint: " + "; ".join(
            f"{k}: {v}" for k, v in why.items()))
    out = dict(meta)
    out.update({k: chosen[k] for k in ("slot", "time", "step", "n_output", "t")})
    if "leads" in chosen:
        out["leads"] = chosen["leads"]
    cur = order[0]
    out["fallback"] = "" if chosen["slot"] == cur else \
        f"slot{cur} {why[f'slot{cur}']}; using the previous checkpoint"
    rows: dict[str, np.ndarray] = {}
    whole: dict[str, np.ndarray] = {}
    mine: str | None = None
    try:
        with open_result(path, "r") as f:
            s = f["checkpoint"][f"slot{chosen['slot']}"]
            for name in chosen["rows"]:
                ds = s[name]
                blk = np.empty((n_rows, ds.shape[1]), ds.dtype)
                for a, b in _chunks(n_rows, blk[:1].nbytes):
                    blk[a:b] = ds[row_start + a:row_start + b]
                rows[name] = blk
            if rank == 0:
                whole = {n: s[n][()] for n in chosen["sets"] if n not in chosen["rows"]}
    except (OSError, KeyError, ValueError, ResultFileError) as exc:
        mine = f"'{path}': rank {rank} cannot read its checkpoint rows: {exc}"
    mine = first_message(mine, comm)
    if mine is not None:
        raise ResultFileError(mine)
    out["rows"], out["whole"] = rows, bcast(whole)
    return out


def _header(path: str) -> tuple[dict, list[int]]:
    """Config, PETSc options and the slot order (current first) of a run file (rank 0)."""
    from .io import _text

    with open_result(path, "r") as f:
        g = open_checkpoint_file(f, path)
        cur = int(g.attrs.get("slot", 0))
        meta = {"config": _text(f.attrs["config"]),
                "petsc_options": json.loads(f.attrs.get("petsc_options", "{}")),
                "legacy": "slot" not in g.attrs and any(isinstance(g[k], h5py.Dataset)
                                                        for k in g)}
    return meta, [cur, 1 - cur]


def _verify(path: str, d: dict, comm) -> str | None:
    """Check the CRC-32 of every part of slot ``d``, the parts spread round-robin over the
    ranks; the first failure (same on every rank) or None.  Collective."""
    tasks = [(n, r0, r1, crc) for n in sorted(d["parts"]) for r0, r1, crc in d["parts"][n]]
    mine = None
    try:
        with open_result(path, "r") as f:
            s = f["checkpoint"][f"slot{d['slot']}"]
            for i, (n, r0, r1, crc) in enumerate(tasks):
                if i % comm.getSize() != comm.getRank():
                    continue
                if _crc_rows(s[n], r0, r1) != int(crc):
                    mine = f"checksum of '{n}' does not match (damaged)"
                    break
    except (OSError, KeyError, ValueError, ResultFileError) as exc:
        mine = f"cannot be read (damaged: {exc})"
    return first_message(mine, comm)


def _read_legacy(path: str, comm, row_start: int, n_rows: int, n_total: int, check,
                 verify: bool) -> dict:
    """Format-1 checkpoints (datasets directly in /checkpoint): read whole on rank 0 and
    broadcast (files of early versions, small)."""
    mpi = _mpi(comm) if comm.getSize() > 1 else None
    ck, err = None, None
    if comm.getRank() == 0:
        try:
            ck = load_checkpoint(path, verify=verify)
            err = check(ck) if check is not None else None
        except ResultFileError as exc:
            err = str(exc)
    if mpi is not None:
        err, ck = mpi.bcast((err, ck), root=0)
    if err is not None:
        raise ResultFileError(err)
    assert ck is not None
    meta = ("time", "step", "n_output", "t", "slot", "fallback", "config", "petsc_options",
            "leads")
    out = {k: ck[k] for k in meta if k in ck}
    arrays = {k: v for k, v in ck.items() if k not in meta}
    rows = {k: np.ascontiguousarray(v[row_start:row_start + n_rows]) for k, v in arrays.items()
            if k != "spins" and np.ndim(v) == 2 and len(v) == n_total
            and np.iscomplexobj(v)}
    out["rows"] = rows
    out["whole"] = {k: v for k, v in arrays.items() if k not in rows}
    return out
