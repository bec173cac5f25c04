"""The run loop: one PETSc TS on the composite state, observables, HDF5 output, checkpoints.

>>> sim = Simulation(config)          # builds device, operators, initial state, TS
>>> sim.run("out.h5")                 # or: sim.step(10); sim.observables()
"""
from __future__ import annotations

import json
import os
import signal
import time as _time

import numpy as np

from petsc4py import PETSc

from operators.hamiltonian import ElectronHamiltonian
from operators.currents import PlaneCurrent, monolayer_polarization, spin_balance
from operators.observables import diag_block_indices, layer_magnetization, spin_density_local
from operators.spin import ClassicalSpinHamiltonian
from toolkit.config import Config, config_to_toml
from toolkit.device import Device, device_from_config
from toolkit.io import FileExistsErrorQC, ResultFile, load_checkpoint, versions
from toolkit.parallel import allreduce, bcast, gather_rows, get_comm
from toolkit.progress import ProgressBar
from toolkit.units import get_units

from .bias import bias_function
from .initial import initial_density
from .layout import StateLayout
from .open_rhs import OpenRHS
from .rhs import ClosedRHS
from .stationary import stationary_state
from .ts import DEFAULT_PREFIX, adaptive, create_ts, effective_options

__all__ = ["Simulation", "run"]


