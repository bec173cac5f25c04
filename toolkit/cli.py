"""The ``qcspin`` command line.

  qcspin [-v | -q] COMMAND ...   (-v: also debug messages; -q: only warnings, errors, results)
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
# Each sub-command lives in its own *_cli module and is registered in pyproject.toml
# ([project.entry-points."qcspin.commands"]: name = "module:register"); this module is the
# driver (PETSc start-up, argument parsing, exit status) and imports no command.
from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import time
import warnings

from . import _petscenv, log
from ._petscenv import _NEGATIVE, join_negative_values, split_petsc_args
from .errors import InputError, RunFailedError

__all__ = ["main", "split_petsc_args", "join_negative_values", "build_parser", "commands",
           "say", "result", "warn", "error", "petsc_pairs", "CommandInputError",
           "COMMAND_GROUP"]

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
#: entry-point group of the sub-commands, and the order ``qcspin -h`` lists them in
COMMAND_GROUP = "qcspin.commands"
COMMAND_ORDER = ("run", "info", "plot", "spectrum", "jeff", "transport", "sweep", "quench")


# The output of the sub-commands (toolkit.log: rank 0 only, -q/-v); called without the driver
# (a command handler from a test) they install the default handler first.
def _cli_log():
    log.ensure_configured()
    return log.get_logger("cli")


def say(*args: object, sep: str = " ", any_rank: bool = False) -> None:
    """Progress and headers on stdout (INFO: not with ``-q``); ``any_rank``: also printed on
    a rank other than 0 (e.g. the rank of a sweep group that computed a point)."""
    _cli_log().info(sep.join(map(str, args)), extra={"any_rank": any_rank})


def result(*args: object, sep: str = " ") -> None:
    """What the command was asked to print (a table, a summary of the numbers) on stdout,
    also with ``-q`` (level RESULT)."""
    _cli_log().log(log.RESULT, sep.join(map(str, args)))


def warn(text: str) -> None:
    """``qcspin: warning: TEXT`` on stderr."""
    _cli_log().warning(text)


def error(text: str, label: str = "error") -> None:
    """``qcspin: LABEL: TEXT`` on stderr (e.g. label 'run failed')."""
    _cli_log().error(text, extra={"label": label})


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` of the driver: a library warning as ``qcspin: warning: ...``."""
    log.get_logger("warnings").warning("%s", message)


class CommandInputError(InputError):
    """A bad combination of command-line arguments (exit status 2)."""


_InputError = CommandInputError


def _help(text: str) -> str:
    """Help text without reST markup."""
    return re.sub(r"``([^`]*)``", r"\1", re.sub(r":\w+:`~?([^`]*)`", r"\1", text))


def build_parser() -> argparse.ArgumentParser:
    import toolkit

    p = argparse.ArgumentParser(prog="qcspin", description=_help(__doc__ or ""),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version",
                   version=f"qcspin {toolkit.__version__}")
    loud = p.add_mutually_exclusive_group()   # dest 'verbosity': no sub-command uses it
    loud.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=1,
                      default=0, help="also debug messages (PETSc options, timings) on stderr")
    loud.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=-1,
                      help="only warnings, errors and the results a command prints (no "
                           "progress, run header or progress bar)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for ep in commands():
        ep.load()(sub)    # an import error in a command module surfaces here
    for sp in sub.choices.values():
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


def commands() -> list:
    """The registered sub-commands: entry points of group ``qcspin.commands`` (pyproject.toml;
    each names ``module:register``, called with the argparse sub-parser collection)."""
    from importlib.metadata import entry_points

    eps = list(entry_points(group=COMMAND_GROUP))
    if not eps:
        raise RuntimeError(f"no qcspin commands are registered (entry points "
                           f"'{COMMAND_GROUP}'): install qcspin, e.g. make install or "
                           f"pip install --no-deps -e .")
    order = {n: k for k, n in enumerate(COMMAND_ORDER)}
    return sorted(eps, key=lambda ep: (order.get(ep.name, len(order)), ep.name))


def main(argv: list[str] | None = None) -> int:
    program = argv is None           # the qcspin program itself, not a call from Python
    argv = sys.argv[1:] if argv is None else list(argv)
    ours, petsc = split_petsc_args(join_negative_values(argv))
    first = not _petscenv.initialised()
    _petscenv.init(petsc)
    if program and hasattr(signal, "SIGPIPE"):
        # PETSc's handler turns a closed pipe (qcspin info ... | head) into an MPI_ABORT with
        # a PETSc error report; a command-line tool just stops quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    from petsc4py import PETSc

    from .petsc_options import in_database, not_ours, spellings

    opts = PETSc.Options()
    given = [name for name, _ in petsc_pairs(petsc)] if first else []  # read at start-up
    for name, value in petsc_pairs(petsc):  # main(argv) called from Python after start-up
        if not in_database(name):
            opts.setValue(name, value)
            given.append(name)
    try:
        return _dispatch(ours, petsc)
    finally:
        if not program:  # main(argv) from Python: the PETSc options it brought end with it
            for name in given:  # not -log_view & co., which PETSc reads at the end
                for n in spellings(name) if not not_ours(name) else ():
                    opts.delValue(n)


def _dispatch(ours: list[str], petsc: list[str]) -> int:
    """Parse the qcspin arguments and run the sub-command: its exit status."""
    from petsc4py import PETSc

    args = build_parser().parse_args(ours)
    args.petsc = petsc
    log.configure(args.verbosity)
    if args.verbosity < 0 and isinstance(getattr(args, "quiet", None), bool):
        args.quiet = True  # qcspin -q run: no progress bar either (run's own -q)
    _log = log.get_logger("cli")
    if _log.isEnabledFor(logging.DEBUG):
        db = PETSc.Options().getAll()  # getAll marks no option used
        _log.debug(f"qcspin {args.command}: PETSc {'.'.join(map(str, PETSc.Sys.getVersion()))}"
                   f", {PETSc.COMM_WORLD.getSize()} MPI rank(s), scalar "
                   f"{PETSc.ScalarType.__name__}; PETSc options database: "
                   + (" ".join(f"-{k}" + (f" {v}" if v not in (None, "") else "")
                               for k, v in sorted(db.items())) or "empty"))
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning  # qcspin: warning: ... (rank 0)
            return int(args.func(args) or 0)
    except (InputError, FileExistsError, FileNotFoundError) as exc:
        error(str(exc))
        return EXIT_INPUT
    except ValueError as exc:  # bad values reaching the physics code
        if os.environ.get("QCSPIN_DEBUG"):
            raise
        error(str(exc))
        return EXIT_INPUT
    except RunFailedError as exc:
        error(str(exc), label="run failed")
        return EXIT_FAILED
    except Exception:
        if PETSc.COMM_WORLD.getSize() > 1:  # an error on some ranks only: do not hang the rest
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            from mpi4py import MPI

            MPI.COMM_WORLD.Abort(EXIT_FAILED)
        raise
    finally:
        _log.debug(f"qcspin {args.command}: {time.perf_counter() - t0:.2f} s wall time")


def petsc_pairs(petsc: list[str]) -> list[tuple[str, str]]:
    """``-name value`` / ``-flag`` arguments as (name, value) pairs (value '' for a flag)."""
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
