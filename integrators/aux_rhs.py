"""Right-hand side of an open junction whose leads are auxiliary modes (operators/lorentzian.py:
the equations, derived there; ``representation = "modes"`` or ``"lorentzian"`` of a
tight-binding lead).  Wide-band couplings beside them (a wide-band lead, the absorbers of an
``"extended"`` lead) are channels without poles (``ElectronProblem``); the explicit sites of an
extended lead shift with its bias as -i V_l [P_l, rho], -i V_l P_l R and -i V_l P_l lambda.

State components: ``rho``; ``aux:R`` (N_s x n_x: the retarded vectors R_x, rows distributed
like rho) and ``aux:lambda`` (N_s x n_y), both column-major like every row-distributed
component; the second-tier matrices ``aux:Omega`` (n_y x n_x), ``aux:Theta`` (n_y x n_y),
``aux:K`` (n_u x n_y), row-major, as small components on rank 0.  Per evaluation: one sparse x
dense product of H with [R | lambda] (two products), the rank-m updates on the interface rows,
one allreduce of the small projections B^dag R, B^dag lambda and one broadcast of the small
matrices.  The real parts of all diagonal rates (Fermi poles xi_p/beta, Lorentzian widths) form
the linear part L for the exponential integrator (``solver.stiff``), like the pole decay of
wide-band leads.  Starts: the stationary state (:meth:`AuxiliaryLeads.stationary`, dense) or,
without explicit lead sites, the partitioned start (all auxiliaries 0).

One term of :class:`integrators.rhs.CoupledRHS`, :class:`AuxiliaryLeads`: sets every ``aux:*``
component, adds Pi + Pi^dag to rho; the bias of explicit lead sites is the separate term
``open_rhs.RigidShift`` (on rho, R and lambda).  :func:`AuxiliaryRHS` is the standard
composition Coherent + AuxiliaryLeads (+ RigidShift) + LLG.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from operators.hamiltonian import ElectronHamiltonian, gather_dense
from operators.lorentzian import ModeTables
from operators.spin import ClassicalSpinHamiltonian
from toolkit import kernels
from toolkit.parallel import allreduce, gather_rows_to, ranks_where

from .electrons import ElectronProblem, per_lead_poles
from .expint import combine_work
from .layout import StateLayout
from .open_rhs import RigidShift
from .rhs import LLG, Coherent, CoupledRHS, Evaluation, Term, minus_i_plus
from .stationary import effective_matrix

__all__ = ["AuxiliaryLeads", "AuxiliaryRHS", "aux_components"]


def _tables(problem: ElectronProblem):
    """(fits per channel, lead of each channel, interface orbitals I (all leads), B restricted
    to I: (n_I, channels))."""
    fits, chan_lead, I_all, blocks = [], [], [], []
    for k, I, C, ch in problem.auxiliary:
        fits += list(ch.fits)
        chan_lead += [k] * C.shape[1]
        I_all.append(I)
        blocks.append(C)
    I = np.concatenate(I_all)
    B = np.zeros((len(I), sum(C.shape[1] for C in blocks)), complex)
    r = c = 0
    for C in blocks:
        B[r:r + C.shape[0], c:c + C.shape[1]] = C
        r, c = r + C.shape[0], c + C.shape[1]
    return fits, np.array(chan_lead), I, B


def aux_components(problem: ElectronProblem, poles) -> tuple[list, list, ModeTables]:
    """(row-distributed components [(name, columns)], small components [(name, size)],
    ModeTables) of the auxiliary modes of ``problem`` with one PadePoles per lead."""
    fits, chan_lead, _, _ = _tables(problem)
    t = ModeTables(fits, chan_lead, [_Reservoir(l, p) for l, p in zip(problem.leads, poles)])
    return ([("aux:R", t.nx), ("aux:lambda", t.ny)],
            [("aux:Omega", t.ny * t.nx), ("aux:Theta", t.ny * t.ny), ("aux:K", t.nu * t.ny)], t)


def _runs(chan: np.ndarray) -> list[tuple[int, int, int]]:
    """[(start, end, channel)] of the runs of equal consecutive entries of ``chan``."""
    if len(chan) == 0:
        return []
    cut = np.flatnonzero(np.diff(chan)) + 1
    starts = np.concatenate([[0], cut])
    ends = np.concatenate([cut, [len(chan)]])
    return [(int(a), int(b), int(chan[a])) for a, b in zip(starts, ends)]


class _Reservoir:
    def __init__(self, lead, poles) -> None:
        self.mu, self.temperature, self.poles = lead.mu, lead.temperature, poles


class AuxiliaryLeads(Term):
    """The auxiliary modes of every lead (module docstring); :meth:`decay` is the real part of
    their diagonal rates.  Collective.

    ``problem``: the ElectronProblem (``problem.auxiliary``); ``poles``: one PadePoles per lead
    (or one for all).  Every pole of lead alpha moves with V_alpha(t) = mu_alpha(t) - mu_alpha
    (``Evaluation.V``: a rigid shift of the lead)."""

    name = "auxiliary-leads"
    offers = ("lead_currents", "stationary", "dense_reference")

    def __init__(self, problem: ElectronProblem, poles) -> None:
        leads = problem.leads
        per_lead = per_lead_poles(poles, len(leads))
        for l in leads:
            if l.temperature <= 0:
                raise ValueError(f"lead '{l.name}': temperature = {l.temperature} is not "
                                 f"allowed: the pole expansion needs temperature > 0")
        self.problem, self.poles = problem, per_lead
        fits, chan_lead, I, B = _tables(problem)
        self.t = ModeTables(fits, chan_lead, [_Reservoir(l, p) for l, p in zip(leads, per_lead)])
        self._fits, self.I, self.B_I = fits, I, B  # B_I (n_I, channels): B on the interface

    def bind(self, rhs: CoupledRHS) -> None:
        super().bind(rhs)
        if rhs.mu0 is None:
            raise ValueError("the auxiliary modes of the leads need the leads' mu0")
        H, layout, t, problem = rhs.H, rhs.layout, self.t, self.problem
        fits, I, B = self._fits, self.I, self.B_I
        self.sets = ("aux:R", "aux:lambda", "aux:Omega", "aux:Theta", "aux:K")
        self.adds = ("rho",)
        self.products = ("aux:R", "aux:lambda")
        self.chan_lead = t.chan_lead              # the lead of every channel
        d = H.dist
        r0, nloc, N = d.row_start, d.n_local_rows, layout.N
        mine = (I >= r0) & (I < r0 + nloc)
        self.loc_rows = I[mine] - r0              # local interface rows
        self.loc_k = np.flatnonzero(mine)         # their position in I
        self.B_loc = B[self.loc_k]                # local interface rows of B (n_loc_I, channels)
        self.Bx_loc = self.B_loc[:, t.xc]
        # B_y = B[:, yc] and B_u = B[:, uc] repeat a channel's column for each of its modes,
        # and the modes of a channel are consecutive: the products with B_y, B_u are done per
        # run of one channel (n_y n_x work instead of n_I n_y n_x, no n_y x n_x temporaries)
        self.y_runs = _runs(t.yc)
        self.u_runs = _runs(t.uc)
        self.Bx_I = B[:, t.xc].conj()             # for Pi = sum c R B^dag on the I columns
        self.By_I = B[:, t.yc].conj()
        self.cBx = np.ascontiguousarray((self.Bx_I * t.cx).T)   # (n_x, n_I): c_x B_x^dag
        self.cBy = np.ascontiguousarray((self.By_I * t.ca).T)   # (n_y, n_I)
        self.counts = np.array([2 * (b - a) for a, b in d.site_ranges])
        self.owners = ranks_where(len(self.loc_rows) > 0, H.comm)   # ranks with interface rows
        self.C_full = np.empty((N if len(self.loc_rows) or H.comm.getSize() == 1 else 0,
                                len(I)), complex)
        self._work = combine_work(layout)         # one chunk of columns (minus_i_plus)
        self.lead_of_I = np.concatenate([np.full(len(Ik), k) for k, Ik, _, _ in
                                         problem.auxiliary])
        # wide-band channels (wide-band leads beside auxiliary modes): their Gamma on the
        # interface, -i Gamma/2 in H for R and lambda, Gamma/4 - rho Gamma/2 in Pi
        wide = np.array([f.wide for f in fits])
        self.has_wide = bool(np.any(wide))
        self.Gw_I = (B * wide) @ B.conj().T            # (n_I, n_I) on the interface orbitals
        self.wide = wide
        rx, rl, ro, rt, rk = t.decay()
        self._decay = (rx, rl, ro, rt, rk)
        self._lin = {"aux:R": rx, "aux:lambda": rl}
        self._small_lin = {"aux:Omega": ro, "aux:Theta": rt, "aux:K": rk}

    def _shifts(self, V: np.ndarray):
        """V_l(t) per mode of each kind (x, y, u)."""
        tt, cl = self.t, self.chan_lead
        return V[cl[tt.xc]], V[cl[tt.yc]], V[cl[tt.uc]]

    def pi_columns(self, x: np.ndarray) -> np.ndarray:
        """Local rows of Pi (the sum over leads) on the interface columns, (n_loc, n_I)."""
        lay = self.rhs.layout
        R, lam = lay.view(x, "aux:R"), lay.view(x, "aux:lambda")
        C = R @ self.cBx
        C += lam @ self.cBy
        if self.has_wide:
            rho = lay.rho(x)
            C -= 0.5 * rho[:, self.I] @ self.Gw_I
            C[self.loc_rows] += 0.25 * self.Gw_I[self.loc_k]
        return C

    def evaluate(self, ev: Evaluation) -> None:
        rhs, tt, full = self.rhs, self.t, ev.full
        lay, comm, x, f = rhs.layout, rhs.H.comm, ev.x, ev.f
        rho, frho = lay.rho(x), lay.rho(f)
        R, lam = lay.view(x, "aux:R"), lay.view(x, "aux:lambda")
        fR, flam = lay.view(f, "aux:R"), lay.view(f, "aux:lambda")
        small = lay.small_values(x, copy=False)
        ny, nx, nu = tt.ny, tt.nx, tt.nu
        Om = small[:ny * nx].reshape(ny, nx)
        Th = small[ny * nx:ny * nx + ny * ny].reshape(ny, ny)
        K = small[ny * nx + ny * ny:].reshape(nu, ny)
        assert ev.V is not None    # CoupledRHS with mu0 (checked in bind)
        Vx, Vy, Vu = self._shifts(ev.V)
        kap = tt.kap + Vx
        zy = tt.z + Vy
        zeta = tt.zeta + Vu
        # the oscillating parts always, the real (decay) parts only in the full RHS
        kx = 1j * (kap if full else kap.real)
        kl = 1j * (np.conj(zy) if full else np.conj(zy).real)
        # rho: Pi + Pi^dag on the interface columns and rows
        C = self.pi_columns(x)
        frho[:, self.I] += C
        Cf = gather_rows_to(C, comm, self.counts, self.C_full, self.owners)
        if Cf is not None and len(self.loc_rows):
            frho[self.loc_rows, :] += Cf[:, self.loc_k].conj().T
        # R and lambda
        fR = rhs.times_h_into(x, f, "aux:R")             # H R, in place below
        minus_i_plus(fR, R, np.broadcast_to(kx, (R.shape[1],)), self._work)
        rows = self.loc_rows
        if len(rows):       # - B_y diag(a) Omega = - B (sum over each channel's y of a_y Omega_y)
            fR[rows] += -1j * self.Bx_loc - self.B_loc @ self._channel_sums(Om, tt.a)
        flam = rhs.times_h_into(x, f, "aux:lambda")
        minus_i_plus(flam, lam, np.broadcast_to(kl, (lam.shape[1],)), self._work)
        if len(rows):       # - B_y diag(a) Theta - i B_u diag(g) K
            flam[rows] -= self.B_loc @ self._channel_sums(Th, tt.a, K, tt.g)
        if self.has_wide:          # -Gamma/2 on the interface rows: needs Gamma[I, I] x(I)
            RI = np.zeros((len(self.I), tt.nx + tt.ny), complex)
            if len(rows):
                RI[self.loc_k, :tt.nx] = R[rows]
                RI[self.loc_k, tt.nx:] = lam[rows]
            RI = allreduce(RI, comm)
            if len(rows):
                upd = 0.5 * (self.Gw_I[self.loc_k] @ RI)
                fR[rows] -= upd[:, :tt.nx]
                flam[rows] -= upd[:, tt.nx:]
        G = 1j * (rho[:, self.I] @ self.B_I)               # + i rho B_y, per channel's run
        for s0, s1, c in self.y_runs:
            flam[:, s0:s1] += G[:, c][:, None]
        # small matrices: the projections P_R = B^dag R, P_L = B^dag lambda (channels x modes)
        # over all ranks; B_y^dag R = P_R[yc] row by row (one row per channel's run)
        nch = self.B_loc.shape[1]
        P = np.zeros((nch, nx + ny), complex)
        if len(rows):
            Bh = self.B_loc.conj().T
            P[:, :nx] = Bh @ R[rows]
            P[:, nx:] = Bh @ lam[rows]
        P = allreduce(P, comm)
        PR, PL = P[:, :nx], P[:, nx:]
        if lay.rank == 0:
            fOm, fTh, fK = (lay.small(f, "aux:Omega"), lay.small(f, "aux:Theta"),
                            lay.small(f, "aux:K"))
            assert fOm is not None and fTh is not None and fK is not None  # rank 0 holds them
            fOm, fTh, fK = fOm.reshape(ny, nx), fTh.reshape(ny, ny), fK.reshape(nu, ny)
            if kernels.available():     # one compiled pass, the rates from the energies
                kernels.second_tier(zy, kap, zeta, full, Om, Th, K, np.ascontiguousarray(PR),
                                    np.ascontiguousarray(PL), tt.yc, tt.ubar, fOm, fTh, fK)
                return
            ro, rt, rk = self._rates(full, Vx, Vy, Vu, kap, zy, zeta)
            # in place: no temporaries of the big matrices
            np.multiply(ro, Om, out=fOm)       # d Omega = r Omega + B_y^dag R
            np.multiply(rt, Th, out=fTh)       # d Theta = r Theta + B_y^dag lam - (..)^dag
            np.multiply(rk, K, out=fK)         # d K = r K + (B_y^dag R)[:, ubar]^dag
            Q = PR[:, tt.ubar].conj().T        # (n_u, channels)
            PLc = PL.conj()
            for s0, s1, c in self.y_runs:
                fOm[s0:s1] += PR[c]
                fTh[s0:s1] += PL[c]
                fTh[:, s0:s1] -= PLc[c][:, None]
                fK[:, s0:s1] += Q[:, c][:, None]

    def _channel_sums(self, Y, a, K=None, g=None) -> np.ndarray:
        """(channels, columns): row c = sum over the y of channel c of a_y Y[y] (+ i times the
        sum over the u of channel c of g_u K[u], with ``K`` and ``g``)."""
        S = np.zeros((self.B_loc.shape[1], Y.shape[1]), complex)
        for s0, s1, c in self.y_runs:
            S[c] += a[s0:s1] @ Y[s0:s1]
        if K is not None:
            for s0, s1, c in self.u_runs:
                S[c] += 1j * (g[s0:s1] @ K[s0:s1])
        return S

    def _rates(self, full, Vx, Vy, Vu, kap, zy, zeta):
        """The rate matrices of Omega, Theta, K (only their imaginary parts for the nonstiff
        part), cached while the bias does not change."""
        key = (full, Vx.tobytes(), Vy.tobytes(), Vu.tobytes())
        if getattr(self, "_rate_key", None) != key:
            ro = -1j * (zy[:, None] - kap[None, :])
            rt = -1j * (zy[:, None] - np.conj(zy)[None, :])
            rk = -1j * (zeta[:, None] - np.conj(zy)[None, :])
            if not full:      # only the imaginary parts of the rates
                ro, rt, rk = (1j * r.imag for r in (ro, rt, rk))
            self._rate_key, self._rate_val = key, (ro, rt, rk)
        return self._rate_val

    def dense_reference(self, V: np.ndarray | None = None):
        """operators.lorentzian.AuxiliaryModes of the same H, channels and poles (the dense
        serial reference of these equations); ``V`` (per lead): the bias shift of explicit
        lead sites in H (default none).  Collective (gathers H)."""
        from operators.lorentzian import AuxiliaryModes, LeadChannels

        Hp = self.rhs.H
        if V is None or not self.problem.shifts:
            H = Hp.to_dense()
        else:      # H + sum_l V_l P_l: the one construction (no couplings here: no Gamma)
            A = effective_matrix(Hp, self.problem, V)
            H = gather_dense(A, self.rhs.layout.N, Hp.comm)
            A.destroy()
        leads = []
        for (k, I, C, ch) in self.problem.auxiliary:
            B = np.zeros((H.shape[0], C.shape[1]), complex)
            B[I] = C
            leads.append(LeadChannels(B, list(ch.fits), ch.mu, ch.temperature, self.poles[k]))
        return AuxiliaryModes(H, leads)

    def stationary(self, mu: np.ndarray | None = None) -> dict:
        """The stationary state of the spins in H for the leads' chemical potentials ``mu``
        (default: their mu; a lead's poles move with mu - lead.mu): {component: full array}
        (operators.lorentzian.AuxiliaryModes.stationary: closed forms plus bias-window
        integrals; dense, the same on every rank).  Collective (gathers H)."""
        mu0 = self.rhs.mu0
        assert mu0 is not None     # checked in bind
        V = None if mu is None else np.asarray(mu, float) - mu0
        rho, R, lam, Om, Th, K = self.dense_reference(V).stationary(V)
        return {"rho": rho, "aux:R": R, "aux:lambda": lam, "aux:Omega": Om.ravel(),
                "aux:Theta": Th.ravel(), "aux:K": K.ravel()}

    def decay(self) -> tuple[dict, dict]:
        """The real parts of the diagonal rates (module docstring) as the linear part L."""
        return self._lin, self._small_lin

    def lead_currents(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Re Tr Pi_alpha and Re Tr(sigma_a Pi_alpha) of every lead (positive into the
        device).  Collective."""
        lay, tt = self.rhs.layout, self.t
        R, lam = lay.view(x, "aux:R"), lay.view(x, "aux:lambda")
        n_leads = len(self.problem.leads)
        lead_x = self.chan_lead[tt.xc]
        lead_y = self.chan_lead[tt.yc]
        nI = len(self.I)
        out = np.zeros((n_leads, nI, nI), complex)
        for k in range(n_leads):
            mx, my = lead_x == k, lead_y == k
            Ck = ((R[:, mx] * tt.cx[mx]) @ self.Bx_I[:, mx].T
                  + (lam[:, my] * tt.ca[my]) @ self.By_I[:, my].T)
            out[k][self.loc_k] = Ck[self.loc_rows]
        if self.has_wide:
            rho = lay.rho(x)
            for k in range(n_leads):
                sel = np.flatnonzero(self.lead_of_I == k)
                if not np.any(self.wide[self.chan_lead == k]):
                    continue
                Gk = np.zeros_like(self.Gw_I)
                Gk[np.ix_(sel, sel)] = self.Gw_I[np.ix_(sel, sel)]
                Ck = -0.5 * rho[:, self.I] @ Gk
                Ck[self.loc_rows] += 0.25 * Gk[self.loc_k]
                out[k][self.loc_k] += Ck[self.loc_rows]
        out = allreduce(out, self.rhs.H.comm)
        charge = np.zeros(n_leads)
        spin = np.zeros((n_leads, 3))
        for k, _Ik, _, _ in self.problem.auxiliary:
            sel = np.flatnonzero(self.lead_of_I == k)
            P = out[k][np.ix_(sel, sel)]
            n = len(sel)
            charge[k] = np.trace(P).real
            blk = P.reshape(n // 2, 2, n // 2, 2)[np.arange(n // 2), :, np.arange(n // 2), :]
            spin[k, 0] = (blk[:, 1, 0] + blk[:, 0, 1]).sum().real
            spin[k, 1] = (1j * blk[:, 0, 1] - 1j * blk[:, 1, 0]).sum().real
            spin[k, 2] = (blk[:, 0, 0] - blk[:, 1, 1]).sum().real
        return charge, spin



def AuxiliaryRHS(H: ElectronHamiltonian, spinH: ClassicalSpinHamiltonian, layout: StateLayout,
                 problem: ElectronProblem, poles,
                 mu_of_t: Callable[[float], np.ndarray] | None = None) -> CoupledRHS:
    """The right-hand side of an open junction with auxiliary-mode leads: Coherent,
    AuxiliaryLeads, RigidShift (explicit lead sites, if any) and LLG.  ``mu_of_t``: the
    leads' chemical potentials at t (bias protocol; default the constant ``lead.mu``)."""
    terms: list[Term] = [Coherent(), AuxiliaryLeads(problem, poles)]
    if problem.shifts:
        terms.append(RigidShift(problem))
    terms.append(LLG())
    return CoupledRHS(H, spinH, layout, terms, mu0=np.array([l.mu for l in problem.leads],
                                                             float), mu_of_t=mu_of_t)
