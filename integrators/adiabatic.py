"""The adiabatic equilibrium of the instantaneous spins: rho_eq(M(t)) of paper 000 Eqs. (6)-(8).

rho_eq is the grand-canonical equilibrium of the electron problem for the classical vectors
frozen at their current directions, with the leads in the representation of the run (wide-band
Pade blocks, auxiliary modes, or explicit sites with absorbers) and their own Pade poles:

    rho_eq = 1/2 + (1/beta) sum_p eta_p [G(chi_p) + G(chi_p)^dag],   chi_p = mu + i xi_p/beta,
    G(z)   = (z - H(M) - Sigma(z))^-1,

the fixed point of the run's equations of motion at zero bias (operators.lorentzian
AuxiliaryModes.equilibrium, integrators.stationary.equilibrium_density), so that a run started
in it has rho - rho_eq = 0 to round-off.  Bound states (levels outside the lead band, e.g. the
seed spin valve's level at -2.03 eV) are occupied with the Pade Fermi function at their energy,
like every other level: the pole sum does not distinguish them.

Only the s-d blocks of the moving vectors change with time.  With m = their orbitals (2 per
vector) and V(M) the block diagonal of J_sd/2 sigma.M on them, Dyson's equation restricted to m
gives

    G_mm(chi_p; M) = [D_p - V(M)]^-1,   D_p = [G0(chi_p)_mm]^-1,

with G0 the Green function without those blocks, computed once.  One evaluation is then a
batched inverse of N_p matrices of size 2 n_moving, independent of the number of orbitals and of
the lead representation (paper 000's AFI junction: 20 poles x 46 x 46).  The setup gathers the
dense H once (small and medium devices; the state of the run is dense anyway).

:meth:`AdiabaticEquilibrium.spin_density` gives s_eq = Tr(rho_eq,jj sigma)/2 of every moving
vector (qcspin's s; paper 000's <s> is twice it), :meth:`density` the whole dense rho_eq (for
observables at output times).
"""
from __future__ import annotations

import numpy as np

from operators.hamiltonian import ElectronHamiltonian, gather_dense, sd_blocks
from operators.pade import PadePoles
from toolkit.blas import single_thread

from .electrons import ElectronProblem, per_lead_poles
from .stationary import effective_matrix

__all__ = ["AdiabaticEquilibrium", "CurrentDrivenSpinDensity", "current_driven_source"]

_SIGMA = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], complex)


def _reference(problem: ElectronProblem, poles) -> tuple[float, float, PadePoles]:
    """(mu, temperature, poles) shared by every lead: the equilibrium needs one of each."""
    leads = problem.leads
    if not leads:
        raise ValueError("the adiabatic equilibrium rho_eq(M) needs leads (a reservoir)")
    per = per_lead_poles(poles, len(leads))
    l0, p0 = leads[0], per[0]
    for l, p in zip(leads, per):
        if (l.mu, l.temperature) != (l0.mu, l0.temperature) or not np.array_equal(p.xi, p0.xi):
            raise ValueError(
                f"lead '{l.name}': mu = {l.mu}, temperature = {l.temperature}, {p.n_poles} "
                f"poles is not allowed for rho_eq(M) (llg.drive = 'current-driven', the "
                f"current-driven observables): it is one equilibrium, every lead needs "
                f"the mu, temperature and Pade poles of lead "
                f"'{l0.name}' ({l0.mu}, {l0.temperature}, {p0.n_poles}); bias the run with "
                f"[bias] instead")
        if l.temperature <= 0:
            raise ValueError(f"lead '{l.name}': temperature = {l.temperature} is not allowed: "
                             f"the pole sum needs temperature > 0")
    return float(l0.mu), float(l0.temperature), p0


