"""Sub-commands of ``qcspin`` implemented by the analysis package.

Each module below provides ``add_command(subparsers)`` registering its parser with
``set_defaults(func=...)``; a module that is missing is skipped.
"""
from __future__ import annotations

import importlib

_MODULES = ("analysis.spectrum", "analysis.jeff", "analysis.transport", "analysis.sweep",
            "analysis.quench")


def add_commands(sub) -> None:
    for name in _MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        mod.add_command(sub)
