"""Item-kNN over the user's last few topics: the simple sequence-aware baseline.

Two topics are similar when the same users engaged with both (cosine of their user columns,
shrunk toward zero for rare pairs); a user's candidates are the summed neighbour lists of their
latest ``last_n`` topics (a request's recent topics count as the latest). A representation that
cannot beat this is not earning its cost.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from reco import artifacts
from reco.retrieval.base import Candidates, Retriever, top_k
from reco.retrieval.data import TrainingData, UserSequences
from reco.run_dir import RunDir

NEIGHBOURS = "neighbours.npz"


def engagement_matrix(users: UserSequences, n_topics: int) -> sp.csr_matrix:
    """Binary users x topics matrix."""
    data = np.ones(len(users.topics), np.float32)
    m = sp.csr_matrix((data, users.topics, users.offsets), shape=(len(users), n_topics))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def cosine_neighbours(users: UserSequences, n_topics: int, neighbours: int, shrink: float) -> sp.csr_matrix:
    """Topics x topics similarities, each row keeping its ``neighbours`` largest (self excluded)."""
    x = engagement_matrix(users, n_topics)
    co = (x.T @ x).tocsr().astype(np.float32)
    co.setdiag(0)
    co.eliminate_zeros()
    norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel()).astype(np.float32)
    rows = np.repeat(np.arange(n_topics), np.diff(co.indptr))
    co.data = co.data / (norms[rows] * norms[co.indices] + shrink + 1e-12)
    keep_idx, keep_val, indptr = [], [], [0]
    for t in range(n_topics):
        s, e = co.indptr[t], co.indptr[t + 1]
        idx, val = co.indices[s:e], co.data[s:e]
        if len(idx) > neighbours:
            top = np.argpartition(-val, neighbours - 1)[:neighbours]
            idx, val = idx[top], val[top]
        keep_idx.append(idx)
        keep_val.append(val)
        indptr.append(indptr[-1] + len(idx))
    return sp.csr_matrix(
        (np.concatenate(keep_val) if keep_val else [], np.concatenate(keep_idx) if keep_idx else [], indptr),
        shape=(n_topics, n_topics),
        dtype=np.float32,
    )


class LastItemsKnnRetriever(Retriever):
    name = "last_items_knn"
    derivable = True

    def __init__(self, cfg=None):
        super().__init__(cfg)
        self.sim: sp.csr_matrix | None = None

    def fit(self, data: TrainingData) -> LastItemsKnnRetriever:
        c = self.cfg.last_items_knn
        self.n_topics = data.n_topics
        self.sim = cosine_neighbours(data.sequences, data.n_topics, c.neighbours, c.shrink)
        self.index_users(data.sequences)
        return self

    def _candidates(self, rows, recent, exclude, k) -> Candidates:
        n = self.cfg.last_items_knn.last_n
        out = []
        for r, rc, ex in zip(rows, recent, exclude):
            last = self._latest(r, rc)[-n:]
            scores = np.asarray(self.sim[last].sum(axis=0)).ravel()
            ids, s = top_k(scores, ex, k)
            keep = s > 0  # topics no latest topic co-occurs with are not candidates
            out.append((ids[keep], s[keep]))
        return Candidates.pack(out, k)

    def _save_state(self, run: RunDir, step: str) -> None:
        import io

        buf = io.BytesIO()
        sp.save_npz(buf, self.sim)
        run.write_bytes(artifacts.retriever(self.name, NEIGHBOURS), buf.getvalue(), step=step)

    def _load_state(self, run: RunDir, meta: dict[str, Any]) -> None:
        import io

        self.sim = sp.load_npz(io.BytesIO(run.read_bytes(artifacts.retriever(self.name, NEIGHBOURS)))).tocsr()
