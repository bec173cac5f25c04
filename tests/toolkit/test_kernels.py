"""The compiled kernels (toolkit/kernels.py) against independent answers: SciPy/NumPy products
of the same matrices, and the PETSc products and NumPy combinations that the right-hand side
and the exponential integrator use without them.

Tolerances: the kernels sum the same terms in another order, so they agree to round-off of the
operands' size (1e-13 absolute on O(1) entries and sums of <= 10 terms); whole runs of a few
steps agree to 1e-12."""
import numpy as np
import pytest
import scipy.sparse as sp

from integrators import Simulation
from toolkit import kernels

pytestmark = pytest.mark.skipif(not kernels.available(),
                                reason=f"compiled kernels not in use: {kernels.reason()}")

RNG = np.random.default_rng(7)


def _matrix(n, band=(0, 1, 2, 5, 11), complex_offsets=(1,), holes=0.3):
    """A Hermitian banded matrix with real and complex diagonals and zeros scattered on them."""
    A = sp.lil_matrix((n, n), dtype=complex)
    for o in band:
        if o >= n:
            continue
        v = RNG.normal(size=n - o) * (RNG.random(n - o) > holes)
        if o in complex_offsets:
            v = v + 1j * RNG.normal(size=n - o)
        A.setdiag(v, o)
    A = A.tocsr()
    A = (A + A.conj().T).tocsr()
    A.sort_indices()
    return A


def _dia(A):
    d = kernels.Diagonals(A.indptr, A.indices)
    d.update(A.data)
    return d


def _cplx(*shape):
    return np.asfortranarray(RNG.normal(size=shape) + 1j * RNG.normal(size=shape))


@pytest.mark.parametrize("n", [1, 7, 600, 1500])
def test_commutator_equals_dense(n):
    """-i (A x - x A) for a non-Hermitian x, across row blocks (512) and matrix ends."""
    A = _matrix(n)
    x = _cplx(n, n)
    y = np.zeros_like(x, order="F")
    _dia(A).commutator(x, y)
    Ad = A.toarray()
    assert np.abs(y - (-1j) * (Ad @ x - x @ Ad)).max() < 1e-12


@pytest.mark.parametrize("n", [1, 7, 600, 1501])
def test_hermitian_commutator_equals_dense_and_is_hermitian(n):
    """-i (A x - (A x)^dag) for Hermitian A and x is -i [A, x], across the tiles (32) and row
    blocks, and exactly Hermitian."""
    A = _matrix(n)
    x = _cplx(n, n)
    x = np.asfortranarray(x + x.conj().T)
    y = np.zeros_like(x, order="F")
    _dia(A).commutator_hermitian(x, y)
    Ad = A.toarray()
    assert np.abs(y - (-1j) * (Ad @ x - x @ Ad)).max() < 1e-12
    assert np.array_equal(y, y.conj().T)


@pytest.mark.parametrize("ncol, m", [(1, 1), (2, 2), (3, 1), (12, 2), (40, 4), (40, 1), (30, 3),
                                     (9, 9)])
@pytest.mark.parametrize("stream", [False, True])
def test_left_product_with_shifts_and_pole_sum(ncol, m, stream, request):
    """alpha A x + (radd_i + coef_c) x, and the column sum mod m in the same pass: the columns
    in groups of 4 and one by one, in the order of the sum's columns, with and without
    streaming stores (odd n: columns off a 32-byte boundary)."""
    if stream:
        request.getfixturevalue("streaming")
    n = 1101
    A = _matrix(n)
    d = _dia(A)
    x = _cplx(n, ncol)
    y = np.zeros_like(x, order="F")
    d.left(x, y)
    assert np.abs(y - A @ x).max() < 1e-13
    radd = RNG.normal(size=n)
    coef = RNG.normal(size=ncol) + 1j * RNG.normal(size=ncol)
    s = _cplx(n, m)
    s0 = s.copy()
    d.left(x, y, alpha=-1j, radd=radd, coef=coef, sum_to=s)
    ref = -1j * (A @ x) + radd[:, None] * x + coef[None, :] * x
    assert np.abs(y - ref).max() < 1e-13
    want = s0 + x.reshape(n, ncol // m, m).sum(axis=1)
    assert np.abs(s - want).max() < 1e-13


def test_zero_real_and_complex_diagonals_are_classified():
    """A stored diagonal of zeros is skipped, a real one takes the real path, a complex one the
    complex path: the commutator equals the dense one in each case."""
    n = 50
    i = np.arange(n)
    rows = [i, i[:-3], i[3:], i[:-5], i[5:]]
    cols = [i, i[:-3] + 3, i[3:] - 3, i[:-5] + 5, i[5:] - 5]
    c3 = RNG.normal(size=n - 3) + 1j * RNG.normal(size=n - 3)
    vals = [RNG.normal(size=n), c3, c3.conj(), np.zeros(n - 5), np.zeros(n - 5)]
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n, n))
    A.sort_indices()
    d = _dia(A)
    assert list(d.offsets) == [-5, -3, 0, 3, 5] and list(d.isreal) == [2, 0, 1, 0, 2]
    x = _cplx(n, n)
    y = np.zeros_like(x, order="F")
    d.commutator(x, y)
    Ad = A.toarray()
    assert np.abs(y - (-1j) * (Ad @ x - x @ Ad)).max() < 1e-12


