"""The Fermi-Dirac function: the one implementation in qcspin.

    f(eps) = 1 / (1 + exp(x)),   x = (eps - mu) / T   or   x = beta (eps - mu),

evaluated as ``scipy.special.expit(-x)``.  Why this form (measured against mpmath at 50 digits
on 10^4 points, |x| <= 745):

* expit(-x) is accurate to relative precision over the whole range: <= 2.8e-16 relative for
  every x whose f is a normal double (down to f ~ 1e-308, x ~ 708), no overflow for any |x|
  (x = +/-inf gives 0 / 1), no warnings.
* 0.5 (1 - tanh(x/2)) (the former ``integrators.initial.fermi``) cancels in the upper tail: 12%
  relative error already at x ~ 36 (f is quantised in steps of ~5.5e-17) and f = 0 exactly for
  x > ~38, where f is still 3e-17.  Its absolute error is the same 1.1e-16 as expit's.
* 1 / (1 + exp(x)) is as accurate but overflows (a warning) for x > 709.

The argument is formed with a single rounding from what the caller holds: (eps - mu)/T for a
temperature, beta (eps - mu) for an inverse temperature (converting beta -> 1/beta first would
add a second rounding, i.e. a relative change of up to |x| x 1.1e-16 in the tails).

Callers: :func:`operators.leads.fermi` and ``Lead.fermi`` (Landauer integrals; unchanged
bitwise), :func:`operators.pade.fermi_exact` (unchanged bitwise), and
:func:`integrators.initial.fermi` (the ``fermi`` initial density; formerly the tanh form).
Effect of the unification, measured (serial and 2 ranks): Landauer currents (poles and quad with
every solver), steady-state densities and the stationary currents and rho of
``tests/integrators/test_open.py``-type runs unchanged bitwise (none evaluated the tanh form);
the occupations of the ``fermi`` initial state move by <= 2.2e-16 absolute (up to 100%
relative in the upper tail, where tanh lost them), its density matrix by <= 1.1e-16 absolute
(<= 1.7e-16 relative to its largest entry; valve_1d/valve_2d at T = 0.1 and 0.02), i.e.
round-off.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

__all__ = ["fermi"]


def fermi(energy, mu=0.0, temperature: float | None = None, *, beta: float | None = None):
    """f(energy) = 1/(1 + exp((energy - mu)/T)) (``temperature`` T = k_B T) or
    1/(1 + exp(beta (energy - mu))) (``beta``); give exactly one of them.

    T = 0 (or beta = inf): the step, with f(mu) = 1/2.  Broadcasts ``energy`` against ``mu``;
    returns a float array (a NumPy scalar for scalar input).  Overflow-safe and accurate to
    relative precision in both tails (module docstring).
    """
    if (temperature is None) == (beta is None):
        raise ValueError(f"temperature = {temperature!r}, beta = {beta!r} is not allowed: give "
                         f"exactly one of them")
    e, m = np.asarray(energy, float), np.asarray(mu, float)
    if beta is not None:
        b = float(beta)
        if not b > 0:
            raise ValueError(f"beta = {beta!r} is not allowed: need beta > 0 (inverse "
                             f"temperature; inf for T = 0)")
        if np.isfinite(b):
            with np.errstate(over="ignore"):          # beta (eps - mu) -> +/-inf is fine
                return expit(-b * (e - m))
    else:
        t = float(temperature)  # type: ignore[arg-type]  # not None here
        if not t >= 0:
            raise ValueError(f"temperature = {temperature!r} is not allowed: need T >= 0 "
                             f"(k_B T in the energy unit; 0 for the step)")
        if t > 0:
            with np.errstate(over="ignore"):          # (eps - mu)/T -> +/-inf is fine
                return expit(-(e - m) / t)
    return np.where(e < m, 1.0, np.where(e > m, 0.0, 0.5))
