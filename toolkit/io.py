"""Self-describing HDF5 result files with checkpoints.

Layout (all written by rank 0)::

    /time (nt,)                     attrs: units
    /step (nt,), /wall_time (nt,)
    /spins (nt, n_spin, 3)          classical spins
    /spin_density (nt, n_site, 3)   electron spin density s_j = Tr(rho_j sigma)/2
    /layer_magnetization (nt, n_layer, 3)   attrs: layers
    /energy/{electronic,classical,total,sd} (nt,)
    /angular_momentum (nt, 3)       sum_j S_j + sum_j s_j
    /electron_number (nt,)
    /device/...                     site coordinates, spin sites, layer names
    /checkpoint/{rho,spins}         attrs: time, step, n_output
    root attrs: config (resolved TOML), petsc_options (JSON), versions, units, created

A file is never overwritten unless asked; ``load_checkpoint`` restores a run.
"""
from __future__ import annotations

import datetime
import json
import os
import platform

import h5py
import numpy as np

__all__ = ["ResultFile", "load_checkpoint", "FileExistsErrorQC", "versions"]


class FileExistsErrorQC(FileExistsError):
    pass


def versions() -> dict[str, str]:
    from petsc4py import PETSc

    import scipy

    import toolkit

    out = {"qcspin": toolkit.__version__, "python": platform.python_version(),
           "numpy": np.__version__, "scipy": scipy.__version__, "h5py": h5py.__version__,
           "petsc": ".".join(map(str, PETSc.Sys.getVersion()))}
    try:
        from slepc4py import SLEPc

        out["slepc"] = ".".join(map(str, SLEPc.Sys.getVersion()))
    except ImportError:
        pass
    return out


SERIES = {  # name: (unit key, description)
    "time": ("time", "simulation time"),
    "step": ("", "time-step number"),
    "wall_time": ("s", "wall-clock seconds since the start of this run segment"),
    "spins": ("hbar", "classical spins S_j (|S| = spin_length)"),
    "spin_density": ("hbar", "electron spin density s_j = Tr(rho_j sigma)/2 per site"),
    "layer_magnetization": ("hbar", "M_l = sum of the classical spins of layer l"),
    "angular_momentum": ("hbar", "total spin: sum_j S_j + sum_j s_j"),
    "electron_number": ("", "Tr rho"),
    "energy/electronic": ("energy", "Tr(rho H), includes the s-d coupling"),
    "energy/classical": ("energy", "exchange + Zeeman + anisotropy of the classical spins"),
    "energy/total": ("energy", "electronic + classical (conserved without damping/leads)"),
    "energy/sd": ("energy", "J_sd sum_j s_j.S_j (part of the electronic energy)"),
    "plane_current": ("", "Eq. 13 through each plane of output.planes (half the electrons "
                          "crossing towards +x per unit time)"),
    "plane_spin_current": ("hbar", "Eq. 14: electron spin s = sigma/2 crossing towards +x per "
                                   "unit time"),
    "monolayer_polarization": ("", "Eq. F1: sum Tr(sigma rho_jj)/sum Tr(rho_jj) per monolayer x"),
    "lead_current": ("", "Eq. 11: Re Tr Pi_l, from lead l into the device (half the electrons "
                         "per unit time)"),
    "lead_spin_current": ("hbar", "Eq. 12: Re Tr(sigma Pi_l), spin s = sigma/2 from lead l into "
                                  "the device per unit time"),
    "lead_mu": ("energy", "chemical potentials of the leads"),
    "spin_balance_residual": ("hbar", "d/dt(S_tot + s_tot) - lead spin inflow - external "
                                      "torques (zero up to round-off for the exact RHS)"),
}


class ResultFile:
    """Rank-0 writer of one run's time series and checkpoints."""

    def __init__(self, path: str, *, mode: str, units, meta: dict | None = None,
                 device=None) -> None:
        self.path = path
        self.units = units
        if mode == "create":
            self.f = h5py.File(path, "w")
            self._setup(meta or {}, device)
        elif mode == "append":
            self.f = h5py.File(path, "r+")
        else:
            raise ValueError(mode)

    def _setup(self, meta: dict, device) -> None:
        f = self.f
        f.attrs["created"] = datetime.datetime.now().isoformat(timespec="seconds")
        f.attrs["units"] = self.units.name
        f.attrs["energy_unit"] = self.units.energy
        f.attrs["time_unit"] = self.units.time
        for k, v in meta.items():
            f.attrs[k] = v if isinstance(v, (str, int, float)) else json.dumps(v)
        if device is not None:
            g = f.create_group("device")
            g["coords"] = device.coords
            g["spin_sites"] = device.spin_sites
            g["spin_layer"] = device.spin_layer
            g["layer_of_site"] = device.layer_of_site
            g.attrs["layer_names"] = json.dumps(list(device.layer_names))
            g.attrs["size"] = list(device.size)

    def _unit(self, key: str) -> str:
        return {"time": self.units.time, "energy": self.units.energy}.get(key, key)

    def append(self, record: dict[str, np.ndarray]) -> None:
        for name, value in record.items():
            value = np.asarray(value)
            if name not in self.f:
                unit, desc = SERIES.get(name, ("", ""))
                ds = self.f.create_dataset(name, shape=(0,) + value.shape, dtype=value.dtype,
                                           maxshape=(None,) + value.shape,
                                           chunks=(max(1, min(256, 2 ** 20 // max(1, value.nbytes))),) + value.shape)
                ds.attrs["units"] = self._unit(unit)
                ds.attrs["description"] = desc
            ds = self.f[name]
            n = ds.shape[0]
            ds.resize(n + 1, axis=0)
            ds[n] = value
        self.f.flush()

    @property
    def n_output(self) -> int:
        return self.f["time"].shape[0] if "time" in self.f else 0

    def truncate(self, n: int) -> None:
        """Drop records after the first ``n`` (used when continuing from a checkpoint)."""
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and name != "device" and not name.startswith(("device/", "checkpoint/")):
                if obj.maxshape and obj.maxshape[0] is None and obj.shape[0] > n:
                    obj.resize(n, axis=0)
        self.f.visititems(visit)

    def checkpoint(self, rho: np.ndarray, spins: np.ndarray, time: float, step: int,
                   extra: dict[str, np.ndarray] | None = None) -> None:
        g = self.f.require_group("checkpoint")
        for name, value in [("rho", rho), ("spins", spins)] + list((extra or {}).items()):
            if name in g and g[name].shape == value.shape:
                g[name][...] = value
            else:
                if name in g:
                    del g[name]
                g.create_dataset(name, data=value)
        g.attrs["time"] = float(time)  # internal units
        g.attrs["step"] = int(step)
        g.attrs["n_output"] = int(self.n_output)
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def load_checkpoint(path: str) -> dict:
    """The checkpoint of a result file: rho, spins, time (internal units), step, n_output, config."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"result file '{path}' does not exist")
    with h5py.File(path, "r") as f:
        if "checkpoint" not in f:
            raise ValueError(f"'{path}' has no checkpoint to continue from")
        g = f["checkpoint"]
        out = {k: g[k][...] for k in g}
        out.update({k: g.attrs[k] for k in ("time", "step", "n_output")})
        out["config"] = f.attrs["config"]
        out["petsc_options"] = json.loads(f.attrs.get("petsc_options", "{}"))
    return out
