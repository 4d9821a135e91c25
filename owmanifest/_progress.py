"""A small, dependency-free progress bar on stderr (only drawn on a terminal)."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

__all__ = ["ProgressBar", "human_bytes"]


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class ProgressBar:
    """``label [#####.....] 42% 1.2 GiB/2.9 GiB 512.0 MiB/s``, redrawn at most 10 times a second.

    Thread-safe :meth:`advance`. Draws nothing unless ``stream`` is a terminal (or ``force``).
    """

    def __init__(
        self, label: str, total: int, *, stream: TextIO | None = None, enabled: bool | None = None
    ) -> None:
        self.label = label
        self.total = max(total, 0)
        self.done = 0
        self.extra = ""
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._last = 0.0

    def advance(self, n: int) -> None:
        with self._lock:
            self.done += n
            now = time.monotonic()
            if self.enabled and now - self._last >= 0.1:
                self._last = now
                self._draw(now)

    def set_extra(self, text: str) -> None:
        self.extra = text

    def _draw(self, now: float) -> None:
        width = 30
        frac = self.done / self.total if self.total else 1.0
        frac = min(frac, 1.0)
        filled = int(frac * width)
        rate = self.done / max(now - self._start, 1e-6)
        line = (
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {frac * 100:3.0f}% "
            f"{human_bytes(self.done)}/{human_bytes(self.total)} {human_bytes(rate)}/s {self.extra}"
        )
        self.stream.write(line[:200])
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            with self._lock:
                self._draw(time.monotonic())
                self.stream.write("\n")
                self.stream.flush()
