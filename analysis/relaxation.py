"""Relaxation time of magnetization oscillations (paper 004, Sec. III B 2, Eq. 22, Figs. 8, 11).

The envelope of the oscillating free-layer magnetization (e.g. M_r^x(t)/N_S in the second stage)
is fitted by

    E_M(t) = A exp(-t/t_R) + M_inf,        M_inf = M_r^x(t -> infinity)        (Eq. 22)

after discarding the transient t < t_min (the paper drops t ~ 100-300).  The relaxation rate of
Fig. 11 is R = 1/t_R.

**Units.** Everything is in the units of the ``t`` you pass in (qcspin runs use hbar/gamma, the
paper's time unit): t_R in units of t, R in 1/units of t, A and M_inf in the units of m.

**Envelope.** Extrema are located with ``scipy.signal.find_peaks`` (minimum separation 0.6 of the
dominant period, from an FFT) and refined by a least-squares parabola over +-``window`` samples
(default: 1/8 of the period).  For m = M_inf + a e^{-t/t_R} cos(w t + phi) the maxima sit at a
fixed phase, so the refined maxima are c a e^{-t_n/t_R} + M_inf with the *same* factor c ~ 1
(c = cos(arctan(1/(w t_R))) times the constant parabola bias) for every peak: t_R and M_inf are
recovered exactly, the fitted A is the amplitude of the *maxima* (c a), which is what Eq. (22)
fits.  ``kind="both"`` also uses the minima and fits s_i A e^{-t/t_R} + M_inf with s_i = +-1
(symmetric envelope about M_inf); this pins M_inf and A separately, which helps when t_R is
long compared with the record.  Sampling must be uniform (simulation output is).

Pure NumPy/SciPy, no MPI: calling it on every rank gives identical results.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.optimize import curve_fit
from scipy.signal import find_peaks

__all__ = ["Envelope", "RelaxationFit", "fit_relaxation", "oscillation_envelope",
           "relaxation_curve"]

_KINDS = ("upper", "lower", "both")
#: default validity thresholds of :func:`fit_relaxation`
MIN_POINTS = 6        # 3 parameters + 3 degrees of freedom
MAX_RATIO = 10.0      # t_R > MAX_RATIO * (envelope time span) -> only a lower bound


class Envelope(NamedTuple):
    """Envelope samples: times ``t``, values ``value`` and ``sign`` (+1 maximum, -1 minimum)."""
    t: np.ndarray
    value: np.ndarray
    sign: np.ndarray


@dataclass(frozen=True)
class RelaxationFit:
    """Fit of Eq. (22) to the oscillation envelope (units: those of t and m, see module doc).

    ``A`` is the amplitude at t = 0 as in Eq. (22); ``A_ref`` the amplitude at ``t_ref`` (first
    envelope time, better conditioned).  ``*_err`` are 1-sigma standard errors from the
    curve_fit covariance (scaled by the residual).  ``R = 1/t_R``.  ``rms`` is the root mean
    square residual of the envelope fit, ``n_points`` the number of envelope points, ``t_span``
    their time span.  ``valid`` is False with the reason in ``reason`` when there are too few
    extrema, the fit fails, or t_R > max_ratio * t_span; in the last case ``lower_bound`` is True
    and ``t_R_lower = max_ratio * t_span`` is what the record supports (t_R keeps the unreliable
    point estimate).
    """
    t_R: float
    A: float
    M_inf: float
    t_R_err: float
    A_err: float
    M_inf_err: float
    R: float
    R_err: float
    A_ref: float
    t_ref: float
    rms: float
    n_points: int
    t_span: float
    kind: str
    valid: bool
    reason: str = ""
    lower_bound: bool = False
    t_R_lower: float = math.nan

    def curve(self, t: np.ndarray) -> np.ndarray:
        """E_M(t) of Eq. (22) with the fitted parameters (upper branch)."""
        return relaxation_curve(t, self.A_ref, self.t_R, self.M_inf, self.t_ref)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def relaxation_curve(t, A_ref: float, t_R: float, M_inf: float, t_ref: float = 0.0):
    """A_ref exp(-(t - t_ref)/t_R) + M_inf (Eq. 22 with A = A_ref exp(t_ref/t_R))."""
    return A_ref * np.exp(-(np.asarray(t, dtype=float) - t_ref) / t_R) + M_inf


# ----------------------------------------------------------------------------- envelope
def _check_signal(t, m, t_min):
    t = np.asarray(t, dtype=float)
    m = np.asarray(m, dtype=float)
    if t.ndim != 1 or m.shape != t.shape:
        raise ValueError(f"t and m must be 1D of equal length; got t.shape={t.shape}, "
                         f"m.shape={m.shape}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(m))):
        raise ValueError("t and m must be finite; got NaN/inf values")
    if not np.isfinite(t_min):
        raise ValueError(f"t_min must be finite; got t_min={t_min!r}")
    keep = t >= t_min
    t, m = t[keep], m[keep]
    if t.size < 3:
        raise ValueError(f"t_min={t_min!r} leaves {t.size} samples; at least 3 are required")
    dt = np.diff(t)
    h = (t[-1] - t[0]) / (t.size - 1)
    if not (h > 0 and np.all(np.abs(dt - h) <= 1e-6 * h)):
        raise ValueError("t must be uniformly sampled and strictly increasing (relative "
                         "spacing tolerance 1e-6)")
    return t, m, h


def _period_samples(m: np.ndarray) -> float:
    """Dominant period in samples from the FFT of the mean-free signal (inf if none)."""
    spec = np.abs(np.fft.rfft(m - m.mean()))
    if spec.size < 2 or not np.any(spec[1:] > 0):
        return math.inf
    k = 1 + int(np.argmax(spec[1:]))
    return m.size / k


def oscillation_envelope(t, m, t_min: float = 0.0, *, kind: str = "upper",
                         window: int | None = None) -> Envelope:
    """Envelope of an oscillating signal m(t) from its local extrema, after dropping t < t_min.

    ``kind``: "upper" (maxima, sign +1), "lower" (minima, sign -1) or "both" (time-ordered).
    ``window``: half-width in samples of the least-squares parabola that refines each extremum
    (None: 1/8 of the dominant period, at least 1; 0: raw samples).  Extrema whose window would
    leave the record are dropped.  Returns ``Envelope(t, value, sign)`` (unpack
    ``te, me, _ = ...``); may be empty.  ``t`` must be uniformly sampled.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind={kind!r} is not allowed; use one of {_KINDS}")
    if window is not None and (int(window) != window or window < 0):
        raise ValueError(f"window={window!r} must be a non-negative integer or None")
    t, m, h = _check_signal(t, m, t_min)
    period = _period_samples(m)
    distance = max(1, int(0.6 * period)) if math.isfinite(period) else 1
    distance = min(distance, m.size)
    k = int(window) if window is not None else (
        max(1, int(period / 8)) if math.isfinite(period) else 1)
    offs = np.arange(-k, k + 1)

    ts, vs, ss = [], [], []
    for s in ((1,) if kind == "upper" else (-1,) if kind == "lower" else (1, -1)):
        idx, _ = find_peaks(s * m, distance=distance)
        idx = idx[(idx - k >= 0) & (idx + k < m.size)]
        tp, vp = t[idx], m[idx]
        if k > 0 and idx.size:
            Y = s * m[idx[None, :] + offs[:, None]]           # (2k+1, n_peaks)
            a, b, c = np.polyfit(offs.astype(float), Y, 2)    # vectorised over peaks
            ok = a < 0                                        # a proper (concave) peak
            x0 = np.where(ok, -b / np.where(ok, 2 * a, 1.0), 0.0)
            ok &= np.abs(x0) <= k
            tp = np.where(ok, t[idx] + x0 * h, tp)
            vp = np.where(ok, s * (c - b * b / np.where(ok, 4 * a, 1.0)), vp)
        ts.append(tp)
        vs.append(vp)
        ss.append(np.full(idx.size, s, dtype=int))
    te, ve, se = (np.concatenate(x) for x in (ts, vs, ss))
    order = np.argsort(te, kind="stable")
    return Envelope(te[order], ve[order], se[order])


