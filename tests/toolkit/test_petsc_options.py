"""PETSc options: unused and misspelt options are reported with the closest known name, bad
values stop create_ts with an OptionError naming the option, TS monitors run in a ts.step()
loop, and ts_settings reads back what the TS uses.  Every test removes the options it set."""
import subprocess
import sys
import textwrap

import pytest
from helpers import ROOT, valve_1d

from integrators import Simulation
from integrators import ts as tsmod
from integrators.ts import call_monitors, create_ts, ts_settings, view_from_options
from toolkit import DeviceBuilder
from toolkit.config import ConfigError, SolverConfig
from toolkit.petsc_options import (
    ADAPT_TYPES,
    OptionError,
    check_unused,
    known_options,
    not_ours,
    petsc_key,
    spellings,
    suggest,
    unused_options,
    unused_report,
)

from petsc4py import PETSc


@pytest.fixture
def opts():
    """Set PETSc options for one test (``opts(name=value, ...)``, names without '-'), removed
    afterwards so that no other test sees them."""
    db = PETSc.Options()
    names = []

    def set_(**kw):
        for k, v in kw.items():
            db.delValue(k)           # a fresh entry: a re-set entry keeps its 'used' flag
            db.setValue(k, "" if v is None else str(v))
            names.append(k)
        return ["-" + k for k in kw]

    yield set_
    for k in names:
        for n in spellings(k):  # a renamed option may have moved to the other spelling
            db.delValue(n)


def open_valve(stiff):
    """4-site open valve (two leads, 10 poles): the 'expint' / 'imex' schemes."""
    b = DeviceBuilder(size=(4,))
    b.add_layer("PL", (0, 1), J_sd=1.0, J_ex=-1.0, easy_axis=(1, 0, 0), spin=(1, 0.3, 0.5))
    b.add_layer("FL", (3, 4), J_sd=1.0, J_ex=-1.0, easy_axis=(0, 0, 1), spin=(0, 0, 1))
    b._doc["leads"] = [{"side": "left", "gamma": 1.0, "temperature": 0.1},
                       {"side": "right", "gamma": 1.0, "temperature": 0.1}]
    b.set("electrons", n_poles=10)
    b.set("time", dt=0.05)
    b.set("solver", stiff=stiff)
    return b.finalized()


def device(kind):
    return valve_1d(N=6, n_s=2).finalized() if kind == "rk" else open_valve(kind)


def _rhs(ts, t, y, f):
    f.set(0.0)


def _create(comm, solver=None, dt=0.05):
    """create_ts on a 4-entry vector (enough for everything but the stiff schemes)."""
    solver = SolverConfig() if solver is None else solver
    F = PETSc.Vec().createMPI((None, 4), comm=comm)
    try:
        ts, applied = create_ts(comm, _rhs, F, dt, solver)
    finally:
        F.destroy()
    return ts, applied


# --------------------------------------------------------------------------- unused options
@pytest.mark.parametrize("kind", ["rk", "expint", "imex"])
def test_unused_options_reported_with_suggestion(comm, opts, kind):
    """After the TS is made and has stepped once, exactly the options nothing read are left:
    an unknown one, one without the prefix, a misspelt one; not the start-up options of PETSc
    nor those the TS read."""
    given = opts(qcspin_ts_nosuch=3, ts_rk_type="5dp", qcspin_ts_rk_typ=4, malloc_debug=None,
                 options_left="no", qcspin_ts_exact_final_time="stepover")
    sim = Simulation(device(kind), comm)
    try:
        sim.step(1)
        unused = unused_options(given)
    finally:
        sim.destroy()
    assert unused == ["-qcspin_ts_nosuch", "-ts_rk_type", "-qcspin_ts_rk_typ"], unused
    assert set(unused) <= set(unused_options())        # the whole database says the same
    report = unused_report(given)
    assert report[1] == ("-ts_rk_type 5dp: not used (options need the qcspin_ prefix; did you "
                         "mean -qcspin_ts_rk_type?)"), report
    assert "did you mean -qcspin_ts_rk_type?" in report[2] and "unknown option" in report[0]
    with pytest.raises(OptionError) as exc:
        check_unused(given, strict=True)
    assert "-qcspin_ts_nosuch 3" in str(exc.value) and "\n" not in str(exc.value)
    assert check_unused(given) == report                # not strict: the lines, no error


