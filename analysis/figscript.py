"""The shared ``main()`` of the figure scripts in ``scripts/``.

Every figure script writes ``OUTDIR/<name>.h5`` (the data) and ``OUTDIR/<name>.png`` (the plot)
and takes the same options: ``--outdir`` (default ``results/figures``), ``--quick`` (coarse smoke
version), ``--overwrite`` (existing results are never replaced otherwise) and ``--plot-only``
(re-plot an existing ``<name>.h5``), plus PETSc options (``-name value``) and its own extras::

    def compute(h5, args, comm): ...          # collective: every rank calls it
    def plot(h5, png): ...                    # rank 0 only

    if __name__ == "__main__":
        sys.exit(figure_main("fig02", compute, plot, doc=__doc__, quick_help="coarse J_sd grid"))

Exit codes: 0, or 2 (on every rank) when results exist and ``--overwrite`` is missing, or when
``--plot-only`` finds no data file.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable

import toolkit  # noqa: F401  (complex petsc4py, initialised before PETSc options are known)
from toolkit import log
from toolkit._petscenv import split_petsc_args
from toolkit.parallel import bcast

from petsc4py import PETSc

__all__ = ["figure_main"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _existing(h5: str, args) -> list[str]:
    return [h5] if os.path.exists(h5) else []


def figure_main(name: str, compute: Callable, plot: Callable, *, doc: str, quick_help: str,
                extra_args: dict[str, dict] | None = None, clashes: Callable | None = None,
                protect_png: bool = False, argv: list[str] | None = None) -> int:
    """Parse the options, refuse to replace results, compute, plot on rank 0.  Collective.

    name: file stem, ``OUTDIR/<name>.h5`` and ``.png``; also the prefix of the messages.
    compute(h5, args, comm): writes the data (collective; skipped with ``--plot-only``).
    plot(h5, png): draws ``png`` from ``h5`` (called on rank 0 only).
    doc: the script's docstring (``--help``); quick_help: the help of ``--quick``.
    extra_args: ``{"--flag": add_argument keywords}`` of the script's own options.
    clashes(h5, args): what ``compute`` would replace and already exists (default: ``h5`` if it
        exists); evaluated on rank 0 only, without ``--overwrite``.
    protect_png: the PNG, too, is only replaced with ``--overwrite`` (also under ``--plot-only``).
    argv: the command line without the program name (default ``sys.argv[1:]``).
    """
    t0 = time.perf_counter()
    log.ensure_configured()  # a program: its messages on rank 0 (kept if set up already)
    _log = log.get_logger(__name__)
    ours, petsc = split_petsc_args(sys.argv[1:] if argv is None else list(argv))
    p = argparse.ArgumentParser(description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--outdir", default=os.path.join(ROOT, "results", "figures"))
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--plot-only", action="store_true", help=f"re-plot an existing {name}.h5")
    for flag, kw in (extra_args or {}).items():
        p.add_argument(flag, **kw)
    args = p.parse_args(ours)  # identical on every rank: same command line
    if petsc:  # PETSc was initialised on import (``import toolkit``): add them now, as qcspin
        PETSc.Options().insertString(" ".join(petsc))
    comm = PETSc.COMM_WORLD
    rank0 = comm.getRank() == 0
    h5, png = (os.path.join(args.outdir, name + ext) for ext in (".h5", ".png"))

    error = None  # decided on rank 0 (one view of the file system), then shared
    if rank0:
        taken = [] if args.overwrite or args.plot_only else list((clashes or _existing)(h5, args))
        if protect_png and not args.overwrite and os.path.exists(png):
            taken.append(png)
        if taken:
            hint = "" if args.plot_only or png in taken else " or --plot-only"
            error = (f"{name}: {', '.join(repr(t) for t in taken)} "
                     f"{'exists' if len(taken) == 1 else 'exist'}; use --overwrite{hint}")
        elif args.plot_only and not os.path.exists(h5):
            error = f"{name}: --plot-only needs '{h5}'"
        elif not args.plot_only:
            os.makedirs(args.outdir, exist_ok=True)
    error = bcast(error, comm)
    if error:
        _log.error(error, extra={"label": ""})  # stderr, rank 0, as it is ("fig02: ...")
        return 2
    if not args.plot_only:
        compute(h5, args, comm)
    if rank0:
        plot(h5, png)
        data = f"{os.path.abspath(h5)} and " if os.path.exists(h5) else ""
        _log.info(f"{name}: wrote {data}{os.path.abspath(png)} ({time.perf_counter() - t0:.1f} s)")
    return 0
