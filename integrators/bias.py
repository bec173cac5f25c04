"""Bias protocols: the leads' chemical potentials mu_l(t) (paper 004, Sec. III B)."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from toolkit.config import Config
from toolkit.units import Units

__all__ = ["BiasProtocol", "bias_function"]


class BiasProtocol:
    """mu(t) (internal time) for the leads, in lead order; ``initial`` = mu just before t = 0
    (the chemical potentials of the initial stationary state).

    The run loop calls :meth:`begin_step` with the time at the start of every step, and all
    stages of that step then see the same mu: a quench at a step boundary is exact, and a quench
    inside a step takes effect at the next step boundary.
    """

    def __init__(self, mu0: np.ndarray, on: np.ndarray, t_on: float, t_off: float) -> None:
        self.mu0, self.on, self.t_on, self.t_off = mu0, on, t_on, t_off
        self.initial = on if t_on < 0 <= t_off else mu0
        self._eps = 1e-9 * max(1.0, abs(t_on))
        self._latched: np.ndarray | None = None

    def value(self, t: float) -> np.ndarray:
        """mu at time t (a step start within 1e-9 of t_on or t_off counts as at or after it)."""
        return self.on if self.t_on - self._eps <= t < self.t_off - self._eps else self.mu0

    def begin_step(self, t: float) -> None:
        self._latched = self.value(t)

    def __call__(self, t: float) -> np.ndarray:
        return self._latched if self._latched is not None else self.value(t)


def bias_function(cfg: Config, leads: Sequence, units: Units) -> BiasProtocol:
    """The bias protocol of ``cfg``.

    ``symmetric``: mu_left = mu0 + V/2, mu_right = mu0 - V/2;  ``asymmetric``: mu_left = mu0 + V
    (paper 004's V'), mu_right = mu0;  applied for t_on <= t < t_off (a sudden quench).
    """
    b = cfg.bias
    mu0 = np.array([l.mu for l in leads], float)
    delta = np.zeros(len(leads))
    sides = [getattr(l, "side", None) for l in leads]
    if b.protocol == "symmetric":
        delta[sides.index("left")] = 0.5 * b.V
        delta[sides.index("right")] = -0.5 * b.V
    elif b.protocol == "asymmetric":
        delta[sides.index("left")] = b.V
    t_on = units.time_to_internal(b.t_on)
    t_off = np.inf if b.t_off is None else units.time_to_internal(b.t_off)
    return BiasProtocol(mu0, mu0 + delta, t_on, t_off)
