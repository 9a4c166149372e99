"""Ranking and CTR metrics; scikit-learn computes every one it has.

- CTR: AUC, logloss, GAUC (per-group AUC weighted by group size, single-class groups skipped).
- Leave-one-out (NCF protocol): the held-out item against sampled negatives, HR@k and NDCG@k.
- Full ranking: held-out items among every item the user has not interacted with, recall@k and
  NDCG@k.

Ties are broken at random in expectation: an item tied with e others at g items above it hits
the top k with probability clip((k - g) / (e + 1), 0, 1); sklearn's NDCG averages over ties the
same way. A constant scorer therefore gets chance figures, never a lucky perfect score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, ndcg_score, roc_auc_score


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC, NaN when only one class is present."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, scores))


def logloss(labels: np.ndarray, probs: np.ndarray) -> float:
    return float(log_loss(labels, np.clip(probs, 1e-7, 1 - 1e-7), labels=[0, 1]))


def gauc(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> float:
    """Group AUC: per-group AUC weighted by the group's rows, groups with one class skipped."""
    df = pd.DataFrame({"y": np.asarray(labels), "s": np.asarray(scores), "g": np.asarray(groups)})
    stats = df.groupby("g")["y"].agg(["mean", "size"])
    mixed = stats.index[(stats["mean"] > 0) & (stats["mean"] < 1)]
    if len(mixed) == 0:
        return float("nan")
    total, weight = 0.0, 0
    for _, part in df[df["g"].isin(mixed)].groupby("g"):
        total += roc_auc_score(part["y"], part["s"]) * len(part)
        weight += len(part)
    return float(total / weight)


def hit_probability(target_scores: np.ndarray, other_scores: np.ndarray, k: int) -> np.ndarray:
    """P(each target lands in the top k) with ties broken at random. targets (U,), others (U, n)."""
    t = np.asarray(target_scores)[:, None]
    above = (other_scores > t).sum(axis=1)
    ties = (other_scores == t).sum(axis=1)
    return np.clip((k - above) / (ties + 1), 0.0, 1.0)


def sampled_hr_ndcg(scores: np.ndarray, k: int = 10) -> dict[str, float]:
    """Leave-one-out lists: scores (U, 1 + negatives), the held-out item in column 0."""
    scores = np.asarray(scores, np.float64)
    hits = hit_probability(scores[:, 0], scores[:, 1:], k)
    relevance = np.zeros_like(scores)
    relevance[:, 0] = 1
    return {
        f"hr@{k}": float(hits.mean()),
        f"ndcg@{k}": float(ndcg_score(relevance, scores, k=k)),
        "users": int(len(scores)),
    }


def full_ranking(scores: np.ndarray, targets: np.ndarray, exclude: np.ndarray, k: int = 10) -> dict[str, float]:
    """Every item ranked for every user: scores (U, I); targets (U, I) 0/1 held-out items;
    exclude (U, I) True for items seen in training (never ranked). recall@k and NDCG@k."""
    scores = np.where(exclude, -1e30, np.asarray(scores, np.float64))
    targets = np.asarray(targets, bool) & ~exclude
    users = targets.any(axis=1)
    if not users.any():
        return {f"recall@{k}": float("nan"), f"ndcg@{k}": float("nan"), "users": 0}
    scores, targets = scores[users], targets[users]
    rows, cols = np.nonzero(targets)
    target_scores = scores[rows, cols]
    others = scores[rows]
    above = (others > target_scores[:, None]).sum(axis=1)
    ties = (others == target_scores[:, None]).sum(axis=1) - 1  # minus the target itself
    hit = np.clip((k - above) / (ties + 1), 0.0, 1.0)
    recall = pd.Series(hit).groupby(rows).mean().to_numpy()
    return {
        f"recall@{k}": float(recall.mean()),
        f"ndcg@{k}": float(ndcg_score(targets.astype(float), scores, k=k)),
        "users": int(users.sum()),
    }


def leave_one_out_lists(groups: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Rows of (user, candidate) -> a (U, candidates) score matrix with each user's positive first.

    Every group must hold one positive and the same number of negatives (the sampled protocol)."""
    df = pd.DataFrame({"g": groups, "y": labels, "s": scores}).sort_values(
        ["g", "y"], ascending=[True, False], kind="stable"
    )
    sizes = df.groupby("g", sort=False).size()
    if sizes.nunique() != 1:
        raise ValueError(f"leave-one-out lists differ in length: {sorted(sizes.unique())[:5]}")
    mat = df["s"].to_numpy().reshape(len(sizes), -1)
    first = df["y"].to_numpy().reshape(len(sizes), -1)
    if not (first[:, 0] == 1).all() or first[:, 1:].any():
        raise ValueError("each leave-one-out list needs exactly one positive")
    return mat


def bootstrap_auc_interval(labels: np.ndarray, scores: np.ndarray, n: int = 200, seed: int = 0) -> tuple[float, float]:
    """A 95% percentile bootstrap interval of the AUC (small test sets: tiny_mtl)."""
    rng = np.random.default_rng(seed)
    labels, scores = np.asarray(labels), np.asarray(scores)
    values = []
    for _ in range(n):
        idx = rng.integers(0, len(labels), len(labels))
        if 0 < labels[idx].sum() < len(idx):
            values.append(roc_auc_score(labels[idx], scores[idx]))
    if not values:
        return float("nan"), float("nan")
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))
