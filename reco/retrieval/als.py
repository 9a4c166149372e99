"""Implicit-feedback ALS as a retriever: the expansion's weighted ALS (reco.embedding.als), not a second one.

Topic factors come from :func:`reco.embedding.als.fit_als` on the training users' engagement
matrix (confidence ``c = 1 + alpha * g(weight)``, ``retrieval.als``). A user's vector is the ALS
user step solved exactly with the topic factors fixed, ``(Y'Y + Y'(C_u - I)Y + reg I) x_u = Y'C_u p_u``,
so a user who never trained (Last.fm's held-out users) or whose history grew gets the vector the
fit would give them, and the saved state is the topic factors alone. Candidates are the top
``x_u . y_i`` (raw inner products, as ALS predicts preference) among topics the user has not
engaged with; a request's recent topics join the user's engagements (weight 1) before the solve,
so they shift the vector rather than being queried apart, and are excluded like the seen ones.

It fits in seconds on the data sets here, so, like Pixie, it is built from the spine's artifacts
when a run never saved it (``derivable``). Its user vectors are one per user (``UserVectors``,
m = 1) in the shape MF writes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from reco.embedding.als import confidence, fit_als, interaction_matrix
from reco.retrieval.base import Candidates, merge_max
from reco.retrieval.config import AlsRetrievalConfig
from reco.retrieval.data import TrainingData, UserSequences
from reco.retrieval.vector import UserState, VectorRetriever
from reco.run_dir import RunDir


def sequence_matrix(users: UserSequences, n_topics: int) -> sp.csr_matrix:
    """(users, topics) summed engagement weights, row i being ``users``' i-th user."""
    t = users.to_table()
    return interaction_matrix(users.user_ids, t.column("topics"), t.column("weights"), n_topics)


def fold_in(topics: np.ndarray, matrix: sp.csr_matrix, cfg: AlsRetrievalConfig) -> np.ndarray:
    """Each row's exact weighted ridge solution with the topic factors fixed (the ALS user step); 0 without topics."""
    y = np.asarray(topics, np.float64)
    cm1 = confidence(matrix, cfg)
    gram = y.T @ y + cfg.regularization * np.eye(y.shape[1])
    out = np.zeros((matrix.shape[0], y.shape[1]), np.float32)
    for u in range(matrix.shape[0]):
        s, e = cm1.indptr[u], cm1.indptr[u + 1]
        if s == e:
            continue
        yu, c = y[cm1.indices[s:e]], cm1.data[s:e].astype(np.float64)
        a, b = gram + (yu.T * c) @ yu, yu.T @ (1.0 + c)
        try:
            out[u] = np.linalg.solve(a, b)
        except np.linalg.LinAlgError:  # regularization 0 and too few topics: the least-norm solution
            out[u] = np.linalg.lstsq(a, b, rcond=None)[0]
    return out


class AlsRetriever(VectorRetriever):
    name = "als"
    derivable = True
    unit_vectors = False  # raw factors: the score is ALS's predicted preference

    def __init__(self, cfg=None):
        super().__init__(cfg)
        self.fitted: AlsRetrievalConfig = self.cfg.als  # the settings the topic factors were fitted with
        self.fit_meta: dict[str, Any] = {}

    def fit(self, data: TrainingData) -> AlsRetriever:
        self.fitted = self.cfg.als.model_copy()
        matrix = sequence_matrix(data.sequences, data.n_topics)
        fit = fit_als(matrix, self.fitted)
        self.fit_meta = {"fit_seconds": round(fit.seconds, 3), "iterations": fit.iterations, "nnz": int(matrix.nnz)}
        self.set_items(fit.topics)
        self.index_users(data.sequences)
        return self

    def embed_users(self, users: UserSequences) -> UserState:
        vecs = fold_in(self.item_vectors, sequence_matrix(users, self.n_topics), self.fitted)
        return np.arange(len(users) + 1, dtype=np.int64), vecs, np.ones(len(users), np.float32)

    def _candidates(self, rows: np.ndarray, recent: list[np.ndarray], exclude: list[np.ndarray], k: int) -> Candidates:
        offsets, flat, _ = self.state
        q = np.zeros((len(rows), flat.shape[1]), np.float32)
        known = rows >= 0
        q[known] = flat[offsets[rows[known]]]
        with_recent = [b for b, rc in enumerate(recent) if len(rc)]
        if with_recent:  # the request's topics join the user's engagements, then the user step again
            topics, weights = [], []
            for b in with_recent:
                seen, _, w = self.users.row(rows[b]) if rows[b] >= 0 else (np.empty(0, np.int64), None, np.empty(0))
                topics.append(np.r_[seen, recent[b]])
                weights.append(np.r_[w, np.ones(len(recent[b]))])
            lengths = [len(t) for t in topics]
            m = sp.csr_matrix(
                (np.concatenate(weights).astype(np.float32), np.concatenate(topics), np.r_[0, np.cumsum(lengths)]),
                shape=(len(with_recent), self.n_topics),
            )
            m.sum_duplicates()
            q[with_recent] = fold_in(self.item_vectors, m, self.fitted)
        kk = min(self.n_topics, k + max(len(x) for x in exclude))
        scores, ids = self.index.search(np.ascontiguousarray(q), kk)
        return Candidates.pack(
            [merge_max(ids[b : b + 1], scores[b : b + 1], exclude[b], k) for b in range(len(rows))], k
        )

    def _meta(self) -> dict[str, Any]:
        return {"als": self.fitted.model_dump(), **self.fit_meta}

    def _load_model(self, run: RunDir, meta: dict[str, Any]) -> None:
        self.fitted = AlsRetrievalConfig.model_validate(meta["als"])
        self.fit_meta = {k: meta[k] for k in ("fit_seconds", "iterations", "nnz") if k in meta}
