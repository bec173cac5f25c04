"""Observables computed from the local rows of rho (rho_ab = <c_b^dag c_a>)."""
from __future__ import annotations

import numpy as np

from toolkit.device import Device

__all__ = ["spin_density_local", "diag_block_indices", "layer_magnetization"]


def diag_block_indices(local_sites: np.ndarray, site_start: int, n_local_rows: int) -> np.ndarray:
    """Flat (Fortran-order) indices of rho_uu, rho_ud, rho_du, rho_dd of the given global sites in
    the local row block (n_local_rows x N_s); shape (4, n)."""
    r = 2 * (local_sites - site_start)
    c = 2 * local_sites
    return np.stack([r + c * n_local_rows, r + (c + 1) * n_local_rows,
                     r + 1 + c * n_local_rows, r + 1 + (c + 1) * n_local_rows])


# (sx, sy, sz) = Re(W @ (uu, ud, du, dd)) with s = Tr(rho_j sigma)/2
_W = 0.5 * np.array([[0, 1, 1, 0], [0, 1j, -1j, 0], [1, 0, 0, -1]], complex)


def spin_density_local(rho_flat: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """s_j = Tr(rho_j sigma)/2 from the flat local rho and indices from diag_block_indices,
    shape (n, 3)."""
    return (_W @ rho_flat[idx]).real.T


def layer_magnetization(device: Device, spins: np.ndarray) -> np.ndarray:
    """M_l = sum of the classical spins of each layer, shape (n_layers, 3) (0 for non-magnetic)."""
    M = np.zeros((len(device.layer_names), 3))
    np.add.at(M, device.spin_layer, spins)
    return M
