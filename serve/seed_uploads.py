"""An uploaded seed-list file (CSV, Parquet or JSON lines) converted batch by batch to the seed lists' Parquet."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from reco.errors import DataError, RecoError, first_line
from reco.expansion.seed_lists import SCHEMA as SEED_SCHEMA
from reco.expansion.seed_lists import id_strings
from reco.storage import Location

Format = Literal["csv", "parquet", "jsonl"]
CONTENT_TYPES: dict[str, Format] = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/parquet": "parquet",
    "application/x-ndjson": "jsonl",
    "application/ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/jsonlines": "jsonl",
}


def upload_format(asked: str | None, content_type: str | None) -> Format:
    """The upload's format: ``?format=`` if given, else its Content-Type; DataError if neither says."""
    if asked:
        return asked  # type: ignore[return-value]  # validated by the route
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in CONTENT_TYPES:
        return CONTENT_TYPES[kind]
    raise DataError(
        f"cannot tell the upload's format from Content-Type {kind or '(none)'!r}: send ?format=csv|parquet|jsonl, "
        "or Content-Type text/csv, application/vnd.apache.parquet or application/x-ndjson"
    )


@dataclass(frozen=True)
class UploadSummary:
    rows: int
    lists: list[str]  # in order of first appearance


def _batches(src: Location, fmt: Format) -> Iterator[pa.RecordBatch]:
    """The upload's record batches, never the whole file at once."""
    if fmt == "parquet":
        with src.open() as f:
            pf = pq.ParquetFile(f)
            _need_user_id(pf.schema_arrow.names)
            cols = [c for c in SEED_SCHEMA.names if c in pf.schema_arrow.names]
            yield from pf.iter_batches(batch_size=65_536, columns=cols)
        return
    with src.fs.open_input_stream(src.path) as f:
        if fmt == "csv":
            reader = pacsv.open_csv(
                f,
                read_options=pacsv.ReadOptions(block_size=1 << 20),
                convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(SEED_SCHEMA.names, pa.string())),
            )
        else:
            reader = pajson.open_json(f, read_options=pajson.ReadOptions(block_size=1 << 20))
        _need_user_id(reader.schema.names)
        yield from reader


def _need_user_id(names: list[str]) -> None:
    if "user_id" not in names:
        raise DataError(f"the upload has no user_id column; it has {names[:8]}")


def convert_upload(src: Location, dst: Location, fmt: Format, default_list_id: str, max_lists: int) -> UploadSummary:
    """The uploaded file at ``src`` as ``seeds.parquet`` (seed_list_id, user_id strings) at ``dst``, batch by batch.

    Checks what the job would refuse later, so a bad upload is a 400 now, one line: no user_id
    column, no rows, a row without a seed_list_id, more than ``max_lists`` lists, a file that
    does not parse. A file without seed_list_id is one list named ``default_list_id``.
    """
    rows, lists = 0, {}
    try:
        with dst.fs.open_output_stream(dst.path) as out, pq.ParquetWriter(out, SEED_SCHEMA) as writer:
            for batch in _batches(src, fmt):
                if batch.num_rows == 0:
                    continue
                users = id_strings(batch.column("user_id"), "upload", "user_id")
                if "seed_list_id" in batch.schema.names:
                    ids = id_strings(batch.column("seed_list_id"), "upload", "seed_list_id")
                    if ids.null_count or "" in ids.unique().to_pylist():
                        raise DataError(f"the upload has row(s) without a seed_list_id near row {rows + 1}")
                else:
                    ids = pa.array([default_list_id] * batch.num_rows, pa.string())
                for name in ids.unique().to_pylist():
                    lists.setdefault(name, None)
                if len(lists) > max_lists:
                    raise DataError(f"the upload holds more than {max_lists} seed lists (jobs.max_lists)")
                writer.write_table(pa.table({"seed_list_id": ids, "user_id": users}, schema=SEED_SCHEMA))
                rows += batch.num_rows
    except RecoError:
        dst.remove()
        raise
    except (pa.ArrowException, OSError, UnicodeDecodeError, ValueError) as e:
        dst.remove()
        raise DataError(f"the upload is not a readable {fmt} file: {first_line(e)}") from None
    if rows == 0:
        dst.remove()
        raise DataError("the upload holds no rows")
    return UploadSummary(rows, list(lists))
