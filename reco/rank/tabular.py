"""``ranking.source: tabular``: the ranker on a user's own impression log, described by config alone.

The log is CSV / TSV (a delimiter, a header line or given column names, optionally gzipped) or
Parquet, as one file or a folder of files, on any filesystem :func:`reco.storage.locate` opens
(local, ``file://``, ``s3://``, ``gs://``). Its rows become the same raw frames and
:class:`~reco.rank.features.FeatureSpec` the other views produce, so every model, the training
job, calibration, the report and LightGBM run on it unchanged:

- labels: one or several 0/1 columns (several make a multi-task data set);
- features: each column declared categorical (missing values are one more token), numeric
  (missing values take the training mean once the pipeline standardises them; an optional
  signed ``log1p`` first) or multi-valued with its separator; every column is read as
  declared, so a zip code "02134" stays a string and a typo in a number is an error;
- keys: optional user and item columns (categorical features, GAUC groups, the serving
  catalogue), an optional group column for GAUC;
- split: a seeded random split (``val_share`` / ``test_share`` / ``split_seed``), a time split
  (the latest rows are test, the ones before them validation; rows tied at a boundary go to
  the later split), or given train / test (and validation) files.

Bad input is a one-line :class:`~reco.errors.DataError` naming the file and column: a missing
file, an empty file or one without rows, a declared column the file lacks, a label that is not
0/1, a numeric column with text in it. The view is a :class:`~reco.rank.ranking_data.RankingData`
like every other source's.
"""

from __future__ import annotations

import csv
import gzip
import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from reco.errors import DataError
from reco.rank.config import RankingConfig, TabularConfig
from reco.rank.features import FeatureSpec, FieldSpec
from reco.rank.ranking_data import RankingData
from reco.storage import Location, locate

log = logging.getLogger(__name__)
TIME = "__time__"  # the parsed time_column (seconds), beside the raw columns until the split
PARQUET_SUFFIXES = (".parquet", ".pq")
TAB_SUFFIXES = (".tsv", ".tab", ".tsv.gz", ".tab.gz")


# -- splits ---------------------------------------------------------------------------------------


def random_split(
    df: pd.DataFrame, val_share: float, test_share: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, validation, test): each row's split drawn with a fixed seed, so reruns get the same rows."""
    u = np.random.default_rng(seed).random(len(df))
    test = u < test_share
    val = (u >= test_share) & (u < test_share + val_share)
    return df[~val & ~test].reset_index(drop=True), df[val].reset_index(drop=True), df[test].reset_index(drop=True)


