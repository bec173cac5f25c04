"""Bias sweep: stage 1 once (reused), one stage-2 quench per V, summary table."""
import os

import h5py
import numpy as np
import pytest

from integrators import Simulation
from integrators.campaign import bias_sweep
from toolkit import DeviceBuilder
from toolkit.config import with_changes
from toolkit.io import FileExistsErrorQC


def _config():
    b = DeviceBuilder(size=(6,))
    b.add_layer("PL", (0, 2), J_sd=1.0, J_ex=-1.0, K=0.4, easy_axis=(1, 0, 0), spin=(1, 0, 0))
    b.add_layer("FL", (4, 6), J_sd=1.0, J_ex=-1.0, K=0.02, easy_axis=(0, 0, 1), spin=(0, 0, 1))
    b._doc["leads"] = [{"side": "left", "gamma": 1.0, "temperature": 0.1},
                       {"side": "right", "gamma": 1.0, "temperature": 0.1}]
    b.set("electrons", n_poles=10)
    b.set("time", dt=0.1, t_end=1.0, output_every=5)
    return b.to_config()


def test_bias_sweep_matches_single_runs(comm, mpi_tmp_path):
    """Each sweep point equals a stand-alone stage-2 run from the same stage-1 file (round-off:
    same operations; 1e-12), points are distributed over rank groups, stage 1 is reused."""
    cfg = _config()
    out = os.path.join(mpi_tmp_path, "sw")
    res = bias_sweep(cfg, [0.3, -0.4, 0.8], outdir=out, stage1_time=1.0, comm=comm)
    assert res.lead_current.shape == (3, 2) and res.layer_magnetization.shape == (3, 2, 3)
    assert np.all(np.sign(res.lead_current[:, 0]) == [1, -1, 1])
    cfg2 = with_changes(cfg, bias={"protocol": "symmetric", "V": -0.4, "t_on": 0.0})
    sim = Simulation.from_checkpoint(res.stage1, cfg2, comm)
    sim.run(None, progress=False, handle_signals=False)
    ref = sim.observables(root=None)
    sim.destroy()
    assert np.abs(res.lead_current[1] - ref["lead_current"]).max() < 1e-12
    stamp = os.path.getmtime(res.stage1)
    with pytest.raises(FileExistsErrorQC, match="--overwrite"):
        bias_sweep(cfg, [0.3], outdir=out, stage1_time=1.0, comm=comm)
    bias_sweep(cfg, [0.3], outdir=out, stage1_time=1.0, comm=comm, overwrite=True,
               protocol="asymmetric")
    assert os.path.getmtime(res.stage1) == stamp  # stage 1 reused, not recomputed
    if comm.getRank() == 0:
        with h5py.File(os.path.join(out, "sweep.h5")) as f:
            assert f.attrs["protocol"] == "asymmetric" and f["V"].shape == (1,)


def test_bias_sweep_resume_continues_from_checkpoint(comm, mpi_tmp_path):
    """An interrupted sweep (simulated by a shorter t_end) continued with ``resume`` ends in the
    same state as an uninterrupted one (same steps from the same checkpoint: 1e-12); a finished
    file is reused; a shared stage-1 file is used by a second sweep directory."""
    cfg = _config()
    full = bias_sweep(cfg, [0.5], outdir=os.path.join(mpi_tmp_path, "a"), stage1_time=1.0,
                      t_end=1.0, comm=comm)
    part = os.path.join(mpi_tmp_path, "b")
    bias_sweep(cfg, [0.5], outdir=part, stage1=full.stage1, t_end=0.5, comm=comm)
    assert not os.path.exists(os.path.join(part, "stage1.h5"))
    with pytest.raises(FileExistsErrorQC, match="--resume"):
        bias_sweep(cfg, [0.5], outdir=part, stage1=full.stage1, t_end=1.0, comm=comm)
    res = bias_sweep(cfg, [0.5], outdir=part, stage1=full.stage1, t_end=1.0, resume=True,
                     comm=comm)
    assert np.abs(res.lead_current - full.lead_current).max() < 1e-12
    assert np.abs(res.layer_magnetization - full.layer_magnetization).max() < 1e-12
    again = bias_sweep(cfg, [0.5], outdir=part, stage1=full.stage1, t_end=1.0, resume=True,
                       comm=comm)
    assert np.abs(again.lead_current - full.lead_current).max() < 1e-12
    if comm.getRank() == 0:
        with h5py.File(res.files[0]) as f:
            t = f["time"][:]
        assert np.allclose(np.diff(t), t[1] - t[0]) and abs(t[-1] - 1.0) < 1e-9
