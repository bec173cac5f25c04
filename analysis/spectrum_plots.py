"""Plots of spectra of H(S) (matplotlib, Agg backend): the levels of a J_sd sweep coloured by
their spin polarization (paper 004, Fig. 2) and the PNG that ``qcspin spectrum --png`` and
``qcspin plot`` draw of a spectrum file.

    >>> plot_sweep(ax, spectrum_vs_jsd(device, jsd, "parallel"))     # on an existing axis
    >>> plot_spectrum(spectrum(device), "spectrum.png", title="valve")

Serial (call on one rank).  Energies in the energy unit E0 of the device.
"""
from __future__ import annotations

import numpy as np

from analysis.levels import fermi_level
from analysis.spectrum import Spectrum, SpectrumSweep

__all__ = ["plot_sweep", "plot_spectrum"]


def plot_sweep(ax, sweep: SpectrumSweep, *, component: int = 2, ylim=None, size: float = 2.0):
    """Scatter the levels of a sweep versus J_sd, coloured by <sigma_component> (red = up)."""
    n = sweep.eigenvalues.shape[1]
    x, y = np.repeat(sweep.jsd, n), sweep.eigenvalues.ravel()
    c = sweep.polarization[..., component].ravel()
    if ylim is not None:
        sel = (y >= ylim[0]) & (y <= ylim[1])
        x, y, c = x[sel], y[sel], c[sel]
        ax.set_ylim(*ylim)
    sc = ax.scatter(x, y, c=c, s=size, cmap="bwr", vmin=-1, vmax=1, lw=0, rasterized=True)
    ax.set_xlabel(r"$J_{sd}$")
    ax.set_ylabel(r"$\varepsilon$")
    return sc


def plot_spectrum(res: Spectrum | SpectrumSweep, png: str, *, title: str = "",
                  n_electrons: int | None = None, mu_bar: float | None = None,
                  energy_unit: str = "") -> str:
    """PNG of a sweep (levels vs J_sd) or of one spectrum (levels vs index), coloured by
    <sigma_z>, with the Fermi level of :func:`analysis.levels.fermi_level` (filling
    ``n_electrons``, default half filling; ``mu_bar`` for incomplete spectra).  Serial (call on
    one rank); returns the path."""
    from analysis.plots import save_figure, use_agg

    plt = use_agg()
    u = f" [{energy_unit}]" if energy_unit else ""
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    EF, how = fermi_level(res, n_electrons, mu_bar)
    if isinstance(res, SpectrumSweep):
        sc = plot_sweep(ax, res, size=4)
        ax.set_xlabel(r"$J_{sd}$" + u)
        if EF is not None:
            ax.plot(res.jsd, np.broadcast_to(EF, res.jsd.shape), "k--", lw=0.9, label=how)
    else:
        sc = ax.scatter(np.arange(len(res.eigenvalues)), res.eigenvalues, s=12, cmap="bwr",
                        c=res.polarization[:, 2], vmin=-1, vmax=1)
        ax.set_xlabel("level index n")
        if EF is not None:
            w = np.asarray(res.eigenvalues, float)
            ef = float(EF) if abs(float(EF)) > 1e-10 * max(1.0, np.abs(w).max()) else 0.0
            ax.axhline(ef, color="k", ls="--", lw=0.9, label=f"{how}: {ef:.6g}")
        if not res.complete:
            ax.set_xlabel(f"index among the {len(res.eigenvalues)} computed levels"
                          + (f" nearest {res.target:g}" if res.target is not None else ""))
    ax.set_ylabel(r"$\varepsilon_n$" + u)
    if EF is not None:
        ax.legend(fontsize=8, loc="upper left")
    else:
        ax.text(0.02, 0.98, how, transform=ax.transAxes, va="top", fontsize=8, color="0.3")
    fig.colorbar(sc, ax=ax, label=r"$\langle\sigma_z\rangle$")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, png)
