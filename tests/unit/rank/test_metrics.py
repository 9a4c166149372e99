"""Ranking metrics against scikit-learn and brute force on random inputs."""

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from reco.rank import metrics


def brute_rank(target: float, others: np.ndarray) -> int:
    return int((others > target).sum())


def test_auc_logloss_and_gauc_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    s = rng.normal(size=500) + y
    g = rng.integers(0, 40, 500)
    g[:5] = 99
    y[:5] = 1  # a single-class group: skipped
    assert metrics.auc(y, s) == pytest.approx(roc_auc_score(y, s))
    p = 1 / (1 + np.exp(-s))
    assert metrics.logloss(y, p) == pytest.approx(log_loss(y, p))
    total = weight = 0.0
    for k in np.unique(g):
        m = g == k
        if 0 < y[m].sum() < m.sum():
            total += roc_auc_score(y[m], s[m]) * m.sum()
            weight += m.sum()
    assert metrics.gauc(y, s, g) == pytest.approx(total / weight)
    assert np.isnan(metrics.auc(np.ones(5), np.arange(5)))


def test_sampled_hr_and_ndcg_match_brute_force():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(300, 100))
    out = metrics.sampled_hr_ndcg(scores, k=10)
    ranks = np.array([brute_rank(r[0], r[1:]) for r in scores])
    assert out["hr@10"] == pytest.approx((ranks < 10).mean())
    assert out["ndcg@10"] == pytest.approx(np.mean(np.where(ranks < 10, 1 / np.log2(ranks + 2), 0)))


def test_ties_give_chance_not_a_perfect_score():
    const = np.zeros((50, 100))
    out = metrics.sampled_hr_ndcg(const, k=10)
    assert out["hr@10"] == pytest.approx(0.1)
    assert out["ndcg@10"] < 0.1


def test_full_ranking_skips_seen_items_and_matches_brute_force():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(40, 60))
    exclude = rng.random((40, 60)) < 0.3
    targets = np.zeros_like(exclude)
    targets[np.arange(40), rng.integers(0, 60, 40)] = True
    targets &= ~exclude
    scores[exclude] = 100.0  # seen items must not push the targets down
    out = metrics.full_ranking(scores, targets, exclude, k=10)
    hits, gains = [], []
    for u in np.flatnonzero(targets.any(axis=1)):
        t = np.flatnonzero(targets[u])[0]
        rank = brute_rank(scores[u, t], scores[u, ~exclude[u]])
        hits.append(rank < 10)
        gains.append(1 / np.log2(rank + 2) if rank < 10 else 0.0)
    assert out["users"] == len(hits)
    assert out["recall@10"] == pytest.approx(np.mean(hits))
    assert out["ndcg@10"] == pytest.approx(np.mean(gains))


def test_leave_one_out_lists_put_the_positive_first_and_check_shape():
    groups = np.array([7, 7, 7, 3, 3, 3])
    labels = np.array([0, 1, 0, 0, 0, 1])
    scores = np.array([0.1, 0.9, 0.2, 0.3, 0.4, 0.5])
    mat = metrics.leave_one_out_lists(groups, labels, scores)
    assert mat[:, 0].tolist() == [0.5, 0.9]
    with pytest.raises(ValueError, match="differ in length"):
        metrics.leave_one_out_lists(groups[:-1], labels[:-1], scores[:-1])


def test_bootstrap_interval_brackets_the_auc():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    s = rng.normal(size=400) + y
    lo, hi = metrics.bootstrap_auc_interval(y, s)
    assert lo < metrics.auc(y, s) < hi
