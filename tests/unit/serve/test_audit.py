"""The audit log (serve/audit.py) without Ray: rows read back as Parquet, one new file per flush and
writer, flushed by time, by row count and at shutdown, and rows kept when the storage fails."""

from __future__ import annotations

import asyncio
import hashlib
import time

import pyarrow.parquet as pq
import pytest

from reco.errors import ConfigError
from serve.audit import SCHEMA, AuditLog, seed_digest


def _record(audit: AuditLog, n: int, key: str = "acme") -> None:
    for i in range(n):
        audit.record(
            request_id=f"r{i}",
            key_name=key,
            route="/v1/audiences/expand",
            method="blend",
            seed_ids=[" b", "a", "a", "", f"s{i}"],
            seeds_known=2,
            audience_size_asked=100,
            audience_size_returned=90,
        )


def test_the_seed_digest_is_of_the_sorted_distinct_ids():
    want = hashlib.sha256(b"a\nb\nc").hexdigest()
    assert seed_digest(["c", "a", "b"]) == seed_digest([" b ", "a", "c", "a", ""]) == want
    assert seed_digest(["a", "b"]) != want


def test_rows_read_back_as_parquet(tmp_path):
    audit = AuditLog(str(tmp_path / "audit"), writer="w1")
    _record(audit, 3)
    audit.record(
        request_id="p1", key_name="ops", route="/v1/audiences/{seed_list_id}", seed_list_id="list-7",
        audience_size_asked=10, audience_size_returned=4,
    )  # fmt: skip
    path = audit.flush()
    assert path is not None and "-w1-000001.parquet" in path
    table = pq.read_table(str(tmp_path / "audit"))
    assert table.schema.equals(SCHEMA)
    rows = table.to_pylist()
    assert [r["request_id"] for r in rows] == ["r0", "r1", "r2", "p1"]
    assert rows[0]["seed_ids_sha256"] == seed_digest(["a", "b", "s0"]) and rows[0]["seeds"] == 3
    assert rows[0]["key_name"] == "acme" and rows[0]["audience_size_returned"] == 90
    assert rows[3]["seed_list_id"] == "list-7" and rows[3]["seed_ids_sha256"] is None and rows[3]["seeds"] is None
    assert abs(rows[0]["time"].timestamp() - time.time()) < 60
    assert audit.flush() is None  # nothing new, no empty file


def test_each_flush_and_each_writer_makes_its_own_file(tmp_path):
    a, b = AuditLog(str(tmp_path), writer="replica-a"), AuditLog(str(tmp_path), writer="replica-b")
    paths = []
    for _ in range(2):
        for log in (a, b):
            _record(log, 2)
            paths.append(log.flush())
    assert len(set(paths)) == 4 and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.split("/")[-1] for p in paths
    )
    assert pq.read_table(str(tmp_path)).num_rows == 8


def test_the_task_flushes_on_time_on_row_count_and_at_shutdown(tmp_path):
    async def main() -> list[int]:
        seen = []
        audit = AuditLog(str(tmp_path), flush_rows=5, flush_seconds=0.2, writer="w")
        async with audit.running():
            _record(audit, 2)
            await asyncio.sleep(0.6)  # on time
            seen.append(len(list(tmp_path.glob("*.parquet"))))
            audit.flush_seconds = 60
            _record(audit, 5)  # row count: at once, not in a minute
            for _ in range(50):
                await asyncio.sleep(0.05)
                if len(list(tmp_path.glob("*.parquet"))) == 2:
                    break
            seen.append(len(list(tmp_path.glob("*.parquet"))))
            _record(audit, 1)  # only at shutdown
        seen.append(len(list(tmp_path.glob("*.parquet"))))
        return seen

    assert asyncio.run(main()) == [1, 2, 3]
    assert pq.read_table(str(tmp_path)).num_rows == 8


def test_rows_are_kept_while_the_storage_fails(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    audit = AuditLog(str(blocker / "audit"))
    with pytest.raises(ConfigError, match="cannot be created"):
        audit.open()
    _record(audit, 3)
    assert audit.flush() is None and audit.pending() == 3
    blocker.unlink()
    assert audit.flush() is not None and audit.pending() == 0
    assert pq.read_table(str(blocker / "audit")).num_rows == 3


def test_no_half_written_file_is_visible(tmp_path):
    audit = AuditLog(str(tmp_path), writer="w")
    _record(audit, 1)
    audit.flush()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
