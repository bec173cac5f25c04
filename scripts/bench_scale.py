#!/usr/bin/env python
"""Scaling benchmark of open junctions (issue: large 3D junctions): for open spin valves of
12 x 4, 24 x 8, 10 x 6 x 6, 14 x 8 x 8 and 20 x 10 x 10 sites (``examples/valve_2d_open.toml``
stretched: PL | SL | FL in thirds along x, wide-band leads on both x faces, Gamma = 1,
T = 0.025, N_p = 30, the stationary start at V = 0, symmetric bias V = 1 from t = 0, exponential
RK4 at dt = 0.2), on 1 and 2 MPI ranks, it prints

- set-up: building the device, operators and integrator (without the initial state);
- init: the stationary initial state (pole sum with MUMPS, ``integrators.stationary``);
- RHS: one evaluation of the function the integrator calls (``CoupledRHS.nonstiff``), median
  of several, and the effective bandwidth state bytes x 3 / RHS time (read rho and the lead
  blocks once, write the derivative once, plus the sparse-H x dense products' second read:
  a strict read-once/write-once floor would be 2 x state bytes);
- step: one exponential-RK4 step (median), also in RHS-equivalents (step / RHS);
- peak: the peak resident memory per rank (``ru_maxrss``); 'x state': the peak above what the
  imported modules hold (~110 MiB) in units of the rank's share of the state;
- eff: the 2-rank efficiency t_1 / (2 t_2) of RHS and step.

Each (system, ranks) is one ``mpirun -n R`` subprocess (``--worker``) so that peak memory and
timings are its own.  Benchmarks are scripts, not tests; the numbers depend on the load of the
machine, which the header prints (``os.getloadavg``).

    .venv/bin/python scripts/bench_scale.py [--systems 12x4,24x8,10x6x6,14x8x8,20x10x10]
                                            [--ranks 1,2] [--repeat 3] [--json out.json]
                                            [--png out.png] [--biased-start]
                                            [--stationary auto|dense|window]

``--biased-start``: the bias (asymmetric, V = 1: mu_L = 1, mu_R = 0) is on before t = 0, so
the initial state is the biased stationary state (the pole sum plus the bias-window part:
``--stationary`` "dense" = the Sylvester solve, "window" = integrators/window.py, "auto" =
dense up to 4000 orbitals); the window's energy count is printed with the row.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
EXAMPLE = os.path.join(ROOT, "examples", "valve_2d_open.toml")
SYSTEMS = "12x4,24x8,10x6x6,14x8x8,20x10x10"


def overrides(size: list[int]) -> list[str]:
    """--set overrides of the stretched open valve of ``size`` (PL | SL | FL in thirds)."""
    Lx = size[0]
    a = max(1, Lx // 3)
    b = Lx - a
    return [f"lattice.size={size}", f"layers.PL.columns=[0, {a}]",
            f"layers.SL.columns=[{a}, {b}]", f"layers.FL.columns=[{b}, {Lx}]"]


def _peak_mib() -> float:
    """VmHWM of this process (ru_maxrss would carry the parent's peak across fork + exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def start_overrides(biased: bool, stationary: str) -> list[str]:
    """--set overrides of the start: the biased one of ``--biased-start``."""
    out = [f'electrons.stationary="{stationary}"']
    if biased:
        out += ['bias.protocol="asymmetric"', "bias.t_on=-1.0"]
    return out


def worker(size: list[int], repeat: int, extra: list[str] | None = None) -> None:
    """One measurement on the ranks of COMM_WORLD; rank 0 prints one JSON line."""
    import numpy as np

    import integrators.simulation as simmod
    import toolkit  # noqa: F401  (complex PETSc)
    from integrators import Simulation
    from toolkit.config import load_config
    from toolkit.parallel import get_comm

    comm = get_comm(None)
    base_mib = _peak_mib()                              # Python, NumPy, PETSc, MPI loaded
    cfg = load_config(EXAMPLE, overrides(size) + list(extra or []))
    timing = {}
    orig_start = simmod.start

    def timed_start(*a, **k):
        comm.barrier()
        t = time.perf_counter()
        orig_start(*a, **k)
        comm.barrier()
        timing["init"] = time.perf_counter() - t

    simmod.start = timed_start
    comm.barrier()
    t0 = time.perf_counter()
    sim = Simulation(cfg, comm)
    comm.barrier()
    total = time.perf_counter() - t0
    simmod.start = orig_start
    state_bytes = sim.y.getSize() * 16
    sim.mu_of_t.begin_step(0.0)
    sim.step(1, record=False)                           # warm-up (first step sets things up)
    st = []
    for _ in range(max(repeat, 1)):
        comm.barrier()
        t = time.perf_counter()
        sim.step(1, record=False)
        comm.barrier()
        st.append(time.perf_counter() - t)
    t_step = float(np.median(st))
    # the peak of the run itself (before the RHS timing below allocates its own F)
    peak = comm.tompi4py().allreduce(_peak_mib(), op=__import__("mpi4py.MPI").MPI.MAX) \
        if comm.getSize() > 1 else _peak_mib()
    F = sim.y.duplicate()
    fn = sim.rhs.nonstiff if cfg.solver.stiff in ("expint", "imex") else sim.rhs
    t_now = sim.time
    fn(None, t_now, sim.y, F)                           # warm-up
    ts = []
    for _ in range(max(repeat, 1)):
        comm.barrier()
        t = time.perf_counter()
        fn(None, t_now, sim.y, F)
        comm.barrier()
        ts.append(time.perf_counter() - t)
    t_rhs = float(np.median(ts))
    F.destroy()
    out = dict(size=size, ranks=comm.getSize(), N_s=sim.device.n_orbitals,
               n_poles=sim.poles.n_poles if hasattr(sim.poles, "n_poles") else None,
               state_MiB=state_bytes / 2**20, setup=total - timing.get("init", 0.0),
               init=timing.get("init", float("nan")), rhs=t_rhs, step=t_step,
               rhs_per_step=t_step / t_rhs, GBps=3 * state_bytes / t_rhs / 1e9,
               peak_MiB=peak, base_MiB=base_mib,
               peak_over_state=(peak - base_mib) * 2**20 / (state_bytes / comm.getSize()))
    from integrators import stationary as st

    if st.last_window:
        out["window_energies"] = st.last_window[0].energies
    sim.destroy()
    if comm.getRank() == 0:
        print("RESULT " + json.dumps(out), flush=True)


#: the numbers of the issue's baseline (main at 750bab4, before this benchmark's changes), for
#: the 20 x 10 x 10 valve on this 2-core machine: initial state, RHS, step (s) and peak / state
BASELINE_20x10x10 = {1: dict(init=13.5 * 60, rhs=1.27, step=7.0, peak=13.0),
                     2: dict(rhs=0.76, step=4.35)}


def bandwidth(nbytes: int = 2**28) -> float:
    """Memory bandwidth (GB/s) of this rank, counted as read + write bytes of a NumPy copy of
    ``nbytes`` (the floor of one pass over the state; median of 5)."""
    import numpy as np

    a = np.ones(nbytes // 16, complex)
    b = np.empty_like(a)
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        np.copyto(b, a)
        ts.append(time.perf_counter() - t)
    return 2 * nbytes / float(np.median(ts)) / 1e9


def run_one(size: list[int], ranks: int, repeat: int, extra: list[str] = ()) -> dict:
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "x".join(map(str, size)),
           "--repeat", str(repeat)] + [f"--extra={e}" for e in extra]
    if ranks > 1:
        cmd = ["mpirun", "--oversubscribe", "-n", str(ranks)] + cmd
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SystemExit(f"bench_scale: {size} on {ranks} ranks failed (exit {r.returncode}):\n"
                     f"{r.stderr[-3000:]}")


def parse_size(s: str) -> list[int]:
    try:
        size = [int(v) for v in s.lower().split("x")]
    except ValueError:
        raise SystemExit(f"bench_scale: --systems entry {s!r} is not allowed: expected e.g. "
                         f"12x4 or 20x10x10") from None
    if not 2 <= len(size) <= 3 or min(size) < 1 or size[0] < 3:
        raise SystemExit(f"bench_scale: --systems entry {s!r} is not allowed: expected 2 or 3 "
                         f"sizes >= 1 with Lx >= 3")
    return size


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--systems", default=SYSTEMS)
    p.add_argument("--ranks", default="1,2")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", default="")
    p.add_argument("--png", default="")
    p.add_argument("--biased-start", action="store_true",
                   help="start from the biased stationary state (asymmetric V = 1)")
    p.add_argument("--stationary", default="auto", choices=("auto", "dense", "window"),
                   help="the biased stationary solver (electrons.stationary)")
    p.add_argument("--worker", default="", help=argparse.SUPPRESS)
    p.add_argument("--extra", action="append", default=[], help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        worker(parse_size(a.worker), a.repeat, a.extra)
        return 0
    extra = start_overrides(a.biased_start, a.stationary)
    sizes = [parse_size(s) for s in a.systems.split(",") if s.strip()]
    ranks = [int(r) for r in a.ranks.split(",")]
    bw = bandwidth()
    print(f"# bench_scale: load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"1 BLAS thread per rank; copy bandwidth {bw:.1f} GB/s (read + write): one pass over "
          f"the state (read it, write the derivative) takes 2 x state / {bw:.1f} GB/s ('floor')")
    hdr = (f"{'system':>10} {'N_s':>6} {'ranks':>5} {'state':>8} {'set-up':>7} {'init':>8} "
           f"{'RHS':>7} {'step':>7} {'st/RHS':>6} {'GB/s':>5} {'peak/rank':>10} {'x state':>7}"
           f" {'eff RHS':>7} {'eff step':>8} {'RHS/floor':>9}")
    print(hdr)
    rows = []
    for size in sizes:
        base = None
        for R in ranks:
            r = run_one(size, R, a.repeat, extra)
            rows.append(r)
            base = base or r
            eff_r = base["rhs"] / (R * r["rhs"]) if R > 1 else float("nan")
            eff_s = base["step"] / (R * r["step"]) if R > 1 else float("nan")
            r["eff_rhs"], r["eff_step"] = eff_r, eff_s
            r["floor"] = 2 * r["state_MiB"] * 2**20 / R / (bw * 1e9)
            r["copy_GBps"] = bw
            print(f"{'x'.join(map(str, size)):>10} {r['N_s']:>6} {R:>5} "
                  f"{r['state_MiB']:>6.0f}Mi {r['setup']:>6.1f}s {r['init']:>7.1f}s "
                  f"{r['rhs']:>6.3f}s {r['step']:>6.3f}s {r['rhs_per_step']:>6.2f} "
                  f"{r['GBps']:>5.1f} {r['peak_MiB']:>8.0f}Mi {r['peak_over_state']:>7.1f} "
                  f"{eff_r:>7.2f} {eff_s:>8.2f} {r['rhs'] / r['floor']:>9.1f}"
                  + (f"  (window: {r['window_energies']} energies)"
                     if "window_energies" in r else ""), flush=True)
            base_r = (BASELINE_20x10x10.get(R) if size == [20, 10, 10] and not a.biased_start
                      else None)
            if base_r:
                print(f"{'baseline':>10} {'':>6} {R:>5} {'':>8} {'':>7} "
                      + (f"{base_r['init']:>7.0f}s " if "init" in base_r else f"{'':>8} ")
                      + f"{base_r['rhs']:>6.3f}s {base_r['step']:>6.3f}s "
                      + f"{base_r['step'] / base_r['rhs']:>6.2f}"
                      + (f" {'':>5} {'':>10} {base_r['peak']:>7.1f}" if "peak" in base_r else "")
                      + "   (the issue's numbers, main at 750bab4)", flush=True)
    if a.json:
        with open(a.json, "x") as f:
            json.dump(rows, f, indent=1)
    if a.png:
        plot(rows, a.png)
    return 0


def plot(rows, png: str) -> None:
    """Cost against N_s (1 rank) with fitted exponents."""
    import numpy as np

    from analysis.plots import use_agg

    plt = use_agg()
    one = [r for r in rows if r["ranks"] == 1]
    N = np.array([r["N_s"] for r in one], float)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for key, label in (("init", "initial state"), ("rhs", "one RHS"), ("step", "one step"),
                       ("setup", "set-up")):
        y = np.array([r[key] for r in one], float)
        ok = np.isfinite(y) & (y > 0)
        if ok.sum() < 2:
            continue
        k = np.polyfit(np.log(N[ok][-3:]), np.log(y[ok][-3:]), 1)[0]
        line, = ax.loglog(N[ok], y[ok], "o-", label=f"{label} (~$N_s^{{{k:.2f}}}$, last 3)")
        base = BASELINE_20x10x10[1].get(key)
        if base is not None:
            ax.loglog([4000], [base], "x", ms=10, mew=2, color=line.get_color())
    ax.plot([], [], "kx", ms=8, mew=2, label="baseline (main at 750bab4, 20x10x10)")
    ax.set_xlabel("$N_s$ (orbitals)")
    ax.set_ylabel("wall time (s), 1 rank")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title("open valves 12x4 ... 20x10x10, $N_p$ = 30", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
