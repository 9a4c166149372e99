"""Raw columns -> model inputs, fitted on training rows only.

A :class:`FeatureSpec` names the fields of a data set: categorical (one id), multi-valued
categorical ("Action|Comedy", pooled by the model) and dense (numeric, optionally through a
signed ``log1p`` first), each on the user, item or context side. :meth:`FeaturePipeline.fit`
learns, from the training frame alone, vocabularies with an out-of-vocabulary bucket (id 0),
which fields are hashed instead (more distinct values than ``hash_threshold``) and the mean /
std that standardise dense fields, so nothing about validation or test rows leaks into the
inputs. :meth:`FeaturePipeline.rows` turns any frame into :class:`Rows` (int64 ids, float32
dense values, labels, groups), the one format the training loop, the evaluation and the
artifact share.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from reco.errors import DataError
from reco.rank.config import RankFeatureConfig

FieldKind = Literal["cat", "multi", "dense"]
Side = Literal["user", "item", "context"]
Transform = Literal["none", "log1p"]
MULTI_SEPARATOR = "|"


@dataclass(frozen=True)
class FieldSpec:
    """One raw column: its kind, side, and how its raw value is read (kept with the artifact for serving)."""

    name: str
    kind: FieldKind
    side: Side = "context"
    transform: Transform = "none"  # dense: log1p is sign(x) * log(1 + |x|), applied before standardising
    separator: str = MULTI_SEPARATOR  # multi: what separates a cell's tokens


@dataclass(frozen=True)
class FeatureSpec:
    """The fields of a data set and which raw columns identify users, items and groups."""

    fields: tuple[FieldSpec, ...]
    user_key: str | None = None  # raw user id column (catalogs, serving)
    item_key: str | None = None  # raw item id column
    group_key: str | None = None  # per-group metrics (GAUC, leave-one-out lists); default user_key

    def group_column(self) -> str | None:
        return self.group_key or self.user_key


@dataclass(frozen=True)
class FeatureLayout:
    """What a model needs to know about its inputs: sizes and slots of id fields, dense count."""

    names: tuple[str, ...]  # id fields (cat and multi), in slot order
    sizes: tuple[int, ...]  # embedding rows of each id field, OOV bucket included
    slots: tuple[int, ...]  # columns of each id field in Rows.cat (1, or max_len for multi)
    n_dense: int
    user_field: int | None = None  # index into names of the user id field
    item_field: int | None = None

    @property
    def n_fields(self) -> int:
        """Fields a model embeds: every id field plus one per dense value."""
        return len(self.names) + self.n_dense

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "sizes": list(self.sizes),
            "slots": list(self.slots),
            "n_dense": self.n_dense,
            "user_field": self.user_field,
            "item_field": self.item_field,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureLayout:
        return cls(
            tuple(d["names"]), tuple(d["sizes"]), tuple(d["slots"]), d["n_dense"], d["user_field"], d["item_field"]
        )


@dataclass
class Rows:
    """Encoded rows: ids (N, slots), dense (N, D), labels (N, tasks), group ids (N,)."""

    cat: np.ndarray
    dense: np.ndarray
    labels: np.ndarray
    groups: np.ndarray

    def __len__(self) -> int:
        return len(self.cat)

    def take(self, idx: np.ndarray | slice) -> Rows:
        return Rows(self.cat[idx], self.dense[idx], self.labels[idx], self.groups[idx])

    def batches(self, batch_size: int, rng: np.random.Generator | None = None) -> Iterator[Rows]:
        """Mini-batches, shuffled when ``rng`` is given (the in-process loop; Ray streams its own)."""
        order = rng.permutation(len(self)) if rng is not None else np.arange(len(self))
        for start in range(0, len(self), batch_size):
            yield self.take(order[start : start + batch_size])

    def to_table(self) -> pa.Table:
        """One scalar column per slot / dense value / label, which Ray Data streams as is."""
        cols = {f"c{i}": self.cat[:, i] for i in range(self.cat.shape[1])}
        cols.update({f"d{i}": self.dense[:, i] for i in range(self.dense.shape[1])})
        cols.update({f"y{i}": self.labels[:, i] for i in range(self.labels.shape[1])})
        cols["g"] = self.groups
        return pa.table(cols)

    @classmethod
    def from_columns(cls, batch: dict[str, np.ndarray] | pa.Table) -> Rows:
        """The inverse of :meth:`to_table` for a numpy-dict or pyarrow batch."""
        names = batch.column_names if isinstance(batch, pa.Table) else list(batch)
        col = (
            (lambda n: batch.column(n).to_numpy()) if isinstance(batch, pa.Table) else (lambda n: np.asarray(batch[n]))
        )
        n_rows = len(col("g"))

        def stack(prefix: str, dtype: type) -> np.ndarray:
            keys = sorted((k for k in names if k[0] == prefix and k[1:].isdigit()), key=lambda k: int(k[1:]))
            return np.stack([col(k) for k in keys], axis=1).astype(dtype) if keys else np.zeros((n_rows, 0), dtype)

        return cls(stack("c", np.int64), stack("d", np.float32), stack("y", np.float32), col("g").astype(np.int64))

    @classmethod
    def concat(cls, parts: list[Rows]) -> Rows:
        return cls(*(np.concatenate([getattr(p, a) for p in parts]) for a in ("cat", "dense", "labels", "groups")))


@dataclass
class FittedField:
    spec: FieldSpec
    vocab: list[str] = field(default_factory=list)  # id k+1 is vocab[k]; 0 is OOV (and padding of multi)
    buckets: int = 0  # > 0: hashed into ids 1..buckets
    slots: int = 1
    mean: float = 0.0
    std: float = 1.0

    @property
    def size(self) -> int:
        return (self.buckets or len(self.vocab)) + 1


def stable_hash(values: pd.Series | np.ndarray) -> np.ndarray:
    """A uint64 hash of the values' strings, the same in every process and run (SipHash, fixed key)."""
    return pd.util.hash_array(np.asarray(_as_strings(pd.Series(values)), dtype=object))


