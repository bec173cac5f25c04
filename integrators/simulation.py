"""The run loop: one PETSc TS on the composite state, observables, HDF5 output, checkpoints.

>>> sim = Simulation(config)          # builds device, operators, initial state, TS
>>> sim.run("out.h5")                 # or: sim.step(10); sim.observables()
"""
from __future__ import annotations

import json
import math
import os
import platform
import signal
import time as _time
import warnings
from typing import cast

import numpy as np

from operators.currents import PlaneCurrent, monolayer_polarization, spin_balance
from operators.observables import diag_block_indices, layer_magnetization, spin_density_local
from toolkit.checkpoint import read_rows, write_rows
from toolkit.config import Config, ConfigError, config_to_toml, with_changes
from toolkit.device import Device, device_from_config
from toolkit.errors import RunFailedError
from toolkit.io import (
    FileExistsErrorQC,
    OutputLock,
    ResultFile,
    ResultFileError,
    _argv,
    _now,
    git_revision,
    load_checkpoint,
    series_for,
    versions,
)
from toolkit.memory import release_free_memory
from toolkit.parallel import (
    allreduce,
    barrier,
    bcast,
    first_message,
    gather_rows,
    get_comm,
)
from toolkit.petsc_options import OptionError
from toolkit.progress import ProgressBar

from petsc4py import PETSc

from .assembly import GivenState, _make_leads, build_simulation, resolve_initial, start
from .bias import BiasProtocol
from .electrons import ElectronProblem
from .moment_observables import MomentObservables
from .open_rhs import PadeLeads
from .rhs import CoupledRHS
from .ts import (
    DEFAULT_PREFIX,
    call_monitors,
    create_ts,
    effective_options,
    ts_settings,
    view_from_options,
)

__all__ = ["Simulation", "run", "NumericalInstability"]


class NumericalInstability(RunFailedError):
    """The state became non-finite (NaN/inf): the step is too large for the scheme."""


