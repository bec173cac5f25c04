"""Exponential Runge-Kutta stepping for the open junction: the pole decay integrated exactly.

In Eq. (9) of paper 004 the auxiliary matrices decay as  d Pi_{l,p}/dt = -(xi_p/beta_l) Pi_{l,p}
+ ...  (the real part of i chi^+_p).  For the [N-1/N] Padé poles the largest rate is
xi_N/beta ~= 2.6 N_p^2/beta (58 for N_p = 30 at beta = 40), far above the band width, so an
explicit Runge-Kutta scheme would need dt < 2.8/58 ~= 0.048 for this one linear, diagonal,
time-independent term.  We write the whole state equation as

    dy/dt = L y + N(t, y),    L = diag(-xi_p/beta_l) on the columns of the lead blocks, 0 on
                              rho and on the classical spins,

and integrate L exactly with the four-stage exponential Runge-Kutta method of Krogstad
(J. Comput. Phys. 203, 72 (2005); tableau as in Hochbruck & Ostermann, Acta Numerica 19, 209
(2010), with phi_{k,i} = phi_k(c_i h L)):

    c = (0, 1/2, 1/2, 1)
    U2 = e^{hL/2} y + h/2 phi_1(hL/2) N1
    U3 = e^{hL/2} y + h [phi_1(hL/2)/2 - phi_2(hL/2)] N1 + h phi_2(hL/2) N2
    U4 = e^{hL}   y + h [phi_1(hL) - 2 phi_2(hL)] N1 + 2 h phi_2(hL) N3
    y+ = e^{hL}   y + h [(phi_1 - 3 phi_2 + 4 phi_3) N1 + (2 phi_2 - 4 phi_3)(N2 + N3)
                          + (4 phi_3 - phi_2) N4]                        (phi_k = phi_k(hL))

with N_i = N(t + c_i h, U_i) and phi_0(z) = e^z, phi_{k+1}(z) = (phi_k(z) - 1/k!)/z.

Why this scheme.  (i) Where L = 0 (rho, spins) it *is* the classic RK4, so the step is limited
by the band width and the spin dynamics exactly as for an explicit fourth-order method.  (ii) The
weights of every stage sum to c_i phi_1(c_i hL), which makes every fixed point of
L y + N(y) = 0 a fixed point of the step: the stationary state of an open junction stays
stationary to round-off at any dt.  The integrating-factor (Lawson) form of RK4 lacks this
property and was therefore not used: on the 6-site test valve (N_p = 30, beta = 40) its
stationary state drifts by 6e-3, 6e-2, 0.3 over t = 10 at dt = 0.05, 0.1, 0.2 (Krogstad:
1e-15).  (iii) Classical order 4; for stiff L Krogstad's method keeps order 4 in the weakened
sense of Hochbruck & Ostermann.  Measured on a 6-site valve with moving spins
(N_p = 30, beta = 40, dt = 0.2 .. 0.05): p = 3.7 .. 3.9, while Cox-Matthews' ETDRK4 falls to
p ~ 2.5 for the spins and PETSc's ARKIMEX 4 (route 'imex', stage order 2) to p = 2.3 .. 2.7.
(iv) Four evaluations of N per step, as many as RK 3/8, plus diagonal scalings of the lead
blocks (~6 % of a step on the 2D 12x4 valve).

The scheme is a PETSc ``TS`` of type ``python`` (:class:`ExpRK`): ``TS.step``, the time, the
step number, ``setSolution`` and therefore the run loop, checkpoints and restarts work as for
the built-in types.  Fixed step only (no embedded error estimate).
"""
from __future__ import annotations

import atexit
import math
import weakref

import numpy as np

from toolkit import kernels

from petsc4py import PETSc

from .layout import StateLayout

__all__ = ["phi_functions", "DiagonalLinear", "ExpRK"]

_TAYLOR_RADIUS = 1.0   # |z| below: Taylor series; above: the recurrence (loses < 1 digit there)
_TAYLOR_TERMS = 24     # |z| < 1: the first omitted term is < 1/24! ~ 1.6e-24


