"""HDF5 output, checkpoints, restart, no silent overwrite, the CLI, tables."""
import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from helpers import ROOT, valve_2d

from integrators import Simulation
from toolkit.cli import main as cli_main
from toolkit.io import FileExistsErrorQC


def _builder():
    return valve_2d(Lx=6, Ly=2, dt=0.05, t_end=6.0, output_every=10, checkpoint_every=40)


def test_restart_equals_uninterrupted(comm, mpi_tmp_path):
    full, part = os.path.join(mpi_tmp_path, "full.h5"), os.path.join(mpi_tmp_path, "part.h5")
    dev = _builder().finalized()
    Simulation(dev, comm).run(full, progress=False)
    s = Simulation(dev, comm).run(part, progress=False, max_steps=55)   # "interrupted"
    assert s["steps"] == 55
    s = Simulation(dev, comm).run(part, restart=True, progress=False)
    assert s["steps"] == 120 and s["steps_this_run"] == 65
    if comm.getRank() == 0:
        with h5py.File(full) as a, h5py.File(part) as b:
            for name in ("time", "step", "spins", "spin_density", "layer_magnetization",
                         "energy/total", "angular_momentum"):
                assert a[name].shape == b[name].shape, name
                # identical operations in identical order: equal to round-off (here: bitwise)
                assert np.abs(a[name][...] - b[name][...]).max() <= 1e-13, name
            assert a["time"].attrs["units"] == "hbar/hopping"
            assert "lattice" in a.attrs["config"] and "petsc" in a.attrs["versions"]
            assert "qcspin_ts_rk_type" in a.attrs["petsc_options"]


def test_never_overwrites(comm, mpi_tmp_path):
    out = os.path.join(mpi_tmp_path, "x.h5")
    dev = _builder().finalized()
    Simulation(dev, comm).run(out, progress=False, t_end=0.5)
    with pytest.raises(FileExistsErrorQC, match="--overwrite"):
        Simulation(dev, comm).run(out, progress=False, t_end=0.5)
    Simulation(dev, comm).run(out, progress=False, t_end=0.5, overwrite=True)


def test_output_contents(comm, mpi_tmp_path):
    out = os.path.join(mpi_tmp_path, "c.h5")
    dev = _builder().finalized()
    Simulation(dev, comm).run(out, progress=False, t_end=1.0)
    if comm.getRank() == 0:
        with h5py.File(out) as f:
            nt = f["time"].shape[0]
            assert nt == 3  # t = 0, 0.5, 1.0
            assert f["spins"].shape == (nt, dev.n_spins, 3)
            assert f["spin_density"].shape == (nt, dev.n_sites, 3)
            assert f["layer_magnetization"].shape == (nt, 2, 3)
            M = f["layer_magnetization"][...]
            S = f["spins"][...]
            assert np.allclose(M[:, 0], S[:, dev.layer_spins("PL")].sum(axis=1))
            for k in ("electronic", "classical", "total", "sd"):
                assert f["energy"][k].attrs["units"] == "hopping"


CFG = os.path.join(ROOT, "examples", "valve_1d.toml")


def test_cli_run_with_petsc_override(mpi_tmp_path, comm):
    out = os.path.join(mpi_tmp_path, "cli.h5")
    rc = cli_main(["run", CFG, "-o", out, "-q", "--set", "time.t_end=1.0",
                   "-qcspin_ts_rk_type", "4"])
    assert rc == 0
    rc = cli_main(["run", CFG, "-o", out, "-q", "--set", "time.t_end=1.0"])
    assert rc == 2  # exists, no --overwrite
    if comm.getRank() == 0:
        with h5py.File(out) as f:
            assert '"qcspin_ts_rk_type": "4"' in f.attrs["petsc_options"]
    from petsc4py import PETSc
    PETSc.Options().delValue("qcspin_ts_rk_type")


def test_cli_bad_config_message(tmp_path, capsys, comm):
    p = tmp_path / f"bad{comm.getRank()}.toml"
    p.write_text("[lattice]\nsize = [4]\n[time]\ndt = -0.1\n")
    assert cli_main(["run", str(p), "-o", str(tmp_path / "o.h5")]) == 2
    if comm.getRank() == 0:
        assert "time.dt" in capsys.readouterr().err


