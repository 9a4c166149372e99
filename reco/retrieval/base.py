"""The retriever interface: one small contract so user representations swap by config.

A retriever is fitted on training users' sequences (:class:`~reco.retrieval.data.TrainingData`),
then *indexes* users (its per-user state: vectors, seen topics; batch inference in the Ray
jobs), then answers :meth:`Retriever.candidates` for a batch of users: topic ids and scores,
never a topic the user already engaged with. A request may carry the user's latest actions (up
to ``retrieval.short_term.max_topics`` topic ids) as a short-term interest; those topics are
excluded too. Everything a request does is numpy / faiss on precomputed state, so serving one
user costs about a millisecond.

User vectors, for the expansion job, come in one documented shape (:class:`UserVectors`): each
user has one or more unit vectors with importances, and scores an item as the max over its
vectors. Retrievers without a vector space (popularity, item-kNN, Pixie) say so with an error.

Persistence: everything lives under ``retrieval/<name>/`` in a run directory (``meta.json``,
``users`` and the retriever's own files). Retrievers are found by name in ``reco.retrieval.registry``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from reco import artifacts
from reco.errors import ArtifactError, ConfigError, DataError
from reco.retrieval.config import RetrievalConfig
from reco.retrieval.data import TrainingData, UserSequences
from reco.run_dir import RunDir

log = logging.getLogger(__name__)

META, USERS = "meta.json", "users"
Recent = Sequence[Sequence[int] | np.ndarray | None] | None


@dataclass
class Candidates:
    """Top topics per user: ``ids`` (B, k) with -1 where fewer exist, ``scores`` (B, k) with -inf there."""

    ids: np.ndarray
    scores: np.ndarray

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        keep = self.ids[i] >= 0
        return self.ids[i][keep], self.scores[i][keep]

    @classmethod
    def pack(cls, rows: list[tuple[np.ndarray, np.ndarray]], k: int) -> Candidates:
        ids = np.full((len(rows), k), -1, np.int64)
        scores = np.full((len(rows), k), -np.inf, np.float32)
        for i, (r_ids, r_scores) in enumerate(rows):
            n = min(k, len(r_ids))
            ids[i, :n], scores[i, :n] = r_ids[:n], r_scores[:n]
        return cls(ids, scores)


@dataclass
class UserVectors:
    """``vectors`` (n, m, d) unit rows and ``weights`` (n, m) importances, 0 on padding.

    A user scores an item vector v as ``max(vectors[i] @ v for i where weights[i] > 0)``; a
    single-vector retriever has m = 1 and weight 1.
    """

    user_ids: np.ndarray
    vectors: np.ndarray
    weights: np.ndarray

    def scores(self, items: np.ndarray) -> np.ndarray:
        """(n, T) max-over-vectors scores against item vectors (T, d)."""
        s = np.einsum("nmd,td->nmt", self.vectors, items)
        s[self.weights <= 0] = -np.inf
        return s.max(axis=1)


def top_k(scores: np.ndarray, exclude: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` items of one score vector, ties by id, without ``exclude`` or -inf entries."""
    s = np.asarray(scores, np.float32).copy()
    s[np.asarray(exclude, np.int64)] = -np.inf
    k = min(k, len(s))
    part = np.argpartition(-s, k - 1)[:k] if k < len(s) else np.arange(len(s))
    order = part[np.lexsort((part, -s[part]))]
    order = order[np.isfinite(s[order])]
    return order.astype(np.int64), s[order]