def phi_functions(z, kmax: int = 3) -> np.ndarray:
    """phi_0 .. phi_kmax of real ``z`` (any shape): array of shape (kmax + 1,) + z.shape.

    phi_0 = e^z, phi_k(z) = sum_n z^n/(n + k)!, phi_{k+1}(z) = (phi_k(z) - 1/k!)/z.  Taylor
    series for |z| < 1 (no cancellation), the recurrence otherwise (a few ulp; tested against
    the matrix exponential to 1e-14).
    """
    z = np.asarray(z, dtype=float)
    out = np.empty((kmax + 1,) + z.shape)
    out[0] = np.exp(z)
    small = np.abs(z) < _TAYLOR_RADIUS
    zl = z[~small]
    for k in range(1, kmax + 1):
        out[k][~small] = (out[k - 1][~small] - 1.0 / math.factorial(k - 1)) / zl
    zs = z[small]
    for k in range(1, kmax + 1):
        acc = np.zeros_like(zs)
        for n in range(_TAYLOR_TERMS - 1, -1, -1):      # Horner: sum_n z^n / (n + k)!
            acc = acc * zs + 1.0 / math.factorial(n + k)
        out[k][small] = acc
    return out


class DiagonalLinear:
    """A diagonal, time-independent linear part L of the state equation, real, nonzero only on
    the auxiliary components of a :class:`StateLayout` and constant along each column of one.

    ``columns``: {component name: the diagonal of that component, one value per column}
    (components not named have L = 0), or a list in layout order; identical on every rank.
    Each component declares its own decay (the open right-hand side collects them).
    """

    def __init__(self, layout: StateLayout, columns, small: dict | None = None) -> None:
        if not isinstance(columns, dict):
            columns = dict(zip(layout.aux_names, columns))
        # small components (rank 0): one decay rate per entry, {name: (size,)}
        small = small or {}
        self.small = np.concatenate([np.asarray(small.get(n, np.zeros(c)), float)
                                     for n, c in zip(layout.small_names, layout.small_sizes)]
                                    ) if layout.n_small else np.zeros(0)
        for name, c in columns.items():
            if len(c) != layout.columns(name):
                raise ValueError(f"DiagonalLinear: {len(c)} values for the {layout.columns(name)}"
                                 f" columns of component '{name}'")
        self.layout = layout
        self.columns = [np.asarray(columns.get(n, np.zeros(layout.columns(n))), dtype=float)
                        for n in layout.aux_names]
        # few distinct rates among the small components' entries (the second tier's rates are
        # sums of mode rates): functions of them as tables indexed per entry (2 bytes instead
        # of 8 per coefficient in the compiled combinations)
        self.small_rates: np.ndarray | None = None
        self.small_index: np.ndarray | None = None
        if self.small.size:
            rates, index = np.unique(self.small, return_inverse=True)
            if len(rates) <= 65536 and 4 * len(rates) <= self.small.size:
                self.small_rates = rates
                self.small_index = index.astype(np.uint16)

    @property
    def max_rate(self) -> float:
        """max |L| (the rate an explicit scheme would have to resolve)."""
        return max([float(np.abs(c).max()) for c in self.columns if c.size]
                   + ([float(np.abs(self.small).max())] if self.small.size else []),
                   default=0.0)

    def function(self, fn) -> "DiagonalFunction":
        """fn(L) (fn: elementwise on arrays; fn(0) for the parts where L = 0)."""
        f = DiagonalFunction(float(fn(np.zeros(1))[0]),
                             [np.asarray(fn(c), dtype=float) for c in self.columns],
                             np.asarray(fn(self.small), dtype=float) if self.small.size
                             else self.small)
        if self.small_rates is not None:
            f.small_table = np.ascontiguousarray(fn(self.small_rates), dtype=float)
            f.small_index = self.small_index
        return f

    def to_vec(self, vec: PETSc.Vec) -> None:
        """Write the diagonal of L into ``vec`` (a vector of the layout)."""
        a = vec.getArray()
        a[...] = 0.0
        for k, c in enumerate(self.columns):
            _block(self.layout, a, k)[...] = c[:, None]
        lay = self.layout
        if lay.n_small and lay.rank == 0:
            a[lay.small_offset:lay.small_offset + lay.n_small] = self.small
        vec.stateIncrease()


def _block(layout: StateLayout, arr: np.ndarray, k: int) -> np.ndarray:
    """Auxiliary component k of a local array as (columns, local rows)."""
    return layout.columns_view(arr, layout.aux_names[k])


