"""qcspin tutorial: build a device in Python, run it, read and plot the result, and check an
open junction against Landauer.  Run it as ``python docs/examples/tutorial.py [OUTDIR]``
(about 5 s on one core; tests/toolkit/test_results.py runs it)."""
import os
import sys

import numpy as np

import toolkit  # noqa: F401  (initialises the complex PETSc build; import it first)
from analysis.plots import save_figure, use_agg
from analysis.transport import landauer_current
from integrators import Simulation
from operators.leads import leads_from_config
from toolkit import DeviceBuilder, config_from_dict, device_from_config, get_units
from toolkit.results import load_result

out = sys.argv[1] if len(sys.argv) > 1 else "tutorial_out"
os.makedirs(out, exist_ok=True)

# --- 1. an isolated 1D spin valve, built in Python (the twin of a TOML config) -------------
# 20 sites: a pinned layer PL (sites 0-4, spins along x), a spacer, a free layer FL (15-19,
# spins along z); natural units (energies in the hopping, times in hbar/hopping).
b = DeviceBuilder(size=(20,))
b.add_layer("PL", (0, 5), J_sd=1.0, J_ex=-1.0, spin=(1, 0, 0))
b.add_layer("SP", (5, 15))
b.add_layer("FL", (15, 20), J_sd=1.0, J_ex=-1.0, spin=(0, 0, 1))
b.set("time", dt=0.1, t_end=300.0, output_every=10)
dev = b.finalized()                      # a frozen Device: lattice, layers, spins, parameters

sim = Simulation(dev)                    # electrons start in the ground state of H(S0)
sim.run(os.path.join(out, "valve.h5"), overwrite=True, progress=False)
sim.destroy()

# --- 2. read the result: one reader for every file qcspin writes ---------------------------
r = load_result(os.path.join(out, "valve.h5"))
print(r.kind, r.status, "times in", r.units["time"])        # run finished hbar/hopping
t, M, E = r["time"], r["layer_magnetization"], r["energy/total"]   # M: (n_t, n_layers, 3)
fl = r.device.layer("FL")
print(f"free layer M_x goes from {M[0, fl, 0]:.3f} to {M[-1, fl, 0]:.4f}; "
      f"total energy drifts by {abs(E[-1] - E[0]):.1e} {r.unit('energy/total')}")

# --- 3. plot it ------------------------------------------------------------------------------
use_agg()
import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(5.5, 3.4), layout="constrained")
for k, name in enumerate("xyz"):
    ax.plot(t, M[:, fl, k] / 5, label=f"$M_{name}$ (FL)")
ax.set_xlabel(r"$t$ [$\hbar/\gamma$]")
ax.set_ylabel("free-layer spin per site")
ax.set_title("free layer precessing about the pinned layer's exchange field", fontsize=9)
ax.legend()
print("figure:", save_figure(fig, os.path.join(out, "valve.png")))

# --- 4. an open junction: paper 000's seed valve with tight-binding leads -------------------
# eV and fs; the bias is on from the start (t_on < 0), so the initial state is the biased
# stationary state and the lead current stays at its Landauer value.
cfg = config_from_dict({
    "units": "eV-fs",
    "lattice": {"size": [8], "hopping": 1.0},
    "layers": [{"name": "P", "columns": [0, 3], "J_sd": -0.2, "spin": [1, 0, 0], "frozen": True},
               {"name": "N", "columns": [3, 5]},
               {"name": "F", "columns": [5, 8], "J_sd": -0.2, "spin": [0, 0, 1],
                "frozen": True}],
    "leads": [{"side": side, "model": "tight-binding", "mu": -1.6, "temperature": 0.025852,
               "n_poles": 20, "representation": "modes", "sites": 40}
              for side in ("left", "right")],
    "bias": {"protocol": "asymmetric", "V": 0.25, "t_on": -1.0},
    "electrons": {"initial": "stationary"},
    "time": {"dt": 0.05, "t_end": 2.0, "output_every": 10},
})
sim = Simulation(cfg)
sim.run(os.path.join(out, "open.h5"), overwrite=True, progress=False)
sim.destroy()
I_run = load_result(os.path.join(out, "open.h5"))["lead_current"][:, 0]   # per fs, inward

# the same leads, exact self-energy, Landauer with the bias applied as a rigid shift
device = device_from_config(cfg)
left, right = leads_from_config(device, cfg.leads)
lc = landauer_current(device, (left.shifted(0.25), right), method="quad", rtol=1e-10)
I_exact = lc.current / get_units("eV-fs").hbar    # E0/hbar -> per fs
err = float(np.max(np.abs(I_run / I_exact - 1)))
print(f"lead current {I_run[0]:.6e} /fs, exact Landauer {I_exact:.6e} /fs: relative "
      f"difference {err:.1e} (the 'modes' representation with L = 40)")
assert err < 1e-4