def test_option_of_another_scheme_is_unused(comm, opts):
    """The exponential RK (TS type python) reads no RK tableau: -qcspin_ts_rk_type is a known
    option that this run does not use."""
    given = opts(qcspin_ts_rk_type="5dp")
    sim = Simulation(device("expint"), comm)
    try:
        assert unused_options(given) == given
        assert "nothing in this run reads it" in unused_report(given)[0]
    finally:
        sim.destroy()


def test_suggestions_and_ignored_names():
    assert "ts_rk_type" in known_options() and "ksp_type" in known_options()
    assert suggest("-ts_rk_type") == "-qcspin_ts_rk_type"            # prefix missing
    assert suggest("-ts_adapt_typ") == "-qcspin_ts_adapt_type"       # prefix and spelling
    assert suggest("-qcspin_ts_rtoll") == "-qcspin_ts_rtol"
    assert suggest("-qcspin_ts_arkimex_tpye") == "-qcspin_ts_arkimex_type"
    assert suggest("-qcspin_ts_rk_type") is None                     # already right
    assert suggest("-qcspin_stationary_ksp_type") is None            # a sub-prefix
    assert suggest("-qcspin_zzzz") is None                           # nothing close
    for name in ("-log_view", "-malloc_debug", "-options_left", "-help", "-info", "-version",
                 "-memory_view", "-malloc_dump", "-on_error_abort", "-fp_trap"):
        assert not_ours(name), name
    assert not_ours("-c")                                # python -c: argv[0] reaches PETSc
    for name in ("-ts_rk_type", "-qcspin_log_view", "-ksp_view"):
        assert not not_ours(name), name


# --------------------------------------------------------------------------- bad values
@pytest.mark.parametrize("option,value,words", [
    ("ts_rk_type", "nosuch", ["rk38", "5dp", "8vr"]),
    ("ts_type", "nosuch", ["'rk'", "'ssp'", "'euler'"]),
    ("ts_type", "python", ["'rk'"]),
    ("ts_rtol", "-1", [">= 0"]),
    ("ts_atol", "-1", [">= 0"]),
    ("ts_dt", "0", ["> 0"]),
    ("ts_dt", "-0.1", ["> 0"]),
    ("ts_dt", "abc", ["> 0"]),
    ("ts_adapt_type", "nosuch", ["'basic'", "'none'", "'dsp'"]),
    ("ts_arkimex_type", "nosuch", ["'4'", "'ars443'"]),
    ("ts_max_steps", "1.5", ["integer"]),
])
def test_bad_option_values(comm, opts, option, value, words):
    """Rejected before PETSc sees them, in one line naming option, value and allowed values."""
    opts(**{"qcspin_" + option: value})
    with pytest.raises(OptionError) as exc:
        _create(comm)
    msg = str(exc.value)
    assert msg.startswith(f"PETSc option -qcspin_{option} {value} is not allowed: expected "), msg
    assert "\n" not in msg and isinstance(exc.value, ValueError)
    for w in words:
        assert w in msg, (w, msg)


def test_bad_arkimex_type_of_imex_scheme(comm, opts):
    opts(qcspin_ts_arkimex_type="nosuch")
    with pytest.raises(OptionError, match=r"-qcspin_ts_arkimex_type nosuch is not allowed: "
                                          r"expected one of \[.*'ars443'"):
        Simulation(device("imex"), comm)


def test_zero_tolerances_of_an_adaptive_step(comm, opts):
    opts(qcspin_ts_adapt_type="basic", qcspin_ts_rtol=0, qcspin_ts_atol=0)
    with pytest.raises(OptionError, match="rtol > 0 or atol > 0"):
        _create(comm, SolverConfig(rk_type="5dp"))


def test_other_petsc_errors_become_option_errors(comm, opts):
    opts(qcspin_ts_exact_final_time="nosuch")
    with pytest.raises(OptionError, match="ts_exact_final_time.*stepover"):
        _create(comm)


