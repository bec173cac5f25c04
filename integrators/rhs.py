"""Right-hand side of the coupled electron / classical-spin system, composed from its terms.

    dy/dt = sum_k T_k(t, y),    y = (rho, lead components, S)

:class:`CoupledRHS` is the callable PETSc's TS calls.  It owns what the terms share: H(S) and
its sparse x dense products with a row-distributed component (one placeholder dense matrix per
component, ``MatDensePlaceArray`` on the state), the state layout, the gathered spins S_all,
the leads' chemical potentials mu(t) (evaluated once per call), the zeroing of components no
term sets, and ``n_calls``.  Each :class:`Term` is one physical contribution:

* :class:`Coherent`: -i [H(S), rho], one compiled pass (toolkit/kernels.py) or -i (X - X^dag)
  with X = H rho (PETSc's product).  Sets rho.
* ``open_rhs.PadeLeads``: the Padé blocks Pi_l of the wide-band couplings (paper 004,
  Eqs. 4, 8, 9).  Sets every ``pi:*`` component, adds Pi_l + Pi_l^dag to rho.
* ``aux_rhs.AuxiliaryLeads``: the auxiliary modes R, lambda, Omega, Theta, K of finite-band
  leads (operators/lorentzian.py).  Sets every ``aux:*`` component, adds to rho.
* ``open_rhs.RigidShift``: the bias of explicit lead sites, -i V_l [P_l, rho] and -i V_l P_l X
  for every row-distributed lead component X.  Adds to rho and to every X.
* :class:`LLG`: d S_j/dt = -S_j x dH_C/dS_j (+ Gilbert damping) with the electron spin density
  s_j of a :class:`SpinDensitySource`.  Sets the spins.

A term declares the components it ``sets`` (overwrites: it must come before every term adding
to them) and ``adds`` (accumulates into), the row-distributed components it needs H times
(``products``), its part of the stiff diagonal decay L (:meth:`Term.decay`, for the exponential
and IMEX integrators: :meth:`CoupledRHS.nonstiff` = full - L y, each term leaving out its own
decay when ``Evaluation.full`` is False) and the extra methods it ``offers``
(``lead_currents``, ``stationary``, ``dense_reference``), which :class:`CoupledRHS` forwards.
Components no term sets are zeroed before the terms run (e.g. a right-hand side of one term
alone).  ``integrators.assembly.build_simulation`` composes the terms of a run from its
electron problem; :func:`ClosedRHS` (and ``open_rhs.OpenRHS``, ``aux_rhs.AuxiliaryRHS``) are the
standard compositions.

The LLG term takes the spin density it couples to from a pluggable source, a callable
``source(t, x, S_all) -> (n_local_spins, 3)`` (local state array, all spins; H already holds
H(S)); the default, :class:`LocalSpinDensity`, is Tr(rho_j sigma)/2 of the evolved rho.
"""
from __future__ import annotations

import ctypes
from typing import Any, Callable, Protocol, Sequence, TypeVar

import numpy as np

from operators.hamiltonian import ElectronHamiltonian, FullDiagonals, RowsTimesH
from operators.observables import diag_block_indices, spin_density_local
from operators.spin import ClassicalSpinHamiltonian
from toolkit import _petscenv
from toolkit.blas import single_thread

from petsc4py import PETSc

from .expint import DiagonalLinear
from .layout import StateLayout

__all__ = ["CoupledRHS", "Term", "Evaluation", "Coherent", "LLG", "SpinDensitySource",
           "LocalSpinDensity", "ClosedRHS"]

#: the extra methods a term may offer (forwarded by CoupledRHS)
OFFERS = ("lead_currents", "stationary", "dense_reference")


