"""The PETSc Hamiltonian against a dense NumPy construction of Eq. (1) of paper 004."""
import numpy as np
import pytest
from helpers import valve_1d, valve_2d

from operators.hamiltonian import ElectronHamiltonian, dense_hamiltonian
from operators.spin import ClassicalSpinHamiltonian
from toolkit import DeviceBuilder


@pytest.mark.parametrize("builder", [valve_1d, valve_2d,
                                     lambda: DeviceBuilder(size=(3, 2, 2)).add_layer(
                                         "M", (1, 2), J_sd=0.7, spin=(0, 1, 1))])
def test_matches_dense(comm, builder):
    dev = builder().finalized()
    H = ElectronHamiltonian(dev, comm)
    # exact: same floating-point operations, only assembly differs
    assert np.abs(H.to_dense() - dense_hamiltonian(dev)).max() < 1e-15
    rng = np.random.default_rng(1)
    S = rng.normal(size=(dev.n_spins, 3))
    H.set_spins_global(S)
    assert np.abs(H.to_dense() - dense_hamiltonian(dev, S)).max() < 1e-15
    Hd = H.to_dense()
    assert np.abs(Hd - Hd.conj().T).max() == 0.0


def _eq1_by_kron(dev, S) -> np.ndarray:
    """Eq. (1) of paper 004 written out with Kronecker products of site matrices and Pauli
    matrices (independent of the triplets of operators/hamiltonian.py)."""
    n = dev.n_sites
    hop = np.zeros((n, n))
    for (i, j), t in zip(dev.bonds, dev.hopping):
        hop[i, j] -= t
        hop[j, i] -= t
    pauli = [np.array(m, complex) for m in ([[0, 1], [1, 0]], [[0, -1j], [1j, 0]],
                                             [[1, 0], [0, -1]])]
    H = np.kron(hop + np.diag(dev.site_onsite), np.eye(2)).astype(complex)
    for j, J, s in zip(dev.spin_sites, dev.J_sd, S):
        P = np.zeros((n, n))
        P[j, j] = 1.0
        H += np.kron(P, 0.5 * J * sum(c * p for c, p in zip(s, pauli)))
    return H


def test_csr_and_dense_builders_agree_bitwise(comm):
    """The PETSc matrix (rows distributed over ``comm``) and dense_hamiltonian come from the same
    CSR triplets: equal bit for bit on a 2D device with s-d coupling, per-layer, inter-layer and
    random per-bond hopping, per-site on-site energies and per-spin J_sd, before and after a
    spin update (fast in-place path).  Both equal Eq. (1) written with Kronecker products to
    round-off (4e-16 absolute for entries <= 2: different operation order)."""
    import dataclasses

    b = valve_2d(Lx=7, Ly=3, J_sd=1.3)
    b.add_layer("SP", (2, 5), hopping=0.6)
    b.set_bond_hopping("PL", "SP", 0.35)
    base = b.finalized()
    rng = np.random.default_rng(7)
    dev = dataclasses.replace(
        base, hopping=base.hopping * rng.uniform(0.5, 1.5, len(base.hopping)),
        onsite=rng.normal(scale=0.3, size=base.n_sites),
        J_sd=base.J_sd * rng.uniform(0.5, 1.5, base.n_spins))
    bits = lambda A: np.ascontiguousarray(A).view(np.uint64)  # noqa: E731
    H = ElectronHamiltonian(dev, comm)
    assert H._fast
    Hd = dense_hamiltonian(dev)
    assert np.array_equal(bits(H.to_dense()), bits(Hd))
    assert np.abs(Hd - _eq1_by_kron(dev, dev.spins0)).max() < 4e-16
    S = rng.normal(size=(dev.n_spins, 3))
    H.set_spins_global(S)
    Hd = dense_hamiltonian(dev, S)
    assert np.array_equal(H.to_dense(), Hd)   # values (the in-place update adds in another order)
    assert np.abs(Hd - _eq1_by_kron(dev, S)).max() < 4e-16
    H.destroy()


def test_fast_and_slow_update_agree(comm):
    dev = valve_2d().finalized()
    fast, slow = ElectronHamiltonian(dev, comm), ElectronHamiltonian(dev, comm)
    assert fast._fast
    slow._fast = False
    S = np.random.default_rng(2).normal(size=(dev.n_spins, 3))
    fast.set_spins_global(S)
    slow.set_spins_global(S)
    assert np.abs(fast.to_dense() - slow.to_dense()).max() == 0.0


def test_hopping_sign_and_spectrum_of_chain(comm):
    """J_sd = 0 open chain: eps_k = -2 t cos(k pi/(N+1)), each twice (spin)."""
    N, t = 9, 1.3
    dev = DeviceBuilder(size=(N,), hopping=t).finalized()
    w = np.linalg.eigvalsh(ElectronHamiltonian(dev, comm).to_dense())
    k = np.arange(1, N + 1)
    ref = np.sort(np.repeat(-2 * t * np.cos(k * np.pi / (N + 1)), 2))
    assert np.abs(w - ref).max() < 1e-12


def test_layer_and_bond_hopping():
    b = DeviceBuilder(size=(6,), hopping=1.0)
    b.add_layer("A", (0, 3), hopping=0.5)
    b.add_layer("B", (3, 6))
    b.set_bond_hopping("A", "B", 0.25)
    dev = b.finalized()
    H = dense_hamiltonian(dev)
    assert H[0, 2] == -0.5 and H[2 * 2, 2 * 3] == -0.25 and H[2 * 4, 2 * 5] == -1.0


def test_classical_gradient_is_derivative_of_energy():
    """g = dH_C/dS by central finite differences (step 1e-6 -> error ~1e-9)."""
    b = valve_1d(K=0.3, B=(0.2, -0.1, 0.4))
    dev = b.finalized()
    h = ClassicalSpinHamiltonian(dev)
    rng = np.random.default_rng(3)
    S, s = rng.normal(size=(dev.n_spins, 3)), rng.normal(size=(dev.n_spins, 3))
    g = h.gradient(S, s)
    E = lambda S_: sum(h.energy(S_, s).values())
    num = np.zeros_like(S)
    for i in range(dev.n_spins):
        for c in range(3):
            d = np.zeros_like(S)
            d[i, c] = 1e-6
            num[i, c] = (E(S + d) - E(S - d)) / 2e-6
    assert np.abs(g - num).max() < 1e-7
