"""The error types a user sees, and what the ``qcspin`` command does with them.

* :class:`InputError` (a ValueError): bad input — a config key, a command-line value, an
  option, a file that is not a qcspin result, a run too large for the machine.  ``qcspin``
  prints ``qcspin: error: <message>`` (one line naming the key, the value and what is allowed)
  and exits with status 2.  Subclasses: toolkit.schema.ConfigError (and
  toolkit.petsc_options.OptionError), toolkit.io.ResultFileError, toolkit.memory.
  MemoryLimitError, analysis.plots.PlotError.
* :class:`RunFailedError` (a RuntimeError): the computation failed (e.g. the state became
  non-finite: integrators.simulation.NumericalInstability); the result file says so, and
  ``qcspin`` prints ``qcspin: run failed: <message>`` and exits with status 1.

An existing output file (toolkit.io.FileExistsErrorQC, a FileExistsError) is bad input too.
"""
from __future__ import annotations

__all__ = ["InputError", "RunFailedError"]


class InputError(ValueError):
    """Bad input (exit status 2 of ``qcspin``)."""


class RunFailedError(RuntimeError):
    """A computation that failed (exit status 1 of ``qcspin``)."""
