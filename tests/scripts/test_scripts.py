"""The figure scripts and the benchmark run (in their --quick forms) and write their files.

Every ``scripts/fig*.py`` runs serially; those that share their runs (or J_sd points) over the
MPI ranks also under ``mpirun -n 2``, started from a serial test (as tests/toolkit/test_safety.py
does), so that the sharing is exercised whether or not the suite itself runs under mpirun."""
import glob
import os
import subprocess
import sys

import pytest
from helpers import ROOT

from toolkit.results import load_result

#: paper 000's scripts (fig000_*) run in tests/scripts/test_scripts_000.py, with stricter checks
#: and a shared run cache; running them here too cost ~1 min of the suite and tested nothing more
SCRIPTS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "scripts", "fig*.py"))
                 if not os.path.basename(p).startswith("fig000_"))
#: the scripts that distribute their runs or J_sd points over the ranks (the others compute
#: serially, fig_leads refuses mpirun)
PARALLEL = ["fig02_spectrum.py", "fig03_macrospin_fit.py", "fig04a_jeff_vs_jsd.py",
            "fig04bc_splitting_dos.py", "fig05_jeff_vs_spacer.py", "fig06_dynamics.py",
            "fig07_currents.py", "fig08_relaxation.py", "fig09_10_detail.py",
            "fig11_rates_dos.py", "fig12_13_torques.py", "fig14_mu_mapping.py",
            "fig16_localization.py", "fig18_trajectory_spectrum.py",
            "fig20_21_interfaces.py", "fig22_linear_response.py"]
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
for _k in [k for k in ENV if k.startswith(("OMPI_COMM_WORLD", "PMIX_", "OMPI_MCA_"))]:
    del ENV[_k]  # a subprocess of an MPI test rank must not believe it is that rank


def _quick(script, outdir, mpi=0):
    pre = ["mpirun", "--oversubscribe", "-n", str(mpi)] if mpi else []
    cmd = pre + [sys.executable, os.path.join(ROOT, "scripts", script), "--quick", "--outdir",
                 str(outdir)]
    r = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    pngs = [f for f in os.listdir(outdir) if f.endswith(".png")]
    h5s = [f for f in os.listdir(outdir) if f.endswith(".h5")]
    assert pngs and h5s, os.listdir(outdir)
    for h in h5s:   # every data file is a qcspin file (toolkit.io writers), read by the one reader
        assert load_result(os.path.join(outdir, h)).kind in ("figure", "other:figure", "run",
                                                             "jeff"), h


def test_every_figure_script_is_listed():
    assert len(SCRIPTS) >= 19 and set(PARALLEL) <= set(SCRIPTS), set(PARALLEL) - set(SCRIPTS)


# Every quick mode is part of the normal suite (quick modes test the pipeline, not the physics:
# coarse grids, short stages).  On the 2-core test machine the seven that were longest (fig04a,
# fig05, fig08, fig11, fig12, fig14, fig20: 15 min serially and 9 min more under mpirun before
# they were shrunk) took 64 s serially and 67 s under mpirun -n 2 (with another job running).
@pytest.mark.skip_in_parallel
@pytest.mark.parametrize("script", SCRIPTS)
def test_figure_script_quick(script, tmp_path):
    _quick(script, tmp_path)


#: one script per way of sharing work over the ranks runs under mpirun -n 2 (the others share
#: their runs through the same functions, so running them all under mpirun too added 2.3 min to
#: the suite and no code path): J_eff sweeps (``jeff_sweep``, fig04a), Sec. III B run campaigns
#: (``campaign.quench_sweeps``, fig06), campaigns on sub-communicators (fig14), and the scripts
#: whose own computations are distributed (spectra and DOS with SLEPc/PETSc: fig02, fig04bc,
#: fig16, fig18; the interface sweep of fig20_21)
MPIRUN = ["fig02_spectrum.py", "fig04a_jeff_vs_jsd.py", "fig04bc_splitting_dos.py",
          "fig06_dynamics.py", "fig14_mu_mapping.py", "fig16_localization.py",
          "fig18_trajectory_spectrum.py", "fig20_21_interfaces.py"]


def test_mpirun_scripts_share_their_work():
    assert set(MPIRUN) <= set(PARALLEL)


@pytest.mark.skip_in_parallel
@pytest.mark.parametrize("script", MPIRUN)
def test_figure_script_quick_mpirun(script, tmp_path):
    _quick(script, tmp_path, mpi=2)


