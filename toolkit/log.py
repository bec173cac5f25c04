"""Rank-aware logging: the ``qcspin`` logger hierarchy and the handler of the ``qcspin`` command.

Library modules log to :func:`get_logger` (``qcspin.<module>``). Importing them configures
nothing: the ``qcspin`` logger has a :class:`logging.NullHandler`, as a library's should, so
``import integrators`` in a script prints nothing and the script's own ``logging`` set-up
decides what is shown. Programs (the ``qcspin`` driver, the figure scripts) call
:func:`configure`, which installs one :class:`RankHandler`:

* INFO and RESULT messages are written as they are to stdout; DEBUG to stderr as
  ``qcspin: debug: ...``, WARNING as ``qcspin: warning: ...``, ERROR as ``qcspin: error: ...``
  (``extra={"label": "run failed"}`` changes the word, ``extra={"label": ""}`` drops the
  prefix);
* only rank 0 of COMM_WORLD writes, unless ``configure(all_ranks=True)`` or
  ``extra={"any_rank": True}`` on one message (per-rank progress);
* verbosity ``-1`` (``qcspin -q``): warnings, errors and RESULT (what a command was asked to
  print, e.g. the table of ``qcspin info``); ``0``: and INFO (progress, headers); ``1``
  (``qcspin -v``): and DEBUG.

The rank comes from petsc4py once it is imported, else from the MPI launcher's environment, so
this module never imports petsc4py (``toolkit`` must initialise it first).
"""
from __future__ import annotations

import logging
import os
import sys

__all__ = ["ROOT", "RESULT", "RankHandler", "configure", "ensure_configured", "get_logger",
           "level_of", "world_rank"]

#: name of the root of qcspin's logger hierarchy
ROOT = "qcspin"
#: level of a command's requested output: shown also with ``qcspin -q``
RESULT = 25
logging.addLevelName(RESULT, "RESULT")
logging.getLogger(ROOT).addHandler(logging.NullHandler())

# Open MPI, PMIx, MPICH/Hydra (PMI), MVAPICH, Slurm's srun
_RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK",
              "SLURM_PROCID")


def get_logger(name: str = "") -> logging.Logger:
    """The logger ``qcspin.<name>`` (``get_logger(__name__)`` in a module; ``qcspin`` for '')."""
    if name == ROOT or name.startswith(ROOT + "."):
        return logging.getLogger(name)
    return logging.getLogger(f"{ROOT}.{name}" if name else ROOT)


def world_rank() -> int:
    """This process's rank in COMM_WORLD: PETSc's once petsc4py is imported, before that the
    launcher's environment (Open MPI, PMIx, MPICH, MVAPICH, Slurm); 0 outside MPI."""
    petsc = sys.modules.get("petsc4py.PETSc")
    if petsc is not None:
        try:
            return int(petsc.COMM_WORLD.getRank())
        except Exception:  # e.g. finalised at interpreter exit: fall back to the environment
            pass
    for var in _RANK_VARS:
        value = os.environ.get(var, "").strip()
        if value.isdigit():
            return int(value)
    return 0


def level_of(verbosity: int) -> int:
    """The ``qcspin`` logger's level for a verbosity (-1 quiet, 0 default, 1 verbose)."""
    return RESULT if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG


class PlainFormatter(logging.Formatter):
    """The message as it is (INFO, RESULT) or after ``qcspin: <label>: `` (the others)."""

    def __init__(self) -> None:
        super().__init__("%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        label = getattr(record, "label", None)
        if label is None:
            level = record.levelno
            label = ("debug" if level < logging.INFO else "" if level < logging.WARNING
                     else "warning" if level < logging.ERROR else "error")
        return f"qcspin: {label}: {text}" if label else text


class RankHandler(logging.Handler):
    """Writes to the *current* ``sys.stdout`` (INFO <= level < WARNING) or ``sys.stderr`` (the
    rest), flushed at once, on rank 0 of COMM_WORLD only unless ``all_ranks`` or the record
    has ``any_rank`` set."""

    def __init__(self, all_ranks: bool = False) -> None:
        super().__init__()
        self.all_ranks = all_ranks
        self.setFormatter(PlainFormatter())
        self.addFilter(self._on_this_rank)

    def _on_this_rank(self, record: logging.LogRecord) -> bool:
        return self.all_ranks or bool(getattr(record, "any_rank", False)) or world_rank() == 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            stream = (sys.stdout if logging.INFO <= record.levelno < logging.WARNING
                      else sys.stderr)
            stream.write(text + "\n")
            stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def configure(verbosity: int = 0, all_ranks: bool = False) -> logging.Logger:
    """Install the :class:`RankHandler` on the ``qcspin`` logger (replacing one installed
    before) and set the logger's level from ``verbosity`` (see :func:`level_of`).  For
    programs (the ``qcspin`` driver calls it with ``-q``/``-v``); library code never calls
    it.  Returns the ``qcspin`` logger."""
    logger = logging.getLogger(ROOT)
    for h in list(logger.handlers):
        if isinstance(h, RankHandler):
            logger.removeHandler(h)
            h.close()
    logger.addHandler(RankHandler(all_ranks))
    logger.setLevel(level_of(verbosity))
    return logger


def ensure_configured() -> None:
    """:func:`configure` with the defaults unless a RankHandler is installed already (a
    command handler called without the driver, e.g. from a test, still prints)."""
    if not any(isinstance(h, RankHandler) for h in logging.getLogger(ROOT).handlers):
        configure()
