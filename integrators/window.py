"""The bias-window part of a stationary state by sparse solves: no dense O(N_s^3) work.

With wide-band couplings c (Gamma_c = gamma_c on the orbitals I_c, B_c = E_c sqrt(gamma_c)) and
G(E) = (E - H_eff)^-1, the stationary density matrix of the equations of motion (the Padé
Fermi functions f_c of each coupling's lead, integrators/stationary.py) is

    rho = rho_ref + drho,    drho = int dE/2pi sum_c df_c(E) X_c(E) X_c(E)^dag,
    X_c(E) = G(E) B_c,       df_c = f_c - f_ref,

with rho_ref the pole sum of the reference reservoir (closed in the complex plane, no real-axis
integral).  Only couplings whose (mu, T, poles) differ from the reference enter.  drho is the
solution of the Sylvester equation of stationary.py (H_eff drho - drho H_eff^dag = -i (Q -
Q_ref)) written as an integral; it needs one sparse LU of E - H_eff and one solve with n_c
columns per energy, and a rank-n_c update of the local rows of rho (BLAS 3).  States that no
reservoir reaches do not appear in X_c and keep the reference occupation, as with the dense
solve.

**Where df_c is not zero.**  (1) The window [min mu - 40 T, max mu + 40 T] (the exact Fermi
functions differ by < e^-40 outside).  (2) Far from mu the Padé f_c reverts towards 1/2
(|E - mu| beyond ~ xi_max T: 5.5 eV for 30 poles at 300 K), so df_c grows again, ~1e-4 at 50 eV
for a 0.1 V bias; with Gamma constant in E this tail adds ~1e-5 to rho near the interfaces.

**Quadrature.**

* Middle (|E - c| <= F, c and R the centre and Gershgorin radius of the spectrum of H_eff,
  F = 1.5 R or the window's reach): adaptive Gauss-Kronrod (7, 15) panels, starting from the
  window's panels (:func:`integrators.steady_state.panel_edges`: pi T wide at each mu, growing
  geometrically) and panels of at most ``MIDDLE_PANEL`` outside it.  A panel where every df_c
  is below ``DF_FLOOR`` at all its nodes and ends adds < DF_FLOOR (int G Gamma G^dag dE/2pi
  is a density, norm <= 1) and is skipped without a solve.  The error of a panel is estimated
  on the diagonal of its contribution, |K15 - G7| (the Gauss rule's error: the Kronrod value
  kept is much better); a panel is accepted when that is <= ``tol`` x its share of the
  middle's length, else halved (at most ``MAX_ENERGIES`` energies).
* Tails (|E - c| > F): E = c + 1/u, u in [-1/F, 1/F] (both tails in one interval through
  u = 0), and Y_c(u) = X_c/u = (1 - u (H_eff - c))^-1 B_c is analytic for |u| < 1/R, so it is
  interpolated at ``N_TAIL`` Chebyshev nodes (Bernstein ellipse rho = 1.5 + sqrt(1.25) = 2.6:
  relative error ~ 2.6^-N_TAIL = 1e-10 at 24 nodes, on a part that is itself <= 1e-4).  The
  scalar weights W_mn = int du df_c(c + 1/u) l_m(u) l_n(u) (l_m: the Lagrange basis) are
  integrated on a fine graded rule (the Padé poles near u = 0); W = V diag(lambda) V^T gives
  sum_k lambda_k Z_k Z_k^dag, Z_k = sum_m V_mk Y_c(u_m).

MPI.  With the replicated factorisation (N_s <= stationary.REPLICATED_MAX_N) and N_s <=
:data:`SPLIT_MAX_N` the energies are split over the ranks: the middle's initial panels go round
robin to the ranks, each rank refines its own (the acceptance test of a panel is local, so the
accepted panels are those of one rank), adds its panels' columns to a full N_s x N_s partial sum
by Hermitian rank-k updates, and a reduce-scatter gives every rank its rows; the tails' few
solves are repeated on every rank and their rank-n_c terms shared out.  Solves and updates both
shrink with the ranks; the price is one N_s x N_s array per rank.  Otherwise every rank
computes whole columns X_c (the distributed factorisation and an all-gather of N_s x n_c) and
updates its own rows.

Measured: equal to the dense Sylvester solve to <= 1e-12 on small 1D, 2D and 3D valves
(tests/integrators/test_window.py); 20 x 10 x 10 (N_s = 4000): see docs/guide/scaling.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial.legendre import leggauss

from operators.pade import PadePoles, fermi_pade
from operators.quadrature import gauss_kronrod

__all__ = ["window_density", "WindowInfo", "TOL", "N_TAIL"]

TOL = 1e-10            # target absolute error (sum over panels, diagonal of drho)
N_TAIL = 24            # Chebyshev nodes of the tails
DF_FLOOR = 1e-13       # panels with |df| below this everywhere are skipped
MIDDLE_PANEL = 2.0     # largest initial panel outside the window (energy units)
MAX_ENERGIES = 20_000  # solves allowed for one state
_FLUSH = 2048          # columns collected before one BLAS-3 update of rho
TAIL_T = 40.0          # window: mu -/+ 40 T
WINDOW_SCALE = 2.0     # window panels: at most this x their distance to the nearest Fermi pole
SPLIT_MAX_N = 16000    # energies split over the ranks up to this N_s (a full N_s^2 per rank)

@dataclass
class WindowInfo:
    """What the window quadrature did: solves, accepted panels, skipped panels, splits, the
    error estimate (sum over the middle's panels), the tail's weight and its columns."""

    energies: int = 0
    panels: int = 0
    skipped: int = 0
    splits: int = 0
    error: float = 0.0
    tail_columns: int = 0
    tail_weight: float = 0.0
    tail_energies: int = 0      # (of ``energies``; every rank solves them when split)
    edges: list = field(default_factory=list)


@dataclass(frozen=True)
class Channel:
    """One biased coupling: its interface columns, sqrt(gamma) per column, its Fermi function
    (mu, beta, poles)."""

    cols: np.ndarray
    sqrt_gamma: np.ndarray
    mu: float
    beta: float
    poles: PadePoles


class _Accumulator:
    """Collects columns y_k with weights w_k and adds sum_k w_k y_k[rows] y_k^dag to the local
    rows of rho in BLAS-3 updates (Hermitian rank-k updates on one rank)."""

    def __init__(self, out: np.ndarray, r0: int, serial: bool) -> None:
        self.out, self.r0, self.serial = out, r0, serial
        self.cols: list[np.ndarray] = []
        self.w: list[np.ndarray] = []
        self.n = 0

    def add(self, Y: np.ndarray, w: np.ndarray) -> None:
        keep = w != 0
        if not keep.any():
            return
        self.cols.append(Y[:, keep])
        self.w.append(w[keep])
        self.n += int(keep.sum())
        if self.n >= _FLUSH:
            self.flush()

    def flush(self) -> None:
        if not self.n:
            return
        Y = np.concatenate(self.cols, axis=1)
        w = np.concatenate(self.w)
        self.cols, self.w, self.n = [], [], 0
        nloc = self.out.shape[0]
        if self.serial:
            import scipy.linalg.blas as blas

            for sign in (1.0, -1.0):
                m = sign * w > 0
                if m.any():
                    # out^T (Fortran order) += conj(Z) Z^T = (Z Z^dag)^T: its lower
                    # triangle is the upper triangle of out
                    Z = np.asfortranarray((Y[:, m] * np.sqrt(sign * w[m])).conj())
                    r = blas.zherk(sign, Z, beta=1.0, c=self.out.T, lower=1, overwrite_c=1)
                    if not np.shares_memory(r, self.out):
                        raise RuntimeError("zherk did not update rho in place")
        else:
            self.out += (Y[self.r0:self.r0 + nloc] * w) @ Y.conj().T

    def finish(self) -> None:
        self.flush()
        if self.serial:     # the lower triangle from the upper one
            o = self.out
            il = np.tril_indices(o.shape[0], -1)
            o[il] = o.T[il].conj()


def _spectral_bounds(A0) -> tuple[float, float]:
    """(c, rad): the centre c = (lo + hi)/2 of the Gershgorin bounds [lo, hi] of the real parts
    of the eigenvalues of A0 (PETSc AIJ), and the Gershgorin bound of |lambda - c| (over all
    ranks).  Collective."""
    from toolkit.parallel import allreduce

    ia, ja, a = A0.getValuesCSR()
    r0 = A0.getOwnershipRange()[0]
    n = len(ia) - 1
    rows = np.repeat(np.arange(n), np.diff(ia)) + r0
    diag = np.zeros(n, complex)
    off = np.zeros(n)
    on = ja == rows
    np.add.at(diag, rows[on] - r0, a[on])
    np.add.at(off, rows[~on] - r0, np.abs(a[~on]))
    comm = A0.getComm()
    lo = allreduce(float((diag.real - off).min(initial=np.inf)), comm, "min")
    hi = allreduce(float((diag.real + off).max(initial=-np.inf)), comm, "max")
    c = 0.5 * (lo + hi)
    rad = allreduce(float((np.abs(diag - c) + off).max(initial=0.0)), comm, "max")
    return c, rad


def _df(E: np.ndarray, ch: Channel, ref: tuple[float, float, PadePoles]) -> np.ndarray:
    return (fermi_pade(E, ch.mu, ch.beta, ch.poles)
            - fermi_pade(E, ref[0], ref[1], ref[2]))


def window_density(solver, A0, channels: list[Channel], ref: tuple[float, float, PadePoles],
                   mus_all, temperature: float, out: np.ndarray, r0: int,
                   tol: float = TOL, n_tail: int = N_TAIL) -> WindowInfo:
    """Add drho (module docstring) to ``out``, the local rows (n_loc, N) of rho starting at
    global row ``r0``.  ``solver``: an integrators.stationary._Solver of ``A0`` (H_eff);
    ``channels``: the biased couplings; ``ref``: (mu, beta, poles) of the reference; ``mus_all``
    every chemical potential (the window's ends); ``temperature``: the largest T.  Collective.
    """
    from toolkit.parallel import allgather_rows, first_message, reduce_scatter_rows

    comm = A0.getComm()
    size, rank = comm.getSize(), comm.getRank()
    serial = size == 1
    # energies split over the ranks (module docstring): a full partial sum on every rank
    split = not serial and solver.full_columns and solver.N <= SPLIT_MAX_N
    info = WindowInfo()
    nloc = out.shape[0]
    if split:
        full = np.zeros((solver.N, solver.N), complex)
        acc = _Accumulator(full, 0, True)
        rows = slice(0, solver.N)
    else:
        acc = _Accumulator(out, r0, serial)
        rows = slice(r0, r0 + nloc)
    ecomm = None if split else comm          # the error estimates: over the ranks' rows
    counts = (np.zeros(0, int) if solver.full_columns
              else np.array(comm.tompi4py().allgather(nloc)))

    def columns(E: float, ch: Channel) -> np.ndarray:
        """X_c(E) = G(E) B_c, all rows, on every rank."""
        info.energies += 1
        if info.energies > MAX_ENERGIES:
            raise RuntimeError(f"stationary window: more than {MAX_ENERGIES} energies for "
                               f"tol = {tol} (narrow resonances?); use electrons.stationary "
                               f"= 'dense'")
        if solver.full_columns:
            X = solver.solve_full(E, ch.cols)
        else:
            loc = solver.solve_columns(E, ch.cols)
            X = allgather_rows(np.ascontiguousarray(loc), comm, counts,
                               np.empty((solver.N, len(ch.cols)), complex))
        return X * ch.sqrt_gamma            # scales the columns: a new array

    c, rad = _spectral_bounds(A0)
    T = float(temperature)
    mus = np.asarray(mus_all, float)
    w_lo, w_hi = float(mus.min()) - TAIL_T * T, float(mus.max()) + TAIL_T * T
    F = max(1.5 * rad, abs(w_lo - c), abs(w_hi - c)) * (1 + 1e-9) + 1e-9
    e_lo, e_hi = c - F, c + F
    # the middle: the window's panels, panels of <= MIDDLE_PANEL outside it
    from .steady_state import panel_edges

    win = panel_edges(list(mus), T, scale=WINDOW_SCALE)

    def uniform(a: float, b: float) -> np.ndarray:
        n = max(1, int(math.ceil((b - a) / MIDDLE_PANEL)))
        return np.linspace(a, b, n + 1)

    edges = np.unique(np.concatenate([uniform(e_lo, win[0]), win, uniform(win[-1], e_hi)]))
    x, wk, wg = gauss_kronrod()
    min_width = 1e-9 * max(T, 1e-3)

    def nodes(a: float, b: float):
        h, m = 0.5 * (b - a), 0.5 * (a + b)
        E = m + h * x
        dfs = np.array([_df(np.concatenate([E, [a, b]]), ch, ref) for ch in channels])
        return h, E, dfs

    # each panel is evaluated once: accepted (its Kronrod sum goes into rho) when its estimate
    # is within its share of tol by length, else halved
    length = e_hi - e_lo
    stack = [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:])][::-1]
    if split:
        stack = stack[rank::size]
    from toolkit.progress import ProgressBar

    bar = ProgressBar(sum(b - a for a, b in stack), label="E-range", enabled=rank == 0)
    try:
        _middle(stack, nodes, columns, channels, ref, x, wk, wg, tol, length, min_width, rows,
                ecomm, acc, info, bar)
        n_mid = info.energies
        _tails(columns, channels, ref, c, F, n_tail, acc, info,
               (rank, size) if split else (0, 1))
        info.tail_energies = info.energies - n_mid
        acc.finish()
        msg = None
    except (RuntimeError, MemoryError) as e:
        if not split:
            raise
        msg = str(e) or repr(e)
    bar.close()
    if split:          # ranks met no collective above: the first error raised on all of them
        msg = first_message(msg, comm)
        if msg:
            raise RuntimeError(msg)
        out += reduce_scatter_rows(full, comm, nloc)
        del full
        _sum_info(info, comm)
    return info


def _sum_info(info: WindowInfo, comm) -> None:
    mpi = comm.tompi4py()
    for k in ("panels", "skipped", "splits", "tail_columns"):
        setattr(info, k, int(mpi.allreduce(getattr(info, k))))
    # the distinct energies: the middle's of every rank, the tails' once
    info.energies = int(mpi.allreduce(info.energies - info.tail_energies)) + info.tail_energies
    info.error = float(mpi.allreduce(info.error))
    info.edges = sorted(e for part in mpi.allgather(info.edges) for e in part)


def _middle(stack, nodes, columns, channels, ref, x, wk, wg, tol, length, min_width, rows,
            ecomm, acc, info, bar) -> None:
    """The adaptive Gauss-Kronrod panels of the middle (module docstring)."""
    covered = 0.0
    while stack:
        a, b = stack.pop()
        h, E, dfs = nodes(a, b)
        if float(np.abs(dfs).max()) < DF_FLOOR:
            info.skipped += 1
            covered += b - a
            continue
        Xs, f = {}, np.zeros((15, rows.stop - rows.start))
        for k in range(15):
            for j, (ch, d) in enumerate(zip(channels, dfs)):
                if d[k] != 0.0:
                    X = columns(float(E[k]), ch)
                    Xs[k, j] = X
                    Xl = X[rows]
                    f[k] += (d[k] / (2 * np.pi)) * np.einsum("ij,ij->i", Xl, Xl.conj()).real
        err = _estimate(h, f, wk, wg, ecomm)
        if err > tol * (b - a) / length and b - a > min_width:
            info.splits += 1
            m = 0.5 * (a + b)
            stack += [(m, b), (a, m)]
            continue
        info.panels += 1
        info.error += err
        info.edges.append((a, b))
        for (k, j), X in Xs.items():
            acc.add(X, np.full(X.shape[1], h * wk[k] * dfs[j][k] / (2 * np.pi)))
        del Xs
        covered += b - a
        bar.update(covered, f"stationary window: {info.energies} energies")


def _estimate(h: float, f: np.ndarray, wk: np.ndarray, wg: np.ndarray, comm) -> float:
    """Error estimate of a panel's K15 value, ``f`` (15, n_rows): the integrand's diagonal at
    the nodes (max over the orbitals, and over the ranks unless ``comm`` is None).  As
    QUADPACK's, resasc min(1, (|K15 - G7| / resasc)^1.5), without its safety factor 200^1.5:
    for an integrand analytic in a Bernstein ellipse of parameter r the Gauss error is ~r^-14
    and the Kronrod error ~r^-23, the Gauss error to the power 1.64 (measured on 3D valves:
    still 100-10000 x the actual error)."""
    from toolkit.parallel import allreduce

    resk = h * (wk @ f)
    resg = h * (wg @ f)
    resasc = h * (wk @ np.abs(f - resk / (2 * h)))
    dif = np.abs(resk - resg)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(resasc > 0, resasc * np.minimum(1.0, (dif / resasc) ** 1.5), dif)
    e = float(err.max(initial=0.0))
    return e if comm is None else allreduce(e, comm, "max")


def _graded_rule(half: float, n_panels: int = 60, order: int = 20) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """Gauss-Legendre nodes and weights on [-half, half], panels graded geometrically towards
    0 (smallest 1e-12 half), for integrands with near-singularities close to u = 0."""
    t, w = leggauss(order)
    b = half * np.logspace(-12, 0, n_panels + 1)
    a = np.concatenate([[0.0], b[:-1]])
    edges_a, edges_b = a, b
    cen, hw = 0.5 * (edges_a + edges_b), 0.5 * (edges_b - edges_a)
    u = (cen[:, None] + hw[:, None] * t[None, :]).ravel()
    wu = (hw[:, None] * w[None, :]).ravel()
    return np.concatenate([-u[::-1], u]), np.concatenate([wu[::-1], wu])


def _tails(columns, channels, ref, c: float, F: float, n_tail: int, acc: _Accumulator,
           info: WindowInfo, share: tuple[int, int] = (0, 1)) -> None:
    """|E - c| > F: the Chebyshev interpolation of Y_c(u) = X_c(c + 1/u)/u (module
    docstring).  ``share`` = (rank, size): this rank adds the rank-n_c terms k = rank mod size
    of the energies split (every rank computes all the columns)."""
    half = 1.0 / F
    k = np.arange(n_tail)
    theta = (2 * k + 1) * np.pi / (2 * n_tail)
    un = half * np.cos(theta)                       # Chebyshev points of the first kind
    bw = (-1.0) ** k * np.sin(theta)                # their barycentric weights
    uq, wq = _graded_rule(half)
    # Lagrange basis at the quadrature points (barycentric; no point is a node)
    D = uq[:, None] - un[None, :]
    L = (bw / D)
    L /= L.sum(axis=1, keepdims=True)
    for ch in channels:
        d = _df(c + 1.0 / uq, ch, ref)
        W = (L * (wq * d)[:, None]).T @ L           # (n_tail, n_tail), real symmetric
        lam, V = np.linalg.eigh(0.5 * (W + W.T))
        big = np.abs(lam) > 1e-20 * max(1.0, float(np.abs(lam).max(initial=0.0)))
        big &= np.abs(lam) > DF_FLOOR * 1e-4
        info.tail_weight = max(info.tail_weight, float(np.abs(lam).max(initial=0.0)))
        if not big.any():
            continue
        Y = None
        for m in range(n_tail):
            Xm = columns(float(c + 1.0 / un[m]), ch) / un[m]
            if Y is None:
                Y = np.zeros((n_tail,) + Xm.shape, complex)
            Y[m] = Xm
        assert Y is not None
        for j in np.flatnonzero(big)[share[0]::share[1]]:
            Z = np.tensordot(V[:, j], Y, axes=(0, 0))
            acc.add(Z, np.full(Z.shape[1], lam[j] / (2 * np.pi)))
            info.tail_columns += Z.shape[1]