class Simulation:
    """Coupled electron/spin dynamics of an isolated junction.  Collective on ``comm``.

    Parameters
    ----------
    config : Config (the device is built from it) or Device (its ``config`` supplies the rest)
    comm : PETSc communicator (default: library-owned duplicate of COMM_WORLD)
    rho0 : optional full initial density matrix (N_s, N_s); default: diagonalisation of H(S0)
    prefix : PETSc options prefix of the TS (default ``qcspin_``)
    """

    # the right-hand side composed from its terms (integrators.assembly.rhs_terms)
    rhs: CoupledRHS
    # set by ``qcspin run`` (analysis/run_cli.py) before the result file is created; declared
    # only: a Simulation without it has no such attribute (see the getattr in _open_writer)
    representation_report: dict | None

    def __init__(self, config: Config | Device, comm: PETSc.Comm | None = None, *,
                 rho0: np.ndarray | None = None, spins0: np.ndarray | None = None,
                 leads0: list | dict | None = None, prefix: str = DEFAULT_PREFIX) -> None:
        given = None if rho0 is None else GivenState(np.asarray(rho0), leads0)
        asm = self.assembly = build_simulation(config, comm, spins0=spins0, given=given,
                                               prefix=prefix)
        self.device, self.config, self.units = asm.device, asm.config, asm.units
        self.comm, self.prefix = asm.comm, prefix
        self.leads, self.problem, self.poles = asm.leads, asm.problem, asm.poles
        self.edevice, self.extension = asm.problem.edevice, asm.problem.ext
        self.memory = asm.memory
        self.H, self.spinH, self.layout, self.rhs = asm.H, asm.spinH, asm.layout, asm.rhs
        if self.leads:
            self.mu_of_t = cast(BiasProtocol, asm.mu_of_t)
        dev, edev, d = self.device, self.edevice, self.H.dist
        self.y = self.layout.create_vec()
        self.dt = self.units.time_to_internal(self.config.time.dt)
        # open junctions: the pole decay L apart (solver.stiff); closed: no stiff part
        solver = self.config.solver
        if self.leads and solver.stiff != "none":
            f, linear = self.rhs.nonstiff, self.rhs.decay()
        else:
            f, linear = self.rhs, None
        # the TS types of python (exponential RK4, staggered Heun) write the right-hand side
        # into their own stage vectors: no state-sized F for them
        python_ts = (linear is not None and solver.stiff == "expint") \
            or solver.scheme == "staggered-heun"
        self.F: PETSc.Vec | None = None if python_ts else self.y.duplicate()
        self.ts, self.ts_options = create_ts(self.comm, f, self.F, self.dt, self.config.solver,
                                             prefix, linear=linear, coupled=self.rhs)
        self.ts_settings = ts_settings(self.ts, prefix)  # what the TS uses after its options
        self.adaptive = bool(self.ts_settings["adaptive"])
        for key in ("ts_max_time", "ts_max_steps"):
            if key in self.ts_settings:
                self.ts.destroy()
                raise OptionError(f"PETSc option -{prefix}{key} is not used by the qcspin run "
                                  f"loop; set the length of the run with --t-end or time.t_end")
        dt_ts = self.ts_settings["ts_dt"]  # the step in force (-qcspin_ts_dt may change it)
        if dt_ts != self.dt:
            self.dt = dt_ts
            self.config = with_changes(self.config, time={
                "dt": float(self.units.time_from_internal(dt_ts))})
        a = self.y.getArray()
        self.layout.spins(a)[...] = dev.spins0[d.spin_start:d.spin_stop]
        initial = resolve_initial(asm, given)
        self.origin = "rho0 given" if given is not None else initial
        start(asm, a, initial, given)
        release_free_memory()          # the initial state's solver work, before the TS's
        self.ts.setSolution(self.y)
        self.ts.setTime(0.0)
        self.ts.setStepNumber(0)
        self.ts.setUp()
        call_monitors(self.ts)  # step 0 (the loop calls ts.step(), not TSSolve)
        self.plane_x = _planes(dev, self.config)
        ext = self.extension
        self.planes = (PlaneCurrent(edev, self.H, [x + ext.left for x in self.plane_x])
                       if self.plane_x else None)
        # explicit lead sites: the lead current is the current on the lead-device bonds
        self._lead_planes = [self.problem.interface_plane(k) for k in range(len(self.leads))]
        xs = [p[0] for p in self._lead_planes if p is not None]
        self._interface_current = PlaneCurrent(edev, self.H, xs) if xs else None
        # device rows (observables never include explicit lead sites)
        ds = ext.device_sites
        loc = np.arange(d.n_local_rows) + d.row_start
        self._dev_rows = np.flatnonzero((loc >= 2 * ds.start) & (loc < 2 * ds.stop))
        # the device-lead bonds of explicit lead sites (local device row a, lead column b,
        # H_ab): energy/electronic is Tr(H_DD rho_DD), the device block only
        b = edev.bonds
        in_dev = (b >= ds.start) & (b < ds.stop)
        cut = in_dev[:, 0] != in_dev[:, 1]
        a_site = np.where(in_dev[cut, 0], b[cut, 0], b[cut, 1])
        l_site = np.where(in_dev[cut, 0], b[cut, 1], b[cut, 0])
        t_ab = edev.hopping[cut]
        rows_, cols_, vals_ = [], [], []
        for sp in (0, 1):
            r = 2 * a_site + sp
            mine = (r >= d.row_start) & (r < d.row_start + d.n_local_rows)
            rows_.append(r[mine] - d.row_start)
            cols_.append(2 * l_site[mine] + sp)
            vals_.append(-t_ab[mine])
        self._cut = (np.concatenate(rows_).astype(np.int64),
                     np.concatenate(cols_).astype(np.int64), np.concatenate(vals_))
        self._F_obs = None
        # paper 000's torques, current-driven densities and magnon currents (moment runs)
        self._moments = (MomentObservables(self) if self.device.equation == "moment"
                         else None)
        if self._moments is not None and self._moments.reason and self.comm.getRank() == 0 \
                and self.leads:
            warnings.warn(f"no current-driven observables (spin_density_cd, torque): "
                          f"{self._moments.reason}", RuntimeWarning, stacklevel=2)
        self._all_sites = np.arange(d.site_start, d.site_stop)
        self._site_idx = diag_block_indices(self._all_sites, d.site_start, self.layout.nloc)
        self._diag_rows = np.arange(d.n_local_rows)
        self._diag_cols = d.row_start + self._diag_rows
        # (step, record) made by step() before run() opens a file (record None off rank 0)
        self._pending: list[tuple[int, dict | None]] = []
        self.last_observables: dict[str, np.ndarray] | None = None
        self.wall0 = _time.perf_counter()

    @classmethod
    def from_checkpoint(cls, path: str, config: Config | None = None,
                        comm: PETSc.Comm | None = None, **kw) -> "Simulation":
        """A new run starting at t = 0 from the checkpointed state of ``path`` (rho, lead blocks,
        spins), e.g. stage 2 of paper 004's protocol (a bias quench from the relaxed stage-1
        state).  ``config`` (default: the file's) may change the bias, time step, output...
        but must describe the same device and leads.  Collective."""
        import tomllib

        from toolkit.config import config_from_dict

        comm = get_comm(comm)
        ck = bcast(load_checkpoint(path) if comm.getRank() == 0 else None, comm)
        cfg = config or config_from_dict(tomllib.loads(ck["config"]))
        if "leads" in ck and config is not None:
            err = _representation_mismatch(path, ck["leads"], cfg)
            if err:
                raise ConfigError(err)
        sim = cls(cfg, comm, rho0=ck["rho"], spins0=ck["spins"],
                  leads0=_checkpoint_components(ck, None), **kw)
        sim.origin = f"checkpoint of {os.path.abspath(path)} (step {int(ck['step'])})"
        return sim

    # ------------------------------------------------------------------ state access
    @property
    def time(self) -> float:
        """Current time in internal units."""
        return self.ts.getTime()

    @property
    def step_number(self) -> int:
        return self.ts.getStepNumber()

    def state(self, root: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rho (N_s, N_s), spins (n_spin, 3)) gathered on ``root`` (None = every rank)."""
        return self.layout.to_global(self.y, root=root)

    def set_state(self, rho: np.ndarray, spins: np.ndarray, t: float = 0.0, step: int = 0,
                  leads: list | dict | None = None) -> None:
        """Set the full state (every rank passes the full arrays).  Collective."""
        self.layout.from_global(self.y, rho, spins, leads)
        self.ts.setTime(t)
        self.ts.setStepNumber(step)

    def _set_local_state(self, path: str, ck: dict) -> None:
        """The state from a checkpoint read by rows (:func:`toolkit.checkpoint.read_rows`):
        this rank's rows of rho and the lead components, the spins and small components whole.
        A component of another size is refused with one line.  Collective."""
        lay = self.layout
        rows = _checkpoint_components(ck["rows"], lay.aux_names)
        whole = _checkpoint_components(ck["whole"], lay.aux_names)
        comps = {**rows, **whole}
        bad = None
        want = {"rho": (lay.nloc, lay.N), "spins": (lay.n_spins_total, 3),
                **{n: (lay.nloc, lay.columns(n)) for n in lay.aux_names},
                **{n: (c,) for n, c in zip(lay.small_names, lay.small_sizes)}}
        have = {"rho": np.shape(ck["rows"].get("rho")), "spins": np.shape(ck["whole"]["spins"]),
                **{n: np.shape(comps[n]) if n in comps else None for n in want
                   if n not in ("rho", "spins")}}
        for n, shape in want.items():
            if have.get(n) != shape:
                bad = (f"cannot restart from '{path}': its checkpoint component '{n}' has shape "
                       f"{have.get(n)} (rows of this rank), this run needs {shape}")
                break
        bad = first_message(bad, self.comm)
        if bad:
            raise ResultFileError(bad)
        a = self.y.getArray()
        lay.rho(a)[...] = ck["rows"]["rho"]
        d = self.H.dist
        lay.spins(a)[...] = np.asarray(ck["whole"]["spins"])[d.spin_start:d.spin_stop]
        lay.fill(a, [(n, rows[n]) for n in lay.aux_names], local=True)
        lay.fill(a, [(n, whole[n]) for n in lay.small_names])
        self.y.stateIncrease()
        self.ts.setTime(float(ck["time"]))
        self.ts.setStepNumber(int(ck["step"]))

    # ------------------------------------------------------------------ stepping
    def step(self, n: int = 1, *, record: bool = True) -> float:
        """Advance ``n`` time steps (fixed-step schemes) and return the new time.  Collective.

        With ``record`` the observables at step 0 and at every ``output_every``-th step are
        kept, and a later :meth:`run` into a new file writes them first, so the file holds the
        whole trajectory (``record=False``: callers that sample for themselves).  Raises
        :class:`NumericalInstability` if the state becomes non-finite."""
        every = self.config.time.output_every
        self.stability_limit()  # while H is finite
        record = record and (bool(self._pending) or self.step_number == 0)
        if record and not self._pending:
            self._pending.append((0, self._record(None)))
        for _ in range(n):
            self._begin_step()
            self.ts.step()
            self._monitor()
            k = self.step_number
            out = self._is_output_step(k, every)
            if allreduce(self._nonfinite(out), self.comm, "max"):
                raise NumericalInstability(self._blowup_message())
            if out and record:
                self._pending.append((k, self._record(None)))
        return self.time

    def _monitor(self) -> None:
        """PETSc's TS monitors (-qcspin_ts_monitor ...): the loop calls ts.step() itself."""
        call_monitors(self.ts)

    def _begin_step(self) -> None:
        if self.leads:
            self.mu_of_t.begin_step(self.time)

    # ------------------------------------------------------------------ observables
    def observables(self, root: int | None = 0) -> dict[str, np.ndarray] | None:
        """Observables of the current state, gathered on ``root`` (None: every rank)."""
        a = self.y.getArray(readonly=True)
        lay = self.layout
        S_loc = lay.spins(a).real
        if lay.n_spins_total:
            self.H.set_spins(S_loc)
        X = self.rhs.hamiltonian_times_rho(a)
        d = self.H.dist
        rows = self._dev_rows
        e_loc = float(np.sum(X[rows, d.row_start + rows].real))
        cr, cc, cv = self._cut     # remove H_ab rho_ba over the device-lead bonds
        if len(cr):
            e_loc -= float(np.sum((cv * lay.rho(a)[cr, cc].conj()).real))
        e_el = allreduce(e_loc, self.comm)
        n_el = allreduce(float(np.sum(lay.rho(a)[rows, d.row_start + rows].real)), self.comm)
        s_loc = spin_density_local(a, self._site_idx)
        s_all = gather_rows(s_loc, self.comm, root=root)
        if s_all is not None:
            s_all = s_all[self.extension.device_sites]
        S_all = gather_rows(S_loc.copy(), self.comm, root=root)
        extra = self.transport_observables(a)  # collective: before any return
        mom = None
        if self._moments is not None:           # collective too
            mom = self._moments(a, np.array(self.rhs.spins_all(self.y, a), float))
        if s_all is None:
            return None
        assert S_all is not None  # gathered on the same root as s_all
        dev = self.device
        s_spin = s_all[dev.spin_sites]
        terms = self.spinH.energy(S_all, s_spin)
        e_cl = terms["exchange"] + terms["zeeman"] + terms["anisotropy"]
        out = {
            "time": np.float64(self.units.time_from_internal(self.time)),
            "step": np.int64(self.step_number),
            "wall_time": np.float64(_time.perf_counter() - self.wall0),
            "spins": S_all,
            "spin_density": s_all,
            "layer_magnetization": layer_magnetization(dev, S_all),
            "angular_momentum": (dev.angular_momentum_per_vector * S_all.sum(axis=0)
                                 + s_all.sum(axis=0)),
            "electron_number": np.float64(n_el),
            "energy/electronic": np.float64(e_el),
            "energy/classical": np.float64(e_cl),
            "energy/total": np.float64(e_el + e_cl),
            "energy/sd": np.float64(terms["sd"]),
        }
        out.update(extra)
        if mom is not None and self._moments is not None:
            out.update(self._moments.finish(mom, S_all, s_all, out.get("lead_spin_current")))
        return self._rates_to_file_units(out)

    def _rates_to_file_units(self, out: dict) -> dict:
        """Currents and other rates (units 1/time, hbar/time) from per internal time unit
        (hbar/E0) to per time unit of the config (eV-fs: per fs; natural: unchanged)."""
        from toolkit.io import SERIES

        if self.units.hbar == 1.0:
            return out
        for k, v in out.items():
            if SERIES.get(k, ("",))[0] in ("1/time", "hbar/time"):
                out[k] = np.asarray(v) / self.units.hbar
        return out

    def transport_observables(self, a: np.ndarray) -> dict[str, np.ndarray]:
        """Plane currents (Eqs. 13, 14), monolayer polarization (F1), lead currents and the
        spin-balance residual of the state array ``a``.  Collective."""
        out: dict[str, np.ndarray] = {}
        rho = self.layout.rho(a)
        if self.planes is not None:
            I, J = self.planes(rho)
            out["plane_current"] = np.atleast_1d(I)
            out["plane_spin_current"] = np.atleast_2d(J)
        ext = self.extension
        out["monolayer_polarization"] = monolayer_polarization(
            rho, self.edevice, self.H.dist, self.comm)[ext.left:ext.left + ext.device_columns]
        if self.leads:
            out.update(self.lead_observables(a))
        if self.config.output.spin_balance:
            if self._F_obs is None:
                self._F_obs = self.y.duplicate()
            self.rhs(None, self.time, self.y, self._F_obs)
            out["spin_balance_residual"] = spin_balance(self.rhs, self.y, self._F_obs)["residual"]
        return out

    def lead_observables(self, a: np.ndarray) -> dict[str, np.ndarray]:
        """Lead currents of the state array ``a`` (paper 004, Eqs. 11, 12).  Collective.

        ``lead_current[l] = Re Tr Pi_l`` and ``lead_spin_current[l, a] = Re Tr(sigma_a Pi_l)``,
        positive when flowing from lead l into the device; the number of electrons (spin)
        entering per unit time is twice these (d N/dt = sum_l 2 Re Tr Pi_l).
        """
        if self.problem.auxiliary:                # per lead already
            charge, spin = self.rhs.lead_currents(a)
        else:                                     # leads, not as auxiliary modes
            bc, bs = self.rhs.lead_currents(a)    # per wide-band coupling
            n = len(self.leads)
            charge, spin = np.zeros(n), np.zeros((n, 3))
            for i, b in enumerate(self.rhs.term(PadeLeads).blocks):
                if self._lead_planes[b.index] is None:   # a wide-band lead on the face
                    charge[b.index] += bc[i]
                    spin[b.index] += bs[i]
        # leads with explicit sites: the current on their bonds to the device (not the
        # current out of their absorbers)
        if self._interface_current is not None:
            I, J = self._interface_current(self.layout.rho(a))
            ks = [(k, p[1]) for k, p in enumerate(self._lead_planes) if p is not None]
            for j, (k, sign) in enumerate(ks):
                charge[k], spin[k] = sign * I[j], sign * J[j]
        return {"lead_current": charge, "lead_spin_current": spin,
                "lead_mu": np.asarray(self.mu_of_t.value(self.time), float)}

    # ------------------------------------------------------------------ full run
    def run(self, output: str | None = None, *, t_end: float | None = None, overwrite: bool = False,
            restart: bool = False, progress: bool = True, handle_signals: bool = True,
            max_steps: int | None = None) -> dict:
        """Integrate to ``t_end`` (config units; default ``[time] t_end``), writing ``output``.

        ``restart=True`` continues from the checkpoint stored in ``output`` (its stored config
        must describe the same run; ``t_end`` may extend it).  An existing file is never
        overwritten unless ``overwrite=True``, and then only once the new file has its first
        record.  SIGINT/SIGTERM write a checkpoint and stop.  The file records its status
        (running, finished, interrupted, failed) and one history entry per run segment.  A
        non-finite state stops the run with :class:`NumericalInstability` (the file is marked
        failed and keeps every valid record).  Returns a summary dict.  Collective.
        """
        if t_end is not None:
            self.config = with_changes(self.config, time={"t_end": check_t_end(t_end)})
        cfg = self.config
        rank0 = self.comm.getRank() == 0
        t_end_int = self.units.time_to_internal(cfg.time.t_end)
        # fixed step: whole steps, >= t_end
        self._check_length(t_end_int)
        n_steps_total = int(np.ceil(t_end_int / self.dt - 1e-9))
        self.stability_limit()  # estimated now, while H is finite (used if the run blows up)
        if output:  # a symlink: lock and replace the file it points to
            output = os.path.realpath(output)
        lock, writer = self._open_output(output, overwrite, restart) if output else (None, None)
        every, ck_every = cfg.time.output_every, cfg.time.checkpoint_every
        stop = {"flag": 0}
        old = {}
        if handle_signals:
            def handler(signum, frame):
                stop["flag"] = signum
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
                try:
                    old[sig] = signal.signal(sig, handler)
                except ValueError:  # not in the main thread
                    pass
        bar = ProgressBar(self.units.time_from_internal(t_end_int), enabled=progress and rank0,
                          label="t")
        self.wall0 = _time.perf_counter()
        steps_done, status, message = 0, "running", ""
        step0 = self.step_number
        try:
            self._segment_start(writer, output, restart)
            while not self._finished(t_end_int, n_steps_total):
                if max_steps is not None and steps_done >= max_steps:
                    status, message = "interrupted", f"stopped after max_steps = {max_steps}"
                    break
                self._advance(t_end_int, every)
                steps_done += 1
                k = self.step_number
                full = self._is_output_step(k, every) or (output is not None
                                                          and k % ck_every == 0)
                flags = allreduce(np.array([stop["flag"], self._nonfinite(full)]), self.comm,
                                  "max")
                if flags[1]:
                    raise NumericalInstability(self._blowup_message())
                if self._is_output_step(k, every):
                    self._record(writer)
                if output is not None and k % ck_every == 0:
                    self._checkpoint(writer)
                bar.update(self.units.time_from_internal(self.time))
                if flags[0]:
                    name = signal.Signals(int(flags[0])).name
                    status, message = "interrupted", f"{name} at step {k}"
                    break
            view_from_options(self.ts)
            if output is not None:
                self._checkpoint(writer)
            if status == "running":
                status = "finished"
        except BaseException as exc:
            status = "failed"
            message = (str(exc) if isinstance(exc, NumericalInstability)
                       else f"{type(exc).__name__}: {exc}")
            if isinstance(exc, KeyboardInterrupt):
                status, message = "interrupted", "KeyboardInterrupt"
            raise
        finally:
            bar.close()
            for sig, h in old.items():
                signal.signal(sig, h)
            self._segment_end(writer, lock, status, message, step0)
        if output is not None:   # rank 0 has closed and published the file: readable everywhere
            barrier(self.comm)
        wall = _time.perf_counter() - self.wall0
        return {"output": output, "time": self.units.time_from_internal(self.time),
                "steps": self.step_number, "steps_this_run": steps_done, "wall_time": wall,
                "interrupted": status == "interrupted", "status": status, "message": message,
                "rhs_calls": self.rhs.n_calls, "time_unit": self.units.time,
                "t_end": cfg.time.t_end}

    def _check_length(self, t_end_int: float) -> None:
        """Refuse a run whose step count overflows PETSc's 32-bit step counter (or, adaptive,
        whose initial step is below 1e-12 of the run): it would run for ever."""
        dt_u = self.units.time_from_internal(self.dt)
        t_u = self.units.time_from_internal(t_end_int)
        if self.adaptive:
            if self.dt < 1e-12 * max(t_end_int, self.units.time_to_internal(1.0)):
                raise ConfigError(f"config key 'time.dt' (or -{self.prefix}ts_dt) = {dt_u:g} is "
                                  f"not allowed: the initial adaptive step must be >= 1e-12 of "
                                  f"the run (t_end = {t_u:g})")
            return
        n = t_end_int / self.dt
        if n > 2 ** 31 - 2:
            raise ConfigError(f"config key 'time.t_end' = {t_u:g} is not allowed with dt = "
                              f"{dt_u:g} (or -{self.prefix}ts_dt): {n:.3g} steps exceed the "
                              f"2^31 - 1 steps PETSc can count; use a larger dt or a shorter "
                              f"run")

    def _segment_start(self, writer: ResultFile | None, output: str | None,
                       restart: bool) -> None:
        """Records buffered by :meth:`step`, the first record and checkpoint, the history entry;
        a new file is renamed into place here.  Collective."""
        empty = bcast(writer.n_output == 0 if writer is not None else True, self.comm)
        pending, self._pending = self._pending, []
        if empty and not restart:
            if writer is not None:
                for _, rec in pending:
                    assert rec is not None  # the writer and the records are on rank 0
                    writer.append(rec)
            k = self.step_number
            if self._is_output_step(k, self.config.time.output_every) and (
                    not pending or pending[-1][0] != k):
                self._record(writer)
        if output is not None and not restart:
            self._checkpoint(writer)
        if writer is not None:
            writer.publish()
            t = self.units.time_from_internal(self.time)
            writer.begin_segment({
                "started": _now(), "status": "running", "restart": bool(restart),
                "initial": self.origin if not restart else "checkpoint",
                "t_start": t, "step_start": int(self.step_number),
                "t_end": self.config.time.t_end, "argv": _argv(), "host": platform.node(),
                "mpi_size": self.comm.getSize(), "qcspin": _version(), "git": git_revision()})
            writer.set_status("running")

    def _segment_end(self, writer: ResultFile | None, lock, status: str, message: str,
                     step0: int) -> None:
        try:
            if writer is not None:
                try:
                    writer.end_segment(ended=_now(), status=status, message=message,
                                       t_stop=self.units.time_from_internal(self.time),
                                       step_stop=int(self.step_number),
                                       wall_time=_time.perf_counter() - self.wall0)
                    writer.set_status(status, message)
                finally:
                    writer.close()
        finally:
            if lock is not None:
                lock.release()

    def _nonfinite(self, full: bool) -> int:
        """1 if the local state is not finite: the diagonal of rho and the spins every step
        (a NaN anywhere reaches the diagonal within one right-hand side), the whole local
        state at output and checkpoint steps."""
        a = self.y.getArray(readonly=True)
        if full:
            return int(not np.isfinite(a).all())
        lay = self.layout
        ok = np.isfinite(lay.rho(a)[self._diag_rows, self._diag_cols]).all()
        return int(not (ok and np.isfinite(lay.spins(a)).all()))

    def _blowup_message(self) -> str:
        t = self.units.time_from_internal(self.time)
        dt = self.units.time_from_internal(self.dt)
        hint = self.stability_hint()
        return (f"the state became non-finite (NaN/inf) at t = {t:.6g} {self.units.time} "
                f"(step {self.step_number}); the records and the checkpoint before it are kept. "
                f"The step dt = {dt:g} is too large for this scheme{hint}")

    def stability_hint(self) -> str:
        """'' or a sentence naming the explicit stability limit the step exceeds."""
        est = self.stability_limit()
        if est is None:
            return ""
        lim, why = est
        dt = self.units.time_from_internal(self.dt)
        lim_u = self.units.time_from_internal(lim)
        fix = ("solver.stiff = 'expint' (the default) integrates the pole decay exactly, or "
               if "pole" in why else "")
        return (f": {why} limits an explicit step to dt < {lim_u:.3g} {self.units.time}; use "
                f"{fix}a smaller dt" + (f" (now {dt:g})" if dt > lim_u else ""))

    def stability_limit(self) -> tuple[float, str] | None:
        """Cached :meth:`estimate_stability_limit` (computed while the state is finite)."""
        if not hasattr(self, "_stability"):
            try:
                self._stability = self.estimate_stability_limit()
            except Exception:  # noqa: BLE001 - an estimate must never stop a run
                self._stability = None
        return self._stability

    def estimate_stability_limit(self) -> tuple[float, str] | None:
        """(largest stable explicit step [internal units], what sets it), or None for an
        adaptive step.  RK4-type schemes are stable for |lambda dt| < 2.83 on the imaginary
        axis (the oscillation of rho_ab at E_a - E_b: the band width W of H) and 2.79 on the
        negative real axis (the fastest pole decay xi_max/beta when solver.stiff = 'none').
        Collective."""
        if self.adaptive:
            return None
        from .stability import band_width

        W = band_width(self.H)
        limits = [(2.83 / W, f"the band width W = {W:.3g} of H (2.83/W)")] if W > 0 else []
        if self.leads and self.config.solver.stiff == "none":
            rate = self.rhs.decay().max_rate
            if rate > 0:
                limits.append((2.79 / rate, f"the fastest pole decay xi_max/beta = {rate:.3g} "
                                             f"(2.79 beta/xi_max)"))
        return min(limits) if limits else None

    def _finished(self, t_end: float, n_steps: int) -> bool:
        if self.adaptive:
            return self.time >= t_end * (1 - 1e-14)
        return self.step_number >= n_steps

    def _advance(self, t_end: float, every: int) -> None:
        if self.adaptive:  # land exactly on output times
            t_out = (np.floor(self.time / (self.dt * every) + 1e-9) + 1) * self.dt * every
            t_out = min(t_out, t_end)
            if self.time + self.ts.getTimeStep() > t_out:
                self.ts.setTimeStep(t_out - self.time)
        self._begin_step()
        self.ts.step()
        self._monitor()

    def _is_output_step(self, k: int, every: int) -> bool:
        if not self.adaptive:
            return k % every == 0
        ratio = self.time / (self.dt * every)
        return abs(ratio - round(ratio)) < 1e-9

    def _record(self, writer: ResultFile | None) -> dict | None:
        obs = self.observables(root=0)
        self.last_observables = obs
        if obs is not None:
            bad = [k for k, v in obs.items() if not np.all(np.isfinite(v))]
        else:
            bad = None
        bad = bcast(bad, self.comm)
        if bad:
            raise NumericalInstability(self._blowup_message().replace(
                "the state", f"the observables {bad}"))
        if obs is not None and not self.config.output.spin_density:
            obs.pop("spin_density")
        if writer is not None and obs is not None:
            writer.append(obs)
        return obs

    def _checkpoint(self, writer: ResultFile | None) -> None:
        """Gather the state (collective) and let rank 0 (the writer) store it; a non-finite
        state is never stored (NumericalInstability instead).  Collective."""
        if allreduce(self._nonfinite(True), self.comm, "max"):
            raise NumericalInstability(self._blowup_message())
        # every rank writes its own rows in place (toolkit/checkpoint.py): nothing of the
        # state's size is gathered; the spins and small components are written by rank 0
        lay = self.layout
        a = self.y.getArray(readonly=True)
        rows = {"rho": lay.rho(a), **{n: lay.view(a, n) for n in lay.aux_names}}
        S = gather_rows(lay.spins(a).real.copy(), self.comm, root=0)
        whole: dict[str, np.ndarray] | None = None
        if self.comm.getRank() == 0:
            assert S is not None               # gathered on rank 0
            whole = {"spins": S,
                     **lay.split_small(a[lay.small_offset:lay.small_offset + lay.n_small])}
        write_rows(writer, self.comm, self.H.dist.row_start, lay.N, rows, whole, self.time,
                   self.step_number, t_output=self.units.time_from_internal(self.time),
                   attrs={"leads": json.dumps(_lead_attrs(self.problem, self.config))})

    def _open_output(self, path: str, overwrite: bool, restart: bool):
        """(lock, writer) for ``path``; the lock is taken before anything is read or written.
        Collective (rank 0 holds the lock and the writer)."""
        rank0 = self.comm.getRank() == 0
        lock, err = None, None
        if rank0:
            try:
                lock = OutputLock(path).acquire()
                exists = os.path.exists(path)
                if exists and not (overwrite or restart):
                    err = (f"output file '{path}' exists; use --overwrite to replace it or "
                           f"--restart to continue it")
                if restart and not exists:
                    err = f"cannot restart: '{path}' does not exist"
            except FileExistsErrorQC as exc:
                err = str(exc)
        err = bcast(err, self.comm)
        if err:
            if lock is not None:
                lock.release()
            raise FileExistsErrorQC(err)
        try:
            return lock, self._open_writer(path, restart)
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    def _open_writer(self, path: str, restart: bool) -> ResultFile | None:
        rank0 = self.comm.getRank() == 0
        if restart:
            # every rank reads (and verifies) only its own rows: restarts on any rank count,
            # nothing of the state's size is broadcast (toolkit/checkpoint.py)
            lay = self.layout
            ck = read_rows(path, self.comm, self.H.dist.row_start, lay.nloc, lay.N,
                           check=lambda meta: _restart_mismatch(path, meta["config"],
                                                                self.config))
            if ck["fallback"] and rank0:
                warnings.warn(f"{path}: {ck['fallback']}", RuntimeWarning, stacklevel=4)
            self._set_local_state(path, ck)
            self._pending = []
            err: str | None = None
            if not rank0:
                return self._shared_writer(None, None)
            w = None
            try:
                w = ResultFile(path, mode="append", units=self.units,
                               series=series_for(self.config))
                if ck["slot"] >= 0 and ck["fallback"]:
                    w.use_slot(int(ck["slot"]))
                w.truncate(int(ck["n_output"]))
                w.set_config(config_to_toml(self.config),
                             effective_options(self.ts, self.ts_options, self.prefix))
            except (OSError, ValueError) as exc:
                err = f"cannot continue '{path}': {exc}"
            return self._shared_writer(w, err)
        if not rank0:
            return self._shared_writer(None, None)
        meta = {"config": config_to_toml(self.config), "versions": versions(),
                "petsc_options": effective_options(self.ts, self.ts_options, self.prefix),
                "ts_settings": self.ts_settings, "mpi_size": self.comm.getSize()}
        w, err = None, None
        try:
            w = ResultFile(path, mode="create", units=self.units, meta=meta, device=self.device,
                           series=series_for(self.config))
            w.f["device"].attrs["planes"] = list(self.plane_x)
            w.f["device"].attrs["lead_names"] = json.dumps([l.name for l in self.leads])
            w.f.attrs["leads"] = json.dumps(_lead_attrs(self.problem, self.config))
            if getattr(self, "representation_report", None) is not None:
                w.f.attrs["lead_representation"] = json.dumps(self.representation_report)
        except (OSError, ValueError) as exc:
            err = f"cannot write '{path}': {exc}"
        return self._shared_writer(w, err)

    def _shared_writer(self, w: ResultFile | None, err: str | None) -> ResultFile | None:
        """``w``, or the error of rank 0 raised on every rank (no rank left waiting)."""
        err = first_message(err, self.comm)
        if err:
            if w is not None:
                w.close()
            raise ResultFileError(err)
        return w

    def destroy(self) -> None:
        if self._F_obs is not None:
            self._F_obs.destroy()
        for obj in (self.ts, self.y, self.F):
            if obj is not None:
                obj.destroy()
        self.rhs.destroy()
        self.H.destroy()


