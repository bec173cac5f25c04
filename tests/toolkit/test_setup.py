"""Installation facts: PETSc found without PETSC_DIR, complex scalars enforced, RK 3/8 fallback."""
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT

from toolkit import _petscenv


@pytest.mark.skip_in_parallel
def test_import_without_petsc_dir():
    env = {k: v for k, v in os.environ.items() if k not in ("PETSC_DIR", "SLEPC_DIR")}
    r = subprocess.run([sys.executable, "-c", "import toolkit; from petsc4py import PETSc; "
                        "print(PETSc.ScalarType.__name__)"], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "complex" in r.stdout


def test_real_scalars_are_refused():
    with pytest.raises(ImportError, match="complex scalars.*float64"):
        _petscenv.check_scalar_type(np.float64, "/some/real/petsc4py")
    _petscenv.check_scalar_type(np.complex128)


def test_rk38_registered_and_fallback(monkeypatch, comm):
    from integrators import ts as tsmod
    from toolkit.config import SolverConfig

    from petsc4py import PETSc

    assert tsmod.register_rk38()
    v = PETSc.Vec().createMPI(4, comm=comm)
    ts, _ = tsmod.create_ts(comm, lambda *a: None, v.duplicate(), 0.1, SolverConfig())
    assert ts.getRKType() == "rk38"
    ts.destroy()
    monkeypatch.setattr(tsmod, "register_rk38", lambda: False)
    with pytest.warns(RuntimeWarning, match="classic RK4"):
        ts, _ = tsmod.create_ts(comm, lambda *a: None, v.duplicate(), 0.1, SolverConfig())
    assert ts.getRKType() == "4"
    ts.destroy()
    v.destroy()


def test_rk38_tableau_is_kuttas_rule():
    from integrators.ts import RK38_A, RK38_B, RK38_C

    assert np.allclose(RK38_A.sum(axis=1), RK38_C)      # consistency
    # order conditions up to 4 for an explicit 4-stage method
    b, c, A = RK38_B, RK38_C, RK38_A
    assert np.isclose(b.sum(), 1) and np.isclose(b @ c, 1 / 2) and np.isclose(b @ c ** 2, 1 / 3)
    assert np.isclose(b @ A @ c, 1 / 6) and np.isclose(b @ c ** 3, 1 / 4)
    assert np.isclose(b @ (c * (A @ c)), 1 / 8) and np.isclose(b @ A @ c ** 2, 1 / 12)
    assert np.isclose(b @ A @ A @ c, 1 / 24)
