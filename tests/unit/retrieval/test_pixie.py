"""Pixie random walks on a tiny graph against a hand-worked expectation."""

import numpy as np

from reco.retrieval.config import RetrievalConfig
from reco.retrieval.data import TrainingData, UserSequences
from reco.retrieval.item_knn import engagement_matrix
from reco.retrieval.pixie import BipartiteGraph, PixieRetriever, restart_weights, walk

# user -> topics. From user 0 (topics 0, 1): topic 2 is one hop away through users 1 and 2,
# topic 3 two hops away (through topic 2 and user 3), topics 4 and 5 are in another component.
GRAPH = {0: [0, 1], 1: [0, 2], 2: [1, 2], 3: [2, 3], 4: [4, 5]}


def seqs() -> UserSequences:
    users = np.array([u for u, ts in GRAPH.items() for _ in ts])
    topics = np.array([t for ts in GRAPH.values() for t in ts])
    return UserSequences.from_interactions(users, topics, np.arange(len(users)), np.ones(len(users)))


def test_top_topics_match_the_hand_worked_expectation():
    cfg = RetrievalConfig()
    cfg.pixie.steps, cfg.pixie.walkers, cfg.pixie.seed = 4000, 64, 7
    r = PixieRetriever(cfg).fit(TrainingData(seqs(), 6, 5))
    got = r.candidates([0], k=6)
    ids, scores = got.row(0)
    assert ids.tolist() == [2, 3]  # seen topics excluded, unreachable ones never visited
    assert scores[0] > 3 * scores[1]
    # the same seed gives the same walk
    assert np.array_equal(PixieRetriever(cfg).fit(TrainingData(seqs(), 6, 5)).candidates([0], k=6).scores, got.scores)
    # a request's recent topic in the other component pulls its neighbour in
    ids, _ = r.candidates([0], k=6, recent=[[4]]).row(0)
    assert 5 in ids and 4 not in ids


def test_walks_stop_early_once_enough_topics_pass_the_threshold():
    graph = BipartiteGraph(engagement_matrix(seqs(), 6))
    rng = np.random.default_rng(0)
    scores = walk(
        graph,
        np.array([0, 1]),
        np.array([0.5, 0.5]),
        steps=100_000,
        restart=0.5,
        walkers=8,
        visit_threshold=3,
        enough_topics=2,
        rng=rng,
        boost=False,
    )
    assert (scores >= 3).sum() >= 2
    assert scores.sum() < 1000  # far fewer than the 100,000 steps allowed


def test_restarts_favour_the_latest_topics():
    w = restart_weights(4, half_life=1.0)
    assert np.all(np.diff(w) > 0) and np.isclose(w.sum(), 1) and np.isclose(w[-1] / w[-2], 2)
