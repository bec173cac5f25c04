"""Assembly of a run: the device, its leads and their time-domain representation, the
operators, the state layout and the right-hand side, and the initial state.

    >>> asm = build_simulation(config, comm)          # everything but the time stepper
    >>> a = asm.layout.create_vec()                    # ...
    >>> start(asm, arr, "stationary")                  # fill a local state array

:class:`integrators.Simulation` is the run loop on top of an :class:`Assembly`.  The right-hand
side (``integrators.rhs.CoupledRHS``) is composed from its terms by :func:`rhs_terms`, from the
electron problem: the coherent term -i[H(S), rho] always; with leads one lead term, the Padé
blocks of the wide-band couplings (``open_rhs.PadeLeads``) or the auxiliary modes
(``aux_rhs.AuxiliaryLeads``, when ``problem.auxiliary``); the rigid shift of explicit lead sites
under a bias (``open_rhs.RigidShift``) when a lead adds sites; and the LLG equation of the
spins (``rhs.LLG``), coupled to the spin density of a pluggable source (default: that of the
evolved rho, ``rhs.LocalSpinDensity``; ``build_simulation(spin_density=...)``).

Initial states come from a registry, :data:`INITIAL_STATES` (``[electrons] initial``):
``ground`` / ``fermi`` (diagonalisation of H, integrators.initial), ``stationary`` (the
stationary state with the leads at their t = 0 potentials, integrators.stationary or the dense
auxiliary-mode form), ``partitioned`` / ``partitioned-empty`` (paper 000's start: leads and
device disconnected before t = 0) and ``checkpoint`` (a given rho and lead components, e.g.
:meth:`Simulation.from_checkpoint`).  A new strategy is one function registered with
:func:`initial_state`.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from operators.hamiltonian import ElectronHamiltonian
from operators.spin import ClassicalSpinHamiltonian
from toolkit.config import Config, ConfigError
from toolkit.device import Device, device_from_config
from toolkit.memory import MemoryEstimate, MemoryLimitError, StateSize, check_indices, check_memory
from toolkit.parallel import first_message, get_comm, ranks_on_node
from toolkit.units import Units, get_units

from petsc4py import PETSc

from .bias import BiasProtocol, bias_function
from .electrons import ElectronProblem
from .initial import initial_density
from .layout import StateLayout
from .open_rhs import PadeLeads, RigidShift
from .rhs import LLG, Coherent, CoupledRHS, LocalSpinDensity, SpinDensitySource, Term
from .stationary import partitioned_state, stationary_state
from .ts import DEFAULT_PREFIX

__all__ = ["Assembly", "build_simulation", "INITIAL_STATES", "initial_state", "start",
           "resolve_initial", "GivenState", "lead_poles", "rhs_terms", "SpinDensityFactory"]

#: builds the spin density source of the LLG term from (H, layout, problem, poles, mu_of_t)
SpinDensityFactory = Callable[[ElectronHamiltonian, StateLayout, ElectronProblem, list,
                               BiasProtocol | None], SpinDensitySource]


@dataclasses.dataclass(eq=False)
class Assembly:
    """What a run is made of (every field built by :func:`build_simulation`).  ``rhs`` is the
    CoupledRHS of the terms :func:`rhs_terms` composes; ``poles`` one PadePoles per lead;
    ``mu_of_t`` the leads' chemical potentials under the bias protocol."""

    config: Config
    device: Device
    units: Units
    comm: PETSc.Comm
    prefix: str
    leads: list
    problem: ElectronProblem
    poles: list
    memory: MemoryEstimate
    H: ElectronHamiltonian
    spinH: ClassicalSpinHamiltonian
    layout: StateLayout
    rhs: CoupledRHS
    mu_of_t: BiasProtocol | None = None

    @property
    def edevice(self) -> Device:
        """The device of the electron problem (the device plus explicit lead sites)."""
        return self.problem.edevice


def lead_poles(cfg: Config, make) -> list:
    """The Pade pole set of each lead: its own ``n_poles`` or ``electrons.n_poles``."""
    cache: dict[int, object] = {}
    out = []
    for lc in cfg.leads:
        n = lc.n_poles or cfg.electrons.n_poles
        if n not in cache:
            cache[n] = make(n)
        out.append(cache[n])
    return out


def _make_leads(device: Device, cfg: Config) -> list:
    """The leads of ``cfg`` from the one registry (operators.leads.LEAD_MODELS)."""
    if not cfg.leads:
        return []
    from operators.leads import leads_from_config

    return list(leads_from_config(device, cfg.leads))


