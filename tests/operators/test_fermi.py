"""The one Fermi function (operators/fermi.py): accuracy in both tails, overflow safety, the
T = 0 step, and that every former copy now evaluates it."""
import warnings

import numpy as np
import pytest

from integrators.initial import fermi as initial_fermi
from operators import leads, pade
from operators.fermi import fermi
from toolkit import DeviceBuilder


def test_accurate_to_relative_precision_in_both_tails():
    # x >= 40: f = e^-x (1 - e^-x + ...) = e^-x (1 - e^-x) to relative e^-80; np.exp is
    # correctly rounded to ~1 ulp, so 4e-16 relative (2 ulp) bounds the difference
    x = np.linspace(40.0, 700.0, 3001)
    ref = np.exp(-x) * (1 - np.exp(-x))
    assert np.max(np.abs(fermi(x, 0.0, 1.0) - ref) / ref) < 4e-16
    # the lower tail by symmetry: 1 - f(-x) = f(x), exact in the rounding of 1 - (tiny)
    assert np.max(np.abs(1.0 - fermi(-x, 0.0, 1.0))) <= 2.3e-16
    # the middle against the textbook form (no overflow for |x| <= 40): 2 ulp
    x = np.linspace(-40.0, 40.0, 4001)
    assert np.allclose(fermi(x, 0.0, 1.0), 1 / (1 + np.exp(x)), rtol=4e-16, atol=0)
    # where 0.5 (1 - tanh(x/2)) flushed to 0 the value is still there
    assert fermi(45.0, 0.0, 1.0) == pytest.approx(np.exp(-45.0), rel=1e-15)


def test_overflow_safe_and_step():
    e = np.array([-1e300, -5.0, 0.0, 5.0, 1e300, -np.inf, np.inf])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = fermi(e, 0.0, 1e-300)                    # (e - mu)/T overflows: no warning
        g = fermi(e, 0.0, beta=1e300)
    assert np.array_equal(f, [1, 1, 0.5, 0, 0, 1, 0]) and np.array_equal(g, f)
    assert np.array_equal(fermi(e, 0.0, 0.0), f)     # T = 0: the step, f(mu) = 1/2
    assert np.array_equal(fermi(e, 0.0, beta=np.inf), f)
    # broadcasting energies against chemical potentials
    assert fermi(np.zeros(4), np.array([[-1.0], [1.0]]), 0.1).shape == (2, 4)


def test_temperature_and_beta_forms_agree():
    """x = (e - mu)/T and x = beta (e - mu) differ by the rounding of 1/T: relative change of f
    at most |x| (1 - f) x 2.2e-16 (the condition number of f in x)."""
    e, T = np.linspace(-3, 3, 601), 0.07
    a, b = fermi(e, 0.2, T), fermi(e, 0.2, beta=1 / T)
    x = (e - 0.2) / T
    assert np.all(np.abs(a - b) <= (np.abs(x) * 2.3e-16 + 2.3e-16) * a)


def test_every_copy_is_this_function():
    e = np.linspace(-2, 2, 401)
    assert leads.fermi is fermi
    lead = leads.WideBandLead(DeviceBuilder(size=(2,)).finalized(), "left", 1.0, mu=0.1,
                              temperature=0.05)
    assert np.array_equal(lead.fermi(e), fermi(e, 0.1, 0.05))
    assert np.array_equal(pade.fermi_exact(e, 0.1, 20.0), fermi(e, 0.1, beta=20.0))
    assert np.array_equal(initial_fermi(e, 0.05, 0.1), fermi(e, 0.1, 0.05))
    assert np.array_equal(initial_fermi(e, 0.05), fermi(e, 0.0, 0.05))


@pytest.mark.parametrize("call,match", [
    (lambda: fermi(0.0, 0.0), r"temperature = None, beta = None .*exactly one"),
    (lambda: fermi(0.0, 0.0, 0.1, beta=10.0), r"exactly one"),
    (lambda: fermi(0.0, 0.0, -0.1), r"temperature = -0\.1 .*T >= 0"),
    (lambda: fermi(0.0, 0.0, float("nan")), r"temperature = nan .*T >= 0"),
    (lambda: fermi(0.0, 0.0, beta=0.0), r"beta = 0\.0 .*beta > 0"),
    (lambda: fermi(0.0, 0.0, beta=-2), r"beta = -2 .*beta > 0"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
