"""Input formats: where interactions come from and how they become one canonical table.

Every format is read into the *raw* schema ``user: string, topic: string, weight: float32,
ts: int64`` (ids stay the strings the data set uses; ingest maps them to dense ids later).
Inputs are local paths or any URI pyarrow.fs opens (``s3://``, ``gs://``, ``file://``; see
reco.storage).
:func:`resolve_source` checks the input up front (the file exists, is not empty, has the
columns) so a user sees one clear error naming the file before any Ray work starts;
:func:`normalize_batch` converts and validates one batch and names the file of a bad row.

Formats:
- ``movielens``: ``u.data`` (tab, no header), ``ratings.dat`` (``::``) or ``ratings.csv``
  (header); a directory holding one of them works too. Titles from ``u.item`` / ``movies.dat``
  / ``movies.csv`` beside it.
- ``lastfm``: hetrec-2011 ``user_artists.dat`` (tab, header optional). Names from
  ``artists.dat`` beside it. No timestamps: ts is 0.
- ``generic``: CSV, TSV or Parquet with a column mapping (user, topic, optional weight, ts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from reco.data.config import DataConfig
from reco.errors import DataError
from reco.storage import Location, locate

RAW_SCHEMA = pa.schema([("user", pa.string()), ("topic", pa.string()), ("weight", pa.float32()), ("ts", pa.int64())])


@dataclass(frozen=True)
class Source:
    """A resolved input: files, how to parse them, and which column is which."""

    files: list[Location]
    file_type: str  # "csv" or "parquet"
    columns: dict[str, str | None]  # canonical name -> column in the file
    column_names: list[str] | None = None  # csv without a header: names to give the columns
    delimiter: str = ","
    skip_rows: int = 0
    topic_names: Location | None = None
    label: str = ""
    names_note: list[str] = field(default_factory=list)

    @property
    def filesystem(self) -> pafs.FileSystem:
        return self.files[0].fs

    @property
    def paths(self) -> list[str]:
        """The files' paths on :attr:`filesystem` (what Ray Data's readers take)."""
        return [f.path for f in self.files]

    @property
    def uris(self) -> list[str]:
        return [f.uri for f in self.files]

    def csv_options(self) -> dict:
        """pyarrow CSV options (shared by Ray Data's read_csv and the local reader)."""
        names = self.column_names
        return {
            "read_options": pacsv.ReadOptions(
                column_names=names, skip_rows=self.skip_rows, autogenerate_column_names=False
            ),
            "parse_options": pacsv.ParseOptions(
                delimiter=self.delimiter, quote_char=False if self.delimiter in "\t:" else '"'
            ),
            "convert_options": pacsv.ConvertOptions(
                include_columns=[c for c in self.columns.values() if c],
                column_types={c: pa.string() for c in self.columns.values() if c},
                strings_can_be_null=True,
            ),
        }


def _first_line(loc: Location) -> str:
    line = loc.first_line()
    if not line.strip():
        raise DataError(f"input file {loc} starts with an empty line; expected data or a header")
    return line


def _looks_numeric(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


def _sibling(loc: Location, *names: str) -> Location | None:
    for n in names:
        candidate = loc.sibling(n)
        if candidate.is_file():
            return candidate
    return None


def _names_file(cfg: DataConfig) -> Location | None:
    return locate(cfg.topic_names_path) if cfg.topic_names_path else None


def _movielens(cfg: DataConfig) -> Source:
    path = locate(cfg.path)
    if path.is_dir():
        found = [c for n in ("u.data", "ratings.dat", "ratings.csv") if (c := path.child(n)).is_file()]
        if not found:
            raise DataError(f"no MovieLens ratings file (u.data, ratings.dat, ratings.csv) in {path}")
        path = found[0]
    path.require_file()
    cols = {"user": "user", "topic": "item", "weight": "rating", "ts": "ts"}
    name = path.name
    first = _first_line(path)
    if "::" in first:
        # ratings.dat: "u::i::r::t". Parsing on ':' gives empty columns between the fields.
        names, delim = ["user", "_a", "item", "_b", "rating", "_c", "ts"], ":"
        skip = 0
    elif name.endswith(".csv") or first.lower().startswith("userid"):
        names, delim, skip = ["user", "item", "rating", "ts"], ",", 1 if not _looks_numeric(first.split(",")[0]) else 0
    else:
        names, delim, skip = ["user", "item", "rating", "ts"], "\t", 0
    n_fields = len(first.split(delim))
    if n_fields != len(names):
        raise DataError(
            f"{path}: expected {len(names)} {delim!r}-separated fields (user, item, rating, timestamp), found "
            f"{n_fields} in the first line"
        )
    names_file = _names_file(cfg) or _sibling(path, "u.item", "movies.dat", "movies.csv")
    return Source([path], "csv", cols, names, delim, skip, names_file, "movielens")


def _lastfm(cfg: DataConfig) -> Source:
    path = locate(cfg.path)
    if path.is_dir():
        path = path.child("user_artists.dat")
    path.require_file()
    first = _first_line(path).split("\t")
    if len(first) != 3:
        raise DataError(
            f"{path}: expected 3 tab-separated fields (user, artist, plays), found {len(first)} in the first line"
        )
    skip = 0 if _looks_numeric(first[0]) else 1
    names_file = _names_file(cfg) or _sibling(path, "artists.dat")
    cols = {"user": "user", "topic": "artist", "weight": "plays", "ts": None}
    return Source([path], "csv", cols, ["user", "artist", "plays"], "\t", skip, names_file, "lastfm")


def _generic(cfg: DataConfig) -> Source:
    path = locate(cfg.path)
    if path.is_dir():
        files = path.files()
        if not files:
            raise DataError(f"input directory is empty: {path}")
    else:
        files = [path]
    for f in files:
        f.require_file()
    ftype = cfg.file_type or _type_from_extension(files[0].uri)
    m = cfg.columns
    cols = {"user": m.user, "topic": m.topic, "weight": m.weight, "ts": m.ts}
    wanted = [c for c in cols.values() if c]
    if ftype == "parquet":
        for f in files:
            try:
                with f.open() as handle:
                    have = pq.read_schema(handle).names
            except (pa.ArrowInvalid, OSError) as e:
                raise DataError(f"{f} is not a readable Parquet file: {e}") from None
            _check_columns(f, have, wanted)
        return Source(files, "parquet", cols, label="generic")
    delim = cfg.delimiter or ("\t" if ftype == "tsv" else ",")
    for f in files:
        header = _first_line(f).split(delim)
        _check_columns(f, [h.strip().strip('"') for h in header], wanted)
    return Source(files, "csv", cols, None, delim, 0, _names_file(cfg), "generic")


def _type_from_extension(path: str) -> str:
    ext = path.rsplit(".", 1)[-1].lower()
    if ext in ("csv", "tsv", "parquet"):
        return ext
    if ext in ("txt", "dat"):
        return "tsv"
    raise DataError(f"cannot tell the file type of {path}: set data.file_type to csv, tsv or parquet")


def _check_columns(path: str, have: list[str], wanted: list[str]) -> None:
    missing = [c for c in wanted if c not in have]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; the file has {have[:12]}")


def resolve_source(cfg: DataConfig) -> Source:
    """Check the input named by a data config and say how to read it."""
    if cfg.format == "synthetic":
        raise DataError("the synthetic format has no input file; ingest generates it")
    readers = {"movielens": _movielens, "lastfm": _lastfm, "generic": _generic}
    if cfg.format not in readers:
        raise DataError(f"unknown data format {cfg.format!r}; expected one of {sorted(readers)} or synthetic")
    return readers[cfg.format](cfg)


def _as_id(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_floating(col.type):
        # Parquet ids stored as float (1.0) read back as "1", not "1.0".
        if not pc.all(pc.equal(col, pc.floor(col))).as_py():
            raise ValueError("ids must be whole numbers or strings")
        col = pc.cast(col, pa.int64())
    return pc.utf8_trim_whitespace(pc.cast(col, pa.string()))


def normalize_batch(batch: pa.Table, columns: dict[str, str | None], label: str = "") -> pa.Table:
    """One batch of a source, in the raw schema; a DataError names the file and the problem.

    ``label`` names the input in messages; a ``path`` column (Ray Data's include_paths) names
    the exact file instead.
    """
    where = label
    if "path" in batch.column_names and batch.num_rows:
        where = batch.column("path")[0].as_py()
    out = {}
    for canon in ("user", "topic"):
        col = batch.column(columns[canon])
        if col.null_count:
            raise DataError(f"{where}: column {columns[canon]!r} ({canon} id) has {col.null_count} empty value(s)")
        try:
            out[canon] = _as_id(col)
        except (pa.ArrowInvalid, ValueError) as e:
            raise DataError(f"{where}: column {columns[canon]!r} ({canon} id): {e}") from None
        empty = pc.sum(pc.equal(pc.utf8_length(out[canon]), 0)).as_py() or 0
        if empty:
            raise DataError(f"{where}: column {columns[canon]!r} ({canon} id) has {empty} empty value(s)")
    out["weight"] = _numeric(batch, columns.get("weight"), pa.float32(), 1.0, where, "weight")
    out["ts"] = _numeric(batch, columns.get("ts"), pa.int64(), 0, where, "timestamp")
    w = out["weight"].to_numpy(zero_copy_only=False)
    if not np.isfinite(w).all():
        raise DataError(f"{where}: column {columns['weight']!r} (weight) has NaN or infinite values")
    return pa.table(out, schema=RAW_SCHEMA)


def _numeric(batch: pa.Table, name: str | None, typ: pa.DataType, default, where: str, what: str) -> pa.Array:
    n = batch.num_rows
    if not name:
        return pa.array(np.full(n, default), type=typ)
    col = batch.column(name)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if col.null_count:
        raise DataError(f"{where}: column {name!r} ({what}) has {col.null_count} empty value(s)")
    try:
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            col = pc.cast(pc.utf8_trim_whitespace(col), pa.float64())
        if pa.types.is_integer(typ):
            as_f = pc.cast(col, pa.float64())
            return pc.cast(pc.floor(as_f), typ)
        return pc.cast(col, typ)
    except pa.ArrowInvalid as e:
        bad = str(e).split(":")[-1].strip()
        raise DataError(f"{where}: column {name!r} ({what}) is not numeric (e.g. {bad})") from None


def filter_batch(batch: pa.Table, min_weight: float | None, exclude_topics: list[str]) -> pa.Table:
    """Apply ingest's row filters: a minimum weight and topics removed before training."""
    mask = None
    if min_weight is not None:
        mask = pc.greater_equal(batch.column("weight"), pa.scalar(min_weight, pa.float32()))
    if exclude_topics:
        keep = pc.invert(pc.is_in(batch.column("topic"), value_set=pa.array(exclude_topics, pa.string())))
        mask = keep if mask is None else pc.and_(mask, keep)
    return batch if mask is None else batch.filter(mask)


def read_local(source: Source) -> pa.Table:
    """Read a source in this process (tests, small benches). Ingest reads with Ray Data."""
    parts = []
    for f in source.files:
        try:
            with f.open() as handle:
                if source.file_type == "parquet":
                    t = pq.read_table(handle, columns=[c for c in source.columns.values() if c])
                else:
                    t = pacsv.read_csv(handle, **source.csv_options())
        except pa.ArrowInvalid as e:
            raise DataError(f"{f}: {str(e).splitlines()[0]}") from None
        parts.append(normalize_batch(t, source.columns, f.uri))
    table = pa.concat_tables(parts)
    if table.num_rows == 0:
        raise DataError(f"no interactions in {', '.join(source.uris)}")
    return table


def read_topic_names(source: Source) -> pa.Table | None:
    """raw topic id -> display name (movie title, artist name), if a names file is known."""
    loc = source.topic_names
    if loc is None:
        return None
    loc.require_file("topic names file")
    base = loc.name
    if base == "u.item":
        opts = dict(delimiter="|", names=None, idx=(0, 1), encoding="latin-1")
    elif base == "movies.dat":
        opts = dict(delimiter="::", names=None, idx=(0, 1), encoding="latin-1")
    elif base == "artists.dat":
        opts = dict(delimiter="\t", names="header", idx=(0, 1), encoding="utf-8")
    else:
        opts = dict(delimiter="," if base.endswith(".csv") else "\t", names="header", idx=(0, 1), encoding="utf-8")
    ids, names = [], []
    lines = loc.text(opts["encoding"]).read().splitlines()
    if opts["names"] == "header" or (lines and not _looks_numeric(lines[0].split(opts["delimiter"])[0])):
        lines = lines[1:]
    for line in lines:
        parts = line.split(opts["delimiter"])
        if len(parts) > 1:
            ids.append(parts[0].strip())
            names.append(parts[1].strip())
    return pa.table({"raw_id": pa.array(ids, pa.string()), "name": pa.array(names, pa.string())})