@dataclasses.dataclass(frozen=True)
class GivenState:
    """A full initial state handed in (``checkpoint`` start): rho (N_s, N_s) of the electron
    problem and the auxiliary components (dict by name, legacy ``lead_k``, or a list in layout
    order)."""

    rho: np.ndarray
    leads: list | dict | None


def rhs_terms(problem: ElectronProblem, poles: list,
              spin_density: SpinDensitySource | None = None) -> list[Term]:
    """The terms of the right-hand side of ``problem``, in evaluation order (fresh objects,
    for one CoupledRHS): Coherent; with leads their representation, AuxiliaryLeads
    (``problem.auxiliary``) or PadeLeads (the wide-band couplings); RigidShift if a lead adds
    explicit sites; LLG with ``spin_density`` (default: LocalSpinDensity of the evolved rho)."""
    terms: list[Term] = [Coherent()]
    if problem.auxiliary:
        from .aux_rhs import AuxiliaryLeads

        terms.append(AuxiliaryLeads(problem, poles))
    elif problem.leads:
        terms.append(PadeLeads(problem, poles))
    if problem.shifts:
        terms.append(RigidShift(problem))
    terms.append(LLG(spin_density))
    return terms


def build_simulation(config: Config | Device, comm: PETSc.Comm | None = None, *,
                     spins0: np.ndarray | None = None, given: GivenState | None = None,
                     prefix: str = DEFAULT_PREFIX,
                     spin_density: SpinDensityFactory | None = None) -> Assembly:
    """Build the device, leads, electron problem, operators, layout and right-hand side of a
    run (no time stepper, no initial state).  ``spins0`` replaces the device's initial spins;
    ``given`` is checked against the components this run needs (one-line ConfigError);
    ``spin_density`` builds the source of the spin density the LLG term couples to
    (default: ``rhs.LocalSpinDensity``, that of the evolved rho).  The memory estimate is
    checked before anything large is allocated.  Collective."""
    comm = get_comm(comm)
    cfg0 = config.config if isinstance(config, Device) else config
    from operators.leads import time_domain_models

    for i, lc in enumerate(cfg0.leads):
        if lc.model not in time_domain_models():
            raise ConfigError(f"config key 'leads[{i}].model' = {lc.model!r} is not "
                              f"allowed: qcspin run integrates only "
                              f"{list(time_domain_models())} leads in time so far; use "
                              f"qcspin transport for '{lc.model}' leads")
    if not isinstance(config, Device):
        # a lower bound (rho of the device alone, no lead sites or blocks) before the lattice
        # is built: a hopeless size is refused at once, not after minutes of geometry
        n_dev = 2 * math.prod(config.lattice.size)
        _check(config, comm, StateSize(n_dev, 0, 0, ()), comps_known=False)
    dev = config if isinstance(config, Device) else device_from_config(config)
    if spins0 is not None:
        dev = dev.with_spins(spins0)
    cfg = dev.config
    units = get_units(cfg.units)
    leads = _make_leads(dev, cfg)
    # the electron problem: the device plus what the leads' representations add
    problem = ElectronProblem(dev, leads)
    edev = problem.edevice
    comps: tuple = ()
    small: list = []
    poles: list = []
    if leads:
        from operators.pade import pade_poles

        poles = lead_poles(cfg, pade_poles)  # one PadePoles per lead
        if problem.auxiliary:   # leads as auxiliary modes
            from .aux_rhs import aux_components

            comps_l, small, _ = aux_components(problem, poles)
            comps = tuple(comps_l)
        else:
            comps = tuple((c.name, poles[c.lead_index].n_poles * len(c.interface))
                          for c in problem.couplings)
    size = StateSize(edev.n_orbitals, sum(c for _, c in comps), sum(n for _, n in small),
                     tuple((k, m.sites.columns) for k, m in enumerate(problem.modes)
                           if m.sites is not None))
    memory = _check(cfg0, comm, size)      # before anything large is allocated
    err = _start_mismatch(cfg, problem, comps, small, given, edev.n_orbitals)
    if err:  # before the operators, the state and the TS exist
        raise ConfigError(err)
    H = ElectronHamiltonian(edev, comm, prefix=prefix)
    d = H.dist
    spinH = ClassicalSpinHamiltonian(edev, d.spin_start, d.spin_stop)
    mu_of_t = None
    mu0 = None
    if leads:
        layout = StateLayout(d, edev.n_orbitals, comm, comps, small)
        mu_of_t = bias_function(cfg, leads, units)
        mu0 = np.array([l.mu for l in leads], float)
    else:
        layout = StateLayout(d, edev.n_orbitals, comm)
    if spin_density is None and cfg.llg.drive == "current-driven" and dev.n_spins:
        from .adiabatic import current_driven_source  # paper 000 Eqs. 6-7

        spin_density = current_driven_source
    elif spin_density is None and cfg.llg.drive == "steady-state" and dev.n_spins:
        from .steady_state import steady_state_source  # paper 000 Fig. 3c,d

        spin_density = steady_state_source
    source = (LocalSpinDensity(H) if spin_density is None
              else spin_density(H, layout, problem, poles, mu_of_t))
    rhs = CoupledRHS(H, spinH, layout, rhs_terms(problem, poles, source), mu0=mu0,
                     mu_of_t=mu_of_t)
    return Assembly(cfg, dev, units, comm, prefix, leads, problem, poles, memory,
                    H, spinH, layout, rhs, mu_of_t)


