"""Seed lists in: Parquet or JSON lines of (seed_list_id, user_id), raw ids, one row per seed.

Reading checks the file (it exists, has both columns, has rows) and fails with one line naming
it. Resolving maps raw user ids to the run's dense ids, list by list: duplicates are dropped,
unknown ids (not in the vocabulary, or without an embedding) are counted and reported, a list
with fewer known seeds than ``expansion.min_seeds`` is rejected with a message while the other
lists go on, and a list with no user id at all is an error, as is input where no list survives.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
import pyarrow.parquet as pq

from reco.errors import DataError
from reco.storage import Location, locate
from reco.vocab import Vocabulary

log = logging.getLogger(__name__)

COLUMNS = ("seed_list_id", "user_id")
SCHEMA = pa.schema([("seed_list_id", pa.string()), ("user_id", pa.string())])


@dataclass(frozen=True)
class SeedList:
    list_id: str
    users: np.ndarray  # sorted unique dense ids of the known seeds
    given: int  # rows in the input
    unknown: int  # distinct raw ids not in the run
    duplicates: int  # rows dropped as repeats


@dataclass
class ResolvedLists:
    accepted: list[SeedList]
    rejected: dict[str, str] = field(default_factory=dict)  # list id -> reason

    def summary(self) -> dict:
        return {
            "accepted": len(self.accepted),
            "rejected": self.rejected,
            "unknown_ids": int(sum(s.unknown for s in self.accepted)),
            "duplicates_dropped": int(sum(s.duplicates for s in self.accepted)),
            "per_list": {
                s.list_id: {
                    "seeds": int(len(s.users)),
                    "given": s.given,
                    "unknown": s.unknown,
                    "duplicates": s.duplicates,
                }
                for s in self.accepted
            },
        }


def _as_string(col: pa.ChunkedArray, path: str, name: str) -> pa.Array:
    col = col.combine_chunks()
    if pa.types.is_floating(col.type):
        valid = pc.drop_null(col)
        if len(valid) and not pc.all(pc.equal(valid, pc.floor(valid))).as_py():
            raise DataError(f"seed lists {path}: column {name!r} holds non-integer numbers")
        col = pc.cast(col, pa.int64())
    try:
        return pc.utf8_trim_whitespace(pc.cast(col, pa.string()))
    except pa.ArrowNotImplementedError:
        raise DataError(
            f"seed lists {path}: column {name!r} must hold ids (strings or integers), not {col.type}"
        ) from None


def id_strings(values: pa.Array | pa.ChunkedArray, source: str, name: str) -> pa.Array:
    """Ids as trimmed strings, as :func:`read_seed_table` makes them (integers and whole floats accepted).

    For readers of seed lists in pieces (an uploaded file read batch by batch); ``source`` names
    the input in the error.
    """
    return _as_string(values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values]), source, name)


def read_seed_table(path: str) -> pa.Table:
    """The seed lists at ``path`` (a local path or URI) as (seed_list_id, user_id) strings; user_id may be null."""
    loc = locate(path).require_exists("seed lists")
    lower = path.lower().rstrip("/")
    try:
        if loc.is_dir():
            parts = [f for f in loc.files() if f.name.lower().endswith((".parquet", ".pq"))]
            if not parts:
                raise DataError(f"seed lists {path}: the folder holds no .parquet files")
            table = pa.concat_tables(_read_parquet(f) for f in parts)
        elif lower.endswith((".parquet", ".pq")):
            table = _read_parquet(loc.require_file("seed lists"))
        elif lower.endswith((".jsonl", ".json", ".ndjson")):
            with loc.require_file("seed lists").open() as f:
                table = pajson.read_json(f)
        else:
            raise DataError(f"seed lists {path}: expected a .parquet file or folder, or .jsonl (JSON lines)")
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"seed lists {path} cannot be read: {str(e).splitlines()[0]}") from None
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(f"seed lists {path}: missing column(s) {missing}; the file has {table.column_names[:8]}")
    if table.num_rows == 0:
        raise DataError(f"seed lists {path} hold no rows")
    out = pa.table({c: _as_string(table.column(c), path, c) for c in COLUMNS}, schema=SCHEMA)
    bad = out.column("seed_list_id").null_count + (
        pc.sum(pc.equal(pc.utf8_length(out.column("seed_list_id")), 0)).as_py() or 0
    )
    if bad:
        raise DataError(f"seed lists {path}: {bad} row(s) without a seed_list_id")
    return out


def _read_parquet(loc: Location) -> pa.Table:
    with loc.open() as f:
        return pq.read_table(f)


def resolve(
    table: pa.Table, users: Vocabulary, min_seeds: int, source: str = "seed lists", embedded: np.ndarray | None = None
) -> ResolvedLists:
    """Map raw ids to dense ids per list; reject small lists (logged), fail on empty ones.

    ``embedded``: dense ids that have an embedding; a vocabulary id outside it counts as unknown.
    """
    list_ids = np.asarray(table.column("seed_list_id").to_pylist(), dtype=object)
    raw = table.column("user_id").combine_chunks()
    valid = pc.and_(pc.is_valid(raw), pc.greater(pc.utf8_length(raw.fill_null("")), 0)).to_numpy(zero_copy_only=False)
    dense = users.encode(raw.fill_null(""))
    if embedded is not None:
        dense = np.where(np.isin(dense, embedded), dense, -1)
    raw_np = np.asarray(raw.fill_null("").to_pylist(), dtype=object)
    out = ResolvedLists(accepted=[])
    for list_id in dict.fromkeys(list_ids.tolist()):
        rows = list_ids == list_id
        ok = rows & valid
        if not ok.any():
            raise DataError(f"{source}: seed list {list_id!r} is empty (no user ids)")
        distinct_raw = np.unique(raw_np[ok].astype(str))
        duplicates = int(ok.sum()) - len(distinct_raw)
        known = np.unique(dense[ok][dense[ok] >= 0])
        unknown = len(distinct_raw) - len(np.unique(raw_np[ok & (dense >= 0)].astype(str)))
        if len(known) < min_seeds:
            reason = (
                f"seed list {list_id!r}: {len(known)} known seed(s) ({unknown} unknown id(s) of {len(distinct_raw)}), "
                f"fewer than expansion.min_seeds={min_seeds}; skipped"
            )
            log.warning("%s: %s", source, reason)
            out.rejected[str(list_id)] = reason
            continue
        if unknown:
            log.info("%s: seed list %r: %d unknown id(s) of %d ignored", source, list_id, unknown, len(distinct_raw))
        out.accepted.append(SeedList(str(list_id), known.astype(np.int64), int(rows.sum()), int(unknown), duplicates))
    if not out.accepted:
        raise DataError(
            f"{source}: no seed list has at least expansion.min_seeds={min_seeds} known seeds "
            f"({len(out.rejected)} rejected: {next(iter(out.rejected.values()))})"
        )
    return out


def lists_table(lists: list[tuple[str, np.ndarray]], users: Vocabulary) -> pa.Table:
    """(seed_list_id, user_id raw) rows for lists of dense ids (to write seed lists out)."""
    ids = [np.full(len(u), name, dtype=object) for name, u in lists]
    dense = np.concatenate([np.asarray(u, np.int64) for _, u in lists]) if lists else np.empty(0, np.int64)
    return pa.table(
        {
            "seed_list_id": pa.array(np.concatenate(ids) if ids else [], pa.string()),
            "user_id": pa.array(users.decode(dense), pa.string()),
        },
        schema=SCHEMA,
    )
