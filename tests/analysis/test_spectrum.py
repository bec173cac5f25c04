"""Spectral analysis (analysis.spectrum) against exact answers; rank-agnostic (serial and MPI)."""
import os

import h5py
import numpy as np
import pytest
from helpers import EXAMPLES, valve_1d, valve_2d

from analysis.levels import dos, gap, splitting
from analysis.spectrum import layer_localization, spectrum, spectrum_vs_jsd, with_coupling
from analysis.trajectory_spectrum import trajectory_spectrum
from operators.hamiltonian import dense_hamiltonian
from toolkit import DeviceBuilder

EXAMPLE = os.path.join(EXAMPLES, "valve_1d.toml")


def _random_spins(dev, seed=3):
    S = np.random.default_rng(seed).normal(size=(dev.n_spins, 3))
    return S / np.linalg.norm(S, axis=1, keepdims=True)


def _pol_reference(V):
    """<sigma_x,y,z> of the columns of V, written out without the library's helpers."""
    u, d = V[0::2], V[1::2]
    return np.stack([2 * np.sum(u.conj() * d, 0).real, 2 * np.sum(u.conj() * d, 0).imag,
                     np.sum(abs(u) ** 2 - abs(d) ** 2, 0)], axis=1)


@pytest.mark.parametrize("method", ["lapack", "eps-lapack"])
@pytest.mark.parametrize("builder", [valve_1d, valve_2d])
def test_full_spectrum_matches_numpy(comm, method, builder):
    dev = builder().finalized()
    S = _random_spins(dev)
    w_ref, V_ref = np.linalg.eigh(dense_hamiltonian(dev, S))
    assert np.diff(w_ref).min() > 1e-4  # non-degenerate: polarizations are basis independent
    sp = spectrum(dev, S, comm=comm, method=method)
    # both are backward-stable dense solvers: |delta eps| ~ N_s eps ||H|| ~ 1e-14; 1e-10 leaves room
    assert sp.complete and np.abs(sp.eigenvalues - w_ref).max() < 1e-10
    H = dense_hamiltonian(dev, S)
    V = sp.eigenvectors
    assert np.abs(H @ V - V * sp.eigenvalues).max() < 1e-10  # residual, same reason
    # eigenvector error ~ eps ||H|| / min gap ~ 1e-12 here -> polarizations to 1e-8
    assert np.abs(sp.polarization - _pol_reference(V_ref)).max() < 1e-8
    # normalised vectors: layers + sites outside every layer (valve_2d has no spacer layer) = 1
    outside = dev.layer_of_site < 0
    rest = np.sum(np.abs(V_ref[0::2][outside]) ** 2 + np.abs(V_ref[1::2][outside]) ** 2, axis=0)
    assert np.abs(sp.localization.sum(axis=0) + rest - 1).max() < 1e-12


def test_open_chain_is_analytic(comm):
    """J_sd = 0 open chain: eps_k = -2 t cos(k pi/(N+1)), k = 1..N, each twice (spin)."""
    N, t = 11, 1.0
    dev = DeviceBuilder(size=(N,), hopping=t).add_layer("M", (0, N), J_sd=0.0,
                                                        spin=(0, 0, 1)).finalized()
    sp = spectrum(dev, comm=comm)
    k = np.arange(1, N + 1)
    ref = np.sort(np.repeat(-2 * t * np.cos(k * np.pi / (N + 1)), 2))
    assert np.abs(sp.eigenvalues - ref).max() < 1e-12  # LAPACK round-off ~ N eps
    # degenerate pairs are rotated to diagonalise sigma_z: exactly one up and one down each
    assert np.abs(sp.polarization[:, 2] - np.tile([1.0, -1.0], N)).max() < 1e-12


