"""Pulse sweeps of paper 000 Fig. 2(d) (integrators.campaign.pulse_sweep, qcspin sweep
--durations): the table against the switching detector applied to every run, and resume."""
import os

import numpy as np
import pytest
import seed_valve

from integrators.switching import SwitchingCriterion, layer_switching
from toolkit.config import config_from_dict
from toolkit.results import load_result


def _cfg():
    cfg = seed_valve.valve(L=8, lead_keys={"representation": "modes"}, protocol="asymmetric",
                           dt=0.1)
    for ld in cfg["leads"]:
        del ld["sites"]
    cfg["layers"][2].update(frozen=False, damping=0.05, J_ex=-0.1, spin=[0, 0, 1])
    cfg["layers"][0]["J_sd"] = cfg["layers"][2]["J_sd"] = -1.0   # strong torques
    cfg["llg"] = {"equation": "moment"}
    cfg["time"]["output_every"] = 5
    return config_from_dict(cfg)


# a tilt of 1.8 degrees counts as switched: the pulses below give one of each
CRIT = SwitchingCriterion(threshold=0.9995, dwell=0.0)


def test_pulse_sweep_table_and_resume(comm, mpi_tmp_path):
    """2 x 2 pulses (0.05 and 1.5 V, 2 and 4 time units, 3 after): every table entry equals the
    detector on its run file, the weak pulse does not 'switch' and the strong long one does;
    --resume reruns nothing (the files are not rewritten)."""
    from integrators.campaign import pulse_sweep
    from toolkit.parallel import barrier

    out = os.path.join(mpi_tmp_path, "pulses")
    cfg = _cfg()
    res = pulse_sweep(cfg, [0.05, 1.5], [2.0, 4.0], outdir=out, layer="F", t_after=3.0,
                      criterion=CRIT, comm=comm)
    barrier(comm)
    for i in range(2):
        for j in range(2):
            r = load_result(res.files[i][j])
            assert r.status == "finished"
            ts, dec = layer_switching(r, "F", CRIT)
            assert res.switched[i, j] == (ts is not None) and res.decided[i, j] == dec
            assert np.isnan(res.t_switch[i, j]) if ts is None else res.t_switch[i, j] == ts
            assert abs(r.config.bias.t_off - [2.0, 4.0][j]) < 1e-12
    assert not res.switched[0].any() and res.switched[1, 1], res.switched
    t = load_result(os.path.join(out, "pulse_sweep.h5"))
    assert t.kind == "sweep" and np.array_equal(t["switched"], res.switched)
    mtimes = [os.path.getmtime(f) for row in res.files for f in row]
    barrier(comm)
    res2 = pulse_sweep(cfg, [0.05, 1.5], [2.0, 4.0], outdir=out, layer="F", t_after=3.0,
                       criterion=CRIT, resume=True, comm=comm)
    assert [os.path.getmtime(f) for row in res2.files for f in row] == mtimes
    assert np.array_equal(res2.switched, res.switched)


@pytest.mark.skip_in_parallel
def test_pulse_sweep_refuses_existing_results(tmp_path):
    from integrators.campaign import pulse_sweep
    from toolkit.io import FileExistsErrorQC

    out = str(tmp_path)
    open(os.path.join(out, "pulse_sweep.h5"), "w").close()
    with pytest.raises(FileExistsErrorQC, match="pulse_sweep.h5 exists"):
        pulse_sweep(_cfg(), [0.1], [1.0], outdir=out, layer="F")
    with pytest.raises(ValueError, match="V_D"):
        pulse_sweep(_cfg(), [0.1], [0.0], outdir=out, layer="F", resume=True)


@pytest.mark.skip_in_parallel
def test_qcspin_sweep_durations_cli(tmp_path):
    """qcspin sweep CONFIG --V ... --durations ...: one run per pulse and the table; a layer
    without moving moments is refused with a one-line message (exit status 2)."""
    import subprocess
    import sys

    from helpers import ROOT

    from toolkit.config import config_to_toml

    toml = tmp_path / "valve.toml"
    toml.write_text(config_to_toml(_cfg()))
    out = tmp_path / "pulses"
    cmd = [sys.executable, "-m", "toolkit.cli", "sweep", str(toml), "--V", "0.05,1.5",
           "--durations", "4", "--t-after", "3", "--threshold", "0.9995", "--dwell", "0",
           "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    t = load_result(str(out / "pulse_sweep.h5"))
    assert t["switched"].shape == (2, 1) and list(t["switched"][:, 0]) == [False, True]
    assert "V_H = 1.5" in r.stdout and "switched at" in r.stdout
    # the switching diagram of Fig. 2(d) beside the table, and `qcspin plot` draws the table
    assert (out / "pulse_sweep.png").stat().st_size > 0 and "switching diagram" in r.stdout
    from toolkit.units import get_units

    assert t.unit("V_D") == t.unit("t_switch") == get_units(_cfg().units).time
    png = tmp_path / "again.png"
    p = subprocess.run([sys.executable, "-m", "toolkit.cli", "plot", str(out / "pulse_sweep.h5"),
                        "-o", str(png)], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert png.stat().st_size > 0
    bad = subprocess.run(cmd[:-2] + ["--layer", "P", "-o", str(tmp_path / "x")],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "--layer = 'P' is not allowed" in bad.stderr
    assert "Traceback" not in bad.stderr
