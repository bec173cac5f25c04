"""Rank-aware logging (toolkit/log.py): the ``qcspin`` command's output is unchanged at the
default verbosity, ``qcspin -q`` keeps only warnings, errors and requested results, ``qcspin
-v`` adds debug messages, only rank 0 writes (in-process under ``mpirun -n 2`` and a real
``mpirun -n 2 qcspin``), importing the library installs no handler, and the library has no
bare ``print``.

``toolkit.cli.main`` runs in-process on every rank (the suite also runs under ``mpirun -n 2``);
the other ranks must print nothing at all.
"""
from __future__ import annotations

import ast
import glob
import logging
import os
import subprocess
import sys

import pytest
from helpers import EXAMPLES, ROOT

from toolkit import log
from toolkit.cli import build_parser, error, main, result, say, warn

from petsc4py import PETSc

RANK0 = PETSc.COMM_WORLD.getRank() == 0
V1D = os.path.join(EXAMPLES, "valve_1d.toml")   # output_every = 20: a 10-step run warns
RUN = ["run", V1D, "-q", "--t-end", "0.5"]      # run's own -q: no progress bar
WARNING = ("qcspin: warning: time.output_every = 20 is larger than the 10 steps of the run: "
           "only the initial state is recorded (and the final state in the checkpoint)\n")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
for _k in [k for k in ENV if k.startswith(("OMPI_COMM_WORLD", "PMIX_", "OMPI_MCA_", "PMI_"))]:
    del ENV[_k]  # a subprocess of an MPI test rank must not believe it is that rank


@pytest.fixture(autouse=True)
def _restore_logging():
    """Each test leaves the ``qcspin`` logger as it found it (main() configures it)."""
    logger = logging.getLogger(log.ROOT)
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


