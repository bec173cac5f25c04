"""``qcspin spectrum``: eigenvalues and spin polarizations of H(S), optionally swept over J_sd
(analysis/spectrum.py does the work, analysis/levels.py the splitting and gap,
analysis/spectrum_plots.py the PNG); the datasets of its file.  Registered in pyproject.toml
(``qcspin.commands``)."""
from __future__ import annotations

import json
import os

import numpy as np

import toolkit
from analysis.levels import gap, splitting
from analysis.plots import png_on_root
from analysis.spectrum import (
    CONFIGS,
    METHODS,
    Spectrum,
    SpectrumSweep,
    spectrum,
    spectrum_vs_jsd,
    with_coupling,
)
from analysis.spectrum_plots import plot_spectrum
from toolkit.cli_args import add_output_args, add_set_arg, check_outputs, number, range_arg
from toolkit.config import config_to_toml
from toolkit.device import Device, device_from_config
from toolkit.io import save_table
from toolkit.parallel import get_comm

__all__ = ["register", "cmd_spectrum"]


def _result_datasets(res: Spectrum | SpectrumSweep, E: str, n_e: int) -> dict:
    """The datasets of a ``qcspin spectrum`` file (kind 'spectrum'), as
    :func:`toolkit.io.write_table` takes them: name -> (array, units, description)."""
    d = {"eigenvalues": (res.eigenvalues, E, "eigenvalues of H(S), ascending, incl. mu_bar"),
         "polarization": (res.polarization, "", "<n|sigma_a|n>, last axis a = x, y, z"),
         "sigma_m": (res.sigma_m, "", "<n|sigma.m_j|n> summed over magnetic sites, m = S/|S|"),
         "localization": (res.localization, "", "P_l^n = sum_{j in l} |phi_n(r_j)|^2; axis -2 "
                          "= layers (attribute 'layers')")}
    if isinstance(res, SpectrumSweep):
        d["J_sd"] = (res.jsd, E, "s-d coupling of all magnetic layers")
    if res.complete and 2 <= n_e < res.eigenvalues.shape[-1]:
        d["splitting"] = (splitting(res.eigenvalues, n_e), E, "eps_{n_e-1} - eps_{n_e-2}")
        d["gap"] = (gap(res.eigenvalues, n_e), E, "eps_{n_e} - eps_{n_e-1} (HOMO-LUMO)")
    return d


def _check_target(target: float, device: Device, jsd=None) -> None:
    """Refuse a --target far outside the spectrum of H (ConfigError): there the distances
    |eps - target| (and shift-and-invert's 1/(eps - target)) no longer tell the levels apart
    in floating point, and the 'nearest' eigenpairs come out wrong.  The spectrum lies in
    mu_bar +- R, R = max_i sum_j |t_ij| + max_j |J_sd,j| |S_j| / 2 (Gershgorin for the hopping,
    |sigma.S| = |S|); targets within 10 R of mu_bar are accepted.  Not collective."""
    from toolkit.config import ConfigError

    deg = np.zeros(device.n_sites)
    for col in (0, 1):
        np.add.at(deg, device.bonds[:, col], np.abs(device.hopping))
    J = np.abs(device.J_sd) if jsd is None else np.full(device.n_spins, np.abs(jsd).max())
    S = np.linalg.norm(device.spins0, axis=1) if device.n_spins else np.zeros(0)
    R = float(deg.max(initial=0.0) + (J * S / 2).max(initial=0.0))
    R = R if R > 0 else 1.0
    mu = float(device.mu_bar)
    if not abs(target - mu) <= 10 * R:
        raise ConfigError(f"--target = {target!r} is not allowed: expected an energy in "
                          f"[{mu - 10 * R:g}, {mu + 10 * R:g}] (the spectrum lies in "
                          f"[{mu - R:g}, {mu + R:g}]; farther away the nearest levels cannot be "
                          f"told apart)")