def _check(cfg: Config, comm: PETSc.Comm, size: StateSize,
           comps_known: bool = True) -> MemoryEstimate:
    """check_memory on every rank with the same outcome (MemoryLimitError on all ranks).  With
    ``comps_known=False`` the size is a lower bound (the lead blocks not yet known): only the
    refusal counts, and leads are left out of the estimate."""
    if not comps_known and cfg.leads:
        cfg = dataclasses.replace(cfg, leads=())
    try:
        # spins: at most one per site (an upper bound; negligible beside N_s^2)
        check_indices(cfg, size, int(np.prod(cfg.lattice.size)),
                      int(np.iinfo(PETSc.IntType).max))
        memory = check_memory(cfg, comm.getSize(), ranks_on_node(comm), size)
        err = None
    except MemoryLimitError as exc:
        err = str(exc)
    err = first_message(err, comm)
    if err:
        raise MemoryLimitError(err)
    return memory


def _start_mismatch(cfg: Config, problem: ElectronProblem, comps, small, given, n_orbitals):
    """A one-line message if the requested start cannot be made for this run, else None."""
    if given is not None:
        if problem.leads and given.leads is None:
            return ("an initial rho was given for an open junction without its lead "
                    "components (the Pi blocks or auxiliary modes); pass both, e.g. via "
                    "Simulation.from_checkpoint")
        return _components_mismatch(given.leads if problem.leads else None, comps, problem,
                                    n_orbitals, given.rho, [n for n, _ in small])
    initial = cfg.electrons.initial
    if problem.extended and problem.auxiliary and initial in ("partitioned",
                                                              "partitioned-empty"):
        return (f"config key 'electrons.initial' = {initial!r} is not allowed with an "
                f"'extended' lead beside leads in auxiliary modes (its explicit sites would "
                f"start without their absorbers' memory); use 'stationary' (the default) or "
                f"representation 'modes' for every tight-binding lead")
    if problem.extended and initial == "ground":
        return ("config key 'electrons.initial' = 'ground' is not allowed with leads that add "
                "explicit sites (representation 'extended'): n_electrons would count the lead "
                "sites too; use 'stationary' (the default), 'partitioned' or 'fermi'")
    return None


def _by_name(leads0, names) -> dict:
    """Initial auxiliary components by name from a dict (by name, or legacy ``lead_k``) or a
    list in layout order."""
    if leads0 is None:
        return {}
    if isinstance(leads0, dict):
        return {(names[int(k[5:])] if k.startswith("lead_") and k[5:].isdigit()
                 and int(k[5:]) < len(names) else k): v for k, v in leads0.items()}
    return dict(zip(names, leads0))


def _components_mismatch(leads0, comps, problem, n_orbitals, rho0,
                         small=()) -> str | None:
    """A one-line message if an initial state (rho0, leads0) does not fit this run's
    components ``comps`` [(name, columns)], else None."""
    if rho0 is not None and np.shape(rho0) != (n_orbitals, n_orbitals):
        return (f"the initial state has rho of shape {np.shape(rho0)} but this run's electron "
                f"problem has {n_orbitals} orbitals (device plus explicit lead sites): it "
                f"belongs to other leads or another lead representation")
    if leads0 is None:
        return None
    names = [n for n, _ in comps] + list(small)
    given = _by_name(leads0, names)
    if set(given) != set(names):
        return (f"the initial state has the lead components {sorted(given)} but this run "
                f"needs {names}: another lead model or representation")
    for (name, cols), c in zip(comps, problem.couplings):
        have = np.shape(given[name])[1]
        if have != cols:
            lead = problem.leads[c.lead_index]
            k = problem.leads.index(lead)
            return (f"config key 'leads[{k}].n_poles' does not match the initial state: its "
                    f"component '{name}' has {have} columns, this config needs {cols} "
                    f"(n_poles x coupled orbitals); use the n_poles the state was computed with")
    return None