def time_split(
    df: pd.DataFrame, column: str, val_share: float, test_share: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, validation, test) by time: the latest ``test_share`` of rows are test, the ``val_share``
    before them validation. Rows tied with a boundary's time go to the later split, so no moment is
    both trained on and tested."""
    t = df[column].to_numpy()
    order = np.sort(t)
    n = len(df)
    n_test, n_val = int(round(n * test_share)), int(round(n * val_share))
    test = t >= order[n - n_test] if 0 < n_test <= n else np.zeros(n, bool)
    rest = n - int(test.sum())  # order[:rest] are the rows before the test block
    val = (t >= order[rest - n_val]) & ~test if 0 < n_val <= rest else np.zeros(n, bool)
    return df[~val & ~test].reset_index(drop=True), df[val].reset_index(drop=True), df[test].reset_index(drop=True)


# -- reading --------------------------------------------------------------------------------------


def _declared_by(tc: TabularConfig, split_by_time: bool) -> dict[str, str]:
    """Every column the view reads -> the config key that declares it (for errors), in a stable order."""
    out: dict[str, str] = {}
    for key in ("user_key", "item_key"):
        if getattr(tc, key):
            out.setdefault(getattr(tc, key), f"ranking.tabular.{key}")
    for kind in ("labels", "categorical", "numeric", "multi_valued"):
        for col in getattr(tc, kind):
            out.setdefault(col, f"ranking.tabular.{kind}")
    if tc.group_key:
        out.setdefault(tc.group_key, "ranking.tabular.group_key")
    if split_by_time and tc.time_column:
        out.setdefault(tc.time_column, "ranking.tabular.time_column")
    return out


def _is_parquet(loc: Location, tc: TabularConfig) -> bool:
    return tc.format == "parquet" or (tc.format == "auto" and loc.name.lower().endswith(PARQUET_SUFFIXES))


def _missing(loc: Location, have: list[str], declared: dict[str, str]) -> None:
    absent = [c for c in declared if c not in set(have)]
    if absent:
        first = absent[0]
        shown = ", ".join(have[:8]) + (", ..." if len(have) > 8 else "")
        raise DataError(
            f"{loc}: column {first!r} ({declared[first]}) not found"
            + (f" (nor {absent[1:]})" if len(absent) > 1 else "")
            + f"; the file has: {shown}"
        )


def _read_parquet(loc: Location, declared: dict[str, str], text_columns: set[str]) -> pd.DataFrame:
    with loc.open() as f:
        try:
            pf = pq.ParquetFile(f)
        except (pa.ArrowInvalid, OSError) as e:
            raise DataError(f"{loc}: not a Parquet file ({str(e).splitlines()[0]})") from None
        _missing(loc, pf.schema_arrow.names, declared)
        table = pf.read(columns=list(declared))
    for name in text_columns:  # ids as their text, the way a delimited file or a request spells them
        i = table.schema.get_field_index(name)
        kind = table.schema.field(i).type
        if not pa.types.is_string(kind):
            try:
                table = table.set_column(i, name, pc.cast(table.column(i), pa.string()))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise DataError(f"{loc}: column {name!r} ({kind}) cannot be read as an id or token text") from None
    return table.to_pandas()


def _read_text(loc: Location, tc: TabularConfig, declared: dict[str, str]) -> pd.DataFrame:
    lower = loc.name.lower()
    delimiter = tc.delimiter or ("\t" if lower.endswith(TAB_SUFFIXES) else ",")
    compression = "gzip" if lower.endswith(".gz") else None
    if compression:
        with loc.open() as f:
            head = gzip.GzipFile(fileobj=f).readline().decode("utf-8", errors="replace").rstrip("\r\n")
    else:
        head = loc.first_line()
    in_file = next(csv.reader([head], delimiter=delimiter), [])
    if tc.columns and len(in_file) != len(tc.columns):
        raise DataError(
            f"{loc}: the first line has {len(in_file)} columns split by {delimiter!r}, "
            f"ranking.tabular.columns names {len(tc.columns)}"
        )
    names = list(tc.columns) if tc.columns else in_file
    _missing(loc, names, declared)
    index = sorted(names.index(c) for c in declared)
    with loc.open() as f:
        try:
            df = pd.read_csv(
                f,
                sep=delimiter,
                header=0 if tc.header else None,
                usecols=index,
                dtype=str,
                compression=compression,
            )
        except (ValueError, pd.errors.ParserError) as e:
            raise DataError(
                f"{loc}: cannot read it as {delimiter!r}-delimited text: {str(e).splitlines()[0]}"
            ) from None
    df.columns = [names[i] for i in index]
    return df


def _as_numbers(df: pd.DataFrame, column: str, loc: Location, what: str) -> pd.Series:
    """A column as float64; a value that is present but not a number is an error naming it."""
    raw = df[column]
    if pd.api.types.is_bool_dtype(raw):
        raw = raw.astype(np.float64)
    x = pd.to_numeric(raw, errors="coerce")
    bad = x.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{loc}: {what} column {column!r} has a non-numeric value {raw.iloc[row]!r} (data row {row + 1})"
        )
    return x.astype(np.float64)


def _typed(df: pd.DataFrame, tc: TabularConfig, loc: Location, split_by_time: bool) -> pd.DataFrame:
    """Labels as float32 0/1, numeric columns as float64, ids and multi-valued cells as text (or missing),
    and with a time split the parsed time in :data:`TIME`."""
    out = df.copy()
    for lab in tc.labels:
        y = _as_numbers(out, lab, loc, "label")
        bad = ~y.isin([0.0, 1.0])
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            found = "a missing value" if pd.isna(df[lab].iloc[row]) else repr(df[lab].iloc[row])
            raise DataError(f"{loc}: label column {lab!r} must be 0/1, found {found} (data row {row + 1})")
        out[lab] = y.astype(np.float32)
    for col in tc.numeric:
        out[col] = _as_numbers(out, col, loc, "numeric")
    text = [c for c in tc.features() + ([tc.group_key] if tc.group_key else []) if c not in tc.numeric]
    for col in text:
        s = out[col]
        out[col] = s.astype(object).where(s.notna(), None)
    if split_by_time and tc.time_column:
        out[TIME] = _as_time(df[tc.time_column], tc.time_column, loc)
    return out


def _as_time(raw: pd.Series, column: str, loc: Location) -> pd.Series:
    """A time column as float64 that orders the rows: numbers as they are (epoch seconds or any
    other unit), dates and times as seconds since 1970 (UTC)."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        when = raw if raw.dt.tz is not None else raw.dt.tz_localize("UTC")
    else:
        num = pd.to_numeric(raw, errors="coerce")
        when = None if num.notna().sum() == raw.notna().sum() else pd.to_datetime(raw, errors="coerce", utc=True)
    t = num.astype(np.float64) if when is None else (when - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    if t.isna().any():
        row = int(np.flatnonzero(t.isna().to_numpy())[0])
        raise DataError(f"{loc}: time column {column!r} has a missing or unreadable value {raw.iloc[row]!r}")
    return t


def read_table(uri: str, tc: TabularConfig, split_by_time: bool = False, what: str = "input") -> pd.DataFrame:
    """One file, or every file of a folder, with the declared columns only, typed (see :func:`_typed`)."""
    root = locate(uri, what)
    if root.is_dir():
        parts = root.files()
        if not parts:
            raise DataError(f"{what} folder has no data files: {root}")
    else:
        parts = [root]
    declared = _declared_by(tc, split_by_time)
    text_columns = {c for c in declared if c not in tc.numeric and c not in tc.labels and c != tc.time_column}
    frames = []
    for loc in parts:
        loc.require_file(what)
        df = _read_parquet(loc, declared, text_columns) if _is_parquet(loc, tc) else _read_text(loc, tc, declared)
        if len(df) == 0:
            raise DataError(f"{what} file has no data rows: {loc}")
        frames.append(_typed(df, tc, loc, split_by_time))
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


# -- the view ---------------------------------------------------------------------------------------


def feature_spec(tc: TabularConfig) -> FeatureSpec:
    """The declared columns as fields: keys on their side, features on the side they were given."""
    log1p = set(tc.log1p_columns())
    fields = []
    for col in tc.features():
        side = (
            "user"
            if col == tc.user_key or col in tc.user_features
            else "item"
            if col == tc.item_key or col in tc.item_features
            else "context"
        )
        if col in tc.numeric:
            fields.append(FieldSpec(col, "dense", side, "log1p" if col in log1p else "none"))
        elif col in tc.multi_valued:
            fields.append(FieldSpec(col, "multi", side, separator=tc.multi_valued[col]))
        else:
            fields.append(FieldSpec(col, "cat", side))
    return FeatureSpec(tuple(fields), user_key=tc.user_key, item_key=tc.item_key, group_key=tc.group_key)


def _side(frames: list[pd.DataFrame], key: str | None, columns: list[str]) -> pd.DataFrame | None:
    """One row per id (its latest side features in the log), or None without the key."""
    if not key:
        return None
    rows = pd.concat([f[[key, *columns]] for f in frames], ignore_index=True)
    rows = rows[rows[key].notna()]
    return rows.drop_duplicates(key, keep="last").reset_index(drop=True)


def tabular_view(cfg: RankingConfig) -> RankingData:
    """The configured log, read, typed and split (see the module doc)."""
    tc = cfg.tabular
    if tc is None:
        raise DataError("ranking.source=tabular needs a ranking.tabular section")
    by_time = tc.split == "time"
    if tc.path:
        df = read_table(tc.path, tc, by_time, "ranking.tabular.path")
        if by_time:
            train, val, test = time_split(df, TIME, cfg.val_share, cfg.test_share)
        else:
            train, val, test = random_split(df, cfg.val_share, cfg.test_share, cfg.split_seed)
        name = f"tabular {tc.path}"
    else:
        train = read_table(tc.train, tc, by_time, "ranking.tabular.train")
        test = read_table(tc.test, tc, by_time, "ranking.tabular.test")
        if tc.validation:
            val = read_table(tc.validation, tc, by_time, "ranking.tabular.validation")
        elif by_time:
            train, val, _ = time_split(train, TIME, cfg.val_share, 0.0)
        else:
            train, val, _ = random_split(train, cfg.val_share, 0.0, cfg.split_seed)
        name = f"tabular {tc.train}"
    train, val, test = (f.drop(columns=TIME, errors="ignore") for f in (train, val, test))
    log.info(
        "%s: %d train / %d validation / %d test rows; positive rate %s",
        name,
        len(train),
        len(val),
        len(test),
        ", ".join(f"{lab} {train[lab].mean():.3f}" for lab in tc.labels) if len(train) else "-",
    )
    frames = [train, val, test]
    return RankingData(
        name,
        feature_spec(tc),
        list(tc.labels),
        train,
        val,
        test,
        users=_side(frames, tc.user_key, [c for c in tc.user_features if c != tc.user_key]),
        items=_side(frames, tc.item_key, [c for c in tc.item_features if c != tc.item_key]),
    )