def test_left_product_of_no_columns():
    d = _dia(_matrix(5))
    x = np.zeros((5, 0), complex, order="F")
    d.left(x, np.zeros((5, 0), complex, order="F"))


def test_operand_checks():
    d = _dia(_matrix(20))
    x = _cplx(20, 3)
    with pytest.raises(ValueError, match="Fortran-ordered"):
        d.left(np.ascontiguousarray(x), np.zeros((20, 3), complex, order="F"))
    with pytest.raises(ValueError, match="overlap"):
        d.left(x, x)
    with pytest.raises(ValueError, match="sum_to"):
        d.left(x, np.zeros_like(x, order="F"), sum_to=np.zeros((20, 2), complex, order="F"))


def test_combine_equals_numpy_and_allows_out_as_first_term():
    nrows, ncol = 333, 17
    vs = [_cplx(nrows, ncol) for _ in range(4)]
    cs = [RNG.normal(size=ncol) for _ in range(3)] + [np.zeros(ncol)]
    ref = sum(c[None, :] * v for c, v in zip(cs, vs))
    out = np.zeros((nrows, ncol), complex, order="F")
    kernels.combine(out, vs, cs, nrows)
    assert np.abs(out - ref).max() < 1e-13
    v0 = vs[0].copy(order="F")
    kernels.combine(v0, [v0, *vs[1:]], cs, nrows)        # in place on the first term
    assert np.abs(v0 - ref).max() < 1e-13
    flat = vs[1].reshape(-1, order="F")                   # one coefficient for all entries
    out = np.zeros(flat.size, complex)
    kernels.combine(out, [flat, flat], [np.array([2.0]), np.array([-0.5])], flat.size)
    assert np.abs(out - 1.5 * flat).max() < 1e-15


def _two_outputs_in_place_on_the_first_term(nrows, ncol, nt):
    """A combination with two outputs, out2 in place on the first term, checked against NumPy;
    returns its inputs, coefficients and references."""
    vs = [_cplx(nrows, ncol) for _ in range(nt)]
    cs = [RNG.normal(size=ncol) for _ in range(nt)]
    ds = [RNG.normal(size=ncol) for _ in range(nt)]
    ref = sum(c[None, :] * v for c, v in zip(cs, vs))
    ref2 = sum(d[None, :] * v for d, v in zip(ds, vs))
    out = np.zeros((nrows, ncol), complex, order="F")
    v0 = vs[0].copy(order="F")
    kernels.combine(out, [v0, *vs[1:]], cs, nrows, out2=v0, coefs2=ds)
    assert np.abs(out - ref).max() < 1e-13 and np.abs(v0 - ref2).max() < 1e-13
    return vs, cs, ds, ref, ref2


def test_combine_two_outputs_in_one_pass():
    """out = sum c_t v_t and out2 = sum d_t v_t in one pass, out2 in place on the first term."""
    nrows = 257
    vs, cs, ds, ref, ref2 = _two_outputs_in_place_on_the_first_term(nrows, 9, 4)
    v0, v1 = vs[0].copy(order="F"), vs[1].copy(order="F")   # both outputs in place
    kernels.combine(v1, [v0, v1, *vs[2:]], cs, nrows, out2=v0, coefs2=ds)
    assert np.abs(v1 - ref).max() < 1e-13 and np.abs(v0 - ref2).max() < 1e-13
    with pytest.raises(ValueError, match="partially overlaps"):
        kernels.combine(vs[1][:, 1:], [v[:, :-1] for v in vs], [c[:-1] for c in cs], nrows,
                        out2=vs[0][:, 1:], coefs2=[d[:-1] for d in ds])
    with pytest.raises(ValueError, match="out and out2 overlap"):
        kernels.combine(vs[1], vs, cs, nrows, out2=vs[1], coefs2=ds)


@pytest.fixture
def streaming():
    """Streaming stores on every output (the kernels use them from 32 MiB on): the aligned
    and the unaligned paths on small arrays."""
    old = kernels.stream_min(0)
    yield
    kernels.stream_min(old)


