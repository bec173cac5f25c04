"""Level analysis of a spectrum of H(S) (paper 004): the splitting of the two highest occupied
levels, the HOMO-LUMO gap, the broadened density of states and the Fermi level at a filling.

    >>> sw = spectrum_vs_jsd(device, np.linspace(0, 10, 101), "parallel")   # analysis.spectrum
    >>> splitting(sw.eigenvalues, device.n_sites)    # Delta-epsilon at half filling (Fig. 4b)
    >>> dos(sw.eigenvalues, E, 0.05)                 # DOS per site (Fig. 4c)

Every function takes eigenvalues (..., n) ascending [E0] (the energy unit of the device;
leading axes, e.g. J_sd or time, are kept) and is serial and rank-agnostic.  Half filling means
n_sites electrons (the lowest n_sites of the 2 n_sites spin orbitals).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from toolkit.schema import fail as _fail

if TYPE_CHECKING:
    from analysis.spectrum import Spectrum, SpectrumSweep

__all__ = ["splitting", "gap", "dos", "fermi_level"]


def _level_index_check(eigenvalues, n_electrons: int, lo: int, hi_offset: int,
                       what: str) -> np.ndarray:
    e = np.asarray(eigenvalues, float)
    n = e.shape[-1] if e.ndim else 0
    if isinstance(n_electrons, bool) or not isinstance(n_electrons, (int, np.integer)) \
            or not lo <= n_electrons <= n - hi_offset:
        _fail("n_electrons", n_electrons, f"{what} needs an integer {lo} <= n_electrons <= "
              f"{n - hi_offset} for {n} levels")
    return e


def splitting(eigenvalues, n_electrons: int) -> np.ndarray:
    """Delta-epsilon = eps_{n_e-1} - eps_{n_e-2} [E0]: the two highest occupied levels (Fig. 4b).

    ``eigenvalues`` (..., n) ascending, starting at the lowest level (a complete spectrum or
    its lowest part); leading axes (e.g. J_sd, time) are kept.
    """
    e = _level_index_check(eigenvalues, n_electrons, 2, 0, "splitting")
    return e[..., n_electrons - 1] - e[..., n_electrons - 2]


def gap(eigenvalues, n_electrons: int) -> np.ndarray:
    """HOMO-LUMO gap eps_{n_e} - eps_{n_e-1} [E0] at filling ``n_electrons`` (Fig. 18c)."""
    e = _level_index_check(eigenvalues, n_electrons, 1, 1, "gap")
    return e[..., n_electrons] - e[..., n_electrons - 1]


def dos(eigenvalues, energies, broadening: float, *, n_sites: int | None = None,
        shape: str = "lorentzian") -> np.ndarray:
    """Broadened density of states per site, DOS(E) = (1/n_sites) sum_n delta_eta(E - eps_n).

    Units: states per site per E0.  Each level has weight 1 (one spin orbital), so for a
    complete spectrum (2 n_sites levels) the DOS integrates to 2 over all energies.
    eigenvalues (..., n) [E0]; energies (m,) [E0]; broadening eta > 0 [E0]: the half width of
    the Lorentzian (eta/pi)/((E-eps)^2 + eta^2) or the standard deviation of the Gaussian.
    n_sites defaults to n/2 (complete spectrum).  Returns (..., m).
    """
    e = np.asarray(eigenvalues, float)
    E = np.asarray(energies, float)
    if not (np.isfinite(broadening) and broadening > 0):
        _fail("broadening", broadening, "expected a finite energy > 0")
    if shape not in ("lorentzian", "gaussian"):
        _fail("shape", shape, "expected 'lorentzian' or 'gaussian'")
    if E.ndim != 1:
        _fail("energies", f"array of shape {E.shape}", "expected a 1D array")
    sites: float = e.shape[-1] / 2 if n_sites is None else n_sites
    if not sites > 0:
        _fail("n_sites", sites, "expected a number of sites > 0")
    x = E[:, None] - e[..., None, :]
    if shape == "lorentzian":
        k = (broadening / np.pi) / (x * x + broadening ** 2)
    else:
        k = np.exp(-0.5 * (x / broadening) ** 2) / (np.sqrt(2 * np.pi) * broadening)
    return k.sum(axis=-1) / sites


def fermi_level(res: Spectrum | SpectrumSweep, n_electrons: int | None = None,
                mu_bar: float | None = None) -> tuple[np.ndarray | float | None, str]:
    """The Fermi level that ``qcspin spectrum`` implies, for marking it in a plot, and how it
    was found: with a complete spectrum the middle of the gap, (eps_{n_e-1} + eps_{n_e})/2,
    at filling ``n_electrons`` (default half filling, n_sites; per J_sd for a sweep); for an
    incomplete spectrum at half filling ``mu_bar`` (the band centre of the bipartite lattice);
    otherwise (None, why not).  [E0]"""
    n_e = res.n_sites if n_electrons is None else int(n_electrons)
    w = np.asarray(res.eigenvalues, float)
    n = w.shape[-1]
    if res.complete and 1 <= n_e < n:
        return 0.5 * (w[..., n_e - 1] + w[..., n_e]), (f"$E_F$ (mid-gap, $n_e$ = {n_e})")
    if res.complete and n_e == n:
        return w[..., -1], f"$E_F$ = top level (all {n} levels filled)"
    if n_e == res.n_sites and mu_bar is not None:
        return float(mu_bar), r"$E_F = \bar\mu$ (half filling)"
    return None, (f"E_F not marked: {n} of {2 * res.n_sites} levels at n_e = {n_e}"
                  if not res.complete else f"E_F not marked: n_e = {n_e}")
