"""The switching detector (analysis/switching.py) on synthetic records."""
import numpy as np
import pytest

from integrators.switching import SwitchingCriterion, switching_time

pytestmark = pytest.mark.skip_in_parallel   # pure NumPy


def _reversal(t, t_sw, width=50.0):
    """M_z of a reversal centred at t_sw: tanh profile from +1 to -1."""
    return -np.tanh((t - t_sw) / width)


def test_reversal_is_detected_at_the_threshold_crossing():
    """tanh reversal at 1000: M_z = -0.9 at 1000 + 50 atanh(0.9) = 1073.6; the detector
    returns the first record time at or below it (record spacing 1: within 1)."""
    t = np.arange(0.0, 3000.0, 1.0)
    ts, decided = switching_time(t, _reversal(t, 1000.0))
    assert decided and abs(ts - (1000 + 50 * np.arctanh(0.9))) <= 1.0


def test_precession_without_reversal_is_not_switching():
    """A moment precessing at 80 degrees from z (M_z = cos 80) and one that dips below the
    threshold for 100 < dwell then comes back: no switching, decided."""
    t = np.arange(0.0, 3000.0, 1.0)
    assert switching_time(t, np.full_like(t, np.cos(np.radians(80)))) == (None, True)
    m = np.ones_like(t)
    m[1000:1100] = -0.95
    assert switching_time(t, m) == (None, True)
    # with a shorter dwell the same dip counts
    ts, dec = switching_time(t, m, SwitchingCriterion(dwell=50.0))
    assert dec and ts == 1000.0


def test_undecided_when_the_record_ends_inside_the_dwell():
    t = np.arange(0.0, 1200.0, 1.0)
    ts, decided = switching_time(t, _reversal(t, 1000.0))
    assert ts is None and not decided


def test_every_moment_or_the_mean():
    """Two moments, one reversed, one not: the mean (0) is not below -0.9; 'every' is not
    either; both reversed: both criteria switch at the later one's crossing."""
    t = np.arange(0.0, 4000.0, 1.0)
    a, b = _reversal(t, 1000.0), _reversal(t, 1500.0)
    one = np.stack([a, np.ones_like(t)], axis=1)
    assert switching_time(t, one)[0] is None
    assert switching_time(t, one, SwitchingCriterion(every=True))[0] is None
    both = np.stack([a, b], axis=1)
    te = switching_time(t, both, SwitchingCriterion(every=True))[0]
    assert abs(te - (1500 + 50 * np.arctanh(0.9))) <= 1.0
    tm = switching_time(t, both)[0]
    assert 1000 < tm < te


@pytest.mark.parametrize("kw,msg", [({"threshold": 1.0}, "threshold"),
                                    ({"dwell": -1.0}, "dwell"), ({"axis": 3}, "axis")])
def test_bad_criteria(kw, msg):
    with pytest.raises(ValueError, match=msg):
        SwitchingCriterion(**kw)
