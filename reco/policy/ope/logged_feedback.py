"""Your own logged bandit feedback: a CSV or Parquet file read through the columns a config declares.

The Open Bandit Dataset reader (reco.policy.ope.logged_data.read_obd) knows one layout. This one
reads any table with one row per logged round: the action taken, the reward seen, the logging
policy's probability of that action (its propensity) and, optionally, the slot it was shown in,
numeric context features, a user id, an item id and a time. ``ope.logs`` (reco.policy.ope.config.LogsConfig)
names the columns, so a log is evaluated as it was written, with no conversion step.

It produces the same :class:`~reco.policy.ope.logged_data.LoggedFeedback` the OBD reader does, so
the estimators, the reward model and the bootstrap run unchanged. Around it, :class:`FeedbackLog`
keeps what the target policies and the report need: the action labels, the user ids, further raw
columns (a ranker's context fields) and a description of what was read.

Every problem with the file is one :class:`~reco.errors.DataError` line naming the file and the
column: a missing column, a non-numeric reward or context, an empty value, a propensity outside
(0, 1], an empty file, a filter that keeps no row.
"""

from __future__ import annotations

import fnmatch
import gzip
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from reco.errors import DataError
from reco.policy.ope.config import LogsConfig
from reco.policy.ope.logged_data import LoggedFeedback, read_csv_frame
from reco.storage import Location, locate

_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt")


@dataclass(frozen=True)
class FeedbackLog:
    """A logged-feedback file read through its declared columns.

    ``log`` is what the estimators read; the rest is row-aligned with it (``users``, ``extra``)
    or describes its actions (``actions``: the label of action index a; ``items``: the item id
    a ranker scores for action a).
    """

    log: LoggedFeedback
    actions: tuple[str, ...]
    items: tuple[str, ...]
    users: np.ndarray | None = None  # (n,) str
    extra: pd.DataFrame = field(default_factory=pd.DataFrame)  # further raw columns, row-aligned
    context_columns: tuple[str, ...] = ()
    ordered_by: str | None = None  # the timestamp column, or None: file order
    description: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.log.n

    def time_order(self) -> np.ndarray:
        """Row indices from earliest to latest (file order without a timestamp; ties keep file order)."""
        if self.log.timestamp is None:
            return np.arange(self.n)
        return np.argsort(self.log.timestamp, kind="stable")

    def subset(self, rows: np.ndarray) -> FeedbackLog:
        return replace(
            self,
            log=self.log.subset(rows),
            users=None if self.users is None else self.users[rows],
            extra=self.extra.iloc[rows].reset_index(drop=True),
        )


# -- the file ------------------------------------------------------------------------------------


def log_location(cfg: LogsConfig) -> Location:
    return locate(cfg.path, "logged feedback")


def log_format(cfg: LogsConfig, loc: Location) -> str:
    """csv or parquet: as configured, else by the name's extension; a folder is Parquet."""
    if cfg.format != "auto":
        return cfg.format
    name = loc.name.lower()
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if loc.is_dir():
        return "parquet"
    raise DataError(
        f"{loc}: cannot tell the format from the name (expected .csv, .csv.gz, .parquet or .pq); "
        "set ope.logs.format to csv or parquet"
    )


def _parquet_dataset(loc: Location) -> pads.Dataset:
    loc.require_exists("logged feedback")
    if not loc.is_dir():
        loc.require_file("logged feedback")
    try:
        return pads.dataset(loc.path, filesystem=loc.fs, format="parquet")
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{loc}: not a readable Parquet file ({str(e).splitlines()[0]})") from None


def _csv_kwargs(loc: Location) -> dict[str, Any]:
    return {"sep": "\t"} if loc.name.lower().endswith((".tsv", ".tsv.gz")) else {}


def log_columns(cfg: LogsConfig) -> list[str]:
    """The column names of the file (its header or Parquet schema), read without the rows."""
    loc = log_location(cfg)
    if log_format(cfg, loc) == "parquet":
        return list(_parquet_dataset(loc).schema.names)
    return [str(c) for c in read_csv_frame(loc, "logged feedback", nrows=0, **_csv_kwargs(loc)).columns]


