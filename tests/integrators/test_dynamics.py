"""Closed-system dynamics: conservation laws, analytic precession, order of the RK 3/8 rule."""
import numpy as np
import pytest
from helpers import single_spin, valve_1d, valve_2d

from integrators import Simulation
from operators.hamiltonian import dense_hamiltonian


def _run(builder, n_steps, comm=None):
    sim = Simulation(builder.finalized(), comm)
    o0 = sim.observables(root=None)
    sim.step(n_steps)
    o1 = sim.observables(root=None)
    rho, S = sim.state(root=None)
    sim.destroy()
    return o0, o1, rho, S


@pytest.mark.parametrize("builder", [valve_1d, valve_2d])
def test_closed_conservation(comm, builder):
    """Trace, Hermiticity, idempotency, total spin and total energy of a closed valve (K = 0,
    B = 0 for the spin; anisotropy breaks rotation invariance, so valve_2d checks only energy)."""
    b = builder(dt=0.05)
    o0, o1, rho, S = _run(b, 200, comm)
    # Hermiticity: the RHS is anti-Hermitian exactly (PETSc route, -i(X - X^dag)) or to
    # round-off (compiled commutator: H rho and rho H summed in different orders)
    assert np.abs(rho - rho.conj().T).max() < 1e-13
    # trace: Tr[H, rho] = 0 up to round-off accumulated over 200 steps
    assert abs(o1["electron_number"] - o0["electron_number"]) < 1e-10
    # idempotency (pure Slater determinant): RK4 local error O(dt^5) ~ 3e-7 * ||H||^5 per step
    assert np.abs(rho @ rho - rho).max() < 1e-8
    # energy: RK 3/8 is not symplectic; drift ~ dt^4 over t = 10 -> below 1e-7 at dt = 0.05
    assert abs(o1["energy/total"] - o0["energy/total"]) < 1e-7
    if builder is valve_1d:  # no anisotropy, no field: total spin conserved to round-off
        assert np.abs(o1["angular_momentum"] - o0["angular_momentum"]).max() < 1e-11
        assert np.abs(o1["layer_magnetization"] - o0["layer_magnetization"]).max() > 1e-4


def test_energy_error_converges_with_dt(comm):
    """Energy drift shrinks ~ dt^4 (>= 8x per halving, allowing for round-off and transients)."""
    errs = []
    for dt in (0.1, 0.05):
        o0, o1, _, _ = _run(valve_1d(dt=dt, J_sd=2.5), int(round(4.0 / dt)), comm)
        errs.append(abs(o1["energy/total"] - o0["energy/total"]))
    assert errs[0] > 1e-12 and errs[0] / errs[1] > 8


def test_larmor_precession_sense_and_frequency(comm):
    """dS/dt = -S x dH/dS with H = -B.S gives dS/dt = S x B: for B = B z and S0 = x,
    S(t) = (cos Bt, -sin Bt, 0) (clockwise seen from +z)."""
    B, dt, n = 0.8, 0.01, 500
    _, o1, _, S = _run(single_spin(B=(0, 0, B), dt=dt), n, comm)
    t = n * dt
    # global RK4 error ~ t B^5 dt^4 / 120 = 1.4e-10 here; the wrong sense would give O(1)
    assert np.abs(S[0] - [np.cos(B * t), -np.sin(B * t), 0.0]).max() < 5e-10


def test_rk38_fourth_order(comm):
    """Global error of the 3/8 rule on the Larmor problem scales as dt^4."""
    B, T = 2.0, 5.0
    err = []
    for dt in (0.1, 0.05, 0.025):
        _, _, _, S = _run(single_spin(B=(0, 0, B), dt=dt), int(round(T / dt)), comm)
        err.append(np.abs(S[0] - [np.cos(B * T), -np.sin(B * T), 0.0]).max())
    orders = np.log2(np.array(err[:-1]) / np.array(err[1:]))
    assert np.all(np.abs(orders - 4.0) < 0.2), orders


def test_gilbert_damping_relaxes_to_field(comm):
    """With damping the energy -B.S decreases monotonically and S aligns with B."""
    b = single_spin(B=(0, 0, 1.0), S0=(1, 0, 0.1), dt=0.05, damping=0.2)
    sim = Simulation(b.finalized(), comm)
    energies = []
    for _ in range(40):
        sim.step(25)
        energies.append(sim.observables(root=None)["energy/classical"])
    S = sim.state(root=None)[1][0]
    sim.destroy()
    assert np.all(np.diff(energies) < 0)
    # |S| is conserved by the ODE, not exactly by RK: local error O(dt^5) per step
    assert S[2] > 0.999 and abs(np.linalg.norm(S) - 1) < 1e-7


def test_frozen_layer_does_not_move(comm):
    b = valve_1d()
    b._doc["layers"][0]["frozen"] = True
    dev = b.finalized()
    _, _, _, S = _run(b, 50, comm)
    pl = dev.layer_spins("PL")
    assert np.abs(S[pl] - dev.spins0[pl]).max() == 0.0
    fl = dev.layer_spins("FL")
    assert np.abs(S[fl] - dev.spins0[fl]).max() > 1e-6


