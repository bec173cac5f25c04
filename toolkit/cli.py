"""The ``qcspin`` command line.

    qcspin run CONFIG.toml [-o OUT.h5] [--overwrite] [--set key=value ...] [PETSc options]
    qcspin run --restart OUT.h5 [PETSc options]
    qcspin spectrum CONFIG.toml [...]      (see qcspin spectrum -h)
    qcspin jeff CONFIG.toml --sweep J_sd=0.5:6:0.5 [...]
    qcspin plot OUT.h5 [-o OUT.png]

PETSc options (single dash, e.g. ``-qcspin_ts_type rk -qcspin_ts_rk_type 5dp
-qcspin_ts_adapt_type basic``) win over the config file.
"""
from __future__ import annotations

import argparse
import os
import sys

from . import _petscenv

__all__ = ["main", "split_petsc_args"]


def split_petsc_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Separate PETSc options (``-name [value]``, single dash, name longer than one letter)."""
    ours, petsc = [], []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-") and not a.startswith("--") and len(a) > 2 and not _is_number(a):
            petsc.append(a)
            if i + 1 < len(argv) and (not argv[i + 1].startswith("-") or _is_number(argv[i + 1])):
                petsc.append(argv[i + 1])
                i += 1
        else:
            ours.append(a)
        i += 1
    return ours, petsc


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _rank0() -> bool:
    from petsc4py import PETSc

    return PETSc.COMM_WORLD.getRank() == 0


def say(*args) -> None:
    if _rank0():
        print(*args, flush=True)


def _ts_label(sim) -> str:
    ts_type = sim.ts.getType()
    if ts_type == "rk":
        return f"rk/{sim.ts.getRKType()}"
    if getattr(sim, "leads", None) and sim.config.solver.stiff != "none":
        return f"{ts_type} (stiff = {sim.config.solver.stiff})"
    return ts_type


def cmd_run(args) -> int:
    from integrators.simulation import Simulation
    from toolkit.config import config_from_dict, load_config
    from toolkit.io import load_checkpoint

    import tomllib

    if args.restart:
        out = args.restart
        ck = load_checkpoint(out) if _rank0() else None
        from toolkit.parallel import bcast, get_comm

        ck_cfg = bcast(ck["config"] if ck else None, get_comm())
        cfg = config_from_dict(tomllib.loads(ck_cfg))
        if args.config:
            say(f"note: --restart uses the config stored in {out}; ignoring {args.config}")
    else:
        if not args.config:
            raise SystemExit("qcspin run: give a CONFIG.toml (or --restart OUT.h5)")
        cfg = load_config(args.config, args.set)
        out = args.output or os.path.splitext(os.path.basename(args.config))[0] + ".h5"
    sim = Simulation(cfg)
    say(f"qcspin run: {cfg.name}: {sim.device.n_sites} sites, {sim.device.n_spins} classical "
        f"spins, N_s = {sim.device.n_orbitals}, {sim.comm.getSize()} MPI rank(s), "
        f"TS {_ts_label(sim)}, "
        f"dt = {cfg.time.dt} {sim.units.time}")
    summary = sim.run(out, overwrite=args.overwrite, restart=bool(args.restart),
                      progress=not args.quiet, t_end=args.t_end)
    rate = summary["steps_this_run"] / summary["wall_time"] if summary["wall_time"] > 0 else 0
    obs = getattr(sim, "last_observables", None)
    state = "interrupted (checkpoint written; continue with --restart)" if summary["interrupted"] else "finished"
    say(f"{state}: t = {summary['time']:.6g} {summary['time_unit']}, step {summary['steps']}, "
        f"{summary['steps_this_run']} steps in {summary['wall_time']:.2f} s ({rate:.1f} steps/s)")
    if obs is not None:
        say(f"  total energy {float(obs['energy/total']):.10g}, electrons "
            f"{float(obs['electron_number']):.10g}, total spin {obs['angular_momentum'].round(8)}")
    say(f"  results: {os.path.abspath(out)}")
    sim.destroy()
    return 130 if summary["interrupted"] else 0


def cmd_plot(args) -> int:
    from analysis.plots import plot_run

    if _rank0():
        png = plot_run(args.result, args.output)
        print(f"wrote {os.path.abspath(png)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qcspin", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="time evolution of a junction")
    r.add_argument("config", nargs="?", help="TOML config")
    r.add_argument("-o", "--output", help="HDF5 result file (default: CONFIG name + .h5)")
    r.add_argument("--overwrite", action="store_true", help="replace an existing result file")
    r.add_argument("--restart", metavar="OUT.h5", help="continue the run stored in OUT.h5")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set time.dt=0.05 (repeatable)")
    r.add_argument("--t-end", type=float, default=None, help="override [time] t_end")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_run)
    pl = sub.add_parser("plot", help="plot a result file to PNG")
    pl.add_argument("result", help="HDF5 result file")
    pl.add_argument("-o", "--output", help="PNG path (default: RESULT.png)")
    pl.set_defaults(func=cmd_plot)
    try:
        from analysis.commands import add_commands
    except ImportError:
        pass
    else:
        add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ours, petsc = split_petsc_args(argv)
    _petscenv.init(petsc)
    from petsc4py import PETSc

    if petsc:
        PETSc.Options().insertString(" ".join(petsc))
    from .config import ConfigError
    from .io import FileExistsErrorQC

    args = build_parser().parse_args(ours)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, FileExistsErrorQC, FileNotFoundError) as exc:
        if _rank0():
            print(f"qcspin: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
