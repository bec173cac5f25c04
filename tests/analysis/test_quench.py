"""Quench analysis (analysis.quench): torque balance in the steady state, config builder."""
import os

import numpy as np
import pytest

from analysis.quench import analyze_quench, analyze_sweep, read_analysis
from integrators.campaign import bias_sweep
from toolkit import DeviceBuilder
from toolkit.presets import paper_valve


def _damped_valve(alpha=0.5):
    b = DeviceBuilder(size=(8,))
    b.add_layer("PL", (0, 2), J_sd=1.0, J_ex=-1.0, K=0.4, easy_axis=(1, 0, 0), spin=(1, 0, 0),
                damping=alpha)
    b.add_layer("SL", (2, 5))
    b.add_layer("FL", (5, 8), J_sd=1.0, J_ex=-1.0, K=0.2, easy_axis=(0, 0, 1), spin=(0, 0, 1),
                damping=alpha)
    b._doc["leads"] = [{"side": "left", "gamma": 1.0, "temperature": 0.1},
                       {"side": "right", "gamma": 1.0, "temperature": 0.1}]
    b.set("electrons", n_poles=10)
    b.set("time", dt=0.2, t_end=1.0, output_every=5)
    return b.to_config()


def test_steady_state_torque_balance(comm, mpi_tmp_path):
    """With Gilbert damping the valve reaches its steady state (same fixed point as without):
    there the spin absorbed by the free layer, T_cd (Eq. 15, from the recorded plane and lead
    spin currents), equals the change of the anisotropy torque T_ani computed from the recorded
    spins -- an exact balance, independent of how the currents are computed.  Tolerance 1e-6
    of |T_cd|: what is left of the approach after t = 300 (measured 3e-8).  T_eff =
    2K e x dM is its linearisation: agreement to O(|dM|^2), tolerance 5 |dM|^2 K."""
    cfg = _damped_valve()
    out = os.path.join(mpi_tmp_path, "q")
    res = bias_sweep(cfg, [1.5], outdir=out, protocol="asymmetric", stage1_time=300.0,
                     t_end=300.0, comm=comm)
    if comm.getRank() != 0:
        return
    r = analyze_quench(res.files[0], t_min=20.0)
    fl = r.layers.index("FL")
    scale = np.abs(r.T_cd).max()
    assert scale > 1e-3  # a real bias-driven torque
    assert np.abs(r.T_cd - r.T_ani[fl]).max() < 1e-6 * scale, (r.T_cd, r.T_ani[fl])
    dm = np.abs(r.dM[fl]).max()
    assert np.abs(r.T_eff[fl] - r.T_ani[fl]).max() < 5 * 0.2 * dm ** 2
    assert np.abs(r.T_eff[fl] - r.T_ani[fl]).max() > 0  # not the same formula
    # steady charge current: the same through both leads and the SL-FL plane (Eq. 11 vs 13)
    assert abs(r.lead_current[0] + r.lead_current[1]) < 1e-8
    assert np.allclose(r.plane_current, r.lead_current[0], rtol=1e-7)
    # a shorter record (t_max) gives the same steady state once converged (2e-5 at t = 150)
    rs = analyze_quench(res.files[0], t_min=20.0, t_max=200.0)
    assert rs.t_end <= 200.0 + 1e-9 and rs.window[1] <= 200.0 + 1e-9
    assert np.abs(rs.T_cd - r.T_cd).max() < 1e-4 * scale
    # the same with the equilibrium taken from the (converged) stage-1 record
    r1 = analyze_quench(res.files[0], t_min=20.0, equilibrium=res.stage1)
    assert np.abs(r1.T_cd - r1.T_ani[fl]).max() < 1e-6 * scale
    assert np.abs(r1.M_eq - r.M_eq).max() < 1e-6
    tab = analyze_sweep(out)
    assert tab["T_cd"].shape == (1, 3) and read_analysis(os.path.join(out, "analysis.h5"))[
        "_attrs"]["protocol"] == "asymmetric"
    from toolkit.cli import main as cli_main

    with pytest.raises(FileExistsError, match="--overwrite"):
        analyze_sweep(out)
    assert cli_main(["quench", out]) == 2  # refused with a message, nothing replaced
    assert cli_main(["quench", out, "--overwrite", "--t-min", "20"]) == 0


def test_paper_valve_config():
    """The paper's 2D valve (Sec. III B) and its App. F extension."""
    cfg = paper_valve(2.0)
    assert cfg.lattice.size == (12, 4) and [l.name for l in cfg.layers] == ["PL", "SL", "FL"]
    pl, fl = cfg.layers[0], cfg.layers[2]
    assert (pl.K, pl.easy_axis, fl.K, fl.easy_axis) == (0.4, (1.0, 0.0, 0.0), 0.02,
                                                        (0.0, 0.0, 1.0))
    assert cfg.electrons.n_poles == 30 and {l.gamma for l in cfg.leads} == {1.0}
    ext = paper_valve(2.0, extended=True)
    assert ext.lattice.size == (24, 4)
    cols = {l.name: l.columns for l in ext.layers}
    assert cols["PL"] == (6, 10) and cols["FL"] == (14, 18)  # N_l = 7 and 15, 1-based
