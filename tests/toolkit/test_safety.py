"""Nothing lost, nothing silent: atomic checkpoints under SIGKILL, one writer per file, stored
overrides, run status and history, numerical blow-up, signals under mpirun, memory estimate."""
import os
import random
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from helpers import ROOT, valve_2d

from integrators import Simulation
from integrators.simulation import NumericalInstability
from toolkit.cli import main as cli_main
from toolkit.io import ResultFile, ResultFileError, is_locked, load_checkpoint, read_status

CFG = os.path.join(ROOT, "examples", "valve_1d.toml")
PY = sys.executable
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
for _k in [k for k in ENV if k.startswith(("OMPI_COMM_WORLD", "PMIX_", "OMPI_MCA_"))]:
    del ENV[_k]  # a subprocess of an MPI test rank must not believe it is that rank
SERIES = ("time", "step", "spins", "spin_density", "energy/total", "angular_momentum")

OPEN_TOML = """
name = "open 1D valve"
[lattice]
size = [8]
[[layers]]
name = "PL"
columns = [0, 2]
J_sd = 1.5
spin = [1, 0, 0]
[[layers]]
name = "SL"
columns = [2, 6]
[[layers]]
name = "FL"
columns = [6, 8]
J_sd = 1.0
spin = [0, 0, 1]
[[leads]]
side = "left"
gamma = 1.0
[[leads]]
side = "right"
gamma = 1.0
[bias]
protocol = "symmetric"
V = 1.0
[electrons]
n_poles = 30
[time]
dt = 0.2
t_end = 20.0
output_every = 5
checkpoint_every = 10
[solver]
stiff = "none"
"""


