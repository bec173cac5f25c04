"""Torques and magnonic spin currents of paper 000 (Eqs. 7, 11, 14) in qcspin's conventions.

With qcspin's s-d term +J_sd/2 sigma.S (paper 000's -J sigma.M is J_sd = -2 J) and the electron
spin density s_j = Tr(rho_jj sigma)/2 (paper 000's <s> = 2 s), paper 000's Eq. (7),
T_j = J <s_j> x M_j, is

    T_j = J_sd,j  M_j x s_j          [energy = hbar per internal time unit],

the rate at which the s-d term turns the electron spin at site j (hbar d<s_j>/dt|_sd, paper 000
Eq. A2): the moment receives -T_j of angular momentum per time.  With s = s_CD (rho - rho_eq)
it is the current-driven torque of Eq. (7), with s of the full rho the T^neq of Eq. (A2).

Field-like and damping-like components (Eq. 11) along the unit vector p (paper: x):
T = T_FL M x p + T_DL M x (M x p); both vectors are orthogonal with the norm |M x p|, so
T_FL = T.(M x p)/|M x p|^2 and T_DL = T.(M x (M x p))/|M x p|^2 (both 0 where M || p, e.g.
on the polarizer: no decomposition exists there).

Magnonic spin current (Eq. 14) on the exchange bond (i, j), i < j: the angular momentum the
exchange term J_ex S_i.S_j moves from i to j per time, J_ex S_i x S_j for spins and moments
alike (for moments with L = -M/gyro the factors cancel).  Paper 000 writes J_ij M_i x M_j with
J_ij > 0 for both its AFI and its FM: for the ferromagnet (J_ex = -J_FM) its sign is the
opposite of the angular-momentum flow given here.
"""
from __future__ import annotations

import numpy as np

from toolkit.device import Device

from .spin import cross

__all__ = ["sd_torque", "fl_dl", "magnon_currents"]


def sd_torque(J_sd: np.ndarray, M: np.ndarray, s: np.ndarray) -> np.ndarray:
    """T_j = J_sd,j M_j x s_j, (n, 3) (module docstring)."""
    return np.asarray(J_sd, float)[:, None] * cross(np.asarray(M, float), np.asarray(s, float))


def fl_dl(T: np.ndarray, M: np.ndarray, p=(1.0, 0.0, 0.0)) -> np.ndarray:
    """(T_FL, T_DL) of every torque, (n, 2): T = T_FL M x p + T_DL M x (M x p) (Eq. 11)."""
    M = np.asarray(M, float)
    P = np.broadcast_to(np.asarray(p, float), M.shape)
    a = cross(M, P)
    b = cross(M, a)
    n2 = np.einsum("ij,ij->i", a, a)
    ok = n2 > 1e-24
    inv = np.zeros_like(n2)
    inv[ok] = 1.0 / n2[ok]
    fl = np.einsum("ij,ij->i", T, a) * inv
    dl = np.einsum("ij,ij->i", T, b) * inv
    return np.stack([fl, dl], axis=1)


def magnon_currents(device: Device, S_all: np.ndarray) -> np.ndarray:
    """J_ex S_i x S_j on every exchange bond (i, j) of ``device.exchange_bonds``, (n_bonds, 3)."""
    S = np.asarray(S_all, float)
    b = device.exchange_bonds
    if len(b) == 0:
        return np.zeros((0, 3))
    return device.J_ex[:, None] * cross(S[b[:, 0]], S[b[:, 1]])
