"""Checkpoints written and read by rows (toolkit/checkpoint.py), against the state itself and
the serial reader: exact round trips (the file holds the bits of the state), damaged parts
found by their CRC-32 and the previous slot used, on 1 rank and under mpirun (with parallel
HDF5 and with the ranks writing one after the other)."""
import json
import os

import h5py
import numpy as np
import pytest

from integrators import Simulation
from toolkit import DeviceBuilder, checkpoint
from toolkit.checkpoint import read_rows
from toolkit.io import load_checkpoint
from toolkit.parallel import barrier


def _valve():
    b = DeviceBuilder(size=(6, 2))
    b.add_layer("PL", (0, 2), J_sd=1.2, J_ex=-0.5, spin=(1, 0.3, 0.5))
    b.add_layer("FL", (4, 6), J_sd=1.0, J_ex=-0.5, spin=(0.2, -0.4, 1))
    b._doc["leads"] = [{"side": "left", "gamma": 1.0, "temperature": 0.1},
                       {"side": "right", "gamma": 0.8, "temperature": 0.1}]
    b._doc["bias"] = {"protocol": "asymmetric", "V": 0.4, "t_on": 0.0}
    b.set("electrons", n_poles=6)
    b.set("time", dt=0.05, t_end=0.3, output_every=2, checkpoint_every=3)
    return b.finalized()


@pytest.mark.parametrize("parallel_hdf5", [True, False])
def test_rows_round_trip_and_a_damaged_part(comm, mpi_tmp_path, monkeypatch, parallel_hdf5):
    """A run writes its checkpoints by rows; reading them back by rows gives this rank's rows
    bitwise, the serial reader the gathered state bitwise.  Then one entry of the last row of
    rho in the current slot is changed: its part's CRC-32 fails (checked on whichever rank the
    part falls to) and every rank falls back to the previous slot, with the reason."""
    monkeypatch.setattr(checkpoint, "PARALLEL_HDF5", parallel_hdf5 and checkpoint.PARALLEL_HDF5)
    path = os.path.join(mpi_tmp_path, f"run{int(parallel_hdf5)}.h5")
    sim = Simulation(_valve(), comm)
    try:
        sim.run(path, progress=False)
        lay, d = sim.layout, sim.H.dist
        ck = read_rows(path, comm, d.row_start, lay.nloc, lay.N)
        a = sim.y.getArray(readonly=True)
        assert ck["fallback"] == "" and ck["step"] == sim.step_number == 6
        assert np.array_equal(ck["rows"]["rho"], lay.rho(a))
        for name in lay.aux_names:
            assert np.array_equal(ck["rows"][name], lay.view(a, name))
        rho, S = sim.state(root=None)
        assert np.array_equal(ck["whole"]["spins"], S)
        full = load_checkpoint(path)
        assert np.array_equal(full["rho"], rho) and np.array_equal(full["spins"], S)
        with h5py.File(path, "r") as f:       # one checksummed part per rank and array
            parts = json.loads(f["checkpoint/slot%d" % ck["slot"]].attrs["crc32_parts"])
            other = int(f["checkpoint/slot%d" % (1 - ck["slot"])].attrs["step"])
        assert len(parts["rho"]) == comm.getSize() and len(parts["spins"]) == 1
        barrier(comm)
        if comm.getRank() == 0:
            with h5py.File(path, "r+") as f:
                f["checkpoint/slot%d/rho" % ck["slot"]][lay.N - 1, 0] += 1e-3
        barrier(comm)
        ck2 = read_rows(path, comm, d.row_start, lay.nloc, lay.N)
        assert ck2["slot"] == 1 - ck["slot"] and ck2["step"] == other
        assert "checksum of 'rho' does not match" in ck2["fallback"]
    finally:
        sim.destroy()
