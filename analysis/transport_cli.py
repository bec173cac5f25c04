"""``qcspin transport``: transmission, DOSh and Landauer currents of a config's device, written
to HDF5 (+ PNG).  Re-exported by :mod:`analysis.transport`.

Leads.  A config with ``[[leads]]`` (the same tables a ``qcspin run`` uses, validated by
:func:`operators.leads.leads_from_config`) must have one lead on the left and one on the right
face; Gamma, mu and the temperature of each come from its table.  The ``[bias]`` section is
applied on top of the leads' mu exactly as in a run (:func:`integrators.bias.bias_function`):
``symmetric`` mu_l += V/2, mu_r -= V/2; ``asymmetric`` mu_l += V; ``none`` leaves the mu.  The
steady state is the one with the bias on, so ``t_on``/``t_off`` play no role.  For a config
without ``[[leads]]`` (a closed valve, e.g. examples/valve_2d.toml) the command line describes
two identical wide-band leads: ``--gamma`` (default 1), ``--mu-l``, ``--mu-r`` (default 0) and
``--temperature`` (default 0.025); these options are refused for a config with ``[[leads]]``
(change the config with ``--set leads.0.gamma=0.5``, ``--set bias.V=0.2``, ...), so that one
file always describes the calculation.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

import toolkit
from analysis.plots import png_on_root
from analysis.transport_green import METHODS, Transmission, transmission
from analysis.transport_landauer import landauer_current
from operators.leads import Lead, WideBandLead
from toolkit.cli_args import add_output_args, add_set_arg, check_outputs, number, range_arg
from toolkit.config import Config, ConfigError
from toolkit.device import Device
from toolkit.io import save_table
from toolkit.parallel import get_comm
from toolkit.schema import fail as _fail
from toolkit.schema import real as _option  # finite real, optional sign checks

__all__ = ["TransportLeads", "transport_leads", "plot_transmission", "plot_transport",
           "cmd_transport", "register", "CLI_DEFAULTS"]

# lead parameters of a config without [[leads]] (--gamma, --mu-l, --mu-r, --temperature)
CLI_DEFAULTS = {"gamma": 1.0, "mu_l": 0.0, "mu_r": 0.0, "temperature": 0.025}
_FLAGS = {"gamma": "--gamma", "mu_l": "--mu-l", "mu_r": "--mu-r", "temperature": "--temperature"}


@dataclass(frozen=True)
class TransportLeads:
    """The two leads of ``qcspin transport``.

    leads    : (left, right) leads (WideBandLead for command-line leads) with the chemical
               potentials *with* the bias
    mu0      : (mu_l, mu_r) before the bias (the ``[[leads]]`` mu, or --mu-l/--mu-r)
    source   : 'config' (``[[leads]]`` + ``[bias]``) or 'command line'
    protocol : the ``[bias]`` protocol ('none' for command-line leads);  V : its V [E0]
    """

    leads: tuple[Lead, Lead]
    mu0: tuple[float, float]
    source: str
    protocol: str
    V: float

    @property
    def mu(self) -> tuple[float, float]:
        return (self.leads[0].mu, self.leads[1].mu)


def transport_leads(cfg: Config, device: Device, *, gamma: float | None = None,
                    mu_l: float | None = None, mu_r: float | None = None,
                    temperature: float | None = None) -> TransportLeads:
    """Left and right leads of ``device`` for ``qcspin transport`` (see the module docstring).

    With ``cfg.leads``: from the ``[[leads]]`` tables, mu shifted by ``cfg.bias``; the keyword
    arguments must then be None (ValueError naming the option otherwise).  Without: two
    wide-band leads from the keywords (None -> :data:`CLI_DEFAULTS`).  Raises ValueError
    (toolkit.ConfigError for config keys) naming the key, the value and what is allowed.
    Not collective (the same answer on every rank).
    """
    opts = {"gamma": gamma, "mu_l": mu_l, "mu_r": mu_r, "temperature": temperature}
    if cfg.leads:
        from integrators.bias import bias_function
        from operators.leads import leads_from_config

        for key, value in opts.items():
            if value is not None:
                _fail(_FLAGS[key], value, "only for a config without [[leads]]; this config "
                      "has [[leads]] and [bias]: change them with --set, e.g. --set "
                      "leads.0.gamma=0.5, --set leads.1.mu=0.1, --set bias.V=0.2")
        sides = [lc.side for lc in cfg.leads]
        if sorted(sides) != ["left", "right"]:
            raise ConfigError(f"config key 'leads' = {sides!r} (sides) is not allowed: "
                              f"qcspin transport needs one lead on the left and one on the "
                              f"right face")
        found = leads_from_config(device, cfg.leads)
        # attr-defined: Lead declares no side; every [[leads]] model (LEAD_MODELS) sets one
        ordered = tuple(sorted(found, key=lambda l: 0 if l.side == "left" else 1))  # type: ignore[attr-defined]
        mu_on = bias_function(cfg, ordered, toolkit.get_units(cfg.units)).on
        left, right = (l.shifted(float(m) - l.mu) for l, m in zip(ordered, mu_on))  # rigid
        return TransportLeads((left, right), (ordered[0].mu, ordered[1].mu), "config",
                              cfg.bias.protocol, float(cfg.bias.V))
    v = {k: CLI_DEFAULTS[k] if x is None else x for k, x in opts.items()}
    g = _option("--gamma", v["gamma"], positive=True)
    T = _option("--temperature", v["temperature"], nonneg=True)
    mus = (_option("--mu-l", v["mu_l"]), _option("--mu-r", v["mu_r"]))
    left, right = (WideBandLead(device, side, g, mu=m, temperature=T)
                   for side, m in zip(("left", "right"), mus))
    return TransportLeads((left, right), mus, "command line", "none", 0.0)


# ----------------------------------------------------------------------------- output
def plot_transmission(res: Transmission, png: str, *, title: str = "", mu=None,
                      energy_unit: str = "") -> str:
    """DOSh, theta, P (the panels of paper Fig. 19) and P/theta versus energy; ``mu`` =
    (mu_l, mu_r) marks the leads' chemical potentials.  Serial; returns the path."""
    return plot_transport(res.energies, res.theta, res.polarization, res.dos, png, title=title,
                          mu=mu, energy_unit=energy_unit)


