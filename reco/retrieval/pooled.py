"""The spine's user: the mean of the StarSpace vectors of the topics they engaged with.

One vector per user, built from topics, so any user embeds without retraining. Topic vectors
come from the spine's ``embeddings/topics.parquet`` (or a StarSpace fitted in-process by the
benchmark on the protocol's inputs).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from reco.retrieval.data import TrainingData, UserSequences
from reco.retrieval.vector import UserState, VectorRetriever, single_vector_state


def pool(users: UserSequences, item_vectors: np.ndarray, weighted: bool) -> np.ndarray:
    """(n, d) mean (or log1p-weight-weighted mean) of each user's topics' vectors; zeros if none."""
    w = (
        np.log1p(np.maximum(users.weights, 0)).astype(np.float32) + 1e-3
        if weighted
        else np.ones(len(users.topics), np.float32)
    )
    m = sp.csr_matrix((w, users.topics, users.offsets), shape=(len(users), len(item_vectors)))
    totals = np.asarray(m.sum(axis=1)).ravel()
    return np.asarray(m @ item_vectors) / np.maximum(totals, 1e-12)[:, None]


class PooledRetriever(VectorRetriever):
    name = "pooled"
    derivable = True

    def fit(self, data: TrainingData) -> PooledRetriever:
        self.set_items(data.require_topic_vectors(self.name))
        self.index_users(data.sequences)
        return self

    def embed_users(self, users: UserSequences) -> UserState:
        return single_vector_state(pool(users, self.item_vectors, self.cfg.pooled.weighted))