class SpinDensitySource(Protocol):
    """The electron spin density the classical spins couple to.  Collective if it needs to
    be (every rank calls it in every evaluation)."""

    def __call__(self, t: float, x: np.ndarray, S_all: np.ndarray) -> np.ndarray:
        """(n_local_spins, 3) spin density on this rank's magnetic sites at time ``t`` from the
        local state array ``x`` and all spins ``S_all`` (n_spins, 3); H holds H(S) already."""
        ...


class LocalSpinDensity:
    """s_j = Tr(rho_j sigma)/2 of the evolved rho on this rank's magnetic sites (the default
    :class:`SpinDensitySource`; local, no communication)."""

    def __init__(self, H: ElectronHamiltonian) -> None:
        d = H.dist
        sites = H.device.spin_sites[d.spin_start:d.spin_stop]
        self.idx = diag_block_indices(sites, d.site_start, d.n_local_rows)

    def __call__(self, t: float, x: np.ndarray, S_all: np.ndarray) -> np.ndarray:
        return spin_density_local(x, self.idx)


class Evaluation:
    """What the terms of one evaluation share (one object per CoupledRHS, refilled by every
    call; the array references are dropped after it).

    t, X, x, f : time, state Vec, its local array (read-only), the local right-hand side
    S_all      : all spins (n_spins, 3) on every rank, None without spins
    mu, V      : the leads' chemical potentials mu(t) and V = mu(t) - mu0, None without leads
    full       : False for :meth:`CoupledRHS.nonstiff` (terms leave out their decay)
    """

    __slots__ = ("t", "X", "x", "f", "S_all", "mu", "V", "full")

    def __init__(self) -> None:
        self.t = 0.0
        self.X: PETSc.Vec | None = None
        self.x: np.ndarray = np.zeros(0, complex)
        self.f: np.ndarray = np.zeros(0, complex)
        self.S_all: np.ndarray | None = None
        self.mu: np.ndarray | None = None
        self.V: np.ndarray | None = None
        self.full = True

    def clear(self) -> None:
        # a held getArray of X/F would keep the Vec's array checked out after the call
        self.X, self.x, self.f = None, _EMPTY, _EMPTY


_EMPTY = np.zeros(0, complex)


class Term:
    """One physical contribution to the right-hand side (module docstring).  Subclasses set
    ``name`` and, in :meth:`bind` (called once by :class:`CoupledRHS`, which gives the shared
    H, layout and products), ``sets``, ``adds``, ``products``; :meth:`evaluate` writes the
    contribution into ``ev.f``."""

    name = "term"
    sets: tuple[str, ...] = ()        # components overwritten
    adds: tuple[str, ...] = ()        # components added to
    products: tuple[str, ...] = ()    # row-distributed components it needs H times
    offers: tuple[str, ...] = ()      # methods of OFFERS it implements
    rhs: "CoupledRHS"

    def bind(self, rhs: "CoupledRHS") -> None:
        if getattr(self, "rhs", None) is not None:
            raise ValueError(f"term '{self.name}' is already part of a right-hand side; build a "
                             f"new term for another one")
        self.rhs = rhs

    def evaluate(self, ev: Evaluation) -> None:
        raise NotImplementedError

    def decay(self) -> tuple[dict, dict]:
        """This term's part of the diagonal decay L: ({row-distributed component: one rate per
        column}, {small component: one rate per entry}); ({}, {}) for none."""
        return {}, {}

    def destroy(self) -> None:
        pass


#: tile edge of the serial -i (X - X^dag): a tile of X, of X^dag and of the result in cache
TILE = 128


