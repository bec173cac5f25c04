"""The stationary NEGF state of the instantaneous moments and bias: paper 000's
"steady-state-NEGF+LLG" mode (Fig. 3c, d), electrons without memory.

For the classical moments M frozen at their current directions and the leads at their current
potentials V_a (lead a rigidly shifted: Sigma_a(z - V_a), mu_a = mu0 + V_a; ``Lead.shifted``),
the stationary density matrix of the open device (physical device, exact lead self-energies
``Lead.selfenergy``, no explicit lead sites) is split as in integrators/stationary.py,

    rho_ss = rho_ref + rho_win,
    rho_ref = 1/2 + (1/beta) sum_p eta_p [G(chi_p) + G(chi_p)^dag],   chi_p = mu0 + i xi_p/beta,
    rho_win = int dE/2pi sum_a (f_a(E) - f_ref(E)) G(E) Gamma_a(E) G(E)^dag,
    G(z) = (z - H(M) - sum_a Sigma_a(z - V_a))^-1,   Gamma_a = i (Sigma_a - Sigma_a^dag),

with mu0, T and the Pade poles (operators.pade) shared by every lead at zero bias (the
reference reservoir; f_ref = f(E - mu0)), exact Fermi functions in the window, f_a at mu_a.
rho_ref is the equilibrium at mu0 of the *biased* G (closed around the Pade poles: no real-axis
integral); rho_win is confined to the bias window, where f_a - f_ref != 0.

**Bound states.**  States that no reservoir reaches (levels below/above every lead band, the
isolated sites of paper 000's AFI, where Gamma_a = 0 for every a) are occupied by the pole part
with the reference Fermi function f_ref at their energy, and the window adds nothing to them
(Gamma = 0 there): under a bias they keep the occupation they had before it, the convention of
integrators.stationary.stationary_state (nothing in the model can change it).  Window nodes
outside the bands of every biased lead (Gamma_a = 0 for every a with V_a != 0) contribute
exactly 0 and are dropped.

**Quadrature of the window** (:meth:`SteadyStateSpinDensity.quadrature`).  Gauss-Legendre,
``n_gauss`` = 8 nodes per panel, on [min(mu) - 40 T, max(mu) + 40 T] (mu: mu0 and every mu_a;
f_a - f_ref < e^-40 = 4e-18 outside), panels split at every mu and every band edge of the
shifted leads (:func:`panel_edges`):

* Fermi functions: a panel is at most ``scale`` (1) times its distance to the nearest Fermi pole
  mu + i pi T, sqrt(d^2 + (pi T)^2) at distance d from mu, so panels are pi T wide at the mu's
  and grow geometrically away from them.  With the pole >= 2 half-widths away Gauss-Legendre
  converges like r^(-2 n_gauss), r >= 4.2 (Bernstein ellipse): ~1e-10 at 8 nodes.
* Band edges (square-root branch points of Sigma): the two panels at an edge use
  E = c - (h/2) cos(theta), in which the integrand is analytic.
* Resonances (poles of G near the axis, and near-threshold peaks at a band edge; eigenvalues of
  H + Sigma(E) do not locate them for energy-dependent leads): adaptive.  Every panel is
  compared with its two halves, with the moving moments at S_all0 and with their s-d blocks
  off, on the window part of rho_mm, and split until the estimates sum to <= ``tol`` (1e-10,
  absolute; round-off floor 1e-15 x int |integrand|).  Resonances move with M by up to the
  change of the s-d potential, max |J_sd|: the width of every split panel caps all panels
  within that distance of it (not for panels at a band edge: the branch point stays put), and
  the final rule is the common refinement of that and the accepted panels.

Measured (tests/integrators/test_steady_state.py; T = 300 K): the seed valve of
tests/seed_valve.py with a free analyzer and V_left = 0.25: 88 energies (14 base panels, one
split at the shifted band edge), 6e-13 in s and 4e-12 in rho (at a configuration other than
the set-up's) from a rule with half the panel width, 16 nodes and tol = 1e-13 (288 energies);
V = (0.1, -0.15): 152 energies, 3e-11 and 4e-11; with J_sd = -0.05 (no bound state) 2.3e-10
in rho against an independent adaptive real-axis integral of the whole lesser Green function
(estimate on the moving block 9e-11, actual there 9e-11).  Paper 000's AFI junction
(examples/afi_junction_000.toml, V = 0.55): 136 energies (a near-threshold peak 1e-3 above
the shifted band edge takes 8 splits), 5e-11 in s.  The estimate covers the moving orbitals;
the rest of rho (``density``) sees errors of the same size.

**Pole part.**  rho_ref carries the Pade error of the Fermi function over the spectrum (finite
bands: operators.pade.pade_error over the band, 9e-9 at 20 poles and 2e-14 at 30 for the seed
valve at 300 K; measured 20 vs 60 poles: 2e-11 in rho, 3e-12 in s for the seed valve and 5e-11,
5e-12 for the AFI junction, and 2e-16 in the current-driven part, where it cancels).  Wide-band
leads have Lorentzian tails to |E| -> infinity, beyond the Pade poles' reach: 1e-5 on the
interface orbitals at 30 poles (6e-6 in s of moments on the interface sites), falling like
N_p^-4: the error of every pole-sum equilibrium in qcspin (rho_eq of integrators/adiabatic.py,
the reference part of integrators.stationary).

**Dyson reduction.**  Only the s-d blocks of the moving (not frozen) moments depend on M.  With
m = their orbitals (2 per moment), V(M) = blockdiag(J_sd/2 sigma.M) on m (``sd_blocks``) and G0
the Green function without those blocks (frozen moments at S_all0),

    G_mm = [D - V(M)]^-1,  D = (G0_mm)^-1,    G[m, :] = G_mm D G0[m, :],

so per pole and energy node (and bias vector V) D and U_a = sqrt|c_a| D G0[m, I_a] L_a
(L_a L_a^dag = Gamma_a, c_a = w (f_a - f_ref)/2pi, the sign s_a = sign V_a of f_a - f_ref
apart) are precomputed, and

    rho_mm - 1/2 = sum_p (eta_p/beta) [G_mm(chi_p) + h.c.]
                   + sum_E sum_a s_a (G_mm U_a)(G_mm U_a)^dag

is one batched inverse of N_p + N_E matrices 2 n_moving square and a matmul with U
(2 n_moving x n_I) per node.  Moments that G0 does not connect (exact zeros of D, e.g. the 18
isolated AFI sites of paper 000) are inverted as separate blocks: the AFI's 46 x 46 becomes
19 x 2 x 2 and one 8 x 8.  The precomputation (dense solves of the N x N device, in batches)
is cached per distinct bias vector (an LRU of ``cache_size`` = 4: a square pulse has two).
Cost per evaluation, one BLAS thread: ~0.4 ms for the seed valve, ~2 ms for the AFI junction
(set-up 0.1 s and 0.4 s per bias vector); multi-threaded BLAS slows these small batched
inverses down (10x measured with 2 threads).

:meth:`SteadyStateSpinDensity.spin_density` gives s_j = Tr(rho_jj sigma)/2 of the moving
moments (qcspin's s; paper 000's <s> is twice it), :meth:`~SteadyStateSpinDensity.current_driven`
the current-driven part s(M, V) - s(M, 0) (paper 000 Eq. 6 with rho_eq of the same exact leads),
:meth:`~SteadyStateSpinDensity.density` the whole dense rho_ss, computed directly (no Dyson; for
tests and observables).  Serial NumPy, no communication: every MPI rank may evaluate it (the
results are the same).
"""
from __future__ import annotations

