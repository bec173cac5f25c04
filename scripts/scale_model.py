#!/usr/bin/env python
"""Memory and communication per rank of an open 3D junction on many ranks: the model behind
the README's scaling section, from the data layout of qcspin (no run).

A junction of Lx x Ly x Lz sites, N_s = 2 Lx Ly Lz orbitals, wide-band leads on both x faces
(n_l = 2 Ly Lz interface orbitals each) with N_p Padé poles: the state is rho (N_s x N_s) and
two lead blocks (N_s x N_p n_l), rows distributed over P ranks in contiguous ranges of sites
(slabs along x, ``toolkit.parallel.SiteDistribution``).  Per rank and right-hand side:

- state: 16 (N_s/P)(N_s + C) bytes, C = 2 N_p n_l lead columns; the run's peak is ~5 of it
  (measured: 5.1 on the 20 x 10 x 10 valve, 1 rank; ``toolkit.memory``);
- halo: H rho and H Pi need the rows of the neighbouring sites: one plane of 2 Ly Lz rows on
  either side of the slab, all N_s + C columns (``toolkit.parallel.RowHalo``, point to point):
  16 x 4 Ly Lz (N_s + C) bytes received, as much sent, into receive and send buffers that are
  kept (2 x the received bytes of memory);
- rho H: none (the local rows times the replicated H in diagonal form, ~9 N_s entries);
- lead matrices: each lead's interface rows live on one rank (the first or last slab), which
  receives its N_s x n_l matrix C_l (16 N_s n_l bytes), the others send their rows of it;
- spins: all 3 n_spins values to every rank (small).

The slab decomposition needs at least a few planes per rank: with fewer sites per rank than
one plane the halo is larger than the rank's own rows.  For P = 1000 either the junction is
long (Lx >= P) or the rows must be distributed in blocks of sites (not implemented).

    .venv/bin/python scripts/scale_model.py [--ranks 1,2,16,128,1000] [--memory-gb 4]
                                            [--n-poles 30]
"""
from __future__ import annotations

import argparse
import sys

BASE = 0.15e9       # interpreter, NumPy, PETSc, MPI per rank (bytes)
PEAK_STATES = 5.2   # a run's peak / state per rank (exponential RK4, measured 5.1-5.3)
INDEX_LIMIT = 2**31 - 1


def model(L: tuple[int, int, int], P: int, n_poles: int = 30) -> dict:
    """Bytes per rank and per right-hand side for a junction of L = (Lx, Ly, Lz) on P ranks."""
    Lx, Ly, Lz = L
    N = 2 * Lx * Ly * Lz
    n_l = 2 * Ly * Lz
    C = 2 * n_poles * n_l
    rows = N / P
    state = 16 * rows * (N + C)
    halo_rows = min(2 * 2 * Ly * Lz, N - rows) if P > 1 else 0
    halo = 16 * halo_rows * (N + C)
    gather = 16 * N * n_l if P > 1 else 0.0       # on the two ranks holding the faces
    peak = BASE + PEAK_STATES * state + 2 * halo + gather     # receive + send buffers
    return dict(L=L, P=P, N=N, C=C, entries=N * (N + C), state=state, halo=halo,
                gather=gather, peak=peak, planes_per_rank=Lx / P)


def largest(P: int, mem: float, n_poles: int, shape: str) -> dict:
    """The largest junction of ``shape`` ('cube': L^3; 'long': P x L x L, one plane per
    rank) whose peak per rank fits ``mem`` bytes."""
    best = None
    for L in range(2, 400):
        dims = (L, L, L) if shape == "cube" else (P, L, L)
        m = model(dims, P, n_poles)
        if m["peak"] > mem:
            break
        best = m
    return best or model((2, 2, 2), P, n_poles)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ranks", default="1,2,16,128,1000")
    p.add_argument("--memory-gb", type=float, default=4.0)
    p.add_argument("--n-poles", type=int, default=30)
    a = p.parse_args(argv)
    ranks = [int(r) for r in a.ranks.split(",")]
    mem = a.memory_gb * 1e9
    gb = 1e9
    print(f"# per rank: state, halo received per RHS, lead matrix gathered per RHS (face "
          f"ranks), estimated peak; N_p = {a.n_poles}, peak = {PEAK_STATES:g} x state + halo "
          f"+ gather + {BASE / gb:g} GB")
    print(f"{'junction':>12} {'N_s':>7} {'ranks':>6} {'planes/rank':>11} {'state GB':>9} "
          f"{'halo GB':>8} {'gather GB':>9} {'peak GB':>8} {'entries':>9} {'32-bit ok':>9}")
    for L in ((20, 10, 10), (40, 20, 20), (100, 20, 20), (1000, 12, 12)):
        for P in ranks:
            m = model(L, P, a.n_poles)
            print(f"{'x'.join(map(str, L)):>12} {m['N']:>7} {P:>6} {m['planes_per_rank']:>11.2f} "
                  f"{m['state'] / gb:>9.3f} {m['halo'] / gb:>8.3f} {m['gather'] / gb:>9.3f} "
                  f"{m['peak'] / gb:>8.2f} {m['entries']:>9.2e} "
                  f"{'yes' if m['entries'] <= INDEX_LIMIT else 'no':>9}")
    print()
    for P in ranks:
        for shape in ("cube", "long"):
            m = largest(P, mem, a.n_poles, shape)
            idx = ("32-bit indices suffice" if m["entries"] <= INDEX_LIMIT
                   else "needs 64-bit indices")
            print(f"largest {shape:>4} junction on {P:>5} ranks of {a.memory_gb:g} GB: "
                  f"{'x'.join(map(str, m['L']))} (N_s = {m['N']}, state {m['state'] * P / gb:.0f} "
                  f"GB in all, peak {m['peak'] / gb:.2f} GB per rank, halo "
                  f"{m['halo'] / gb:.2f} GB per RHS; {m['entries']:.2e} entries: "
                  f"{idx})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
