"""Lorentzian auxiliary modes of finite-band leads (Croy & Saalmann, PRB 80, 245311 (2009);
Popescu & Croy, NJP 18, 093044 (2016)): the fit, and a dense NumPy reference of the equations
of motion (serial, small devices; the distributed PETSc version is not written yet).

**Fit.**  Each channel c of a lead (a transverse mode and spin; the channel vector B_c is a
column of orthonormal combinations of face orbitals) has the retarded self-energy
sigma_c(E) (``TightBindingLead``: t_c^2 g_s(E - eps_0 - e_k)).  It is fitted by N_L poles in the
lower half-plane with non-negative weights,

    sigma_c(E) ~= sum_l a_l / (E - z_l),   z_l = eps_l - i w_l,  a_l >= 0,  w_l >= w_min,

which is analytic in the upper half-plane and gives Gamma_c = -2 Im sigma_c = sum_l
2 a_l w_l / ((E - eps_l)^2 + w_l^2) >= 0, a sum of Lorentzians (:func:`fit_lorentzians`:
centres and widths on a grid, weights by non-negative least squares on the complex
self-energy, inside and outside the band).  A wide-band lead is the limit of one very wide
Lorentzian: a = Gamma w / 2, w -> infinity.

**Equations of motion** (derived from the Kadanoff-Baym equations with the pole expansions of
sigma^R, sigma^< and the Padé Fermi function f(E) = 1/2 - (1/beta) sum_p eta_p [1/(E - chi_p) +
1/(E - conj chi_p)], chi_p = mu + i xi_p/beta; every pole of lead alpha shifted by its bias
V_alpha(t), a rigid shift of band and mu):

    d rho/dt   = -i [H, rho] + Pi + Pi^dag,
    Pi         = sum_x c_x R_x B_x^dag + sum_y i a_y lambda_y B_y^dag,
    dR_x/dt    = -i B_x - i (H - kappa_x) R_x - sum_y a_y B_y Omega_yx,
    dOmega_yx/dt = B_y^dag R_x - i (z_y - kappa_x) Omega_yx,
    dlambda_y/dt = i rho B_y - i (H - conj z_y) lambda_y - sum_y' a_y' B_y' Theta_y'y
                   - i sum_u g_u B_u K_uy,
    dTheta_y'y/dt = -i (z_y' - conj z_y) Theta_y'y + B_y'^dag lambda_y - (B_y^dag lambda_y')^*,
    dK_uy/dt   = -i (zeta_u - conj z_y) K_uy + (B_y^dag R_ubar(u))^*,

with y over the Lorentzian poles of all channels (a_y, z_y), x over the retarded vectors
R_x = int dt' G^R(t, t') e^{i kappa_x (t - t')} B_x: one per channel and Fermi pole
(kappa = chi_p, c_x = (eta_p/beta) Gamma_c(chi_p)) and one per channel and Lorentzian
(kappa = conj z_l, c_x = i a_l f(conj z_l)), lambda_y = int dt' G^<(t, t') e^{i conj z_y (t - t')}
B_y, and u over the poles of sigma^<(t, t'') for t'' < t: Lorentzian (zeta = z_l,
g = i a_l conj f(conj z_l)) and Fermi (zeta = conj chi_p, g = -(eta_p/beta) conj Gamma_c(chi_p));
R_ubar(u) is the retarded vector with kappa = conj zeta_u of the same channel.  The vectors are
N_s x (channels x (N_p + 2 N_L)); Omega, Theta, K are small ((channels x modes)^2).  All
auxiliaries 0 with any rho is paper 000's partitioned start (leads in equilibrium, connected
at t = 0).  The equations are exact for the fitted self-energy: they reproduce the
equivalent pseudomode model (the device coupled to levels eps_l with hopping sqrt(a_l), each
damped by a wide-band reservoir of Gamma = 2 w_l at the lead's mu, T) to round-off
(tests/operators/test_lorentzian.py).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
from scipy.optimize import nnls

from .pade import PadePoles

__all__ = ["LorentzianFit", "fit_lorentzians", "chain_fit", "damped_chain_poles", "LeadChannels",
           "ModeTables", "AuxiliaryModes", "rk4"]


@dataclasses.dataclass(frozen=True, eq=False)
class LorentzianFit:
    """sigma(E) ~= sum_l a_l/(E - eps_l + i w_l): centres ``eps``, half-widths ``w``, weights
    ``a`` (>= 0), and the fit errors on the fitting grid: ``gamma_error`` = max |Gamma_fit -
    Gamma| inside ``band``, ``sigma_error`` = max |sigma_fit - sigma|."""

    eps: np.ndarray
    w: np.ndarray
    a: np.ndarray
    gamma_error: float
    sigma_error: float
    wide: float = 0.0      # a wide-band part: sigma += -i wide/2 (a wide-band lead: no poles)

    def __call__(self, E) -> np.ndarray:
        """The fitted sigma at complex energies E (any shape, Im E > -min w)."""
        E = np.asarray(E, complex)
        return np.sum(self.a / (E[..., None] - self.eps + 1j * self.w), axis=-1) \
            - 0.5j * self.wide

    def shifted(self, delta: float) -> "LorentzianFit":
        return dataclasses.replace(self, eps=self.eps + delta)

    @property
    def poles(self) -> np.ndarray:
        return self.eps - 1j * self.w


def fit_lorentzians(sigma: Callable[[np.ndarray], np.ndarray], band: tuple[float, float],
                    n: int, *, width: float = 0.7, w_min: float = 1e-3,
                    margin: float = 0.05, n_grid: int = 4000) -> LorentzianFit:
    """Fit ``sigma`` (callable on real energies, the retarded limit) by ``n`` Lorentzians with
    centres evenly spaced over ``band`` widened by ``margin`` (relative), half-widths
    ``width`` x the spacing (at least ``w_min``) and weights a_l >= 0 from non-negative
    least squares on Re and Im sigma over the band and as far again on both sides."""
    lo, hi = band
    if not (hi > lo) or n < 1:
        raise ValueError(f"band = {band!r}, n = {n!r} is not allowed: expected lo < hi, n >= 1")
    d = (hi - lo) * margin
    eps = np.linspace(lo - d, hi + d, n)
    sp = (eps[1] - eps[0]) if n > 1 else (hi - lo)
    w = np.full(n, max(width * sp, w_min))
    span = hi - lo
    E = np.linspace(lo - span, hi + span, n_grid)
    target = np.asarray(sigma(E), complex)
    M = 1.0 / (E[:, None] - eps[None, :] + 1j * w[None, :])
    a, _ = nnls(np.vstack([M.real, M.imag]), np.concatenate([target.real, target.imag]))
    fit = M @ a
    inside = (E > lo) & (E < hi)
    return LorentzianFit(eps, w, a, float(np.abs(2 * (target.imag - fit.imag))[inside].max()),
                         float(np.abs(fit - target).max()))


def chain_fit(hopping: float, coupling: float, n: int, **kw) -> LorentzianFit:
    """The fit of t_c^2 g_s(E) of a semi-infinite chain (on-site 0; shift by eps_0 + e_k for a
    transverse mode)."""
    from .leads import chain_surface_green

    return fit_lorentzians(lambda E: coupling ** 2 * chain_surface_green(E + 0j, hopping),
                           (-2 * hopping, 2 * hopping), n, **kw)


def damped_chain_poles(hopping: float, coupling: float, gamma: np.ndarray,
                       onsite: float = 0.0) -> LorentzianFit:
    """The exact pole expansion of the self-energy of L explicit chain sites with the
    broadening ``gamma`` (L,) on them (the extended representation's absorbers):
    t_c^2 [(E - H_L + i Gamma/2)^-1]_11 = sum_l a_l/(E - z_l), z_l the eigenvalues of the
    complex symmetric H_L - i Gamma/2 (Im z_l < 0), complex residues a_l (their sum is t_c^2;
    Gamma_ext(E) >= 0 although single a_l are not real).  ``eps``/``w`` hold Re z / -Im z."""
    g = np.asarray(gamma, float)
    L = len(g)
    A = np.diag(onsite - 0.5j * g).astype(complex)
    i = np.arange(L - 1)
    A[i, i + 1] = A[i + 1, i] = -hopping
    lam, V = np.linalg.eig(A)
    Vinv = np.linalg.inv(V)
    a = coupling ** 2 * V[0, :] * Vinv[:, 0]
    return LorentzianFit(lam.real.copy(), -lam.imag.copy(), a, 0.0, 0.0)


@dataclasses.dataclass(frozen=True, eq=False)
class LeadChannels:
    """One lead for :class:`AuxiliaryModes`: channel vectors ``B`` (N x m, orthonormal
    columns), one :class:`LorentzianFit` per channel, reservoir ``mu`` and ``temperature``
    (k_B T > 0), Padé ``poles``."""

    B: np.ndarray
    fits: Sequence[LorentzianFit]
    mu: float
    temperature: float
    poles: PadePoles


class ModeTables:
    """The index tables of the auxiliary-mode equations (module docstring) for channels with
    pole fits: ``fits`` (one :class:`LorentzianFit` per channel), ``chan_lead`` (the lead of
    each channel) and ``leads`` (objects with ``mu``, ``temperature``, ``poles``).

    y (Lorentzian poles): ``yc`` channel, ``z`` pole, ``a`` weight, ``ca`` = i conj(a)
    (coefficient of lambda_y in Pi); x (retarded vectors): ``xc``, ``kap`` (kappa), ``cx``
    (coefficient of R_x in Pi), the first ``n_fermi`` are Fermi poles; u (poles of
    sigma^<): ``uc``, ``zeta``, ``g``, ``ubar`` (the x with kappa = conj zeta).  Identical on
    every rank."""

    def __init__(self, fits: Sequence[LorentzianFit], chan_lead: Sequence[int],
                 leads: Sequence) -> None:
        self.leads = list(leads)
        self.chan_lead = np.asarray(chan_lead, int)
        ch_fit = list(fits)
        self.fits = ch_fit
        yc, z, a = [], [], []     # a: complex in general (damped-chain poles)
        for c, fit in enumerate(ch_fit):
            yc += [c] * len(fit.a)
            z += list(fit.poles)
            a += list(fit.a)
        self.yc, self.z, self.a = np.array(yc, int), np.array(z, complex), np.array(a, complex)
        xc, kap, cx = [], [], []
        for c, fit in enumerate(ch_fit):
            ld = self.leads[self.chan_lead[c]]
            beta = 1.0 / ld.temperature
            for xi, eta in zip(ld.poles.xi, ld.poles.eta):
                chi = ld.mu + 1j * xi / beta
                xc.append(c)
                kap.append(chi)
                cx.append(eta / beta * _gamma(fit, chi))
        self.n_fermi = len(xc)
        for j, c in enumerate(self.yc):
            ld = self.leads[self.chan_lead[c]]
            xc.append(c)
            kap.append(np.conj(self.z[j]))
            cx.append(1j * np.conj(self.a[j]) * _fpade(np.conj(self.z[j]), ld))
        self.xc, self.kap, self.cx = np.array(xc, int), np.array(kap), np.array(cx)
        uc, zeta, g, ubar = [], [], [], []
        for j, c in enumerate(self.yc):
            ld = self.leads[self.chan_lead[c]]
            uc.append(c)
            zeta.append(self.z[j])
            g.append(1j * self.a[j] * np.conj(_fpade(np.conj(self.z[j]), ld)))
            ubar.append(self.n_fermi + j)
        first: dict[int, int] = {}
        for i in range(self.n_fermi):
            c = int(self.xc[i])
            first.setdefault(c, i)
            ld = self.leads[self.chan_lead[c]]
            p = i - first[c]
            uc.append(c)
            zeta.append(np.conj(self.kap[i]))
            g.append(-(ld.poles.eta[p] * ld.temperature) * np.conj(_gamma(ch_fit[c], self.kap[i])))
            ubar.append(i)
        self.uc, self.zeta, self.g, self.ubar = (np.array(uc, int), np.array(zeta),
                                                 np.array(g), np.array(ubar, int))
        self.ca = 1j * np.conj(self.a)
        self.nx, self.ny, self.nu = len(self.xc), len(self.yc), len(self.uc)

    def decay(self):
        """Real parts of the diagonal rates (the stiff linear part): of R_x (-Im kappa),
        lambda_y (-w_y), Omega_yx, Theta_y'y, K_uy (flattened row-major)."""
        w = -self.z.imag
        r = -self.kap.imag
        return (r, -w, (-w[:, None] + r[None, :]).ravel(), (-w[:, None] - w[None, :]).ravel(),
                (self.zeta.imag[:, None] - w[None, :]).ravel())



def rk4(f, state: tuple, dt: float, n: int, t0: float = 0.0) -> tuple:
    """n classic RK4 steps of ``f(t, state) -> d state/dt`` for a tuple of arrays (the dense
    references of this module and their tests)."""
    t = t0
    for _ in range(n):
        k1 = f(t, state)
        k2 = f(t + dt / 2, tuple(s + dt / 2 * k for s, k in zip(state, k1)))
        k3 = f(t + dt / 2, tuple(s + dt / 2 * k for s, k in zip(state, k2)))
        k4 = f(t + dt, tuple(s + dt * k for s, k in zip(state, k3)))
        state = tuple(s + dt / 6 * (a + 2 * b + 2 * c + d)
                      for s, a, b, c, d in zip(state, k1, k2, k3, k4))
        t += dt
    return state


class AuxiliaryModes:
    """Dense NumPy reference of the Lorentzian auxiliary-mode equations (module docstring) for a
    device Hamiltonian ``H`` (N x N) and ``leads`` (:class:`LeadChannels`).  Serial.

    State: (rho, R, lam, Omega, Theta, K) as a tuple of arrays; :meth:`partitioned` gives the
    partitioned start; :meth:`rhs` (t, state, V) with V the leads' bias potentials at t;
    :meth:`currents` the lead currents Re Tr Pi_alpha (qcspin's lead_current convention: half
    the electrons entering per unit time)."""

    # copied from :class:`ModeTables` in __init__
    yc: np.ndarray
    z: np.ndarray
    a: np.ndarray
    ca: np.ndarray
    xc: np.ndarray
    kap: np.ndarray
    cx: np.ndarray
    n_fermi: int
    uc: np.ndarray
    zeta: np.ndarray
    g: np.ndarray
    ubar: np.ndarray

    def __init__(self, H: np.ndarray, leads: Sequence[LeadChannels]) -> None:
        self.H = np.asarray(H, complex)
        self.N = self.H.shape[0]
        self.leads = list(leads)
        Bcols, chan_lead, fits = [], [], []
        for k, ld in enumerate(self.leads):
            for c in range(ld.B.shape[1]):
                Bcols.append(np.asarray(ld.B[:, c], complex))
                chan_lead.append(k)
                fits.append(ld.fits[c])
        self.B = np.array(Bcols).T                        # N x channels
        self.chan_lead = np.array(chan_lead)
        t = self.tables = ModeTables(fits, chan_lead, self.leads)
        for name in ("yc", "z", "a", "ca", "xc", "kap", "cx", "n_fermi", "uc", "zeta", "g",
                     "ubar"):
            setattr(self, name, getattr(t, name))
        self.Bx, self.By, self.Bu = self.B[:, self.xc], self.B[:, self.yc], self.B[:, self.uc]
        self.aBy = self.By * self.a
        self.gBu = self.Bu * self.g
        # wide-band channels: -i Gamma/2 in H for R and lambda, Gamma/4 - rho Gamma/2 in Pi
        wide = np.array([f.wide for f in fits])
        self.Gw = (self.B * wide) @ self.B.conj().T
        self.Heff = self.H - 0.5j * self.Gw

    @property
    def n_unknowns(self) -> int:
        N, nx, ny, nu = self.N, len(self.xc), len(self.yc), len(self.uc)
        return N * N + N * (nx + ny) + ny * nx + ny * ny + nu * ny

    def partitioned(self, rho0: np.ndarray):
        """The state with device density ``rho0`` and all auxiliaries 0 (connected at t)."""
        N, nx, ny, nu = self.N, len(self.xc), len(self.yc), len(self.uc)
        z = np.zeros
        return (np.array(rho0, complex), z((N, nx), complex), z((N, ny), complex),
                z((ny, nx), complex), z((ny, ny), complex), z((nu, ny), complex))

    def equilibrium(self) -> tuple:
        """The equilibrium state (all leads at one mu, temperature and pole set): the fixed
        point of the equations in which the leads have always been connected,

            rho       = 1/2 + (1/beta) sum_p eta_p [G(chi_p) + G(chi_p)^dag],
            R_x       = G(kappa_x) B_x,      Omega_yx = B_y^dag R_x / (i (z_y - kappa_x)),
            lambda_y  = -[f(conj z_y) G(conj z_y) + sum_p (eta_p/beta) (G(chi_p)/(conj z_y - chi_p)
                          + G(chi_p)^dag/(conj z_y - conj chi_p))] B_y,
            Theta_y'y = [B_y'^dag lambda_y - (B_y^dag lambda_y')^*] / (i (z_y' - conj z_y)),
            K_uy      = (B_y^dag R_ubar(u))^* / (i (zeta_u - conj z_y)),

        with G(z) = (z - H - Sigma_fit(z))^-1 (contour integrals of G^< = -f (G^R - G^A) closed
        around the poles of f and of 1/(conj z_y - E)).  Dense (N^3 per pole).  It is
        :meth:`stationary` without bias (no bias window remains)."""
        ld0 = self.leads[0]
        for ld in self.leads[1:]:
            if (ld.mu, ld.temperature) != (ld0.mu, ld0.temperature) or not np.array_equal(
                    ld.poles.xi, ld0.poles.xi):
                raise ValueError("an equilibrium needs every lead at the same mu, temperature "
                                 "and Padé poles")
        return self.stationary()

    def stationary(self, V=None, *, panel: float | None = None, order: int = 10) -> tuple:
        """The stationary state under the bias potentials ``V`` (per lead; None: 0).

        The retarded parts (R, Omega, K) are closed forms with every pole of lead alpha moved
        by V_alpha.  rho and lambda are the closed forms of :meth:`equilibrium` for the
        reference occupation f_ref (the first lead's, before the bias) with the biased G, plus
        the bias-window integrals

            d rho    = int dE/2pi sum_a (f_a - f_ref) G Gamma_a G^dag,
            d lambda_y = -int dE/2pi sum_a (f_a - f_ref) G Gamma_a G^dag B_y / (conj z_y' - E)

        (Padé f_a, the same as in the equations; Gauss-Legendre of ``order`` points on panels
        no wider than ``panel``, default a third of the narrowest pole width and of T, over the
        windows -/+ 40 T; with a biased wide-band channel also panels growing by 1.2 out to
        1000 xi_max T, where the Padé f_a - f_ref of the equations is not yet 0).  States no
        reservoir reaches keep f_ref.  Dense."""
        t = self.tables
        nL = len(self.leads)
        V = np.zeros(nL) if V is None else np.asarray(V, float)
        ld0 = self.leads[0]
        beta0 = 1.0 / ld0.temperature
        N = self.N
        fits = [f.shifted(V[self.chan_lead[c]]) for c, f in enumerate(t.fits)]
        Vx, Vy, Vu = V[self.chan_lead[t.xc]], V[self.chan_lead[t.yc]], V[self.chan_lead[t.uc]]
        kap, zy, zeta = t.kap + Vx, t.z + Vy, t.zeta + Vu

        def Sig(zz):
            S = np.zeros((N, N), complex)
            for c, fit in enumerate(fits):
                S += fit(zz) * np.outer(self.B[:, c], self.B[:, c].conj())
            return S

        def G(zz):
            return np.linalg.inv(zz * np.eye(N) - self.H - Sig(zz))

        chis = ld0.mu + 1j * ld0.poles.xi / beta0
        Gp = [G(chi) for chi in chis]
        rho = 0.5 * np.eye(N, dtype=complex)
        for eta, g in zip(ld0.poles.eta, Gp):
            rho += (eta / beta0) * (g + g.conj().T)
        R = np.empty((N, t.nx), complex)
        for i in range(t.nx):
            R[:, i] = G(kap[i]) @ self.B[:, t.xc[i]]
        lam = np.empty((N, t.ny), complex)
        for j in range(t.ny):
            zb = np.conj(zy[j])
            acc = _fpade(zb, ld0) * G(zb)
            for eta, chi, g in zip(ld0.poles.eta, chis, Gp):
                acc = acc + (eta / beta0) * (g / (zb - chi) + g.conj().T / (zb - np.conj(chi)))
            lam[:, j] = -acc @ self.B[:, t.yc[j]]
        # bias windows
        mus = [ld.mu + v for ld, v in zip(self.leads, V)]
        active = [k for k in range(nL) if (mus[k], self.leads[k].temperature,
                                           self.leads[k].poles.n_poles)
                  != (ld0.mu, ld0.temperature, ld0.poles.n_poles)]
        if active:
            Tmax = max(ld.temperature for ld in self.leads)
            lo = min(mus) - 40 * Tmax
            hi = max(mus) + 40 * Tmax
            wmin = min((float(np.min(f.w)) for f in fits if len(f.w)), default=np.inf)
            h = panel or min(wmin, min(ld.temperature for ld in self.leads)) / 3
            n_pan = int(np.ceil((hi - lo) / h))
            xg, wg = np.polynomial.legendre.leggauss(order)
            edges = np.linspace(lo, hi, n_pan + 1)
            mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * np.diff(edges)
            if any(fits[c].wide > 0 for k in active for c in np.flatnonzero(self.chan_lead == k)):
                # a wide-band channel's Gamma does not decay with E: the Padé f_a - f_ref,
                # which reverts towards 1/2 far outside its window (|E - mu| ~ xi_max T),
                # contributes there; panels growing by 1.2 from the window's panel width out
                # to 1000 xi_max T on both sides (beyond: f_a - f_ref ~ V/E^2 and
                # G Gamma G^dag ~ Gamma/E^2, negligible)
                # (uniform panels of width h first over the whole spectrum, where G has its
                # poles, then growing: a panel at distance d from every pole is 0.2 d wide)
                g_lo, g_hi = self._pole_span(fits)
                lo2, hi2 = min(lo, g_lo), max(hi, g_hi)
                ext = [np.linspace(lo2, lo, max(int(np.ceil((lo - lo2) / h)), 1) + 1),
                       np.linspace(hi, hi2, max(int(np.ceil((hi2 - hi) / h)), 1) + 1)]
                for ed in ext:
                    mid = np.concatenate([mid, 0.5 * (ed[1:] + ed[:-1])])
                    half = np.concatenate([half, 0.5 * np.diff(ed)])
                far = 1e3 * Tmax * max(float(np.max(ld.poles.xi)) for ld in self.leads)
                n_tail = int(np.ceil(np.log(1 + 0.2 * far / h) / np.log(1.2)))
                out = np.concatenate([[0.0], np.cumsum(h * 1.2 ** np.arange(n_tail))])
                for ed in (lo2 - out[::-1], hi2 + out):
                    mid = np.concatenate([mid, 0.5 * (ed[1:] + ed[:-1])])
                    half = np.concatenate([half, 0.5 * np.diff(ed)])
            E = (mid[:, None] + half[:, None] * xg[None, :]).ravel()
            W = (half[:, None] * wg[None, :]).ravel() / (2 * np.pi)
            # reservoir-only records (no channels, B = None): _fpade reads mu, temperature, poles
            ref = LeadChannels(None, (),  # type: ignore[arg-type]
                               ld0.mu, ld0.temperature, ld0.poles)
            dl = np.zeros_like(lam)
            for e, w in zip(E, W):
                g = G(e + 0j)
                M = np.zeros((N, N), complex)
                for k in active:
                    ldk = self.leads[k]
                    dfk = (_fpade(e, LeadChannels(None, (), mus[k],  # type: ignore[arg-type]
                                                  ldk.temperature, ldk.poles)).real
                           - _fpade(e, ref).real)
                    if dfk == 0.0:
                        continue
                    cs = np.flatnonzero(self.chan_lead == k)
                    GB = g @ self.B[:, cs]
                    gam = np.array([-2 * fits[c](e + 0j).imag for c in cs])
                    M += dfk * (GB * gam) @ GB.conj().T
                # leads at f_ref contribute nothing; the reference lead's own window is 0
                rho += w * M
                dl -= w * (M @ self.By) / (np.conj(zy)[None, :] - e)
            lam += dl
        By = self.By
        Om = (By.conj().T @ R) / (1j * (zy[:, None] - kap[None, :]))
        BL = By.conj().T @ lam
        Th = (BL - BL.conj().T) / (1j * (zy[:, None] - np.conj(zy)[None, :]))
        BR = By.conj().T @ R[:, t.ubar]
        K = BR.conj().T / (1j * (zeta[:, None] - np.conj(zy)[None, :]))
        return 0.5 * (rho + rho.conj().T), R, lam, Om, Th, K

    def _pole_span(self, fits) -> tuple[float, float]:
        """(min, max) of Re z -/+ 5 |Im z| over the poles z of G(z) = (z - H - Sigma(z))^-1
        with the channels' ``fits``: the eigenvalues of H with every Lorentzian as a mode
        (coupling sqrt(a_l) B_c, energy eps_l - i w_l) and the wide parts as -i Gamma/2."""
        N = self.N
        cols, rows, diag = [], [], []
        for c, f in enumerate(fits):
            for e, w, a in zip(f.eps, f.w, f.a):
                r = np.sqrt(complex(a))
                cols.append(r * self.B[:, c])
                rows.append(r * self.B[:, c].conj())
                diag.append(e - 1j * w)
        n = len(diag)
        M = np.zeros((N + n, N + n), complex)
        M[:N, :N] = self.Heff
        if n:       # Schur complement: z - Heff - sum_l a_l B_c B_c^dag / (z - eps_l + i w_l)
            M[:N, N:], M[N:, :N] = np.array(cols).T, np.array(rows)
            M[N:, N:] = np.diag(diag)
        z = np.linalg.eigvals(M)
        return float(np.min(z.real - 5 * abs(z.imag))), float(np.max(z.real + 5 * abs(z.imag)))

    def _shift(self, V, ch) -> np.ndarray | float:
        if V is None:
            return 0.0
        return np.asarray(V, float)[self.chan_lead[ch]]

    def rhs(self, t: float, state, V=None):
        """d state/dt; ``V``: bias potential of each lead (rigid shift of every pole)."""
        rho, R, lam, Om, Th, K = state
        H = self.H
        kap = self.kap + self._shift(V, self.xc)
        zy = self.z + self._shift(V, self.yc)
        zeta = self.zeta + self._shift(V, self.uc)
        Pi = (R * self.cx) @ self.Bx.conj().T + (lam * self.ca) @ self.By.conj().T \
            + 0.25 * self.Gw - 0.5 * rho @ self.Gw
        drho = -1j * (H @ rho - rho @ H) + Pi + Pi.conj().T
        H = self.Heff
        dR = -1j * self.Bx - 1j * (H @ R - R * kap) - self.aBy @ Om
        dOm = self.By.conj().T @ R - 1j * (zy[:, None] - kap[None, :]) * Om
        dlam = (1j * rho @ self.By - 1j * (H @ lam - lam * np.conj(zy)) - self.aBy @ Th
                - 1j * self.gBu @ K)
        BL = self.By.conj().T @ lam
        dTh = -1j * (zy[:, None] - np.conj(zy)[None, :]) * Th + BL - BL.conj().T
        BR = self.By.conj().T @ R[:, self.ubar]
        dK = -1j * (zeta[:, None] - np.conj(zy)[None, :]) * K + BR.conj().T
        return drho, dR, dlam, dOm, dTh, dK

    def currents(self, state) -> np.ndarray:
        """Re Tr Pi_alpha for every lead: the particles entering from lead alpha per unit time
        are twice these."""
        rho, R, lam = state[:3]
        out = np.zeros(len(self.leads))
        for k in range(len(self.leads)):
            mx = self.chan_lead[self.xc] == k
            my = self.chan_lead[self.yc] == k
            cs = self.chan_lead == k
            Gk = (self.B[:, cs] * np.array([f.wide for f, c in zip(self.tables.fits, cs) if c])
                  ) @ self.B[:, cs].conj().T
            Pi = ((R[:, mx] * self.cx[mx]) @ self.Bx[:, mx].conj().T
                  + (lam[:, my] * self.ca[my]) @ self.By[:, my].conj().T
                  + 0.25 * Gk - 0.5 * rho @ Gk)
            out[k] = np.trace(Pi).real
        return out

    def evolve(self, state, dt: float, n: int, V: Callable[[float], np.ndarray] | None = None,
               t0: float = 0.0):
        """n classic RK4 steps (V(t): the leads' potentials); returns the new state."""
        return rk4(lambda t, s: self.rhs(t, s, None if V is None else V(t)), state, dt, n, t0)


def _gamma(fit: LorentzianFit, zz: complex) -> complex:
    """Gamma_fit continued to complex zz: i sum_l a_l [1/(zz - z_l) - 1/(zz - conj z_l)]."""
    zl = fit.poles
    return complex(1j * np.sum(fit.a / (zz - zl) - np.conj(fit.a) / (zz - np.conj(zl)))
                   + fit.wide)


def _fpade(zz: complex, ld: LeadChannels) -> complex:
    """The Padé Fermi function of ``ld`` continued to complex zz."""
    beta = 1.0 / ld.temperature
    x = zz - ld.mu
    return complex(0.5 - np.sum(ld.poles.eta / beta * (1 / (x - 1j * ld.poles.xi / beta)
                                                       + 1 / (x + 1j * ld.poles.xi / beta))))