import math
import numbers
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from numpy.polynomial.legendre import leggauss

from operators.fermi import fermi
from operators.hamiltonian import dense_hamiltonian, sd_blocks
from operators.leads import Lead
from operators.pade import PadePoles, pade_poles
from toolkit.blas import single_thread
from toolkit.config import Config, ElectronsConfig
from toolkit.device import Device
from toolkit.schema import fail as _fail

__all__ = ["SteadyStateSpinDensity", "WindowRule", "window_rule", "panel_edges", "TAIL",
           "N_GAUSS", "TOL"]

TAIL = 40.0        # window mu -/+ TAIL T: f_a - f_ref < e^-40 = 4e-18 outside
N_GAUSS = 8        # Gauss-Legendre nodes per panel
TOL = 1e-10        # target absolute error of the window part of rho on the moving orbitals
MAX_ENERGIES = 20_000  # window nodes allowed per bias vector
_CHUNK = 1 << 23   # complex entries of a batch of dense N x N matrices (128 MiB)

_SIGMA = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], complex)


@dataclass(frozen=True)
class WindowRule:
    """Quadrature of the bias window: ``energies`` (n,) and ``weights`` (n,) of int dE (the
    nodes where a biased lead is open), the panel ``edges``, the number of panels the adaptive
    check split (``n_split``) and its error estimate ``error`` (max abs entry of the window part
    of rho on the moving orbitals, summed over the panels)."""

    energies: np.ndarray
    weights: np.ndarray
    edges: np.ndarray
    n_split: int = 0
    error: float = 0.0


Cap = Callable[[float, float], float]


def panel_edges(mus: Sequence[float], temperature: float,
                band_edges: Sequence[float] | np.ndarray = (),
                *, scale: float = 1.0, cap: Cap | None = None,
                max_panels: int | None = None) -> np.ndarray:
    """Panel edges on [min(mus) - TAIL T, max(mus) + TAIL T]: split at ``mus`` and at the
    ``band_edges`` inside, each panel at most ``scale`` x its distance to the nearest Fermi pole
    mu + i pi T, sqrt(d^2 + (pi T)^2) (d: distance of the panel to the nearest mu), and at most
    ``cap(a, b)`` wide (a local cap of the panel [a, b], e.g. the resonances)."""
    T = float(temperature)
    m = np.unique(np.asarray(mus, float))
    lo, hi = m[0] - TAIL * T, m[-1] + TAIL * T
    bp = np.unique(np.concatenate([[lo, hi], m, [e for e in band_edges if lo < e < hi]]))
    pT2 = (math.pi * T) ** 2

    def allowed(a: float, b: float) -> float:
        # no mu inside [a, b]: the distance to the nearest mu is concave there, min at an end
        d = min(float(np.abs(m - a).min()), float(np.abs(m - b).min()))
        h = scale * math.sqrt(d * d + pT2)
        return h if cap is None else min(h, cap(a, b))

    edges = [lo]
    for a, b in zip(bp[:-1], bp[1:]):
        x, b = float(a), float(b)
        while x < b:
            s = min(allowed(x, x), b - x)
            for _ in range(100):                    # shrink until the whole panel is allowed
                s_new = min(s, allowed(x, min(x + s, b)))
                if s_new >= s * (1 - 1e-12):
                    break
                s = s_new
            if b - x <= s * (1 + 1e-12):
                x = b
            elif b - (x + s) < 0.5 * s:             # no sliver at the end
                x = x + 0.5 * (b - x)
            else:
                x = x + s
            edges.append(x)
            if max_panels is not None and len(edges) > max_panels + 1:
                raise RuntimeError(f"steady-state window: more than {max_panels} panels "
                                   f"(a panel width cap of {s:.2e}); raise tol")
    return np.array(edges)


