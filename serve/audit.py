"""The audit log: who expanded what, as Parquet files under the run directory (``audit/``).

One row per audience answered (``POST /v1/audiences/expand``, ``GET /v1/audiences/{id}``): the
time, the request id, the key's name, the route, the expansion method, the batch seed list's id
or the SHA-256 of the request's seed ids (sorted, distinct, joined by newlines: the same list
always gives the same digest, and the ids themselves are not kept), how many seeds were given and
known, and the audience size asked and returned.

Recording a row is an append to a list in memory. The rows are written by a background task
every ``flush_seconds`` or as soon as ``flush_rows`` wait, and once more when the replica shuts
down; each write is a new file named by the time, this writer's id (the Serve replica) and a
sequence number, so replicas never write the same object, and a file appears whole or not at
all (a local file is written under a hidden name first; an object store's put is atomic).
Reading the log back: ``pyarrow.parquet.read_table("<run_dir>/audit")``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from reco.errors import ConfigError
from reco.storage import locate

log = logging.getLogger("serve")

SCHEMA = pa.schema(
    [
        ("time", pa.timestamp("ms", tz="UTC")),
        ("request_id", pa.string()),
        ("key_name", pa.string()),
        ("route", pa.string()),
        ("method", pa.string()),
        ("seed_list_id", pa.string()),
        ("seed_ids_sha256", pa.string()),
        ("seeds", pa.int64()),
        ("seeds_known", pa.int64()),
        ("audience_size_asked", pa.int64()),
        ("audience_size_returned", pa.int64()),
    ]
)
MAX_PENDING = 1_000_000  # rows kept while the audit directory cannot be written; the oldest go first


def distinct_ids(seed_ids: Iterable[str]) -> list[str]:
    """The seed ids as the expander counts them: stripped, empty ones dropped, first occurrence kept."""
    return list(dict.fromkeys(s for s in (str(x).strip() for x in seed_ids) if s))


def seed_digest(seed_ids: Iterable[str]) -> str:
    """SHA-256 of the sorted distinct seed ids joined by newlines: one digest per seed list."""
    return _digest(distinct_ids(seed_ids))


def _digest(distinct: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(distinct)).encode()).hexdigest()


def writer_id() -> str:
    """This process's name in file names: the Serve replica's id, else host and pid; plus a random
    suffix, so two writers never share a name."""
    try:
        from ray import serve

        base = serve.get_replica_context().replica_id.unique_id
    except Exception:  # outside a Serve replica (plain uvicorn, tests)
        base = f"{socket.gethostname()}-{os.getpid()}"
    return f"{base}-{uuid.uuid4().hex[:6]}"


class AuditLog:
    """Rows in memory, written as one Parquet file per flush under ``uri``."""

    def __init__(
        self, uri: str, *, flush_rows: int = 1_000, flush_seconds: float = 5.0, writer: str | None = None
    ) -> None:
        self.uri = uri.rstrip("/")
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self.writer = writer or writer_id()
        self._rows: list[tuple] = []
        self._lock = threading.Lock()  # the rows (routes may run in threads)
        self._write_lock = threading.Lock()  # one write at a time, the last one included
        self._seq = 0
        self._full: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._where: tuple[pafs.FileSystem, str] | None = None

    # -- recording ---------------------------------------------------------------------------
    def record(
        self,
        *,
        request_id: str,
        key_name: str,
        route: str,
        audience_size_asked: int,
        audience_size_returned: int,
        seed_ids: list[str] | None = None,
        seeds_known: int | None = None,
        seed_list_id: str | None = None,
        method: str | None = None,
    ) -> None:
        """One answered audience request (cheap: no I/O)."""
        distinct = distinct_ids(seed_ids) if seed_ids is not None else None
        row = (
            dt.datetime.now(dt.UTC),
            request_id,
            key_name,
            route,
            method,
            seed_list_id,
            None if distinct is None else _digest(distinct),
            None if distinct is None else len(distinct),
            seeds_known,
            audience_size_asked,
            audience_size_returned,
        )
        with self._lock:
            self._rows.append(row)
            full = len(self._rows) >= self.flush_rows
        if full and self._full is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._full.set)

    def pending(self) -> int:
        with self._lock:
            return len(self._rows)

    # -- writing -----------------------------------------------------------------------------
    def open(self) -> None:
        """Create the audit directory: a one-line ConfigError if it cannot be (checked at start,
        not at the first flush)."""
        loc = locate(self.uri, "audit directory")
        try:
            loc.fs.create_dir(loc.path, recursive=True)
        except OSError as e:
            raise ConfigError(f"audit directory {self.uri} cannot be created: {str(e).splitlines()[0]}") from None
        self._where = (loc.fs, loc.path.rstrip("/"))

    def flush(self) -> str | None:
        """Write the waiting rows as one new file; its path, or None when there was nothing to
        write or the write failed (the rows are kept for the next flush and the error logged)."""
        with self._write_lock:
            with self._lock:
                rows, self._rows = self._rows, []
            if not rows:
                return None
            try:
                return self._write(rows)
            except Exception as e:  # the storage is down: keep the rows, say so, try again later
                log.error("audit log: cannot write %d row(s) to %s: %s", len(rows), self.uri, str(e).splitlines()[0])
                with self._lock:
                    self._rows = (rows + self._rows)[-MAX_PENDING:]
                return None

    def _write(self, rows: list[tuple]) -> str:
        if self._where is None:
            self.open()
        fs, root = self._where
        columns = list(zip(*rows))
        table = pa.table([pa.array(c, type=f.type) for c, f in zip(columns, SCHEMA)], schema=SCHEMA)
        self._seq += 1
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{stamp}-{self.writer}-{self._seq:06d}.parquet"
        final = f"{root}/{name}"
        if isinstance(fs, pafs.LocalFileSystem):  # readers skip hidden files: never a half-written one
            tmp = f"{root}/.{name}.tmp"
            pq.write_table(table, tmp, filesystem=fs)
            fs.move(tmp, final)
        else:
            pq.write_table(table, final, filesystem=fs)
        return final

    # -- the background task -----------------------------------------------------------------
    async def run(self) -> None:
        """Flush every ``flush_seconds``, or sooner when ``flush_rows`` wait; until cancelled."""
        self._loop, self._full = asyncio.get_running_loop(), asyncio.Event()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self.flush_seconds)
            self._full.clear()
            if self.pending():
                await asyncio.to_thread(self.flush)

    @contextlib.asynccontextmanager
    async def running(self):
        """The directory opened, the task running; on exit the task stopped and the last rows written."""
        self.open()
        task = asyncio.create_task(self.run(), name="audit-log")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            t0 = time.perf_counter()
            written = await asyncio.to_thread(self.flush)
            if written:
                log.info("audit log: last rows written to %s in %.0f ms", written, (time.perf_counter() - t0) * 1000)