def _read(cfg: LogsConfig, loc: Location, wanted: list[str]) -> pd.DataFrame:
    if log_format(cfg, loc) == "parquet":
        try:
            table = _parquet_dataset(loc).to_table(columns=wanted)
        except (pa.ArrowInvalid, OSError) as e:
            raise DataError(f"{loc}: not a readable Parquet file ({str(e).splitlines()[0]})") from None
        return table.to_pandas()
    keep = set(wanted)
    frame = read_csv_frame(loc, "logged feedback", usecols=lambda c: c in keep, **_csv_kwargs(loc))
    return frame[wanted]


# -- column checks -------------------------------------------------------------------------------


def _context_columns(cfg: LogsConfig, header: list[str], loc: Location) -> list[str]:
    """Declared context names and shell patterns, expanded against the header in file order."""
    out: list[str] = []
    for pattern in cfg.columns.context:
        if any(ch in pattern for ch in "*?["):
            hits = [c for c in header if fnmatch.fnmatchcase(c, pattern)]
            if not hits:
                raise DataError(f"{loc}: no column matches context pattern {pattern!r} (ope.logs.columns.context)")
        else:
            hits = [pattern]
        out.extend(c for c in hits if c not in out)
    roles = {cfg.columns.action: "action", cfg.columns.reward: "reward", cfg.columns.propensity: "propensity"}
    clash = [c for c in out if c in roles]
    if clash:
        raise DataError(
            f"{loc}: context column {clash[0]!r} is the {roles[clash[0]]} column; the context must be known "
            "before the action is chosen"
        )
    return out


def _check_present(loc: Location, header: list[str], needed: dict[str, str]) -> None:
    """needed: column -> the config key that names it."""
    missing = [(col, key) for col, key in needed.items() if col not in header]
    if missing:
        col, key = missing[0]
        shown = header[:12] + (["..."] if len(header) > 12 else [])
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise DataError(f"{loc}: missing column {col!r} ({key}){more}; the file has {shown}")


def _numeric(frame: pd.DataFrame, col: str, loc: Location, what: str) -> np.ndarray:
    """A column as float64, or a DataError naming the file, the column and the first bad row."""
    s = frame[col]
    if s.dtype == object or isinstance(s.dtype, pd.StringDtype):
        parsed = pd.to_numeric(s, errors="coerce")
        bad = parsed.isna() & s.notna()
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise DataError(f"{loc}: column {col!r} ({what}) is not numeric (row {frame.index[i]}: {s.iloc[i]!r})")
        s = parsed
    elif not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
        raise DataError(f"{loc}: column {col!r} ({what}) is not numeric (type {s.dtype})")
    x = s.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(x)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"{loc}: column {col!r} ({what}) has {int(bad.sum())} empty or non-finite values "
            f"(first at row {frame.index[i]})"
        )
    return x


def _labels(s: pd.Series) -> np.ndarray:
    """Ids as text: integer-valued numbers without a trailing .0, so 3, 3.0 and "3" are one id."""
    if pd.api.types.is_float_dtype(s) and s.notna().all() and (s == np.round(s)).all():
        s = s.astype(np.int64)
    return s.astype(str).to_numpy()