def _nodes(a: np.ndarray, b: np.ndarray, edge_set: set, n_gauss: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights (k, n_gauss) on the panels [a_k, b_k]; the cosine map
    E = c - (h/2) cos(theta) (analytic at a square-root branch point) on panels that end at a
    band edge of ``edge_set``."""
    t, w = leggauss(n_gauss)
    c, h = 0.5 * (b + a), 0.5 * (b - a)
    E = c[:, None] + h[:, None] * t[None, :]
    W = h[:, None] * w[None, :]
    at = np.array([float(x) in edge_set or float(y) in edge_set for x, y in zip(a, b)], bool)
    if at.any():
        th = 0.5 * math.pi * (1 + t)
        E[at] = c[at, None] - h[at, None] * np.cos(th)[None, :]
        W[at] = h[at, None] * (0.5 * math.pi * w * np.sin(th))[None, :]
    return E, W


def window_rule(mus: Sequence[float], temperature: float,
                band_edges: Sequence[float] | np.ndarray = (),
                *, n_gauss: int = N_GAUSS, scale: float = 1.0,
                cap: Cap | None = None) -> WindowRule:
    """The (non-adaptive) Gauss-Legendre rule on the panels of :func:`panel_edges`,
    ``n_gauss`` nodes per panel."""
    e = panel_edges(mus, temperature, band_edges, scale=scale, cap=cap)
    lo, hi = e[0], e[-1]
    E, W = _nodes(e[:-1], e[1:], {float(x) for x in band_edges if lo < x < hi}, n_gauss)
    return WindowRule(E.ravel(), W.ravel(), e)


def _check_poles(poles: Any, leads: Sequence[Lead]) -> list[PadePoles]:
    """One PadePoles per lead: None (each lead's ``n_poles`` if it has one, else the default
    electrons.n_poles), a number of poles, a PadePoles, or one of these per lead."""
    def one(p: Any, lead: Lead) -> PadePoles:
        if p is None:
            p = getattr(lead, "n_poles", None) or ElectronsConfig().n_poles
        if isinstance(p, PadePoles):
            return p
        if _is_int(p) and int(p) >= 1:
            return pade_poles(int(p))
        _fail("poles", p, "expected None, a number of poles >= 1, a PadePoles or one of these "
              "per lead")

    if isinstance(poles, (list, tuple)):
        if len(poles) != len(leads):
            _fail("poles", f"{len(poles)} pole sets", f"expected one per lead ({len(leads)})")
        return [one(p, l) for p, l in zip(poles, leads)]
    return [one(poles, l) for l in leads]


def _reference(leads: Sequence[Lead], per: list[PadePoles]) -> tuple[float, float, PadePoles]:
    """(mu0, T, poles) of the reference reservoir: every lead's at zero bias, all equal."""
    l0, p0 = leads[0], per[0]
    for l, p in zip(leads, per):
        if l.temperature <= 0:
            raise ValueError(f"lead '{l.name}': temperature = {l.temperature} is not allowed: "
                             f"the pole sum of the steady state needs temperature > 0")
        if (l.mu, l.temperature) != (l0.mu, l0.temperature) or not (
                p is p0 or (np.array_equal(p.xi, p0.xi) and np.array_equal(p.eta, p0.eta))):
            raise ValueError(
                f"lead '{l.name}': mu = {l.mu}, temperature = {l.temperature}, {p.n_poles} "
                f"poles is not allowed for the steady-state spin density: at zero bias every "
                f"lead needs the mu, temperature and Pade poles of lead '{l0.name}' ({l0.mu}, "
                f"{l0.temperature}, {p0.n_poles} poles); give the bias as the potentials V")
    return float(l0.mu), float(l0.temperature), p0


@dataclass(eq=False)
class _Bias:
    """Everything that depends on the bias vector but not on the moving moments."""

    V: tuple[float, ...]
    leads: list[Lead]          # shifted
    rule: WindowRule | None
    z: np.ndarray              # (N_p + N_E,) poles then window energies
    sigma: list[np.ndarray]    # per lead (N_p + N_E, n_a, n_a)
    active: list[int]          # leads with V_a != 0
    factors: list[np.ndarray]  # per active lead: sqrt|c_a| L_a, (N_E, n_a, n_a)
    sign: np.ndarray           # (r,) s_a of every column of U
    groups: list[_Group]       # the moving moments, in blocks that D does not couple


@dataclass(eq=False)
class _Group:
    """c blocks of s moving moments each that G0 does not couple to the other moments (e.g.
    the isolated AFI sites of paper 000, s = 1): their Dyson matrices and window factors."""

    moments: np.ndarray        # (c, s) indices into the moving moments
    orbitals: np.ndarray       # (c, 2s) positions in m
    D: np.ndarray              # (N_p + N_E, c, 2s, 2s)
    U: np.ndarray              # (N_E, c, 2s, r)


def _groups(D: np.ndarray, U: np.ndarray, n: int) -> list[_Group]:
    """Split the moving moments into the connected components of the pattern of D (exact
    zeros: orbitals that no path of H0 + Sigma connects), grouped by size."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    if n == 0:
        return []
    P = (D.reshape(len(D), n, 2, n, 2) != 0).any(axis=(0, 2, 4))
    _, label = connected_components(csr_matrix(P), directed=False)
    comps: dict[int, list[np.ndarray]] = {}
    for c in np.unique(label):
        mom = np.flatnonzero(label == c)
        comps.setdefault(len(mom), []).append(mom)
    out = []
    for _, lst in sorted(comps.items()):
        mom = np.array(lst)                                           # (c, s)
        orb = np.stack([2 * mom, 2 * mom + 1], axis=2).reshape(len(mom), -1)
        out.append(_Group(mom, orb, D[:, orb[:, :, None], orb[:, None, :]], U[:, orb, :]))
    return out


class SteadyStateSpinDensity:
    """The stationary NEGF spin density of the instantaneous moments and bias (module
    docstring).  Local (no communication).

    ``device``: the physical Device; ``leads``: its physical leads at zero bias
    (``operators.leads.leads_from_config(device, cfg.leads)``), all at one mu, T and pole set;
    ``S_all0``: (n_spins, 3) vectors of every moment (the frozen ones are used from here, those
    of later arguments are not read); ``poles``: None (each lead's ``n_poles`` if it has one,
    else electrons.n_poles' default), a number of poles, a PadePoles or one per lead (e.g. a
    Simulation's ``poles``).  ``moving``: indices of the moments whose s-d blocks change
    (default: those not frozen).  Window rule: ``n_gauss`` nodes per panel, ``scale`` (panel
    width / distance to the nearest Fermi pole), ``tol`` (adaptive check, absolute on rho),
    ``panel_width`` (an extra cap, E0).  ``cache_size``: bias vectors kept (LRU)."""

    def __init__(self, device: Device, leads: Sequence[Lead], S_all0: np.ndarray,
                 poles: Any = None, *, moving: np.ndarray | None = None,
                 n_gauss: int = N_GAUSS, scale: float = 1.0, tol: float = TOL,
                 panel_width: float | None = None, cache_size: int = 4) -> None:
        if not isinstance(device, Device):
            _fail("device", type(device).__name__, "expected a Device", TypeError)
        if not isinstance(leads, (list, tuple)) or not leads \
                or not all(isinstance(l, Lead) for l in leads):
            _fail("leads", leads, "expected a non-empty list of operators.leads.Lead (a "
                  "steady state needs reservoirs)")
        N = device.n_orbitals
        for l in leads:
            if int(l.interface.max()) >= N:
                _fail(f"lead '{l.name}' interface", l.interface.tolist(),
                      f"expected orbitals of the device (< {N})")
        self.device, self.leads, self.N = device, list(leads), N
        self.mu, self.temperature, self.poles = _reference(self.leads,
                                                           _check_poles(poles, self.leads))
        self.beta = 1.0 / self.temperature
        checks = (("n_gauss", n_gauss, _is_int(n_gauss) and n_gauss >= 1,
                   "expected an integer >= 1"),
                  ("scale", scale, _is_real(scale) and 0 < scale <= 4, "expected 0 < scale <= 4"),
                  ("tol", tol, _is_real(tol) and 1e-15 <= tol < 1, "expected 1e-15 <= tol < 1"),
                  ("panel_width", panel_width, panel_width is None
                   or (_is_real(panel_width) and panel_width > 0), "expected None or a number "
                   "> 0"),
                  ("cache_size", cache_size, _is_int(cache_size) and cache_size >= 1,
                   "expected an integer >= 1"))
        for name, v, ok, allowed in checks:
            if not ok:
                _fail(name, v, allowed)
        self.n_gauss, self.scale, self.tol = int(n_gauss), float(scale), float(tol)
        self.panel_width = math.inf if panel_width is None else float(panel_width)
        self.cache_size = int(cache_size)
        S0 = self._check_spins(S_all0, "S_all0")
        if moving is None:
            moving = np.flatnonzero(~np.asarray(device.frozen, bool))
        mv = np.asarray(moving)
        if mv.ndim != 1 or (mv.size and (not np.issubdtype(mv.dtype, np.integer)
                                         or mv.min() < 0 or mv.max() >= len(S0)
                                         or len(np.unique(mv)) != len(mv))):
            _fail("moving", moving, f"expected distinct moment indices in [0, {len(S0)})")
        self.moving = mv.astype(int)
        self.n = len(self.moving)
        self.J_sd = np.asarray(device.J_sd, float)[self.moving]
        sites = np.asarray(device.spin_sites)[self.moving]
        self.orbitals = np.stack([2 * sites, 2 * sites + 1], axis=1).ravel()
        self.S_all0 = S0
        self.H0 = dense_hamiltonian(device, S0).astype(complex) - self._potential(S0, full=True)
        self._cache: OrderedDict[tuple[float, ...], _Bias] = OrderedDict()
        self.n_evaluations = 0

    @classmethod
    def from_config(cls, cfg: Config, S_all0: np.ndarray | None = None,
                    **options: Any) -> "SteadyStateSpinDensity":
        """From a run's config: its device, its physical leads (``leads_from_config``) with
        their own ``n_poles`` (or electrons.n_poles), S_all0 = the device's initial spins by
        default; ``options`` as for the constructor."""
        from operators.leads import leads_from_config
        from toolkit.device import device_from_config

        from .assembly import lead_poles

        device = device_from_config(cfg)
        leads = leads_from_config(device, cfg.leads)
        S0 = device.spins0 if S_all0 is None else S_all0
        return cls(device, leads, S0, lead_poles(cfg, pade_poles), **options)

    # ------------------------------------------------------------------------- inputs
    def _check_spins(self, S: Any, name: str = "S_all") -> np.ndarray:
        n = len(self.device.spin_sites)
        try:
            a = None if np.iscomplexobj(S) else np.asarray(S, float)
        except (TypeError, ValueError):
            a = None
        if a is None or a.shape != (n, 3) or not np.all(np.isfinite(a)):
            _fail(name, getattr(S, "shape", S), f"expected finite real vectors of shape "
                  f"({n}, 3), one per moment")
        return a

    def _check_bias(self, V: Any) -> tuple[float, ...]:
        k = len(self.leads)
        if V is None or (_is_real(V) and V == 0):
            return (0.0,) * k
        try:
            a = np.asarray(V, float)
        except (TypeError, ValueError):
            a = np.zeros(0)
        if a.shape != (k,) or not np.all(np.isfinite(a)):
            _fail("V", V, f"expected {k} finite lead potentials (one per lead, in the order "
                  f"{[l.name for l in self.leads]}), or 0/None for zero bias")
        return tuple(float(v) + 0.0 for v in a)      # -0.0 -> 0.0

    def _potential(self, S_all: np.ndarray, full: bool = False) -> np.ndarray:
        """V(M) = J_sd/2 sigma.M of the moving moments, (2n, 2n) block diagonal (``full``:
        placed in an N x N matrix)."""
        n = self.n
        blk = sd_blocks(self.J_sd, np.asarray(S_all, float)[self.moving])   # (4, n)
        V = np.zeros((2 * n, 2 * n), complex)
        i = 2 * np.arange(n)
        V[i, i], V[i, i + 1], V[i + 1, i], V[i + 1, i + 1] = blk
        if not full:
            return V
        out = np.zeros((self.N, self.N), complex)
        out[np.ix_(self.orbitals, self.orbitals)] = V
        return out

    # ------------------------------------------------------------------------- precomputation
    def _rows(self, z: np.ndarray, sig: list[np.ndarray], cols: np.ndarray) -> np.ndarray:
        """G0(z)[m, cols] for every z, (n_z, 2n, len(cols)): solves with (z - H0 - Sigma)^T
        for the rows m, in batches."""
        N, m = self.N, self.orbitals
        out = np.empty((len(z), len(m), len(cols)), complex)
        step = max(1, _CHUNK // (N * N))
        e_m = np.zeros((N, len(m)), complex)
        e_m[m, np.arange(len(m))] = 1.0
        d = np.arange(N)
        for s0 in range(0, len(z), step):
            sl = slice(s0, min(s0 + step, len(z)))
            A = np.repeat(-self.H0[None], sl.stop - sl.start, axis=0)
            A[:, d, d] += z[sl, None]
            for l, s in zip(self.leads, sig):
                A[:, l.interface[:, None], l.interface[None, :]] -= s[sl]
            X = np.linalg.solve(np.swapaxes(A, 1, 2), e_m[None])      # (b, N, 2n)
            out[sl] = np.swapaxes(X, 1, 2)[:, :, cols]
        return out

    @staticmethod
    def _selfenergies(leads: list[Lead], z: np.ndarray) -> list[np.ndarray]:
        return [np.array([l.selfenergy(complex(x) if x.imag else float(x.real)) for x in z],
                         complex).reshape(len(z), l.n_interface, l.n_interface) for l in leads]

    def _window_data(self, leads: list[Lead], active: list[int], E: np.ndarray):
        """At real energies E: the self-energies of every lead, D = G0_mm^-1,
        D G0[m, I_a] L_a and the Gamma factors L_a (L_a L_a^dag = Gamma_a) of the active
        leads."""
        z = E.astype(complex)
        sig = self._selfenergies(leads, z)
        L = []
        for k in active:
            g = 1j * (sig[k] - np.swapaxes(sig[k].conj(), 1, 2))
            w, Q = np.linalg.eigh(0.5 * (g + np.swapaxes(g.conj(), 1, 2)))
            L.append(Q * np.sqrt(np.clip(w, 0.0, None))[:, None, :])
        n2 = 2 * self.n
        iface = [self.leads[k].interface for k in active]
        R = self._rows(z, sig, np.concatenate([self.orbitals, *iface]).astype(int))
        D = np.linalg.inv(R[:, :, :n2])
        DG = D @ R[:, :, n2:]
        W, j = [], 0
        for I, Lk in zip(iface, L):
            W.append(DG[:, :, j:j + len(I)] @ Lk)
            j += len(I)
        return sig, D, W, L

    def _window_integrand(self, leads, active, E, configs) -> np.ndarray:
        """(f_a - f_ref)/2pi G Gamma_a G^dag summed over a, on the moving orbitals, for each
        potential of ``configs``: (n_configs, n_E, 2n, 2n)."""
        _, D, W, _ = self._window_data(leads, active, E)
        f_ref = fermi(E, self.mu, self.temperature)
        K = np.zeros(D.shape, complex)
        for k, Wk in zip(active, W):
            c = (fermi(E, leads[k].mu, self.temperature) - f_ref) / (2 * np.pi)
            K += c[:, None, None] * (Wk @ np.swapaxes(Wk.conj(), 1, 2))
        out = []
        for Vm in configs:
            G = np.linalg.inv(D - Vm[None])
            out.append(G @ K @ np.swapaxes(G.conj(), 1, 2))
        return np.array(out)

    def _adapt(self, leads: list[Lead], active: list[int], mus: list[float],
               edges_band: np.ndarray) -> WindowRule:
        """The window rule (module docstring): panels of :func:`panel_edges`, each checked
        against its two halves for the moving moments at S_all0 and with their s-d blocks off
        and split until the estimates sum to <= tol; the widths of the split panels then cap
        every panel within max|J_sd| of them (the resonances move by up to the change of the
        s-d potential), and the rule is rebuilt."""
        T, n_g = self.temperature, self.n_gauss
        width_cap = self.panel_width

        def cap0(a: float, b: float) -> float:
            return width_cap

        e = panel_edges(mus, T, edges_band, scale=self.scale, cap=cap0)
        lo, hi = float(e[0]), float(e[-1])
        edge_set = {float(x) for x in edges_band if lo < x < hi}
        if self.n == 0:
            E, Wt = _nodes(e[:-1], e[1:], edge_set, n_g)
            return WindowRule(E.ravel(), Wt.ravel(), e)
        configs = [self._potential(self.S_all0), np.zeros((2 * self.n,) * 2, complex)]
        a, b = e[:-1], e[1:]
        kept: list[tuple[float, float, bool]] = []        # (a, b, to spread)
        err_kept, n_split = 0.0, 0
        min_width = 1e-6 * (hi - lo)
        # splits to spread: inside a split panel whose ancestor does not end at a band edge
        at_edge = np.array([float(x) in edge_set or float(y) in edge_set for x, y in zip(a, b)],
                           bool)
        inside = np.zeros(len(a), bool)
        while len(a):
            mid = 0.5 * (a + b)
            Ec, Wc = _nodes(a, b, edge_set, n_g)
            El, Wl = _nodes(a, mid, edge_set, n_g)
            Er, Wr = _nodes(mid, b, edge_set, n_g)
            F = self._window_integrand(leads, active, np.concatenate(
                [Ec.ravel(), El.ravel(), Er.ravel()]), configs)
            F = F.reshape(len(configs), 3, len(a), n_g, *F.shape[-2:])
            Qc = np.einsum("km,ckmij->ckij", Wc, F[:, 0])
            Qf = (np.einsum("km,ckmij->ckij", Wl, F[:, 1])
                  + np.einsum("km,ckmij->ckij", Wr, F[:, 2]))
            # error estimate per panel; round-off floor ~ 1e-15 x int |F| over the panel
            absQ = np.einsum("km,ckmij->ck", np.abs(Wc), np.abs(F[:, 0])).max(axis=0)
            err = np.maximum(np.abs(Qc - Qf).max(axis=(0, 2, 3)) - 1e-15 * absQ, 0.0)
            if err_kept + err.sum() <= self.tol:
                ok = np.ones(len(a), bool)
            else:
                ok = (err <= self.tol * (b - a) / (hi - lo)) | (b - a <= min_width)
            kept += list(zip(a[ok], b[ok], inside[ok]))
            err_kept += float(err[ok].sum())
            bad = ~ok
            n_split += int(bad.sum())
            if (len(kept) + 2 * int(bad.sum())) * n_g > MAX_ENERGIES:
                raise RuntimeError(
                    f"steady-state window: more than {MAX_ENERGIES} energies for tol = "
                    f"{self.tol} at bias {[l.mu - self.mu for l in leads]}; raise tol")
            a, b = np.concatenate([a[bad], mid[bad]]), np.concatenate([mid[bad], b[bad]])
            at_edge = np.concatenate([at_edge[bad], at_edge[bad]])
            inside = ~at_edge
        kept.sort()
        fine = np.array([(x, y) for x, y, f in kept if f])
        if not len(fine):
            e = np.array([kept[0][0]] + [y for _, y, _ in kept])
            E, Wt = _nodes(e[:-1], e[1:], edge_set, n_g)
            return WindowRule(E.ravel(), Wt.ravel(), e, n_split, err_kept)
        # resonances move with M by up to the change of the s-d potential, max |J_sd|: the
        # widths of the split panels cap every panel within that distance (not those of the
        # panels at a band edge: the branch point stays put)
        r = float(np.abs(self.J_sd).max(initial=0.0))
        fa, fb = fine[:, 0], fine[:, 1]
        fw = fb - fa

        def cap(x: float, y: float) -> float:
            near = (fb > x - r) & (fa < y + r)
            return min(width_cap, float(fw[near].min())) if near.any() else width_cap

        e = panel_edges(mus, T, edges_band, scale=self.scale, cap=cap,
                        max_panels=MAX_ENERGIES // n_g)
        # with the accepted panels (the refinement at the band edges): a common refinement
        e = np.unique(np.concatenate([e, [x for x, _, _ in kept], [y for _, y, _ in kept]]))
        e = e[np.concatenate([[True], np.diff(e) > 1e-12 * (hi - lo)])]   # no slivers
        e[-1] = hi
        if (len(e) - 1) * n_g > MAX_ENERGIES:
            raise RuntimeError(f"steady-state window: more than {MAX_ENERGIES} energies for "
                               f"tol = {self.tol}; raise tol")
        E, Wt = _nodes(e[:-1], e[1:], edge_set, n_g)
        return WindowRule(E.ravel(), Wt.ravel(), e, n_split, err_kept)

    def _bias(self, V: tuple[float, ...]) -> _Bias:
        hit = self._cache.get(V)
        if hit is not None:
            self._cache.move_to_end(V)
            return hit
        b = self._precompute(V)
        self._cache[V] = b
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return b

    def _precompute(self, V: tuple[float, ...]) -> _Bias:
        leads = [l if v == 0 else l.shifted(v) for l, v in zip(self.leads, V)]
        active = [k for k, v in enumerate(V) if v != 0]
        chi = self.mu + 1j * np.asarray(self.poles.xi) / self.beta
        n2, nP = 2 * self.n, len(chi)
        sigP = self._selfenergies(leads, chi)
        if n2:
            DP = np.linalg.inv(self._rows(chi, sigP, self.orbitals))
        else:
            DP = np.zeros((nP, 0, 0), complex)
        if not active:
            return _Bias(V, leads, None, chi, sigP, [], [], np.zeros(0),
                         _groups(DP, np.zeros((0, n2, 0), complex), self.n))
        mus = [self.mu] + [leads[k].mu for k in active]
        band = np.concatenate([np.asarray(l.band_edges(), float) for l in leads])
        rule = self._adapt(leads, active, mus, band)
        sigE, DE, W, L = self._window_data(leads, active, rule.energies)
        # drop the nodes where no biased lead is open (Gamma = 0: no contribution)
        gmax = [np.abs(Lk).reshape(len(Lk), -1).max(axis=1) for Lk in L]
        scale = max(float(g.max(initial=0.0)) for g in gmax)
        keep = np.zeros(len(rule.energies), bool)
        for g in gmax:
            keep |= g > 1e-7 * scale            # |L| ~ sqrt(Gamma): Gamma > 1e-14 max Gamma
        E = rule.energies[keep]
        rule = WindowRule(E, rule.weights[keep], rule.edges, rule.n_split, rule.error)
        f_ref = fermi(E, self.mu, self.temperature)
        factors, U, sign = [], [], []
        for k, Wk, Lk in zip(active, W, L):
            c = rule.weights * (fermi(E, leads[k].mu, self.temperature) - f_ref) / (2 * np.pi)
            root = np.sqrt(np.abs(c))[:, None, None]
            factors.append(root * Lk[keep])
            U.append(root * Wk[keep])
            sign.append(np.full(Lk.shape[2], math.copysign(1.0, V[k])))
        z = np.concatenate([chi, E.astype(complex)])
        sig = [np.concatenate([p, e[keep]]) for p, e in zip(sigP, sigE)]
        D = np.concatenate([DP, DE[keep]])
        return _Bias(V, leads, rule, z, sig, active, factors, np.concatenate(sign),
                     _groups(D, np.concatenate(U, axis=2), self.n))

    # ------------------------------------------------------------------------- evaluation
    def quadrature(self, V: Any) -> WindowRule | None:
        """The window rule at bias ``V`` (the nodes where a biased lead is open), None at
        zero bias."""
        return self._bias(self._check_bias(V)).rule

    def _blocks(self, S_all: Any, V: Any) -> np.ndarray:
        """rho_jj - 1/2 of every moving moment, (n, 2, 2)."""
        S = self._check_spins(S_all)
        b = self._bias(self._check_bias(V))
        n = self.n
        self.n_evaluations += 1
        if n == 0:
            return np.zeros((0, 2, 2), complex)
        Vm = self._potential(S)
        nP = self.poles.n_poles
        R = np.empty((n, 2, 2), complex)
        for g in b.groups:
            c, k = g.orbitals.shape
            Vg = Vm[g.orbitals[:, :, None], g.orbitals[:, None, :]]  # (c, k, k)
            G = np.linalg.inv(g.D - Vg[None])                        # (N_z, c, k, k)
            i = np.arange(k // 2)
            Gp = G[:nP].reshape(nP, c, k // 2, 2, k // 2, 2)[:, :, i, :, i, :]
            Rg = np.einsum("p,spcab->csab", self.poles.eta / self.beta, Gp)
            Rg = Rg + np.conj(np.swapaxes(Rg, -1, -2))
            if g.U.shape[3]:
                Y = G[nP:] @ g.U                                     # (N_E, c, k, r)
                Z = np.moveaxis(Y.reshape(len(Y), c * k // 2, 2, -1), 0, 2)
                Z = Z.reshape(c * k // 2, 2, -1)
                w = np.tile(b.sign, len(Y))
                Rg = Rg + (Z @ np.swapaxes((Z * w).conj(), 1, 2)).reshape(c, k // 2, 2, 2)
            R[g.moments] = Rg
        return R

    def spin_density(self, S_all: Any, V: Any = None) -> np.ndarray:
        """s_j = Tr(rho_ss,jj sigma)/2 of every moving moment, (n_moving, 3); ``V``: one
        potential per lead (None or 0: zero bias)."""
        with single_thread():          # small batched inverses: threads only cost
            R = self._blocks(S_all, V)
        return 0.5 * np.einsum("nbc,acb->na", R, _SIGMA).real

    def current_driven(self, S_all: Any, V: Any) -> np.ndarray:
        """s(M, V) - s(M, 0): the current-driven part (paper 000 Eq. 6, halved), with the
        equilibrium of the same exact leads; exactly 0 at V = 0."""
        return self.spin_density(S_all, V) - self.spin_density(S_all, None)

    def density(self, S_all: Any, V: Any = None) -> np.ndarray:
        """The whole dense rho_ss (N x N) of the device, computed directly from the full
        G(z) = (z - H(M) - Sigma(z))^-1 at the same poles and window nodes (no Dyson
        reduction; O(N^3) per node)."""
        S = self._check_spins(S_all)
        b = self._bias(self._check_bias(V))
        N, nP = self.N, self.poles.n_poles
        H = self.H0 + self._potential(S, full=True)
        rho = 0.5 * np.eye(N, dtype=complex)
        iface = [self.leads[k].interface for k in b.active]
        cols = np.concatenate(iface) if iface else np.zeros(0, int)
        rhs = np.zeros((N, len(cols)), complex)
        rhs[cols, np.arange(len(cols))] = 1.0
        for k, z in enumerate(b.z):
            A = z * np.eye(N) - H
            for l, s in zip(self.leads, b.sigma):
                A[np.ix_(l.interface, l.interface)] -= s[k]
            if k < nP:
                G = np.linalg.inv(A)
                rho += (self.poles.eta[k] / self.beta) * (G + G.conj().T)
                continue
            X = np.linalg.solve(A, rhs)                              # G[:, I]
            j = 0
            for F, I in zip(b.factors, iface):
                Y = X[:, j:j + len(I)] @ F[k - nP]
                rho += b.sign[j] * (Y @ Y.conj().T)
                j += len(I)
        return 0.5 * (rho + rho.conj().T)


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


class SteadyStateSource:
    """The :class:`integrators.rhs.SpinDensitySource` of ``[llg] drive = "steady-state"``
    (paper 000 Fig. 3c, d): s_CD of the stationary NEGF state of the instantaneous moments and
    bias, ``SteadyStateSpinDensity.current_driven(M(t), V(t))``, on this rank's moving moments;
    the evolved rho is not used (no electron memory; the electrons are still evolved, for
    their observables, but do not act back).  Frozen moments get 0."""

    def __init__(self, H, steady: SteadyStateSpinDensity, mu_of_t, mu0) -> None:
        d = H.dist
        self.ss = steady
        self.mu_of_t = mu_of_t
        self.mu0 = np.asarray(mu0, float)
        self.n_local = d.spin_stop - d.spin_start
        mv = steady.moving
        mine = (mv >= d.spin_start) & (mv < d.spin_stop)
        self.rows = mv[mine] - d.spin_start
        self.pick = np.flatnonzero(mine)

    def bias(self, t: float) -> np.ndarray:
        return np.asarray(self.mu_of_t(t), float) - self.mu0

    def __call__(self, t: float, x: np.ndarray, S_all: np.ndarray) -> np.ndarray:
        s = np.zeros((self.n_local, 3))
        s[self.rows] = self.ss.current_driven(S_all, self.bias(t))[self.pick]
        return s


def steady_state_source(H, layout, problem, poles, mu_of_t) -> SteadyStateSource:
    """The ``build_simulation(spin_density=...)`` factory of ``drive = "steady-state"``: exact
    self-energies of the physical leads, the run's Pade poles.  Collective (no
    communication: every rank builds the same tables)."""
    from .electrons import per_lead_poles

    dev = problem.device
    leads = problem.leads
    per = per_lead_poles(poles, len(leads))
    steady = SteadyStateSpinDensity(dev, list(leads), np.asarray(dev.spins0, float), poles=per)
    return SteadyStateSource(H, steady, mu_of_t, [l.mu for l in leads])