@pytest.mark.parametrize("solver,key,words", [
    (SolverConfig(rk_type="nosuch"), "solver.rk_type", ["'rk38'", "'5dp'"]),
    (SolverConfig(ts_type="nosuch"), "solver.ts_type", ["'rk'", "'ssp'"]),
    (SolverConfig(ts_type="ssp", rk_type="5dp"), "solver.rk_type", ["solver.ts_type = 'rk'"]),
    (SolverConfig(options=(("ts_rk_type", "nosuch"),)), "solver.options.ts_rk_type",
     ["'rk38'"]),
    (SolverConfig(options=(("ts_dt", "-1"),)), "solver.options.ts_dt", ["> 0"]),
    (SolverConfig(options=(("ts_rk_typ", "5dp"),)), "solver.options.ts_rk_typ",
     ["no PETSc object", "'ts_rk_type'"]),
])
def test_bad_config_keys(comm, solver, key, words):
    """The config's solver keys, named as config keys; nothing is left in the database."""
    with pytest.raises(ConfigError) as exc:
        _create(comm, solver)
    msg = str(exc.value)
    assert msg.startswith(f"config key '{key}' = "), msg
    assert isinstance(exc.value, OptionError) and "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)
    assert not any(k.startswith("qcspin_") for k in PETSc.Options().getAll()), \
        PETSc.Options().getAll()


class _TrackedTS(PETSc.TS):
    destroyed = 0

    def destroy(self):
        if self.handle:
            _TrackedTS.destroyed += 1
        return super().destroy()


@pytest.mark.parametrize("kind,option,value", [("rk", "ts_exact_final_time", "nosuch"),
                                               ("rk", "ts_rtol", "0"),
                                               ("expint", "ts_adapt_type", "basic")])
def test_failed_ts_is_destroyed(comm, opts, monkeypatch, kind, option, value):
    """A create_ts that fails after making the TS destroys it (a TS of type python left to
    PetscFinalize would crash the interpreter at exit), and a good TS can be made after it."""
    monkeypatch.setattr(tsmod.PETSc, "TS", _TrackedTS)
    _TrackedTS.destroyed = 0
    opts(**{"qcspin_" + option: value})
    if option == "ts_rtol":
        opts(qcspin_ts_atol=0, qcspin_ts_adapt_type="basic")
    with pytest.raises(OptionError):
        if kind == "rk":
            _create(comm)
        else:
            Simulation(device(kind), comm)
    assert _TrackedTS.destroyed == 1
    monkeypatch.undo()
    for k in list(PETSc.Options().getAll()):
        if k.startswith("qcspin_"):
            PETSc.Options().delValue(k)
    ts, _ = _create(comm)
    ts.destroy()


@pytest.mark.parametrize("adapt", ADAPT_TYPES)
def test_every_listed_adapt_type_is_accepted(comm, opts, adapt):
    opts(qcspin_ts_adapt_type=adapt)
    ts, _ = _create(comm, SolverConfig(rk_type="5dp"))
    try:
        assert ts_settings(ts)["ts_adapt_type"] == adapt
    finally:
        ts.destroy()


# --------------------------------------------------------------------------- monitors
@pytest.mark.parametrize("kind", ["rk", "expint"])
def test_call_monitors_in_a_step_loop(comm, kind):
    """call_monitors runs the TS monitors as TSSolve would: step 0, then after every step."""
    sim = Simulation(device(kind), comm)
    seen = []
    try:
        sim.ts.setMonitor(lambda ts, k, t, u: seen.append((k, round(t, 12))))
        call_monitors(sim.ts)
        for _ in range(3):
            sim.ts.step()
            call_monitors(sim.ts)
    finally:
        sim.ts.monitorCancel()  # cancelMonitor: gone in petsc4py 3.26
        sim.destroy()
    assert seen == [(0, 0.0), (1, 0.05), (2, 0.1), (3, 0.15)], seen


def test_view_from_options_reads_ts_view(comm, opts):
    """-qcspin_ts_view is read by TSSolve only: view_from_options reads it at the end of a
    ts.step() loop (here into /dev/null), after which it is no longer unused."""
    given = opts(qcspin_ts_view="ascii:/dev/null")
    ts, _ = _create(comm)
    try:
        ts.setSolution(PETSc.Vec().createMPI((None, 4), comm=comm))
        assert unused_options(given) == given
        view_from_options(ts)
        assert unused_options(given) == []
    finally:
        ts.getSolution().destroy()
        ts.destroy()


