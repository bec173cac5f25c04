"""Paper 000's torques (Eqs. 7, 11) and magnonic spin currents (Eq. 14): operators/torques.py."""
import numpy as np
import pytest

from operators.spin import ClassicalSpinHamiltonian
from operators.torques import fl_dl, magnon_currents, sd_torque
from toolkit import DeviceBuilder

SIG = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]])

pytestmark = pytest.mark.skip_in_parallel   # serial NumPy only


def test_sd_torque_is_the_electron_spin_rate():
    """T = J_sd M x s equals d s/dt of the site's 2x2 block under -i[J_sd/2 sigma.M, rho]
    (Eq. A2; hbar = 1), for a random Hermitian block: round-off (1e-15)."""
    rng = np.random.default_rng(2)
    A = rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2))
    rho = A @ A.conj().T
    M = rng.normal(size=3)
    M /= np.linalg.norm(M)
    J = -0.2
    Hsd = 0.5 * J * np.einsum("a,abc->bc", M, SIG)
    drho = -1j * (Hsd @ rho - rho @ Hsd)
    ds = np.array([0.5 * np.trace(drho @ SIG[a]).real for a in range(3)])
    s = np.array([0.5 * np.trace(rho @ SIG[a]).real for a in range(3)])
    T = sd_torque(np.array([J]), M[None], s[None])[0]
    assert np.abs(T - ds).max() < 1e-15 and np.abs(T).max() > 1e-2


def test_fl_dl_decomposition():
    """A torque perpendicular to M is rebuilt from its FL and DL parts (Eq. 11) to 1e-15; M
    parallel to x (no decomposition) gives 0."""
    rng = np.random.default_rng(4)
    M = rng.normal(size=(5, 3))
    M /= np.linalg.norm(M, axis=1, keepdims=True)
    T = np.cross(M, rng.normal(size=(5, 3)))
    c = fl_dl(T, M)
    x = np.array([1.0, 0, 0])
    back = c[:, :1] * np.cross(M, x) + c[:, 1:] * np.cross(M, np.cross(M, x))
    assert np.abs(back - T).max() < 1e-14
    assert np.array_equal(fl_dl(T[:1], np.array([[1.0, 0, 0]])), [[0.0, 0.0]])


@pytest.mark.parametrize("equation", ["spin", "moment"])
def test_magnon_currents_balance_the_classical_angular_momentum(equation):
    """Exchange only (no field, anisotropy, s-d): the angular momentum of every vector (S, or
    -M/gyro for moments) changes by what the bonds bring in minus what they take out,
    dL_j/dt = I(j-1 -> j) - I(j -> j+1), to round-off (1e-15)."""
    b = DeviceBuilder(size=(5,))
    b.add_layer("A", (0, 3), J_ex=0.1, spin=(0, 0, 1))
    b.add_layer("B", (3, 5), J_ex=-0.1, spin=(0, 0, 1))
    b.add_exchange("A", "B", -0.07)
    b.set("llg", equation=equation)
    dev = b.finalized()
    rng = np.random.default_rng(8)
    S = rng.normal(size=(5, 3))
    S /= np.linalg.norm(S, axis=1, keepdims=True)
    dS = ClassicalSpinHamiltonian(dev).rhs(S, None)
    dL = dev.angular_momentum_per_vector * dS
    I = magnon_currents(dev, S)
    assert [tuple(p) for p in dev.exchange_bonds] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    inflow = np.zeros((5, 3))
    inflow[1:] += I
    inflow[:-1] -= I
    assert np.abs(dL - inflow).max() < 1e-15 and np.abs(I).max() > 1e-2
