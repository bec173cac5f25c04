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

from .electrons import ElectronProblem, per_lead_poles
from .stationary import effective_matrix

__all__ = ["AdiabaticEquilibrium"]

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
                f"poles is not allowed with llg.drive = 'current-driven': rho_eq(M) is one "
                f"equilibrium, every lead needs the mu, temperature and Pade poles of lead "
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
        self._fits = []
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
        self.n_evaluations = 0

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
        return np.linalg.inv(self._D - self._potential(S_all)[None])

    def spin_density(self, S_all: np.ndarray) -> np.ndarray:
        """s_eq,j = Tr(rho_eq,jj sigma)/2 of every moving vector, (n_moving, 3)."""
        G = self._green_mm(S_all)
        n = len(self.moving)
        i = 2 * np.arange(n)
        # 2x2 diagonal blocks (N_p, n, 2, 2) of sum_p eta_p/beta (G + G^dag); the 1/2 of rho
        # has no spin
        blocks = np.stack([np.stack([G[:, i, i], G[:, i, i + 1]], -1),
                           np.stack([G[:, i + 1, i], G[:, i + 1, i + 1]], -1)], -2)
        R = np.einsum("p,pnab->nab", self.eta / self.beta, blocks)
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