class Coherent(Term):
    """-i [H(S), rho].  With the compiled kernels (``H.diagonals``): on one rank -i (X - X^dag)
    with X = H rho (rho is Hermitian: every scheme combines it with real coefficients), one
    left product and an in-place pass; under MPI -i (H rho - rho H) in one pass with the halo
    rows of rho and the whole H in diagonal form for rho H.
    Otherwise -i (X - X^dag) with X = H rho (rho H = (H rho)^dag): one PETSc sparse x dense
    product per evaluation, written into d rho/dt and made anti-Hermitian in place.  (The s-d
    blocks of H are rewritten in place by CoupledRHS.)"""

    name = "coherent"

    def bind(self, rhs: "CoupledRHS") -> None:
        super().bind(rhs)
        H = rhs.H
        self.sets = ("rho",)
        self.rows_h: RowsTimesH | None = None
        self.full: FullDiagonals | None = None
        if H.diagonals is not None:
            # the compiled commutator (toolkit/kernels.py); under MPI x H needs H's columns of
            # every row: the whole H in diagonal form, its s-d blocks following all spins
            if rhs.parallel:
                self.full = FullDiagonals(H.device)
        elif rhs.parallel:
            # rho H from the local rows of rho and the replicated sparse H: no communication
            # beyond the halo rows PETSc's H rho exchanges (instead of an all-to-all of rho)
            self.rows_h = RowsTimesH(H.device, scale=-1.0)
        else:
            # serial: tile pairs (i, j), (j, i) of X copied to two tiles, then written back
            self._tmp = np.empty((2, TILE, TILE), complex)

    def evaluate(self, ev: Evaluation) -> None:
        H = self.rhs.H
        dia = H.diagonals
        if dia is not None:
            # the compiled kernels (toolkit/kernels.py)
            lay = self.rhs.layout
            rho, frho = lay.rho(ev.x), lay.rho(ev.f)
            if self.full is None:
                dia.commutator_hermitian(rho, frho)
                return
            assert H.halo is not None              # set with the diagonals under MPI
            if ev.S_all is not None:
                self.full.set_spins(ev.S_all)
            xl, xu = H.halo.exchange(rho)
            dia.commutator_halo(rho, xl, xu, frho, self.full.dia)
            return
        frho = self.rhs.times_h_into(ev.x, ev.f, "rho")        # X = H rho in d rho/dt
        if self.rows_h is not None:
            if ev.S_all is not None:
                self.rows_h.set_spins(ev.S_all)
            self.rows_h.accumulate(self.rhs.layout.rho(ev.x), frho)   # H rho - rho H
            frho *= -1j
            return
        n = frho.shape[0]
        for j in range(0, n, TILE):
            j1 = min(j + TILE, n)
            for i in range(0, j + 1, TILE):
                i1 = min(i + TILE, n)
                a = self._tmp[0, :i1 - i, :j1 - j]
                a[...] = frho[i:i1, j:j1]
                if i == j:                                      # a diagonal tile
                    o = frho[i:i1, j:j1]
                    np.subtract(a, a.conj().T, out=o)
                    o *= -1j
                    continue
                b = self._tmp[1, :j1 - j, :i1 - i]
                b[...] = frho[j:j1, i:i1]
                o = frho[i:i1, j:j1]
                np.conjugate(b.T, out=o)
                np.subtract(a, o, out=o)
                o *= -1j                                        # -i (X_ij - X_ji^dag)
                np.conjugate(o.T, out=frho[j:j1, i:i1])         # d rho/dt is Hermitian


class LLG(Term):
    """d S_j/dt = -S_j x dH_C/dS_j (+ Gilbert damping; ``ClassicalSpinHamiltonian.rhs``) with
    the electron spin density of ``source`` (a :class:`SpinDensitySource`; default
    :class:`LocalSpinDensity`).  Without spins it writes nothing (the component is empty)."""

    name = "llg"

    def __init__(self, source: SpinDensitySource | None = None) -> None:
        self.source = source

    def bind(self, rhs: "CoupledRHS") -> None:
        super().bind(rhs)
        self.sets = ("spins",)
        self.spinH = rhs.spinH
        if self.source is None:
            self.source = LocalSpinDensity(rhs.H)

    def evaluate(self, ev: Evaluation) -> None:
        if ev.S_all is None:
            return
        assert self.source is not None   # set in bind
        s_loc = self.source(ev.t, ev.x, ev.S_all)
        self.rhs.layout.spins(ev.f)[...] = self.spinH.rhs(ev.S_all, s_loc)


