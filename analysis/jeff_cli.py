"""``qcspin jeff [CONFIG.toml] --sweep J_sd=0.5:6:0.5 [...]``: J_eff sweeps from macrospin fits
(analysis/jeff.py does the work).  Registered in pyproject.toml (``qcspin.commands``)."""
from __future__ import annotations

import os

import toolkit
from analysis.jeff import N_PERIODS, SAMPLE_DT, SWEEP_PARAMS, T_CAP, jeff_sweep, plot_sweep
from analysis.plots import png_on_root
from toolkit.cli_args import add_output_args, add_set_arg, check_outputs, number
from toolkit.cli_args import values as parse_values
from toolkit.config import Config, ConfigError, load_config
from toolkit.parallel import get_comm

__all__ = ["register", "cmd_jeff", "parse_sweep"]


def parse_sweep(text: str) -> tuple[str, list[float]]:
    """``NAME=start:stop:step`` (stop included) or ``NAME=v1,v2,...`` -> (NAME, values);
    ConfigError naming the value and what is allowed otherwise."""
    if "=" not in text:
        raise ConfigError(f"--sweep {text!r} is not allowed: expected NAME=START:STOP:STEP or "
                          f"NAME=V1,V2,... with NAME one of {list(SWEEP_PARAMS)}")
    name, spec = (s.strip() for s in text.split("=", 1))
    if name not in SWEEP_PARAMS:
        raise ConfigError(f"--sweep parameter {name!r} is not allowed: expected one of "
                          f"{list(SWEEP_PARAMS)}")
    try:
        vals = parse_values(spec, decimals=12)
    except ValueError as exc:
        raise ConfigError(f"--sweep {text!r} is not allowed: {exc}") from None
    if name == "N_NM":
        if any(v != int(v) or v < 0 for v in vals):
            raise ConfigError(f"--sweep {text!r} is not allowed: N_NM values must be integers "
                              f">= 0")
        vals = [int(v) for v in vals]
    if not vals:
        raise ConfigError(f"--sweep {text!r} gives no values")
    if len(set(vals)) != len(vals):
        raise ConfigError(f"--sweep {text!r} is not allowed: a value is repeated")
    return name, vals


def register(subparsers) -> None:
    """Register ``qcspin jeff``."""
    p = subparsers.add_parser(
        "jeff", help="effective interlayer exchange J_eff from macrospin fits (sweeps, MPI)",
        description="Run isolated spin valves (paper 004 Sec. III A) and fit the macrospin "
                    "solution Eq. (21); J_eff > 0 is ferromagnetic (H_MS = -J_eff M_l.M_r). "
                    "Points are distributed over MPI ranks (mpirun -n K qcspin jeff ...).")
    p.add_argument("config", nargs="?", help="TOML config whose lattice/layers form the base "
                   "device of a J_sd sweep (default: 1D valve from --n-spins/--n-nm)")
    p.add_argument("--sweep", required=True, metavar="NAME=START:STOP:STEP",
                   help="J_sd=0.5:6:0.5 or N_NM=2:30:1 (stop included) or NAME=v1,v2,...")
    # None = not given: options that would be ignored (e.g. --n-spins with a CONFIG) are refused
    p.add_argument("--n-spins", type=int, default=None, metavar="N_S",
                   help="spins per layer of the 1D valve (5)")
    p.add_argument("--n-nm", type=int, default=None, metavar="N_NM",
                   help="spacer sites of the 1D valve in a J_sd sweep (10)")
    p.add_argument("--J-sd", type=float, default=None, dest="J_sd",
                   help="J_sd of an N_NM sweep (1)")
    p.add_argument("--J-ex", type=float, default=None, dest="J_ex",
                   help="intralayer J_ex of the 1D valve (-1)")
    p.add_argument("--dt", type=float, default=None, help="RK 3/8 step (config's or 0.1)")
    p.add_argument("--t-end", type=float, default=None, help="fixed run length (default: auto)")
    p.add_argument("--n-periods", type=float, default=None,
                   help=f"auto run length: precession periods to cover ({N_PERIODS})")
    p.add_argument("--t-cap", type=float, default=None, help=f"auto run length cap ({T_CAP:g})")
    p.add_argument("--t-min", type=float, default=0.0, help="fit only t >= T_MIN (transients)")
    p.add_argument("--fit-phase", action="store_true", help="also fit the phase phi")
    add_set_arg(p, what="a value of CONFIG")
    add_output_args(p, "HDF5 table (default: jeff_<NAME>.h5)", png="the table")
    p.set_defaults(func=cmd_jeff)