def _as_strings(s: pd.Series) -> pd.Series:
    return s.astype(object).where(s.notna(), "").astype(str)


def _tokens(s: pd.Series, separator: str = MULTI_SEPARATOR) -> pd.Series:
    """Multi-valued cells -> one row per token, indexed by the cell's row position."""
    split = _as_strings(s.reset_index(drop=True)).str.split(separator, regex=False).explode()
    return split[split != ""]


def _dense_values(fs: FieldSpec, col: pd.Series) -> np.ndarray:
    """A dense column as float64 (unparseable or missing -> NaN), transformed as the field says."""
    x = pd.to_numeric(col, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    return np.sign(x) * np.log1p(np.abs(x)) if fs.transform == "log1p" else x


class FeaturePipeline:
    """Fitted encoders of every field; serialises to plain lists and numbers (:meth:`to_dict`)."""

    def __init__(self, spec: FeatureSpec, fields: list[FittedField], multi_max_len: int):
        self.spec = spec
        self.fields = fields
        self.multi_max_len = multi_max_len
        self._index = {f.spec.name: pd.Index(f.vocab) for f in fields if f.vocab}

    @classmethod
    def fit(cls, train: pd.DataFrame, spec: FeatureSpec, cfg: RankFeatureConfig) -> FeaturePipeline:
        """Learn every field's encoder from the training frame only."""
        if len(train) == 0:
            raise DataError("cannot fit features on an empty training set")
        fitted = []
        for fs in spec.fields:
            if fs.name not in train.columns:
                raise DataError(f"feature column {fs.name!r} is missing from the training data")
            col = train[fs.name]
            if fs.kind == "dense":
                x = _dense_values(fs, col)
                seen = bool((~np.isnan(x)).any())
                mean, std = (float(np.nanmean(x)) if seen else 0.0, float(np.nanstd(x)) if seen else 1.0)
                fitted.append(FittedField(fs, mean=mean, std=std if std > 1e-12 else 1.0))
                continue
            values = _tokens(col, fs.separator) if fs.kind == "multi" else _as_strings(col)
            counts = values.value_counts()
            kept = counts[counts >= cfg.min_count]
            slots = cfg.multi_max_len if fs.kind == "multi" else 1
            if fs.kind == "cat" and len(kept) > cfg.hash_threshold:
                fitted.append(FittedField(fs, buckets=cfg.hash_buckets, slots=slots))
            else:
                fitted.append(FittedField(fs, vocab=sorted(kept.index.tolist()), slots=slots))
        return cls(spec, fitted, cfg.multi_max_len)

    # -- layout ----------------------------------------------------------------------------
    @property
    def id_fields(self) -> list[FittedField]:
        return [f for f in self.fields if f.spec.kind != "dense"]

    @property
    def dense_fields(self) -> list[FittedField]:
        return [f for f in self.fields if f.spec.kind == "dense"]

    def layout(self) -> FeatureLayout:
        ids = self.id_fields
        names = [f.spec.name for f in ids]

        def find(key):
            return names.index(key) if key in names else None

        return FeatureLayout(
            tuple(names),
            tuple(f.size for f in ids),
            tuple(f.slots for f in ids),
            len(self.dense_fields),
            find(self.spec.user_key),
            find(self.spec.item_key),
        )

    def side_columns(self, side: Side) -> tuple[np.ndarray, np.ndarray]:
        """(slot columns, dense columns) that hold one side's features."""
        slots, dense, s = [], [], 0
        for f in self.id_fields:
            if f.spec.side == side:
                slots.extend(range(s, s + f.slots))
            s += f.slots
        for j, f in enumerate(self.dense_fields):
            if f.spec.side == side:
                dense.append(j)
        return np.asarray(slots, np.int64), np.asarray(dense, np.int64)

    # -- transform -------------------------------------------------------------------------
    def _encode_ids(self, f: FittedField, col: pd.Series) -> np.ndarray:
        if f.spec.kind == "multi":
            tok = _tokens(col, f.spec.separator)
            ids = self._index[f.spec.name].get_indexer(tok.to_numpy()) + 1 if f.vocab else np.zeros(len(tok), np.int64)
            pos = tok.groupby(level=0).cumcount().to_numpy()
            out = np.zeros((len(col), f.slots), np.int64)
            keep = pos < f.slots
            out[tok.index.to_numpy()[keep], pos[keep]] = ids[keep]
            return out
        if f.buckets:
            return (stable_hash(col) % np.uint64(f.buckets)).astype(np.int64)[:, None] + 1
        if not f.vocab:
            return np.zeros((len(col), 1), np.int64)
        return (self._index[f.spec.name].get_indexer(_as_strings(col).to_numpy()) + 1).astype(np.int64)[:, None]

    def transform(self, frame: pd.DataFrame, side: Side | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids (N, slots) int64, dense (N, D) float32); unknown values get id 0, missing dense 0.

        With ``side``, only that side's fields are read and encoded; the others stay unknown."""
        used = [side is None or f.spec.side == side for f in self.fields]
        missing = [f.spec.name for f, u in zip(self.fields, used) if u and f.spec.name not in frame.columns]
        if missing:
            raise DataError(f"feature columns missing from the data to encode: {missing}")
        n = len(frame)
        ids = [
            self._encode_ids(f, frame[f.spec.name])
            if side is None or f.spec.side == side
            else np.zeros((n, f.slots), np.int64)
            for f in self.id_fields
        ]
        cat = np.concatenate(ids, axis=1) if ids else np.zeros((n, 0), np.int64)
        dense = np.zeros((n, len(self.dense_fields)), np.float32)
        for j, f in enumerate(self.dense_fields):
            if side is not None and f.spec.side != side:
                continue
            x = (_dense_values(f.spec, frame[f.spec.name]) - f.mean) / f.std
            dense[:, j] = np.nan_to_num(x, nan=0.0)
        return cat, dense

    def groups(self, frame: pd.DataFrame) -> np.ndarray:
        """A stable int64 id per group (user) for per-group metrics; 0 when the data has none."""
        key = self.spec.group_column()
        if key is None or key not in frame.columns:
            return np.zeros(len(frame), np.int64)
        return stable_hash(frame[key]).view(np.int64)

    def rows(self, frame: pd.DataFrame, labels: list[str]) -> Rows:
        absent = [lab for lab in labels if lab not in frame.columns]
        if absent:
            raise DataError(f"label columns missing from the data: {absent}")
        cat, dense = self.transform(frame)
        y = frame[labels].to_numpy(np.float32, copy=True) if labels else np.zeros((len(frame), 0), np.float32)
        return Rows(cat, dense, y, self.groups(frame))

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": {
                "fields": [[f.name, f.kind, f.side, f.transform, f.separator] for f in self.spec.fields],
                "user_key": self.spec.user_key,
                "item_key": self.spec.item_key,
                "group_key": self.spec.group_key,
            },
            "fields": [
                {"vocab": f.vocab, "buckets": f.buckets, "slots": f.slots, "mean": f.mean, "std": f.std}
                for f in self.fields
            ],
            "multi_max_len": self.multi_max_len,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeaturePipeline:
        s = d["spec"]
        spec = FeatureSpec(tuple(FieldSpec(*f) for f in s["fields"]), s["user_key"], s["item_key"], s["group_key"])
        fields = [
            FittedField(fs, list(f["vocab"]), f["buckets"], f["slots"], f["mean"], f["std"])
            for fs, f in zip(spec.fields, d["fields"])
        ]
        return cls(spec, fields, d["multi_max_len"])