def _product_lib():
    """The PETSc functions of the products (``MatProduct*``, not wrapped by petsc4py 3.18)."""
    lib = _petscenv.libpetsc()
    vp = ctypes.c_void_p
    for name, args in (("MatProductCreateWithMat", [vp, vp, vp, vp]),
                       ("MatProductSetType", [vp, ctypes.c_int]),
                       ("MatProductSetFromOptions", [vp]), ("MatProductSymbolic", [vp]),
                       ("MatProductNumeric", [vp]), ("MatDensePlaceArray", [vp, vp]),
                       ("MatDenseResetArray", [vp])):
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, ctypes.c_int
    return lib


_MATPRODUCT_AB = 1     # MatProductType MATPRODUCT_AB


def kernel_left(H: ElectronHamiltonian, x: np.ndarray, y: np.ndarray, **kw) -> None:
    """y = alpha H x + ... (``kernels.Diagonals.left``; keywords alpha, radd, coef, sum_to)
    on the local rows with the compiled kernel: on one rank directly, under MPI with the halo
    rows of x from the neighbouring ranks (``H.halo``).  ``H.diagonals`` must not be None.
    Collective."""
    dia = H.diagonals
    assert dia is not None
    if H.halo is None:
        dia.left(x, y, **kw)
    else:
        xl, xu = H.halo.exchange(x)
        dia.left_halo(x, xl, xu, y, **kw)


def _f_view(address: int, rows: int, cols: int) -> np.ndarray:
    """The Fortran-ordered complex (rows, cols) array at ``address`` (memory of a state)."""
    buf = (ctypes.c_double * (2 * rows * cols)).from_address(address)
    return np.frombuffer(memoryview(buf), dtype=np.complex128).reshape((rows, cols), order="F")