def _main(argv, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _silent_elsewhere(out: str, err: str) -> None:
    if not RANK0:
        assert out == "" and err == "", (out, err)


def _py(*args, mpi=0, timeout=240):
    pre = ["mpirun", "--oversubscribe", "-n", str(mpi)] if mpi else []
    return subprocess.run(pre + [sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


# ----------------------------------------------------------------------------- default output
def test_wrappers_print_as_before(capsys):
    """say/result: stdout as print(*args) did; warn/error: one prefixed line on stderr; rank 0
    only unless any_rank."""
    capsys.readouterr()
    say("a", 1, [2.5])
    result("table", "row", sep="|")
    warn("careful")
    error("bad key 'x'")
    error("NaN at t = 3", label="run failed")
    say("mine", any_rank=True)
    out, err = capsys.readouterr()
    if RANK0:
        assert out == "a 1 [2.5]\ntable|row\nmine\n"
        assert err == ("qcspin: warning: careful\nqcspin: error: bad key 'x'\n"
                       "qcspin: run failed: NaN at t = 3\n")
    else:
        assert out == "mine\n" and err == ""


def test_default_run_output_unchanged(mpi_tmp_path, capsys):
    """The run header, summary and warning, line by line (the wall times vary)."""
    out_h5 = os.path.join(mpi_tmp_path, "d.h5")
    rc, out, err = _main(RUN + ["-o", out_h5], capsys)
    assert rc == 0
    _silent_elsewhere(out, err)
    if RANK0:
        lines = out.splitlines()
        assert len(lines) == 5, out
        assert lines[0].startswith("qcspin run: 1D spin valve, Fig. 3: 20 sites, 10 classical "
                                   "spins, N_s = 40, ")
        assert lines[1].startswith("  memory: state 25 KiB")
        assert lines[2].startswith("finished: t = 0.5 hbar/hopping, step 10, 10 steps in ")
        assert lines[3].startswith("  total energy ")
        assert lines[4] == f"  results: {os.path.abspath(out_h5)}"
        assert err == WARNING


def test_default_error_output_unchanged(mpi_tmp_path, capsys):
    missing = os.path.join(mpi_tmp_path, "missing.h5")
    rc, out, err = _main(["info", missing], capsys)
    assert rc == 2
    _silent_elsewhere(out, err)
    if RANK0:
        assert out == "" and err == f"qcspin: error: result file '{missing}' does not exist\n"


# ----------------------------------------------------------------------------- -q and -v
def test_quiet_keeps_warnings_and_results(mpi_tmp_path, capsys):
    """qcspin -q run: no header or summary, the warning stays; qcspin -q info: the whole report
    (it is the result), identical to the default one."""
    out_h5 = os.path.join(mpi_tmp_path, "q.h5")
    rc, out, err = _main(["-q"] + RUN + ["-o", out_h5], capsys)
    assert rc == 0
    _silent_elsewhere(out, err)
    if RANK0:
        assert out == "" and err == WARNING
    rc, info, err = _main(["info", out_h5], capsys)
    assert rc == 0 and err == ""
    rc, quiet_info, err = _main(["-q", "info", out_h5], capsys)
    assert rc == 0 and err == ""
    _silent_elsewhere(quiet_info, err)
    assert quiet_info == info
    if RANK0:
        assert info.startswith(f"{out_h5}: qcspin run file") and "segment 0:" in info


def test_verbose_shows_debug(mpi_tmp_path, capsys):
    """qcspin -v: the same stdout, plus debug lines on stderr (PETSc options, the TS options
    prefix, the command's wall time)."""
    out_h5 = os.path.join(mpi_tmp_path, "v.h5")
    rc, out, err = _main(["-v"] + RUN + ["-o", out_h5, "-qcspin_ts_rk_type", "4"], capsys)
    PETSc.Options().delValue("qcspin_ts_rk_type")
    assert rc == 0
    _silent_elsewhere(out, err)
    if RANK0:
        assert out.startswith("qcspin run: ") and len(out.splitlines()) == 5, out
        debug = [line for line in err.splitlines() if line.startswith("qcspin: debug: ")]
        assert len(debug) + 1 == len(err.splitlines()) and WARNING in err, err
        size = PETSc.COMM_WORLD.getSize()
        assert debug[0].startswith("qcspin: debug: qcspin run: PETSc 3.")
        assert f", {size} MPI rank(s)" in debug[0] and "-qcspin_ts_rk_type 4" in debug[0]
        assert any("TS rk, options prefix -qcspin_" in d for d in debug), debug
        assert debug[-1].startswith("qcspin: debug: qcspin run: ") and "s wall time" in debug[-1]


def test_global_quiet_also_stops_the_progress_bar(monkeypatch):
    """``qcspin -q run`` implies run's own -q (no progress bar); ``-v``/``-q`` come before the
    command and exclude each other."""
    import analysis.run_cli

    seen = []
    monkeypatch.setattr(analysis.run_cli, "cmd_run",
                        lambda args: seen.append((args.verbosity, args.quiet)) or 0)
    assert main(["-q", "run", V1D]) == 0
    assert main(["run", V1D]) == 0
    assert main(["run", V1D, "-q"]) == 0
    assert main(["--verbose", "run", V1D]) == 0
    assert seen == [(-1, True), (0, False), (0, True), (1, False)]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["-q", "-v", "info", "x.h5"])


def test_library_warnings_under_the_driver(monkeypatch, capsys):
    """A ``warnings.warn`` of the library during a command: one ``qcspin: warning:`` line on
    rank 0 (also with -q), as before; outside the driver warnings are the user's again."""
    import warnings

    import analysis.run_cli

    def fake(args):
        warnings.warn("the RK 3/8 tableau is missing", RuntimeWarning, stacklevel=2)
        return 0
    monkeypatch.setattr(analysis.run_cli, "cmd_run", fake)
    for flags in ([], ["-q"]):
        rc, out, err = _main(flags + ["run", V1D], capsys)
        assert rc == 0 and out == ""
        assert err == ("qcspin: warning: the RK 3/8 tableau is missing\n" if RANK0 else "")
    from toolkit import cli

    assert warnings.showwarning is not cli._show_warning  # restored by catch_warnings


# ----------------------------------------------------------------------------- ranks
def test_rank_from_the_environment_before_petsc(monkeypatch, capsys):
    """Without petsc4py (toolkit.log never imports it) the rank is the launcher's; a handler on
    rank 1 writes only what is marked any_rank, or everything with all_ranks."""
    monkeypatch.delitem(sys.modules, "petsc4py.PETSc")
    for var in log._RANK_VARS:
        monkeypatch.delenv(var, raising=False)
    assert log.world_rank() == 0
    monkeypatch.setenv("PMI_RANK", "3")
    assert log.world_rank() == 3
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "1")
    assert log.world_rank() == 1
    capsys.readouterr()
    log.configure()
    say("hidden")
    warn("hidden")
    say("shown", any_rank=True)
    log.configure(all_ranks=True)
    warn("everywhere")
    out, err = capsys.readouterr()
    assert out == "shown\n" and err == "qcspin: warning: everywhere\n"


def test_configure_replaces_its_handler():
    logger = log.configure(1)
    log.configure(-1)
    log.ensure_configured()  # keeps the configured one
    mine = [h for h in logger.handlers if isinstance(h, log.RankHandler)]
    assert len(mine) == 1 and logger.level == log.RESULT
    assert log.get_logger("integrators.ts").name == "qcspin.integrators.ts"
    assert log.get_logger("qcspin.cli") is logging.getLogger("qcspin.cli")


@pytest.mark.skip_in_parallel
def test_only_rank0_writes_under_mpirun(tmp_path):
    """A real ``mpirun -n 2 qcspin -v``: each line once, stdout as in a serial run."""
    out_h5 = str(tmp_path / "m.h5")
    r = _py("-m", "toolkit.cli", "-v", *RUN, "-o", out_h5, mpi=2)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 5 and "2 MPI rank(s)" in r.stdout, r.stdout
    assert r.stderr.count(WARNING) == 1, r.stderr
    assert r.stderr.count("qcspin: debug: qcspin run: PETSc") == 1, r.stderr
    assert r.stderr.count("TS rk, options prefix") == 1, r.stderr
    serial = _py("-m", "toolkit.cli", "info", out_h5)
    assert serial.returncode == 0, serial.stderr
    r = _py("-m", "toolkit.cli", "-q", "info", out_h5, mpi=2)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout == serial.stdout


# ----------------------------------------------------------------------------- the library
@pytest.mark.skip_in_parallel
def test_importing_the_library_configures_no_handler():
    """``import integrators`` (and the rest) adds only a NullHandler to "qcspin" and nothing to
    the root logger; a library warning logged without configuration is not printed (Python's
    last-resort handler would print it without the NullHandler)."""
    code = ("import logging, toolkit, operators, integrators, analysis, toolkit.cli, "
            "analysis.plots, analysis.run_cli, analysis.transport, analysis.figscript; "
            "h = logging.getLogger('qcspin').handlers; "
            "assert [type(x).__name__ for x in h] == ['NullHandler'], h; "
            "assert logging.getLogger().handlers == [], logging.getLogger().handlers; "
            "logging.getLogger('qcspin.integrators.ts').warning('not shown')")
    r = _py("-c", code)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == "", (r.stdout, r.stderr)


def test_no_bare_print_in_the_library():
    """Library modules report through toolkit.log (or warnings.warn), never print()."""
    bad = []
    for package in ("toolkit", "operators", "integrators", "analysis"):
        for path in sorted(glob.glob(os.path.join(ROOT, package, "*.py"))):
            tree = ast.parse(open(path, encoding="utf-8").read(), path)
            bad += [f"{os.path.relpath(path, ROOT)}:{node.lineno}" for node in ast.walk(tree)
                    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "print"]
    assert not bad, bad
