#!/usr/bin/env python
"""Fig. 18 of paper 004 (Appendix D): spin fluctuations and the instantaneous spectrum.

The isolated 1D valve of Sec. III A 3 (N = 20, N_S = 5, N_NM = 10, J_ex = -1, K = 0, PL along
+x, FL along +z, half filling) is evolved for J_sd = 0.45 and 3.5 up to t = 1000 (RK 3/8,
dt = 0.05; energy drift 7e-8 and 6e-6, 16x smaller than at dt = 0.1 as for a 4th-order
scheme).  At J_sd = 3.5 the motion is sensitive: runs with dt = 0.1 and 0.05 agree in S_1 to
1e-3 up to t ~ 150 and to 1e-2 up to t ~ 590, later only statistically.

H(S(t)) is diagonalised at every stored time (every 0.5): (a) S_1^x(t) of the first PL spin,
(b) Delta-epsilon(t) between the two highest occupied levels, (c) the gap eps_{n_e} -
eps_{n_e-1} at half filling (HOMO-LUMO), its t = 0 value dotted.

    python scripts/fig18_trajectory_spectrum.py [--quick] [--outdir DIR] [--overwrite]
                                                [--plot-only] [--jsd 0.45 3.5 5] [--dt 0.05]
    mpirun -n 2 python scripts/fig18_trajectory_spectrum.py     # one run per rank

Writes DIR/fig18_run_Jsd<J>.h5 (the full runs, see ``qcspin plot``), DIR/fig18.h5 (time,
S_1, Delta-epsilon, gap, energy drift per J_sd) and DIR/fig18.png.  --quick: t_end = 50.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from analysis.figscript import figure_main  # noqa: E402
from analysis.plots import use_agg  # noqa: E402
from analysis.trajectory_spectrum import trajectory_spectrum  # noqa: E402
from integrators import Simulation  # noqa: E402
from toolkit import DeviceBuilder  # noqa: E402
from toolkit.io import save_table  # noqa: E402
from toolkit.parallel import barrier, round_robin  # noqa: E402
from toolkit.results import load_result  # noqa: E402

# petsc4py only after toolkit, which locates and initialises it
from petsc4py import PETSc  # noqa: E402

N_S, N_NM = 5, 10
COLORS = {0.45: "tab:blue", 3.5: "k", 5.0: "tab:green"}


def valve(J_sd: float, dt: float, t_end: float):
    n = 2 * N_S + N_NM
    b = DeviceBuilder(size=(n,))
    b.add_layer("PL", (0, N_S), J_sd=J_sd, J_ex=-1.0, K=0.0, spin=(1, 0, 0))
    b.add_layer("SL", (N_S, N_S + N_NM))
    b.add_layer("FL", (n - N_S, n), J_sd=J_sd, J_ex=-1.0, K=0.0, spin=(0, 0, 1))
    b.set("time", dt=dt, t_end=t_end, output_every=max(1, int(round(0.5 / dt))))
    b.set("output", spin_density=False)
    return b.finalized()


def run_file(outdir: str, J: float) -> str:
    return os.path.join(outdir, f"fig18_run_Jsd{J:g}.h5")


def simulate(outdir: str, jsd, dt: float, t_end: float, overwrite: bool, comm) -> None:
    """One run per rank (COMM_SELF): tiny systems, independent tasks."""
    for i in round_robin(len(jsd), comm):
        t0 = time.perf_counter()
        sim = Simulation(valve(jsd[i], dt, t_end), PETSc.COMM_SELF)
        s = sim.run(run_file(outdir, jsd[i]), overwrite=overwrite, progress=False,
                    handle_signals=False)
        sim.destroy()
        print(f"  J_sd = {jsd[i]:g}: {s['steps']} steps to t = {s['time']:g} in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
    barrier(comm)


def existing(path: str, args) -> list[str]:
    return [f for f in [path] + [run_file(args.outdir, J) for J in args.jsd] if os.path.exists(f)]


def compute(path: str, args, comm) -> None:
    outdir, jsd, dt, overwrite = args.outdir, args.jsd, args.dt, args.overwrite
    t_end = args.t_end or (50.0 if args.quick else 1000.0)
    simulate(outdir, jsd, dt, t_end, overwrite, comm)
    data = {}
    for J in jsd:
        tr = trajectory_spectrum(run_file(outdir, J), comm=comm)
        run = load_result(run_file(outdir, J))
        S1, E = run["spins", :, 0, :], run["energy/total"]
        g = f"J_sd={J:g}"
        data.update({f"{g}/time": (tr.time, tr.time_unit, "time"),
                     f"{g}/S1": (S1, "hbar", "first PL spin S_1(t)"),
                     f"{g}/splitting": (tr.splitting, tr.energy_unit, "Delta-epsilon(t)"),
                     f"{g}/gap": (tr.gap, tr.energy_unit, "HOMO-LUMO gap of H(S(t))"),
                     f"{g}/energy_drift": (E - E[0], tr.energy_unit, "E_total(t) - E_total(0)")})
        if comm.getRank() == 0:
            print(f"  J_sd = {J:g}: max |E(t) - E(0)| = {np.abs(E - E[0]).max():.2e}, "
                  f"Delta-eps in [{tr.splitting.min():.3f}, {tr.splitting.max():.3f}], "
                  f"gap in [{tr.gap.min():.3f}, {tr.gap.max():.3f}]", flush=True)
    attrs = {"figure": "paper 004 Fig. 18", "N_S": N_S, "N_NM": N_NM, "J_ex": -1.0, "K": 0.0,
             "dt": dt, "t_end": t_end, "J_sd": list(map(float, jsd)),
             "spins0": "PL +x, FL +z", "filling": "half (20 electrons)", "integrator": "RK 3/8"}
    save_table(path, data, attrs, kind="figure", comm=comm, overwrite=overwrite)


def plot(path: str, png: str) -> None:
    plt = use_agg()
    fig, ax = plt.subplots(3, 1, figsize=(9, 8.5), sharex=True, layout="constrained")
    r = load_result(path)
    keys = sorted({n.split("/")[0] for n in r.names if "/" in n},
                  key=lambda k: float(k.split("=")[1]))
    for key in keys:
        J = float(key.split("=")[1])
        t, c = r[f"{key}/time"], COLORS.get(J, None)
        lab = f"$J_{{sd}}$ = {J:g}"
        gap = r[f"{key}/gap"]
        ax[0].plot(t, r[f"{key}/S1", :, 0], color=c, lw=0.8, label=lab)
        ax[1].plot(t, r[f"{key}/splitting"], color=c, lw=0.8, label=lab)
        ax[2].plot(t, gap, color=c, lw=0.8, label=lab)
        ax[2].axhline(gap[0], color=c, lw=0.9, ls=":")
    drift = {k: np.abs(r[f"{k}/energy_drift"]).max() for k in sorted(keys)}
    ax[0].set_ylabel(r"$S_1^x$")
    ax[0].set_title("(a) first spin of the pinned layer", fontsize=9)
    ax[1].set_ylabel(r"$\Delta\varepsilon(t)$")
    ax[1].set_title(r"(b) splitting of the two highest occupied levels of $H(S(t))$", fontsize=9)
    ax[2].set_ylabel("gap")
    ax[2].set_title(r"(c) gap $\varepsilon_{20} - \varepsilon_{19}$ at half filling "
                    r"(dotted: $t = 0$)", fontsize=9)
    ax[2].set_xlabel(r"$t$ [$\hbar/\gamma$]")
    ax[0].legend(fontsize=8, loc="lower left")
    fig.suptitle("N = 20, $N_S$ = 5, $J_{ex}$ = -1, K = 0; max |E(t) - E(0)|: " + ", ".join(
        f"{k.split('=')[1]}: {v:.1e}" for k, v in drift.items()), fontsize=10)
    fig.savefig(png, dpi=130)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(figure_main("fig18", compute, plot, doc=__doc__, clashes=existing,
                         quick_help="t_end = 50 (smoke test)",
                         extra_args={"--jsd": dict(type=float, nargs="+", default=[0.45, 3.5],
                                                   help="J_sd values"),
                                     "--dt": dict(type=float, default=0.05,
                                                  help="time step [hbar/gamma]"),
                                     "--t-end": dict(type=float, default=None,
                                                     help="final time (default 1000)")}))
