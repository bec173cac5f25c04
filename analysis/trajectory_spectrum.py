"""Instantaneous spectra of H(S(t)) along a run (paper 004, Appendix D, Fig. 18): all
eigenvalues, the splitting Delta-epsilon and the HOMO-LUMO gap for every stored spin
configuration of a run file.

    >>> tr = trajectory_spectrum("run.h5", stride=10)   # every 10th record, shared over ranks
    >>> tr.time, tr.splitting, tr.gap                   # [time unit of the run], [E0], [E0]
    >>> configuration_eigenvalues(device, spins_t)      # (nt, N_s) for a stack of configurations

The configurations are diagonalised densely (stacked LAPACK), shared out over the ranks of
``comm``; every rank gets all results.  Energies in the energy unit E0 of the device.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from analysis.levels import gap, splitting
from analysis.spectrum import _frozen_arrays
from operators.hamiltonian import dense_hamiltonian, sd_blocks
from toolkit.config import config_from_dict
from toolkit.device import Device, device_from_config
from toolkit.parallel import bcast, gather_rows, get_comm, round_robin
from toolkit.results import load_result
from toolkit.schema import fail as _fail

__all__ = ["TrajectorySpectrum", "trajectory_spectrum", "configuration_eigenvalues"]


@dataclass(frozen=True, eq=False)
class TrajectorySpectrum:
    """Instantaneous spectra of H(S(t)) along a run (paper 004, Fig. 18)."""

    time: np.ndarray         # (nt,) [time unit of the run]
    eigenvalues: np.ndarray  # (nt, N_s) [E0]
    splitting: np.ndarray    # (nt,) eps_{n_e-1} - eps_{n_e-2} [E0]
    gap: np.ndarray          # (nt,) eps_{n_e} - eps_{n_e-1} [E0]
    n_electrons: int
    time_unit: str
    energy_unit: str

    def __post_init__(self) -> None:
        _frozen_arrays(self)


def _batched_eigvalsh(device: Device, spins: np.ndarray, chunk: int = 128) -> np.ndarray:
    """Eigenvalues of H(S_k) for a stack of configurations (nt, n_spin, 3), vectorised."""
    H0 = dense_hamiltonian(device, np.zeros((device.n_spins, 3)))
    j = device.spin_sites
    out = np.empty((len(spins), device.n_orbitals))
    for a in range(0, len(spins), chunk):
        S = spins[a:a + chunk]
        H = np.repeat(H0[None], len(S), axis=0)
        blk = sd_blocks(device.J_sd, S)                 # the s-d entries of dense_hamiltonian
        for k, (r, c) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            H[:, 2 * j + r, 2 * j + c] += blk[:, k]
        out[a:a + chunk] = np.linalg.eigvalsh(H)
    return out


def configuration_eigenvalues(device: Device, spins_t, *, comm=None,
                              distribute: Callable[[int, object], np.ndarray] = round_robin
                              ) -> np.ndarray:
    """All eigenvalues [E0] of H(S_k) for a stack of spin configurations ``spins_t``
    (nt, n_spin, 3), shape (nt, N_s).  The configurations are shared out over ``comm`` by
    ``distribute`` and diagonalised densely (stacked LAPACK); every rank gets all.  Collective.
    """
    S = np.asarray(spins_t, float)
    if S.ndim != 3 or S.shape[1:] != (device.n_spins, 3):
        _fail("spins_t", f"array of shape {S.shape}",
              f"expected shape (nt, {device.n_spins}, 3)")
    comm = get_comm(comm)
    mine = np.asarray(distribute(len(S), comm), dtype=np.int64)
    w = _batched_eigvalsh(device, S[mine])
    idx = gather_rows(mine, comm, root=None)
    w = gather_rows(w, comm, root=None)
    order = np.argsort(idx, kind="stable")
    if not np.array_equal(idx[order], np.arange(len(S))):
        raise ValueError("distribute must assign every configuration to exactly one rank")
    return w[order]


def _read_run(path: str, stride: int) -> dict:
    """Every ``stride``-th time and spin configuration of run file ``path``, its units and
    config (read with :func:`toolkit.results.load_result`)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"result file '{path}' does not exist")
    r = load_result(path)
    if "spins" not in r or "config" not in r.attrs:
        _fail("result_h5", path, "expected a qcspin run file with /spins and a config")
    return {"time": r["time", ::stride], "spins": r["spins", ::stride],
            "time_unit": r.unit("time"), "energy_unit": str(r.attrs.get("energy_unit", "")),
            "config": r.config_text}


def trajectory_spectrum(result_h5: str, *, comm=None, stride: int = 1,
                        n_electrons: int | None = None,
                        distribute: Callable[[int, object], np.ndarray] = round_robin
                        ) -> TrajectorySpectrum:
    """Spectrum, Delta-epsilon and gap of H(S(t)) for each stored spin configuration of a run
    (paper 004, Appendix D, Fig. 18).  Collective on ``comm``.

    Rank 0 reads every ``stride``-th record of ``result_h5``; the time points are shared out
    by ``distribute`` and diagonalised densely (LAPACK, stacked); all ranks get all results.
    n_electrons defaults to the run's ``[electrons] n_electrons`` or half filling (n_sites).
    """
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        _fail("stride", stride, "expected an integer >= 1")
    comm = get_comm(comm)
    data, err = None, None
    if comm.getRank() == 0:
        try:
            data = _read_run(result_h5, int(stride))
        except (OSError, ValueError) as exc:
            err = exc
    err = bcast(err, comm)
    if err is not None:
        raise err
    data = bcast(data, comm)
    device = device_from_config(config_from_dict(tomllib.loads(data["config"])))
    n_e = device.n_sites if n_electrons is None else n_electrons
    if n_electrons is None and device.config.electrons.n_electrons is not None:
        n_e = device.config.electrons.n_electrons
    w = configuration_eigenvalues(device, data["spins"], comm=comm, distribute=distribute)
    return TrajectorySpectrum(time=np.asarray(data["time"], float), eigenvalues=w,
                              splitting=splitting(w, n_e), gap=gap(w, n_e), n_electrons=int(n_e),
                              time_unit=data["time_unit"], energy_unit=data["energy_unit"])
