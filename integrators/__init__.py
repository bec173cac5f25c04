"""Time evolution: state layout, right-hand sides, PETSc TS driver and the run loop."""
from __future__ import annotations

import toolkit  # noqa: F401

from .initial import fermi, initial_density
from .layout import StateLayout
from .rhs import ClosedRHS, CoupledRHS
from .simulation import Simulation, run
from .ts import create_ts, register_rk38

__all__ = ["ClosedRHS", "CoupledRHS", "Simulation", "StateLayout", "create_ts", "fermi",
           "initial_density", "register_rk38", "run"]