def cmd_spectrum(args) -> int:
    """Handler of ``qcspin spectrum``; returns the exit code.  Collective.  Bad input raises
    ConfigError (``qcspin: error: ...``, exit status 2) on every rank before any work."""
    from toolkit.config import ConfigError, load_config

    comm = get_comm()
    rank0 = comm.getRank() == 0
    number("--nev", args.nev, integer=True, ge=1)
    number("--target", args.target)
    if args.target is not None and args.nev is None:
        raise ConfigError(f"--target = {args.target!r} is not allowed without --nev: the target "
                          f"selects the nev eigenpairs nearest to it (all eigenpairs by default)")
    cfg = load_config(args.config, args.set)
    out = args.output or os.path.splitext(os.path.basename(args.config))[0] + "_spectrum.h5"
    if (args.jsd_sweep is not None or args.spin_config) and not any(
            l.magnetic for l in cfg.layers):
        flag = ("--jsd-sweep" if args.jsd_sweep is not None else f"--config {args.spin_config}")
        raise ConfigError(f"{flag} is not allowed: config '{args.config}' has no magnetic layer "
                          f"(a layer with spins), so J_sd and the spin configuration change "
                          f"nothing")
    check_outputs({"-o": out, "--png": args.png}, args.overwrite, comm)
    dev = device_from_config(cfg)
    N = dev.n_orbitals
    if args.nev is not None and args.nev > N:
        raise ConfigError(f"--nev = {args.nev} is not allowed: expected an integer 1 <= nev <= "
                          f"N_s = {N} (omit --nev for all eigenpairs)")
    if args.target is not None:
        _check_target(args.target, dev, args.jsd_sweep)
    n_e = cfg.electrons.n_electrons if cfg.electrons.n_electrons is not None else dev.n_sites
    res: Spectrum | SpectrumSweep
    try:
        if args.jsd_sweep is not None:
            res = spectrum_vs_jsd(dev, args.jsd_sweep, args.spin_config, comm=comm, nev=args.nev,
                                  target=args.target, method=args.method)
        else:
            dev = with_coupling(dev, None, args.spin_config) if args.spin_config else dev
            res = spectrum(dev, comm=comm, nev=args.nev, target=args.target,
                           method=args.method, vectors=False)
    except ValueError as exc:  # e.g. method 'sinvert' with nev = N_s: one line, every rank
        raise ConfigError(" ".join(str(exc).split())) from None
    except RuntimeError as exc:  # shift-and-invert failed at this target (PETSc error)
        if "shift-and-invert" not in str(exc):
            raise
        raise ConfigError(f"--target = {args.target!r} is not allowed: "
                          f"{str(exc).splitlines()[0].strip()}); choose a target inside the "
                          f"spectrum that is not an eigenvalue") from None
    E = toolkit.get_units(cfg.units).energy
    attrs = {"config": config_to_toml(cfg), "spin_config": args.spin_config or "from config",
             "method": res.method, "n_sites": dev.n_sites, "n_orbitals": dev.n_orbitals,
             "n_electrons": int(n_e), "complete": bool(res.complete), "energy_unit": E,
             "layers": json.dumps(list(res.layer_names)), "mpi_size": comm.getSize()}
    if args.target is not None:
        attrs["target"] = float(args.target)
    path = save_table(out, _result_datasets(res, E, n_e), attrs, kind="spectrum", comm=comm,
                      overwrite=True)
    if rank0:  # the numbers are the result (also with qcspin -q); the path is not
        from toolkit.cli import result, say

        w = res.eigenvalues
        n_jsd = (" x %d J_sd values" % len(res.jsd)
                 if isinstance(res, SpectrumSweep) and w.ndim == 2 else "")
        result(f"qcspin spectrum: {cfg.name}: N_s = {dev.n_orbitals}, {w.shape[-1]} eigenvalues"
               f"{n_jsd} ({res.method}), "
               f"range [{w.min():.6g}, {w.max():.6g}] {E}")
        if res.complete and w.ndim == 1 and 2 <= n_e < len(w):
            result(f"  n_e = {n_e}: splitting {float(splitting(w, n_e)):.6g}, gap "
                   f"{float(gap(w, n_e)):.6g} {E}")
        say(f"  results: {path}")
    png_on_root(lambda: plot_spectrum(res, args.png, title=cfg.name) if args.png else None, comm)
    return 0


def register(subparsers) -> None:
    """Register ``qcspin spectrum`` on an argparse sub-parser collection."""
    p = subparsers.add_parser(
        "spectrum", help="eigenvalues and spin polarizations of H(S) (optionally vs J_sd)",
        description="Spectrum of the electron Hamiltonian for the spins of CONFIG.toml (or a "
                    "static parallel/perpendicular configuration), optionally swept over J_sd. "
                    "Writes HDF5 (eigenvalues [energy unit], polarizations, layer weights). "
                    "SLEPc options: -qcspin_spectrum_eps_<option>.")
    p.add_argument("config", help="TOML config")
    p.add_argument("--jsd-sweep", type=range_arg, metavar="START:STOP:STEP",
                   help="J_sd values for all magnetic layers (stop included)")
    p.add_argument("--config", dest="spin_config", choices=CONFIGS, default=None,
                   help="static spins: parallel (all +z) or perpendicular (first layer +x, "
                        "others +z); default: the spins of the config")
    p.add_argument("--nev", type=int, default=None, help="number of eigenpairs (default: all)")
    p.add_argument("--target", type=float, default=None,
                   help="energy the nev eigenpairs are nearest to (default: mu_bar)")
    p.add_argument("--method", choices=METHODS, default="auto", help="eigensolver")
    add_set_arg(p)
    add_output_args(p, "HDF5 output (default: CONFIG name + _spectrum.h5)", png="the spectrum")
    p.set_defaults(func=cmd_spectrum)
