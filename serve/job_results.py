"""A succeeded audience job's results: its audience files, read in cursor pages or streamed whole.

The files are immutable once the job has succeeded, so a cursor is just (file, row) plus a
version (a digest of the files' checksums): a cursor from other results is refused. Pages and
downloads read a row group at a time, never a whole result into memory.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from reco.errors import DataError

RESULT_COLUMNS = ["seed_list_id", "user_id", "score", "rank", "source"]


@dataclass(frozen=True)
class Cursor:
    """A position in a job's results: the n-th file, the row in it, and which results it belongs to."""

    file: int
    row: int
    version: str

    def encode(self) -> str:
        raw = json.dumps({"f": self.file, "r": self.row, "v": self.version}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, version: str) -> Cursor:
        try:
            raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            cur = cls(int(raw["f"]), int(raw["r"]), str(raw["v"]))
        except (ValueError, KeyError, TypeError):
            raise DataError("cursor: not a cursor this API returned") from None
        if cur.version != version or cur.file < 0 or cur.row < 0:
            raise DataError("cursor: it belongs to other results (pass next_cursor from this job's pages)")
        return cur


@dataclass(frozen=True)
class ResultFiles:
    """A succeeded job's audience files, checked once against their manifest: paths, row groups, version."""

    fs: pafs.FileSystem
    paths: list[str]
    groups: list[list[int]]  # rows of each row group, per file
    total: int
    version: str


def read_page(files: ResultFiles, cursor: str | None, limit: int) -> dict:
    """``limit`` rows from ``cursor`` (None: the first), the total, and the next page's cursor (None: no more)."""
    cur = Cursor.decode(cursor, files.version) if cursor else Cursor(0, 0, files.version)
    n_files = len(files.paths)
    parts, f, row, want = [], cur.file, cur.row, limit
    while f < n_files and want > 0:
        for table in _read_from(files, f, row, want):
            parts.append(table)
            want -= table.num_rows
            row += table.num_rows
        if row >= sum(files.groups[f]):
            f, row = f + 1, 0
    while f < n_files and row >= sum(files.groups[f]):  # the end of a file is the start of the next
        f, row = f + 1, 0
    return {
        "total": files.total,
        "rows": pa.concat_tables(parts).to_pylist() if parts else [],
        "next_cursor": Cursor(f, row, files.version).encode() if f < n_files else None,
    }


def _read_from(files: ResultFiles, f: int, row: int, limit: int) -> Iterator[pa.Table]:
    """Up to ``limit`` rows of file ``f`` from ``row``, a row group at a time."""
    pf = pq.ParquetFile(files.fs.open_input_file(files.paths[f]))
    start = 0
    for g, n in enumerate(files.groups[f]):
        if limit <= 0:
            return
        if row >= start + n:
            start += n
            continue
        table = pf.read_row_group(g, columns=RESULT_COLUMNS).slice(row - start, limit)
        yield table
        limit -= table.num_rows
        row += table.num_rows
        start += n


def stream(files: ResultFiles, fmt: Literal["parquet", "csv"]) -> Iterator[bytes]:
    """Every result row as one Parquet or CSV file, produced a row group at a time."""
    sink = _Chunks()
    writer = None
    for path in files.paths:
        pf = pq.ParquetFile(files.fs.open_input_file(path))
        for g in range(pf.num_row_groups):
            for batch in pf.read_row_group(g, columns=RESULT_COLUMNS).to_batches(max_chunksize=65_536):
                if writer is None:
                    writer = _writer(sink, batch.schema, fmt)
                writer.write_batch(batch)
                if chunk := sink.take():
                    yield chunk
    if writer is None:  # no rows at all: still a file with the columns
        writer = _writer(sink, pa.schema([(c, pa.string()) for c in RESULT_COLUMNS]), fmt)
    writer.close()
    if chunk := sink.take():
        yield chunk


def _writer(sink: _Chunks, schema: pa.Schema, fmt: Literal["parquet", "csv"]):
    return pq.ParquetWriter(sink, schema) if fmt == "parquet" else pacsv.CSVWriter(sink, schema)


class _Chunks:
    """A write-only file the Parquet and CSV writers fill and the download drains after each batch."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.pos = 0
        self.closed = False

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        self.pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self.pos

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out