def _cli(*args, mpi=0, timeout=240, **kw):
    pre = ["mpirun", "--oversubscribe", "-n", str(mpi)] if mpi else []
    return subprocess.run(pre + [PY, "-m", "toolkit.cli", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout, **kw)


def _popen(args, mpi=0):
    pre = ["mpirun", "--oversubscribe", "-n", str(mpi)] if mpi else []
    return subprocess.Popen(pre + [PY, "-m", "toolkit.cli", *args], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _kill_session(sid):
    """SIGKILL every process of session ``sid`` (mpirun and its ranks, which Open MPI puts in
    process groups of their own): what a crashed node or a scheduler's kill does."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid:  # fields after the command: state ppid pgrp session
                pids.append(int(d))
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def _same_series(a_path, b_path, tol=0.0):
    with h5py.File(a_path) as a, h5py.File(b_path) as b:
        for name in SERIES:
            assert a[name].shape == b[name].shape, name
            assert np.abs(a[name][...] - b[name][...]).max() <= tol, name


# ----------------------------------------------------------------------------- SIGKILL
def _kill_at_random(tmp, n_kills, mpi, seed):
    """Run, SIGKILL the whole process group at a random moment, restart, ... n_kills times,
    then let it finish.  checkpoint_every = 1: most of the run is checkpoint writing, so the
    kills land inside checkpoints, records and the switch between slots."""
    ref, out = os.path.join(tmp, "ref.h5"), os.path.join(tmp, "killed.h5")
    sets = ["--set", "time.t_end=20", "--set", "time.checkpoint_every=1", "--set",
            "time.output_every=3", "-q"]
    r = _cli("run", CFG, "-o", ref, *sets, mpi=mpi)
    assert r.returncode == 0, r.stderr
    rng = random.Random(seed)
    for _ in range(n_kills):
        args = ["run", "--restart", out, "-q"] if os.path.exists(out) else ["run", CFG, "-o",
                                                                           out, *sets]
        p = _popen(args, mpi)
        p.stdout.readline()  # set-up done
        time.sleep(rng.uniform(0.0, 0.5))
        _kill_session(p.pid)
        p.communicate()
        deadline = time.time() + 30
        while is_locked(out) and time.time() < deadline:  # the kernel releases the lock
            time.sleep(0.01)
    args = ["run", "--restart", out, "-q"] if os.path.exists(out) else ["run", CFG, "-o", out,
                                                                       *sets]
    r = _cli(*args, mpi=mpi)
    assert r.returncode == 0, r.stdout + r.stderr
    # identical operations in identical order from an identical checkpoint: bitwise equal
    _same_series(ref, out, tol=0.0)
    st = read_status(out)
    assert st["status"] == "finished"
    assert len(st["history"]) >= 2


@pytest.mark.skip_in_parallel
def test_sigkill_at_random_points_serial(tmp_path):
    _kill_at_random(str(tmp_path), n_kills=10, mpi=0, seed=7)


@pytest.mark.skip_in_parallel
def test_sigkill_at_random_points_mpirun(tmp_path):
    _kill_at_random(str(tmp_path), n_kills=4, mpi=2, seed=11)


# ----------------------------------------------------------------------------- slots
def _interrupted(path, comm, steps=55, **kw):
    dev = valve_2d(Lx=6, Ly=2, dt=0.05, t_end=6.0, output_every=10, checkpoint_every=20,
                   **kw).finalized()
    Simulation(dev, comm).run(path, progress=False, max_steps=steps)
    return dev


def test_damaged_current_slot_falls_back_to_the_previous(comm, mpi_tmp_path):
    """A checkpoint slot whose data do not match its checksum (or that is marked incomplete)
    is not used: the restart continues from the previous checkpoint and still reproduces the
    uninterrupted run (bitwise: same operations from an earlier identical state)."""
    full, part = os.path.join(mpi_tmp_path, "f.h5"), os.path.join(mpi_tmp_path, "p.h5")
    dev = _interrupted(part, comm)
    Simulation(dev, comm).run(full, progress=False)
    if comm.getRank() == 0:
        ck = load_checkpoint(part)
        assert ck["step"] == 55 and ck["fallback"] == ""
        with h5py.File(part, "r+") as f:
            slot = f"checkpoint/slot{int(f['checkpoint'].attrs['slot'])}"
            f[slot + "/rho"][0, 0] += 1e-3  # damaged data, checksum unchanged
        ck = load_checkpoint(part)
        assert ck["step"] == 40 and "checksum of 'rho'" in ck["fallback"]
    with pytest.warns(RuntimeWarning, match="previous checkpoint") if comm.getRank() == 0 \
            else _nothing():
        Simulation(dev, comm).run(part, progress=False, restart=True)
    if comm.getRank() == 0:
        _same_series(full, part)
        with h5py.File(part, "r+") as f:  # both slots unusable: a clear error
            for k in (0, 1):
                f[f"checkpoint/slot{k}"].attrs["step"] = -1
        with pytest.raises(ResultFileError, match="no valid checkpoint.*incomplete"):
            load_checkpoint(part)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_format1_checkpoint_still_restarts(comm, mpi_tmp_path):
    """A file of the previous schema (one checkpoint directly in /checkpoint) restarts and
    reproduces the uninterrupted run; its next checkpoint is written in the two-slot form."""
    full, part = os.path.join(mpi_tmp_path, "f.h5"), os.path.join(mpi_tmp_path, "p.h5")
    dev = _interrupted(part, comm)
    Simulation(dev, comm).run(full, progress=False)
    if comm.getRank() == 0:
        with h5py.File(part, "r+") as f:
            g = f["checkpoint"]
            cur = f"slot{int(g.attrs['slot'])}"
            for k in list(g[cur]):
                g.move(f"{cur}/{k}", k)
            for k in ("slot0", "slot1"):
                del g[k]
            del g.attrs["slot"]
            for k in ("kind", "qcspin_format", "status", "status_message"):
                del f.attrs[k]
            del f["history"]
        assert load_checkpoint(part)["slot"] == -1
    Simulation(dev, comm).run(part, progress=False, restart=True)
    if comm.getRank() == 0:
        _same_series(full, part)
        with h5py.File(part) as f:
            assert "rho" not in f["checkpoint"] and "slot0" in f["checkpoint"]


def test_new_file_appears_only_when_complete(tmp_path):
    """A new result is written under a temporary name and renamed into place by publish();
    closed before that (a run that failed before its first record) it leaves nothing, and an
    older file of that name is untouched."""
    from toolkit.units import get_units

    out = str(tmp_path / "r.h5")
    with open(out, "wb") as fh:
        fh.write(b"old result")
    w = ResultFile(out, mode="create", units=get_units("natural"), meta={})
    assert os.path.exists(w.write_path) and w.write_path != out
    w.close()
    assert open(out, "rb").read() == b"old result"
    assert not os.path.exists(w.write_path)


# ----------------------------------------------------------------------------- one writer
@pytest.mark.skip_in_parallel
def test_second_writer_is_refused(tmp_path):
    """While a run writes OUT.h5, a second `--overwrite` run and a `--restart` of the same
    file are refused with a one-line error before touching anything; the first run then
    finishes its file normally."""
    out = str(tmp_path / "busy.h5")
    p = _popen(["run", CFG, "-o", out, "-q", "--set", "time.t_end=3000"])
    assert p.stdout.readline().startswith("qcspin run:")
    deadline = time.time() + 30
    while not os.path.exists(out) and time.time() < deadline:
        time.sleep(0.05)
    for args in (["run", CFG, "-o", out, "--overwrite", "-q"], ["run", "--restart", out, "-q"]):
        r = _cli(*args)
        assert r.returncode == 2, r.stderr
        assert "being written by another qcspin run" in r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    st = read_status(out)
    assert st["status"] == "interrupted" and "SIGINT" in st["message"]
    assert not os.path.exists(out + ".lock")


# ----------------------------------------------------------------------------- overrides
def test_overrides_are_stored_and_restart_extends(comm, mpi_tmp_path, capsys):
    """--t-end and PETSc options go into the stored config; --restart continues to the stored
    end; --restart --t-end T and --restart --set time.t_end=T extend a finished run; other
    --set keys are refused with --restart."""
    out = os.path.join(mpi_tmp_path, "o.h5")
    assert cli_main(["run", CFG, "-o", out, "-q", "--t-end", "1.0", "-qcspin_ts_rk_type",
                     "4"]) == 0
    from petsc4py import PETSc

    PETSc.Options().delValue("qcspin_ts_rk_type")
    if comm.getRank() == 0:
        st = read_status(out)
        assert "t_end = 1.0" in st["config"] and 'ts_rk_type = "4"' in st["config"]
        assert st["t_last"] == pytest.approx(1.0)
    assert cli_main(["run", "--restart", out, "-q", "--t-end", "1.5"]) == 0
    assert cli_main(["run", "--restart", out, "-q", "--set", "time.t_end=2.0"]) == 0
    assert cli_main(["run", "--restart", out, "-q", "--set", "time.dt=0.1"]) == 2
    assert cli_main(["run", "--restart", out, "-q", "--t-end", "nan"]) == 2
    if comm.getRank() == 0:
        err = capsys.readouterr().err
        assert "time.dt=0.1' is not allowed with --restart" in err
        assert "time.t_end" in err
        st = read_status(out)
        assert st["t_last"] == pytest.approx(2.0) and st["status"] == "finished"
        assert [h["status"] for h in st["history"]] == ["finished"] * 3
        assert st["history"][1]["t_start"] == pytest.approx(1.0)
        assert 'ts_rk_type = "4"' in st["config"]  # the restarts kept the stored options
        with h5py.File(out) as f:
            assert np.allclose(np.diff(f["time"][...]), 1.0)


def test_interrupted_restart_goes_to_the_stored_end(comm, mpi_tmp_path):
    out = os.path.join(mpi_tmp_path, "i.h5")
    dev = valve_2d(Lx=6, Ly=2, dt=0.05, t_end=50.0, output_every=10).finalized()
    s = Simulation(dev, comm).run(out, progress=False, t_end=2.0, max_steps=13)
    assert s["status"] == "interrupted"
    assert cli_main(["run", "--restart", out, "-q"]) == 0
    if comm.getRank() == 0:
        st = read_status(out)
        assert st["t_last"] == pytest.approx(2.0) and st["status"] == "finished"
        assert st["history"][0]["status"] == "interrupted"
        assert "max_steps" in st["history"][0]["message"]


def test_restart_with_another_device_is_refused(comm, mpi_tmp_path):
    out = os.path.join(mpi_tmp_path, "d.h5")
    _interrupted(out, comm, steps=5)
    other = valve_2d(Lx=6, Ly=2, J_sd=2.0, dt=0.05, t_end=6.0, output_every=10,
                     checkpoint_every=20).finalized()
    with pytest.raises(ResultFileError, match="J_sd"):
        Simulation(other, comm).run(out, progress=False, restart=True)


def test_step_then_run_records_the_whole_trajectory(comm, mpi_tmp_path):
    """Simulation.step(n) followed by run(): the file starts at t = 0 and equals a plain run;
    run(t_end=...) stores that t_end."""
    a, b = os.path.join(mpi_tmp_path, "a.h5"), os.path.join(mpi_tmp_path, "b.h5")
    dev = valve_2d(Lx=6, Ly=2, dt=0.05, t_end=6.0, output_every=10).finalized()
    Simulation(dev, comm).run(a, progress=False, t_end=3.0)
    sim = Simulation(dev, comm)
    sim.step(25)
    sim.run(b, progress=False, t_end=3.0)
    if comm.getRank() == 0:
        _same_series(a, b)
        st = read_status(b)
        assert "t_end = 3.0" in st["config"]
        assert st["history"][0]["step_start"] == 25


# ----------------------------------------------------------------------------- blow-up
def test_blowup_fails_loudly(comm, mpi_tmp_path, capsys):
    """stiff = 'none' with dt = 0.2 on an open valve (explicit limit 2.79 beta/xi_max ~ 0.048):
    a warning before the run, exit status 1 with a message naming the scheme, every stored
    record finite, the file marked failed."""
    cfg = os.path.join(mpi_tmp_path, "open.toml")
    out = os.path.join(mpi_tmp_path, "nan.h5")
    if comm.getRank() == 0:
        with open(cfg, "w") as fh:
            fh.write(OPEN_TOML)
    from toolkit.parallel import barrier

    barrier(comm)
    assert cli_main(["run", cfg, "-o", out, "-q"]) == 1
    if comm.getRank() == 0:
        err = capsys.readouterr().err
        assert "warning: the run will probably blow up" in err and "pole decay" in err
        assert "non-finite" in err and "solver.stiff = 'expint'" in err
        assert "Traceback" not in err
        st = read_status(out)
        assert st["status"] == "failed" and "non-finite" in st["message"]
        with h5py.File(out) as f:
            for name in SERIES:
                assert np.isfinite(f[name][...]).all(), name
            assert f["time"].shape[0] >= 1
        ck = load_checkpoint(out)
        assert np.isfinite(ck["rho"]).all()


def test_step_api_raises_on_blowup(comm):
    import tomllib

    from toolkit.config import config_from_dict

    sim = Simulation(config_from_dict(tomllib.loads(OPEN_TOML)), comm)
    with pytest.raises(NumericalInstability, match="non-finite"):
        sim.step(400)
    sim.destroy()


# ----------------------------------------------------------------------------- status
def test_info_reports_status_and_history(comm, mpi_tmp_path, capsys):
    out = os.path.join(mpi_tmp_path, "s.h5")
    _interrupted(out, comm, steps=10)
    assert cli_main(["info", out]) == 0
    if comm.getRank() == 0:
        text = capsys.readouterr().out
        assert "status: interrupted" in text and "segment 0" in text
        assert "lattice [6, 2]" in text and "checkpoint: step 10" in text
        with h5py.File(out, "r+") as f:  # a run killed by SIGKILL leaves 'running'
            f.attrs["status"] = "running"
        st = read_status(out)
        assert st["status"] == "killed" and "--restart" in st["message"]
        hist = st["history"][0]
        for key in ("argv", "host", "mpi_size", "qcspin", "git", "started", "ended"):
            assert key in hist, key
        assert hist["mpi_size"] == comm.getSize()


# ----------------------------------------------------------------------------- signals, MPI
@pytest.mark.skip_in_parallel
def test_mpirun_interrupted_exits_130(tmp_path):
    """Under mpirun: SIGUSR1 to mpirun (forwarded to every rank) and SIGTERM to the ranks make
    the run write a checkpoint and exit 130, as a serial SIGTERM does."""
    for k, how in enumerate(("usr1-mpirun", "term-ranks")):
        out = str(tmp_path / f"m{k}.h5")
        p = _popen(["run", CFG, "-o", out, "-q", "--set", "time.t_end=5000"], mpi=2)
        assert p.stdout.readline().startswith("qcspin run:")
        time.sleep(1.5)
        if how == "usr1-mpirun":
            p.send_signal(signal.SIGUSR1)
        else:
            ranks = subprocess.run(["pgrep", "-f", f"^{PY} -m toolkit.cli run {CFG} -o {out}"],
                                   capture_output=True, text=True).stdout.split()
            assert len(ranks) == 2
            for pid in ranks:
                os.kill(int(pid), signal.SIGTERM)
        _, err = p.communicate(timeout=120)
        assert p.returncode == 130, (how, err)
        st = read_status(str(out))
        assert st["status"] == "interrupted"


@pytest.mark.skip_in_parallel
def test_serial_sigterm_exits_130(tmp_path):
    out = str(tmp_path / "t.h5")
    p = _popen(["run", CFG, "-o", out, "-q", "--set", "time.t_end=5000"])
    assert p.stdout.readline().startswith("qcspin run:")
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert read_status(out)["message"].startswith("SIGTERM")


# ----------------------------------------------------------------------------- memory
def test_too_large_system_is_refused_at_once(comm, tmp_path, capsys):
    p = tmp_path / f"big{comm.getRank()}.toml"
    # N_s = 40000: 1.6e9 entries, below the 32-bit index limit, ~180 GiB
    p.write_text("[lattice]\nsize = [100, 100, 2]\n")
    t0 = time.perf_counter()
    assert cli_main(["run", str(p), "-o", str(tmp_path / "big.h5"), "-q"]) == 2
    assert time.perf_counter() - t0 < 10
    if comm.getRank() == 0:
        err = capsys.readouterr().err
        assert "lattice.size" in err and "N_s = 40000" in err and "GiB" in err
        assert "available" in err


def test_state_beyond_the_index_limit_is_refused(comm, tmp_path, capsys):
    """A state vector of more than 2^31 - 1 entries (N_s = 48000: 2.3e9) cannot exist with
    32-bit PETSc indices: one line naming the key, the count and the remedy, before anything is
    allocated."""
    import numpy as np

    from toolkit.memory import available_memory
    from toolkit.parallel import allreduce

    from petsc4py import PETSc

    wide = np.iinfo(PETSc.IntType).max > 2**31
    avail = available_memory()
    if wide and allreduce(int(avail is None or avail > 30 * 2**30), comm):
        pytest.skip("64-bit indices and enough memory: the 37 GB junction would be allocated")
    p = tmp_path / f"idx{comm.getRank()}.toml"
    p.write_text("[lattice]\nsize = [120, 100, 2]\n")
    assert cli_main(["run", str(p), "-o", str(tmp_path / "idx.h5"), "-q"]) == 2
    if comm.getRank() == 0:
        err = capsys.readouterr().err
        assert "lattice.size" in err and len(err.strip().splitlines()) == 1
        if wide:
            # a 64-bit-index build (scripts/install_petsc64.sh) counts these entries: the same
            # junction passes the index check and is refused by the memory check instead
            # (2.3e9 complex entries, 37 GB, more than this machine has)
            assert "--with-64-bit-indices" not in err and "available" in err
        else:
            assert "2,304,072,000" in err and "--with-64-bit-indices" in err


def test_memory_estimate_is_an_upper_bound_of_the_state(comm):
    """The printed state size (estimated before anything is allocated, from the electron
    problem's components) equals the arrays the run allocates (rho and lead blocks); a config
    with leads needs those sizes."""
    import tomllib

    from toolkit.config import config_from_dict
    from toolkit.memory import estimate_memory

    cfg = config_from_dict(tomllib.loads(OPEN_TOML))
    with pytest.raises(ValueError, match="StateSize"):
        estimate_memory(cfg, comm.getSize())
    sim = Simulation(cfg, comm)
    est = sim.memory
    from toolkit.parallel import allreduce

    n_state = allreduce(sim.layout.spin_offset, comm)  # rho + lead blocks, complex entries
    assert est.state == 16 * n_state
    sim.destroy()


# ----------------------------------------------------------------------------- command line
@pytest.mark.skip_in_parallel
def test_petsc_options_reach_petsc_at_start_up(tmp_path):
    """-log_view is read at PetscInitialize (the command initialises PETSc with argv);
    -qcspin_ts_dt changes the step and the run still reaches t_end; -qcspin_ts_monitor prints
    one line per step."""
    out = str(tmp_path / "l.h5")
    r = _cli("run", CFG, "-o", out, "-q", "--set", "time.t_end=0.5", "-qcspin_ts_dt", "0.025",
             "-qcspin_ts_monitor", "-log_view")
    assert r.returncode == 0, r.stderr
    assert "Performance Summary" in r.stdout
    assert "DEPRECATION" not in r.stdout + r.stderr  # -ts_dt is -ts_time_step on PETSc >= 3.25
    # steps 0..20; PETSc 3.26 names the prefix ('k TS (qcspin_) dt ...'), 3.18 does not
    assert r.stdout.replace(" (qcspin_)", "").count("TS dt 0.025") == 21
    st = read_status(out)
    assert st["t_last"] == pytest.approx(0.5) and "dt = 0.025" in st["config"]
    with h5py.File(out) as f:
        assert int(f["step"][-1]) == 20


def test_negative_values_are_not_petsc_options():
    from toolkit.cli import join_negative_values, split_petsc_args

    ours, petsc = split_petsc_args(join_negative_values(
        ["transport", "x.toml", "--energies", "-5:5:0.01", "--mu-l", "-0.5", "-log_view"]))
    assert ours == ["transport", "x.toml", "--energies=-5:5:0.01", "--mu-l=-0.5"]
    assert petsc == ["-log_view"]


def test_version_and_usage(capsys):
    import toolkit

    with pytest.raises(SystemExit) as exc:
        cli_main(["--version"])
    assert exc.value.code == 0
    assert toolkit.__version__ in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli_main(["-h"])
    text = capsys.readouterr().out
    for cmd in ("run", "info", "plot", "spectrum", "jeff", "transport", "sweep", "quench"):
        assert f"    {cmd}" in text, cmd
    assert "``" not in text


# ----------------------------------------------------------------------------- review findings
def test_fallback_makes_the_restored_slot_current(comm, mpi_tmp_path):
    """After a restart fell back to the older slot, that slot becomes current at once, so the
    next checkpoint overwrites the damaged slot, never the only valid one."""
    part = os.path.join(mpi_tmp_path, "p.h5")
    dev = _interrupted(part, comm)
    if comm.getRank() == 0:
        with h5py.File(part, "r+") as f:
            cur = int(f["checkpoint"].attrs["slot"])
            f[f"checkpoint/slot{cur}/rho"][0, 0] += 1e-3
    from toolkit.parallel import bcast

    cur = bcast(cur if comm.getRank() == 0 else None, comm)
    with pytest.warns(RuntimeWarning) if comm.getRank() == 0 else _nothing():
        Simulation(dev, comm).run(part, progress=False, restart=True, max_steps=1)
    if comm.getRank() == 0:
        with h5py.File(part) as f:  # one step later: the new checkpoint went into `cur`
            assert int(f["checkpoint"].attrs["slot"]) == cur
            assert int(f[f"checkpoint/slot{1 - cur}"].attrs["step"]) == 40
        assert load_checkpoint(part)["fallback"] == ""


def test_damaged_slot_header_falls_back(comm, mpi_tmp_path):
    part = os.path.join(mpi_tmp_path, "h.h5")
    _interrupted(part, comm)
    if comm.getRank() == 0:
        with h5py.File(part, "r") as f:
            cur = int(f["checkpoint"].attrs["slot"])
            addr = h5py.h5o.get_info(f[f"checkpoint/slot{cur}/rho"].id).addr
        with open(part, "r+b") as fh:  # overwrite the object header of the current rho
            fh.seek(addr)
            fh.write(b"\xff" * 64)
        ck = load_checkpoint(part)
        assert ck["step"] == 40 and "cannot be read" in ck["fallback"]


def test_nonfinite_state_is_never_checkpointed(comm, mpi_tmp_path, monkeypatch):
    """A NaN that appears off the diagonal on the last step (not seen by the cheap per-step
    check) is caught before the final checkpoint: the run fails and the previous checkpoint
    stays current."""
    out = os.path.join(mpi_tmp_path, "n.h5")
    dev = valve_2d(Lx=6, Ly=2, dt=0.05, t_end=1.05, output_every=10,
                   checkpoint_every=20).finalized()
    sim = Simulation(dev, comm)
    orig = sim._advance

    def poisoned(t_end, every):
        orig(t_end, every)
        if sim.step_number == 21 and comm.getRank() == 0:
            sim.layout.rho(sim.y.getArray())[0, 5] = np.nan
    sim._advance = poisoned
    with pytest.raises(NumericalInstability):
        sim.run(out, progress=False)
    if comm.getRank() == 0:
        assert read_status(out)["status"] == "failed"
        ck = load_checkpoint(out)
        assert ck["step"] == 20 and np.isfinite(ck["rho"]).all()


@pytest.mark.skip_in_parallel
def test_closed_blowup_is_one_line(tmp_path):
    """dt = 1.5 on the closed 1D valve (limit 2.83/W ~ 0.5): exit 1 with one message, no PETSc
    traceback from an eigen-solve on the broken state."""
    r = _cli("run", CFG, "-o", str(tmp_path / "b.h5"), "--t-end", "200", "--set", "time.dt=1.5",
             "-q")
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "non-finite" in r.stderr and "2.83/W" in r.stderr


@pytest.mark.skip_in_parallel
def test_restart_refuses_options_from_the_environment(tmp_path):
    out = str(tmp_path / "e.h5")
    assert _cli("run", CFG, "-o", out, "--t-end", "0.5", "-q").returncode == 0
    env = dict(ENV, PETSC_OPTIONS="-qcspin_ts_rk_type 3")
    r = subprocess.run([PY, "-m", "toolkit.cli", "run", "--restart", out, "--t-end", "1", "-q"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "qcspin_ts_rk_type" in r.stderr and "PETSC_OPTIONS" in r.stderr
    # and a new run stores options from the environment in its config
    out2 = str(tmp_path / "e2.h5")
    r = subprocess.run([PY, "-m", "toolkit.cli", "run", CFG, "-o", out2, "--t-end", "0.5", "-q"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert 'ts_rk_type = "3"' in read_status(out2)["config"]


@pytest.mark.skip_in_parallel
def test_info_on_a_live_run(tmp_path):
    out = str(tmp_path / "live.h5")
    p = _popen(["run", CFG, "-o", out, "-q", "--set", "time.t_end=5000"])
    assert p.stdout.readline().startswith("qcspin run:")
    deadline = time.time() + 30
    while not os.path.exists(out) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    r = _cli("info", out)
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=60)
    assert r.returncode == 0, r.stderr
    assert "status: running" in r.stdout


@pytest.mark.skip_in_parallel
@pytest.mark.parametrize("first,second", [(1, 2), (2, 1)])
def test_restart_on_another_number_of_ranks(tmp_path, first, second):
    """An open 2D valve run to t = 2 on ``first`` rank(s) and continued with --restart to
    t = 4 on ``second`` equals the uninterrupted serial run (1e-12: MPI sums in another order;
    measured 1e-16 for the spins, 3e-14 for the total energy of -130): the checkpoint holds
    the global state, which any row distribution reads."""
    cfg = os.path.join(ROOT, "examples", "valve_2d_open.toml")
    common = ["--set", "time.output_every=5", "--set", "time.checkpoint_every=5", "-q"]
    ref = str(tmp_path / "ref.h5")
    r = _cli("run", cfg, "-o", ref, "--set", "time.t_end=4.0", *common)
    assert r.returncode == 0, r.stderr
    out = str(tmp_path / "split.h5")
    r = _cli("run", cfg, "-o", out, "--set", "time.t_end=2.0", *common,
             mpi=first if first > 1 else 0)
    assert r.returncode == 0, r.stderr
    r = _cli("run", "--restart", out, "--t-end", "4.0", "-q", mpi=second if second > 1 else 0)
    assert r.returncode == 0, r.stderr
    with h5py.File(ref) as a, h5py.File(out) as b:
        assert np.array_equal(a["time"][:], b["time"][:])
        for key in SERIES:
            np.testing.assert_allclose(b[key][:], a[key][:], rtol=0, atol=1e-12, err_msg=key)
    # the final checkpoints (written by rows, on 2 ranks by each rank in turn) agree too
    ca, cb = load_checkpoint(ref), load_checkpoint(out)
    assert sorted(ca) == sorted(cb) and ca["step"] == cb["step"]
    for key in ("rho", "spins", "pi:left", "pi:right"):
        assert np.abs(ca[key] - cb[key]).max() < 1e-12, key