@pytest.mark.skip_in_parallel
def test_sigint_checkpoints_and_restart_continues(tmp_path):
    """A real process interrupted with SIGINT writes a checkpoint; --restart finishes the run."""
    out = tmp_path / "sig.h5"
    cmd = [sys.executable, "-m", "toolkit.cli", "run", CFG, "-o", str(out), "-q",
           "--set", "time.t_end=2000.0"]
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().startswith("qcspin run:")  # set-up done, the run is starting
    time.sleep(1.5)  # the HDF5 file is locked while written: wait rather than poll it
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr
    assert "interrupted" in stdout
    with h5py.File(out) as f:
        step = int(f["checkpoint"].attrs["step"])
    assert 0 < step < 40000
    r = subprocess.run([sys.executable, "-m", "toolkit.cli", "run", "--restart", str(out), "-q",
                        "--t-end", str(0.05 * (step + 20))], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with h5py.File(out) as f:
        assert int(f["checkpoint"].attrs["step"]) == step + 20



def test_write_table_nested_groups_and_scales(tmp_path):
    """write_table expresses a figure file of several tables: attributes of groups inside the
    table (group_attrs), one dimension scale per group (a list of scales), atomically renamed
    into place; read_table gives a table back in the form write_table takes (copy = identical
    values, units and descriptions)."""
    from toolkit.io import write_table
    from toolkit.results import load_result, read_table

    path = str(tmp_path / "fig.h5")
    x, y = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])
    data = {"a/value": (x, "hopping", "swept"), "a/y": (x ** 2, "hopping", None),
            "b/value": y, "b/y": (y ** 2, None, "y^2"), "b/c/flag": np.array([True, False]),
            "b/why": np.array(["ok", ""], dtype=object)}
    groups = {"a": {"files": ["r1.h5", "r2.h5"], "N_S": 5, "valid": np.bool_(True)},
              "b/c": {"fraction": 2 / 3}, "empty": {"note": "no datasets"}}
    write_table(path, data, {"figure": "test"}, kind="figure", group_attrs=groups,
                scale=["a/value", "b/value"], scale_name="J_sd")
    assert sorted(os.listdir(tmp_path)) == ["fig.h5"]      # no temporary left behind
    with h5py.File(path) as f:
        assert f.attrs["kind"] == "figure" and f.attrs["figure"] == "test"
        assert json.loads(f["a"].attrs["files"]) == ["r1.h5", "r2.h5"]   # a list: JSON text
        assert f["a"].attrs["N_S"] == 5 and f["a"].attrs["valid"] == np.True_
        assert f["b/c"].attrs["fraction"] == 2 / 3 and f["empty"].attrs["note"] == "no datasets"
        assert len(f["empty"]) == 0
        # each table's datasets hang on its own scale only
        assert [d.name for d in f["a/y"].dims[0].values()] == ["/a/value"]
        assert [d.name for d in f["b/y"].dims[0].values()] == ["/b/value"]
        assert f["b/y"].dims[0].keys() == ["J_sd"] and f["b/c/flag"].dtype == bool
    with pytest.raises(FileExistsErrorQC, match="--overwrite"):
        write_table(path, data, kind="figure")
    table, attrs = read_table(path, "b")
    assert set(table) == {"value", "y", "c/flag", "why"} and attrs == {}
    assert table["y"][1:] == (None, "y^2") and list(table["why"][0]) == ["ok", ""]
    table, attrs = read_table(path, "a")
    assert table["value"][1:] == ("hopping", "swept") and table["y"][1:] == ("hopping", None)
    copy = str(tmp_path / "copy.h5")
    write_table(copy, table, attrs, kind="figure")
    r = load_result(copy)
    assert np.array_equal(r["value"], x) and np.array_equal(r["y"], x ** 2)
    assert r.unit("value") == "hopping" and r.attrs["files"] == ["r1.h5", "r2.h5"]
    assert r.attrs["N_S"] == 5 and r.attrs["valid"] is True
