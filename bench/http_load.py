"""A closed-loop HTTP load generator: N connections, each sending its next request when the last returns.

Closed loop (not open, fixed-rate) on purpose: it measures what the server sustains at a given
concurrency without queueing past it, and it cannot run away on a loaded laptop. Loopback only.
The client is one Python process (asyncio streams on uvloop, requests encoded once), so on two
cores it still competes with the server for CPU; its figures are lower bounds and the floors are
measured the same way.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from itertools import cycle
from typing import Any
from urllib.parse import urlsplit

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
    cpu_ms: dict[str, float] | None = None  # CPU ms per request by process role (bench.cpu_split)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(
    route: str,
    mode: str,
    connections: int,
    seconds: float,
    latencies: list[float],
    errors: int,
    first_error: str | None = None,
) -> LoadResult:
    """Requests per second and latency percentiles (ms) of successful requests."""
    lat = np.asarray(latencies, np.float64) * 1000
    pct = np.percentile(lat, [50, 95, 99]) if len(lat) else [float("nan")] * 3
    return LoadResult(
        route,
        mode,
        connections,
        round(seconds, 2),
        len(lat),
        errors,
        round(len(lat) / seconds, 1),
        *(round(float(p), 2) for p in pct),
        first_error,
    )


Request = tuple[str, str, "dict | None"]  # (method, url, JSON body)


def encode(method: str, url: str, body: dict | None, headers: dict[str, str] | None = None) -> tuple[str, int, bytes]:
    """(host, port, the whole HTTP/1.1 request as bytes): encoded once, sent many times."""
    parts = urlsplit(url)
    payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    head = f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {len(payload)}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return parts.hostname or "127.0.0.1", parts.port or 80, (head + "\r\n").encode() + payload


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, keep the connection) of one response, its body read and dropped."""
    status_line = await reader.readuntil(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    length, chunked, close = 0, False, False
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = b"close" in value.lower()
    if chunked:
        while (size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)) > 0:
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
    elif length:
        await reader.readexactly(length)
    return status, not close


async def _closed_loop(
    reqs: list[Request], connections: int, seconds: float, timeout_s: float, headers: dict[str, str] | None
) -> tuple[list[float], int, str | None, float]:
    """Each connection: write a pre-encoded request, read the response, repeat (keep-alive).

    A bare asyncio client rather than aiohttp: it spends a fraction of aiohttp's CPU per request,
    and on two cores every cycle the client saves is one the server under test gets.
    """
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    encoded = [encode(*r, headers=headers) for r in reqs]
    start = time.perf_counter()
    deadline = start + seconds

    async def worker(offset: int) -> None:
        nonlocal errors, first_error
        conn = None
        i = offset
        while time.perf_counter() < deadline:
            host, port, raw = encoded[i % len(encoded)]
            i += 1
            t = time.perf_counter()
            try:
                async with asyncio.timeout(timeout_s):
                    if conn is None:
                        conn = await asyncio.open_connection(host, port)
                    conn[1].write(raw)
                    status, keep = await read_response(conn[0])
                ok = status == 200
                if not ok and first_error is None:
                    first_error = f"HTTP {status}"
                if not keep:
                    conn[1].close()
                    conn = None
            except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
                ok = False
                first_error = first_error or f"{type(e).__name__}: {e}"
                if conn is not None:
                    conn[1].close()
                conn = None
            if ok:
                latencies.append(time.perf_counter() - t)
            else:
                errors += 1
        if conn is not None:
            conn[1].close()

    await asyncio.gather(*(worker(c * 7) for c in range(connections)))
    return latencies, errors, first_error, time.perf_counter() - start


def _loop_factory():
    """uvloop's event loop where installed (uvicorn[standard] brings it): cheaper per request."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def drive(
    reqs: list[Request],
    *,
    route: str,
    mode: str,
    connections: int,
    seconds: float,
    timeout_s: float = 30.0,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """Send ``reqs`` (cycled, each with ``headers``) from ``connections`` concurrent clients for ``seconds``."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        lat, errors, first_error, took = runner.run(_closed_loop(reqs, connections, seconds, timeout_s, headers))
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
