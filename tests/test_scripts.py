"""The figure scripts and the benchmark run (in their --quick forms) and write their files."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

QUICK = ["fig02_spectrum.py", "fig04bc_splitting_dos.py", "fig16_localization.py",
         "fig18_trajectory_spectrum.py"]


@pytest.mark.skip_in_parallel
@pytest.mark.parametrize("script", QUICK)
def test_figure_script_quick(script, tmp_path):
    cmd = [sys.executable, os.path.join(ROOT, "scripts", script), "--quick", "--outdir",
           str(tmp_path)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    pngs = [f for f in os.listdir(tmp_path) if f.endswith(".png")]
    h5s = [f for f in os.listdir(tmp_path) if f.endswith(".h5")]
    assert pngs and h5s, os.listdir(tmp_path)


@pytest.mark.skip_in_parallel
def test_benchmark_runs():
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "bench_closed.py"), "--systems", "1d",
           "--steps", "20", "--min-time", "0.05"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "steps/s" in r.stdout and "| 1D N = 20 |" in r.stdout
