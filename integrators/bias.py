"""Bias protocols: the leads' chemical potentials mu_l(t) (paper 004, Sec. III B)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from toolkit.config import Config
from toolkit.units import Units

__all__ = ["BiasProtocol", "bias_function"]


class BiasProtocol:
    """mu(t) (internal time) for the leads, in lead order: mu0 + split * V(t); ``initial`` = mu
    just before t = 0 (the chemical potentials of the initial stationary state).

    A sudden quench (a step of V at t_on, t_off): the run loop calls :meth:`begin_step` with the
    time at the start of every step, and all stages of that step then see the same mu, so a
    quench at a step boundary is exact and one inside a step takes effect at the next step
    boundary.  A continuous V(t) (a ramp or a table) is evaluated at every stage time, so the
    integrator keeps its order.
    """

    def __init__(self, mu0: np.ndarray, on: np.ndarray, t_on: float, t_off: float,
                 ramp: float = 0.0, table: tuple | None = None,
                 split: np.ndarray | None = None) -> None:
        self.mu0, self.on, self.t_on, self.t_off = mu0, on, t_on, t_off
        self.ramp = float(ramp)
        self.split = np.zeros_like(mu0) if split is None else np.asarray(split, float)
        self.table = None if table is None else (np.array([r[0] for r in table], float),
                                                 np.array([r[1] for r in table], float))
        self.continuous = self.ramp > 0 or self.table is not None
        self._eps = 1e-9 * max(1.0, abs(t_on))
        if self.continuous:
            self.initial = self.value(0.0)
        else:
            self.initial = on if t_on < 0 <= t_off else mu0
        self._latched: np.ndarray | None = None

    def _step_value(self, t: float) -> np.ndarray:
        return self.on if self.t_on - self._eps <= t < self.t_off - self._eps else self.mu0

    def shape(self, t: float) -> float:
        """V(t)/V of a ramp: 0 before t_on, linear to 1 over the ramp, back to 0 after t_off."""
        up = np.clip((t - self.t_on) / self.ramp, 0.0, 1.0)
        down = np.clip((t - self.t_off) / self.ramp, 0.0, 1.0) if np.isfinite(self.t_off) else 0.0
        return float(up - down)

    def value(self, t: float) -> np.ndarray:
        """mu at time t (a step start within 1e-9 of t_on or t_off counts as at or after it)."""
        if self.table is not None:
            return self.mu0 + self.split * float(np.interp(t, *self.table))
        if self.ramp > 0:
            return self.mu0 + (self.on - self.mu0) * self.shape(t)
        return self._step_value(t)

    def begin_step(self, t: float) -> None:
        self._latched = None if self.continuous else self.value(t)

    def __call__(self, t: float) -> np.ndarray:
        return self._latched if self._latched is not None else self.value(t)


def bias_function(cfg: Config, leads: Sequence, units: Units) -> BiasProtocol:
    """The bias protocol of ``cfg``.

    ``symmetric``: mu_left = mu0 + V/2, mu_right = mu0 - V/2;  ``asymmetric``: mu_left = mu0 + V
    (paper 004's V'), mu_right = mu0;  applied for t_on <= t < t_off (a sudden quench), with a
    linear ``ramp`` of that duration at both ends, or with V(t) from ``table`` (times in the
    config's units, converted here).
    """
    b = cfg.bias
    mu0 = np.array([l.mu for l in leads], float)
    split = np.zeros(len(leads))
    sides = [getattr(l, "side", None) for l in leads]
    if b.protocol == "symmetric":
        split[sides.index("left")] = 0.5
        split[sides.index("right")] = -0.5
    elif b.protocol == "asymmetric":
        split[sides.index("left")] = 1.0
    t_on = units.time_to_internal(b.t_on)
    t_off = np.inf if b.t_off is None else units.time_to_internal(b.t_off)
    table = None
    if b.table is not None:
        table = tuple((units.time_to_internal(t), v) for t, v in b.table)
        # 'on': the leads at the table's last V (what a steady-state analysis of the end sees)
        return BiasProtocol(mu0, mu0 + split * b.table[-1][1], t_on, t_off, table=table,
                            split=split)
    return BiasProtocol(mu0, mu0 + split * b.V, t_on, t_off,
                        ramp=units.time_to_internal(b.ramp), split=split)
