"""User co-engagement: users who engaged with the seeds' topics, no embedding (user-kNN, sparse products).

Each user is a row of the user-topic matrix: engagement ``g(w)`` (1, or log1p of the weight)
times an IDF-style weight ``idf_t ** idf_power`` with ``idf_t = log(1 + users / users_t)``, so a
topic everyone engaged with says little and a rare shared one a lot; rows are scaled to unit
length (``normalize``), so a user with a long history is not close to everyone. The similarity
of two users is the inner product of their rows (cosine over shared topics). A list scores a user

    score(u) = sum over seeds s of sim(u, s) ** power

``power = 1`` is the weighted overlap of the user's topics with the seeds' topics, one sparse
product (``X @ (X[seeds]' 1)``); a larger power lets the seeds a user is really close to count
more than many faint overlaps (the user-kNN reading), at the cost of one (seeds x users) sparse
product per list, in chunks of seeds. Users with no topic in common with any seed score 0.

With ``neighbours = k`` it is a true user-kNN: a graph holding each user's k most similar other
users (``sim ** power``) is built once, in chunks of users, and a list is one sparse product
with it. ``neighbours_of = "seeds"`` sums, for a user, the similarities of the seeds that have
it among their k neighbours (each seed votes for its own k nearest users); ``"users"`` sums the
similarities of the seeds among the user's own k neighbours (a user is judged by the company it
keeps, so a user close to everyone gains nothing from being so). Either way a seed's many faint
overlaps no longer add up to outweigh a few close users. The graph costs a similarity for every
pair of users to build (quadratic: seconds at 20,000 users, far too long at a million), so it is
for data sets of up to some 10^5 users; without ``neighbours`` nothing is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from reco.expansion.config import CoEngagementConfig

SEED_CHUNK = 256
CHUNK_CELLS = 1 << 23  # the kNN graph is built from dense (users chunk x users) similarity blocks of this size


@dataclass(frozen=True)
class CoEngagement:
    """The weighted, normalised user-topic rows (CSR, one per user position), the scoring config and,
    with ``neighbours``, the kNN graph (row u: u's nearest users, ``sim ** power``)."""

    rows: sp.csr_matrix
    cfg: CoEngagementConfig
    knn: sp.csr_matrix | None = None

    @property
    def n(self) -> int:
        return self.rows.shape[0]

    @classmethod
    def build(cls, matrix: sp.csr_matrix, cfg: CoEngagementConfig) -> CoEngagement:
        """From a (users, topics) engagement matrix (summed weights; reco.embedding.als.interaction_matrix)."""
        m = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
        m.eliminate_zeros()
        m.data = np.log1p(np.maximum(m.data, 0)) if cfg.weighting == "log" else np.ones_like(m.data)
        m.data = np.maximum(m.data, 1e-6)  # an engagement of weight 0 is still an engagement
        users_per_topic = np.bincount(m.indices, minlength=m.shape[1])
        idf = np.log1p(m.shape[0] / np.maximum(users_per_topic, 1)) ** cfg.idf_power
        m = m @ sp.diags(idf)
        if cfg.normalize:
            norm = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
            m = sp.diags(np.where(norm > 0, 1.0 / np.maximum(norm, 1e-12), 0.0)) @ m
        rows = sp.csr_matrix(m)
        return cls(rows, cfg, knn_graph(rows, cfg.neighbours, cfg.power) if cfg.neighbours else None)

    def scores(self, seeds: np.ndarray) -> np.ndarray:
        """A score per user (float64) for a list of seed positions; callers drop the seeds."""
        seeds = np.asarray(seeds, np.int64)
        if self.knn is not None:
            if self.cfg.neighbours_of == "users":
                at_seeds = np.zeros(self.n)
                at_seeds[seeds] = 1.0
                return np.asarray(self.knn @ at_seeds).ravel()
            return np.asarray(self.knn[seeds].sum(axis=0)).ravel()
        if self.cfg.power == 1.0:
            profile = np.asarray(self.rows[seeds].sum(axis=0)).ravel()
            return np.asarray(self.rows @ profile).ravel()
        out = np.zeros(self.n)
        rows_t = self.rows.T.tocsr()
        for start in range(0, len(seeds), SEED_CHUNK):
            sims = (self.rows[seeds[start : start + SEED_CHUNK]] @ rows_t).tocsr()
            sims.data = np.power(np.maximum(sims.data, 0), self.cfg.power)
            out += np.asarray(sims.sum(axis=0)).ravel()
        return out


def knn_graph(rows: sp.csr_matrix, k: int, power: float = 1.0) -> sp.csr_matrix:
    """(users, users) CSR: row u holds u's ``k`` most similar other users (similarity > 0) as ``sim ** power``.

    Built from dense blocks of ``rows[chunk] @ rows.T`` (CHUNK_CELLS cells at a time); a tie at the
    k-th place is broken by numpy's partition (deterministic for the same rows).
    """
    n = rows.shape[0]
    if n < 2:
        return sp.csr_matrix((n, n))
    k = min(k, n - 1)
    rows_t = rows.T.tocsr()
    step = max(1, CHUNK_CELLS // max(n, 1))
    counts, indices, data = [], [], []
    for start in range(0, n, step):
        sims = np.asarray((rows[start : start + step] @ rows_t).todense())
        local = np.arange(sims.shape[0])
        sims[local, start + local] = 0.0  # a user is not its own neighbour
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(sims, top, axis=1)
        keep = vals > 0
        counts.append(keep.sum(axis=1))
        indices.append(top[keep])
        data.append(np.power(vals[keep], power))
    indptr = np.r_[0, np.cumsum(np.concatenate(counts))]
    return sp.csr_matrix((np.concatenate(data), np.concatenate(indices), indptr), shape=(n, n))
