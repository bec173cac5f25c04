"""Shared fixtures; the suite runs serially and under ``mpirun -n 2`` (rank-agnostic tests)."""
from __future__ import annotations

import gc
import shutil
import tempfile

import pytest

import toolkit  # noqa: F401  (complex PETSc)
from toolkit.parallel import barrier, bcast

from petsc4py import PETSc


def pytest_configure(config):
    config.addinivalue_line("markers", "skip_in_parallel: only meaningful on one MPI rank")


def pytest_collection_modifyitems(config, items):
    if PETSc.COMM_WORLD.getSize() > 1:
        skip = pytest.mark.skip(reason="serial-only test")
        for item in items:
            if "skip_in_parallel" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def comm():
    return PETSc.COMM_WORLD


@pytest.fixture
def mpi_tmp_path(comm):
    """A temporary directory shared by all ranks (created by rank 0)."""
    path = tempfile.mkdtemp(prefix="qcspin-test-") if comm.getRank() == 0 else None
    path = bcast(path, comm)
    yield path
    barrier(comm)
    if comm.getRank() == 0:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _collect_and_sync():
    yield
    gc.collect()
    barrier(PETSc.COMM_WORLD)
