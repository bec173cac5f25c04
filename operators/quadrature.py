"""Quadrature rules shared by the real-axis energy integrals (analysis/transport_landauer.py,
integrators/window.py)."""
from __future__ import annotations

import numpy as np

__all__ = ["gauss_kronrod"]

# Gauss-Kronrod 15/7 (QUADPACK qk15): Kronrod nodes x >= 0 (descending), weights; Gauss weights
_XGK = np.array([0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
                 0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
                 0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
                 0.207784955007898467600689403773245, 0.0])
_WGK = np.array([0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
                 0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
                 0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
                 0.204432940075298892414161999234649, 0.209482141084727828012999174891714])
_WG = np.array([0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
                0.381830050505118944950369775488975, 0.417959183673469387755102040816327])


def gauss_kronrod() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 15 Kronrod nodes on [-1, 1] (ascending), their weights, and the 7-point Gauss weights
    on the same nodes (zero at the Kronrod-only nodes)."""
    x = np.concatenate([-_XGK[:-1], _XGK[::-1]])
    wk = np.concatenate([_WGK[:-1], _WGK[::-1]])
    wg = np.zeros(15)
    wg[1:7:2], wg[7], wg[9:15:2] = _WG[:3], _WG[3], _WG[2::-1]
    return x, wk, wg