def plot_transport(energies, theta, polarization, dos, png: str, *, title: str = "", mu=None,
                   energy_unit: str = "") -> str:
    """The transport panels from arrays (a ``qcspin transport`` file or a Transmission):
    DOSh per site (Eq. 18, if given), Theta (Eq. 16), P = Tr[sigma_z Gamma_r G^R Gamma_l G^A]
    (Eq. 17: the spin-z resolved transmission, not normalised; |P| <= Theta) and the normalised
    polarization P/Theta in [-1, 1], left out where Theta < 1e-3 max Theta (closed channels).
    ``mu`` = (mu_l, mu_r): vertical lines at the leads' chemical potentials.  Serial; returns
    the path."""
    from analysis.plots import save_figure, use_agg

    plt = use_agg()
    E = np.asarray(energies, float)
    theta = np.asarray(theta, float)
    P = np.asarray(polarization, float)
    u = f" [{energy_unit}]" if energy_unit else ""
    top = np.nanmax(np.abs(theta)) if theta.size and np.isfinite(theta).any() else 0.0
    open_ = np.abs(theta) > 1e-3 * top if top > 0 else np.zeros(theta.shape, bool)
    ratio = np.where(open_, P / np.where(open_, theta, 1.0), np.nan)
    panels = ([(dos, f"DOSh per site [1/{energy_unit or 'E0'}]", "Eq. 18")]
              if dos is not None else []) + \
        [(theta, r"$\Theta$", r"Eq. 16: $\mathrm{Tr}[\Gamma_l G^R \Gamma_r G^A]$"),
         (P, r"$P$", r"Eq. 17: $\mathrm{Tr}[\sigma_z \Gamma_r G^R \Gamma_l G^A]$ "
                     r"(spin-z transmission, not normalised)"),
         (ratio, r"$P/\Theta$", r"normalised spin polarization of the transmission (where "
                                 r"$\Theta > 10^{-3} \max\Theta$)")]
    fig, axes = plt.subplots(len(panels), 1, figsize=(6, 2.1 * len(panels) + 0.5), sharex=True)
    for ax, (y, label, what) in zip(axes, panels):
        ax.plot(E, y, lw=1)
        ax.set_ylabel(label)
        ax.set_title(what, fontsize=8, loc="left")
    for ax in axes[-2:]:
        ax.axhline(0, color="k", lw=0.5)
    axes[-1].set_ylim(-1.08, 1.08)
    if mu is not None:
        mu_l, mu_r = (float(m) for m in mu)
        same = abs(mu_l - mu_r) <= 1e-12 * max(1.0, abs(mu_l))
        marks = [(mu_l, "tab:red", r"$\mu_l = \mu_r$" if same else r"$\mu_l$")] + \
            ([] if same else [(mu_r, "tab:blue", r"$\mu_r$")])
        for ax in axes:
            for m, col, lab in marks:
                ax.axvline(m, color=col, lw=0.8, ls="--", label=lab)
        axes[0].legend(fontsize=7, loc="upper right")
    axes[-1].set_xlabel(r"$\varepsilon$" + u)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, png)