# ----------------------------------------------------------------------------- fit of Eq. 22
def _guess(te, ve, se, t_ref):
    """Variable projection on a log grid of t_R: (A, M_inf) by linear least squares per t_R."""
    span = max(te[-1] - te[0], np.finfo(float).tiny)
    taus = span * np.logspace(-3, 3, 301)
    B = se[None, :] * np.exp(-(te[None, :] - t_ref) / taus[:, None])   # (n_tau, n)
    n = te.size
    sb, sbb = B.sum(1), (B * B).sum(1)
    sy, sby = ve.sum(), (B * ve[None, :]).sum(1)
    det = n * sbb - sb * sb
    det = np.where(np.abs(det) > 1e-300, det, np.nan)
    A = (n * sby - sb * sy) / det
    M = (sbb * sy - sb * sby) / det
    res = ((A[:, None] * B + M[:, None] - ve[None, :]) ** 2).sum(1)
    j = int(np.nanargmin(res)) if np.any(np.isfinite(res)) else len(taus) // 2
    if not np.isfinite(res[j]):
        return float(np.mean(se * (ve - ve[-1]))), float(span), float(ve[-1])
    return float(A[j]), float(taus[j]), float(M[j])


def _failed(reason, kind, n, span, **kw) -> RelaxationFit:
    nan = math.nan
    base = dict(t_R=nan, A=nan, M_inf=nan, t_R_err=nan, A_err=nan, M_inf_err=nan, R=nan,
                R_err=nan, A_ref=nan, t_ref=nan, rms=nan, n_points=int(n), t_span=float(span),
                kind=kind, valid=False, reason=reason)
    base.update(kw)
    return RelaxationFit(**base)