def test_parallel_uniform_magnetic_chain(comm):
    """All sites magnetic along z: sigma_z is conserved, eps = eps_k +- J_sd/2 with <sigma_z> =
    +-1 exactly (up raised by +J_sd/2, Eq. 1) and <sigma_x> = <sigma_y> = 0."""
    N, J = 10, 0.7
    dev = DeviceBuilder(size=(N,)).add_layer("M", (0, N), J_sd=J, spin=(0, 0, 1)).finalized()
    sp = spectrum(dev, comm=comm)
    ek = -2 * np.cos(np.arange(1, N + 1) * np.pi / (N + 1))
    levels = np.concatenate([ek + J / 2, ek - J / 2])
    spin = np.concatenate([np.ones(N), -np.ones(N)])
    order = np.argsort(levels)
    assert np.diff(levels[order]).min() > 1e-3  # no up/down crossing at this J_sd
    assert np.abs(sp.eigenvalues - levels[order]).max() < 1e-12  # round-off only
    assert np.abs(sp.polarization[:, 2] - spin[order]).max() < 1e-12
    assert np.abs(sp.polarization[:, :2]).max() < 1e-12
    assert np.abs(sp.sigma_m - spin[order]).max() < 1e-12  # m = z everywhere


@pytest.mark.parametrize("vectors", [True, False])
def test_shift_invert_matches_full_spectrum(comm, vectors):
    dev = valve_1d(N=16, n_s=4, J_sd=2.5).finalized()
    S = _random_spins(dev, seed=5)
    full = spectrum(dev, S, comm=comm)
    target = 0.31
    si = spectrum(dev, S, comm=comm, nev=8, target=target, method="sinvert", vectors=vectors)
    sel = np.sort(np.argsort(np.abs(full.eigenvalues - target))[:8])
    # Krylov-Schur converged to tol 1e-12 (residual); eigenvalue error ~ residual^2 / gap
    assert np.abs(si.eigenvalues - full.eigenvalues[sel]).max() < 1e-10
    # eigenvector error ~ residual / gap (min gap here ~0.05) -> 1e-8 on derived quantities
    assert np.abs(si.polarization - full.polarization[sel]).max() < 1e-8
    assert np.abs(si.sigma_m - full.sigma_m[sel]).max() < 1e-8
    assert np.abs(si.localization - full.localization[:, sel]).max() < 1e-8
    if vectors:
        overlap = np.abs(np.sum(full.eigenvectors[:, sel].conj() * si.eigenvectors, axis=0))
        assert np.abs(overlap - 1).max() < 1e-8
    else:
        assert si.eigenvectors is None


def test_auto_selects_nearest_target_with_lapack(comm):
    dev = valve_1d().finalized()
    full = spectrum(dev, comm=comm)
    part = spectrum(dev, comm=comm, nev=5, target=-1.0)
    sel = np.sort(np.argsort(np.abs(full.eigenvalues + 1.0), kind="stable")[:5])
    assert part.method == "lapack" and not part.complete
    assert np.abs(part.eigenvalues - full.eigenvalues[sel]).max() == 0.0  # same LAPACK call


def test_localization_and_symmetry(comm):
    """P_l^n sums to 1 over the layers; the perpendicular valve is mapped onto itself by the
    mirror x -> N-1-x combined with the spin rotation by pi about (x+z)/sqrt(2), so
    non-degenerate states have P_PL = P_FL."""
    dev = with_coupling(valve_1d(N=20, n_s=5).finalized(), 5.0, "perpendicular")
    sp = spectrum(dev, comm=comm)
    P = layer_localization(sp.eigenvectors, dev)
    assert np.abs(P - sp.localization).max() < 1e-14  # same sums, different code path
    assert np.abs(P.sum(axis=0) - 1).max() < 1e-12   # normalised eigenvectors
    nondeg = np.ones(len(sp.eigenvalues), bool)
    close = np.diff(sp.eigenvalues) < 1e-6
    nondeg[1:][close] = nondeg[:-1][close] = False
    iPL, iFL = dev.layer_names.index("PL"), dev.layer_names.index("FL")
    # eigenvector error ~ eps/gap with gaps > 1e-6 -> 1e-8
    assert np.abs(P[iPL, nondeg] - P[iFL, nondeg]).max() < 1e-8
    # strong coupling: the two lowest states live on the magnetic layers (paper 004, Fig. 16)
    assert np.all(P[iPL, :2] + P[iFL, :2] > 0.9)


