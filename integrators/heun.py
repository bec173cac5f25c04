"""Paper 000's staggered scheme: electrons one step, then rho_eq, then Heun for the LLG.

``[solver] scheme = "staggered-heun"``.  One step t -> t + h:

1. the electrons (rho and the lead components) advance one step by Krogstad's exponential
   RK4 of integrators/expint.py (classic RK4 without leads), the classical vectors of its
   stages following the predictor M_n + (t - t_n) k1 (the paper holds M_n fixed, which makes
   the coupling first order: see below);
2. Heun's method with projection to the sphere for the LLG (Evans et al., J. Phys.: Condens.
   Matter 26, 103202 (2014), the paper's ref. 8), its spin density s(rho, M) (full, or
   current-driven with rho_eq(M) of the moments it is evaluated at: the run's LLG source)
   taken from the electrons at both ends of the step:

       k1 = f(M_n; s(rho_n, M_n)),        M~ = P(M_n + h k1),
       k2 = f(M~;  s(rho_{n+1}, M~)),     M_{n+1} = P(M_n + h (k1 + k2)/2),

   with P the rescaling of every vector to its length at t_n.

Accuracy (tests/integrators/test_heun.py, the biased test valve with a free analyzer): the
scheme converges to the monolithic fourth-order scheme with order 2 for both drives (errors of
M 8.6e-6, 2.1e-6, 5.3e-7 with the full and 5.4e-6, 1.3e-6, 3.3e-7 with the current-driven
drive for dt = 0.1, 0.05, 0.025); with M_n frozen during the electron step, as the paper
describes it, the coupling is first order (full drive: 7.4e-5, 3.9e-5, 2.0e-5).  The monolithic
scheme (``scheme = "monolithic"``, default: one TS on the whole state) is the more accurate
per step at the same cost (four right-hand sides; the staggered step adds two LLG
evaluations).  Fixed step; a PETSc TS of type ``python``, so the run loop, checkpoints and
restarts are those of every other scheme.
"""
from __future__ import annotations

import numpy as np

from petsc4py import PETSc

from .expint import DiagonalLinear, ExpRK, combine

__all__ = ["StaggeredHeun"]


class StaggeredHeun(ExpRK):
    """Python context of a PETSc ``TS``: the staggered step of the module docstring.  ``rhs``
    is the run's CoupledRHS (its LLG term's source and ClassicalSpinHamiltonian); the TS
    right-hand side is its ``nonstiff`` part with ``linear`` the decay (or the full RHS with
    a zero ``linear`` for a closed system).  Collective (``step``)."""

    n_work = 5      # U, N1..N4

    def __init__(self, linear: DiagonalLinear, rhs) -> None:
        super().__init__(linear)
        from .rhs import LLG

        self.rhs = rhs
        self.llg = rhs.term(LLG)
        self.layout = rhs.layout

    def view(self, ts: PETSc.TS, viewer=None) -> None:
        PETSc.Sys.Print("  staggered: electrons by exponential RK4 (spins frozen), then Heun "
                        "with projection for the LLG", comm=ts.getComm())

    def _frozen_rhs(self, ts: PETSc.TS, t: float, U: PETSc.Vec, N: PETSc.Vec,
                    spins: np.ndarray | None = None) -> np.ndarray:
        """The right-hand side at (t, U) with the spins of U replaced by ``spins`` (the
        predictor of the step) and their derivative set to 0."""
        if spins is not None:
            self.layout.spins(U.getArray())[...] = spins
            U.stateIncrease()
        ts.computeRHSFunction(t, U, N)
        n = N.getArray()
        self.layout.spins(n)[...] = 0.0
        return n

    def step(self, ts: PETSc.TS) -> None:
        self.setUp(ts)
        t, h = ts.getTime(), ts.getTimeStep()
        if h != self._h:
            self._coefficients(h)
        X = ts.getSolution()
        U, N1, N2, N3, N4 = self._work
        lay, c, tmp = self.linear.layout, self._c, self._tmp
        # the LLG's first Heun stage at the start of the step: k1 = f(M_n; s(rho_n, M_n))
        llg0 = self._llg(t, X) if lay.n_spins_total else None
        # 1. electrons; the spins of their stages follow the predictor M_n + (t - t_n) k1 (X
        # keeps M_n: the spin derivatives are set to 0, so the step leaves them unchanged)
        pred = ((lambda cc: llg0[0] + (cc * h) * llg0[1]) if llg0 is not None
                else (lambda cc: None))
        y = X.getArray(readonly=True)
        n1 = self._frozen_rhs(ts, t, X, N1)
        self._stage(U, [(c["E2"], y), (c["a21"], n1)])
        n2 = self._frozen_rhs(ts, t + 0.5 * h, U, N2, pred(0.5))
        self._stage(U, [(c["E2"], y), (c["a31"], n1), (c["a32"], n2)])
        n3 = self._frozen_rhs(ts, t + 0.5 * h, U, N3, pred(0.5))
        self._stage(U, [(c["E"], y), (c["a41"], n1), (c["a43"], n3)])
        n4 = self._frozen_rhs(ts, t + h, U, N4, pred(1.0))
        N2.axpy(1.0, N3)
        n2 = N2.getArray(readonly=True)
        combine(lay, X.getArray(), [(c["E"], y), (c["b1"], n1), (c["b2"], n2), (c["b4"], n4)],
                tmp)
        X.stateIncrease()
        # 2. Heun with projection for the classical vectors: k2 with rho_{n+1}
        if llg0 is not None:
            self._heun(X, U, llg0, t + h, h)
        ts.setTime(t + h)

    def _llg(self, t: float, V: PETSc.Vec) -> tuple[np.ndarray, np.ndarray]:
        """(local spins, their dS/dt) for the state in ``V`` (spins of V, rho of V)."""
        v = V.getArray(readonly=True)
        S_all = np.array(self.rhs.spins_all(V, v), float)
        assert self.llg.source is not None
        s_loc = self.llg.source(t, v, S_all)
        return self.layout.spins(v).real.copy(), self.llg.spinH.rhs(S_all, s_loc)

    def _heun(self, X: PETSc.Vec, U: PETSc.Vec, llg0, t: float, h: float) -> None:
        lay = self.layout
        S0, k1 = llg0
        norm = np.linalg.norm(S0, axis=1, keepdims=True)

        def project(S):
            n = np.linalg.norm(S, axis=1, keepdims=True)
            return S * np.divide(norm, n, out=np.ones_like(n), where=n > 0)

        X.copy(U)
        lay.spins(U.getArray())[...] = project(S0 + h * k1)
        U.stateIncrease()
        _, k2 = self._llg(t, U)
        lay.spins(X.getArray())[...] = project(S0 + 0.5 * h * (k1 + k2))
        X.stateIncrease()