def fit_relaxation(t, m, t_min: float = 0.0, *, kind: str = "upper",
                   window: int | None = None, min_points: int = MIN_POINTS,
                   max_ratio: float = MAX_RATIO) -> RelaxationFit:
    """Fit E_M(t) = A exp(-t/t_R) + M_inf (Eq. 22) to the envelope of m(t) for t >= t_min.

    ``kind``/``window`` as in :func:`oscillation_envelope` ("both" fits s_i A e^{-t/t_R} + M_inf
    to maxima (s=+1) and minima (s=-1) together).  Initial guess: best t_R on a log grid
    (1e-3..1e3 x envelope span) with A, M_inf solved linearly; then ``curve_fit`` (trf) with
    t_R > 0.  Never raises on a bad fit: returns ``valid=False`` and a ``reason`` for fewer than
    ``min_points`` envelope points, a failed/ill-conditioned fit, or t_R > ``max_ratio`` x
    envelope span (then ``lower_bound=True``).  Units: those of t (t_R) and m (A, M_inf).
    """
    if int(min_points) != min_points or min_points < 4:
        raise ValueError(f"min_points={min_points!r} must be an integer >= 4 "
                         f"(3 parameters + 1 degree of freedom)")
    if not (max_ratio > 0 and math.isfinite(max_ratio)):
        raise ValueError(f"max_ratio={max_ratio!r} must be a finite positive number")
    te, ve, se = oscillation_envelope(t, m, t_min, kind=kind, window=window)
    n = te.size
    span = float(te[-1] - te[0]) if n else 0.0
    if n < min_points:
        return _failed(f"too few extrema: {n} envelope points < min_points={min_points}",
                       kind, n, span)
    t_ref = float(te[0])

    A0, tau0, M0 = _guess(te, ve, se, t_ref)

    def model(x, A_ref, t_R, M_inf):
        return se * A_ref * np.exp(-(x - t_ref) / t_R) + M_inf

    try:
        p, cov = curve_fit(model, te, ve, p0=(A0, tau0, M0),
                           bounds=([-np.inf, 1e-12 * max(span, 1e-300), -np.inf],
                                   [np.inf, np.inf, np.inf]),
                           method="trf", x_scale="jac", maxfev=10000)
    except (RuntimeError, ValueError) as exc:
        return _failed(f"fit failed: {exc}", kind, n, span)
    A_ref, t_R, M_inf = (float(x) for x in p)
    rms = float(np.sqrt(np.mean((model(te, *p) - ve) ** 2)))
    cov = np.asarray(cov, dtype=float)
    if not np.all(np.isfinite(cov)):
        return _failed("fit failed: covariance not finite (parameters not determined)",
                       kind, n, span, t_R=t_R, A_ref=A_ref, M_inf=M_inf, t_ref=t_ref, rms=rms,
                       R=1.0 / t_R, lower_bound=t_R > max_ratio * span,
                       t_R_lower=max_ratio * span if t_R > max_ratio * span else math.nan)
    err = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    # Eq. 22 amplitude at t = 0: A = A_ref exp(t_ref/t_R); delta method for its error
    with np.errstate(over="ignore"):
        g = math.exp(min(t_ref / t_R, 700.0))
    A = A_ref * g
    J = np.array([g, -A * t_ref / t_R ** 2, 0.0])
    A_err = float(np.sqrt(max(J @ cov @ J, 0.0)))
    valid, reason, lower, t_low = True, "", False, t_R
    if t_R > max_ratio * span:
        valid, lower, t_low = False, True, max_ratio * span
        reason = (f"t_R={t_R:.3g} exceeds max_ratio={max_ratio:g} x envelope span "
                  f"{span:.3g}: only t_R > {t_low:.3g} is supported by the record")
    return RelaxationFit(t_R=t_R, A=A, M_inf=M_inf, t_R_err=float(err[1]), A_err=A_err,
                         M_inf_err=float(err[2]), R=1.0 / t_R, R_err=float(err[1]) / t_R ** 2,
                         A_ref=A_ref, t_ref=t_ref, rms=rms, n_points=int(n), t_span=span,
                         kind=kind, valid=valid, reason=reason, lower_bound=lower,
                         t_R_lower=float(t_low))