def _num(v) -> str:
    """A number as %g, a per-orbital list as its range."""
    if np.ndim(v):
        v = np.asarray(v, float)
        return f"{v.min():g}..{v.max():g} (per orbital)"
    return f"{v:g}"


def _lead_table(setup: TransportLeads) -> list[dict]:
    return [{"name": l.name, **l.describe(), "mu": m0, "mu_biased": l.mu,
             "temperature": l.temperature} for l, m0 in zip(setup.leads, setup.mu0)]


def cmd_transport(args) -> int:
    """Handler of ``qcspin transport``; returns the exit code.  Collective.  Bad input gives
    ``qcspin: error: ...`` (exit status 2) on every rank before any work."""
    from analysis.spectrum import with_coupling
    from toolkit.cli import error, result, say  # rank 0 prints
    from toolkit.config import config_to_toml, load_config
    from toolkit.device import device_from_config

    comm = get_comm()
    rank0 = comm.getRank() == 0
    number("--gamma", args.gamma, gt=0)
    number("--temperature", args.temperature, ge=0)  # T = 0: exact step Fermi functions
    number("--mu-l", args.mu_l)
    number("--mu-r", args.mu_r)
    cfg = load_config(args.config, args.set)
    out = args.output or os.path.splitext(os.path.basename(args.config))[0] + "_transport.h5"
    if args.spin_config and not any(l.magnetic for l in cfg.layers):
        raise ConfigError(f"--config {args.spin_config} is not allowed: config '{args.config}' "
                          f"has no magnetic layer (a layer with spins) to set")
    dev = device_from_config(cfg)
    dev = with_coupling(dev, None, args.spin_config) if args.spin_config else dev
    try:  # input errors are found identically on every rank, before any collective call
        setup = transport_leads(cfg, dev, gamma=args.gamma, mu_l=args.mu_l, mu_r=args.mu_r,
                                temperature=args.temperature)
    except ValueError as exc:
        error(str(exc))
        return 2
    check_outputs({"-o": out, "--png": args.png}, args.overwrite, comm)
    left, right = setup.leads
    try:
        res = transmission(dev, setup.leads, args.energies, comm=comm, method=args.method)
        cur = landauer_current(dev, setup.leads, comm=comm)
    except ValueError as exc:
        error(str(exc))
        return 2
    E = toolkit.get_units(cfg.units).energy
    d = {"energies": (res.energies, E, "energy grid"),
         "theta": (res.theta, "", "Eq. 16 Tr[Gamma_l G^R Gamma_r G^A]"),
         "spin_r": (res.spin_r, "", "Tr[sigma_a Gamma_r G^R Gamma_l G^A], a = x, y, z"),
         "spin_l": (res.spin_l, "", "Tr[sigma_a Gamma_l G^R Gamma_r G^A], a = x, y, z"),
         "polarization": (res.polarization, "", "Eq. 17 (spin_r z)"),
         "dos": (res.dos, f"1/{E}", "Eq. 18 DOSh per site"),
         "current/particle": (np.array(cur.particle), f"{E}/hbar",
                              "(1/2pi) int theta (f_l - f_r): electrons per time l -> r"),
         "current/current": (np.array(cur.current), f"{E}/hbar",
                             "particle/2 = Re Tr Pi_l, paper Eq. 11 (lead_current of a run)"),
         "current/spin_l": (cur.spin_l, f"{E}", "paper Eq. 12 at the left lead (s = sigma/2)"),
         "current/spin_r": (cur.spin_r, f"{E}", "paper Eq. 12 at the right lead (s = sigma/2)"),
         "current/error": (np.array(cur.error), f"{E}/hbar", "error estimate of particle")}
    attrs = {"config": config_to_toml(cfg), "leads_from": setup.source,
             "leads": _lead_table(setup), "bias_protocol": setup.protocol, "bias_V": setup.V,
             "mu_l": left.mu, "mu_r": right.mu,
             "temperature_l": left.temperature, "temperature_r": right.temperature,
             "method": res.method, "current_method": cur.method,
             "spin_config": args.spin_config or "from config", "energy_unit": E,
             "mpi_size": comm.getSize()}
    for key, lead in (("gamma_l", left), ("gamma_r", right)):
        if lead.model == "wide-band":
            assert isinstance(lead, WideBandLead)  # the class of model 'wide-band'
            attrs[key] = (float(lead.gamma) if np.ndim(lead.gamma) == 0
                          else lead.gamma_diagonal().tolist())
    path = save_table(out, d, attrs, kind="transport", comm=comm,
                      overwrite=True)
    if rank0:  # the numbers are the result (also with qcspin -q); leads and path are not
        result(f"qcspin transport: {cfg.name}: N_s = {dev.n_orbitals}, {len(res.energies)} "
               f"energies ({res.method}); max theta {res.theta.max():.6g}")
        bias = (f", bias {setup.protocol} V = {setup.V:g}" if setup.protocol != "none" else "")
        say(f"  leads ({setup.source}{bias}): " + "; ".join(
            f"{l.name}: " + ", ".join(f"{k} {_num(v)}" for k, v in l.describe().items()
                                      if k not in ("model", "side")) + f" ({l.model}), "
            f"mu {l.mu:g}, T {l.temperature:g}"
            for l in setup.leads))
        result(f"  particle current {cur.particle:.10g} (+- {cur.error:.1e}; lead_current = "
               f"{cur.current:.10g}), spin_r {np.array2string(cur.spin_r, precision=6)}")
        say(f"  results: {path}")
    png_on_root(lambda: args.png and plot_transmission(res, args.png, title=cfg.name, mu=setup.mu,
                                                      energy_unit=E), comm)
    return 0


