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


def test_parts_of_datasets_and_the_checkpoint(comm, mpi_tmp_path):
    """``r[name, index]`` reads what h5py's ``f[name][index]`` reads; ``n_spins`` counts the
    spins of ``device/spin_layer``; the checkpoint is the state of the last record (the run
    ends on an output step: t_end = 1.0 = 5 x output_every x dt), so its spins equal the last
    row of the series exactly (both are copies of the same array)."""
    path = os.path.join(mpi_tmp_path, "r.h5")
    _run(path, comm)
    barrier(comm)
    r = load_result(path)
    with h5py.File(path, "r") as f:
        for name, sel in (("spins", (-1,)), ("spins", (slice(None), 0)),
                          ("layer_magnetization", (slice(None), 2, 0)),
                          ("energy/total", (slice(1, None, 2),)), ("time", (Ellipsis,))):
            assert np.array_equal(r[(name, *sel)], f[name][sel]), (name, sel)
        assert np.array_equal(r["spins", 0, 1], f["spins"][0, 1])
        assert r.device.n_spins("FL") == 3 == int(np.sum(f["device/spin_layer"][:] == 2))
    assert r.device.n_spins("PL") == 3 and r.device.n_spins("SP") == 0
    ck = r.checkpoint()
    assert ck["t"] == pytest.approx(1.0) and np.array_equal(ck["spins"], r["spins", -1])
    with pytest.raises(IndexError, match=r"index \(99,\) of dataset 'time' \(shape \(6,\)\)"):
        r["time", 99]
    with pytest.raises(ResultFileError, match="'nope' is not in"):
        r["nope", 0]
    barrier(comm)


@pytest.mark.skip_in_parallel
def test_jeff_tables(tmp_path):
    """A jeff file lists its tables: the groups marked as J_eff tables (in the file's order),
    or '' for a table at the root; their datasets read by path.  Other kinds have none and
    no checkpoint."""
    path = str(tmp_path / "j.h5")
    with h5py.File(path, "w") as f:
        for n_s in (10, 5):
            g = f.create_group(f"N_S={n_s}")
            g.attrs.update(qcspin_table="jeff_sweep", kind="jeff", qcspin_format=2)
            g["value"], g["J_eff"] = np.arange(3.0), n_s * np.arange(3.0)
        f["N_S=5/J_static"] = [1.0, 2.0, 3.0]
        f.create_group("notes")["text"] = "not a table"
    r = load_result(path)
    assert r.kind == "jeff" and r.tables == ("N_S=10", "N_S=5")
    assert np.array_equal(r["N_S=5/J_eff"], 5 * np.arange(3.0))
    assert np.array_equal(r["N_S=10/J_eff", -1], 20.0)
    assert list(r.read("N_S=5/J_static")["N_S=5/J_static"]) == [1.0, 2.0, 3.0]
    with pytest.raises(ResultFileError, match="is a jeff file: only run files have a checkpoint"):
        r.checkpoint()
    for k, marks in enumerate(({"qcspin_table": "jeff_sweep", "kind": "jeff"}, {"kind": "jeff"})):
        root = str(tmp_path / f"root{k}.h5")
        with h5py.File(root, "w") as f:
            f.attrs.update(qcspin_format=2, **marks)
            f["value"], f["J_eff"] = np.arange(2.0), np.ones(2)
        assert load_result(root).tables == ("",), marks


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
def test_shapes_groups_and_table_kinds(tmp_path):
    """``shape`` and ``groups`` describe the file without reading it (as h5py's shapes and
    groups); tables of the kinds 'spectrum', 'transport' and figure data ('other:<kind>') read
    like runs, their root attributes JSON decoded; ``is_hdf5`` answers as h5py.is_hdf5."""
    from toolkit.io import write_table
    from toolkit.results import is_hdf5

    sp = str(tmp_path / "s.h5")
    write_table(sp, {"eigenvalues": (np.arange(6.0).reshape(2, 3), "hopping", "levels"),
                     "J_sd": np.array([0.0, 1.0]), "scalar": np.float64(2.5)},
                {"layers": '["PL", "FL"]', "n_sites": 3, "complete": True}, kind="spectrum")
    r = load_result(sp)
    assert r.kind == "spectrum" and r.unit("eigenvalues") == "hopping"
    assert r.shape("eigenvalues") == (2, 3) and r.shape("J_sd") == (2,) and r.shape("scalar") == ()
    assert r.attrs["layers"] == ["PL", "FL"] and r.attrs["n_sites"] == 3 and r.attrs["complete"]
    assert r.groups == () and np.array_equal(r["eigenvalues", :, -1], [2.0, 5.0])
    with pytest.raises(ResultFileError, match="'nope' is not in"):
        r.shape("nope")
    tr = str(tmp_path / "t.h5")
    write_table(tr, {"energies": np.linspace(-1, 1, 5), "current/particle": np.float64(0.25)},
                {"mu_l": 0.5}, kind="transport")
    r = load_result(tr)
    assert r.kind == "transport" and r.groups == ("current",) and r["current/particle"] == 0.25
    assert r.attrs["mu_l"] == 0.5 and isinstance(r.attrs["mu_l"], float)
    fig = str(tmp_path / "fig.h5")
    write_table(fig, {"x": np.arange(3.0)}, {}, kind="fig02")
    assert load_result(fig).kind == "other:fig02"
    for p in (sp, tr, fig):
        with h5py.File(p, "r") as f:
            objects: dict = {}
            f.visititems(objects.__setitem__)
            r = load_result(p)
            assert list(r.groups) == [n for n, o in objects.items() if isinstance(o, h5py.Group)]
            assert {n: r.shape(n) for n in r.names} == {n: f[n].shape for n in r.names}
    (tmp_path / "text.h5").write_text("not hdf5")
    for p in (sp, str(tmp_path / "text.h5"), str(tmp_path / "missing.h5"), str(tmp_path)):
        assert is_hdf5(p) == (os.path.isfile(p) and h5py.is_hdf5(p)), p


@pytest.mark.skip_in_parallel
def test_read_errors_say_why(tmp_path):
    """Every failure of load_result is a ResultReadError (a ResultFileError, message unchanged)
    whose ``reason`` tells a missing path, a file HDF5 cannot open (with HDF5's own message),
    a damaged structure and a foreign file (with its root members) apart."""
    from toolkit.results import ResultReadError

    def error(p):
        with pytest.raises(ResultReadError) as exc:
            load_result(str(p))
        assert isinstance(exc.value, ResultFileError) and "\n" not in str(exc.value)
        return exc.value

    assert error(tmp_path / "missing.h5").reason == "path"
    assert error(tmp_path).reason == "path"
    (tmp_path / "text.h5").write_text("not hdf5")
    e = error(tmp_path / "text.h5")
    assert e.reason == "open" and "not an HDF5 file" in str(e) and "signature" in e.hdf5_message
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["x"], f["b/y"] = 1.0, 2.0
    e = error(tmp_path / "foreign.h5")
    assert e.reason == "foreign" and e.members == ("b", "x") and "not one qcspin wrote" in str(e)
    with h5py.File(tmp_path / "run.h5", "w") as f:   # a run whose device attributes are wrong
        f.attrs.update(kind="run", qcspin_format=2)
        f.create_group("device").attrs["size"] = "eight"
    e = error(tmp_path / "run.h5")
    assert e.reason == "damaged" and "is damaged" in str(e) and "eight" in e.hdf5_message
    whole = (tmp_path / "run.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(whole[:len(whole) // 2])   # an interrupted copy
    e = error(tmp_path / "cut.h5")
    assert e.reason == "open" and "truncated" in e.hdf5_message


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
