"""The in-process expansion adapter (the compact layout's ingress expands itself), without Ray running.

An expansion in the ingress must not block the replica's event loop (it would stall every
/v1/rank request on that replica for tens of milliseconds) and must not run beside another
expansion of the same replica (threads taking turns at the GIL serve fewer a second).
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from serve.adapters import LocalExpansion, for_ingress
from serve.settings import ServeSettings


class FakeExpansion:
    """Blocks like numpy work does; records how many expansions overlap and on which thread."""

    def __init__(self) -> None:
        self.active = 0
        self.most_at_once = 0
        self.threads: set[int] = set()
        self._lock = threading.Lock()

    def expand(self, seed_ids: list[str], k: int, method: str) -> dict:
        with self._lock:
            self.active += 1
            self.most_at_once = max(self.most_at_once, self.active)
        self.threads.add(threading.get_ident())
        time.sleep(0.05)
        with self._lock:
            self.active -= 1
        return {"seeds": seed_ids, "k": k, "method": method}

    def audience_page(self, seed_list_id: str, offset: int, limit: int) -> dict:
        return {"total": 1, "rows": [{"seed_list_id": seed_list_id, "offset": offset, "limit": limit}]}


def _backend(expansion: FakeExpansion) -> LocalExpansion:
    return LocalExpansion(expansion)


def test_local_expansions_run_one_at_a_time_off_the_event_loop():
    fake = FakeExpansion()
    backend = _backend(fake)
    ticks_during_an_expansion = 0

    async def ticker(stop: asyncio.Event) -> None:
        nonlocal ticks_during_an_expansion
        while not stop.is_set():
            ticks_during_an_expansion += fake.active > 0
            await asyncio.sleep(0.005)

    async def main() -> tuple[list[dict], int]:
        stop = asyncio.Event()
        tick = asyncio.create_task(ticker(stop))
        results = await asyncio.gather(*(backend.expand([f"u{i}"], 10 + i, "blend") for i in range(4)))
        stop.set()
        await tick
        return results, threading.get_ident()

    results, loop_thread = asyncio.run(main())
    assert [r["k"] for r in results] == [10, 11, 12, 13] and results[2]["seeds"] == ["u2"]
    assert fake.most_at_once == 1
    assert loop_thread not in fake.threads
    assert ticks_during_an_expansion > 0  # the loop ran other work while expansions computed


def test_audience_pages_are_read_locally():
    page = asyncio.run(_backend(FakeExpansion()).audience_page("list-a", 5, 2))
    assert page["rows"] == [{"seed_list_id": "list-a", "offset": 5, "limit": 2}]


def test_the_composed_layout_needs_every_handle():
    with pytest.raises(ValueError, match="handles"):
        for_ingress(ServeSettings(layout="composed"), None, None, None)