@pytest.mark.parametrize("nrows", [257, 256])
def test_combine_with_streaming_stores(streaming, nrows):
    """The streaming stores give the same combinations (odd and even rows: columns that start
    on and off a 32-byte boundary)."""
    ncol = 5
    vs, cs, _, ref, _ = _two_outputs_in_place_on_the_first_term(nrows, ncol, 3)
    # an output 8 bytes off a 16-byte boundary (allowed for complex128): ordinary stores
    raw = np.zeros(2 * nrows * ncol + 1)
    odd = raw[1:].view(complex).reshape((nrows, ncol), order="F")
    assert odd.ctypes.data % 16 == 8
    kernels.combine(odd, vs, cs, nrows)
    assert np.abs(odd - ref).max() < 1e-13
    A = _matrix(nrows)
    _dia(A).left(vs[1], odd)
    assert np.abs(odd - A @ vs[1]).max() < 1e-12
    flat = [v.reshape(-1, order="F")[1:] for v in vs]        # off a 32-byte boundary
    e = [RNG.normal(size=flat[0].size) for _ in range(3)]
    out = np.zeros(flat[0].size, complex)
    kernels.combine_entries(out, flat, e)
    assert np.abs(out - sum(c * v for c, v in zip(e, flat))).max() < 1e-13


def test_combine_entries_one_coefficient_per_entry_in_place():
    """out = sum c_t v_t and out2 = sum d_t v_t with a coefficient per entry (the second-tier
    matrices of the auxiliary modes) against NumPy; both outputs may be inputs (chunks are
    read before they are written), lengths that are not a multiple of the chunk."""
    n = 2 * 1024 + 37
    vs = [RNG.normal(size=n) + 1j * RNG.normal(size=n) for _ in range(4)]
    cs = [RNG.normal(size=n) for _ in range(4)]
    ds = [RNG.normal(size=n) for _ in range(4)]
    ref = sum(c * v for c, v in zip(cs, vs))
    ref2 = sum(d * v for d, v in zip(ds, vs))
    out = np.empty(n, complex)
    kernels.combine_entries(out, vs, cs)
    assert np.abs(out - ref).max() < 1e-13
    v0, v2 = vs[0].copy(), vs[2].copy()
    kernels.combine_entries(v2, [v0, vs[1], v2, vs[3]], cs, v0, ds)   # out2 = v0, out = v2
    assert np.abs(v2 - ref).max() < 1e-13 and np.abs(v0 - ref2).max() < 1e-13
    with pytest.raises(ValueError, match="float64"):
        kernels.combine_entries(out, vs, [c.astype(np.float32) for c in cs])


def _open_valve(size, *, wide=True):
    from toolkit import DeviceBuilder

    b = DeviceBuilder(size=size)
    Lx = size[0]
    b.add_layer("PL", (0, 2), J_sd=1.2, J_ex=-0.5, spin=(1, 0.3, 0.5))
    b.add_layer("FL", (Lx - 2, Lx), J_sd=1.0, J_ex=-0.5, spin=(0.2, -0.4, 1))
    if wide:
        b._doc["leads"] = [{"side": "left", "gamma": 1.0, "temperature": 0.1},
                           {"side": "right", "gamma": [0.8, 0.6, 0.7, 0.5], "temperature": 0.1}]
        b.set("electrons", n_poles=8)
    else:
        b._doc["leads"] = [{"side": "left", "model": "tight-binding", "representation": "modes",
                            "mu": -0.5, "sites": 8, "n_poles": 6, "temperature": 0.1},
                           {"side": "right", "model": "tight-binding",
                            "representation": "extended", "sites": 6, "mu": -0.5,
                            "temperature": 0.1, "n_poles": 6}]
    b._doc["bias"] = {"protocol": "asymmetric", "V": 0.4, "t_on": 0.0}
    b.set("time", dt=0.05)
    return b.finalized()


def _perturbed(sim, seed):
    """A Hermitian random change of rho and random lead components (the right-hand side is
    affine in them, so every term is exercised with O(1) entries); the same on every rank."""
    rng = np.random.default_rng(seed)
    lay = sim.layout
    N = lay.N
    r = 0.1 * (rng.normal(size=(N, N)) + 1j * rng.normal(size=(N, N)))
    a = sim.y.getArray()
    d = sim.H.dist
    lay.rho(a)[...] += (r + r.conj().T)[d.row_start:d.row_start + d.n_local_rows]
    for name in lay.aux_names:
        v = lay.view(a, name)
        v += 0.1 * (rng.normal(size=v.shape) + 1j * rng.normal(size=v.shape))
    sim.y.stateIncrease()


