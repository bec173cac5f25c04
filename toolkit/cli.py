"""The ``qcspin`` command line.

  qcspin run CONFIG.toml [-o OUT.h5] [--overwrite] [--set KEY=VALUE ...] [PETSc options]
  qcspin run --restart OUT.h5 [--t-end T] [--set time.t_end=T]
  qcspin info OUT.h5
  qcspin plot FILE.h5 [-o FILE.png]
  qcspin spectrum | jeff | transport | sweep | quench ...   (qcspin COMMAND -h)

PETSc options (single dash, e.g. -qcspin_ts_rk_type 5dp -qcspin_ts_adapt_type basic) win over
the config file; those under the qcspin_ prefix are stored with the run's config.

Exit status: 0 finished, 1 failed (e.g. the state became non-finite), 2 bad input,
130 interrupted (SIGINT/SIGTERM; a checkpoint was written).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import warnings

from . import _petscenv
from ._petscenv import _NEGATIVE, join_negative_values, split_petsc_args

__all__ = ["main", "split_petsc_args", "build_parser"]

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def _rank0() -> bool:
    from petsc4py import PETSc

    return PETSc.COMM_WORLD.getRank() == 0


def say(*args, **kw) -> None:
    if _rank0():
        print(*args, flush=True, **kw)


def warn(text: str) -> None:
    if _rank0():
        print(f"qcspin: warning: {text}", file=sys.stderr, flush=True)


def _ts_label(sim) -> str:
    ts_type = sim.ts.getType()
    if ts_type == "rk":
        return f"rk/{sim.ts.getRKType()}"
    if getattr(sim, "leads", None) and sim.config.solver.stiff != "none":
        return f"{ts_type} (stiff = {sim.config.solver.stiff})"
    return ts_type


# PETSc options that are diagnostics, not part of the run: never stored with its config
_DIAGNOSTIC = re.compile(r"(monitor|view|_info$|^log|^options_)")


def petsc_config_options(petsc: list[str], prefix: str = "qcspin_") -> list[str]:
    """``--set solver.options.NAME=VALUE`` overrides for the PETSc options under ``prefix``
    (so that they are stored with the run and a restart uses them again)."""
    return [f"solver.options.{name[len(prefix):]}=\"{value or 'true'}\""
            for name, value in _pairs(petsc)
            if name.startswith(prefix) and not _DIAGNOSTIC.search(name[len(prefix):])]


RESTART_SETTABLE = ("time.t_end", "time.checkpoint_every")


def _restart_config(args, petsc: list[str]):
    """The config stored in the restarted file with the allowed overrides applied."""
    import tomllib

    from toolkit.config import ConfigError, apply_overrides, config_from_dict
    from toolkit.io import load_checkpoint
    from toolkit.parallel import bcast, get_comm, on_root

    def stored():
        try:
            ck = load_checkpoint(args.restart)
        except (ValueError, OSError) as exc:
            raise ConfigError(str(exc)) from None
        return ck["config"], float(ck["t"])
    comm = get_comm()
    text, t_ck = bcast(on_root(stored, comm, (ConfigError,)), comm)
    sets = list(args.set)
    for item in sets:
        key = item.split("=", 1)[0].strip()
        if key not in RESTART_SETTABLE:
            raise ConfigError(f"--set {item!r} is not allowed with --restart: a restart continues "
                              f"the stored run and may change only {list(RESTART_SETTABLE)}")
    if args.t_end is not None:
        sets.append(f"time.t_end={args.t_end}")
    stored = tomllib.loads(text)
    given = {s.split("=", 1)[0][len("solver.options."):]: s.split("=", 1)[1].strip('"')
             for s in petsc_config_options(database_options())}
    kept = {k: str(v) for k, v in stored.get("solver", {}).get("options", {}).items()}
    changed = sorted(k for k, v in given.items() if kept.get(k) != v)
    if changed:
        raise ConfigError(f"PETSc option -qcspin_{changed[0]} {given[changed[0]]} is not allowed "
                          f"with --restart (from the command line, PETSC_OPTIONS or an options "
                          f"file): the run continues with the options stored in {args.restart} "
                          f"(see qcspin info); monitors and -log_view are fine")
    cfg = config_from_dict(apply_overrides(stored, sets))
    if cfg.time.t_end < t_ck * (1 - 1e-12):
        raise ConfigError(f"config key 'time.t_end' = {cfg.time.t_end:g} is not allowed with "
                          f"--restart: the checkpoint of {args.restart} is at t = {t_ck:g}; "
                          f"give t_end >= {t_ck:g}")
    return cfg


def database_options(prefix: str = "qcspin_") -> list[str]:
    """The PETSc options under ``prefix`` in the database, from every source (command line,
    PETSC_OPTIONS, -options_file, .petscrc), as ``-name value`` arguments.  Reading them with
    getAll does not mark them used."""
    from petsc4py import PETSc

    out = []
    for name, value in PETSc.Options().getAll().items():
        if name.startswith(prefix):
            out += [f"-{name}"] + ([str(value)] if value not in (None, "") else [])
    return out


def _new_config(args, petsc: list[str]):
    from toolkit.config import load_config

    sets = list(args.set) + petsc_config_options(database_options())
    if args.t_end is not None:
        sets.append(f"time.t_end={args.t_end}")
    return load_config(args.config, sets)


def _preflight(sim, cfg) -> None:
    """Warnings a user wants before a long run: uncovered columns, outputs, stability."""
    from toolkit import config as _config

    for text in getattr(_config, "config_warnings", lambda c: [])(cfg):
        warn(text)
    n_steps = int(round(sim.units.time_to_internal(cfg.time.t_end) / sim.dt))
    if not sim.adaptive and cfg.time.output_every > max(1, n_steps):
        warn(f"time.output_every = {cfg.time.output_every} is larger than the {n_steps} steps "
             f"of the run: only the initial state is recorded (and the final state in the "
             f"checkpoint)")
    est = sim.stability_limit()
    if est is not None and sim.dt > est[0]:
        warn("the run will probably blow up" + sim.stability_hint())


def cmd_run(args) -> int:
    petsc = args.petsc
    from integrators.simulation import Simulation

    if args.restart and args.config:
        raise _InputError(f"give either CONFIG.toml or --restart {args.restart}, not both (a "
                          f"restart uses the config stored in the file)")
    if args.restart:
        for flag, value in (("-o", args.output), ("--overwrite", args.overwrite)):
            if value:
                raise _InputError(f"{flag} is not allowed with --restart: a restart continues "
                                  f"the run in {args.restart} itself")
        out = args.restart
        cfg = _restart_config(args, petsc)
    else:
        if not args.config:
            raise _InputError("qcspin run: give a CONFIG.toml (or --restart OUT.h5)")
        cfg = _new_config(args, petsc)
        out = args.output or os.path.splitext(os.path.basename(args.config))[0] + ".h5"
    sim = Simulation(cfg)
    from toolkit.petsc_options import OptionError, check_unused

    names = [n for n, _ in _pairs(petsc)]
    try:
        # a -qcspin_ option would be stored with the run's config: refuse one nothing reads
        ours = [n for n in names if n.startswith("qcspin_") and petsc_config_options(["-" + n])]
        bad = check_unused(ours)
        if bad:
            raise OptionError(f"{bad[0]} (options under qcspin_ are stored with the run, so "
                              f"they must be used)")
        early = [n for n in names if "view" not in n]  # *_view options are read at the end
        for line in check_unused(early, strict=args.strict):  # --strict: OptionError, exit 2
            warn(line)
        say(f"qcspin run: {cfg.name}: {sim.device.n_sites} sites, {sim.device.n_spins} classical "
            f"spins, N_s = {sim.device.n_orbitals}, {sim.comm.getSize()} MPI rank(s), "
            f"TS {_ts_label(sim)}, dt = {sim.units.time_from_internal(sim.dt):g} "
            f"{sim.units.time}" + (" (initial; adaptive)" if sim.adaptive else "")
            + f", t_end = {cfg.time.t_end:g}")
        say(f"  memory: {sim.memory.summary()}")
        if sim.problem.extended:
            n_x = sim.edevice.n_orbitals - sim.device.n_orbitals
            say(f"  leads: " + "; ".join(
                f"{m.lead}: {m.model}, {m.representation}"
                + (f", {m.sites.columns} explicit columns" if m.sites is not None else "")
                for m in sim.problem.modes)
                + f" (electron problem N_s = {sim.edevice.n_orbitals}: {n_x} lead orbitals; "
                  f"observables on the device's {sim.device.n_orbitals})")
        if sim.problem.auxiliary:
            t = sim.rhs.t
            say(f"  leads: " + "; ".join(f"{m.lead}: {m.model}, {m.representation}"
                                           for m in sim.problem.modes)
                + f" (auxiliary modes: {t.nx} retarded and {t.ny} lesser vectors, "
                  f"second tier {t.ny * t.nx + t.ny * t.ny + t.nu * t.ny} numbers on rank 0)")
        if any(lc.model == "tight-binding" for lc in cfg.leads):
            from analysis.lead_check import representation_errors

            rep = representation_errors(sim)
            sim.representation_report = rep
            if rep is None:
                say("  lead representation error: not computed (N_s > 400)")
            else:
                cur = rep["current_error"]
                say("  lead representation error: " + "; ".join(
                    f"{d['name']} ({d['representation']}): max |dGamma| {d['gamma_error']:.2g}"
                    for d in rep["leads"])
                    + ("" if cur is None else f"; Landauer current at the final bias "
                       f"{cur:.2g} relative"))
        if sim.adaptive:
            rtol, atol = sim.ts.getTolerances()
            say(f"  adaptive step: rtol = {rtol:g}, atol = {atol:g}")
        _preflight(sim, cfg)
        summary = sim.run(out, overwrite=args.overwrite, restart=bool(args.restart),
                          progress=not args.quiet)
        for line in check_unused([n for n in names if "view" in n]):
            warn(line)
        rate = (summary["steps_this_run"] / summary["wall_time"]
                if summary["wall_time"] > 0 else 0)
        obs = getattr(sim, "last_observables", None)
        state = {"interrupted": "interrupted (checkpoint written; continue with qcspin run "
                                "--restart " + out + ")"}.get(summary["status"],
                                                              summary["status"])
        say(f"{state}: t = {summary['time']:.6g} {summary['time_unit']}, step "
            f"{summary['steps']}, {summary['steps_this_run']} steps in "
            f"{summary['wall_time']:.2f} s ({rate:.1f} steps/s)")
        if obs is not None:
            say(f"  total energy {float(obs['energy/total']):.10g}, electrons "
                f"{float(obs['electron_number']):.10g}, total spin "
                f"{obs['angular_momentum'].round(8)}")
        say(f"  results: {os.path.abspath(out)}")
    finally:
        sim.destroy()
    return EXIT_INTERRUPTED if summary["status"] == "interrupted" else EXIT_OK


def cmd_info(args) -> int:
    """Rank 0 reads and prints; an error is raised on every rank."""
    from toolkit.io import ResultFileError, read_status
    from toolkit.parallel import get_comm, on_root

    on_root(lambda: _print_info(args, read_status(args.result)), get_comm(), (ResultFileError,))
    return 0


def _print_info(args, st) -> None:
    from toolkit.io import fmt_history

    print(f"{args.result}: qcspin run file (format {st['format']}), status: {st['status']}"
          + (f" - {st['message']}" if st["message"] else ""))
    import tomllib

    try:
        c = tomllib.loads(st["config"])
        lat = c.get("lattice", {})
        t = c.get("time", {})
        layers = ", ".join(f"{l.get('name')} {l.get('columns')}" for l in c.get("layers", []))
        leads = ", ".join(
            f"{l.get('name') or l.get('side')} ({l.get('model', 'wide-band')}"
            + (f", {l.get('representation', 'extended')} L = {l.get('sites', 60)}"
               if l.get("model") == "tight-binding" else "") + ")"
            for l in c.get("leads", []))
        print(f"  config: {c.get('name', '')!r}, lattice {lat.get('size')}, layers {layers or '-'}, leads "
              f"{leads or 'none'}, dt = {t.get('dt')}, t_end = {t.get('t_end')} "
              f"{st['units']}, bias {c.get('bias', {}).get('protocol', 'none')}")
    except tomllib.TOMLDecodeError:
        print("  config: (cannot be read)")
    last = f", last t = {st['t_last']:.6g} {st['units']}" if st["t_last"] is not None else ""
    print(f"  records: {st['n_output']}{last}; created {st['created']}, {st['mpi_size']} "
          f"rank(s)")
    ck = st.get("checkpoint")
    if ck:
        print(f"  checkpoint: step {ck.get('step')}, t = {ck.get('t', ck.get('time')):.6g} "
              f"{st['units']}, {ck.get('n_output')} records")
    else:
        print("  checkpoint: none")
    for k, entry in enumerate(st["history"]):
        print(f"  segment {k}: {fmt_history(entry)}")
        if entry.get("message"):
            print(f"             {entry['message']}")
    v = st["versions"]
    if v:
        print("  versions: " + ", ".join(f"{k} {x}" for k, x in v.items()))


def cmd_plot(args) -> int:
    """Rank 0 plots; an error is raised on every rank (same exit status everywhere)."""
    from analysis.plots import PlotError, plot_file
    from toolkit.parallel import get_comm, on_root

    def plot():
        print(f"wrote {os.path.abspath(plot_file(args.result, args.output))}")
    on_root(plot, get_comm(), (PlotError,))
    return 0


class _InputError(ValueError):
    pass


def _help(text: str) -> str:
    """Help text without reST markup."""
    return re.sub(r"``([^`]*)``", r"\1", re.sub(r":\w+:`~?([^`]*)`", r"\1", text))


def build_parser() -> argparse.ArgumentParser:
    import toolkit

    p = argparse.ArgumentParser(prog="qcspin", description=_help(__doc__),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version",
                   version=f"qcspin {toolkit.__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    d = argparse.ArgumentDefaultsHelpFormatter
    r = sub.add_parser("run", help="time evolution of a junction (HDF5 result, checkpoints)",
                       formatter_class=d)
    r.add_argument("config", nargs="?", help="TOML config")
    r.add_argument("-o", "--output", help="HDF5 result file (default: CONFIG name + .h5)")
    r.add_argument("--overwrite", action="store_true",
                   help="replace an existing result file (once the new one has its first record)")
    r.add_argument("--restart", metavar="OUT.h5", help="continue the run stored in OUT.h5 "
                   "from its last checkpoint, to its stored t_end (or --t-end)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set time.dt=0.05 or "
                        "--set layers.FL.K=0.05 (repeatable; with --restart only "
                        "time.t_end and time.checkpoint_every)")
    r.add_argument("--t-end", default=None, metavar="T",
                   help="override [time] t_end (config time units); with --restart: extend")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.add_argument("--strict", action="store_true",
                   help="refuse unknown or unused PETSc options before the run")
    r.set_defaults(func=cmd_run)
    i = sub.add_parser("info", help="status, history and config summary of a run file")
    i.add_argument("result", help="HDF5 result file of qcspin run")
    i.set_defaults(func=cmd_info)
    pl = sub.add_parser("plot", help="plot a qcspin HDF5 file to PNG")
    pl.add_argument("result", help="HDF5 file written by qcspin")
    pl.add_argument("-o", "--output", help="PNG path (default: RESULT.png)")
    pl.set_defaults(func=cmd_plot)
    from analysis.commands import add_commands

    add_commands(sub)
    for name, sp in sub.choices.items():
        if sp.description:
            sp.description = _help(sp.description)
        for action in sp._actions:
            if action.help and action.help is not argparse.SUPPRESS:
                action.help = _help(action.help)
                dflt = action.default
                if (isinstance(dflt, (int, float, str)) and not isinstance(dflt, bool)
                        and dflt != argparse.SUPPRESS and "%(default)" not in action.help
                        and action.option_strings and "default" not in action.help):
                    action.help += " (default: %(default)s)"
    return p


def _user_errors() -> tuple[type, ...]:
    from .config import ConfigError
    from .io import FileExistsErrorQC, ResultFileError
    from .memory import MemoryLimitError

    extra = []
    try:
        from analysis.plots import PlotError

        extra.append(PlotError)
    except ImportError:
        pass
    try:
        from .petsc_options import OptionError

        extra.append(OptionError)
    except ImportError:
        pass
    return (ConfigError, FileExistsErrorQC, ResultFileError, MemoryLimitError, _InputError,
            FileNotFoundError, *extra)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    ours, petsc = split_petsc_args(join_negative_values(argv))
    _petscenv.init(petsc)
    from petsc4py import PETSc

    from .petsc_options import in_database

    opts = PETSc.Options()
    for name, value in _pairs(petsc):  # main(argv) called from Python after start-up
        if not in_database(name):
            opts.setValue(name, value)
    args = build_parser().parse_args(ours)
    args.petsc = petsc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.formatwarning = lambda msg, *a, **k: f"qcspin: warning: {msg}\n"
            return int(args.func(args) or 0)
    except _user_errors() as exc:
        if _rank0():
            print(f"qcspin: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_INPUT
    except ValueError as exc:  # bad values reaching the physics code
        if os.environ.get("QCSPIN_DEBUG"):
            raise
        if _rank0():
            print(f"qcspin: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_INPUT
    except _numerical() as exc:
        if _rank0():
            print(f"qcspin: run failed: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    except Exception:
        if PETSc.COMM_WORLD.getSize() > 1:  # an error on some ranks only: do not hang the rest
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            from mpi4py import MPI

            MPI.COMM_WORLD.Abort(EXIT_FAILED)
        raise


def _numerical() -> tuple[type, ...]:
    from integrators.simulation import NumericalInstability

    return (NumericalInstability,)


def _pairs(petsc: list[str]) -> list[tuple[str, str]]:
    out, i = [], 0
    while i < len(petsc):
        name = petsc[i].lstrip("-")
        if i + 1 < len(petsc) and (not petsc[i + 1].startswith("-")
                                   or _NEGATIVE.match(petsc[i + 1])):
            out.append((name, petsc[i + 1]))
            i += 2
        else:
            out.append((name, ""))
            i += 1
    return out


if __name__ == "__main__":
    sys.exit(main())
