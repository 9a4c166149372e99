"""User co-engagement (reco.expansion.coengagement): shared topics, down-weighted when common."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from reco.config import load_config
from reco.errors import ConfigError
from reco.expansion import coengagement
from reco.expansion.coengagement import CoEngagement
from reco.expansion.config import CoEngagementConfig


def matrix(rows: list[list[int]], n_topics: int) -> sp.csr_matrix:
    r = [i for i, ts in enumerate(rows) for _ in ts]
    c = [t for ts in rows for t in ts]
    return sp.csr_matrix((np.ones(len(c), np.float32), (r, c)), shape=(len(rows), n_topics))


def test_users_sharing_the_seeds_topics_rank_above_users_who_do_not():
    rng = np.random.default_rng(0)
    # topics 0-9: the seeds' taste; 10-39 everything else. Users 0-9 seeds, 10-29 share the taste, 30-99 do not.
    rows = [list(rng.choice(10, 4, replace=False)) for _ in range(30)]
    rows += [list(10 + rng.choice(30, 5, replace=False)) for _ in range(70)]
    for power in (1.0, 2.0):
        co = CoEngagement.build(matrix(rows, 40), CoEngagementConfig(power=power))
        s = co.scores(np.arange(10))
        assert s[10:30].min() > s[30:].max()


def test_a_rare_shared_topic_counts_more_than_a_common_one():
    # user 1 shares the seed's rare topic 1, user 2 its common topic 0 (everyone has topic 0)
    rows = [[0, 1], [1, 2], [0, 3], [0, 4], [0, 5], [0, 6]]
    co = CoEngagement.build(matrix(rows, 7), CoEngagementConfig(idf_power=1.0))
    s = co.scores(np.array([0]))
    assert s[1] > s[2]
    flat = CoEngagement.build(matrix(rows, 7), CoEngagementConfig(idf_power=0.0))
    assert flat.scores(np.array([0]))[1] == pytest.approx(flat.scores(np.array([0]))[2])


def test_power_scores_equal_the_dense_sum_of_similarities():
    rng = np.random.default_rng(1)
    m = sp.random(60, 30, density=0.2, random_state=2, format="csr", dtype=np.float32)
    co = CoEngagement.build(m, CoEngagementConfig(power=2.0, weighting="log"))
    seeds = rng.choice(60, 300 // 10, replace=False)
    dense = co.rows.toarray()
    expected = ((dense[seeds] @ dense.T) ** 2).sum(axis=0)
    assert np.allclose(co.scores(seeds), expected)
    linear = CoEngagement.build(m, CoEngagementConfig())
    d = linear.rows.toarray()
    assert np.allclose(linear.scores(seeds), (d[seeds] @ d.T).sum(axis=0))


def test_knn_scores_equal_the_dense_top_k_sums(monkeypatch):
    monkeypatch.setattr(coengagement, "CHUNK_CELLS", 80 * 7)  # the graph is built in chunks of 7 users
    m = sp.random(80, 40, density=0.15, random_state=3, format="csr", dtype=np.float32)
    m.data = 1 + 5 * m.data
    seeds = np.random.default_rng(2).choice(80, 12, replace=False)
    at_seeds = np.zeros(80)
    at_seeds[seeds] = 1.0
    for side in ("seeds", "users"):
        cfg = CoEngagementConfig(weighting="log", neighbours=5, neighbours_of=side, power=2.0)
        co = CoEngagement.build(m, cfg)
        d = co.rows.toarray()
        sims = d @ d.T
        np.fill_diagonal(sims, 0.0)
        knn = np.zeros_like(sims)
        for u in range(80):
            top = np.argsort(-sims[u])[:5]
            knn[u, top] = np.where(sims[u, top] > 0, sims[u, top] ** 2, 0.0)
        expected = at_seeds @ knn if side == "seeds" else knn @ at_seeds
        assert np.allclose(co.scores(seeds), expected)


def test_knn_with_every_user_as_a_neighbour_is_the_plain_overlap():
    m = sp.random(50, 20, density=0.2, random_state=4, format="csr", dtype=np.float32)
    seeds = np.arange(0, 50, 5)
    plain = CoEngagement.build(m, CoEngagementConfig())
    knn = CoEngagement.build(m, CoEngagementConfig(neighbours=100))
    others = np.setdiff1d(np.arange(50), seeds)
    assert np.allclose(knn.scores(seeds)[others], plain.scores(seeds)[others])


def test_a_user_with_no_topics_scores_zero():
    co = CoEngagement.build(matrix([[0, 1], [1], []], 2), CoEngagementConfig())
    assert co.scores(np.array([0]))[2] == 0.0


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"expansion\.coengagement\.power"):
        load_config("configs/local.yaml", ["expansion.coengagement.power=0.5"])
    with pytest.raises(ConfigError, match=r"expansion\.coengagement\.weighting"):
        load_config("configs/local.yaml", ["expansion.coengagement.weighting=sqrt"])
    with pytest.raises(ConfigError, match=r"expansion\.coengagement\.neighbours"):
        load_config("configs/local.yaml", ["expansion.coengagement.neighbours=0"])
