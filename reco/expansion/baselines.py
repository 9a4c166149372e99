"""The baselines every expansion figure is shown beside.

- random: every user equally likely (a fresh random score per list);
- most active: the users with the most interactions, whatever the list;
- centroid nearest neighbours: the users closest (inner product on unit vectors) to the mean
  seed embedding, searched with faiss;
- per-list logistic regression on user embeddings (scikit-learn), seeds against the same kind
  of background sample the affinity classifier gets, class-balanced.

Each returns a score per user (higher is better); callers drop the seeds.
"""

from __future__ import annotations

import faiss
import numpy as np
from sklearn.linear_model import LogisticRegression


def random_scores(n_users: int, rng: np.random.Generator) -> np.ndarray:
    return rng.random(n_users)


def most_active_scores(activity: np.ndarray) -> np.ndarray:
    return np.asarray(activity, dtype=np.float64)


def centroid(seed_vectors: np.ndarray) -> np.ndarray:
    """The mean seed embedding, normalised (a zero mean stays zero)."""
    c = np.asarray(seed_vectors, np.float32).mean(axis=0)
    norm = np.linalg.norm(c)
    return (c / norm if norm > 0 else c).astype(np.float32)


def centroid_neighbours(index: faiss.Index, seed_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions, scores) of the k users nearest the seed centroid in a faiss index."""
    k = min(k, index.ntotal)
    scores, pos = index.search(centroid(seed_vectors)[None, :], k)
    keep = pos[0] >= 0
    return pos[0][keep].astype(np.int64), scores[0][keep].astype(np.float64)


def centroid_scores(index: faiss.Index, seed_vectors: np.ndarray) -> np.ndarray:
    """A score for every user in the index (faiss search over all of them)."""
    pos, scores = centroid_neighbours(index, seed_vectors, index.ntotal)
    out = np.full(index.ntotal, -np.inf)
    out[pos] = scores
    return out


def fit_logreg(seeds: np.ndarray, background: np.ndarray, c: float = 1.0, seed: int = 0) -> tuple[np.ndarray, float]:
    """(coefficients, intercept) of a class-balanced logistic regression, seeds vs background."""
    x = np.concatenate([seeds, background]).astype(np.float64)
    y = np.r_[np.ones(len(seeds)), np.zeros(len(background))]
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=500, random_state=seed)
    model.fit(x, y)
    return model.coef_[0].astype(np.float64), float(model.intercept_[0])


def logreg_scores(coef: np.ndarray, intercept: float, vectors: np.ndarray) -> np.ndarray:
    return np.asarray(vectors, np.float64) @ coef + intercept