def test_initial_ground_state_is_projector_on_lowest_levels(comm):
    dev = valve_2d().finalized()
    sim = Simulation(dev, comm)
    rho, _ = sim.state(root=None)
    sim.destroy()
    w, V = np.linalg.eigh(dense_hamiltonian(dev))
    ref = V[:, :dev.n_sites] @ V[:, :dev.n_sites].conj().T
    assert np.abs(rho - ref).max() < 1e-10
    assert abs(np.trace(rho).real - dev.n_sites) < 1e-10


def test_fermi_initial_state(comm):
    from integrators.initial import fermi

    b = valve_1d()
    b.set("electrons", initial="fermi", temperature=0.1)
    dev = b.finalized()
    sim = Simulation(dev, comm)
    rho, _ = sim.state(root=None)
    sim.destroy()
    w, V = np.linalg.eigh(dense_hamiltonian(dev))
    ref = (V * fermi(w, 0.1)) @ V.conj().T
    assert np.abs(rho - ref).max() < 1e-10


def test_mpi_matches_serial(comm):
    """The run on all ranks equals a run on COMM_SELF of each rank to round-off."""
    from petsc4py import PETSc

    b = valve_2d(Lx=7, Ly=2)
    _, o_par, rho_p, S_p = _run(b, 40, comm)
    _, o_ser, rho_s, S_s = _run(b, 40, PETSc.COMM_SELF)
    assert np.abs(rho_p - rho_s).max() < 1e-12
    assert np.abs(S_p - S_s).max() < 1e-12
    assert abs(o_par["energy/total"] - o_ser["energy/total"]) < 1e-11


def test_slepc_initial_state_equals_lapack(comm):
    """The SLEPc (Krylov-Schur) ground state equals the LAPACK one (both exact projectors)."""
    b = valve_2d(Lx=5, Ly=2)
    ref = Simulation(b.finalized(), comm)
    b.set("electrons", eigensolver="slepc")
    sl = Simulation(b.finalized(), comm)
    (r1, _), (r2, _) = ref.state(root=None), sl.state(root=None)
    ref.destroy(), sl.destroy()
    # SLEPc tolerance 1e-12 on the residual; the projector is insensitive to the basis choice
    assert np.abs(r1 - r2).max() < 1e-9


@pytest.mark.parametrize("T", [0.1, 0.02])
def test_pole_sum_fermi_state_equals_lapack(comm, T):
    """eigensolver = 'poles' (the default of 'fermi' above 4000 orbitals): f(H) by the Padé pole
    sum of sparse LU solves, no eigenvectors, equals f(eps) of LAPACK's eigenvectors to 1e-11
    (the pole count is chosen for a Padé error <= 1e-12 over the spectrum)."""
    b = valve_2d(Lx=5, Ly=2)
    b.set("electrons", initial="fermi", temperature=T)
    ref = Simulation(b.finalized(), comm)
    b.set("electrons", initial="fermi", temperature=T, eigensolver="poles")
    ps = Simulation(b.finalized(), comm)
    (r1, _), (r2, _) = ref.state(root=None), ps.state(root=None)
    ref.destroy(), ps.destroy()
    assert np.abs(r1 - r2).max() < 1e-11


def test_slepc_fermi_state_equals_lapack(comm):
    """The SLEPc Fermi-Dirac state (the occupied and partly occupied levels, rho's rows by the
    ring product without gathering the eigenvectors) equals the LAPACK one (1e-9, SLEPc's
    residual tolerance)."""
    b = valve_2d(Lx=5, Ly=2)
    b.set("electrons", initial="fermi", temperature=0.1)
    ref = Simulation(b.finalized(), comm)
    b.set("electrons", initial="fermi", temperature=0.1, eigensolver="slepc")
    sl = Simulation(b.finalized(), comm)
    (r1, _), (r2, _) = ref.state(root=None), sl.state(root=None)
    ref.destroy(), sl.destroy()
    assert np.abs(r1 - r2).max() < 1e-9


def test_adaptive_ts_from_options_matches_fixed_step(comm):
    """Any TS type is selectable by options: adaptive Dormand-Prince 5(4) agrees with RK 3/8."""
    from petsc4py import PETSc

    ref = Simulation(valve_1d(dt=0.0125).finalized(), comm)
    ref.run(None, t_end=2.0, progress=False, handle_signals=False)
    opts = PETSc.Options()
    opts.insertString("-qcspin_ts_rk_type 5dp -qcspin_ts_adapt_type basic "
                      "-qcspin_ts_rtol 1e-10 -qcspin_ts_atol 1e-10")
    try:
        ad = Simulation(valve_1d(dt=0.05).finalized(), comm)
        assert ad.adaptive and ad.ts.getRKType() == "5dp"
        ad.run(None, t_end=2.0, progress=False, handle_signals=False)
    finally:
        for k in ("ts_rk_type", "ts_adapt_type", "ts_rtol", "ts_atol"):
            opts.delValue("qcspin_" + k)
    assert abs(ad.time - 2.0) < 1e-12  # lands exactly on the output/end time
    (r1, S1), (r2, S2) = ref.state(root=None), ad.state(root=None)
    # measured RK 3/8 global error at dt = 0.0125: 2e-9 (2e-7 at 0.05, 4th order); 5dp: rtol 1e-10
    assert np.abs(S1 - S2).max() < 1e-8 and np.abs(r1 - r2).max() < 1e-8
    ref.destroy(), ad.destroy()