class DiagonalFunction:
    """A function of a :class:`DiagonalLinear`: ``scalar`` on rho and spins, ``columns[k]`` on
    the columns of lead block k."""

    def __init__(self, scalar: float, columns: list[np.ndarray],
                 small: np.ndarray | None = None) -> None:
        self.scalar = scalar
        self.scalar_array = np.array([scalar])      # the compiled combinations' coefficient
        self.columns = [c[:, None] for c in columns]
        self.small = np.zeros(0) if small is None else small
        self.small_table: np.ndarray | None = None   # fn of the distinct rates (if few)
        self.small_index: np.ndarray | None = None   # the rate of each entry in that table


#: complex entries per chunk of a stage combination: the output chunk stays in cache while
#: every term is added to it, and the work array is this small (not a lead block)
CHUNK = 1 << 16


def combine_work(layout: StateLayout) -> np.ndarray:
    """The work array :func:`combine` needs for ``layout`` (a chunk, at least one column)."""
    return np.empty(max(CHUNK, layout.nloc, 1), complex)


def combine(layout: StateLayout, out: np.ndarray, terms, tmp: np.ndarray) -> None:
    """out = sum_j f_j(L) v_j for ``terms`` = [(f_j, v_j)] (DiagonalFunction, local array),
    in chunks of about :data:`CHUNK` entries; ``tmp``: :func:`combine_work`.  ``out`` may be
    the array of the first term (each chunk reads it before writing); no other aliasing.
    Local."""
    if kernels.available():
        _combine_compiled(layout, out, terms)
        return
    f0, v0 = terms[0]
    rest = [(f, v) for f, v in terms[1:] if f.scalar != 0.0]
    for a, b in ((0, layout.n_rho), (layout.spin_offset, layout.n_local)):   # L = 0 here
        for s in range(a, b, CHUNK):
            e = min(s + CHUNK, b)
            o, w = out[s:e], tmp[:e - s]
            np.multiply(v0[s:e], f0.scalar, out=o)
            for f, v in rest:
                np.multiply(v[s:e], f.scalar, out=w)
                o += w
    if layout.n_small and layout.rank == 0:          # small components: a rate per entry
        a, b = layout.small_offset, layout.small_offset + layout.n_small
        np.multiply(v0[a:b], f0.small, out=out[a:b])
        for f, v in terms[1:]:
            out[a:b] += f.small * v[a:b]
    nloc = layout.nloc
    if nloc == 0:
        return
    step = max(1, CHUNK // nloc)                    # columns per chunk
    for k in range(len(layout.lead_columns)):
        # real coefficients per column: multiply the blocks viewed as real numbers (re, im
        # interleaved in each row), 2-3x faster than numpy's mixed complex x real loop
        ob = _block(layout, out, k).view(np.float64)
        blocks = [_block(layout, v, k).view(np.float64) for _, v in terms]
        coef = [f.columns[k] for f, _ in terms]
        for c0 in range(0, ob.shape[0], step):
            c1 = min(c0 + step, ob.shape[0])
            o = ob[c0:c1]
            w = tmp[:(c1 - c0) * nloc].view(np.float64).reshape(o.shape)
            np.multiply(blocks[0][c0:c1], coef[0][c0:c1], out=o)
            for v, cf in zip(blocks[1:], coef[1:]):
                np.multiply(v[c0:c1], cf[c0:c1], out=w)
                o += w


def combine_two(layout: StateLayout, out: np.ndarray, out2: np.ndarray, vs, fs, fs2,
                tmp: np.ndarray) -> None:
    """out = sum_j fs[j](L) vs[j] and out2 = sum_j fs2[j](L) vs[j] (DiagonalFunctions, local
    arrays); ``out2`` may be ``vs[0]``, ``out`` aliases no input.  With the compiled kernels in
    one pass over the inputs, else two :func:`combine` passes.  Local."""
    if kernels.available():
        _combine_compiled(layout, out, list(zip(fs, vs)), out2, fs2)
        return
    combine(layout, out, list(zip(fs, vs)), tmp)
    combine(layout, out2, list(zip(fs2, vs)), tmp)


def _combine_compiled(layout: StateLayout, out: np.ndarray, terms,
                      out2: np.ndarray | None = None, fs2=None) -> None:
    """:func:`combine` (and, with ``out2``, the second output of :func:`combine_two`) with the
    compiled kernel (toolkit/kernels.py): one pass per region."""
    vs = [v for _, v in terms]
    fs = [f for f, _ in terms]
    two = out2 is not None
    for a, b in ((0, layout.n_rho), (layout.spin_offset, layout.n_local)):   # L = 0 here
        if b > a:
            kernels.combine(out[a:b], [v[a:b] for v in vs], [f.scalar_array for f in fs],
                            b - a, None if out2 is None else out2[a:b],
                            [f.scalar_array for f in fs2] if two else None)
    if layout.n_small and layout.rank == 0:          # small components: a rate per entry
        a, b = layout.small_offset, layout.small_offset + layout.n_small
        # the coefficient tables over the distinct rates if every function has them (they
        # share the DiagonalLinear's index), else one coefficient per entry
        index = fs[0].small_index
        tables = index is not None and all(f.small_index is index for f in fs + (fs2 or []))

        def coefs(f):
            return f.small_table if tables else f.small
        kernels.combine_entries(out[a:b], [v[a:b] for v in vs], [coefs(f) for f in fs],
                                None if out2 is None else out2[a:b],
                                [coefs(f) for f in fs2] if two else None,
                                index=index if tables else None)
    nloc = layout.nloc
    if nloc == 0:
        return
    for k in range(len(layout.lead_columns)):
        kernels.combine(_block(layout, out, k), [_block(layout, v, k) for v in vs],
                        [f.columns[k] for f in fs], nloc,
                        None if out2 is None else _block(layout, out2, k),
                        [f.columns[k] for f in fs2] if two else None)


_LIVE: list = []    # weak references to the ExpRK TSs, in creation order (same on every rank)
_COMMS: list = []   # their communicators


def track(ts: PETSc.TS, comm: PETSc.Comm) -> None:
    """Register a TS of type python, created on the user's communicator ``comm``, for
    destruction at interpreter exit (:func:`_shutdown`).  ``comm`` is the one given to the TS,
    not ``ts.getComm()``: that is PETSc's inner duplicate, on which ``garbage_cleanup`` crashes
    with PETSc 3.26 (it worked with 3.18)."""
    _LIVE[:] = [r for r in _LIVE if r() is not None]
    _LIVE.append(weakref.ref(ts))
    if not any(c == comm for c in _COMMS):
        _COMMS.append(comm)


@atexit.register
def _shutdown() -> None:
    """Destroy the ExpRK TSs while Python is alive.  petsc4py 3.18 defers the destruction of
    objects on communicators other than COMM_WORLD/SELF to PetscFinalize, which runs after the
    interpreter has shut down, and destroying a TS of type python calls back into Python: a
    crash at exit.  Collective (at exit, on every rank in the same order)."""
    import gc

    for ref in _LIVE:
        ts = ref()
        if ts is not None:
            ts.destroy()
    _LIVE.clear()
    gc.collect()
    for comm in _COMMS:
        try:
            PETSc.garbage_cleanup(comm)
        except Exception:  # pragma: no cover - a communicator freed by its owner
            pass
    _COMMS.clear()


def _work_vectors(ts: PETSc.TS, X: PETSc.Vec, n: int) -> list[PETSc.Vec]:
    """``n`` state-sized work vectors of a TS of type python: the two that petsc4py's TS setup
    allocates and composes on the TS for its default step ("@ts.vec_update", "@ts.vec_dot",
    unused once the context has its own ``step``) and n - 2 duplicates of X.  Reusing the two
    saves two state sizes of memory."""
    have = []
    for name in ("@ts.vec_update", "@ts.vec_dot"):
        v = ts.query(name)
        if isinstance(v, PETSc.Vec) and v.getSizes() == X.getSizes():
            have.append(v)
    return have[:n] + [X.duplicate() for _ in range(n - len(have[:n]))]


class ExpRK:
    """Python context of a PETSc ``TS`` (type ``python``): Krogstad's exponential RK4 for
    dy/dt = L y + N(t, y) with the diagonal ``linear`` = L; N is the TS right-hand side
    (``TS.setRHSFunction``).  Fixed step; the coefficients are recomputed when dt changes.
    Collective (``step``)."""

    n_work = 4      # state-sized work vectors (U, N1, N2 and N3, which then holds N4)

    def __init__(self, linear: DiagonalLinear) -> None:
        self.linear = linear
        self._h: float | None = None
        self._work: list[PETSc.Vec] = []

    # -- PETSc TS python interface --------------------------------------------------------
    def setUp(self, ts: PETSc.TS) -> None:
        if not self._work:
            X = ts.getSolution()
            self._work = _work_vectors(ts, X, self.n_work)   # U, N1, N2, N3 (= N4)
            self._tmp = combine_work(self.linear.layout)

    def reset(self, ts: PETSc.TS) -> None:
        self.destroy(ts)

    def destroy(self, ts: PETSc.TS | None = None) -> None:
        # drop the references only: PETSc may call this after PetscFinalize (interpreter exit),
        # where an explicit VecDestroy would crash; petsc4py frees the Vecs safely
        self._work = []

    def view(self, ts: PETSc.TS, viewer=None) -> None:
        PETSc.Sys.Print("  exponential RK4 (Krogstad), L = pole decay, max |L| = "
                        f"{self.linear.max_rate:.6g}", comm=ts.getComm())

    def step(self, ts: PETSc.TS) -> None:
        self.setUp(ts)
        t, h = ts.getTime(), ts.getTimeStep()
        if h != self._h:
            self._coefficients(h)
        X = ts.getSolution()
        U, N1, N2, N3 = self._work
        lay, c, tmp = self.linear.layout, self._c, self._tmp
        y = X.getArray(readonly=True)
        ts.computeRHSFunction(t, X, N1)
        n1 = N1.getArray(readonly=True)
        self._stage(U, [(c["E2"], y), (c["a21"], n1)])
        ts.computeRHSFunction(t + 0.5 * h, U, N2)
        n2 = N2.getArray(readonly=True)
        self._stage(U, [(c["E2"], y), (c["a31"], n1), (c["a32"], n2)])
        ts.computeRHSFunction(t + 0.5 * h, U, N3)
        n3 = N3.getArray(readonly=True)
        # U4 and everything of y+ but N4 (in place on N1, the first input; b2 = b3) in one pass
        # over y, N1, N2, N3: then N3 is free for N4, so four work vectors suffice
        a1 = N1.getArray()
        combine_two(lay, U.getArray(), a1, [a1, y, n2, n3],
                    [c["a41"], c["E"], c["zero"], c["a43"]],
                    [c["b1"], c["E"], c["b2"], c["b2"]], tmp)
        U.stateIncrease()
        N1.stateIncrease()
        ts.computeRHSFunction(t + h, U, N3)
        n4 = N3.getArray(readonly=True)
        combine(lay, X.getArray(), [(c["one"], a1), (c["b4"], n4)], tmp)
        X.stateIncrease()
        ts.setTime(t + h)

    # -- helpers --------------------------------------------------------------------------
    def _stage(self, U: PETSc.Vec, terms) -> None:
        combine(self.linear.layout, U.getArray(), terms, self._tmp)
        U.stateIncrease()

    def _coefficients(self, h: float) -> None:
        """The tableau for step h as functions of L (Krogstad; module docstring)."""
        L = self.linear

        def phi(k, c):
            return lambda x: phi_functions(c * h * x, k)[k]

        def f(g):
            return L.function(g)

        p = {(k, c): phi(k, c) for k in (1, 2, 3) for c in (0.5, 1.0)}
        self._c = {
            "one": f(lambda x: np.ones_like(x)),
            "zero": f(lambda x: np.zeros_like(x)),
            "E2": f(lambda x: np.exp(0.5 * h * x)),
            "E": f(lambda x: np.exp(h * x)),
            "a21": f(lambda x: 0.5 * h * p[1, 0.5](x)),
            "a31": f(lambda x: h * (0.5 * p[1, 0.5](x) - p[2, 0.5](x))),
            "a32": f(lambda x: h * p[2, 0.5](x)),
            "a41": f(lambda x: h * (p[1, 1.0](x) - 2 * p[2, 1.0](x))),
            "a43": f(lambda x: 2 * h * p[2, 1.0](x)),
            "b1": f(lambda x: h * (p[1, 1.0](x) - 3 * p[2, 1.0](x) + 4 * p[3, 1.0](x))),
            "b2": f(lambda x: h * (2 * p[2, 1.0](x) - 4 * p[3, 1.0](x))),
            "b4": f(lambda x: h * (4 * p[3, 1.0](x) - p[2, 1.0](x))),
        }
        self._h = h