def minus_i_plus(out: np.ndarray, X: np.ndarray, coef: np.ndarray, work: np.ndarray) -> None:
    """out = -i out + X * coef (``coef``: one value per column) in place, column chunks of
    ``work``'s size (>= one column) at a time, so that each chunk of ``out``, X and the product
    stays in cache: one pass over X and out, no temporary of their size.  ``out``, X:
    (rows, columns) Fortran-ordered views; ``work``: ``expint.combine_work`` (the same
    chunk as the stage combinations)."""
    rows, cols = out.shape
    step = max(1, len(work) // max(rows, 1))
    for c0 in range(0, cols, step):
        c1 = min(c0 + step, cols)
        o = out[:, c0:c1]
        t = work[:o.size].reshape(o.shape, order="F")
        o *= -1j
        np.multiply(X[:, c0:c1], coef[c0:c1], out=t)
        o += t



class _Product:
    """H times one row-distributed component: a placeholder dense input and a dense output
    matrix, both on arrays of their own that are never written (calloc'ed zeros: the pages
    stay unallocated) and replaced by ``MatDensePlaceArray`` for every product: the input by the
    component in the state, the output by the component of the right-hand side
    (:meth:`CoupledRHS.times_h_into`) or by a work array (:meth:`CoupledRHS.times_h`, made
    resident only when used).  The product is ``MatProductCreateWithMat`` + symbolic once,
    numeric per call.  With the compiled kernels (``H.diagonals``) no PETSc objects are made:
    every product is :func:`kernel_left`."""

    def __init__(self, H: ElectronHamiltonian, layout: StateLayout, name: str) -> None:
        nloc, N = layout.nloc, layout.N
        cols = (nloc, N) if name == "rho" else (PETSc.DECIDE, layout.columns(name))
        ncols = N if name == "rho" else layout.columns(name)
        self.shape = (nloc, ncols)
        self._work: np.ndarray | None = None
        self.H = H
        self.dia = H.diagonals          # H in diagonal form for the compiled kernels, or None
        if self.dia is not None:
            return
        self._unused = [np.zeros(max(nloc * ncols, 1), complex) for _ in range(2)]
        self.mat = PETSc.Mat().createDense([(nloc, N), cols],
                                           array=self._unused[0][:nloc * ncols], comm=H.comm)
        self.mat.assemble()
        self.out = PETSc.Mat().createDense([(nloc, N), cols],
                                           array=self._unused[1][:nloc * ncols], comm=H.comm)
        self.out.assemble()
        self.lib = lib = _product_lib()
        self.handle = ctypes.c_void_p(self.mat.handle)
        self.out_handle = ctypes.c_void_p(self.out.handle)
        for rc in (lib.MatProductCreateWithMat(ctypes.c_void_p(H.mat.handle), self.handle,
                                               None, self.out_handle),
                   lib.MatProductSetType(self.out_handle, _MATPRODUCT_AB),
                   lib.MatProductSetFromOptions(self.out_handle),
                   lib.MatProductSymbolic(self.out_handle)):
            if rc != 0:
                raise RuntimeError(f"PETSc MatProduct set-up of H x {name} failed (error {rc})")

    @property
    def work(self) -> np.ndarray:
        """The work array of :meth:`CoupledRHS.times_h` (local rows x columns, Fortran)."""
        if self._work is None:
            self._work = np.empty(self.shape, complex, order="F")
        return self._work

    def numeric(self, x_address: int, out_address: int) -> None:
        """out = H x for the component at ``x_address`` into the memory at ``out_address``."""
        if self.dia is not None:                     # the compiled kernel
            n, ncols = self.shape
            kernel_left(self.H, _f_view(x_address, n, ncols), _f_view(out_address, n, ncols))
            return
        lib = self.lib
        lib.MatDensePlaceArray(self.handle, ctypes.c_void_p(x_address))
        lib.MatDensePlaceArray(self.out_handle, ctypes.c_void_p(out_address))
        try:
            rc = lib.MatProductNumeric(self.out_handle)
        finally:
            lib.MatDenseResetArray(self.out_handle)
            lib.MatDenseResetArray(self.handle)
        if rc != 0:
            raise RuntimeError(f"PETSc MatProductNumeric failed (error {rc})")

    def destroy(self) -> None:
        if self.dia is not None:
            return
        self.out.destroy()
        self.mat.destroy()


T = TypeVar("T", bound=Term)


class CoupledRHS:
    """Callable ``(ts, t, X, F)`` for ``TS.setRHSFunction``: the sum of ``terms`` (evaluated in
    order).  Collective.

    ``mu0``: the leads' chemical potentials before any bias (None without leads);
    ``mu_of_t``: callable t -> mu(t) (bias protocol; default the constant mu0).  Calling the
    object evaluates the full right-hand side, :meth:`nonstiff` the one without :meth:`decay`.
    """

    def __init__(self, H: ElectronHamiltonian, spinH: ClassicalSpinHamiltonian,
                 layout: StateLayout, terms: Sequence[Term], *, mu0: np.ndarray | None = None,
                 mu_of_t: Callable[[float], np.ndarray] | None = None) -> None:
        self.H, self.spinH, self.layout = H, spinH, layout
        comm = H.comm
        self.parallel = comm.getSize() > 1
        self._products = {"rho": _Product(H, layout, "rho")}
        self.has_spins = layout.n_spins_total > 0
        if self.parallel and self.has_spins:
            self.S_all_vec = PETSc.Vec().createSeq(3 * layout.n_spins_total, comm=PETSc.COMM_SELF)
            is_from = PETSc.IS().createGeneral(layout.spin_global_indices(), comm=comm)
            tmp = layout.create_vec()
            self.scatter = PETSc.Scatter().create(tmp, is_from, self.S_all_vec, None)
            tmp.destroy()
        self.mu0 = None if mu0 is None else np.asarray(mu0, float)
        if mu_of_t is None and self.mu0 is not None:
            mus = self.mu0.copy()
            mu_of_t = (lambda t: mus)
        self.mu_of_t = mu_of_t
        self.terms = list(terms)
        for term in self.terms:
            term.bind(self)
            for name in term.products:
                if name not in self._products:
                    self._products[name] = _Product(H, layout, name)
        self._zero = self._writes()
        self._offers: dict[str, Any] = {}    # method name -> the term offering it
        for term in self.terms:
            for name in term.offers:
                if name not in OFFERS:
                    raise ValueError(f"term '{term.name}' offers {name!r}: allowed are {OFFERS}")
                if name in self._offers:
                    raise ValueError(f"terms '{self._offers[name].name}' and '{term.name}' both "
                                     f"offer {name!r}")
                self._offers[name] = term
        self._ev = Evaluation()
        self.n_calls = 0

    def _writes(self) -> list[Callable[[np.ndarray], None]]:
        """Check what the terms write; the zeroing of every component no term sets."""
        lay = self.layout
        comps = ("rho", *lay.aux_names, *lay.small_names, "spins")
        setter: dict[str, str] = {}
        added: dict[str, str] = {}
        for term in self.terms:
            for name in (*term.sets, *term.adds):
                if name not in comps:
                    raise ValueError(f"term '{term.name}' writes component '{name}', which the "
                                     f"state layout does not have (components: {list(comps)})")
            for name in term.sets:
                if name in setter:
                    raise ValueError(f"terms '{setter[name]}' and '{term.name}' both set "
                                     f"component '{name}'")
                if name in added:
                    raise ValueError(f"term '{term.name}' sets component '{name}' after term "
                                     f"'{added[name]}' added to it: put '{term.name}' first")
                setter[name] = term.name
            for name in term.adds:
                added.setdefault(name, term.name)

        def zero(name: str) -> Callable[[np.ndarray], None]:
            if name == "rho":
                return lambda f: lay.rho(f).fill(0.0)
            if name == "spins":
                return lambda f: lay.spins(f).fill(0.0)
            if name in lay.small_names:
                def small(f: np.ndarray) -> None:
                    v = lay.small(f, name)
                    if v is not None:
                        v.fill(0.0)
                return small
            return lambda f: lay.view(f, name).fill(0.0)
        return [zero(n) for n in comps if n not in setter]

    # -- shared machinery ------------------------------------------------------------------
    def spins_all(self, X: PETSc.Vec, x: np.ndarray) -> np.ndarray:
        """All spins (n_spins, 3) on every rank.  Collective."""
        if not self.parallel:
            return self.layout.spins(x).real
        self.scatter.scatter(X, self.S_all_vec, PETSc.InsertMode.INSERT_VALUES,
                             PETSc.ScatterMode.FORWARD)
        return self.S_all_vec.getArray(readonly=True).real.reshape(-1, 3)

    def times_h(self, x: np.ndarray, name: str) -> np.ndarray:
        """Local rows of H times the row-distributed component ``name`` of the local array
        ``x`` (a work array of the product, overwritten by the next one).  Collective."""
        p = self._products[name]
        w = p.work
        p.numeric(self.layout.address(x, name), w.ctypes.data)
        return w

    def times_h_into(self, x: np.ndarray, f: np.ndarray, name: str) -> np.ndarray:
        """H times the component ``name`` of the local array ``x``, written into the same
        component of ``f`` (a right-hand side; no work array); returns its (local rows,
        columns) view.  Collective."""
        p = self._products[name]
        p.numeric(self.layout.address(x, name), self.layout.address(f, name))
        return self.layout.view(f, name)

    def hamiltonian_times_rho(self, x: np.ndarray) -> np.ndarray:
        """X = H rho for the rho stored in the local array ``x`` (returns the local rows of X)."""
        return self.times_h(x, "rho")

    def term(self, kind: type[T]) -> T:
        """The term of class ``kind`` (KeyError if there is none)."""
        for t in self.terms:
            if isinstance(t, kind):
                return t
        raise KeyError(f"no term {kind.__name__} in this right-hand side; its terms are "
                       f"{[t.name for t in self.terms]}")

    # -- evaluation ------------------------------------------------------------------------
    def __call__(self, ts, t: float, X: PETSc.Vec, F: PETSc.Vec) -> None:
        self._evaluate(t, X, F, True)

    def nonstiff(self, ts, t: float, X: PETSc.Vec, F: PETSc.Vec) -> None:
        """N(t, y): the right-hand side without the decay L y (``TS.setRHSFunction`` form)."""
        self._evaluate(t, X, F, False)

    def _evaluate(self, t: float, X: PETSc.Vec, F: PETSc.Vec, full: bool) -> None:
        self.n_calls += 1
        ev = self._ev
        x = X.getArray(readonly=True)
        f = F.getArray()
        ev.t, ev.X, ev.x, ev.f, ev.full = t, X, x, f, full
        try:
            # a diverging state (inf, nan) is caught by the run's finiteness checks with a
            # one-line error; NumPy's warnings on the way would only be noise
            with np.errstate(invalid="ignore", over="ignore"):
                if self.has_spins:
                    ev.S_all = self.spins_all(X, x)
                    self.H.set_spins(self.layout.spins(x).real)
                if self.mu0 is not None:
                    assert self.mu_of_t is not None   # set with mu0
                    ev.mu = self.mu_of_t(t)
                    ev.V = np.asarray(ev.mu, float) - self.mu0
                for zero in self._zero:
                    zero(f)
                # the dense NumPy parts are small matrix products per rank: BLAS threads only cost
                # (the auxiliary-mode junction of paper 000: 30 % of an RHS; toolkit/blas.py)
                with single_thread():
                    for term in self.terms:
                        term.evaluate(ev)
        finally:
            ev.clear()

    def decay(self) -> DiagonalLinear:
        """The diagonal decay L of all terms (:meth:`Term.decay`)."""
        cols: dict = {}
        small: dict = {}
        for term in self.terms:
            c, s = term.decay()
            for name in (*c, *s):
                if name in cols or name in small:
                    raise ValueError(f"two terms declare a decay of component '{name}'")
            cols.update(c)
            small.update(s)
        return DiagonalLinear(self.layout, cols, small)

    # -- what the terms offer --------------------------------------------------------------
    def _offered(self, name: str) -> Any:
        if name not in self._offers:
            raise AttributeError(f"no term of this right-hand side offers '{name}' (terms: "
                                 f"{[t.name for t in self.terms]})")
        return self._offers[name]

    def lead_currents(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Re Tr Pi and Re Tr(sigma_a Pi) of the lead term (per wide-band coupling or per lead,
        see the term), or empty arrays without leads.  Collective."""
        if "lead_currents" not in self._offers:
            return np.zeros(0), np.zeros((0, 3))
        return self._offers["lead_currents"].lead_currents(x)

    def stationary(self, mu: np.ndarray | None = None) -> dict:
        """The stationary state of the lead term that offers one (auxiliary modes).
        Collective."""
        return self._offered("stationary").stationary(mu)

    def dense_reference(self, V: np.ndarray | None = None):
        """The dense serial reference of the lead term that offers one (auxiliary modes).
        Collective."""
        return self._offered("dense_reference").dense_reference(V)

    def destroy(self) -> None:
        for term in self.terms:
            term.destroy()
        for p in self._products.values():
            p.destroy()


def ClosedRHS(H: ElectronHamiltonian, spinH: ClassicalSpinHamiltonian,
              layout: StateLayout) -> CoupledRHS:
    """The right-hand side of an isolated junction: :class:`Coherent` and :class:`LLG`."""
    return CoupledRHS(H, spinH, layout, [Coherent(), LLG()])
