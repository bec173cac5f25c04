"""``qcspin plot FILE.h5 [-o FILE.png]``: a PNG of any qcspin HDF5 file (rank 0 plots).
Registered in pyproject.toml (``qcspin.commands``)."""
from __future__ import annotations

import os

from toolkit.cli_args import add_output_args

__all__ = ["register", "cmd_plot"]


def register(subparsers) -> None:
    """Add ``qcspin plot``."""
    pl = subparsers.add_parser("plot", help="plot a qcspin HDF5 file to PNG")
    pl.add_argument("result", help="HDF5 file written by qcspin")
    add_output_args(pl, "PNG path (default: RESULT.png)", overwrite=False)
    pl.set_defaults(func=cmd_plot)


def cmd_plot(args) -> int:
    """Rank 0 plots; an error is raised on every rank (same exit status everywhere)."""
    from analysis.plots import PlotError, plot_file
    from toolkit.cli import say
    from toolkit.parallel import get_comm, on_root

    def plot():
        say(f"wrote {os.path.abspath(plot_file(args.result, args.output))}")
    on_root(plot, get_comm(), (PlotError,))
    return 0
