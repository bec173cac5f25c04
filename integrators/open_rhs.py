"""Right-hand side of an open junction (paper 004, Eqs. 4, 8, 9), generic over lead models.

Every lead reaches the equations of motion through its time-domain representation
(``operators.leads.LeadModes``, resolved by :class:`integrators.electrons.ElectronProblem`):
explicit lead sites are part of H and rho, and every wide-band coupling l (a wide-band lead on
the device's face, or the graded absorbers of an extended tight-binding lead) adds its Padé
block Pi_l:

    d rho/dt      = -i [H, rho] + sum_l (Pi_l + Pi_l^dag)
    Pi_l          = (1 - 2 rho) Gamma_l / 4 + sum_p Pi_{l,p}
    d Pi_{l,p}/dt = -i eta_p/beta_l Gamma_l - i (H - i Gamma/2 - chi_{l,p}^+) Pi_{l,p},
    chi_{l,p}^+   = mu_l(t) + i xi_p/beta_l,   Gamma = sum_l Gamma_l

Gamma_l is diagonal (gamma_l[k] on the interface orbital I_l[k] of coupling l), so Pi_{l,p} is
nonzero only in the columns I_l and is stored compactly: all poles of a coupling in one dense
component of N_s x (N_p n_l) columns (column p n_l + k <-> pole p, orbital I_l[k]).  (H Pi) is
one sparse x dense product per coupling; the Gamma terms are dense products on the interface
rows only.  A bias V_l(t) = mu_l(t) - mu_l shifts lead l rigidly: the reservoirs' mu and the
on-site energy of its explicit sites P_l, i.e. -i V_l [P_l, rho] in d rho/dt and -i V_l P_l Pi
in every d Pi/dt.

Three terms of :class:`integrators.rhs.CoupledRHS` (the composition in its module docstring):
:class:`PadeLeads` (all wide-band couplings: their blocks share Gamma = sum_l Gamma_l in
H - i Gamma/2) and :class:`RigidShift` (the bias of explicit lead sites, shared with the
auxiliary-mode leads of integrators/aux_rhs.py); :func:`OpenRHS` is the standard composition
Coherent + PadeLeads + RigidShift + LLG.  For the stiff integrators (``solver.stiff``) the
right-hand side is split as dy/dt = L y + N(t, y): :meth:`PadeLeads.decay` is the pole decay
L = -(xi_p/beta_l) (the real part of i chi^+_p, diagonal) and ``CoupledRHS.nonstiff`` evaluates
N, everything else.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from operators.hamiltonian import ElectronHamiltonian
from operators.pade import PadePoles
from operators.spin import ClassicalSpinHamiltonian
from toolkit.parallel import allreduce, gather_rows_to, ranks_where

from .electrons import Coupling, ElectronProblem, per_lead_poles
from .expint import combine_work
from .layout import StateLayout
from .rhs import LLG, Coherent, CoupledRHS, Evaluation, Term, kernel_left, minus_i_plus

__all__ = ["PadeLeads", "RigidShift", "OpenRHS", "LeadBlock", "rigid_shift"]


def _runs(idx: np.ndarray) -> list[tuple[int, int]]:
    """Sorted distinct integers as maximal runs [a, b) of consecutive values."""
    if not len(idx):
        return []
    cut = np.flatnonzero(np.diff(idx) != 1) + 1
    starts = np.concatenate([[0], cut])
    stops = np.concatenate([cut, [len(idx)]])
    return [(int(idx[a]), int(idx[b - 1]) + 1) for a, b in zip(starts, stops)]


def _index(idx: np.ndarray) -> slice | np.ndarray:
    """``idx`` as a slice if it is one run of consecutive integers (a view instead of a
    fancy-indexed copy), else ``idx`` itself: the same entries either way."""
    r = _runs(np.asarray(idx))
    return slice(*r[0]) if len(r) == 1 else idx


def rigid_shift(shifts, V: np.ndarray, rho: np.ndarray, frho: np.ndarray, pairs) -> None:
    """Add the bias shift of explicit lead sites to a right-hand side: -i V_l [P_l, rho] to
    d rho/dt and -i V_l P_l X to dX/dt for every row-distributed (X, dX/dt) in ``pairs`` (the
    components that H multiplies from the left).  ``shifts``:
    :meth:`ElectronProblem.local_shifts`; ``V``: V_l per lead."""
    for k, rows, cols in shifts:
        v = float(V[k])
        if v == 0.0:
            continue
        frho[rows, :] -= (1j * v) * rho[rows, :]
        frho[:, cols] += (1j * v) * rho[:, cols]
        for X, fX in pairs:
            fX[rows] -= (1j * v) * X[rows]


class RigidShift(Term):
    """The bias V_l(t) = mu_l(t) - mu_l of the explicit sites P_l of lead l (a rigid shift of
    the lead: their on-site energy moves with its reservoirs' mu): -i V_l [P_l, rho] in
    d rho/dt and -i V_l P_l X in dX/dt for every row-distributed lead component X (Padé blocks,
    auxiliary vectors: H multiplies them from the left).  Adds to rho and every X."""

    name = "rigid-shift"

    def __init__(self, problem: ElectronProblem) -> None:
        self.problem = problem

    def bind(self, rhs: CoupledRHS) -> None:
        super().bind(rhs)
        if rhs.mu0 is None:
            raise ValueError("the rigid shift of explicit lead sites needs the leads' mu0")
        d = rhs.H.dist
        # explicit lead orbitals: (lead, local rows, all columns) that shift with V_l(t)
        self.shifts = self.problem.local_shifts(d.row_start, d.n_local_rows)
        self.components = rhs.layout.aux_names
        self.adds = ("rho", *self.components)

    def evaluate(self, ev: Evaluation) -> None:
        V = ev.V
        assert V is not None       # CoupledRHS with mu0 (checked in bind)
        if not any(V[k] != 0.0 for k, _, _ in self.shifts):
            return
        lay, x, f = self.rhs.layout, ev.x, ev.f
        rigid_shift(self.shifts, V, lay.rho(x), lay.rho(f),
                    [(lay.view(x, n), lay.view(f, n)) for n in self.components])


class LeadBlock:
    """Constants and work arrays of one wide-band coupling (on one rank)."""

    def __init__(self, c: Coupling, poles: PadePoles, H: ElectronHamiltonian,
                 layout: StateLayout) -> None:
        if c.temperature <= 0:
            raise ValueError(f"lead component '{c.name}': temperature = {c.temperature} is not "
                             f"allowed: the pole expansion needs temperature > 0")
        d = H.dist
        r0, r1 = d.row_start, d.row_start + d.n_local_rows
        self.name, self.index = c.name, c.lead_index
        self.I = np.asarray(c.interface, dtype=np.int64)
        self.n = len(self.I)
        self.g = np.asarray(c.gamma, float)        # Gamma per interface orbital
        self.half_g = 0.5 * self.g
        self.quarter_g = 0.25 * self.g
        self.beta = 1.0 / c.temperature
        self.n_poles = poles.n_poles
        self.cols = self.n_poles * self.n
        mine = (self.I >= r0) & (self.I < r1)
        self.loc_rows = self.I[mine] - r0          # local rows that are interface orbitals
        self.loc_k = np.flatnonzero(mine)          # their index k in I
        xi = np.repeat(poles.xi, self.n)           # column c = p n + k
        self.decay = -xi / self.beta               # real part of i chi^+
        self.src_rows = np.tile(self.loc_rows, self.n_poles)
        self.src_cols = (np.arange(self.n_poles)[:, None] * self.n + self.loc_k[None, :]).ravel()
        self.src_vals = np.tile((-1j * self.g[self.loc_k]) / self.beta, self.n_poles) \
            * np.repeat(poles.eta, len(self.loc_k))
        self.counts = np.array([2 * (b - a) for a, b in d.site_ranges])
        self.owners = ranks_where(len(self.loc_rows) > 0, H.comm)   # ranks with I_l rows
        self.C_sum = np.zeros((0, self.n), complex)  # the kernels' pole sum (PadeLeads.bind)
        # the interface as slices where it is one run of orbitals (a face, an absorber slab):
        # views instead of fancy-indexed copies in the right-hand side
        self.I_at, self.rows_at, self.k_at = (_index(i) for i in (self.I, self.loc_rows,
                                                                  self.loc_k))
        self._tmp = np.empty((0, self.n), complex)
        self.C_full = np.empty((layout.N, self.n), complex) if len(self.loc_rows) \
            or H.comm.getSize() == 1 else np.empty((0, self.n), complex)


class PadeLeads(Term):
    """The Padé blocks of every wide-band coupling (module docstring): sets each ``pi:*``
    component, adds sum_l (Pi_l + Pi_l^dag) to rho; the pole decay is its :meth:`decay`.

    ``problem``: the ElectronProblem (its couplings); ``poles``: one PadePoles per lead (or one
    for all).  The bias enters through mu(t) (``Evaluation.mu``) in chi^+."""

    name = "pade-leads"
    offers = ("lead_currents",)

    def __init__(self, problem: ElectronProblem, poles) -> None:
        self.problem = problem
        self.poles = per_lead_poles(poles, len(problem.leads))  # one PadePoles per lead

    def bind(self, rhs: CoupledRHS) -> None:
        super().bind(rhs)
        H, layout = rhs.H, rhs.layout
        if rhs.mu0 is None:
            raise ValueError("the Padé blocks of the leads need the leads' mu0")
        self.blocks = [LeadBlock(c, self.poles[c.lead_index], H, layout)
                       for c in self.problem.couplings]
        want = tuple((b.name, b.cols) for b in self.blocks)
        have = tuple((n, layout.columns(n)) for n in layout.aux_names)
        if want != have:
            raise ValueError(f"state layout does not match the leads (components {have} vs "
                             f"{want})")
        self.sets = tuple(b.name for b in self.blocks)
        self.adds = ("rho",)
        self.products = self.sets
        nloc = layout.nloc
        g = np.zeros(nloc)
        for b in self.blocks:
            g[b.loc_rows] += b.g[b.loc_k]
        self.g_rows = np.flatnonzero(g)              # local rows on any interface
        self.g_half = 0.5 * g[self.g_rows][:, None]  # Gamma/2 on those rows
        # the same as contiguous row ranges (faces and absorbers are slabs of orbitals):
        # slices of the column-major blocks, no fancy-indexed copies
        self.g_slices = [(slice(a, b_), 0.5 * g[a:b_, None]) for a, b_ in _runs(self.g_rows)]
        self._work = combine_work(layout)              # one chunk of columns
        self.minus_g_half = -0.5 * g                   # -Gamma/2 per local row
        if rhs.H.diagonals is not None:
            for b in self.blocks:                      # the pole sum the kernel writes
                b.C_sum = np.zeros((nloc, b.n), complex, order="F")

    @classmethod
    def lead_matrix(cls, b: LeadBlock, rho: np.ndarray, B: np.ndarray) -> np.ndarray:
        """Local rows of C_l = (1 - 2 rho)[:, I_l] Gamma_l/4 + sum_p Pi_{l,p}, (n_loc, n_l):
        Pi_l restricted to its nonzero columns."""
        C = B.reshape((B.shape[0], b.n, b.n_poles), order="F").sum(axis=2)
        return cls.finish_lead_matrix(b, rho, C)

    @staticmethod
    def finish_lead_matrix(b: LeadBlock, rho: np.ndarray, C: np.ndarray) -> np.ndarray:
        """C_l from the pole sum ``C`` = sum_p Pi_{l,p} (in place)."""
        if b._tmp.shape != C.shape:
            b._tmp = np.empty(C.shape, complex, order="F")
        C -= np.multiply(rho[:, b.I_at], b.half_g, out=b._tmp)
        C[b.loc_rows, b.loc_k] += b.quarter_g[b.loc_k]
        return C

    def evaluate(self, ev: Evaluation) -> None:
        rhs = self.rhs
        lay, x, f = rhs.layout, ev.x, ev.f
        rho, frho = lay.rho(x), lay.rho(f)
        mu = ev.mu
        assert mu is not None      # CoupledRHS with mu0 (checked in bind)
        dia = rhs.H.diagonals
        for b in self.blocks:
            B = lay.view(x, b.name)
            coef = 1j * mu[b.index] + (b.decay if ev.full else np.zeros(b.cols))
            if dia is not None:
                # the compiled kernel: -i (H - i Gamma/2) Pi + i chi^+ Pi and the pole sum
                # of C_l in one pass over Pi (toolkit/kernels.py; halo rows under MPI)
                fB = lay.view(f, b.name)
                C = b.C_sum
                C.fill(0.0)
                kernel_left(rhs.H, B, fB, alpha=-1j, radd=self.minus_g_half, coef=coef,
                            sum_to=C)
                fB[b.src_rows, b.src_cols] += b.src_vals
                self.finish_lead_matrix(b, rho, C)
            else:
                fB = rhs.times_h_into(x, f, b.name)        # H Pi, in place below
                # -i H Pi + i chi^+ Pi column by column (i chi^+ = i mu + decay), in chunks
                # of columns that stay in cache: one pass over Pi and d Pi/dt
                minus_i_plus(fB, B, coef, self._work)
                for sl, gh in self.g_slices:           # -Gamma/2 Pi on the coupled rows
                    fB[sl] -= B[sl] * gh
                fB[b.src_rows, b.src_cols] += b.src_vals
                C = self.lead_matrix(b, rho, B)
            frho[:, b.I_at] += C
            # the whole C only where the interface rows are (not to every rank)
            C_full = gather_rows_to(C, rhs.H.comm, b.counts, b.C_full, b.owners)
            if C_full is not None and len(b.loc_rows):
                frho[b.rows_at, :] += C_full[:, b.k_at].conj().T

    def decay(self) -> tuple[dict, dict]:
        """The pole decay L = diag(-xi_p/beta_l) on the columns of each coupling's component."""
        return {b.name: b.decay for b in self.blocks}, {}

    def lead_currents(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Re Tr Pi_l and Re Tr(sigma_a Pi_l) for every wide-band coupling (charge (n_c,),
        spin (n_c, 3)) from the local state array ``x``.  Collective.  Paper 004 Eqs. (11),
        (12) without the lead-dependent sign: positive = flowing from the reservoir into the
        electron problem."""
        lay = self.rhs.layout
        rho = lay.rho(x)
        charge = np.zeros(len(self.blocks))
        spin = np.zeros((len(self.blocks), 3))
        for i, b in enumerate(self.blocks):
            C = self.lead_matrix(b, rho, lay.view(x, b.name))
            P = np.zeros((b.n, b.n), complex)   # Pi_l on the interface block (n_l x n_l)
            P[b.loc_k] = C[b.loc_rows]
            P = allreduce(P, self.rhs.H.comm)
            charge[i] = np.trace(P).real
            # interface orbitals come in (up, down) pairs of the same site
            sites = np.arange(b.n // 2)
            blk = P.reshape(b.n // 2, 2, b.n // 2, 2)[sites, :, sites, :]
            # Tr(sigma Pi) per site: sigma_ab Pi_ba
            spin[i, 0] = (blk[:, 1, 0] + blk[:, 0, 1]).sum().real
            spin[i, 1] = (1j * blk[:, 0, 1] - 1j * blk[:, 1, 0]).sum().real
            spin[i, 2] = (blk[:, 0, 0] - blk[:, 1, 1]).sum().real
        return charge, spin


def OpenRHS(H: ElectronHamiltonian, spinH: ClassicalSpinHamiltonian, layout: StateLayout,
            problem: ElectronProblem, poles,
            mu_of_t: Callable[[float], np.ndarray] | None = None) -> CoupledRHS:
    """The right-hand side of an open junction with wide-band couplings: Coherent, PadeLeads,
    RigidShift (explicit lead sites, if any) and LLG.  ``mu_of_t``: optional callable t -> the
    leads' chemical potentials (bias protocol); default the constant ``lead.mu``."""
    terms: list[Term] = [Coherent(), PadeLeads(problem, poles)]
    if problem.shifts:
        terms.append(RigidShift(problem))
    terms.append(LLG())
    return CoupledRHS(H, spinH, layout, terms, mu0=np.array([l.mu for l in problem.leads],
                                                             float), mu_of_t=mu_of_t)
