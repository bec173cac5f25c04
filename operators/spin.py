"""Classical spin Hamiltonian of paper 004, Eq. (2), vectorised over all spins.

    H_C = sum_<jk> J_ex S_j.S_k - sum_j B.S_j - sum_j K_j (S_j.e_j)^2 + sum_j J_sd s_j.S_j

with s_j = Tr(rho_j sigma)/2 the electron spin density.  Equation of motion (Eq. 10) with optional
Gilbert damping alpha, written in explicit Landau-Lifshitz form:

    dS/dt = [ -S x g + alpha S x (S x g)/|S| ] / (1 + alpha^2),   g = dH_C/dS

(the damping term drives S towards -g, i.e. lowers H_C; |S| is conserved exactly).

Magnetic moments (config ``[llg] equation = "moment"``, paper 000 Eq. 2): unit vectors M with
B = -(1/mu_M) dH/dM and rate gamma = g/mu_M (internal units: x hbar),

    dM/dt = -gamma/(1 + lambda^2) [M x B' + lambda M x (M x B')] mu_M
          = gamma [ M x g + lambda M x (M x g) ] / (1 + lambda^2),

the same form with the precession reversed and scaled by gamma (a moment M = -(g/mu_M) L of
angular momentum L precesses opposite to a spin); the damping again lowers H_C.  Written as
P = s gamma (g x S) with s = +1 (spin, gamma = 1) or -1 (moment), dS/dt = (P - s alpha S x P /
|S|) / (1 + alpha^2).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from toolkit.device import Device

__all__ = ["ClassicalSpinHamiltonian", "cross"]

_I1, _I2 = np.array([1, 2, 0]), np.array([2, 0, 1])


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross product of (n, 3) arrays (faster than np.cross for small n)."""
    return a[:, _I1] * b[:, _I2] - a[:, _I2] * b[:, _I1]


class ClassicalSpinHamiltonian:
    """Energy, gradient and equations of motion of the classical spins (rows = spins).

    Methods taking ``rows`` act on a contiguous block of spins ``[start, stop)`` (the spins owned
    by this MPI rank) while neighbours are read from the full array ``S_all``.
    """

    def __init__(self, device: Device, start: int = 0, stop: int | None = None) -> None:
        self.device = device
        n = device.n_spins
        self.start, self.stop = start, n if stop is None else stop
        sl = slice(self.start, self.stop)
        a, b = device.exchange_bonds.T if len(device.exchange_bonds) else (np.zeros(0, int),) * 2
        J = sp.coo_matrix((np.concatenate([device.J_ex, device.J_ex]),
                           (np.concatenate([a, b]), np.concatenate([b, a]))), shape=(n, n)).tocsr()
        self._J_all = J
        Jloc = J[self.start:self.stop]
        self._J = Jloc.toarray() if n <= 256 else Jloc
        self._dense = n <= 256
        self.K = device.K[sl][:, None]
        self.e = device.easy_axis[sl]
        self.B = device.B[None, :]
        self.J_sd = device.J_sd[sl][:, None]
        self.alpha = device.damping[sl][:, None]
        self.frozen = device.frozen[sl]
        self.any_frozen = bool(self.frozen.any())
        self.any_damping = bool(np.any(self.alpha != 0))
        self.any_field = bool(np.any(device.B != 0))
        self.any_anisotropy = bool(np.any(self.K != 0))
        #: precession sense s and rate gamma (module docstring): spins +1, 1; moments -1, gyro
        self.sense = 1.0 if device.equation == "spin" else -1.0
        self.rate = float(device.gyro)
        self._scale = self.sense * self.rate

    def gradient(self, S_all: np.ndarray, s_local: np.ndarray | None) -> np.ndarray:
        """g_j = dH_C/dS_j for the local spins (n_local, 3)."""
        g = self._J @ S_all
        if not self._dense:
            g = np.asarray(g)
        if self.any_field:
            g -= self.B
        if self.any_anisotropy:
            S = S_all[self.start:self.stop]
            g -= (2.0 * self.K * np.einsum("ij,ij->i", S, self.e)[:, None]) * self.e
        if s_local is not None:
            g += self.J_sd * s_local
        return g

    def rhs(self, S_all: np.ndarray, s_local: np.ndarray | None,
            out: np.ndarray | None = None) -> np.ndarray:
        """dS/dt for the local spins."""
        S = S_all[self.start:self.stop]
        g = self.gradient(S_all, s_local)
        dS = cross(g, S)
        if self._scale != 1.0:
            dS *= self._scale
        if self.any_damping:
            norm = np.sqrt(np.einsum("ij,ij->i", S, S))[:, None]
            dS = (dS - (self.sense * self.alpha) * cross(S, dS) / norm) / (1.0 + self.alpha ** 2)
        if self.any_frozen:
            dS[self.frozen] = 0.0
        if out is not None:
            out[...] = dS
            return out
        return dS

    def energy(self, S_all: np.ndarray, s_all: np.ndarray | None = None) -> dict[str, float]:
        """Energy terms of the whole spin system (exchange counts each bond once)."""
        d = self.device
        exch = 0.5 * float(np.einsum("ij,ij->", S_all, self._J_all @ S_all))
        zee = -float(np.sum(S_all @ d.B))
        ani = -float(np.sum(d.K * np.einsum("ij,ij->i", S_all, d.easy_axis) ** 2))
        out = {"exchange": exch, "zeeman": zee, "anisotropy": ani}
        if s_all is not None:
            out["sd"] = float(np.sum(d.J_sd * np.einsum("ij,ij->i", s_all, S_all)))
        return out