@pytest.mark.skip_in_parallel
def test_ts_monitor_option_prints_each_step():
    """-qcspin_ts_monitor prints 'k TS dt ... time ...' (PETSc writes through C stdio: checked
    in a subprocess) for the explicit RK and the exponential RK (TS type python)."""
    code = textwrap.dedent("""
        import sys
        sys.path[:0] = ["tests", "tests/toolkit"]
        import toolkit
        from petsc4py import PETSc
        PETSc.Options().insertString("-qcspin_ts_monitor")
        from integrators import Simulation
        from integrators.ts import call_monitors
        import test_petsc_options as t
        for kind in ("rk", "expint"):
            sim = Simulation(t.device(kind))
            print("scheme", kind, flush=True)
            call_monitors(sim.ts)
            for _ in range(2):
                sim.ts.step()
                call_monitors(sim.ts)
            sys.stdout.flush()
            sim.destroy()
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    for kind in ("rk", "expint"):
        block = r.stdout.split(f"scheme {kind}\n")[1].split("scheme")[0]
        # PETSc 3.26 names the prefix, 3.18 does not: 'k TS (qcspin_) dt ...'
        lines = [l.replace(" (qcspin_)", "") for l in block.splitlines() if " TS " in l]
        assert lines[:3] == ["0 TS dt 0.05 time 0.", "1 TS dt 0.05 time 0.05",
                              "2 TS dt 0.05 time 0.1"], (kind, r.stdout)


# --------------------------------------------------------------------------- settings
@pytest.mark.parametrize("spelling", ["ts_dt", "ts_time_step"])
def test_either_spelling_of_a_renamed_option(comm, opts, spelling):
    """PETSc 3.25 renamed -ts_dt to -ts_time_step.  Both spellings set the step on every PETSc
    version, on the command line and in [solver.options]; PETSc is given the one it reads (no
    deprecation warning, nothing left under the other name), and a bad value is reported
    under the spelling given."""
    reads, other = "qcspin_" + petsc_key("ts_dt"), "qcspin_" + petsc_key("ts_time_step")
    assert reads == other and set(spellings(reads)) == {"qcspin_ts_dt", "qcspin_ts_time_step"}
    opts(**{"qcspin_" + spelling: 0.025})
    sim = Simulation(valve_1d(N=6, n_s=2, dt=0.05).finalized(), comm)
    try:
        assert ts_settings(sim.ts)["ts_dt"] == 0.025
        db = PETSc.Options().getAll()
        assert db.get(reads) == "0.025" and set(spellings(reads)) & set(db) == {reads}
    finally:
        sim.destroy()
    PETSc.Options().delValue(reads)
    ts, _ = _create(comm, SolverConfig(options=((spelling, "0.0125"),)))
    try:
        assert ts.getTimeStep() == 0.0125
    finally:
        ts.destroy()
    assert not set(spellings(reads)) & set(PETSc.Options().getAll())
    opts(**{"qcspin_" + spelling: 0})
    with pytest.raises(OptionError, match=f"-qcspin_{spelling} 0 is not allowed"):
        _create(comm)


def test_ts_settings_reflect_options(comm, opts):
    opts(qcspin_ts_dt=0.025)
    sim = Simulation(valve_1d(N=6, n_s=2, dt=0.05).finalized(), comm)
    try:
        s = ts_settings(sim.ts)
    finally:
        sim.destroy()
    assert s["ts_dt"] == 0.025 and s["ts_type"] == "rk" and s["ts_rk_type"] == "rk38"
    assert s["adaptive"] is False and "ts_rtol" not in s and "ts_max_time" not in s
    sim = Simulation(device("expint"), comm)
    s = ts_settings(sim.ts)
    sim.destroy()
    assert (s["ts_type"], s["ts_python"], s["adaptive"]) == ("python", "ExpRK", False)
    opts(qcspin_ts_rk_type="5dp", qcspin_ts_adapt_type="basic", qcspin_ts_rtol=1e-6,
         qcspin_ts_atol=1e-7, qcspin_ts_max_time=3.0)
    ts, _ = _create(comm)
    try:
        s = ts_settings(ts)
    finally:
        ts.destroy()
    assert (s["ts_rk_type"], s["ts_adapt_type"], s["adaptive"]) == ("5dp", "basic", True)
    assert (s["ts_rtol"], s["ts_atol"], s["ts_max_time"]) == (1e-6, 1e-7, 3.0)
