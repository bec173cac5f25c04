"""The figure scripts and the benchmark run (in their --quick forms) and write their files."""
import os
import subprocess
import sys

import pytest
from helpers import ROOT

QUICK = ["fig02_spectrum.py", "fig04bc_splitting_dos.py", "fig16_localization.py",
         "fig18_trajectory_spectrum.py", "fig_leads.py"]


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


def _rows(data):
    """All dicts inside the benchmark's JSON document."""
    if isinstance(data, dict):
        yield data
        for v in data.values():
            yield from _rows(v)
    elif isinstance(data, list):
        for v in data:
            yield from _rows(v)