def check_t_end(t_end) -> float:
    """``t_end`` as a float, or ConfigError naming ``time.t_end``."""
    try:
        value = float(t_end)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value < 0 or isinstance(t_end, bool):
        raise ConfigError(f"config key 'time.t_end' = {t_end!r} is not allowed: expected a "
                          f"finite number >= 0")
    return value


# keys a restart may change: how long to run and how often to checkpoint
RESTART_KEYS = ("time.t_end", "time.checkpoint_every")


def _flatten(d, prefix=""):
    out = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    elif isinstance(d, list) and d and isinstance(d[0], dict):
        for i, v in enumerate(d):
            out.update(_flatten(v, f"{prefix}{i}."))
    else:
        out[prefix[:-1]] = d
    return out


def _restart_mismatch(path: str, stored_toml: str, cfg: Config) -> str | None:
    """A message if ``cfg`` describes another run than the config stored in ``path`` (apart
    from :data:`RESTART_KEYS`), else None."""
    import tomllib

    from toolkit.config import config_from_dict, config_to_dict

    try:
        stored = config_to_dict(config_from_dict(tomllib.loads(stored_toml)))
    except (tomllib.TOMLDecodeError, ConfigError) as exc:
        return f"'{path}': its stored config cannot be read: {exc}"
    a, b = _flatten(stored), _flatten(config_to_dict(cfg))
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in RESTART_KEYS)
    if not diff:
        return None
    k = diff[0]
    return (f"cannot restart '{path}' with another config: '{k}' is {b.get(k)!r} here but "
            f"{a.get(k)!r} in the file ({len(diff)} key(s) differ); a restart may change only "
            f"{list(RESTART_KEYS)}")