def register(subparsers) -> None:
    """Register ``qcspin transport`` on an argparse sub-parser collection."""
    p = subparsers.add_parser(
        "transport", help="transmission, spin polarization, DOSh and Landauer current",
        description="Landauer transport (paper 004 Eqs. 11-12, 16-18) of CONFIG.toml between "
                    "wide-band leads on the left and right faces, for the spins of the config "
                    "(or a static configuration).  The leads and the bias come from the "
                    "config's [[leads]] and [bias] (as in a run); --gamma, --mu-l, --mu-r and "
                    "--temperature only describe the leads of a config without [[leads]].  "
                    "PETSc options: -qcspin_transport_<option>.")
    p.add_argument("config", help="TOML config")
    p.add_argument("--energies", type=range_arg, default=range_arg("-4:4:0.01"),
                   metavar="START:STOP:STEP", help="energy grid (default -4:4:0.01)")
    lead_help = " (config without [[leads]] only; default {})"
    p.add_argument("--gamma", type=float, default=None,
                   help="Gamma of both leads" + lead_help.format(CLI_DEFAULTS["gamma"]))
    p.add_argument("--mu-l", type=float, default=None, help="chemical potential of the left "
                   "lead" + lead_help.format(CLI_DEFAULTS["mu_l"]))
    p.add_argument("--mu-r", type=float, default=None, help="chemical potential of the right "
                   "lead" + lead_help.format(CLI_DEFAULTS["mu_r"]))
    p.add_argument("--temperature", type=float, default=None,
                   help="k_B T of both leads" + lead_help.format(CLI_DEFAULTS["temperature"]))
    p.add_argument("--config", dest="spin_config", choices=("parallel", "perpendicular"),
                   default=None, help="static spins instead of the config's")
    p.add_argument("--method", choices=METHODS, default="auto", help="Green-function solver")
    add_set_arg(p, example="bias.V=0.2")
    add_output_args(p, "HDF5 output (default: CONFIG name + _transport.h5)",
                    png="DOSh, theta and P")
    p.set_defaults(func=cmd_transport)
