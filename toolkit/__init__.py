"""qcspin toolkit: configuration, device, units, PETSc/MPI helpers, I/O and the CLI.

Importing this package initialises petsc4py with complex scalars (the Debian complex build is
found without exporting PETSC_DIR) and fails at once if PETSc's scalar type is not complex.
"""
from __future__ import annotations

from . import _petscenv

_petscenv.init(_petscenv.cli_argv())  # the qcspin command: PETSc reads its options at start-up

from .config import Config, ConfigError, config_from_dict, config_to_toml, load_config  # noqa: E402
from .device import Device, DeviceBuilder, device_from_config  # noqa: E402
from .units import UNITS, get_units  # noqa: E402

__version__ = "0.1.0"

__all__ = ["Config", "ConfigError", "Device", "DeviceBuilder", "UNITS", "config_from_dict",
           "config_to_toml", "device_from_config", "get_units", "load_config", "__version__"]
