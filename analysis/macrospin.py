"""Macrospin model of an isolated spin valve (paper 004, Sec. III A 2, Eqs. 19-21, App. C).

Two layer magnetizations M_l, M_r (sums of N_S unit spins each) coupled by

    H_MS = -J_eff M_l . M_r                                    (Eq. 19)
    dM_l/dt = J_eff M_l x M_r,   dM_r/dt = J_eff M_r x M_l     (Eq. 20)

(Eq. 20 follows from Eq. 19 with the equation of motion dS/dt = -S x dH/dS of Eq. 10, so
J_eff > 0 is a *ferromagnetic* effective coupling, J_eff < 0 an antiferromagnetic one; two spins
with direct exchange H_C = J_ex S_1.S_2 have J_eff = -J_ex.)

With M_l(0) = N_S x and M_r(0) = N_S z the total M = M_l + M_r = N_S (1, 0, 1) is conserved and
each layer precesses on a cone about it, Eq. (21):

    M_l(t) = R_y(pi/4) N_S/sqrt2 (cos(w t + phi_l), sin(w t + phi_l), 1),  phi_l = phi,
    M_r(t) = same with phi_r = pi + phi.

**Sign of omega.** Eq. (21) read literally (``macrospin_solution``) is a right-handed rotation
about M by the angle w t.  Eq. (20) gives dM_l/dt(0) = J_eff N_S^2 (x cross z) = -J_eff N_S^2 y,
while Eq. (21) gives +w N_S/sqrt2 y, so the solution of Eq. (20) is Eq. (21) with

    w = -sqrt(2) N_S J_eff        (:func:`omega_from_jeff`)

The paper prints w = +sqrt(2) N_S J_eff, which is right in magnitude; the sign used here is fixed
by Eq. (20) and checked numerically in ``tests/analysis/test_macrospin.py``.  Ferromagnetic coupling
(J_eff > 0) therefore means w < 0 (left-handed precession about M).

The RKKY reference of Sec. III A 3 (:func:`rkky_reference`) is J_eff ~ J_sd^2 [Si(pi N_NM) - pi/2].
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import least_squares
from scipy.special import sici

__all__ = [
    "MacrospinFit", "ROTATION", "fit_macrospin", "fit_rkky_prefactor", "guess_omega",
    "integrate_macrospin", "jeff_from_omega", "macrospin_rhs", "macrospin_solution",
    "omega_from_jeff", "rkky_reference",
]

_C = 1.0 / math.sqrt(2.0)
#: R_y(theta = pi/4) of Eq. (21): maps the frame of the limit cycle (z' along M) to the lab frame.
ROTATION = np.array([[_C, 0.0, _C], [0.0, 1.0, 0.0], [-_C, 0.0, _C]])
ROTATION.setflags(write=False)

#: default validity thresholds of :func:`fit_macrospin` (see its docstring)
RMS_MAX = 0.1
NORM_TOL = 0.05
MIN_PERIODS = 0.25


# ----------------------------------------------------------------------------- the model
def omega_from_jeff(J_eff: float, N_S: float) -> float:
    """Signed angular frequency of Eq. (21) that solves Eq. (20): w = -sqrt(2) N_S J_eff."""
    return -math.sqrt(2.0) * N_S * J_eff


def jeff_from_omega(omega: float, N_S: float) -> float:
    """Inverse of :func:`omega_from_jeff`: J_eff = -w / (sqrt(2) N_S)."""
    return -omega / (math.sqrt(2.0) * N_S)


def macrospin_solution(t: np.ndarray, omega: float, N_S: float, phi: float = 0.0) -> np.ndarray:
    """Eq. (21) for both layers, shape (nt, 2, 3): [:, 0] = M_l, [:, 1] = M_r.

    theta = pi/4, phi_l = ``phi``, phi_r = pi + ``phi``; ``omega`` is signed (see module doc:
    the solution of Eq. (20) has ``omega = omega_from_jeff(J_eff, N_S)``).
    """
    t = np.asarray(t, float).reshape(-1)
    a = N_S * _C
    out = np.empty((t.size, 2, 3))
    for k, ph in enumerate((phi, math.pi + phi)):
        arg = omega * t + ph
        frame = np.stack([a * np.cos(arg), a * np.sin(arg), np.full_like(arg, a)], axis=1)
        out[:, k] = frame @ ROTATION.T
    return out


def macrospin_rhs(t: float, y: np.ndarray, J_eff: float) -> np.ndarray:
    """Right-hand side of Eq. (20) for y = (M_l, M_r) flattened to 6 numbers."""
    Ml, Mr = y[:3], y[3:]
    c = np.cross(Ml, Mr)
    return J_eff * np.concatenate([c, -c])


def integrate_macrospin(t: np.ndarray, J_eff: float, M_l0=(1.0, 0.0, 0.0),
                        M_r0=(0.0, 0.0, 1.0), *, rtol: float = 1e-11,
                        atol: float = 1e-12) -> np.ndarray:
    """Numerical solution of Eq. (20) (scipy DOP853) at the times ``t``, shape (nt, 2, 3)."""
    t = np.asarray(t, float)
    y0 = np.concatenate([np.asarray(M_l0, float), np.asarray(M_r0, float)])
    sol = solve_ivp(macrospin_rhs, (float(t[0]), float(t[-1])), y0, method="DOP853",
                    t_eval=t, args=(J_eff,), rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"solve_ivp failed: {sol.message}")
    return sol.y.T.reshape(-1, 2, 3)


# ----------------------------------------------------------------------------- the fit
@dataclass(frozen=True)
class MacrospinFit:
    """Result of :func:`fit_macrospin` (natural units: energies in gamma, times in 1/gamma).

    ``omega`` is the signed frequency of Eq. (21); ``J_eff = -omega / (sqrt2 N_S)``;
    ``rms`` is the root-mean-square residual of all six components divided by N_S;
    ``norm_dev`` = max_t | |M_l,r(t)| / N_S - 1 |; ``n_periods`` = |omega| (t_max - t_min) / 2 pi.
    ``valid`` is False when the macrospin picture fails, with the reasons in ``reason``.
    """

    omega: float
    J_eff: float
    phi: float
    rms: float
    norm_dev: float
    n_periods: float
    N_S: float
    t_min: float
    t_max: float
    n_points: int
    omega_guess: float
    fit_phase: bool
    valid: bool
    reason: str = ""
    thresholds: dict = field(default_factory=dict)

    def curve(self, t: np.ndarray) -> np.ndarray:
        """The fitted Eq. (21) at times ``t``, shape (nt, 2, 3)."""
        return macrospin_solution(t, self.omega, self.N_S, self.phi)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _frame_phase(M_l: np.ndarray, M_r: np.ndarray) -> np.ndarray:
    """Unwrapped precession angle about M of the difference M_l - M_r (limit-cycle frame)."""
    d = (np.asarray(M_l) - np.asarray(M_r)) @ ROTATION  # = R^T (M_l - M_r) row-wise
    return np.unwrap(np.arctan2(d[:, 1], d[:, 0]))


def guess_omega(t: np.ndarray, M_l: np.ndarray, M_r: np.ndarray) -> tuple[float, float]:
    """Initial (omega, phi) from the precession angle about (1, 0, 1)/sqrt2.

    In the frame of the limit cycle M_l - M_r = sqrt2 N_S (cos, sin)(w t + phi), so the slope of
    its unwrapped angle gives w even for a fraction of a period (needs |w| dt_sample < pi).  When
    the record spans at least two periods the dominant frequency of the complex signal
    (x' + i y') from a zero-padded FFT is used instead if the two disagree by more than 10 %
    (a slope disturbed by fast fluctuations).
    """
    t = np.asarray(t, float)
    ang = _frame_phase(M_l, M_r)
    A = np.stack([t - t[0], np.ones_like(t)], axis=1)
    (w, c), *_ = np.linalg.lstsq(A, ang, rcond=None)
    span = t[-1] - t[0]
    if abs(w) * span >= 4 * math.pi and t.size >= 16:
        w_fft = _fft_peak(t, M_l, M_r)
        if w_fft is not None and abs(w_fft - w) > 0.1 * abs(w):
            w = w_fft
            c = float(np.angle(np.mean(np.exp(1j * (ang - w * (t - t[0]))))))
    phi = float(c - w * t[0])
    return float(w), float(np.angle(np.exp(1j * phi)))


def _fft_peak(t: np.ndarray, M_l: np.ndarray, M_r: np.ndarray) -> float | None:
    dt = np.diff(t)
    if np.ptp(dt) > 1e-6 * dt.mean():  # FFT needs uniform sampling
        return None
    d = (M_l - M_r) @ ROTATION
    z = d[:, 0] + 1j * d[:, 1]
    n = 8 * t.size
    spec = np.abs(np.fft.fft(z - z.mean(), n))
    freq = 2 * math.pi * np.fft.fftfreq(n, dt.mean())
    return float(freq[int(np.argmax(spec))])


def _residual(p: np.ndarray, t: np.ndarray, data: np.ndarray, N_S: float, phi0: float,
              fit_phase: bool) -> np.ndarray:
    phi = p[1] if fit_phase else phi0
    return ((macrospin_solution(t, p[0], N_S, phi) - data) / N_S).ravel()


def fit_macrospin(t: np.ndarray, M_l: np.ndarray, M_r: np.ndarray, N_S: float, *,
                  fit_phase: bool = False, t_min: float = 0.0, rms_max: float = RMS_MAX,
                  norm_tol: float = NORM_TOL, min_periods: float = MIN_PERIODS) -> MacrospinFit:
    """Least-squares fit of Eq. (21) to simulated layer magnetizations.

    Parameters
    ----------
    t : (nt,) times;  M_l, M_r : (nt, 3) layer magnetizations (sums of the layers' spins)
    N_S : spins per layer (Eq. 21 assumes |M_l| = |M_r| = N_S)
    fit_phase : also fit the phase phi (phi_l = phi, phi_r = pi + phi); otherwise phi = 0
    t_min : ignore samples with t < t_min (transient before the limit cycle)
    rms_max : largest rms residual / N_S accepted as "macrospin" (default 0.1: the dominant
        precession is then clearly captured -- the clean fits of Fig. 3 (J_sd = 1, 5) have
        rms ~ 1e-3, the paper's "far from perfect" J_sd = 3.3 case ~0.05 and a single spin
        (N_S = 1) near J_sd = 2.5, which nutates visibly, ~0.065 -- while a wrong frequency or a
        signal that is not a precession about M gives rms of order 0.5)
    norm_tol : largest accepted | |M|/N_S - 1 | (Eq. 21 needs rigid layers)
    min_periods : smaller coverage of the record gives ``valid = False`` (default 0.25: below a
        quarter turn the record cannot tell a precession on the Eq. (21) cone from a slow drift,
        although the angle slope still gives a frequency)

    Returns a frozen :class:`MacrospinFit`.  omega starts from :func:`guess_omega` and is refined
    with ``scipy.optimize.least_squares`` from that guess and its neighbours w +- pi/(2 T)
    (the misfit is multimodal in w over long records); the best local optimum is kept.
    """
    t = np.asarray(t, float).reshape(-1)
    M_l = np.asarray(M_l, float).reshape(-1, 3)
    M_r = np.asarray(M_r, float).reshape(-1, 3)
    if not (t.size == M_l.shape[0] == M_r.shape[0]):
        raise ValueError(f"t, M_l, M_r have {t.size}, {M_l.shape[0]}, {M_r.shape[0]} samples")
    keep = t >= t_min
    if keep.sum() < 4:
        raise ValueError(f"fewer than 4 samples with t >= t_min = {t_min}")
    t, M_l, M_r = t[keep], M_l[keep], M_r[keep]
    data = np.stack([M_l, M_r], axis=1)
    w0, phi_g = guess_omega(t, M_l, M_r)
    phi0 = phi_g if fit_phase else 0.0
    span = max(t[-1] - t[0], t[-1], 1e-300)
    best = None
    for dw in (0.0, -0.5 * math.pi / span, 0.5 * math.pi / span):
        p0 = [w0 + dw, phi0] if fit_phase else [w0 + dw]
        res = least_squares(_residual, p0, args=(t, data, N_S, 0.0, fit_phase),
                            x_scale=[max(abs(w0), math.pi / span)] + ([1.0] if fit_phase else []),
                            xtol=1e-14, ftol=1e-14, gtol=1e-14)
        if best is None or res.cost < best.cost:
            best = res
    assert best is not None  # the loop above runs three times
    omega = float(best.x[0])
    phi = float(np.angle(np.exp(1j * best.x[1]))) if fit_phase else 0.0
    rms = float(np.sqrt(np.mean(best.fun ** 2)))
    norms = np.linalg.norm(data, axis=2) / N_S
    norm_dev = float(np.max(np.abs(norms - 1.0)))
    n_periods = abs(omega) * (t[-1] - t[0]) / (2 * math.pi)
    reasons = []
    if rms > rms_max:
        reasons.append(f"rms residual {rms:.3g} > {rms_max:g} (N_S units)")
    if norm_dev > norm_tol:
        reasons.append(f"|M|/N_S departs from 1 by {norm_dev:.3g} > {norm_tol:g}")
    if n_periods < min_periods:
        reasons.append(f"record covers {n_periods:.3g} < {min_periods:g} precession periods")
    return MacrospinFit(
        omega=omega, J_eff=jeff_from_omega(omega, N_S), phi=phi, rms=rms, norm_dev=norm_dev,
        n_periods=float(n_periods), N_S=float(N_S), t_min=float(t[0]), t_max=float(t[-1]),
        n_points=int(t.size), omega_guess=float(w0), fit_phase=bool(fit_phase),
        valid=not reasons, reason="; ".join(reasons),
        thresholds={"rms_max": rms_max, "norm_tol": norm_tol, "min_periods": min_periods})


# ----------------------------------------------------------------------------- RKKY reference
def rkky_reference(n_nm, J_sd, prefactor: float = 1.0):
    """1D RKKY shape of Sec. III A 3: ``prefactor * J_sd**2 * (Si(pi n_nm) - pi/2)`` [gamma].

    Sign convention of Eq. (19): positive = ferromagnetic.  For integer ``n_nm`` >= 1 the sign is
    (-1)^(n_nm + 1): odd spacers ferromagnetic, even spacers antiferromagnetic -- the bipartite
    rule for the nearest spins of the two layers (distance n_nm + 1); |value| ~ J_sd^2/(pi n_nm).

    Normalisation: ``prefactor = 1`` is the weak-coupling limit for one spin per layer (N_S = 1,
    the two end sites of an open half-filled chain) and *even* n_nm: the static second-order
    coupling (E_AP - E_P)/2 of that chain divided by this shape is 0.94, 0.97, 0.985, 0.992 at
    n_nm = 50, 100, 200, 400 (``analysis.jeff.jeff_static``, J_sd = 0.05).  For odd n_nm the
    chain has an odd number of sites, the half-filled zero mode makes J_eff first order in J_sd
    and this shape does not apply; for N_S > 1 the layer sums change the amplitude -- use
    :func:`fit_rkky_prefactor` on weak-coupling data.
    """
    si, _ = sici(np.pi * np.asarray(n_nm, float))
    return prefactor * np.asarray(J_sd, float) ** 2 * (si - 0.5 * np.pi)


def fit_rkky_prefactor(n_nm, J_eff, J_sd) -> float:
    """The prefactor A of ``rkky_reference`` that best matches ``J_eff`` in the relative sense.

    Minimises sum_i ((J_eff_i - A f_i) / J_eff_i)^2 with f_i = rkky_reference(n_nm_i, J_sd_i, 1),
    i.e. every point weighs the same whatever its magnitude (the data decay algebraically).
    Pass only the weak-coupling points (and, if wanted, one parity) that should follow RKKY.
    """
    J = np.asarray(J_eff, float)
    f = np.broadcast_to(rkky_reference(n_nm, J_sd), J.shape)
    ok = np.isfinite(J) & (J != 0)
    if not ok.any():
        raise ValueError("no finite, non-zero J_eff to fit")
    w = 1.0 / J[ok]
    x, y = f[ok] * w, J[ok] * w
    return float(np.dot(x, y) / np.dot(x, x))
