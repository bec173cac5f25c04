"""Unit systems.  Everything inside qcspin is natural: energy unit E0, hbar = 1, time unit hbar/E0.

``natural``: E0 = hopping (paper 004): energies in units of gamma, times in 1/gamma.
``eV-fs``:   E0 = 1 eV (paper 000): energies in eV, times in fs, hbar = 0.6582119569 eV fs.
Only times change between the two (energies, fields and couplings are in E0 either way).
"""
from __future__ import annotations

from dataclasses import dataclass

HBAR_EV_FS = 0.6582119569  # eV fs (CODATA 2018)


@dataclass(frozen=True)
class Units:
    name: str
    energy: str
    time: str
    hbar: float  # in (energy unit) x (time unit)

    def time_to_internal(self, t: float) -> float:
        return t / self.hbar

    def time_from_internal(self, t):
        return t * self.hbar


UNITS = {
    "natural": Units("natural", "hopping", "hbar/hopping", 1.0),
    "eV-fs": Units("eV-fs", "eV", "fs", HBAR_EV_FS),
}


def get_units(name: str) -> Units:
    try:
        return UNITS[name]
    except KeyError:
        raise ValueError(f"units = {name!r} is not allowed: "
                         f"expected one of {list(UNITS)}") from None
