"""``qcspin sweep CONFIG.toml --V start:stop:step``: a bias sweep of an open junction
(integrators/campaign.py does the work).  Registered in pyproject.toml (``qcspin.commands``)."""
from __future__ import annotations

import argparse
import os

from integrators.campaign import bias_file_name, bias_sweep
from toolkit.cli_args import number, values_arg
from toolkit.config import ConfigError, load_config
from toolkit.parallel import bcast, get_comm

__all__ = ["register", "cmd_sweep"]

_DESCRIPTION = """\
Bias sweep of an open junction (paper 004, Sec. III B protocol).

Stage 1 (V = 0, spins released from their initial directions) is run once and stored as
stage1.h5; if that file exists it is reused.  Stage 2 is a bias quench at t = 0 from the
stage-1 end state, one run per V, each written to V_<value>.h5; the V points are shared round
robin over groups of --group-size MPI ranks, and rank 0 writes the summary table sweep.h5.
With --resume finished V files are reused and unfinished ones continue from their last
checkpoint.

    qcspin sweep examples/valve_2d_open.toml --V 0.5:4:0.5 --protocol symmetric \\
        --stage1 500 --t-end 2000 -o sweep_dir
"""


def _check_cli(args, comm) -> None:
    """Refuse bad options of ``qcspin sweep`` before any run (ConfigError naming the option,
    the value and what is allowed, on every rank; existing results are refused by
    :func:`bias_sweep`).  Collective (rank 0 looks at the file system)."""
    number("--stage1", args.stage1, ge=0)
    number("--t-end", args.t_end, ge=0)
    size = comm.getSize()
    if not 1 <= args.group_size <= size:
        raise ConfigError(f"--group-size = {args.group_size} is not allowed: expected an integer "
                          f"1 <= group size <= {size} (the number of MPI ranks)")
    names = [bias_file_name(v) for v in args.V]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"--V = {', '.join(f'{v:g}' for v in args.V)} is not allowed: two "
                          f"values would share the result file {twice[0]}; expected distinct "
                          f"biases")
    err = None
    if comm.getRank() == 0:
        out = args.output
        parent = os.path.dirname(os.path.abspath(out))
        if os.path.exists(out) and not os.path.isdir(out):
            err = (f"-o = {out!r} is not allowed: it is a file; the sweep writes a directory "
                   f"(stage1.h5, V_*.h5, sweep.h5)")
        elif not os.path.isdir(parent):
            err = (f"-o = {out!r} is not allowed: directory '{parent}' does not exist; create it "
                   f"first")
        elif args.resume and args.overwrite:
            err = ("--resume and --overwrite are not allowed together: --resume continues the "
                   "existing V_*.h5 files, --overwrite replaces them")
    err = bcast(err, comm)
    if err:
        raise ConfigError(err)


def cmd_sweep(args) -> int:
    """Handler of ``qcspin sweep``.  Collective.  Bad input raises ConfigError (exit status 2)
    on every rank before any run."""
    from toolkit.cli import say  # rank 0 prints

    comm = get_comm()
    _check_cli(args, comm)
    cfg = load_config(args.config, args.set)
    if not cfg.leads:
        raise ConfigError(f"config '{args.config}' is not allowed: it has no [[leads]]; a bias "
                          f"sweep needs an open junction (e.g. examples/valve_2d_open.toml)")

    def report(i, v, obs, wall):  # on the first rank of the group that ran V (any rank)
        say(f"  V = {v:<8g} I_l = {obs['lead_current'][0]: .6e}  ({wall:.1f} s)",
            any_rank=True)

    say(f"qcspin sweep: {len(args.V)} bias values, {args.protocol}, stage 1 for "
        f"{args.stage1} -> {args.output}")
    res = bias_sweep(cfg, args.V, outdir=args.output, protocol=args.protocol,
                     stage1_time=args.stage1, t_end=args.t_end, group_size=args.group_size,
                     overwrite=args.overwrite, resume=args.resume, comm=comm, progress=report)
    say(f"summary: {os.path.join(os.path.abspath(args.output), 'sweep.h5')} "
        f"(stage 1: {res.stage1})")
    return 0


def register(subparsers) -> None:
    """Add ``qcspin sweep``."""
    p = subparsers.add_parser("sweep", help="bias sweep of an open junction (stage 1 once, "
                              "then one bias quench per V)", description=_DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="TOML config with [[leads]]")
    p.add_argument("--V", type=values_arg, required=True,
                   help="bias values start:stop:step or v1,v2")
    p.add_argument("--protocol", choices=("symmetric", "asymmetric"), default="symmetric")
    p.add_argument("--stage1", type=float, default=100.0, help="stage-1 length (config units)")
    p.add_argument("--t-end", type=float, default=None, help="stage-2 length ([time] t_end)")
    p.add_argument("--group-size", type=int, default=1, help="MPI ranks per run (1)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("-o", "--output", default="sweep", help="output directory (sweep)")
    p.add_argument("--overwrite", action="store_true", help="replace existing V_*.h5/sweep.h5")
    p.add_argument("--resume", action="store_true", help="reuse finished V_*.h5, continue "
                   "unfinished ones from their checkpoint")
    p.set_defaults(func=cmd_sweep)