class AdiabaticEquilibrium:
    """rho_eq(M) of the instantaneous classical vectors (module docstring).  Collective setup
    (gathers H once); the evaluations are local and the same on every rank.

    ``H``: the ElectronHamiltonian with the spins of the configuration at hand (any); ``problem``
    and ``poles``: the run's electron problem and Pade poles; ``moving``: indices of the
    vectors whose s-d blocks change (default: those not frozen)."""

    def __init__(self, H: ElectronHamiltonian, problem: ElectronProblem, poles,
                 S_all: np.ndarray, moving: np.ndarray | None = None) -> None:
        self.mu, self.temperature, self.poles = _reference(problem, poles)
        dev = H.device
        beta = 1.0 / self.temperature
        self.beta = beta
        if moving is None:
            moving = np.flatnonzero(~np.asarray(dev.frozen, bool))
        self.moving = np.asarray(moving, int)
        self.J_sd = np.asarray(dev.J_sd, float)[self.moving]
        sites = dev.spin_sites[self.moving]
        self.orbitals = np.stack([2 * sites, 2 * sites + 1], axis=1).ravel()
        N = dev.n_orbitals
        self.N = N
        A = effective_matrix(H, problem)       # H - i Gamma/2 of the wide-band couplings
        try:
            Heff = gather_dense(A, N, H.comm)
        finally:
            A.destroy()
        # the Hamiltonian without the s-d blocks of the moving vectors
        S_all = np.asarray(S_all, float)
        Heff -= self._potential(S_all, full=N)
        self._fits: list[tuple] = []
        for _k, I, C, ch in problem.auxiliary:
            B = np.zeros((N, C.shape[1]), complex)
            B[np.asarray(I)] = C
            self._fits.extend((ch.fits[c], B[:, c]) for c in range(C.shape[1]))
        self.chi = self.mu + 1j * np.asarray(self.poles.xi) / beta
        self.eta = np.asarray(self.poles.eta, float)
        eye = np.eye(N)
        m = self.orbitals
        self._G0 = np.empty((len(self.chi), N, N), complex)
        for p, z in enumerate(self.chi):
            Az = z * eye - Heff - self._selfenergy(z)
            self._G0[p] = np.linalg.inv(Az)
        self._D = np.linalg.inv(self._G0[:, m][:, :, m])       # (N_p, 2n, 2n)
        self._groups = self._coupled_groups()
        self.n_evaluations = 0

    def _coupled_groups(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The moving vectors in groups that D couples (paper 000's AFI: its 18 interior
        sites have no hopping, so each is a group of its own): [(moments (c, k), D blocks
        (N_p, c, 2k, 2k))] per group size k.  Entries below 1e-13 of the largest count as 0
        (an error of that relative size)."""
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import connected_components

        n = len(self.moving)
        if n == 0:
            return []
        mag = np.abs(self._D).max(axis=0)
        site = (mag > 1e-13 * mag.max()).reshape(n, 2, n, 2).any(axis=(1, 3))
        _, label = connected_components(csr_matrix(site), directed=False)
        comps = [np.flatnonzero(label == c) for c in range(label.max() + 1)]
        out = []
        for k in sorted({len(c) for c in comps}):
            mom = np.array([c for c in comps if len(c) == k])           # (c, k)
            orb = np.stack([2 * mom, 2 * mom + 1], axis=-1).reshape(len(mom), 2 * k)
            out.append((mom, self._D[:, orb[:, :, None], orb[:, None, :]]))
        return out

    def _selfenergy(self, z: complex) -> np.ndarray:
        S = np.zeros((self.N, self.N), complex)
        for fit, b in self._fits:
            S += fit(z) * np.outer(b, b.conj())
        return S

    def _potential(self, S_all: np.ndarray, full: int | None = None) -> np.ndarray:
        """V(M): J_sd/2 sigma.M of the moving vectors, (2n, 2n) block diagonal (or placed in an
        (full, full) matrix)."""
        n = len(self.moving)
        blk = sd_blocks(self.J_sd, np.asarray(S_all, float)[self.moving])   # (4, n)
        V = np.zeros((2 * n, 2 * n), complex)
        i = 2 * np.arange(n)
        V[i, i], V[i, i + 1], V[i + 1, i], V[i + 1, i + 1] = blk
        if full is None:
            return V
        out = np.zeros((full, full), complex)
        out[np.ix_(self.orbitals, self.orbitals)] = V
        return out

    def _green_mm(self, S_all: np.ndarray) -> np.ndarray:
        self.n_evaluations += 1
        with single_thread():          # small batched inverses: threads only cost
            return np.linalg.inv(self._D - self._potential(S_all)[None])

    def spin_density(self, S_all: np.ndarray) -> np.ndarray:
        """s_eq,j = Tr(rho_eq,jj sigma)/2 of every moving vector, (n_moving, 3): one batched
        inverse per group of coupled vectors (:meth:`_coupled_groups`)."""
        self.n_evaluations += 1
        n = len(self.moving)
        blk = sd_blocks(self.J_sd, np.asarray(S_all, float)[self.moving])   # (4, n)
        v = blk.T.reshape(n, 2, 2)                                        # V_jj per vector
        R = np.zeros((n, 2, 2), complex)
        w = self.eta / self.beta
        with single_thread():          # small batched inverses: threads only cost
            for mom, D in self._groups:
                c, k = mom.shape
                V = np.zeros((c, k, 2, k, 2), complex)
                j = np.arange(k)
                V[:, j, :, j, :] = np.swapaxes(v[mom], 0, 1)
                G = np.linalg.inv(D - V.reshape(1, c, 2 * k, 2 * k))        # (N_p, c, 2k, 2k)
                Gd = G.reshape(-1, c, k, 2, k, 2)[:, :, j, :, j, :]          # (k, N_p, c, 2, 2)
                R[mom] = np.swapaxes(np.einsum("p,kpcab->kcab", w, Gd), 0, 1)
        # 2x2 diagonal blocks of sum_p eta_p/beta (G + G^dag); the 1/2 of rho has no spin
        R = R + np.conj(np.swapaxes(R, -1, -2))
        # s_a = Tr(rho sigma_a)/2 = sum_bc rho_bc sigma_a,cb / 2
        return 0.5 * np.einsum("nbc,acb->na", R, _SIGMA).real

    def density(self, S_all: np.ndarray) -> np.ndarray:
        """The whole dense rho_eq(M) (N x N): G = G0 + G0[:, m] T G0[m, :] with
        T = (1 - V G0_mm)^-1 V (Dyson)."""
        V = self._potential(S_all)
        m = self.orbitals
        rho = 0.5 * np.eye(self.N, dtype=complex)
        eye = np.eye(len(m))
        for p in range(len(self.chi)):
            G0 = self._G0[p]
            T = np.linalg.solve(eye - V @ G0[np.ix_(m, m)], V)
            G = G0 + G0[:, m] @ T @ G0[m, :]
            rho += (self.eta[p] / self.beta) * (G + G.conj().T)
        return rho


class CurrentDrivenSpinDensity:
    """The :class:`integrators.rhs.SpinDensitySource` of ``[llg] drive = "current-driven"``:
    s_CD,j = Tr((rho - rho_eq(M(t))) sigma)/2 on this rank's moving vectors (paper 000 Eq. 6,
    halved), rho_eq recomputed from the spins of every evaluation (every stage of the
    integrator).  Frozen vectors get the full s (their equation of motion is not used)."""

    def __init__(self, H: ElectronHamiltonian, equilibrium: AdiabaticEquilibrium) -> None:
        from operators.observables import diag_block_indices

        d = H.dist
        self.eq = equilibrium
        sites = H.device.spin_sites[d.spin_start:d.spin_stop]
        self.idx = diag_block_indices(sites, d.site_start, d.n_local_rows)
        mv = equilibrium.moving
        mine = (mv >= d.spin_start) & (mv < d.spin_stop)
        self.rows = mv[mine] - d.spin_start            # local spin rows that move
        self.pick = np.flatnonzero(mine)               # their place in eq.moving

    def __call__(self, t: float, x: np.ndarray, S_all: np.ndarray) -> np.ndarray:
        from operators.observables import spin_density_local

        s = spin_density_local(x, self.idx)
        s[self.rows] -= self.eq.spin_density(S_all)[self.pick]
        return s


def current_driven_source(H: ElectronHamiltonian, layout, problem: ElectronProblem, poles,
                          mu_of_t=None) -> CurrentDrivenSpinDensity:
    """The ``build_simulation(spin_density=...)`` factory of ``[llg] drive =
    "current-driven"``: rho_eq of the spins H holds now (the device's initial spins).
    Collective."""
    S0 = np.asarray(H.device.spins0, float)
    return CurrentDrivenSpinDensity(H, AdiabaticEquilibrium(H, problem, poles, S0))