def _action_labels(frame: pd.DataFrame, col: str, cfg: LogsConfig, loc: Location) -> tuple[np.ndarray, list[str]]:
    """(action index per row, label of each index)."""
    if frame[col].isna().any():
        i = int(np.argmax(frame[col].isna().to_numpy()))
        raise DataError(f"{loc}: column {col!r} (action) has an empty value (row {frame.index[i]})")
    raw = _labels(frame[col])
    if cfg.actions is not None:
        labels = list(dict.fromkeys(str(a) for a in cfg.actions))
        known = set(labels)
        unknown = ~np.isin(raw, labels)
        if unknown.any():
            i = int(np.argmax(unknown))
            raise DataError(
                f"{loc}: column {col!r} holds action {raw[i]!r} (row {frame.index[i]}), which is not among "
                f"ope.logs.actions ({len(known)} actions)"
            )
    else:
        distinct = list(pd.unique(raw))
        numeric = pd.to_numeric(pd.Series(distinct), errors="coerce")
        labels = (
            [distinct[i] for i in np.argsort(numeric.to_numpy(), kind="stable")]
            if numeric.notna().all()
            else sorted(distinct)
        )
    if len(labels) < 2:
        raise DataError(f"{loc}: column {col!r} holds a single action {labels}; a policy needs at least two to choose")
    index = pd.Index(labels)
    return index.get_indexer(raw).astype(np.int64), labels


def _item_ids(frame: pd.DataFrame, col: str | None, action: np.ndarray, labels: list[str], loc: Location) -> list[str]:
    """The item id of each action: its label, or the one item id the item column gives it."""
    if col is None:
        return list(labels)
    pairs = pd.DataFrame({"a": action, "item": _labels(frame[col])}).drop_duplicates()
    many = pairs.groupby("a")["item"].nunique()
    if (many > 1).any():
        a = int(many.index[np.argmax(many.to_numpy() > 1)])
        ids = sorted(pairs.loc[pairs.a == a, "item"])[:3]
        raise DataError(f"{loc}: action {labels[a]!r} has several item ids in column {col!r} ({ids}...)")
    by_action = dict(zip(pairs.a, pairs.item))
    return [by_action.get(a, labels[a]) for a in range(len(labels))]