@pytest.mark.parametrize("size,wide", [((6, 2), True), ((5, 2), False)])
def test_right_hand_side_and_steps_equal_the_petsc_path(comm, size, wide):
    """The same run with and without the kernels: the right-hand side (full and nonstiff) at a
    perturbed state agrees to 1e-12, and 10 exponential-RK steps with moving spins under a bias
    to 1e-12.  Wide-band leads (Padé blocks: H Pi, the pole sum, Gamma/2) and finite-band
    leads (auxiliary modes and an extended lead with the rigid shift of its explicit sites).
    Under MPI the kernels take the halo rows from the neighbouring ranks."""
    dev = _open_valve(size, wide=wide)
    a = Simulation(dev, comm)
    with kernels.disabled():
        b = Simulation(dev, comm)
    try:
        assert a.H.diagonals is not None
        assert b.H.diagonals is None
        for s in (a, b):
            _perturbed(s, 3)
        ya, yb = a.y.getArray(readonly=True), b.y.getArray(readonly=True)
        assert np.array_equal(ya, yb)
        for fn in ("__call__", "nonstiff"):
            Fa, Fb = a.y.duplicate(), b.y.duplicate()
            getattr(a.rhs, fn)(None, 0.3, a.y, Fa)
            getattr(b.rhs, fn)(None, 0.3, b.y, Fb)
            fa, fb = Fa.getArray(readonly=True), Fb.getArray(readonly=True)
            assert np.abs(fa - fb).max() < 1e-12 * max(1.0, np.abs(fb).max()), fn
            assert np.abs(fb).max() > 0.1
            Fa.destroy()
            Fb.destroy()
        a.step(10, record=False)
        with kernels.disabled():
            b.step(10, record=False)
        ra, sa = a.state(root=None)
        rb, sb = b.state(root=None)
        assert np.abs(ra - rb).max() < 1e-12 and np.abs(sa - sb).max() < 1e-12
        assert np.abs(sa - dev.spins0).max() > 1e-4          # the spins moved
    finally:
        a.destroy()
        b.destroy()


@pytest.mark.parametrize("full", [True, False])
def test_second_tier_equals_numpy(full):
    """The auxiliary modes' second tier in one pass against the NumPy formulas (rates from the
    mode energies; without ``full`` only their imaginary parts)."""
    ny, nx, nu, nch = 7, 5, 4, 3
    c = lambda *s: RNG.normal(size=s) + 1j * RNG.normal(size=s)   # noqa: E731
    zy, kap, zeta = c(ny), c(nx), c(nu)
    Om, Th, K, PR, PL = c(ny, nx), c(ny, ny), c(nu, ny), c(nch, nx), c(nch, ny)
    yc = np.array([0, 0, 1, 1, 1, 2, 2])
    ubar = np.array([4, 0, 2, 2])
    ro = -1j * (zy[:, None] - kap[None, :])
    rt = -1j * (zy[:, None] - zy.conj()[None, :])
    rk = -1j * (zeta[:, None] - zy.conj()[None, :])
    if not full:
        ro, rt, rk = (1j * r.imag for r in (ro, rt, rk))
    want_om = ro * Om + PR[yc]
    want_th = rt * Th + PL[yc] - PL[yc].conj().T
    want_k = rk * K + PR[yc][:, ubar].conj().T
    fOm, fTh, fK = np.zeros_like(Om), np.zeros_like(Th), np.zeros_like(K)
    kernels.second_tier(zy, kap, zeta, full, Om, Th, K, PR, PL, yc, ubar, fOm, fTh, fK)
    for got, want in ((fOm, want_om), (fTh, want_th), (fK, want_k)):
        assert np.abs(got - want).max() < 1e-13
    with pytest.raises(ValueError, match="overlaps"):
        kernels.second_tier(zy, kap, zeta, full, Om, Th, K, PR, PL, yc, ubar, Om, fTh, fK)


def test_combine_entries_with_coefficient_tables():
    """Coefficients from tables indexed per entry (few distinct rates) give the same sums as
    the per-entry arrays they stand for, bitwise; an index beyond a table is refused."""
    n, nt = 3000, 3
    vs = [_cplx(n).ravel() for _ in range(nt)]
    index = RNG.integers(0, 40, size=n).astype(np.uint16)
    tabs = [RNG.normal(size=40) for _ in range(nt)]
    tabs2 = [RNG.normal(size=40) for _ in range(nt)]
    out, out2 = np.zeros(n, complex), np.zeros(n, complex)
    want, want2 = np.zeros(n, complex), np.zeros(n, complex)
    kernels.combine_entries(want, vs, [t[index] for t in tabs], want2, [t[index] for t in tabs2])
    kernels.combine_entries(out, vs, tabs, out2, tabs2, index=index)
    assert np.array_equal(out, want) and np.array_equal(out2, want2)
    assert np.abs(out - sum(t[index] * v for t, v in zip(tabs, vs))).max() < 1e-13
    with pytest.raises(ValueError, match="tables"):
        kernels.combine_entries(out, vs, [t[:10] for t in tabs], index=index)
