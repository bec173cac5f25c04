"""Switching of a magnetic layer (paper 000 Fig. 2: the analyzer's M_z going from +1 to -1).

A layer has switched at the first time t_s at which its moments' z components (their mean,
or every one of them with ``every=True``) are at or below ``threshold`` and stay there for at
least ``dwell`` (in the record's time unit).  A record that ends before the dwell is complete
does not count (``None``: undecided, not "not switched").  The criterion is a choice, not
physics: the defaults (threshold -0.9, dwell 500 fs) call a reversal switched once the moments
have crossed the hard axis and settled near -z, which a precessing but not reversing layer
(paper 000's red squares) never does.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from toolkit.schema import fail, real

__all__ = ["SwitchingCriterion", "switching_time", "layer_switching"]


@dataclasses.dataclass(frozen=True)
class SwitchingCriterion:
    """``threshold``: M_z at or below which a moment counts as reversed (-1 < threshold < 1);
    ``dwell``: how long it must stay there (>= 0, time units of the record); ``every``: every
    moment of the layer instead of their mean; ``axis``: the component (2 = z)."""

    threshold: float = -0.9
    dwell: float = 500.0
    every: bool = False
    axis: int = 2

    def __post_init__(self) -> None:
        th = real("threshold", self.threshold)
        if not -1.0 < th < 1.0:
            fail("threshold", th, "expected -1 < threshold < 1")
        real("dwell", self.dwell, nonneg=True)
        if self.axis not in (0, 1, 2):
            fail("axis", self.axis, "expected 0, 1 or 2 (x, y, z)")


def switching_time(t: np.ndarray, m: np.ndarray, criterion: SwitchingCriterion | None = None
                   ) -> tuple[float | None, bool]:
    """(t_s, decided) for a record ``m`` (n_t,) or (n_t, n_moments) of the component at times
    ``t`` (ascending): t_s is the first time the criterion holds from t_s for ``dwell`` (None
    if it never does); ``decided`` is False when the record ends inside an unfinished dwell
    (the answer could still change with a longer run)."""
    c = criterion or SwitchingCriterion()
    t = np.asarray(t, float)
    m = np.asarray(m, float)
    if m.ndim == 1:
        m = m[:, None]
    if m.shape[0] != t.shape[0]:
        fail("m.shape", m.shape, f"expected {t.shape[0]} rows (one per time)")
    below = np.all(m <= c.threshold, axis=1) if c.every else m.mean(axis=1) <= c.threshold
    if not below.any():
        return None, True
    # runs of consecutive True: their starts and (exclusive) ends
    edges = np.diff(np.concatenate([[0], below.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    for a, b in zip(starts, ends):
        if b < len(t):                      # the run ends inside the record
            if t[b - 1] - t[a] >= c.dwell:
                return float(t[a]), True
        elif t[-1] - t[a] >= c.dwell:       # still below at the end, long enough
            return float(t[a]), True
        else:
            return None, False              # still below, dwell not complete
    return None, True


def layer_switching(result, layer: str, criterion: SwitchingCriterion | None = None
                    ) -> tuple[float | None, bool]:
    """:func:`switching_time` of the moments of ``layer`` in a run file (``load_result``
    object or path)."""
    from toolkit.results import load_result

    r = load_result(result) if isinstance(result, str) else result
    c = criterion or SwitchingCriterion()
    dev = r.device
    if dev is None:
        fail("result", r.path, "expected a run file (it has no device)")
    idx = np.flatnonzero(np.asarray(dev.spin_layer) == dev.layer(layer))
    if len(idx) == 0:
        fail("layer", layer, f"expected a layer with moments, one of "
                             f"{[n for n in dev.layer_names if dev.n_spins(n)]}")
    t = r["time"]
    m = r["spins"][:, idx, c.axis]
    return switching_time(t, m, c)
