"""``qcspin quench DIR [DIR ...]``: analysis of bias-quench files (t_R, steady state, T_cd,
T_eff; analysis/quench.py does the work).  Registered in pyproject.toml (``qcspin.commands``)."""
from __future__ import annotations

import argparse
import glob
import os

from analysis import quench
from analysis.quench import analyze_sweep
from toolkit.cli_args import add_output_args, number
from toolkit.parallel import get_comm

__all__ = ["register", "cmd_quench"]


def _check_dirs(args, outputs: bool = True) -> None:
    """Refuse bad directories of ``qcspin quench`` before any analysis: missing, not a
    directory, given twice, without V_*.h5, holding a V_*.h5 that is not a qcspin run file,
    or (``outputs``) an analysis.h5 that exists (without --overwrite).  Reads only; not
    collective."""
    from toolkit.config import ConfigError
    from toolkit.io import FileExistsErrorQC, read_status

    seen = set()
    for d in args.dirs:
        if not os.path.exists(d):
            raise ConfigError(f"directory '{d}' is not allowed: it does not exist; expected a "
                              f"'qcspin sweep' output directory holding V_*.h5")
        if not os.path.isdir(d):
            raise ConfigError(f"'{d}' is not allowed: it is a file, not a directory; expected a "
                              f"'qcspin sweep' output directory holding V_*.h5")
        if os.path.realpath(d) in seen:
            raise ConfigError(f"directory '{d}' is not allowed: it is given twice")
        seen.add(os.path.realpath(d))
    for d in args.dirs:
        files = sorted(glob.glob(os.path.join(d, "V_*.h5")))
        if not files:
            raise ConfigError(f"directory '{d}' is not allowed: it holds no V_*.h5 quench files "
                              f"(the output of 'qcspin sweep')")
        for f in files:
            read_status(f)  # ResultFileError: missing, foreign, damaged, not a run file
        out = os.path.join(d, "analysis.h5")
        if outputs and os.path.exists(out) and not args.overwrite:
            raise FileExistsErrorQC(f"'{out}' exists; use --overwrite")


def cmd_quench(args) -> int:
    """Handler of ``qcspin quench``.  Not collective (it may be called on rank 0 alone): every
    rank checks the options and reads the input directories (bad input: ConfigError /
    ResultFileError, ``qcspin: error: ...``, exit status 2, on every rank); rank 0 alone
    analyses and writes (no file races), so an existing analysis.h5 or a failing analysis
    is reported by rank 0 only (the other ranks return 0)."""
    number("--t-min", args.t_min, ge=0)
    number("--tail", args.tail, gt=0, le=1)
    rank0 = get_comm().getRank() == 0
    _check_dirs(args, outputs=rank0)  # analysis.h5 may appear meanwhile: rank 0 writes it
    if not rank0:
        return 0
    for d in args.dirs:
        _quench_dir(d, args)
    return 0


def _quench_dir(d: str, args) -> None:
    from toolkit.cli import result  # the table: also with qcspin -q

    tab = analyze_sweep(d, overwrite=args.overwrite, t_min=args.t_min, tail=args.tail)
    result(f"{d}: {len(tab['V'])} quench files -> {os.path.join(d, 'analysis.h5')}")
    result(f"  {'V':>8} {'t_R':>12} {'valid':>5} {'dM_r^x/N':>11} {'T_cd^y':>11} "
           f"{'T_eff^y(FL)':>11} {'I_l':>11}")
    fl = tab["layers"].index("FL")
    for i, V in enumerate(tab["V"]):
        n = tab["n_spins"][i][fl]
        result(f"  {V:8.4g} {tab['t_R'][i]:12.5g} {str(tab['valid'][i]):>5} "
               f"{tab['dM'][i][fl][0] / max(n, 1):11.4e} {tab['T_cd'][i][1]:11.4e} "
               f"{tab['T_eff'][i][fl][1]:11.4e} {tab['lead_current'][i][0]:11.4e}")


def register(subparsers) -> None:
    """Add ``qcspin quench``."""
    p = subparsers.add_parser(
        "quench", help="analyse bias-quench files (t_R, steady state, T_cd, T_eff)",
        description=quench.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dirs", nargs="+", help="sweep directories holding V_*.h5")
    p.add_argument("--t-min", type=float, default=200.0, help="transient left out of the "
                   "Eq. (22) fit (200)")
    p.add_argument("--tail", type=float, default=0.5, help="fraction of the record averaged "
                   "for the steady state (0.5)")
    add_output_args(p, None, overwrite="replace analysis.h5")
    p.set_defaults(func=cmd_quench)

