"""``qcspin sweep CONFIG.toml --V start:stop:step``: a bias sweep of an open junction
(integrators/campaign.py does the work).  Registered in pyproject.toml (``qcspin.commands``)."""
from __future__ import annotations

import argparse
import os

from integrators.campaign import bias_file_name, bias_sweep
from toolkit.cli_args import add_output_args, add_set_arg, number, values_arg
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

    if args.durations is not None:
        return _pulse_sweep(args, cfg, comm)

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


def _pulse_sweep(args, cfg, comm) -> int:
    """``--durations``: the pulse sweep of paper 000 Fig. 2(d).  Collective."""
    from integrators.campaign import pulse_sweep
    from integrators.switching import SwitchingCriterion
    from toolkit.cli import say
    from toolkit.device import device_from_config
    from toolkit.schema import ConfigError as _CE

    number("--t0", args.t0, ge=0)
    number("--t-after", args.t_after, ge=0)
    try:
        crit = SwitchingCriterion(threshold=args.threshold, dwell=args.dwell)
    except ValueError as exc:
        raise _CE(f"--{str(exc)}") from None
    dev = device_from_config(cfg)
    moving = [n for n in dev.magnetic_layers
              if not dev.frozen[dev.layer_spins(n)].all()]
    layer = args.layer or (moving[-1] if moving else None)
    if layer not in moving:
        raise _CE(f"--layer = {layer!r} is not allowed: expected a layer with moving moments, "
                  f"one of {moving}")

    def report(vh, vd, ts, mz, wall):
        state = "switched at %g" % ts if ts is not None else "no switching"
        say(f"  V_H = {vh:<7g} V_D = {vd:<8g} {state}, final M_z = {mz:+.3f} ({wall:.0f} s)",
            any_rank=True)

    say(f"qcspin sweep: {len(args.V)} x {len(args.durations)} pulses, layer {layer!r} "
        f"-> {args.output}")
    pulse_sweep(cfg, args.V, args.durations, outdir=args.output, layer=layer, t0=args.t0,
                t_after=args.t_after, criterion=crit, group_size=args.group_size,
                overwrite=args.overwrite, resume=args.resume, comm=comm, progress=report)
    table = os.path.join(os.path.abspath(args.output), "pulse_sweep.h5")
    if comm.getRank() == 0:
        from analysis.plots import plot_pulse_sweep

        png = plot_pulse_sweep(table, os.path.splitext(table)[0] + ".png")
        say(f"summary: {table}; switching diagram: {png}")
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
    add_set_arg(p)
    add_output_args(p, "output directory (sweep)", default="sweep",
                    overwrite="replace existing V_*.h5/sweep.h5")
    p.add_argument("--resume", action="store_true", help="reuse finished V_*.h5, continue "
                   "unfinished ones from their checkpoint")
    g = p.add_argument_group("pulse sweep (paper 000 Fig. 2d): --V are the pulse heights")
    g.add_argument("--durations", type=values_arg, default=None, metavar="VD",
                   help="pulse durations start:stop:step or d1,d2 (config time units): one "
                   "run per (V, duration) from the config's initial state instead of stage 1/2")
    g.add_argument("--t0", type=float, default=0.0, help="pulse start (0)")
    g.add_argument("--t-after", type=float, default=3000.0,
                   help="run length after the pulse (3000)")
    g.add_argument("--layer", default=None, help="the layer whose switching (M_z: +1 -> -1) "
                   "is detected (default: the last layer with moving moments)")
    g.add_argument("--threshold", type=float, default=-0.9, help="M_z at or below which the "
                   "layer counts as switched (-0.9)")
    g.add_argument("--dwell", type=float, default=500.0, help="how long it must stay there "
                   "(500, config time units)")
    p.set_defaults(func=cmd_sweep)
