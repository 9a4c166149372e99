"""A closed-loop HTTP load generator: N connections, each sending its next request when the last returns.

Closed loop (not open, fixed-rate) on purpose: it measures what the server sustains at a given
concurrency without queueing past it, and it cannot run away on a loaded laptop. Loopback only.
The client is one Python process (aiohttp), so at high concurrency on two cores it competes with
the server for CPU; its figures are lower bounds and the floors are measured the same way.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from itertools import cycle
from typing import Any, Callable

import aiohttp
import numpy as np


@dataclass
class LoadResult:
    route: str
    mode: str
    connections: int
    seconds: float
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    first_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(route: str, mode: str, connections: int, seconds: float, latencies: list[float], errors: int,
              first_error: str | None = None) -> LoadResult:
    """Requests per second and latency percentiles (ms) of successful requests."""
    lat = np.asarray(latencies, np.float64) * 1000
    pct = np.percentile(lat, [50, 95, 99]) if len(lat) else [float("nan")] * 3
    return LoadResult(route, mode, connections, round(seconds, 2), len(lat), errors, round(len(lat) / seconds, 1),
                      *(round(float(p), 2) for p in pct), first_error)


Request = tuple[str, str, "dict | None"]  # (method, url, JSON body)


async def _closed_loop(reqs: list[Request], connections: int, seconds: float, timeout_s: float) -> tuple[list[float], int, str | None, float]:
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    payloads = cycle(reqs)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections), timeout=timeout) as session:
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            nonlocal errors, first_error
            while time.perf_counter() < deadline:
                method, url, body = next(payloads)
                t = time.perf_counter()
                try:
                    async with session.request(method, url, json=body) as resp:
                        await resp.read()
                        ok = resp.status == 200
                        if not ok and first_error is None:
                            first_error = f"HTTP {resp.status}"
                except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                    ok = False
                    first_error = first_error or f"{type(e).__name__}: {e}"
                if ok:
                    latencies.append(time.perf_counter() - t)
                else:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        return latencies, errors, first_error, time.perf_counter() - start


def drive(reqs: list[Request], *, route: str, mode: str, connections: int, seconds: float,
          timeout_s: float = 30.0) -> LoadResult:
    """Send ``reqs`` (cycled) from ``connections`` concurrent clients for ``seconds``."""
    lat, errors, first_error, took = asyncio.run(_closed_loop(reqs, connections, seconds, timeout_s))
    return summarise(route, mode, connections, took, lat, errors, first_error)


def time_calls(fn: Callable[[Any], Any], inputs: list[Any], *, route: str, seconds: float) -> LoadResult:
    """The in-process floor: call ``fn`` back to back for ``seconds`` (one caller, no HTTP)."""
    latencies: list[float] = []
    start = time.perf_counter()
    for x in cycle(inputs):
        if time.perf_counter() - start >= seconds:
            break
        t = time.perf_counter()
        fn(x)
        latencies.append(time.perf_counter() - t)
    return summarise(route, "in-process", 1, time.perf_counter() - start, latencies, 0)