@pytest.mark.skip_in_parallel
def test_benchmark_runs():
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "bench_closed.py"), "--systems", "1d",
           "--steps", "20", "--min-time", "0.05"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "steps/s" in r.stdout and "| 1D N = 20 |" in r.stdout


@pytest.mark.skip_in_parallel
def test_open_benchmark_runs(tmp_path):
    """bench_open --quick exercises every path; its NumPy baseline is the same right-hand side
    as qcspin's OpenRHS (round-off, 1e-12) and vanishes on qcspin's stationary state."""
    import json

    out = os.path.join(tmp_path, "b.json")
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "bench_open.py"), "--quick",
           "--json", out]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "| 2D 12x4 | qcspin expint |" in r.stdout
    with open(out) as f:
        data = json.load(f)
    rows = [row for row in _rows(data) if "rhs_vs_qcspin" in row]
    assert rows
    for row in rows:
        assert row["rhs_vs_qcspin"] < 1e-12 and row["fixed_point_residual"] < 1e-12


@pytest.mark.skip_in_parallel
def test_tdnegf_benchmark_runs(tmp_path):
    """bench_tdnegf --quick (valve, modes, 4 fs): its NumPy code is qcspin's right-hand side
    to round-off (measured 1e-16 .. 2e-15, tolerance 1e-12) and its LLG ClassicalSpinHamiltonian's,
    stationary at V = 0; plain Heun at the paper's 0.1 fs diverges (the largest Pade pole,
    27.3 /(hbar/eV), needs dt < 0.048 fs)."""
    import json

    out = os.path.join(tmp_path, "t.json")
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "bench_tdnegf.py"), "--quick",
           "--json", out]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "| valve | modes | qcspin monolithic |" in r.stdout
    with open(out) as f:
        data = json.load(f)
    for c in data["checks"]:
        assert c["rhs_vs_qcspin"] < 1e-12 and c["llg_vs_spinH"] < 1e-12
        assert c["fixed_point_residual"] < 1e-12 and c["current_t0"] < 1e-12
    rows = data["rows"]
    first = [row for row in rows if row["method"] == "NumPy Heun" and row["dt"] == 0.1]
    assert first and first[0]["diverged"] is not None
    assert {row["method"] for row in rows if row["accepted"]} == {
        "NumPy Heun", "qcspin monolithic", "qcspin staggered-heun"}


def _rows(data):
    """All dicts inside the benchmark's JSON document."""
    if isinstance(data, dict):
        yield data
        for v in data.values():
            yield from _rows(v)
    elif isinstance(data, list):
        for v in data:
            yield from _rows(v)


@pytest.mark.skip_in_parallel
def test_scale_benchmark_runs(tmp_path):
    """bench_scale on a tiny 3D valve, 1 and 2 ranks: every column is measured (finite and
    positive) and the JSON rows carry them."""
    import json

    out = os.path.join(tmp_path, "s.json")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    for k in [k for k in env if k.startswith(("OMPI_COMM_WORLD", "PMIX_", "OMPI_MCA_"))]:
        del env[k]
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "bench_scale.py"), "--systems",
           "6x2x2", "--ranks", "1,2", "--repeat", "1", "--json", out,
           "--png", os.path.join(tmp_path, "s.png")]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "copy bandwidth" in r.stdout and "6x2x2" in r.stdout
    with open(out) as f:
        rows = json.load(f)
    assert [row["ranks"] for row in rows] == [1, 2]
    for row in rows:
        for key in ("setup", "init", "rhs", "step", "peak_MiB", "floor"):
            assert row[key] > 0, (key, row)


@pytest.mark.skip_in_parallel
def test_scale_model():
    """The per-rank model: the state per rank is the state over the ranks, the halo is two
    planes of rows by all columns, and the measured 20 x 10 x 10 state (977 MiB) is the
    model's."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import scale_model as M

    one, two = M.model((20, 10, 10), 1), M.model((20, 10, 10), 2)
    assert one["state"] == pytest.approx(977 * 2**20, rel=1e-3)    # bench_scale's state
    assert two["state"] == pytest.approx(one["state"] / 2)
    assert two["halo"] == 16 * 4 * 100 * (4000 + 2 * 30 * 200)
    assert one["halo"] == 0 and M.largest(1000, 4e9, 30, "long")["L"][0] == 1000
