"""toolkit.results.load_result: the one reader of qcspin files; and the tutorial of the docs."""
from __future__ import annotations

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from helpers import ROOT

from integrators import Simulation
from toolkit import DeviceBuilder
from toolkit.io import ResultFileError
from toolkit.parallel import barrier
from toolkit.results import load_result


def _run(path, comm):
    b = DeviceBuilder(size=(8,))
    b.add_layer("PL", (0, 3), J_sd=1.0, spin=(1, 0, 0))
    b.add_layer("SP", (3, 5))
    b.add_layer("FL", (5, 8), J_sd=1.0, spin=(0, 0, 1))
    b.set("time", dt=0.1, t_end=1.0, output_every=2)
    sim = Simulation(b.finalized(), comm)
    sim.run(path, overwrite=True, progress=False)
    sim.destroy()


def test_run_file_reads_like_h5py(comm, mpi_tmp_path):
    """Every dataset equals what h5py reads; the device, units, status and config come back."""
    path = os.path.join(mpi_tmp_path, "r.h5")
    _run(path, comm)
    barrier(comm)              # rank 0 publishes the file (rename into place) when it closes it
    r = load_result(path)
    assert (r.kind, r.format, r.status) == ("run", 2, "finished")
    assert r.units == {"time": "hbar/hopping", "energy": "hopping"}
    assert r.device.layer_names == ("PL", "SP", "FL") and r.device.layer("FL") == 2
    assert r.device.size == (8,) and len(r.device.spin_sites) == 6
    with h5py.File(path, "r") as f:
        for name in ("time", "spins", "energy/total", "layer_magnetization", "device/coords"):
            assert np.array_equal(r[name], f[name][()])
        assert r.unit("energy/total") == f["energy/total"].attrs["units"]
    assert not any(n.startswith("checkpoint") for n in r.names)
    both = r.read("time", "spins")
    assert np.array_equal(both["spins"], r["spins"])
    cfg = r.config
    assert cfg.time.dt == 0.1 and [l.name for l in cfg.layers] == ["PL", "SP", "FL"]
    with pytest.raises(ResultFileError, match="'nope' is not in .* it holds"):
        r["nope"]
    with pytest.raises(ResultFileError, match=r"layer 'X' is not in this file: its layers are"):
        r.device.layer("X")
    barrier(comm)


@pytest.mark.skip_in_parallel
def test_bad_files_give_one_line(tmp_path):
    with pytest.raises(ResultFileError, match="does not exist"):
        load_result(str(tmp_path / "missing.h5"))
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ResultFileError, match="not an HDF5 file"):
        load_result(str(tmp_path / "text.h5"))
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["x"] = 1.0
    with pytest.raises(ResultFileError, match="not one qcspin wrote"):
        load_result(str(tmp_path / "foreign.h5"))


@pytest.mark.skip_in_parallel
def test_tutorial_runs(tmp_path):
    """docs/examples/tutorial.py (included in docs/tutorial.md) runs as written: it builds a
    valve, runs it, reads and plots the result, and checks an open junction against Landauer
    (it asserts the relative difference < 1e-4)."""
    env = dict(os.environ, PYTHONPATH=ROOT, OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "docs", "examples", "tutorial.py"),
                        str(tmp_path)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "run finished" in r.stdout and "relative difference" in r.stdout
    assert (tmp_path / "valve.png").stat().st_size > 10_000
