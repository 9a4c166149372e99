"""What retrievers learn from and are queried with: users' time-ordered topics, ragged.

:class:`UserSequences` holds each user's input topics (with timestamps and weights) in one
CSR-style layout, so a million users cost three flat arrays, not a million lists.
:class:`TrainingData` is what ``Retriever.fit`` takes: the training users' sequences plus the
side information some retrievers use (the spine's topic vectors, item and user features, a
validation set for early stopping). :class:`Queries` pairs users' inputs with held-out targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from reco.data.histories import flat_lists
from reco.errors import DataError

SEQUENCE_COLUMNS = ["user_id", "topics", "ts", "weights"]


def ragged_offsets(lengths: np.ndarray) -> np.ndarray:
    return np.r_[0, np.cumsum(np.asarray(lengths, np.int64))].astype(np.int64)


def ragged_rows(offsets: np.ndarray) -> np.ndarray:
    """Row index of every element of a ragged array."""
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


@dataclass
class UserSequences:
    """Input topics of users, each user's in time order (oldest first)."""

    user_ids: np.ndarray  # (n,) dense user ids
    offsets: np.ndarray  # (n + 1,) start of each user's topics in the flat arrays
    topics: np.ndarray  # (total,) int64
    ts: np.ndarray  # (total,) int64 seconds; all zero where a data set has no time
    weights: np.ndarray  # (total,) float32
    _order: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.user_ids = np.asarray(self.user_ids, np.int64)
        self.offsets = np.asarray(self.offsets, np.int64)
        self.topics = np.asarray(self.topics, np.int64)
        self.ts = np.asarray(self.ts, np.int64)
        self.weights = np.asarray(self.weights, np.float32)
        if len(self.offsets) != len(self.user_ids) + 1 or self.offsets[-1] != len(self.topics):
            raise DataError(
                f"ragged sequences are inconsistent: {len(self.user_ids)} users, {len(self.offsets)} offsets, "
                f"{len(self.topics)} topics"
            )

    def __len__(self) -> int:
        return len(self.user_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def has_time(self) -> bool:
        """False where every timestamp is equal (Last.fm): recency then has no meaning."""
        return len(self.ts) > 0 and bool(self.ts.max() > self.ts.min())

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s, e = self.offsets[i], self.offsets[i + 1]
        return self.topics[s:e], self.ts[s:e], self.weights[s:e]

    def positions(self, user_ids: np.ndarray) -> np.ndarray:
        """Row of each user id, -1 where the user is not here."""
        ids = np.asarray(user_ids, np.int64)
        if len(self.user_ids) == 0:
            return np.full(len(ids), -1, np.int64)
        if self._order is None:
            self._order = np.argsort(self.user_ids, kind="stable")
        sorted_ids = self.user_ids[self._order]
        at = np.clip(np.searchsorted(sorted_ids, ids), 0, len(sorted_ids) - 1)
        return np.where(sorted_ids[at] == ids, self._order[at], -1)

    def take(self, rows: np.ndarray) -> UserSequences:
        rows = np.asarray(rows, np.int64)
        lengths = self.lengths[rows]
        idx = np.repeat(self.offsets[rows], lengths) + (
            np.arange(lengths.sum()) - np.repeat(ragged_offsets(lengths)[:-1], lengths)
        )
        return UserSequences(
            self.user_ids[rows], ragged_offsets(lengths), self.topics[idx], self.ts[idx], self.weights[idx]
        )

    def head(self, keep: np.ndarray) -> UserSequences:
        """The first ``keep[i]`` topics of each user (their oldest ones)."""
        keep = np.minimum(np.asarray(keep, np.int64), self.lengths)
        mask = (np.arange(len(self.topics)) - np.repeat(self.offsets[:-1], self.lengths)) < np.repeat(
            keep, self.lengths
        )
        return UserSequences(self.user_ids, ragged_offsets(keep), self.topics[mask], self.ts[mask], self.weights[mask])

    def tail(self, n: int | np.ndarray) -> UserSequences:
        """The last ``n`` topics of each user (their latest ones)."""
        n = np.minimum(np.broadcast_to(np.asarray(n, np.int64), self.lengths.shape), self.lengths)
        from_end = np.repeat(self.offsets[1:], self.lengths) - np.arange(len(self.topics))
        mask = from_end <= np.repeat(n, self.lengths)
        return UserSequences(self.user_ids, ragged_offsets(n), self.topics[mask], self.ts[mask], self.weights[mask])

    def to_table(self) -> pa.Table:
        def lists(values: np.ndarray, typ: pa.DataType) -> pa.ListArray:
            return pa.ListArray.from_arrays(pa.array(self.offsets.astype(np.int32)), pa.array(values, typ))

        return pa.table(
            {
                "user_id": pa.array(self.user_ids, pa.int64()),
                "topics": lists(self.topics, pa.int64()),
                "ts": lists(self.ts, pa.int64()),
                "weights": lists(self.weights, pa.float32()),
            }
        )

    @classmethod
    def from_table(cls, table: pa.Table) -> UserSequences:
        """From history rows (reco.data.histories) or :meth:`to_table` output: user_id, topics[, ts, weights]."""
        missing = [c for c in ("user_id", "topics") if c not in table.column_names]
        if missing:
            raise DataError(f"user sequences need columns {missing}; the table has {table.column_names}")
        topics, lengths = flat_lists(table.column("topics"))
        offsets = ragged_offsets(lengths)
        ts = flat_lists(table.column("ts"))[0] if "ts" in table.column_names else np.zeros(len(topics), np.int64)
        w = (
            flat_lists(table.column("weights"))[0]
            if "weights" in table.column_names
            else np.ones(len(topics), np.float32)
        )
        return cls(table.column("user_id").to_numpy(), offsets, topics, ts, w)

    @classmethod
    def from_interactions(
        cls, user: np.ndarray, topic: np.ndarray, ts: np.ndarray, weight: np.ndarray
    ) -> UserSequences:
        """Group interactions by user, each user's in (ts, topic id) order."""
        order = np.lexsort((topic, ts, user))
        user, topic, ts, weight = user[order], topic[order], ts[order], weight[order]
        starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]]) if len(user) else np.empty(0, np.int64)
        return cls(user[starts], np.r_[starts, len(user)], topic, ts, weight)


