"""Analysis: SLEPc spectra, macrospin fits, RKKY reference, plots and result readers."""
from __future__ import annotations

import toolkit  # noqa: F401