def _timestamps(frame: pd.DataFrame, col: str, loc: Location) -> np.ndarray:
    s = frame[col]
    if pd.api.types.is_numeric_dtype(s):
        return _numeric(frame, col, loc, "timestamp")
    parsed = pd.to_datetime(s, utc=True, errors="coerce")
    if parsed.isna().any():
        i = int(np.argmax(parsed.isna().to_numpy()))
        raise DataError(
            f"{loc}: column {col!r} (timestamp) has {int(parsed.isna().sum())} unreadable times "
            f"(row {frame.index[i]}: {s.iloc[i]!r})"
        )
    return (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()


def _where(frame: pd.DataFrame, cfg: LogsConfig, loc: Location) -> pd.DataFrame:
    if not cfg.where:
        return frame
    keep = np.ones(len(frame), dtype=bool)
    for col, value in cfg.where.items():
        keep &= _labels(frame[col]) == (
            str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
        )
    if not keep.any():
        raise DataError(f"{loc}: no rows where {describe_where(cfg)} (ope.logs.where)")
    return frame[keep]


def describe_where(cfg: LogsConfig) -> str:
    return " and ".join(f"{c} == {v!r}" for c, v in cfg.where.items()) if cfg.where else "all rows"


# -- the reader ----------------------------------------------------------------------------------


def read_feedback(cfg: LogsConfig, keep: Sequence[str] = ()) -> FeedbackLog:
    """The log ``cfg`` declares, checked; ``keep``: further raw columns to carry (a ranker's context)."""
    loc = log_location(cfg)
    fmt = log_format(cfg, loc)
    header = log_columns(cfg)
    c = cfg.columns
    context = _context_columns(cfg, header, loc)
    needed = {c.action: "ope.logs.columns.action", c.reward: "ope.logs.columns.reward"}
    needed[c.propensity] = "ope.logs.columns.propensity"
    for key in ("position", "user", "item", "timestamp"):
        if getattr(c, key) is not None:
            needed.setdefault(getattr(c, key), f"ope.logs.columns.{key}")
    for col in context:
        needed.setdefault(col, "ope.logs.columns.context")
    for col in cfg.where:
        needed.setdefault(col, "ope.logs.where")
    for col in keep:
        needed.setdefault(col, "a column the target policy reads")
    _check_present(loc, header, needed)
    frame = _read(cfg, loc, list(needed))
    rows_in_file = len(frame)
    if frame.empty:
        raise DataError(f"{loc}: header only, no logged rounds")
    frame = _where(frame, cfg, loc)

    source = loc.uri if not cfg.where else f"{loc.uri} [{describe_where(cfg)}]"
    reward = _numeric(frame, c.reward, loc, "reward")
    propensity = _numeric(frame, c.propensity, loc, "propensity")
    bad = (propensity <= 0) | (propensity > 1)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"{loc}: column {c.propensity!r} (propensity) has {int(bad.sum())} values outside (0, 1] "
            f"(row {frame.index[i]}: {propensity[i]!r}); a propensity is the logging policy's probability "
            "of the logged action"
        )
    action, labels = _action_labels(frame, c.action, cfg, loc)
    if c.position is not None:
        pos = _numeric(frame, c.position, loc, "position")
        if (pos != np.round(pos)).any() or (pos < cfg.position_base).any():
            i = int(np.argmax((pos != np.round(pos)) | (pos < cfg.position_base)))
            raise DataError(
                f"{loc}: column {c.position!r} (position) must hold whole numbers from "
                f"ope.logs.position_base={cfg.position_base} (row {frame.index[i]}: {pos[i]!r})"
            )
        position = pos.astype(np.int64) - cfg.position_base
    else:
        position = np.zeros(len(frame), dtype=np.int64)
    ctx = (
        np.column_stack([_numeric(frame, col, loc, "context") for col in context])
        if context
        else np.zeros((len(frame), 0))
    )
    ts = _timestamps(frame, c.timestamp, loc) if c.timestamp is not None else None
    users = None
    if c.user is not None:
        if frame[c.user].isna().any():
            i = int(np.argmax(frame[c.user].isna().to_numpy()))
            raise DataError(f"{loc}: column {c.user!r} (user) has an empty value (row {frame.index[i]})")
        users = _labels(frame[c.user])
    items = _item_ids(frame, c.item, action, labels, loc)
    log = LoggedFeedback(
        action=action,
        reward=reward,
        propensity=propensity,
        position=position,
        context=ctx,
        n_actions=len(labels),
        timestamp=ts,
        source=source,
    )
    description = {
        "source": "logs",
        "format": fmt,
        "path": loc.uri,
        "slice": describe_where(cfg),
        "rows_in_file": rows_in_file,
        "rounds": log.n,
        "actions": log.n_actions,
        "positions": log.n_positions,
        "context_columns": len(context),
        "users": None if users is None else int(len(np.unique(users))),
        "mean_reward": float(reward.mean()),
        "binary_reward": bool(np.isin(reward, (0.0, 1.0)).all()),
        "ordered_by": c.timestamp or "file order",
        "columns": {k: v for k, v in c.model_dump().items() if v not in (None, [])},
    }
    extra = frame[list(dict.fromkeys(keep))].reset_index(drop=True) if keep else pd.DataFrame(index=range(log.n))
    return FeedbackLog(
        log=log,
        actions=tuple(labels),
        items=tuple(items),
        users=users,
        extra=extra,
        context_columns=tuple(context),
        ordered_by=c.timestamp,
        description=description,
    )


def write_feedback(frame: pd.DataFrame, path: str) -> str:
    """Write a log frame as CSV or Parquet by the path's extension (local or a URI); returns the path."""
    loc = locate(path, "logged feedback")
    loc.fs.create_dir(loc.path.rsplit("/", 1)[0], recursive=True)
    if loc.name.lower().endswith(_PARQUET_SUFFIXES):
        with loc.fs.open_output_stream(loc.path) as f:
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), f)
    else:
        data = frame.to_csv(index=False).encode()
        with loc.fs.open_output_stream(loc.path, compression=None) as f:  # compressed here, not by the name
            f.write(gzip.compress(data) if loc.name.lower().endswith(".gz") else data)
    return path