def test_dos_normalisation():
    """DOS per site integrates to 2 (two spin orbitals per site) for a complete spectrum."""
    eps = np.linspace(-2.5, 2.5, 40)
    E = np.linspace(-8, 8, 16001)
    g = dos(eps, E, 0.05, shape="gaussian")
    # Gaussian tails at 100 sigma are zero; trapezoid error is exponentially small for h << sigma
    assert abs(np.trapz(g, E) - 2.0) < 1e-10
    lor = dos(eps, E, 0.05)
    exact = np.sum(np.arctan((E[-1] - eps) / 0.05) - np.arctan((E[0] - eps) / 0.05)) / np.pi / 20
    # trapezoid on a smooth integrand: Euler-Maclaurin error h^2/12 [f'] ~ 1e-12
    assert abs(np.trapz(lor, E) - exact) < 1e-9
    assert exact < 2.0  # the Lorentzian tails outside the window are missing
    # vectorised over leading axes, n_sites explicit
    two = dos(np.stack([eps, eps + 1]), E, 0.05, n_sites=20)
    assert two.shape == (2, len(E)) and np.abs(two[0] - lor).max() < 1e-14


def test_splitting_and_gap_by_hand(comm):
    e = np.array([[-3.0, -1.0, 0.5, 2.0], [-2.0, -1.5, -1.0, 4.0]])
    assert np.array_equal(splitting(e, 3), [1.5, 0.5])
    assert np.array_equal(gap(e, 3), [1.5, 5.0])
    assert np.array_equal(splitting(e, 2), [2.0, 0.5])
    # dimer with both sites magnetic along z, J_sd = 1: levels -1.5, -0.5, 0.5, 1.5
    dev = DeviceBuilder(size=(2,)).add_layer("M", (0, 2), J_sd=1.0, spin=(0, 0, 1)).finalized()
    w = spectrum(dev, comm=comm).eigenvalues
    assert abs(splitting(w, 2) - 1.0) < 1e-14 and abs(gap(w, 2) - 1.0) < 1e-14  # round-off
    with pytest.raises(ValueError, match="n_electrons = 1 is not allowed"):
        splitting(w, 1)
    with pytest.raises(ValueError, match="n_electrons = 4 is not allowed"):
        gap(w, 4)


def test_sweep_equals_single_spectra(comm):
    dev = valve_1d(N=12, n_s=3).finalized()
    J = np.array([0.0, 1.3, 4.0, 7.5, 9.0])
    for config in ("parallel", "perpendicular"):
        sw = spectrum_vs_jsd(dev, J, config, comm=comm)
        assert sw.eigenvalues.shape == (5, 24) and sw.polarization.shape == (5, 24, 3)
        for i in (1, 3):
            d = with_coupling(dev, J[i], config)
            first = np.array([1.0, 0, 0]) if config == "perpendicular" else np.array([0, 0, 1.0])
            assert np.array_equal(d.spins0[0], first) and np.array_equal(d.spins0[-1], [0, 0, 1])
            sp = spectrum(d, comm=comm)
            # identical LAPACK calls on identical matrices (points may run on another rank)
            assert np.abs(sw.eigenvalues[i] - sp.eigenvalues).max() < 1e-13
            assert np.abs(sw.localization[i] - sp.localization).max() < 1e-10
    # strong coupling: 2 N_S levels at the top and at the bottom are split off the central band
    w = sw.eigenvalues[-1]
    assert w[6] - w[5] > 1.0 and w[-6] - w[-7] > 1.0 and np.all(np.abs(w[6:-6]) < 2.0)


def test_trajectory_spectrum(comm, mpi_tmp_path):
    from integrators import Simulation
    from toolkit.parallel import barrier

    from petsc4py import PETSc

    dev = valve_1d(N=12, n_s=3, J_sd=3.0, dt=0.05, output_every=5).finalized()
    path = os.path.join(mpi_tmp_path, "run.h5")
    if comm.getRank() == 0:  # the run file is input here; written serially on rank 0
        sim = Simulation(dev, PETSc.COMM_SELF)
        sim.run(path, t_end=1.0, progress=False, handle_signals=False)
        sim.destroy()
    barrier(comm)
    tr = trajectory_spectrum(path, comm=comm)
    with h5py.File(path, "r") as f:
        spins, t = f["spins"][...], f["time"][...]
    assert len(tr.time) == len(t) == 5 and np.array_equal(tr.time, t)
    ref = np.array([np.linalg.eigvalsh(dense_hamiltonian(dev, S)) for S in spins])
    assert np.abs(tr.eigenvalues - ref).max() < 1e-10  # dense eigvalsh, round-off only
    assert tr.n_electrons == 12
    assert np.array_equal(tr.splitting, ref[:, 11] - ref[:, 10])
    assert np.array_equal(tr.gap, ref[:, 12] - ref[:, 11])
    assert len(trajectory_spectrum(path, comm=comm, stride=2).time) == 3