@dataclass
class Queries:
    """Users to retrieve for, their inputs (representation and topics to exclude) and held-out targets."""

    inputs: UserSequences
    target_offsets: np.ndarray  # (n + 1,)
    targets: np.ndarray  # (total,) in time order: the first one is the next item

    def __len__(self) -> int:
        return len(self.inputs)

    def target_lists(self) -> list[np.ndarray]:
        return np.split(self.targets, self.target_offsets[1:-1])

    def take(self, rows: np.ndarray) -> Queries:
        rows = np.asarray(rows, np.int64)
        lengths = np.diff(self.target_offsets)[rows]
        idx = np.repeat(self.target_offsets[rows], lengths) + (
            np.arange(lengths.sum()) - np.repeat(ragged_offsets(lengths)[:-1], lengths)
        )
        return Queries(self.inputs.take(rows), ragged_offsets(lengths), self.targets[idx])


@dataclass
class TrainingData:
    """Everything ``Retriever.fit`` may use; only ``sequences`` and ``n_topics`` are always there."""

    sequences: UserSequences  # the training users' inputs
    n_topics: int
    n_users: int  # size of the dense user id space (id embeddings)
    topic_vectors: np.ndarray | None = None  # (n_topics, d) the spine's StarSpace topics, unit norm
    item_features: np.ndarray | None = None  # (n_topics, F) float32
    user_features: np.ndarray | None = None  # (n_users, G) float32
    validation: Queries | None = None  # held-out targets carved from the inputs, for early stopping

    def topic_counts(self) -> np.ndarray:
        return np.bincount(self.sequences.topics, minlength=self.n_topics).astype(np.int64)

    def require_topic_vectors(self, who: str) -> np.ndarray:
        if self.topic_vectors is None:
            raise DataError(
                f"retriever {who} needs the spine's topic vectors (embeddings/topics.parquet): run train_embeddings "
                "and export_embeddings first"
            )
        return self.topic_vectors