def _version() -> str:
    import toolkit

    return toolkit.__version__


def _planes(device: Device, cfg: Config) -> tuple[int, ...]:
    if cfg.output.planes is not None:
        return tuple(cfg.output.planes)
    starts = sorted(l.columns[0] for l in cfg.layers if l.columns[0] > 0)
    return tuple(x - 1 for x in starts)


def _checkpoint_components(ck: dict, names) -> dict:
    """{component name: array} of a checkpoint (files before the named components store
    ``lead_k``, the k-th wide-band lead's Pi block, which is ``names[k]``)."""
    skip = {"rho", "spins", "time", "step", "n_output", "t", "slot", "fallback", "config",
            "petsc_options", "leads"}
    out = {k: v for k, v in ck.items() if k not in skip and not k.startswith("lead_")}
    legacy = sorted((k for k in ck if k.startswith("lead_") and k[5:].isdigit()),
                    key=lambda k: int(k[5:]))
    if legacy:
        if names is None:
            return {k: ck[k] for k in legacy}       # resolved by position in __init__
        out.update({names[int(k[5:])]: ck[k] for k in legacy if int(k[5:]) < len(names)})
    return out


#: lead attributes that fix the shape of a state (compared when a run starts from another
#: run's checkpoint; other lead parameters may change, e.g. a quench of Gamma)
STATE_KEYS = ("model", "representation", "sites", "absorbing", "lorentzians", "n_poles")