def test_cli_writes_and_refuses_to_overwrite(comm, mpi_tmp_path):
    from toolkit.cli import main

    out = os.path.join(mpi_tmp_path, "spec.h5")
    assert main(["spectrum", EXAMPLE, "-o", out]) == 0
    with h5py.File(out, "r") as f:
        assert f["eigenvalues"].shape == (40,) and f["polarization"].shape == (40, 3)
        assert f["eigenvalues"].attrs["units"] == "hopping" and f.attrs["n_electrons"] == 20
        assert "splitting" in f and f.attrs["method"] == "lapack"
        created = f.attrs["created"]
    assert main(["spectrum", EXAMPLE, "-o", out]) == 2  # exists: refused
    with h5py.File(out, "r") as f:
        assert f.attrs["created"] == created
    png = os.path.join(mpi_tmp_path, "sweep.png")
    assert main(["spectrum", EXAMPLE, "-o", out, "--overwrite", "--jsd-sweep", "0:2:1",
                 "--config", "perpendicular", "--png", png, "--nev", "6",
                 "--target", "0.1"]) == 0
    with h5py.File(out, "r") as f:
        assert np.array_equal(f["J_sd"][...], [0.0, 1.0, 2.0])
        assert f["eigenvalues"].shape == (3, 6) and "splitting" not in f
    assert os.path.exists(png)
    assert main(["spectrum", EXAMPLE, "-o", out, "--overwrite", "--nev", "41"]) == 2


def test_argument_errors(comm):
    dev = valve_1d().finalized()
    with pytest.raises(ValueError, match="nev = 25 is not allowed"):
        spectrum(dev, comm=comm, nev=25)
    with pytest.raises(ValueError, match="method = 'qr' is not allowed"):
        spectrum(dev, comm=comm, method="qr")
    with pytest.raises(ValueError, match="target = 0.5 is not allowed"):
        spectrum(dev, comm=comm, target=0.5)
    with pytest.raises(ValueError, match="spins = .* expected finite values of shape"):
        spectrum(dev, np.zeros((2, 3)), comm=comm)
    with pytest.raises(ValueError, match="method 'sinvert' needs"):
        spectrum(dev, comm=comm, method="sinvert")
    with pytest.raises(ValueError, match="config = 'antiparallel' is not allowed"):
        with_coupling(dev, 1.0, "antiparallel")
    with pytest.raises(ValueError, match="broadening = 0.0 is not allowed"):
        dos([0.0, 1.0], np.linspace(-1, 1, 5), 0.0)
    with pytest.raises(ValueError, match="eigenvectors = .* expected shape"):
        layer_localization(np.ones((3, 2)), dev)


@pytest.mark.parametrize("kw", [dict(method="lapack"), dict(method="eps-lapack"),
                                dict(method="eps-lapack", vectors=False),
                                dict(method="sinvert", nev=6, target=0.2, vectors=False)])
def test_every_rank_gets_the_same_answer(comm, kw):
    """Identical results on all ranks, also when the moments are reduced from local rows."""
    from toolkit.parallel import bcast

    dev = valve_1d().finalized()
    S = _random_spins(dev)
    sp = spectrum(dev, S, comm=comm, **kw)
    for name in ("eigenvalues", "polarization", "sigma_m", "localization", "eigenvectors"):
        mine = getattr(sp, name)
        root = bcast(mine, comm)
        assert (mine is None and root is None) or np.array_equal(mine, root)  # bitwise
    if kw.get("nev") is None:  # against the LAPACK reference: same tolerances as above
        ref = spectrum(dev, S, comm=comm, method="lapack")
        assert np.abs(sp.eigenvalues - ref.eigenvalues).max() < 1e-10
        assert np.abs(sp.polarization - ref.polarization).max() < 1e-8
        assert np.abs(sp.localization - ref.localization).max() < 1e-8
