"""Plots of result files (matplotlib, Agg backend)."""
from __future__ import annotations

import json
import os

import h5py
import numpy as np

__all__ = ["plot_run", "use_agg"]


def use_agg():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_run(path: str, png: str | None = None) -> str:
    """Layer magnetizations, energies and total spin of a run; returns the PNG path."""
    plt = use_agg()
    png = png or os.path.splitext(path)[0] + ".png"
    with h5py.File(path, "r") as f:
        t = f["time"][...]
        tu = f["time"].attrs["units"]
        M = f["layer_magnetization"][...]
        names = json.loads(f["device"].attrs["layer_names"])
        mag = [i for i in range(M.shape[1]) if np.any(M[:, i] != 0)]
        counts = np.bincount(f["device/spin_layer"][...], minlength=len(names))
        E = {k: f["energy"][k][...] for k in ("electronic", "classical", "total")}
        L = f["angular_momentum"][...]
        title = f.attrs.get("config", "").split("\n")[0].replace("name = ", "").strip('"')
        currents = {}
        if "lead_current" in f:
            leads = json.loads(f["device"].attrs.get("lead_names", "[]"))
            for k in range(f["lead_current"].shape[1]):
                name = leads[k] if k < len(leads) else f"lead {k}"
                currents[f"lead {name} (Eq. 11)"] = f["lead_current"][:, k]
        if "plane_current" in f:
            planes = list(f["device"].attrs.get("planes", []))
            for k in range(f["plane_current"].shape[1]):
                x = planes[k] if k < len(planes) else k
                currents[f"plane {x}|{x + 1} (Eq. 13)"] = f["plane_current"][:, k]
    n_panels = len(mag) + 2 + (1 if currents else 0)
    nrow = (n_panels + 1) // 2
    fig, ax = plt.subplots(nrow, 2, figsize=(10, 3.2 * nrow), squeeze=False)
    axes = ax.ravel()
    for n, i in enumerate(mag):
        a = axes[n]
        for c, col in zip(range(3), ("tab:red", "tab:green", "tab:blue")):
            a.plot(t, M[:, i, c] / counts[i], color=col, label="xyz"[c])
        a.set_title(f"layer {names[i]}: M/N_S")
        a.set_xlabel(f"t [{tu}]")
        a.set_ylim(-1.05, 1.05)
        a.legend(loc="lower left", ncol=3, fontsize=8)
    a = axes[len(mag)]
    a.plot(t, E["total"] - E["total"][0], label="total")
    a.plot(t, E["electronic"] - E["electronic"][0], label="electronic", lw=0.8)
    a.plot(t, E["classical"] - E["classical"][0], label="classical", lw=0.8)
    a.set_title("energy change")
    a.set_xlabel(f"t [{tu}]")
    a.legend(fontsize=8)
    a = axes[len(mag) + 1]
    for c in range(3):
        a.plot(t, L[:, c] - L[0, c], label="xyz"[c])
    a.set_title("total spin change (electrons + classical)")
    a.set_xlabel(f"t [{tu}]")
    a.legend(fontsize=8)
    if currents:
        a = axes[len(mag) + 2]
        for label, values in currents.items():
            a.plot(t, values, label=label, lw=1.0)
        a.set_title("charge currents (into the device / towards +x)")
        a.set_xlabel(f"t [{tu}]")
        a.legend(fontsize=7)
    for a in axes[n_panels:]:
        a.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png
