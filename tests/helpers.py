"""Small devices and paths used across the tests."""
from __future__ import annotations

import os

from toolkit import DeviceBuilder

#: the repository (tests live in tests/<package>/; this module in tests/)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


def valve_1d(N=12, n_s=3, J_sd=1.5, J_ex=-1.0, K=0.0, dt=0.05, B=(0, 0, 0), damping=0.0, **time):
    b = DeviceBuilder(size=(N,))
    b.add_layer("PL", (0, n_s), J_sd=J_sd, J_ex=J_ex, K=K, easy_axis=(1, 0, 0), spin=(1, 0, 0),
                damping=damping)
    b.add_layer("SL", (n_s, N - n_s))
    b.add_layer("FL", (N - n_s, N), J_sd=J_sd, J_ex=J_ex, K=K, easy_axis=(0, 0, 1),
                spin=(0, 0.3, 1), damping=damping)
    b.set_field(B)
    b.set("time", dt=dt, **time)
    return b


def valve_2d(Lx=6, Ly=2, J_sd=1.0, dt=0.05, **time):
    b = DeviceBuilder(size=(Lx, Ly))
    b.add_layer("PL", (0, 2), J_sd=J_sd, J_ex=-1.0, K=0.1, easy_axis=(1, 0, 0), spin=(1, 0.2, 0))
    b.add_layer("FL", (Lx - 2, Lx), J_sd=J_sd, J_ex=-1.0, K=0.02, easy_axis=(0, 0, 1),
                spin=(0.1, 0, 1))
    b.set("time", dt=dt, **time)
    return b


def single_spin(B=(0, 0, 1.0), S0=(1, 0, 0), dt=0.05, damping=0.0, **time):
    """One classical spin on a 2-site chain, decoupled from the electrons (J_sd = 0)."""
    b = DeviceBuilder(size=(2,))
    b.add_layer("M", (0, 1), J_sd=0.0, spin=S0, damping=damping)
    b.set_field(B)
    b.set("time", dt=dt, **time)
    return b


def assert_restart_is_exact(cfg, comm, directory: str, name: str = "run.h5", steps: int = 4):
    """Run ``cfg`` to its end (``ref.h5``), then again stopped after ``steps`` steps and
    continued with ``restart=True`` (``name``): the final rho and small components of the two
    are equal bitwise.  Returns (path of the restarted file, final full rho).  Collective."""
    import numpy as np

    from integrators import Simulation

    def final(sim):
        return (sim.state(root=None)[0],
                sim.layout.small_values(sim.y.getArray(readonly=True)))
    out = os.path.join(directory, name)
    sim = Simulation(cfg, comm)
    sim.run(os.path.join(directory, "ref.h5"), progress=False)
    ref, small_ref = final(sim)
    sim.destroy()
    sim = Simulation(cfg, comm)
    sim.run(out, progress=False, max_steps=steps)
    sim.destroy()
    sim = Simulation(cfg, comm)
    sim.run(out, progress=False, restart=True)
    rho, small = final(sim)
    sim.destroy()
    assert np.array_equal(rho, ref) and np.array_equal(small, small_ref)
    return out, ref



def rhs_norm(sim, t: float) -> float:
    """max |F| of the full right-hand side of ``sim``'s current state at time ``t`` (a
    stationary state has F = 0).  Collective."""
    F = sim.y.duplicate()
    try:
        sim.rhs(None, t, sim.y, F)
        return F.norm(3)          # NORM_INFINITY
    finally:
        F.destroy()


def record_lead_currents(sim, n: int, every: int = 5):
    """The lead currents now and after each of ``n`` chunks of ``every`` steps, (n + 1,
    n_leads).  Collective."""
    import numpy as np

    cur = [sim.observables(root=None)["lead_current"].copy()]
    for _ in range(n):
        sim.step(every, record=False)
        cur.append(sim.observables(root=None)["lead_current"].copy())
    return np.array(cur)
