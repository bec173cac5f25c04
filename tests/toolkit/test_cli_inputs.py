"""Nothing lost, nothing silent: a battery of bad command-line inputs for every sub-command.

Each bad input must end with exit status 2 and a one-line ``qcspin: error: ...`` on stderr
(printed by rank 0 only) that names the argument or key, or with argparse's own usage error
(exit status 2, ``error: argument --X: ...``); never a traceback, never silent acceptance (a
return code 0), never a hang, and no output file is created.  A few valid minimal inputs check
that the validation does not refuse good ones.

``toolkit.cli.main`` runs in-process, on every rank (the suite also runs under ``mpirun -n
2``): the sample files live in one directory shared by all ranks.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import h5py
import numpy as np
import pytest
from helpers import EXAMPLES as EX

import toolkit  # noqa: F401  (complex PETSc)
from toolkit.cli import main
from toolkit.parallel import barrier, bcast, first_message

from petsc4py import PETSc

RANK0 = PETSc.COMM_WORLD.getRank() == 0
# a 6x2 open valve: the smallest junction the sweep/quench smoke test needs (< 1 s)
SMALL_OPEN = ["--set", "lattice.size=[6,2]", "--set", "layers.PL.columns=[0,2]",
              "--set", "layers.SL.columns=[2,4]", "--set", "layers.FL.columns=[4,6]"]
NONMAG = """name = "chain without spins"
[lattice]
size = [4]
[[layers]]
name = "SL"
columns = [0, 4]
[time]
dt = 0.1
t_end = 1.0
"""


@pytest.fixture(scope="module")
def files():
    """Sample inputs in a directory shared by all ranks: a run file (valve_1d, t = 1), a
    transport and a spectrum file, a foreign HDF5 file (one dataset), a text file, binary
    noise, the first 1000 bytes of the run file, an empty directory, quench directories whose
    V_*.h5 is foreign / truncated / text, and a config without magnetic layers."""
    comm = PETSc.COMM_WORLD
    d = bcast(tempfile.mkdtemp(prefix="qcspin-cli-") if RANK0 else None, comm)
    f = {"d": d, "v1d": os.path.join(EX, "valve_1d.toml"), "v2d": os.path.join(EX, "valve_2d.toml"),
         "open": os.path.join(EX, "valve_2d_open.toml")}
    for key, name in (("run", "run.h5"), ("tr", "tr.h5"), ("sp", "sp.h5"),
                      ("foreign", "foreign.h5"), ("text", "text.txt"), ("binary", "noise.dat"),
                      ("trunc", "trunc.h5"),
                      ("empty", "empty"), ("nonmag", "nonmag.toml"), ("qforeign", "qforeign"),
                      ("qtrunc", "qtrunc"), ("qtext", "qtext")):
        f[key] = os.path.join(d, name)
    assert main(["run", f["v1d"], "-q", "-o", f["run"], "--t-end", "1"]) == 0
    assert main(["transport", f["v1d"], "--energies=-1:1:1", "-o", f["tr"]]) == 0
    assert main(["spectrum", f["v1d"], "-o", f["sp"]]) == 0
    if RANK0:
        with h5py.File(f["foreign"], "w") as h:
            h["x"] = np.arange(3.0)
        with open(f["text"], "w") as fh:
            fh.write("not a qcspin file\n")
        with open(f["binary"], "wb") as fh:
            fh.write(bytes(range(256)) * 4)
        with open(f["run"], "rb") as src, open(f["trunc"], "wb") as dst:
            dst.write(src.read(1000))
        with open(f["nonmag"], "w") as fh:
            fh.write(NONMAG)
        os.makedirs(f["empty"])
        for key, src in (("qforeign", "foreign"), ("qtrunc", "trunc"), ("qtext", "text")):
            os.makedirs(f[key])
            shutil.copy(f[src], os.path.join(f[key], "V_+1.h5"))
    barrier(comm)
    yield f
    barrier(comm)
    if RANK0:
        shutil.rmtree(d, ignore_errors=True)


def _call(argv: list[str]) -> tuple[int, bool]:
    """(exit status, whether argparse refused the command line) of ``qcspin ARGV``; PETSc
    options given on the command line are removed from the database afterwards."""
    try:
        return main(argv), False
    except SystemExit as exc:
        return exc.code, True
    finally:
        for a in argv:
            if a.startswith("-qcspin_"):
                PETSc.Options().delValue(a[1:])


def _agree(problem: str | None) -> None:
    """Fail on every rank if the check failed on any (the ranks stay in step: a rank that
    failed alone would leave the others waiting in the next collective call).  Collective."""
    msg = first_message(problem, PETSc.COMM_WORLD)
    assert msg is None, msg


def _error_problem(argv: list[str], needles, capsys) -> str | None:
    """What is wrong with the way ``qcspin ARGV`` refused its input (None: nothing)."""
    capsys.readouterr()
    rc, usage = _call(argv)
    out, err = capsys.readouterr()
    rank = PETSc.COMM_WORLD.getRank()
    if rc != 2:
        return f"rank {rank}: exit status {rc!r} (expected 2) for {argv}: {out[-300:]} {err}"
    if "Traceback" in out + err:
        return f"rank {rank}: traceback for {argv}: {err}"
    if usage:  # argparse: usage line(s), then 'qcspin COMMAND: error: argument --X: ...'
        msg = err.strip().splitlines()[-1] if err.strip() else ""
        if "error: " not in msg:
            return f"rank {rank}: no argparse error line for {argv}: {err!r}"
    elif RANK0:
        msg = err
        if not (err.startswith("qcspin: error: ") and err.count("\n") == 1):
            return f"not one line 'qcspin: error: ...' for {argv}: {err!r}"
    else:  # printed once, by rank 0
        return f"rank {rank} printed {err!r} for {argv}" if err else None
    missing = [n for n in needles if n not in msg]
    return f"{missing} not in {msg!r} ({argv})" if missing else None


def _expect_error(argv: list[str], needles, capsys) -> None:
    """``qcspin ARGV`` must exit with status 2 and say why in one line naming ``needles``.
    Collective."""
    _agree(_error_problem(argv, needles, capsys))


# (id, argv with {placeholders} of the files fixture, {out}/{png}: outputs that must not be
# written, {copy}: a private copy of the run file; needles: text the error must contain)
BAD = [
    # ------------------------------------------------------------------ run: the config
    ("run-missing-config", "run {d}/missing.toml -q -o {out}", ["missing.toml", "does not exist"]),
    ("run-config-dir", "run {empty} -q -o {out}", ["config file", "is a directory"]),
    ("run-config-hdf5", "run {run} -q -o {out}", ["HDF5 file", "expected a TOML config"]),
    ("run-config-binary", "run {binary} -q -o {out}", ["noise.dat", "not UTF-8"]),
    ("run-no-config", "run -q -o {out}", ["CONFIG.toml"]),
    # ------------------------------------------------------------------ run --restart
    ("restart-missing", "run --restart {d}/missing.h5 -q", ["missing.h5", "does not exist"]),
    ("restart-dir", "run --restart {empty} -q", ["is a directory"]),
    ("restart-text", "run --restart {text} -q", ["text.txt", "not an HDF5 file"]),
    ("restart-foreign", "run --restart {foreign} -q", ["foreign.h5", "not a qcspin run file"]),
    ("restart-truncated", "run --restart {trunc} -q", ["trunc.h5", "truncated"]),
    ("restart-transport", "run --restart {tr} -q", ["tr.h5", "transport file"]),
    ("restart-spectrum", "run --restart {sp} -q", ["sp.h5", "spectrum file"]),
    ("restart-and-config", "run --restart {run} {v1d} -q", ["--restart", "not both"]),
    ("restart-t-end-nan", "run --restart {run} --t-end nan -q", ["time.t_end", "nan"]),
    ("restart-set-dt", "run --restart {run} --set time.dt=0.1 -q",
     ["time.dt=0.1", "not allowed with --restart"]),
    ("restart-petsc-option", "run --restart {run} -q -qcspin_ts_rk_type 4",
     ["-qcspin_ts_rk_type 4", "not allowed with --restart"]),
    # ------------------------------------------------------------------ run: outputs, overrides
    ("run-o-dir", "run {v1d} -q -o {empty}", ["'{empty}'", "is a directory"]),
    ("run-o-missing-dir", "run {v1d} -q -o {d}/nodir/x.h5", ["nodir", "does not exist"]),
    ("run-o-exists", "run {v1d} -q -o {tr}", ["tr.h5", "exists", "--overwrite"]),
    ("run-t-end-nan", "run {v1d} -q -o {out} --t-end nan", ["time.t_end", "nan", "finite"]),
    ("run-t-end-inf", "run {v1d} -q -o {out} --t-end inf", ["time.t_end", "inf", "finite"]),
    ("run-t-end-negative", "run {v1d} -q -o {out} --t-end -5", ["time.t_end", "-5", ">= 0"]),
    ("run-t-end-abc", "run {v1d} -q -o {out} --t-end abc", ["time.t_end", "'abc'"]),
    ("run-set-abc", "run {v1d} -q -o {out} --set time.dt=abc", ["time.dt", "'abc'"]),
    ("run-set-no-value", "run {v1d} -q -o {out} --set time.dt", ["time.dt", "section.key=value"]),
    ("run-set-unknown-key", "run {v1d} -q -o {out} --set nokey=1", ["nokey", "unknown key"]),
    ("run-set-dt-zero", "run {v1d} -q -o {out} --set time.dt=0", ["time.dt", "> 0"]),
    ("run-set-dt-nan", "run {v1d} -q -o {out} --set time.dt=nan", ["time.dt", "nan"]),
    ("run-set-K-on-spacer", "run {v1d} -q -o {out} --set layers.SL.K=0.1",
     ["K", "no classical spins"]),
    ("run-petsc-dt-nan", "run {v1d} -q -o {out} -qcspin_ts_dt nan", ["-qcspin_ts_dt nan"]),
    # ------------------------------------------------------------------ info
    ("info-missing", "info {d}/missing.h5", ["missing.h5", "does not exist"]),
    ("info-text", "info {text}", ["text.txt", "not an HDF5 file"]),
    ("info-binary", "info {binary}", ["noise.dat", "not an HDF5 file"]),
    ("info-foreign", "info {foreign}", ["foreign.h5", "not a qcspin run file"]),
    ("info-truncated", "info {trunc}", ["trunc.h5", "truncated"]),
    ("info-transport", "info {tr}", ["tr.h5", "transport file"]),
    ("info-spectrum", "info {sp}", ["sp.h5", "spectrum file"]),
    ("info-dir", "info {empty}", ["is a directory"]),
    # ------------------------------------------------------------------ plot
    ("plot-missing", "plot {d}/missing.h5", ["missing.h5", "does not exist"]),
    ("plot-text", "plot {text}", ["text.txt", "not an HDF5 file"]),
    ("plot-foreign", "plot {foreign}", ["foreign.h5", "not a qcspin file"]),
    ("plot-truncated", "plot {trunc}", ["trunc.h5", "truncated"]),
    ("plot-dir", "plot {empty}", ["is a directory"]),
    ("plot-o-dir", "plot {sp} -o {empty}", ["is a directory"]),
    ("plot-o-hdf5", "plot {sp} -o {tr}", ["tr.h5", "not replaced"]),
    # ------------------------------------------------------------------ spectrum
    ("spectrum-missing-config", "spectrum {d}/missing.toml -o {out}", ["does not exist"]),
    ("spectrum-config-hdf5", "spectrum {run} -o {out}", ["HDF5 file"]),
    ("spectrum-bad-set", "spectrum {v1d} -o {out} --set time.dt=-1", ["time.dt", "-1"]),
    ("spectrum-sweep-reversed", "spectrum {v1d} -o {out} --jsd-sweep 5:1:1",
     ["--jsd-sweep", "5:1:1", "stop >= start"]),
    ("spectrum-sweep-abc", "spectrum {v1d} -o {out} --jsd-sweep abc", ["--jsd-sweep", "'abc'"]),
    ("spectrum-sweep-step-0", "spectrum {v1d} -o {out} --jsd-sweep 0:1:0",
     ["--jsd-sweep", "step > 0"]),
    ("spectrum-sweep-nan", "spectrum {v1d} -o {out} --jsd-sweep 0:nan:1",
     ["--jsd-sweep", "finite"]),
    ("spectrum-sweep-huge", "spectrum {v1d} -o {out} --jsd-sweep 0:1e9:1e-9",
     ["--jsd-sweep", "at most"]),
    ("spectrum-sweep-no-spins", "spectrum {nonmag} -o {out} --jsd-sweep 0:1:1",
     ["--jsd-sweep", "no magnetic layer"]),
    ("spectrum-nev-0", "spectrum {v1d} -o {out} --nev 0", ["--nev = 0", ">= 1"]),
    ("spectrum-nev-negative", "spectrum {v1d} -o {out} --nev -3", ["--nev = -3", ">= 1"]),
    ("spectrum-nev-too-many", "spectrum {v1d} -o {out} --nev 41", ["--nev = 41", "N_s = 40"]),
    ("spectrum-nev-abc", "spectrum {v1d} -o {out} --nev abc", ["--nev", "'abc'"]),
    ("spectrum-sinvert-all", "spectrum {v1d} -o {out} --nev 40 --method sinvert",
     ["nev = 40", "sinvert"]),
    ("spectrum-target-nan", "spectrum {v1d} -o {out} --nev 5 --target nan",
     ["--target = nan", "finite"]),
    ("spectrum-target-inf", "spectrum {v1d} -o {out} --nev 5 --target inf", ["--target = inf"]),
    ("spectrum-target-far", "spectrum {v1d} -o {out} --nev 5 --target 1e12",
     ["--target = 1000000000000.0", "spectrum lies in"]),
    ("spectrum-target-no-nev", "spectrum {v1d} -o {out} --target 0.5", ["--target", "--nev"]),
    ("spectrum-o-dir", "spectrum {v1d} -o {empty}", ["-o", "is a directory"]),
    ("spectrum-o-missing-dir", "spectrum {v1d} -o {d}/nodir/x.h5",
     ["-o", "nodir", "does not exist"]),
    ("spectrum-o-exists", "spectrum {v1d} -o {sp}", ["sp.h5", "exists", "--overwrite"]),
    ("spectrum-png-dir", "spectrum {v1d} -o {out} --png {empty}", ["--png", "is a directory"]),
    ("spectrum-png-is-o", "spectrum {v1d} -o {out} --png {out}", ["--png", "also the -o"]),
    # ------------------------------------------------------------------ jeff
    ("jeff-sweep-no-equals", "jeff --sweep J_sd -o {out}", ["--sweep 'J_sd'", "NAME=START"]),
    ("jeff-sweep-abc", "jeff --sweep J_sd=1:x:1 -o {out}", ["J_sd=1:x:1", "START:STOP:STEP"]),
    ("jeff-sweep-unknown", "jeff --sweep K=1:2:1 -o {out}", ["'K'", "J_sd", "N_NM"]),
    ("jeff-sweep-reversed", "jeff --sweep J_sd=3:1:1 -o {out}", ["J_sd=3:1:1", "stop >= start"]),
    ("jeff-sweep-nan", "jeff --sweep J_sd=nan -o {out}", ["J_sd=nan", "finite"]),
    ("jeff-sweep-inf-stop", "jeff --sweep J_sd=1:inf:1 -o {out}", ["J_sd=1:inf:1", "finite"]),
    ("jeff-sweep-empty-item", "jeff --sweep J_sd=1,,2 -o {out}", ["J_sd=1,,2"]),
    ("jeff-sweep-repeated", "jeff --sweep J_sd=1,1 -o {out}", ["J_sd=1,1", "repeated"]),
    ("jeff-sweep-huge", "jeff --sweep J_sd=0:1e9:1e-9 -o {out}", ["J_sd=0:1e9:1e-9", "at most"]),
    ("jeff-sweep-nnm-float", "jeff --sweep N_NM=1.5 -o {out}", ["N_NM=1.5", "integers >= 0"]),
    ("jeff-sweep-nnm-negative", "jeff --sweep N_NM=-1 -o {out}", ["N_NM=-1", "integers >= 0"]),
    ("jeff-n-spins-0", "jeff --sweep J_sd=1 -o {out} --n-spins 0", ["--n-spins = 0", ">= 1"]),
    ("jeff-n-spins-negative", "jeff --sweep J_sd=1 -o {out} --n-spins -1", ["--n-spins = -1"]),
    ("jeff-n-spins-abc", "jeff --sweep J_sd=1 -o {out} --n-spins abc", ["--n-spins", "'abc'"]),
    ("jeff-n-nm-negative", "jeff --sweep J_sd=1 -o {out} --n-nm -1", ["--n-nm = -1", ">= 0"]),
    ("jeff-dt-0", "jeff --sweep J_sd=1 -o {out} --dt 0", ["--dt = 0.0", "> 0"]),
    ("jeff-dt-negative", "jeff --sweep J_sd=1 -o {out} --dt -0.1", ["--dt = -0.1", "> 0"]),
    ("jeff-dt-nan", "jeff --sweep J_sd=1 -o {out} --dt nan", ["--dt = nan"]),
    ("jeff-t-end-nan", "jeff --sweep J_sd=1 -o {out} --t-end nan", ["--t-end = nan"]),
    ("jeff-t-end-negative", "jeff --sweep J_sd=1 -o {out} --t-end -1", ["--t-end = -1.0", "> 0"]),
    ("jeff-t-end-too-short", "jeff --sweep J_sd=1 -o {out} --t-end 1",
     ["--t-end = 1.0", "4 samples"]),
    ("jeff-n-periods-0", "jeff --sweep J_sd=1 -o {out} --n-periods 0",
     ["--n-periods = 0.0", "> 0"]),
    ("jeff-t-cap-negative", "jeff --sweep J_sd=1 -o {out} --t-cap -1", ["--t-cap = -1.0", "> 0"]),
    ("jeff-t-min-nan", "jeff --sweep J_sd=1 -o {out} --t-min nan", ["--t-min = nan"]),
    ("jeff-J-ex-nan", "jeff --sweep J_sd=1 -o {out} --J-ex nan", ["--J-ex = nan"]),
    ("jeff-J-sd-nan", "jeff --sweep N_NM=2 -o {out} --J-sd nan", ["--J-sd = nan"]),
    ("jeff-J-sd-swept", "jeff --sweep J_sd=1 -o {out} --J-sd 2", ["--J-sd = 2.0", "swept"]),
    ("jeff-n-nm-swept", "jeff --sweep N_NM=2 -o {out} --n-nm 3", ["--n-nm = 3", "swept"]),
    ("jeff-n-periods-fixed-t", "jeff --sweep J_sd=1 -o {out} --t-end 10 --n-periods 2",
     ["--n-periods = 2.0", "--t-end fixes"]),
    ("jeff-set-without-config", "jeff --sweep J_sd=1 -o {out} --set time.dt=0.1",
     ["--set", "CONFIG"]),
    ("jeff-n-spins-with-config", "jeff {v1d} --sweep J_sd=1 -o {out} --n-spins 3",
     ["--n-spins = 3", "CONFIG"]),
    ("jeff-config-nnm-sweep", "jeff {v1d} --sweep N_NM=2 -o {out}", ["CONFIG", "N_NM"]),
    ("jeff-missing-config", "jeff {d}/missing.toml --sweep J_sd=1 -o {out}", ["does not exist"]),
    ("jeff-o-dir", "jeff --sweep J_sd=1 -o {empty}", ["-o", "is a directory"]),
    ("jeff-png-missing-dir", "jeff --sweep J_sd=1 -o {out} --png {d}/nodir/j.png",
     ["--png", "does not exist"]),
    # ------------------------------------------------------------------ transport
    ("transport-missing-config", "transport {d}/missing.toml -o {out}", ["does not exist"]),
    ("transport-energies-reversed", "transport {v2d} -o {out} --energies 5:-5:0.1",
     ["--energies", "5:-5:0.1", "stop >= start"]),
    ("transport-energies-abc", "transport {v2d} -o {out} --energies abc", ["--energies", "'abc'"]),
    ("transport-energies-huge", "transport {v2d} -o {out} --energies 0:1:1e-12",
     ["--energies", "at most"]),
    ("transport-energies-inf", "transport {v2d} -o {out} --energies 0:inf:1",
     ["--energies", "finite"]),
    ("transport-gamma-0", "transport {v2d} -o {out} --energies=-1:1:0.5 --gamma 0",
     ["--gamma = 0.0", "> 0"]),
    ("transport-gamma-negative", "transport {v2d} -o {out} --energies=-1:1:0.5 --gamma -1",
     ["--gamma = -1.0", "> 0"]),
    ("transport-gamma-nan", "transport {v2d} -o {out} --energies=-1:1:0.5 --gamma nan",
     ["--gamma = nan"]),
    ("transport-temperature-negative", "transport {v2d} -o {out} --energies=-1:1:0.5 "
     "--temperature -1", ["--temperature = -1.0", ">= 0"]),
    ("transport-temperature-nan", "transport {v2d} -o {out} --energies=-1:1:0.5 "
     "--temperature nan", ["--temperature = nan"]),
    ("transport-mu-l-nan", "transport {v2d} -o {out} --energies=-1:1:0.5 --mu-l nan",
     ["--mu-l = nan"]),
    ("transport-mu-r-inf", "transport {v2d} -o {out} --energies=-1:1:0.5 --mu-r inf",
     ["--mu-r = inf"]),
    ("transport-gamma-with-leads", "transport {open} -o {out} --energies=-1:1:0.5 --gamma 2",
     ["--gamma = 2.0", "[[leads]]"]),
    ("transport-config-no-spins", "transport {nonmag} -o {out} --energies=-1:1:0.5 "
     "--config parallel", ["--config parallel", "no magnetic layer"]),
    ("transport-o-dir", "transport {v2d} --energies=-1:1:0.5 -o {empty}", ["-o", "is a directory"]),
    ("transport-o-missing-dir", "transport {v2d} --energies=-1:1:0.5 -o {d}/nodir/t.h5",
     ["-o", "does not exist"]),
    ("transport-png-dir", "transport {v2d} --energies=-1:1:0.5 -o {out} --png {empty}",
     ["--png", "is a directory"]),
    ("transport-o-exists", "transport {v2d} --energies=-1:1:0.5 -o {tr}", ["tr.h5", "exists"]),
    # ------------------------------------------------------------------ sweep
    ("sweep-V-abc", "sweep {open} -o {d}/sw --V abc", ["--V", "'abc'"]),
    ("sweep-V-reversed", "sweep {open} -o {d}/sw --V 4:0.5:0.5", ["--V", "stop >= start"]),
    ("sweep-V-nan", "sweep {open} -o {d}/sw --V nan", ["--V", "'nan'", "finite"]),
    ("sweep-V-empty-item", "sweep {open} -o {d}/sw --V 1,,2", ["--V", "'1,,2'"]),
    ("sweep-V-same-file", "sweep {open} -o {d}/sw --V 1,1.0000000001", ["--V", "V_+1.h5"]),
    ("sweep-stage1-negative", "sweep {open} -o {d}/sw --V 1 --stage1 -1",
     ["--stage1 = -1.0", ">= 0"]),
    ("sweep-stage1-nan", "sweep {open} -o {d}/sw --V 1 --stage1 nan", ["--stage1 = nan"]),
    ("sweep-t-end-nan", "sweep {open} -o {d}/sw --V 1 --t-end nan", ["--t-end = nan"]),
    ("sweep-t-end-negative", "sweep {open} -o {d}/sw --V 1 --t-end -1", ["--t-end = -1.0"]),
    ("sweep-group-size-0", "sweep {open} -o {d}/sw --V 1 --group-size 0", ["--group-size = 0"]),
    ("sweep-group-size-too-big", "sweep {open} -o {d}/sw --V 1 --group-size 3",
     ["--group-size = 3", "MPI ranks"]),
    ("sweep-no-leads", "sweep {v2d} -o {d}/sw --V 1", ["[[leads]]"]),
    ("sweep-missing-config", "sweep {d}/missing.toml -o {d}/sw --V 1", ["does not exist"]),
    ("sweep-o-file", "sweep {open} -o {text} --V 1", ["-o", "text.txt", "is a file"]),
    ("sweep-o-missing-parent", "sweep {open} -o {d}/nodir/sw --V 1", ["-o", "does not exist"]),
    # ------------------------------------------------------------------ quench
    ("quench-missing-dir", "quench {d}/missing_dir", ["missing_dir", "does not exist"]),
    ("quench-no-V-files", "quench {empty}", ["'{empty}'", "no V_*.h5"]),
    ("quench-a-file", "quench {text}", ["text.txt", "not a directory"]),
    ("quench-foreign-V", "quench {qforeign}", ["V_+1.h5", "not a qcspin run file"]),
    ("quench-truncated-V", "quench {qtrunc}", ["V_+1.h5", "truncated"]),
    ("quench-text-V", "quench {qtext}", ["V_+1.h5", "not an HDF5 file"]),
    ("quench-twice", "quench {qforeign} {qforeign}", ["qforeign", "twice"]),
    ("quench-tail-0", "quench {empty} --tail 0", ["--tail = 0.0", "> 0 and <= 1"]),
    ("quench-tail-1.5", "quench {empty} --tail 1.5", ["--tail = 1.5", "<= 1"]),
    ("quench-tail-abc", "quench {empty} --tail abc", ["--tail", "'abc'"]),
    ("quench-t-min-negative", "quench {empty} --t-min -1", ["--t-min = -1.0", ">= 0"]),
    ("quench-t-min-nan", "quench {empty} --t-min nan", ["--t-min = nan"]),
]

# restart and step-count refusals of qcspin run
RESTART_BAD = [
    ("restart-o", "run --restart {copy} -q -o {out}", ["-o", "--restart"]),
    ("restart-overwrite", "run --restart {copy} -q --overwrite", ["--overwrite", "--restart"]),
    ("restart-t-end-before-t", "run --restart {copy} -q --t-end 0.5", ["time.t_end", "0.5"]),
    ("run-petsc-dt-tiny", "run {v1d} -q -o {out} -qcspin_ts_adapt_type basic "
     "-qcspin_ts_dt 1e-300", ["-qcspin_ts_dt"]),
    ("run-too-many-steps", "run {v1d} -q -o {out} --t-end 1e30", ["time.t_end", "2^31"]),
    # t_end / dt overflows to inf
    ("run-infinitely-many-steps", "run {v1d} -q -o {out} --t-end 1e30 -qcspin_ts_dt 1e-300",
     ["time.t_end", "2^31"]),
]


def _argv(template: str, files: dict, case: str) -> tuple[list[str], dict]:
    names = dict(files, out=os.path.join(files["d"], f"out_{case}.h5"),
                 png=os.path.join(files["d"], f"out_{case}.png"),
                 copy=os.path.join(files["d"], f"copy_{case}.h5"))
    return [a.format(**names) for a in template.split()], names


def _run_bad(case, template, needles, files, capsys):
    argv, names = _argv(template, files, case)
    if "{copy}" in template:
        if RANK0:
            shutil.copy(files["run"], names["copy"])
        barrier(PETSc.COMM_WORLD)
    problem = _error_problem(argv, [n.format(**names) for n in needles], capsys)
    barrier(PETSc.COMM_WORLD)
    if RANK0 and problem is None:  # nothing written
        written = [p for p in (names["out"], names["png"], os.path.join(files["d"], "sw"),
                               os.path.join(files["d"], "nodir")) if os.path.exists(p)]
        problem = f"{argv} wrote {written}" if written else None
    _agree(problem)


BAD_PARAMS = [pytest.param(*c, id=c[0]) for c in BAD + RESTART_BAD]


@pytest.mark.parametrize("case,template,needles", BAD_PARAMS)
def test_bad_input(case, template, needles, files, capsys):
    _run_bad(case, template, needles, files, capsys)


def test_battery_size():
    assert len(BAD) >= 60 and len({c[0] for c in BAD}) == len(BAD)


# ----------------------------------------------------------------------------- good inputs
def _ok(argv, capsys) -> str:
    """``qcspin ARGV`` must succeed (exit status 0, no error) on every rank.  Collective."""
    capsys.readouterr()
    rc, usage = _call(argv)
    out, err = capsys.readouterr()
    bad = rc != 0 or usage or "Traceback" in out + err or "error" in err
    _agree(f"rank {PETSc.COMM_WORLD.getRank()}: {argv} -> {rc}: {out[-500:]} {err}"
           if bad else None)
    return out


def test_good_run_info_plot_restart(files, mpi_tmp_path, capsys):
    out = os.path.join(mpi_tmp_path, "r.h5")
    _ok(["run", files["v1d"], "-q", "-o", out, "--t-end", "0.5"], capsys)
    _ok(["run", "--restart", out, "-q", "--t-end", "1"], capsys)   # extend
    text = _ok(["info", out], capsys)
    png = os.path.join(mpi_tmp_path, "r.png")
    _ok(["plot", out, "-o", png], capsys)
    _ok(["plot", files["tr"], "-o", os.path.join(mpi_tmp_path, "tr.png")], capsys)
    if RANK0:  # after the last collective call
        assert "status: finished" in text and "segment 1" in text, text
        assert os.path.getsize(png) > 0


def test_good_spectrum(files, mpi_tmp_path, capsys):
    out, png = os.path.join(mpi_tmp_path, "s.h5"), os.path.join(mpi_tmp_path, "s.png")
    _ok(["spectrum", files["v1d"], "--nev", "4", "--target", "-0.3", "-o", out, "--png", png],
        capsys)
    _ok(["spectrum", files["v1d"], "--jsd-sweep", "0:2:1", "--config", "perpendicular", "-o",
         out, "--overwrite"], capsys)
    if RANK0:
        with h5py.File(out) as f:
            assert f["eigenvalues"].shape == (3, 40)
        assert os.path.exists(png)


def test_good_transport(files, mpi_tmp_path, capsys):
    """The brief's smoke case, negative ranges and negative values as separate arguments, and
    T = 0 (exact step Fermi functions: the Landauer current is (1/2pi) int_{mu_r}^{mu_l} theta)."""
    out, png = os.path.join(mpi_tmp_path, "t.h5"), os.path.join(mpi_tmp_path, "t.png")
    _ok(["transport", files["v2d"], "--energies", "-1:1:0.5", "-o", out, "--png", png], capsys)
    out2 = os.path.join(mpi_tmp_path, "t2.h5")
    _ok(["transport", files["v1d"], "--energies", "-5:5:0.01", "--mu-l", "0.5", "--mu-r",
         "-0.5", "--temperature", "0", "-o", out2], capsys)
    if RANK0:
        with h5py.File(out) as f:
            assert f["theta"].shape == (5,)
        assert os.path.exists(png)
        with h5py.File(out2) as f:
            E, theta = f["energies"][...], f["theta"][...]
            assert len(E) == 1001 and abs(E[0] + 5) < 1e-12 and abs(E[-1] - 5) < 1e-9
            inside = (E >= -0.5 - 1e-9) & (E <= 0.5 + 1e-9)
            # trapezoid on the 0.01 grid over a smooth theta: agreement to ~1e-4 relative
            ref = np.trapz(theta[inside], E[inside]) / (2 * np.pi)
            assert abs(f["current/particle"][()] - ref) < 1e-3 * abs(ref)


def test_good_jeff(mpi_tmp_path, capsys):
    out, png = os.path.join(mpi_tmp_path, "j.h5"), os.path.join(mpi_tmp_path, "j.png")
    _ok(["jeff", "--sweep", "N_NM=2,3", "--n-spins", "1", "--J-sd", "0.5", "--t-end", "10",
         "-o", out, "--png", png], capsys)
    if RANK0:
        assert os.path.exists(out) and os.path.exists(png)


def test_good_sweep_and_quench(files, mpi_tmp_path, capsys):
    d = os.path.join(mpi_tmp_path, "sw")
    _ok(["sweep", files["open"], "--V", "1", "-o", d, "--stage1", "1", "--t-end", "3",
         "--set", "time.output_every=1"] + SMALL_OPEN, capsys)
    _ok(["quench", d, "--t-min", "0"], capsys)
    problem = _error_problem(["quench", d], ["analysis.h5", "exists", "--overwrite"], capsys)
    # cmd_quench writes on rank 0 alone (tests/analysis/test_quench.py calls it on rank 0 only,
    # so it makes no collective call): an existing analysis.h5 is refused by rank 0, the other
    # ranks return 0
    _agree(problem if RANK0 else None)
    _ok(["quench", d, "--t-min", "0", "--overwrite", "--tail", "1"], capsys)


@pytest.mark.skip_in_parallel
def test_closed_pipe_stops_quietly(tmp_path):
    """``qcspin info FILE | head -1``: the reader closing the pipe stops qcspin like any
    command-line tool (SIGPIPE), without PETSc's signal report and MPI_ABORT."""
    import subprocess
    import sys

    out = tmp_path / "r.h5"
    assert main(["run", os.path.join(EX, "valve_1d.toml"), "-o", str(out), "--t-end", "1",
                 "-q"]) == 0
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    for k in [k for k in env if k.startswith(("OMPI_COMM_WORLD", "PMIX_", "OMPI_MCA_"))]:
        del env[k]
    r = subprocess.run(f"'{sys.executable}' -m toolkit.cli -v info '{out}' | head -c 10",
                       shell=True, capture_output=True, text=True, env=env, timeout=120,
                       cwd=os.path.dirname(EX))
    assert "PETSC ERROR" not in r.stderr and "MPI_ABORT" not in r.stderr, r.stderr[-500:]
    assert r.stdout.startswith(str(out)[:10])
