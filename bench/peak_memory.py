"""Peak resident memory of this process and every process it started (the local Ray instance).

A background thread samples the summed RSS of the process tree; ``PeakRSS`` gives the peak over
a ``with`` block, so a benchmark can report memory per step of a Ray pipeline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil


def tree_rss_bytes(root: psutil.Process | None = None) -> int:
    root = root or psutil.Process()
    total = 0
    for p in [root, *root.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


class PeakRSS:
    """``with PeakRSS() as m: ...; m.peak_mb`` (sampled every ``interval`` seconds)."""

    def __init__(self, interval: float = 0.25):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakRSS:
        self.peak = tree_rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss_bytes())

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20


def measure(name: str, fn: Callable[..., Any], *args: Any, logger: logging.Logger | None = None) -> tuple[Any, dict]:
    """``fn(*args)``'s result and its figures: wall seconds and peak RSS of the process tree."""
    t = time.perf_counter()
    with PeakRSS() as mem:
        out = fn(*args)
    fig = {"seconds": round(time.perf_counter() - t, 2), "peak_rss_mb": round(mem.peak_mb, 1)}
    (logger or logging.getLogger("bench")).info("%s: %.1fs, peak RSS %.0f MB", name, fig["seconds"], fig["peak_rss_mb"])
    return out, fig
