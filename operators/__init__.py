"""PETSc operators built from a frozen :class:`toolkit.Device`."""
from __future__ import annotations

import toolkit  # noqa: F401  (initialises complex PETSc)

from .hamiltonian import ElectronHamiltonian, dense_hamiltonian, sd_blocks
from .observables import layer_magnetization, spin_density_local
from .spin import ClassicalSpinHamiltonian, cross

__all__ = ["ElectronHamiltonian", "ClassicalSpinHamiltonian", "cross", "dense_hamiltonian",
           "layer_magnetization", "sd_blocks", "spin_density_local"]
