"""The resumable cache of the Sec. III B figure runs: a cached stage-1 file is reused only when it
is the run asked for (``integrators.campaign.ensure_stage1`` / ``quench_sweeps``)."""
import os

import numpy as np
import pytest

from integrators import Simulation
from integrators.campaign import ensure_stage1, quench_sweeps
from toolkit.io import FileExistsErrorQC
from toolkit.presets import paper_valve
from toolkit.results import load_result

# stage 1 of paper 004's 12 x 4 valve, a few steps of dt = 0.2 only: the cache logic, not physics
T1 = 1.0


def test_stage1_of_another_length_or_config_is_refused(comm, mpi_tmp_path):
    """Scripts sharing a cache with other stage lengths: the second one must not silently take
    the first one's stage 1 (nor extend or replace it)."""
    runs = os.path.join(mpi_tmp_path, "runs")
    path = ensure_stage1(runs, 2.0, stage1_time=T1, comm=comm)
    assert load_result(path).status == "finished"
    stamp = os.path.getmtime(path)
    assert ensure_stage1(runs, 2.0, stage1_time=T1, comm=comm) == path   # the same run: reused
    with pytest.raises(FileExistsErrorQC, match=r"length 1, not 2"):
        ensure_stage1(runs, 2.0, stage1_time=2 * T1, comm=comm)
    with pytest.raises(FileExistsErrorQC, match="another config"):
        ensure_stage1(runs, 2.0, stage1_time=T1, config_kw={"damping": 0.5}, comm=comm)
    with pytest.raises(FileExistsErrorQC, match=r"length 1, not 2"):   # before any quench
        quench_sweeps(runs, 2.0, {"symmetric": np.array([1.0])}, stage1_time=2 * T1,
                      t_end=T1, comm=comm)
    assert not os.path.exists(os.path.join(runs, "J2_symmetric"))
    assert os.path.getmtime(path) == stamp      # never rewritten
    r = load_result(path)
    assert r.config.time.t_end == T1
    assert r.group_attrs("checkpoint")["t"] == pytest.approx(T1, abs=1e-9)


def test_interrupted_stage1_is_continued(comm, mpi_tmp_path):
    """A stage 1 stopped early (here after 2 of 5 steps) is continued from its checkpoint to
    the asked length and then equals an uninterrupted stage 1 (same operations in the same
    order: round-off, 1e-12)."""
    runs = os.path.join(mpi_tmp_path, "runs")
    if comm.getRank() == 0:
        os.makedirs(runs)
    comm.barrier()
    path = os.path.join(runs, "J2_stage1.h5")
    sim = Simulation(paper_valve(2.0), comm)
    s = sim.run(path, t_end=T1, max_steps=2, progress=False, handle_signals=False)
    sim.destroy()
    assert s["steps"] == 2 and load_result(path).status == "interrupted"
    assert ensure_stage1(runs, 2.0, stage1_time=T1, comm=comm) == path
    ref = ensure_stage1(os.path.join(mpi_tmp_path, "ref"), 2.0, stage1_time=T1, comm=comm)
    a, b = load_result(path), load_result(ref)
    assert a.status == "finished"
    ca, cb = a.checkpoint(), b.checkpoint()
    assert int(ca["step"]) == int(cb["step"]) == 5
    assert np.abs(ca["spins"] - cb["spins"]).max() < 1e-12
    assert np.abs(ca["rho"] - cb["rho"]).max() < 1e-12