def merge_round_robin(
    ids: np.ndarray, scores: np.ndarray, exclude: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows are queries, most important first; take each one's next new topic in turn (PinnerSage)."""
    taken: dict[int, float] = {}
    banned = set(np.asarray(exclude).tolist())
    cursors = [0] * len(ids)
    while len(taken) < k:
        moved = False
        for q in range(len(ids)):
            while cursors[q] < ids.shape[1]:
                t, s = int(ids[q, cursors[q]]), float(scores[q, cursors[q]])
                cursors[q] += 1
                if t >= 0 and t not in banned and t not in taken:
                    taken[t] = s
                    moved = True
                    break
            if len(taken) >= k:
                break
        if not moved:
            break
    return np.fromiter(taken.keys(), np.int64, len(taken)), np.fromiter(taken.values(), np.float32, len(taken))


def merge_max(ids: np.ndarray, scores: np.ndarray, exclude: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each topic's best score over all queries, then the top ``k``."""
    flat_ids, flat_scores = ids.reshape(-1), scores.reshape(-1)
    keep = (flat_ids >= 0) & ~np.isin(flat_ids, exclude)
    flat_ids, flat_scores = flat_ids[keep], flat_scores[keep]
    order = np.lexsort((flat_ids, -flat_scores))
    flat_ids, flat_scores = flat_ids[order], flat_scores[order]
    _, first = np.unique(flat_ids, return_index=True)
    first = np.sort(first)[:k]
    return flat_ids[first], flat_scores[first].astype(np.float32)


class Retriever(ABC):
    """Fit, index users, retrieve candidates; save to and load from a run directory."""

    name: ClassVar[str] = ""
    has_vectors: ClassVar[bool] = False
    derivable: ClassVar[bool] = False  # cheap enough to build from the spine's artifacts when not saved
    job: ClassVar[str] = ""  # the batch job that saves a non-derivable retriever into a run directory

    def __init__(self, cfg: RetrievalConfig | None = None):
        self.cfg = cfg or RetrievalConfig()
        self.n_topics = 0
        self.users: UserSequences | None = None

    # -- the contract --------------------------------------------------------------------------
    @abstractmethod
    def fit(self, data: TrainingData) -> Retriever:
        """Learn from the training users' sequences, then index them."""

    def index_users(self, users: UserSequences) -> None:
        """Per-user state (what to exclude; vectors where the retriever has them) for these users."""
        self.users = users

    def candidates(self, user_ids: Sequence[int] | np.ndarray, k: int, recent: Recent = None) -> Candidates:
        """Up to ``k`` topics per user, best first, none the user (or the request) already has."""
        if k < 1:
            raise DataError(f"k={k}: ask for at least one candidate")
        user_ids = np.asarray(user_ids, np.int64).reshape(-1)
        recent_lists = self._check_recent(recent, len(user_ids))
        rows = self._rows(user_ids, recent_lists)
        exclude = [np.union1d(self._seen(r), rc) for r, rc in zip(rows, recent_lists)]
        return self._candidates(rows, recent_lists, exclude, k)

    @abstractmethod
    def _candidates(self, rows: np.ndarray, recent: list[np.ndarray], exclude: list[np.ndarray], k: int) -> Candidates:
        """Candidates for indexed rows (-1: an unknown user with recent topics only)."""

    def user_vectors(self, user_ids: Sequence[int] | np.ndarray) -> UserVectors:
        raise ConfigError(
            f"retriever {self.name} has no user vectors; use pooled, multi_interest, sequence_tower or two_tower"
        )

    # -- helpers shared by retrievers --------------------------------------------------------------
    def _require_fitted(self) -> UserSequences:
        if self.users is None or not self.n_topics:
            raise ArtifactError(f"retriever {self.name} is not fitted or loaded")
        return self.users

    def _check_recent(self, recent: Recent, n: int) -> list[np.ndarray]:
        if recent is None:
            return [np.empty(0, np.int64)] * n
        if len(recent) != n:
            raise DataError(f"recent topics: {len(recent)} lists for {n} users")
        out = []
        limit = self.cfg.short_term.max_topics
        for r in recent:
            arr = np.asarray([] if r is None else r, np.int64).reshape(-1)
            if len(arr) > limit:
                raise DataError(f"recent topics: {len(arr)} given, at most retrieval.short_term.max_topics={limit}")
            bad = arr[(arr < 0) | (arr >= self.n_topics)]
            if len(bad):
                raise DataError(f"recent topic id {int(bad[0])} is not a topic id (0..{self.n_topics - 1})")
            out.append(arr)
        return out

    def _rows(self, user_ids: np.ndarray, recent: list[np.ndarray]) -> np.ndarray:
        rows = self._require_fitted().positions(user_ids)
        for uid, r, rc in zip(user_ids, rows, recent):
            if r < 0 and len(rc) == 0:
                raise DataError(
                    f"unknown user id {int(uid)}: not indexed by retriever {self.name} and no recent topics given"
                )
        return rows

    def _seen(self, row: int) -> np.ndarray:
        return self.users.row(row)[0] if row >= 0 else np.empty(0, np.int64)

    def _latest(self, row: int, recent: np.ndarray) -> np.ndarray:
        """The user's topics in time order, the request's recent ones last."""
        return np.concatenate([self._seen(row), recent]) if len(recent) else self._seen(row)

    # -- persistence -------------------------------------------------------------------------------
    def save(self, run: RunDir, step: str = "retrieval") -> None:
        """The fitted state and the indexed users, under ``retrieval/<name>/``."""
        self.save_model(run, step)
        run.write_table(artifacts.retriever(self.name, USERS), self.user_table(self._require_fitted()), step=step)

    def save_model(self, run: RunDir, step: str = "retrieval") -> None:
        """Everything but the users (batch jobs write those with Ray Data)."""
        meta = {"name": self.name, "config": self.cfg.model_dump(), "n_topics": self.n_topics, **self._meta()}
        self._save_state(run, step)
        run.write_json(artifacts.retriever(self.name, META), meta, step=step)

    @classmethod
    def missing_from(cls, run: RunDir) -> str | None:
        """Why this retriever cannot be loaded from ``run`` (never saved and not derivable), or None."""
        if cls.derivable or run.has(artifacts.retriever(cls.name, META)):
            return None
        how = (
            f"run python -m {cls.job} --config <the run's config> first"
            if cls.job
            else "it is fitted by bench.retrieval only"
        )
        return f"{artifacts.retriever(cls.name, META)} is not in {run.uri}: {how}"

    @classmethod
    def load(cls, run: RunDir, cfg: RetrievalConfig | None = None, users: bool = True) -> Retriever:
        """A saved retriever; ``cfg`` (runtime settings) defaults to the one it was saved with.

        ``reco.retrieval.registry.load_retriever`` also builds a derivable one that was never saved.
        """
        if (missing := cls.missing_from(run)) is not None:
            raise ArtifactError(missing)
        meta = run.read_json(artifacts.retriever(cls.name, META))
        r = cls(cfg or RetrievalConfig.model_validate(meta["config"]))
        r.n_topics = int(meta["n_topics"])
        r._load_state(run, meta)
        if users:
            r.load_users(run.read_table(artifacts.retriever(cls.name, USERS)))
        return r

    def user_table(self, users: UserSequences) -> pa.Table:
        """What ``users`` persists: the sequences, plus vectors where the retriever has them."""
        return users.to_table()

    def load_users(self, table: pa.Table) -> None:
        self.users = UserSequences.from_table(table)

    def _meta(self) -> dict[str, Any]:
        return {}

    def _save_state(self, run: RunDir, step: str) -> None:  # noqa: B027 (optional hook: most retrievers save nothing more)
        """Write the retriever's own files beside ``meta.json``."""

    def _load_state(self, run: RunDir, meta: dict[str, Any]) -> None:  # noqa: B027 (optional hook, as _save_state)
        """Read back what :meth:`_save_state` wrote."""
