"""Multi-interest users: Ward clusters recover planted interests, medoids are real topics,
importance decays with age, and retrieval draws on every top interest."""

import numpy as np

from reco.retrieval.config import RetrievalConfig
from reco.retrieval.data import TrainingData, UserSequences
from reco.retrieval.multi_interest import MultiInterestRetriever, decayed_importance, user_interests, ward_clusters


def planted_topics(n_groups=3, per_group=10, dim=16, noise=0.05, seed=0):
    """Topic vectors around orthogonal centres: topic t belongs to group t // per_group."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:n_groups]
    vecs = np.repeat(centres, per_group, axis=0) + noise * rng.standard_normal((n_groups * per_group, dim))
    return (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)


def test_ward_clusters_recover_the_planted_interests_and_medoids_are_the_users_topics():
    vecs = planted_topics()
    rng = np.random.default_rng(1)
    topics = rng.permutation(
        np.r_[
            rng.choice(10, 4, replace=False),
            10 + rng.choice(10, 5, replace=False),
            20 + rng.choice(10, 3, replace=False),
        ]
    )
    found = user_interests(topics, np.zeros(len(topics), np.int64), vecs, threshold=1.0, half_life_days=None)
    groups = topics // 10
    assert len(found.medoids) == 3
    for c in range(3):  # every cluster is exactly one planted group
        assert len(set(groups[found.labels == c])) == 1
    assert sorted(set(found.medoids // 10)) == [0, 1, 2]
    assert set(found.medoids) <= set(topics.tolist())
    # without time, importance is the plain count: 5, 4, 3 members
    assert found.importance.tolist() == [5.0, 4.0, 3.0]


def test_a_single_topic_is_one_interest():
    assert ward_clusters(planted_topics()[:1], 1.0).tolist() == [0]


def test_importance_falls_with_age():
    day = 86400
    w = decayed_importance(np.array([0, 10 * day, 20 * day, 30 * day]), reference=30 * day, half_life_days=10.0)
    assert np.all(np.diff(w) > 0)
    assert np.allclose(w, [0.125, 0.25, 0.5, 1.0])
    assert decayed_importance(np.array([0, 5]), 5, None).tolist() == [1.0, 1.0]


def test_recent_interest_outranks_a_larger_old_one():
    vecs = planted_topics()
    day = 86400
    topics = np.array([0, 1, 2, 3, 10, 11])  # 4 old topics of group 0, 2 recent ones of group 1
    ts = np.array([0, 1, 2, 3, 100 * day, 100 * day + 1]) + 1
    found = user_interests(topics, ts, vecs, threshold=1.0, half_life_days=10.0)
    assert found.medoids[0] // 10 == 1 and found.medoids[1] // 10 == 0
    assert found.importance[0] > found.importance[1]
    assert user_interests(topics, ts, vecs, 1.0, None).medoids[0] // 10 == 0  # by count the old group wins


def test_retrieval_queries_each_top_interest_and_excludes_seen():
    vecs = planted_topics()
    seqs = UserSequences.from_interactions(
        np.zeros(6, np.int64), np.array([0, 1, 2, 10, 11, 20]), np.arange(6), np.ones(6)
    )
    cfg = RetrievalConfig()
    cfg.multi_interest.distance_threshold = 1.0
    r = MultiInterestRetriever(cfg).fit(TrainingData(seqs, 30, 1, topic_vectors=vecs))
    uv = r.user_vectors([0])
    assert uv.vectors.shape == (1, 3, 16) and (uv.weights > 0).sum() == 3
    got = r.candidates([0], k=9).ids[0]
    assert not set(got.tolist()) & {0, 1, 2, 10, 11, 20}
    # round robin: the first three candidates come one from each interest, most important first
    assert (got[:3] // 10).tolist() == [0, 1, 2]
    assert set((got // 10).tolist()) == {0, 1, 2}
    # a user scores an item as the max over its interests
    assert np.allclose(uv.scores(vecs)[0], (uv.vectors[0] @ vecs.T).max(axis=0))


def test_one_centroid_interest_is_the_pooled_user():
    from reco.retrieval.pooled import PooledRetriever

    vecs = planted_topics()
    seqs = UserSequences.from_interactions(
        np.zeros(6, np.int64), np.array([0, 1, 2, 10, 11, 20]), np.arange(6), np.ones(6)
    )
    cfg = RetrievalConfig()
    cfg.multi_interest.distance_threshold, cfg.multi_interest.representative = 100.0, "centroid"
    data = TrainingData(seqs, 30, 1, topic_vectors=vecs)
    mi = MultiInterestRetriever(cfg).fit(data).user_vectors([0])
    pooled = PooledRetriever(cfg).fit(data).user_vectors([0])
    assert mi.vectors.shape == (1, 1, 16) and np.allclose(mi.vectors, pooled.vectors, atol=1e-6)
    cfg.multi_interest.representative = "medoid"  # a medoid is one of the topics, not the mean
    medoid = MultiInterestRetriever(cfg).fit(data).user_vectors([0]).vectors[0, 0]
    assert np.isclose(np.abs(vecs @ medoid).max(), 1.0, atol=1e-5)