def _check_cli(args, name: str, base: Config | None) -> None:
    """Refuse bad or ignored options of ``qcspin jeff`` (ConfigError naming the option, the
    value and what is allowed).  Not collective (the same answer on every rank)."""
    number("--n-spins", args.n_spins, integer=True, ge=1)
    number("--n-nm", args.n_nm, integer=True, ge=0)
    number("--J-sd", args.J_sd)
    number("--J-ex", args.J_ex)
    number("--dt", args.dt, gt=0)
    number("--t-end", args.t_end, gt=0)
    number("--n-periods", args.n_periods, gt=0)
    number("--t-cap", args.t_cap, gt=0)
    number("--t-min", args.t_min, ge=0)
    swept = {"J_sd": ("--J-sd", args.J_sd), "N_NM": ("--n-nm", args.n_nm)}[name]
    ignored = [(*swept, f"{name} is the swept parameter")]
    if base is not None:
        ignored += [(f, v, "the CONFIG's layers define the valve") for f, v in
                    (("--n-spins", args.n_spins), ("--n-nm", args.n_nm), ("--J-ex", args.J_ex))]
    else:
        ignored.append(("--set", args.set or None, "--set changes a CONFIG; without one the 1D "
                                                   "valve is built from the options"))
    if args.t_end is not None:
        ignored += [(f, v, "--t-end fixes the run length") for f, v in
                    (("--n-periods", args.n_periods), ("--t-cap", args.t_cap))]
    for flag, value, reason in ignored:
        if value is not None:
            raise ConfigError(f"{flag} = {value!r} is not allowed with --sweep {args.sweep!r}"
                              f"{' and CONFIG ' + repr(args.config) if base else ''}: {reason}")
    # the macrospin fit needs >= 4 samples (every SAMPLE_DT, whole steps) at t >= t_min
    if base is None:
        dt = 0.1 if args.dt is None else args.dt
    else:
        dt = toolkit.get_units(base.units).time_to_internal(
            base.time.dt if args.dt is None else args.dt)
    spacing = max(1, int(round(SAMPLE_DT / dt))) * dt
    need = args.t_min + 4 * spacing
    t_run, flag = ((args.t_end, "--t-end") if args.t_end is not None else
                   (T_CAP if args.t_cap is None else args.t_cap, "--t-cap"))
    if t_run < need:
        raise ConfigError(f"{flag} = {t_run!r} is not allowed: the macrospin fit needs at least "
                          f"4 samples ({spacing:g} apart) at t >= --t-min = {args.t_min:g}; "
                          f"expected {flag} >= {need:g}")


def cmd_jeff(args) -> int:
    """Handler of ``qcspin jeff``; prints on rank 0 only; returns the exit code.  Collective.
    Bad input raises ConfigError (``qcspin: error: ...``, exit status 2) on every rank before
    any run; a failed sweep point gives ``qcspin: run failed: ...`` and exit status 1."""
    from toolkit.cli import error, result, say  # rank 0 prints

    comm = get_comm()
    name, values = parse_sweep(args.sweep)
    if args.config and name == "N_NM":
        raise ConfigError(f"CONFIG {args.config!r} is not allowed with --sweep {args.sweep!r}: "
                          f"an N_NM sweep builds the 1D valve from --n-spins/--J-sd")
    base = load_config(args.config, args.set) if args.config else None
    _check_cli(args, name, base)
    n_periods = N_PERIODS if args.n_periods is None else args.n_periods
    t_cap = T_CAP if args.t_cap is None else args.t_cap
    out = args.output or f"jeff_{name}.h5"
    check_outputs({"-o": out, "--png": args.png}, args.overwrite, comm)
    fixed = dict(dt=args.dt, t_end=args.t_end, n_periods=n_periods, t_cap=t_cap,
                 t_min=args.t_min, fit_phase=args.fit_phase)
    if base is not None:
        fixed["base"] = base
    else:
        fixed.update(N_S=5 if args.n_spins is None else args.n_spins,
                     J_ex=-1.0 if args.J_ex is None else args.J_ex)
        fixed.update({"N_NM": 10 if args.n_nm is None else args.n_nm} if name == "J_sd"
                     else {"J_sd": 1.0 if args.J_sd is None else args.J_sd})
    shown = {k: v for k, v in fixed.items() if k in ("N_S", "N_NM", "J_sd")}
    say(f"qcspin jeff: {len(values)} points of {name} on {comm.getSize()} rank(s) "
        f"({'config ' + args.config if base else 'fixed ' + str(shown)})")

    def report(i, p):  # the points of rank 0 (as before: the others' are in the table)
        f = p.fit
        say(f"  [{i + 1}/{len(values)}] {name} = {values[i]:<6g} J_eff = {f.J_eff: .6e}  "
            f"rms = {f.rms:.2e}  periods = {f.n_periods:.2f}  t_end = {p.t_end:g}  "
            f"{p.wall_time:.1f} s{'' if f.valid else '  INVALID: ' + f.reason}")

    try:
        sweep = jeff_sweep(name, values, path=out, overwrite=args.overwrite, comm=comm,
                           report=report, **fixed)
    except RuntimeError as exc:  # a point failed (on any rank): raised on every rank
        error(" ".join(str(exc).split()), label="run failed")
        return 1
    tab = sweep.table()  # the result: also with qcspin -q
    result(f"{'value':>8} {'J_eff':>14} {'J_eff*N_S^2':>14} {'rms':>9} {'periods':>8} valid")
    for k in range(len(values)):
        result(f"{tab['value'][k]:8g} {tab['J_eff'][k]:14.6e} {tab['J_eff_NS2'][k]:14.6e} "
               f"{tab['rms'][k]:9.2e} {tab['n_periods'][k]:8.2f} {bool(tab['valid'][k])}"
               + (f"  ({tab['reason'][k]})" if tab["reason"][k] else "")
               + (f"  [{tab['notes'][k]}]" if tab["notes"][k] else ""))
    say(f"wall time {sweep.wall_time:.1f} s; table: {os.path.abspath(out)}")
    png_on_root(lambda: args.png and plot_sweep(out, args.png), comm)
    return 0