class Simulation:
    """Coupled electron/spin dynamics of an isolated junction.  Collective on ``comm``.

    Parameters
    ----------
    config : Config (the device is built from it) or Device (its ``config`` supplies the rest)
    comm : PETSc communicator (default: library-owned duplicate of COMM_WORLD)
    rho0 : optional full initial density matrix (N_s, N_s); default: diagonalisation of H(S0)
    prefix : PETSc options prefix of the TS (default ``qcspin_``)
    """

    def __init__(self, config: Config | Device, comm: PETSc.Comm | None = None, *,
                 rho0: np.ndarray | None = None, spins0: np.ndarray | None = None,
                 leads0: list | None = None, prefix: str = DEFAULT_PREFIX) -> None:
        self.device = config if isinstance(config, Device) else device_from_config(config)
        if spins0 is not None:
            self.device = self.device.with_spins(spins0)
        self.config = self.device.config
        self.units = get_units(self.config.units)
        self.comm = get_comm(comm)
        self.prefix = prefix
        dev = self.device
        self.H = ElectronHamiltonian(dev, self.comm, prefix=prefix)
        d = self.H.dist
        self.spinH = ClassicalSpinHamiltonian(dev, d.spin_start, d.spin_stop)
        self.leads = _make_leads(dev, self.config)
        if self.leads:
            from operators.pade import pade_poles

            self.poles = pade_poles(self.config.electrons.n_poles)
            cols = tuple(self.poles.n_poles * len(l.interface) for l in self.leads)
            self.layout = StateLayout(d, dev.n_orbitals, self.comm, cols)
            self.mu_of_t = bias_function(self.config, self.leads, self.units)
            self.rhs = OpenRHS(self.H, self.spinH, self.layout, self.leads, self.poles,
                               self.mu_of_t)
        else:
            self.layout = StateLayout(d, dev.n_orbitals, self.comm)
            self.rhs = ClosedRHS(self.H, self.spinH, self.layout)
        self.y = self.layout.create_vec()
        self.F = self.y.duplicate()
        self.dt = self.units.time_to_internal(self.config.time.dt)
        # open junctions: the pole decay L apart (solver.stiff); closed: no stiff part
        if self.leads and self.config.solver.stiff != "none":
            f, linear = self.rhs.nonstiff, self.rhs.decay()
        else:
            f, linear = self.rhs, None
        self.ts, self.ts_options = create_ts(self.comm, f, self.F, self.dt, self.config.solver,
                                             prefix, linear=linear)
        self.adaptive = adaptive(self.ts_options, prefix)
        a = self.y.getArray()
        self.layout.spins(a)[...] = dev.spins0[d.spin_start:d.spin_stop]
        initial = self.config.electrons.initial
        if initial == "auto":
            initial = "stationary" if self.leads else "ground"
        if rho0 is None and initial == "stationary":
            rho, blocks = stationary_state(self.H, self.leads, self.poles, self.mu_of_t.initial)
            self.layout.rho(a)[...] = rho
            for k, block in enumerate(blocks):
                self.layout.lead(a, k)[...] = block
        elif rho0 is None:
            self.layout.rho(a)[...] = initial_density(self.H, self.config.electrons)
        else:
            self.layout.rho(a)[...] = np.asarray(rho0)[d.row_start:d.row_start + d.n_local_rows]
            if self.leads and leads0 is None:
                raise ValueError("rho0 given for an open junction without leads0 (the lead "
                                 "blocks Pi_l); pass both, e.g. via Simulation.from_checkpoint")
            for k, block in enumerate(leads0 or []):
                self.layout.lead(a, k)[...] = np.asarray(block)[d.row_start:d.row_start
                                                                + d.n_local_rows]
        self.ts.setSolution(self.y)
        self.ts.setTime(0.0)
        self.ts.setStepNumber(0)
        self.ts.setUp()
        self.plane_x = _planes(dev, self.config)
        self.planes = PlaneCurrent(dev, self.H, list(self.plane_x)) if self.plane_x else None
        self._F_obs = None
        self._all_sites = np.arange(d.site_start, d.site_stop)
        self._site_idx = diag_block_indices(self._all_sites, d.site_start, self.layout.nloc)
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
        n_leads = sum(1 for k in ck if k.startswith("lead_"))
        if n_leads != len(cfg.leads):
            raise ValueError(f"checkpoint '{path}' has {n_leads} lead blocks but the config "
                             f"has {len(cfg.leads)} leads")
        return cls(cfg, comm, rho0=ck["rho"], spins0=ck["spins"],
                   leads0=[ck[f"lead_{k}"] for k in range(n_leads)], **kw)

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
                  leads: list | None = None) -> None:
        """Set the full state (every rank passes the full arrays).  Collective."""
        self.layout.from_global(self.y, rho, spins, leads)
        self.ts.setTime(t)
        self.ts.setStepNumber(step)

    # ------------------------------------------------------------------ stepping
    def step(self, n: int = 1) -> float:
        """Advance ``n`` time steps (fixed-step schemes) and return the new time.  Collective."""
        for _ in range(n):
            self._begin_step()
            self.ts.step()
        return self.time

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
        rows = np.arange(d.n_local_rows)
        e_el = allreduce(float(np.sum(X[rows, d.row_start + rows].real)), self.comm)
        n_el = allreduce(float(np.sum(lay.rho(a)[rows, d.row_start + rows].real)), self.comm)
        s_loc = spin_density_local(a, self._site_idx)
        s_all = gather_rows(s_loc, self.comm, root=root)
        S_all = gather_rows(S_loc.copy(), self.comm, root=root)
        extra = self.transport_observables(a)  # collective: before any return
        if s_all is None:
            return None
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
            "angular_momentum": S_all.sum(axis=0) + s_all.sum(axis=0),
            "electron_number": np.float64(n_el),
            "energy/electronic": np.float64(e_el),
            "energy/classical": np.float64(e_cl),
            "energy/total": np.float64(e_el + e_cl),
            "energy/sd": np.float64(terms["sd"]),
        }
        out.update(extra)
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
        out["monolayer_polarization"] = monolayer_polarization(rho, self.device, self.H.dist,
                                                               self.comm)
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
        charge, spin = self.rhs.lead_currents(a)
        return {"lead_current": charge, "lead_spin_current": spin,
                "lead_mu": np.asarray(self.mu_of_t.value(self.time), float)}

    # ------------------------------------------------------------------ full run
    def run(self, output: str | None = None, *, t_end: float | None = None, overwrite: bool = False,
            restart: bool = False, progress: bool = True, handle_signals: bool = True,
            max_steps: int | None = None) -> dict:
        """Integrate to ``t_end`` (config units; default ``[time] t_end``), writing ``output``.

        ``restart=True`` continues from the checkpoint stored in ``output``.  An existing file is
        never overwritten unless ``overwrite=True``.  SIGINT/SIGTERM write a checkpoint and stop.
        Returns a summary dict.  Collective.
        """
        cfg = self.config
        rank0 = self.comm.getRank() == 0
        t_end_int = self.units.time_to_internal(cfg.time.t_end if t_end is None else t_end)
        writer = self._open_output(output, overwrite, restart) if output else None
        n_steps_total = int(np.ceil(t_end_int / self.dt - 1e-9))  # fixed step: whole steps, >= t_end
        every, ck_every = cfg.time.output_every, cfg.time.checkpoint_every
        stop = {"flag": False}
        old = {}
        if handle_signals:
            def handler(signum, frame):
                stop["flag"] = True
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    old[sig] = signal.signal(sig, handler)
                except ValueError:  # not in the main thread
                    pass
        bar = ProgressBar(self.units.time_from_internal(t_end_int), enabled=progress and rank0,
                          label="t")
        self.wall0 = _time.perf_counter()
        steps_done = 0
        interrupted = False
        try:
            empty = bcast(writer.n_output == 0 if writer is not None else True, self.comm)
            if self.step_number == 0 and empty:
                self._record(writer)
            while not self._finished(t_end_int, n_steps_total):
                if max_steps is not None and steps_done >= max_steps:
                    break
                self._advance(t_end_int, every)
                steps_done += 1
                k = self.step_number
                if self._is_output_step(k, every):
                    self._record(writer)
                if output is not None and k % ck_every == 0:
                    self._checkpoint(writer)
                bar.update(self.units.time_from_internal(self.time))
                if handle_signals and allreduce(int(stop["flag"]), self.comm, "max"):
                    interrupted = True
                    break
            if output is not None:
                self._checkpoint(writer)
        finally:
            bar.close()
            for sig, h in old.items():
                signal.signal(sig, h)
            if writer is not None and rank0:
                writer.close()
        wall = _time.perf_counter() - self.wall0
        return {"output": output, "time": self.units.time_from_internal(self.time),
                "steps": self.step_number, "steps_this_run": steps_done, "wall_time": wall,
                "interrupted": interrupted, "rhs_calls": self.rhs.n_calls,
                "time_unit": self.units.time}

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

    def _is_output_step(self, k: int, every: int) -> bool:
        if not self.adaptive:
            return k % every == 0
        ratio = self.time / (self.dt * every)
        return abs(ratio - round(ratio)) < 1e-9

    def _record(self, writer: ResultFile | None) -> None:
        obs = self.observables(root=0)
        self.last_observables = obs
        if writer is not None and obs is not None:
            if not self.config.output.spin_density:
                obs.pop("spin_density")
            writer.append(obs)

    def _checkpoint(self, writer: ResultFile | None) -> None:
        """Gather the state (collective) and let rank 0 (the writer) store it."""
        rho, S = self.state(root=0)
        blocks = self.layout.leads_to_global(self.y, root=0)
        if writer is not None:
            extra = {f"lead_{k}": b for k, b in enumerate(blocks)}
            writer.checkpoint(rho, S, self.time, self.step_number, extra)

    def _open_output(self, path: str, overwrite: bool, restart: bool) -> ResultFile | None:
        rank0 = self.comm.getRank() == 0
        err = None
        if rank0:
            exists = os.path.exists(path)
            if exists and not (overwrite or restart):
                err = (f"output file '{path}' exists; use --overwrite to replace it or --restart "
                       f"to continue it")
            if restart and not exists:
                err = f"cannot restart: '{path}' does not exist"
        err = bcast(err, self.comm)
        if err:
            raise FileExistsErrorQC(err)
        if restart:
            ck = bcast(load_checkpoint(path) if rank0 else None, self.comm)
            blocks = [ck[f"lead_{k}"] for k in range(len(self.layout.lead_columns))]
            self.set_state(ck["rho"], ck["spins"], float(ck["time"]), int(ck["step"]), blocks)
            if not rank0:
                return None
            w = ResultFile(path, mode="append", units=self.units)
            w.truncate(int(ck["n_output"]))
            return w
        if not rank0:
            return None
        meta = {"config": config_to_toml(self.config), "versions": versions(),
                "petsc_options": effective_options(self.ts, self.ts_options, self.prefix),
                "mpi_size": self.comm.getSize(), "qcspin_format": 1}
        w = ResultFile(path, mode="create", units=self.units, meta=meta, device=self.device)
        w.f["device"].attrs["planes"] = list(self.plane_x)
        w.f["device"].attrs["lead_names"] = json.dumps([l.name for l in self.leads])
        return w

    def destroy(self) -> None:
        if self._F_obs is not None:
            self._F_obs.destroy()
        for obj in (self.ts, self.y, self.F):
            obj.destroy()
        self.rhs.destroy()
        self.H.destroy()


def _planes(device: Device, cfg: Config) -> tuple[int, ...]:
    if cfg.output.planes is not None:
        return tuple(cfg.output.planes)
    starts = sorted(l.columns[0] for l in cfg.layers if l.columns[0] > 0)
    return tuple(x - 1 for x in starts)


def _make_leads(device: Device, cfg: Config) -> list:
    if not cfg.leads:
        return []
    from operators.leads import WideBandLead

    return [WideBandLead(device, lc.side, lc.gamma, mu=lc.mu, temperature=lc.temperature,
                         name=lc.name or None) for lc in cfg.leads]


def run(config: Config, output: str | None = None, **kw) -> dict:
    """Function façade: build a :class:`Simulation` and run it."""
    sim = Simulation(config, kw.pop("comm", None))
    try:
        return sim.run(output, **kw)
    finally:
        sim.destroy()
