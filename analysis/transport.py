"""Green-function transport through the open spin valve (paper 004, Eqs. 11-12, 16-18, App. E, G).

For a fixed spin configuration S and two leads l = ``leads[0]``, r = ``leads[1]`` (see
:mod:`operators.leads`), with G^R(eps) = (eps - H(S) - Sigma_l^R - Sigma_r^R)^-1, G^A = G^R^dag:

    theta(eps)     = Tr[Gamma_l G^R Gamma_r G^A]                         (Eq. 16)
    spin_r(eps)_a  = Tr[sigma_a Gamma_r G^R Gamma_l G^A]   a = x, y, z   (right interface)
    spin_l(eps)_a  = Tr[sigma_a Gamma_l G^R Gamma_r G^A]                 (left interface)
    polarization   = spin_r_z = Tr[(Gamma_r^up - Gamma_r^down) G^R Gamma_l G^A]     (Eq. 17)
    dos(eps)       = Tr i(G^R - G^A) / (2 pi N) = -Im Tr G^R / (pi N), N = sites (Eq. 18)

Which ordering of Eq. (17).  The spin current into a reservoir is (derived from Eqs. 4-8, and
tested against the bond spin current of the steady-state density matrix)
``(1/2pi) int (f_l - f_r) Tr[sigma_a Gamma_r G^R Gamma_l G^A]`` (spin measured where it enters the
lead, Landauer-Buttiker T_{r<-l}).  Eq. (17) as printed, Tr[Gamma_l G^R Gamma_r sigma_z G^A], is
the same number when H is real symmetric up to sigma_y, i.e. when every S_j lies in the xz plane
(the paper's configurations: PL along x, FL along z); for S_y != 0 the two differ, and its
y component has the opposite sign for every xz-plane configuration.  ``polarization_eq17`` keeps
the printed form for comparison.  Symmetries (tested): theta_rl = theta; 0 <= theta <= channels;
on a bipartite lattice with mu_bar = 0 theta(-eps) = theta(eps), polarization(-eps) =
-polarization(eps) and dos(-eps) = dos(eps) for any S (the antisymmetry of paper Fig. 19c).

Currents (:func:`landauer_current`, e = hbar = 1, per internal time unit hbar/E0):

    particle   = (1/2pi) int theta (f_l - f_r) deps          electrons per time, left -> right
    current    = particle / 2 = Re Tr Pi_l = -Re Tr Pi_r     paper Eq. (11) (its normalisation:
                 d Tr(rho)/dt from lead l is 2 Re Tr Pi_l by Eq. 4)
    spin_l_a   = (1/4pi) int spin_l_a (f_l - f_r) = +Re Tr(sigma_a Pi_l)   Eq. (12), from the left
                 reservoir into the valve
    spin_r_a   = (1/4pi) int spin_r_a (f_l - f_r) = -Re Tr(sigma_a Pi_r)   Eq. (12), from the valve
                 into the right reservoir
(the spin currents are fluxes of electron spin s = sigma/2 in units of hbar).  Linear response
(App. G): particle -> G0 V with G0 = theta(E_F)/(2pi) at T = 0 (one conductance quantum e^2/h
per fully open spin channel).

Modules.  :mod:`analysis.transport_green` (Green functions, :func:`transmission`),
:mod:`analysis.transport_landauer` (energy integrals: :func:`landauer_current`,
:func:`steady_state_density`, :func:`bond_currents`) and :mod:`analysis.transport_cli`
(``qcspin transport``: leads and bias from the config's ``[[leads]]``/``[bias]``, HDF5, PNG);
every public name is importable from here.

Methods.  Green functions: ``mumps`` (PETSc AIJ for A = eps - H - Sigma, KSP preonly + LU +
MUMPS; one numeric factorisation per energy reusing the symbolic one; G^R[:, interface] by
MatMatSolve against the n_I interface columns; Tr G^R from MUMPS's selected inverse entries
(ICNTL(30)) - scales to large sparse devices), ``dense`` (NumPy inverse per energy, the reference)
and ``eig`` (scipy.linalg.eig of the non-Hermitian H_eff = H + Sigma once, energy-independent
leads only: G^R(eps) = V (eps - Lambda)^-1 V^-1, Tr G^R = sum_n 1/(eps - lambda_n) - valid
because H + Sigma itself is diagonalised, not H; checked against a direct solve at two energies;
'auto' up to N_s = EIG_LIMIT).  Energy integrals: ``poles`` (exact for
wide-band leads: partial fractions of theta in the lambda_n and the digamma closed form of
int (f_l - f_r)/(eps - z); round-off ~ cond(V) x 1e-16) and ``quad`` (adaptive Gauss-Kronrod
15/7 on panels split at mu_l, mu_r and the resonances; exact Fermi functions; window mu -/+ 40 T,
tail < e^-40; reaches rtol = 1e-10 - checked against ``poles`` to 1e-9 in the tests).

MPI: energies are shared out over ``comm`` by ``distribute`` (default round robin); each rank
solves on PETSc.COMM_SELF and all ranks get all results.  PETSc options of the solvers are read
under ``-qcspin_transport_`` (e.g. ``-qcspin_transport_mat_mumps_icntl_14 50``).
"""
from __future__ import annotations

from analysis.transport_cli import CLI_DEFAULTS, TransportLeads, plot_transmission, transport_leads
from analysis.transport_green import (
                                    CURRENT_METHODS,
                                    EIG_LIMIT,
                                    METHODS,
                                    POLE_LIMIT,
                                    GreenSolver,
                                    Transmission,
                                    transmission,
)
from analysis.transport_landauer import (
                                    TAIL,
                                    LandauerCurrent,
                                    bond_currents,
                                    gauss_kronrod,
                                    landauer_current,
                                    steady_state_density,
)

__all__ = ["Transmission", "LandauerCurrent", "GreenSolver", "transmission", "landauer_current",
           "steady_state_density", "bond_currents", "gauss_kronrod", "METHODS",
           "CURRENT_METHODS", "EIG_LIMIT", "POLE_LIMIT", "TAIL", "plot_transmission",
           "transport_leads", "TransportLeads", "CLI_DEFAULTS"]
