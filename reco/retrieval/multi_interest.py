"""Multi-interest users, PinnerSage-style (Pal et al., KDD 2020).

One vector averages a person's unrelated interests into a point near none of them. Here each
user's engaged topics are clustered (Ward agglomerative clustering on their topic vectors, the
dendrogram cut at ``distance_threshold``), each cluster is represented by its medoid (the member
topic closest to the rest, so an interest is always a real topic), and each interest is weighted
by a time-decayed count of its members (``sum exp(-ln2 * age / half_life)``; a plain count where
the data has no time). ``representative: centroid`` uses the unit mean of a cluster's topics
instead of its medoid (not PinnerSage's choice; compared on the benchmark). A request queries
the topic index with the top interests by importance (3 by default) plus, when it carries recent
topics, a short-term interest, and merges the results round-robin in order of importance, as
PinnerSage does.

As user vectors (for the expansion job) a user is its medoid vectors with their importances,
and scores an item as the max over them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from reco.retrieval.data import TrainingData, UserSequences, ragged_offsets
from reco.retrieval.vector import UserState, VectorRetriever, unit

_LN2 = float(np.log(2.0))


def ward_clusters(vectors: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster label (0..c-1) of each row: Ward linkage cut at ``threshold``."""
    if len(vectors) == 1:
        return np.zeros(1, np.int64)
    z = linkage(np.asarray(vectors, np.float64), method="ward")
    return fcluster(z, t=threshold, criterion="distance").astype(np.int64) - 1


def medoid(vectors: np.ndarray) -> int:
    """Index of the row with the least summed squared distance to the others."""
    x = np.asarray(vectors, np.float64)
    sq = (x * x).sum(1)
    d = sq[:, None] + sq[None, :] - 2 * x @ x.T
    return int(np.argmin(d.sum(1)))


def decayed_importance(ts: np.ndarray, reference: int, half_life_days: float | None) -> np.ndarray:
    """Per-engagement weight ``2 ** (-age / half_life)``; all ones without a half-life."""
    if half_life_days is None:
        return np.ones(len(ts), np.float64)
    age_days = np.maximum(reference - np.asarray(ts, np.float64), 0) / 86400.0
    return np.exp(-_LN2 * age_days / half_life_days)


@dataclass
class Interests:
    """One user's interests, most important first."""

    medoids: np.ndarray  # (c,) topic ids
    importance: np.ndarray  # (c,)
    labels: np.ndarray  # (n,) cluster of each input topic (in the order given)

    def vectors(self, topics: np.ndarray, topic_vectors: np.ndarray, representative: str) -> np.ndarray:
        """(c, d) one vector per interest: the medoid's, or the mean of the members' (not unit yet)."""
        if representative == "medoid":
            return topic_vectors[self.medoids]
        sums = np.zeros((len(self.medoids), topic_vectors.shape[1]), np.float64)
        np.add.at(sums, self.labels, topic_vectors[topics])
        return sums / np.bincount(self.labels, minlength=len(self.medoids))[:, None]


def user_interests(
    topics: np.ndarray, ts: np.ndarray, topic_vectors: np.ndarray, threshold: float, half_life_days: float | None
) -> Interests:
    """Clusters, medoids and importances of one user's topics (the latest ``max_history`` given)."""
    labels = ward_clusters(topic_vectors[topics], threshold)
    w = decayed_importance(ts, int(ts.max()) if len(ts) else 0, half_life_days)
    n = int(labels.max()) + 1
    medoids = np.empty(n, np.int64)
    for c in range(n):
        members = np.flatnonzero(labels == c)
        medoids[c] = topics[members[medoid(topic_vectors[topics[members]])]]
    importance = np.bincount(labels, weights=w, minlength=n)
    order = np.lexsort((medoids, -importance))
    remap = np.empty(n, np.int64)
    remap[order] = np.arange(n)
    return Interests(medoids[order], importance[order], remap[labels])


class MultiInterestRetriever(VectorRetriever):
    name = "multi_interest"
    job = "ray_jobs.multi_interest"

    def fit(self, data: TrainingData) -> MultiInterestRetriever:
        self.set_items(data.require_topic_vectors(self.name))
        self.index_users(data.sequences)
        return self

    def queries_per_user(self) -> int:
        return self.cfg.multi_interest.top_interests

    def merge_mode(self) -> str:
        return self.cfg.multi_interest.merge

    def interests(self, users: UserSequences) -> list[tuple[np.ndarray, Interests]]:
        """(clustered topics, their interests) of each user: the latest ``max_history`` topics."""
        c = self.cfg.multi_interest
        half_life = c.half_life_days if users.has_time else None
        out = []
        for i in range(len(users)):
            topics, ts, _ = users.row(i)
            topics, ts = topics[-c.max_history :], ts[-c.max_history :]
            if len(topics) == 0:
                out.append((topics, Interests(np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64))))
            else:
                out.append((topics, user_interests(topics, ts, self.item_vectors, c.distance_threshold, half_life)))
        return out

    def embed_users(self, users: UserSequences) -> UserState:
        rep = self.cfg.multi_interest.representative
        found = self.interests(users)
        counts = np.array([len(f.medoids) for _, f in found], np.int64)
        dim = self.item_vectors.shape[1]
        vectors = [f.vectors(t, self.item_vectors, rep) for t, f in found if len(f.medoids)]
        weights = [f.importance for _, f in found if len(f.medoids)]
        flat = unit(np.concatenate(vectors)) if vectors else np.empty((0, dim), np.float32)
        return (
            ragged_offsets(counts),
            flat,
            np.concatenate(weights).astype(np.float32) if weights else np.empty(0, np.float32),
        )

    def interest_counts(self, min_share: float = 0.0) -> np.ndarray:
        """Interests of each indexed user carrying at least ``min_share`` of its importance.

        The by-diversity breakdown of Last.fm and MovieLens counts interests with 10% or more,
        so a user is not "diverse" for a few stray topics.
        """
        offsets, _, weights = self.state
        rows = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
        totals = np.bincount(rows, weights=weights, minlength=len(offsets) - 1)
        big = weights >= min_share * totals[rows]
        return np.bincount(rows[big], minlength=len(offsets) - 1).astype(np.int64)
