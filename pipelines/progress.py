"""Rate-limited progress lines from pipeline workers: inputs done, faces, rate, ETA.

At most one line per `interval` seconds per worker process, on the 'forgery.progress'
logger: readable on a terminal, and a handful of lines per worker on remote runners.
"""
from __future__ import annotations

import logging
import time

LOGGER = logging.getLogger("forgery.progress")


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


class Progress:
    """total: inputs in the whole run; workers: worker processes sharing them (the ETA
    assumes an even share)."""

    def __init__(self, total: int, workers: int = 1, interval: float = 15.0):
        self.total, self.workers, self.interval = total, max(1, workers), interval
        self.inputs = self.faces = 0
        self.start = self._last = time.monotonic()

    def update(self, inputs: int = 0, faces: int = 0) -> None:
        self.inputs += inputs
        self.faces += faces
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            LOGGER.info(self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.start, 1e-9)
        share = self.total / self.workers
        eta = (share - self.inputs) * elapsed / self.inputs if self.inputs else float("nan")
        who = "" if self.workers == 1 else " (this worker)"
        return (f"progress{who}: {self.inputs}/{share:.0f} inputs, {self.faces} faces, "
                f"{self.faces / elapsed:.1f} faces/s, ETA {_duration(eta) if eta == eta else '?'}")
