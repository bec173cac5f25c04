"""``qcspin run``: time evolution of a junction (HDF5 result, checkpoints, restart).

  qcspin run CONFIG.toml [-o OUT.h5] [--overwrite] [--set KEY=VALUE ...] [PETSc options]
  qcspin run --restart OUT.h5 [--t-end T] [--set time.t_end=T]

Drives integrators.simulation.Simulation; the run header reports the lead representations'
error against the exact leads (analysis.lead_check).  Registered in pyproject.toml
(``qcspin.commands``).
"""
from __future__ import annotations

import os
import re

from toolkit.cli import EXIT_INTERRUPTED, EXIT_OK, CommandInputError, petsc_pairs, say, warn
from toolkit.cli_args import add_output_args, add_set_arg

__all__ = ["register", "cmd_run", "petsc_config_options", "database_options"]


def register(subparsers) -> None:
    """Add ``qcspin run`` to an argparse sub-parser collection."""
    import argparse

    d = argparse.ArgumentDefaultsHelpFormatter
    r = subparsers.add_parser("run", help="time evolution of a junction (HDF5 result, checkpoints)",
                       formatter_class=d)
    r.add_argument("config", nargs="?", help="TOML config")
    add_output_args(r, "HDF5 result file (default: CONFIG name + .h5)",
                    overwrite="replace an existing result file (once the new one has its "
                              "first record)")
    r.add_argument("--restart", metavar="OUT.h5", help="continue the run stored in OUT.h5 "
                   "from its last checkpoint, to its stored t_end (or --t-end)")
    add_set_arg(r, example="time.dt=0.05 or --set layers.FL.K=0.05",
                note="with --restart only time.t_end and time.checkpoint_every")
    r.add_argument("--t-end", default=None, metavar="T",
                   help="override [time] t_end (config time units); with --restart: extend")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.add_argument("--strict", action="store_true",
                   help="refuse unknown or unused PETSc options before the run")
    r.set_defaults(func=cmd_run)


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
            for name, value in petsc_pairs(petsc)
            if name.startswith(prefix) and not _DIAGNOSTIC.search(name[len(prefix):])]


RESTART_SETTABLE = ("time.t_end", "time.checkpoint_every")


def _restart_config(args, petsc: list[str]):
    """The config stored in the restarted file with the allowed overrides applied."""
    import tomllib

    from toolkit.config import ConfigError, config_from_dict
    from toolkit.io import load_checkpoint
    from toolkit.overrides import apply_overrides
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
    stored_doc = tomllib.loads(text)
    given = {s.split("=", 1)[0][len("solver.options."):]: s.split("=", 1)[1].strip('"')
             for s in petsc_config_options(database_options())}
    kept = {k: str(v) for k, v in stored_doc.get("solver", {}).get("options", {}).items()}
    changed = sorted(k for k, v in given.items() if kept.get(k) != v)
    if changed:
        raise ConfigError(f"PETSc option -qcspin_{changed[0]} {given[changed[0]]} is not allowed "
                          f"with --restart (from the command line, PETSC_OPTIONS or an options "
                          f"file): the run continues with the options stored in {args.restart} "
                          f"(see qcspin info); monitors and -log_view are fine")
    cfg = config_from_dict(apply_overrides(stored_doc, sets))
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
    n = sim.units.time_to_internal(cfg.time.t_end) / sim.dt  # may overflow: the run refuses
    n_steps = int(round(n)) if n < 2 ** 31 else 2 ** 31
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
        raise CommandInputError(f"give either CONFIG.toml or --restart {args.restart}, not both "
                                f"(a restart uses the config stored in the file)")
    if args.restart:
        for flag, value in (("-o", args.output), ("--overwrite", args.overwrite)):
            if value:
                raise CommandInputError(f"{flag} is not allowed with --restart: a restart "
                                        f"continues the run in {args.restart} itself")
        out = args.restart
        cfg = _restart_config(args, petsc)
    else:
        if not args.config:
            raise CommandInputError("qcspin run: give a CONFIG.toml (or --restart OUT.h5)")
        cfg = _new_config(args, petsc)
        out = args.output or os.path.splitext(os.path.basename(args.config))[0] + ".h5"
    sim = Simulation(cfg)
    from toolkit.petsc_options import OptionError, check_unused

    names = [n for n, _ in petsc_pairs(petsc)]
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
        if sim.problem.extended or sim.problem.auxiliary:
            notes = []
            if sim.problem.extended:
                n_x = sim.edevice.n_orbitals - sim.device.n_orbitals
                notes.append(f"electron problem N_s = {sim.edevice.n_orbitals}: {n_x} lead "
                             f"orbitals; observables on the device's {sim.device.n_orbitals}")
            if sim.problem.auxiliary:
                from integrators.aux_rhs import AuxiliaryLeads

                t = sim.rhs.term(AuxiliaryLeads).t   # the term of the modes
                notes.append(f"auxiliary modes: {t.nx} retarded and {t.ny} lesser vectors, "
                             f"second tier {t.ny * t.nx + t.ny * t.ny + t.nu * t.ny} numbers "
                             f"on rank 0")
            say("  leads: " + "; ".join(
                f"{m.lead}: {m.model}, {m.representation}"
                + (f", {m.sites.columns} explicit columns" if m.sites is not None else "")
                for m in sim.problem.modes) + " (" + "; ".join(notes) + ")")
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
