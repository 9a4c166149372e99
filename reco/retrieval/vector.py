"""Retrievers whose users are one or more vectors in the items' space, searched with faiss.

A user holds a ragged list of unit vectors, most important first, with importances (one for
pooled, the sequence tower and two-tower; one per interest for multi-interest). A request
queries the item index with the user's top vectors, plus a short-term vector (the mean of the
request's recent topics' item vectors) when it carries recent topics, and merges the results.
Item vectors and their faiss index are saved as ``items.parquet`` and ``items.faiss``.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import faiss
import numpy as np
import pyarrow as pa

from reco import artifacts
from reco.data.vectors import vector_column, vector_table, vectors_of
from reco.embedding.index import from_bytes, to_bytes
from reco.errors import DataError
from reco.retrieval.base import Candidates, Retriever, UserVectors, merge_max, merge_round_robin
from reco.retrieval.data import UserSequences, ragged_offsets
from reco.run_dir import RunDir

ITEMS, INDEX = "items.parquet", "items.faiss"
UserState = tuple[np.ndarray, np.ndarray, np.ndarray]  # offsets (n + 1,), vectors (total, d), weights (total,)


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(n, 1e-12), dtype=np.float32)


class VectorRetriever(Retriever):
    has_vectors = True
    unit_vectors: ClassVar[bool] = True  # False: raw inner products (MF's biased dot product)

    def __init__(self, cfg=None):
        super().__init__(cfg)
        self.item_vectors: np.ndarray | None = None
        self.index: faiss.Index | None = None
        self.state: UserState | None = None

    # -- what a subclass provides ---------------------------------------------------------------
    @abstractmethod
    def embed_users(self, users: UserSequences) -> UserState:
        """Each user's vectors (most important first) and importances, ragged."""

    def queries_per_user(self) -> int:
        return 1

    def merge_mode(self) -> str:
        return "round_robin"

    # -- state ------------------------------------------------------------------------------------
    def set_items(self, vectors: np.ndarray) -> None:
        self.item_vectors = unit(vectors) if self.unit_vectors else np.ascontiguousarray(vectors, dtype=np.float32)
        self.n_topics = len(self.item_vectors)
        self.index = faiss.IndexFlatIP(self.item_vectors.shape[1])
        self.index.add(self.item_vectors)

    def index_users(self, users: UserSequences) -> None:
        super().index_users(users)
        self.state = self.embed_users(users)

    def user_vectors(self, user_ids) -> UserVectors:
        ids = np.asarray(user_ids, np.int64)
        rows = self._require_fitted().positions(ids)
        if (rows < 0).any():
            raise DataError(f"unknown user id {int(ids[rows < 0][0])}: not indexed by retriever {self.name}")
        offsets, flat, weights = self.state
        counts = np.diff(offsets)[rows]
        m = max(int(counts.max()) if len(counts) else 1, 1)
        vecs = np.zeros((len(rows), m, flat.shape[1]), np.float32)
        w = np.zeros((len(rows), m), np.float32)
        for i, (r, c) in enumerate(zip(rows, counts)):
            vecs[i, :c] = flat[offsets[r] : offsets[r] + c]
            w[i, :c] = weights[offsets[r] : offsets[r] + c]
        return UserVectors(ids, vecs, w)

    # -- retrieval --------------------------------------------------------------------------------
    def _candidates(self, rows: np.ndarray, recent: list[np.ndarray], exclude: list[np.ndarray], k: int) -> Candidates:
        offsets, flat, weights = self.state
        queries, owners, importance = [], [], []
        for b, (r, rc) in enumerate(zip(rows, recent)):
            long_w = np.empty(0, np.float32)
            if r >= 0:
                s, e = offsets[r], min(offsets[r + 1], offsets[r] + self.queries_per_user())
                long_w = weights[s:e] / max(float(weights[offsets[r] : offsets[r + 1]].sum()), 1e-12)
                queries.append(flat[s:e])
                owners += [b] * (e - s)
                importance += long_w.tolist()
            if len(rc):
                queries.append(unit(self.item_vectors[rc].mean(axis=0, keepdims=True)))
                owners.append(b)
                importance.append(self.cfg.short_term.weight * (float(long_w.max()) if len(long_w) else 1.0))
        if not queries:  # only users with no topics at all: nothing to search from
            return Candidates.pack([(np.empty(0, np.int64), np.empty(0, np.float32))] * len(rows), k)
        q = np.ascontiguousarray(np.concatenate(queries), dtype=np.float32)
        kk = min(self.n_topics, k + max(len(x) for x in exclude))
        scores, ids = self.index.search(q, kk)
        owners_arr, importance_arr = np.asarray(owners), np.asarray(importance)
        merge = merge_round_robin if self.merge_mode() == "round_robin" else merge_max
        out = []
        for b in range(len(rows)):
            mine = np.flatnonzero(owners_arr == b)
            mine = mine[np.argsort(-importance_arr[mine], kind="stable")]
            out.append(merge(ids[mine], scores[mine], exclude[b], k))
        return Candidates.pack(out, k)

    # -- persistence ------------------------------------------------------------------------------
    def user_table(self, users: UserSequences) -> pa.Table:
        offsets, flat, weights = (
            self.state if users is self.users and self.state is not None else self.embed_users(users)
        )
        t = users.to_table()
        list_offsets = pa.array(offsets.astype(np.int32))
        vecs = pa.ListArray.from_arrays(list_offsets, vector_column(flat))
        w = pa.ListArray.from_arrays(list_offsets, pa.array(weights.astype(np.float32), pa.float32()))
        return t.append_column("vectors", vecs).append_column("vector_weights", w)

    def load_users(self, table: pa.Table) -> None:
        super().load_users(table)
        vecs = table.column("vectors").combine_chunks()
        counts = vecs.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
        dim = self.item_vectors.shape[1]
        flat = vecs.flatten().values.to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32)
        w = table.column("vector_weights").combine_chunks().flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        self.state = (ragged_offsets(counts), flat, w)

    def _save_state(self, run: RunDir, step: str) -> None:
        run.write_table(
            artifacts.retriever(self.name, ITEMS),
            vector_table("topic_id", np.arange(self.n_topics), self.item_vectors),
            step=step,
        )
        run.write_bytes(
            artifacts.retriever(self.name, INDEX), to_bytes(self.index), step=step, rows=int(self.index.ntotal)
        )
        self._save_model(run, step)

    def _load_state(self, run: RunDir, meta: dict[str, Any]) -> None:
        items = vectors_of(run.read_table(artifacts.retriever(self.name, ITEMS)))
        self.item_vectors = unit(items) if self.unit_vectors else np.ascontiguousarray(items, dtype=np.float32)
        self.index = from_bytes(run.read_bytes(artifacts.retriever(self.name, INDEX)))
        if self.index.ntotal != len(self.item_vectors):
            raise DataError(
                f"{artifacts.retriever(self.name, INDEX)} holds {self.index.ntotal} items, items.parquet "
                f"{len(self.item_vectors)}"
            )
        self._load_model(run, meta)

    def _save_model(self, run: RunDir, step: str) -> None:
        pass

    def _load_model(self, run: RunDir, meta: dict[str, Any]) -> None:
        pass


def single_vector_state(vectors: np.ndarray) -> UserState:
    """One unit vector per user, importance 1."""
    n = len(vectors)
    return np.arange(n + 1, dtype=np.int64), unit(vectors), np.ones(n, np.float32)