def _lead_attrs(problem: ElectronProblem, cfg: Config) -> list[dict]:
    """Per lead: model, representation, its parameters and the Padé pole count (stored with
    every checkpoint)."""
    return [dict(d, n_poles=lc.n_poles or cfg.electrons.n_poles)
            for d, lc in zip(problem.describe(), cfg.leads)]


def _representation_mismatch(path: str, stored: str, cfg: Config) -> str | None:
    """A message if the lead representations stored with a checkpoint differ from those of
    ``cfg``."""
    try:
        old = json.loads(stored)
    except (TypeError, ValueError):
        return None
    dev = device_from_config(cfg)
    new = _lead_attrs(ElectronProblem(dev, _make_leads(dev, cfg)), cfg)
    if len(old) != len(new):
        return (f"'{path}': its checkpoint has {len(old)} leads, the config {len(new)}")
    for k, (a, b) in enumerate(zip(old, new)):
        if a.get("representation") in ("modes", "lorentzian") or \
                b.get("representation") in ("modes", "lorentzian"):
            keys = [x for x in list(b) + [y for y in a if y not in b] if x != "lead"]
        else:     # what fixes the state's shape (a Gamma or absorber quench is allowed)
            keys = [x for x in STATE_KEYS if x in a or x in b]
        diff = [x for x in keys if a.get(x) != b.get(x)]
        if diff:
            key = diff[0]
            return (f"config key 'leads[{k}].{key}' = {b.get(key)!r} is not allowed with the "
                    f"state of '{path}': its lead '{a.get('lead')}' has {key} = {a.get(key)!r} "
                    f"(model {a.get('model')!r}, representation {a.get('representation')!r}); a "
                    f"state belongs to one lead representation: use the checkpoint's value or "
                    f"start from scratch")
    return None


def run(config: Config, output: str | None = None, **kw) -> dict:
    """Function façade: build a :class:`Simulation` and run it."""
    sim = Simulation(config, kw.pop("comm", None))
    try:
        return sim.run(output, **kw)
    finally:
        sim.destroy()
