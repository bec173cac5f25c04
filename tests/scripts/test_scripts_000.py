"""Paper 000's figure scripts (``scripts/fig000_*.py``) in their --quick forms, sharing one run
cache (as the figures do), plus checks of what the scripts compute against independent
answers: the library's own records (magnon currents, spin currents), the run cache's reuse and
refusal, the run definitions, and the pulse sweep of Fig. 2(d) under ``mpirun -n 2`` against
the serial one.  The quick modes test the pipeline, not the physics (8 lead sites, 120-150 fs).
Measured on the loaded 2-core test machine: about 2.5 min for the whole module."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT

from toolkit.results import load_result

SCRIPTS_DIR = os.path.join(ROOT, "scripts")
sys.path.insert(0, SCRIPTS_DIR)
import fig000_runs as R  # noqa: E402

FIGS = ["fig000_runs.py", "fig000_2_switching.py", "fig000_3_torques.py",
        "fig000_4_spin_currents.py", "fig000_5_afi_surface.py", "fig000_6_afi_torques.py",
        "fig000_7_magnon.py", "fig000_videos.py"]
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
for _k in [k for k in ENV if k.startswith(("OMPI_COMM_WORLD", "PMIX_", "OMPI_MCA_"))]:
    del ENV[_k]  # a subprocess of an MPI test rank must not believe it is that rank


def _run(script, outdir, *extra, mpi=0):
    pre = ["mpirun", "--oversubscribe", "-n", str(mpi)] if mpi else []
    cmd = pre + [sys.executable, os.path.join(SCRIPTS_DIR, script), "--quick", "--outdir",
                 str(outdir), *extra]
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def outdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fig000")


def _name(script):
    stem = script[:-3]
    if stem in ("fig000_runs", "fig000_videos"):
        return stem
    return "_".join(stem.split("_")[:2])       # fig000_2_switching -> fig000_2


@pytest.mark.skip_in_parallel
def test_every_fig000_script_is_tested():
    have = sorted(os.path.basename(p) for p in os.listdir(SCRIPTS_DIR)
                  if p.startswith("fig000_") and p.endswith(".py"))
    assert have == sorted(FIGS)


@pytest.mark.skip_in_parallel
@pytest.mark.parametrize("script", FIGS)
def test_fig000_script_quick(script, outdir):
    r = _run(script, outdir)
    assert r.returncode == 0, r.stderr[-2000:]
    name = _name(script)
    for ext in (".h5", ".png"):
        assert os.path.getsize(os.path.join(outdir, name + ext)) > 0
    f = load_result(os.path.join(outdir, name + ".h5"))
    assert f.kind in ("figure", "other:figure")     # how load_result names a kind-"figure" table
    assert "Differences from paper 000" in f.group_attrs()["note"]
    # results are never replaced silently: a second run without --overwrite stops (exit 2)
    again = _run(script, outdir)
    assert again.returncode == 2 and "--overwrite" in again.stderr


@pytest.mark.skip_in_parallel
def test_run_definitions():
    """The variants differ from the paper's runs only where they should."""
    base = R.run_config("afi_paper", True)
    noex = R.run_config("afi_noexch", True)
    nosd = R.run_config("afi_nosd", True)
    assert base.exchange[0].J_ex == -0.1 and noex.exchange[0].J_ex == 0.0
    assert base.exchange[0].between == noex.exchange[0].between == ("A", "F")
    sd = {lc.name: lc.J_sd for lc in nosd.layers}
    assert sd["F"] == 0.0 and sd["A"] == -0.2 and sd["P"] == -0.2   # only the analyzer's
    assert R.run_config("valve_steady", False).llg.drive == "steady-state"
    assert R.run_config("valve_paper", False).llg.drive == "current-driven"
    for n in R.RUNS:
        cfg = R.run_config(n, False)
        assert cfg.output.planes == tuple(range(cfg.lattice.size[0] - 1))   # every plane
        assert (cfg.bias.V, cfg.bias.t_off - cfg.bias.t_on) == (R.RUNS[n].V, R.RUNS[n].V_D)
        assert all(lc.sites == 40 for lc in cfg.leads)
    assert (R.RUNS["valve_paper"].V, R.RUNS["valve_paper"].V_D) == (0.25, 600.0)
    assert (R.RUNS["afi_paper"].V, R.RUNS["afi_paper"].V_D) == (0.55, 1000.0)
    with pytest.raises(KeyError, match="valve_paper"):
        R.run_config("nonesuch", True)


