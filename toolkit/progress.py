"""A dependency-free progress bar with ETA (rank 0 only, only on a terminal)."""
from __future__ import annotations

import sys
import time


class ProgressBar:
    def __init__(self, total: float, *, enabled: bool = True, label: str = "t", width: int = 30,
                 stream=None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total, self.label, self.width = total, label, width
        self.t0 = time.monotonic()
        self.start_value: float | None = None
        self._last = 0.0

    def update(self, value: float, extra: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self.start_value is None:
            self.start_value = value
        if now - self._last < 0.2 and value < self.total:
            return
        self._last = now
        frac = min(1.0, value / self.total) if self.total > 0 else 1.0
        done = value - self.start_value
        elapsed = now - self.t0
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - value) / rate if rate > 0 else float("nan")
        bar = "#" * int(frac * self.width)
        self.stream.write(f"\r[{bar:<{self.width}}] {100 * frac:5.1f}% {self.label}={value:.4g}"
                          f"/{self.total:.4g}  elapsed {_fmt(elapsed)}  ETA {_fmt(eta)} {extra}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _fmt(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "--:--"
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60:02d}:{s % 60:02d}"