# ----------------------------------------------------------------------------- initial states
InitialState = Callable[[Assembly, np.ndarray, "GivenState | None"], None]

#: name -> strategy filling the local state array (rho and lead components; the spins are set
#: before) of an assembled run
INITIAL_STATES: dict[str, InitialState] = {}


def initial_state(*names: str) -> Callable[[InitialState], InitialState]:
    """Register a strategy under ``names`` (``[electrons] initial`` values)."""
    def register(fn: InitialState) -> InitialState:
        for n in names:
            INITIAL_STATES[n] = fn
        return fn
    return register


def resolve_initial(asm: Assembly, given: GivenState | None = None) -> str:
    """The strategy a run starts with: ``checkpoint`` for a given state, else ``[electrons]
    initial`` with ``auto`` = ``stationary`` with leads, ``ground`` without."""
    if given is not None:
        return "checkpoint"
    initial = asm.config.electrons.initial
    if initial == "auto":
        return "stationary" if asm.leads else "ground"
    return initial


def start(asm: Assembly, a: np.ndarray, name: str, given: GivenState | None = None) -> None:
    """Fill the local state array ``a`` with the initial state ``name`` (a key of
    :data:`INITIAL_STATES`).  Collective."""
    if name not in INITIAL_STATES:
        raise ConfigError(f"config key 'electrons.initial' = {name!r} is not allowed: expected "
                          f"one of {sorted(INITIAL_STATES)}")
    INITIAL_STATES[name](asm, a, given)


def _local(asm: Assembly, full: np.ndarray) -> np.ndarray:
    d = asm.H.dist
    return np.asarray(full)[d.row_start:d.row_start + d.n_local_rows]


@initial_state("ground", "fermi")
def _diagonalised(asm: Assembly, a: np.ndarray, given: GivenState | None) -> None:
    """The ground state (n_electrons lowest levels) or the Fermi-Dirac state of H(S0)."""
    asm.layout.rho(a)[...] = initial_density(asm.H, asm.config.electrons)


def _mu0(asm: Assembly) -> np.ndarray:
    """The leads' chemical potentials just before t = 0 (the stationary state's)."""
    assert asm.mu_of_t is not None, "a start with leads needs the bias protocol"
    return asm.mu_of_t.initial


@initial_state("stationary")
def _stationary(asm: Assembly, a: np.ndarray, given: GivenState | None) -> None:
    """The stationary state for the initial spins and the leads' potentials at t = 0."""
    if asm.problem.auxiliary:   # dense, the same on every rank
        eq = asm.rhs.stationary(_mu0(asm))
        asm.layout.rho(a)[...] = _local(asm, eq.pop("rho"))
        asm.layout.fill(a, eq.items())
        return
    rho, blocks = stationary_state(asm.H, asm.problem, asm.poles, _mu0(asm),
                                   method=asm.config.electrons.stationary)
    asm.layout.rho(a)[...] = rho
    asm.layout.fill(a, blocks.items(), local=True)


def _partitioned(asm: Assembly, a: np.ndarray, empty: bool) -> None:
    rho, blocks = partitioned_state(asm.H, asm.problem, asm.poles, _mu0(asm), empty=empty)
    asm.layout.rho(a)[...] = rho
    asm.layout.fill(a, blocks.items(), local=True)


@initial_state("partitioned")
def _partitioned_equilibrium(asm: Assembly, a: np.ndarray, given: GivenState | None) -> None:
    """Paper 000's start: device and leads disconnected before t = 0, each in equilibrium."""
    _partitioned(asm, a, empty=False)


@initial_state("partitioned-empty")
def _partitioned_empty(asm: Assembly, a: np.ndarray, given: GivenState | None) -> None:
    """Paper 000's start with the device empty (its own orbitals unoccupied)."""
    _partitioned(asm, a, empty=True)


@initial_state("checkpoint")
def _checkpoint(asm: Assembly, a: np.ndarray, given: GivenState | None) -> None:
    """A given full rho and lead components (e.g. a checkpoint of another run)."""
    if given is None:
        raise ValueError("the 'checkpoint' start needs a given state (rho and lead components)")
    asm.layout.rho(a)[...] = _local(asm, given.rho)
    if asm.leads:
        asm.layout.fill(a, _by_name(given.leads, asm.layout.aux_names).items())