@pytest.mark.skip_in_parallel
def test_run_cache_reuses_and_refuses(outdir):
    """A finished run of the same config is reused (the file is not touched); a file of
    another run is refused, never replaced."""
    from toolkit.io import FileExistsErrorQC

    path = R.ensure_run("valve_paper", True, str(outdir))
    stamp = os.stat(path).st_mtime_ns
    assert R.ensure_run("valve_paper", True, str(outdir)) == path
    assert os.stat(path).st_mtime_ns == stamp
    other = os.path.join(R.runs_dir(str(outdir), True), "afi_paper.h5")
    R.ensure_run("afi_paper", True, str(outdir))
    fake = os.path.join(str(outdir), "fake")
    os.makedirs(R.runs_dir(fake, True), exist_ok=True)
    shutil.copy(other, R.run_path("valve_paper", True, fake))   # an AFI run under the name
    with pytest.raises(FileExistsErrorQC, match="another run"):
        R.ensure_run("valve_paper", True, fake)


@pytest.mark.skip_in_parallel
def test_magnon_and_spin_currents_match_the_records(outdir):
    """Fig. 7's magnon currents (from the moments, Eq. 14 as printed) against qcspin's recorded
    ``magnon_current`` (J_ex S_i x S_j with the signed J_ex): equal for the AFI bond, opposite
    for the ferromagnetic analyzer bond (J_ex = -J_FM), to round-off (1e-15 eV: products of
    unit vectors).  Fig. 4's spin currents are 2 hbar x the recorded s = sigma/2 currents."""
    if not os.path.exists(os.path.join(outdir, "fig000_7.h5")):
        assert _run("fig000_7_magnon.py", outdir).returncode == 0
    if not os.path.exists(os.path.join(outdir, "fig000_4.h5")):
        assert _run("fig000_4_spin_currents.py", outdir).returncode == 0
    fig7 = load_result(os.path.join(outdir, "fig000_7.h5"))
    run = load_result(R.run_path("afi_paper", True, str(outdir)))
    mc = run["magnon_current"]                       # (n_t, n_bonds, 3)
    afi, fm = fig7["afi_paper/I_SW_AFI"], fig7["afi_paper/I_SW_FM"]
    assert abs(fm).max() > 1e-6 and abs(afi).max() > 1e-6   # something flows
    match_afi = [b for b in range(mc.shape[1]) if abs(mc[:, b] - afi).max() < 1e-15]
    match_fm = [b for b in range(mc.shape[1]) if abs(mc[:, b] + fm).max() < 1e-15]
    assert len(match_afi) == 1 and len(match_fm) == 1
    fig4 = load_result(os.path.join(outdir, "fig000_4.h5"))
    k = list(run.device.planes).index(24)              # AFI (site 24) -> FM (site 25)
    np.testing.assert_allclose(fig4["afi_paper/I_S_AFI_FM"],
                               2 * R.HBAR * run["plane_spin_current_cd", :, k, :], rtol=1e-14)


@pytest.mark.skip_in_parallel
def test_pulse_sweep_mpirun_matches_serial(outdir, tmp_path):
    """Fig. 2(d)'s sweep shared over two ranks (one run each) gives the serial result: the
    same runs on one rank each, so the final M_z agree to round-off (1e-12)."""
    serial = os.path.join(outdir, "fig000_2.h5")
    if not os.path.exists(serial):
        assert _run("fig000_2_switching.py", outdir).returncode == 0
    src = R.runs_dir(str(outdir), True)
    dst = R.runs_dir(str(tmp_path), True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("valve_sweep", "*.lock"))
    r = _run("fig000_2_switching.py", tmp_path, mpi=2)
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = load_result(serial), load_result(os.path.join(tmp_path, "fig000_2.h5"))
    np.testing.assert_array_equal(a["sweep/switched"], b["sweep/switched"])
    np.testing.assert_allclose(a["sweep/final_mz"], b["sweep/final_mz"], rtol=0, atol=1e-12)
    assert len(os.listdir(os.path.join(dst, "valve_sweep"))) >= 5    # 4 runs + the table
