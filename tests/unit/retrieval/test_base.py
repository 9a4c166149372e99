"""The retriever interface: exclusion of seen and recent topics, errors, merging, the registry,
save / load through a run directory, and the user-vector shape."""

import numpy as np
import pytest

from reco.errors import ArtifactError, ConfigError, DataError
from reco.retrieval.base import merge_max, merge_round_robin, top_k
from reco.retrieval.config import RetrievalConfig
from reco.retrieval.data import TrainingData, UserSequences
from reco.retrieval.item_knn import cosine_neighbours
from reco.retrieval.registry import RETRIEVERS, create_retriever, load_retriever
from reco.run_dir import RunDir

HISTORIES = {0: [0, 1, 2], 1: [0, 1, 3], 2: [0, 3, 4], 3: [5, 6], 4: [5, 6, 7]}
N_TOPICS = 8


def training_data() -> TrainingData:
    users = np.array([u for u, ts in HISTORIES.items() for _ in ts])
    topics = np.array([t for ts in HISTORIES.values() for t in ts])
    vecs = np.random.default_rng(0).standard_normal((N_TOPICS, 4)).astype(np.float32)
    return TrainingData(
        UserSequences.from_interactions(users, topics, np.arange(len(users)), np.ones(len(users))),
        N_TOPICS,
        5,
        topic_vectors=vecs / np.linalg.norm(vecs, axis=1, keepdims=True),
    )


@pytest.mark.parametrize("name", ["popularity", "last_items_knn", "pooled", "multi_interest", "pixie"])
def test_candidates_never_include_seen_or_recent_topics(name):
    r = create_retriever(name).fit(training_data())
    got = r.candidates([0, 2], k=N_TOPICS, recent=[[3], None])
    for row, seen in ((0, {0, 1, 2, 3}), (1, {0, 3, 4})):
        ids, scores = got.row(row)
        assert len(ids) > 0 and not set(ids.tolist()) & seen
        if row == 1 and name != "multi_interest":  # one query: best first (several interleave round robin)
            assert np.all(np.diff(scores) <= 1e-6)
    assert got.ids.shape == (2, N_TOPICS)


def test_popularity_ranks_by_count_ties_by_id():
    r = create_retriever("popularity").fit(training_data())
    assert r.candidates([3], k=4).row(0)[0].tolist() == [0, 1, 3, 2]


def test_item_knn_sums_the_neighbours_of_the_last_topics():
    d = training_data()
    sim = cosine_neighbours(d.sequences, N_TOPICS, neighbours=10, shrink=0.0).toarray()
    # topics 0 and 1 share users 0 and 1: cosine 2 / sqrt(3 * 2)
    assert np.isclose(sim[0, 1], 2 / np.sqrt(6)) and sim[0, 0] == 0 and sim[0, 5] == 0
    cfg = RetrievalConfig()
    cfg.last_items_knn.last_n = 1
    r = create_retriever("last_items_knn", cfg).fit(d)
    ids, _ = r.candidates([3], k=5).row(0)  # user 3's last topic is 6: only 7 co-occurs with it
    assert ids.tolist() == [7]


def test_bad_requests_are_one_line_errors():
    r = create_retriever("popularity").fit(training_data())
    with pytest.raises(DataError, match="unknown user id 99"):
        r.candidates([99], k=3)
    assert len(r.candidates([99], k=3, recent=[[1]]).row(0)[0]) == 3  # a new user with recent topics is fine
    with pytest.raises(DataError, match="recent topic id 42"):
        r.candidates([0], k=3, recent=[[42]])
    with pytest.raises(DataError, match="at most retrieval.short_term.max_topics=20"):
        r.candidates([0], k=3, recent=[list(range(8)) * 3])
    with pytest.raises(ConfigError, match="unknown retriever 'nope'"):
        create_retriever("nope")
    with pytest.raises(ConfigError, match="has no user vectors"):
        r.user_vectors([0])
    assert {"pooled", "multi_interest", "sequence_tower", "two_tower", "pixie", "popularity", "last_items_knn"} <= set(
        RETRIEVERS.names()
    )


def test_merges():
    ids = np.array([[5, 1, 2], [1, 7, 8]])
    scores = np.array([[0.9, 0.8, 0.1], [0.95, 0.5, 0.4]], np.float32)
    assert merge_round_robin(ids, scores, np.array([2]), 4)[0].tolist() == [5, 1, 7, 8]
    got, s = merge_max(ids, scores, np.array([2]), 4)
    assert got.tolist() == [1, 5, 7, 8] and np.isclose(s[0], 0.95)
    assert top_k(np.array([1.0, 3.0, 3.0, 2.0]), np.array([3]), 3)[0].tolist() == [1, 2, 0]


@pytest.mark.parametrize("name", ["popularity", "last_items_knn", "pooled", "multi_interest", "pixie"])
def test_save_and_load_by_name_answer_the_same(tmp_path, name):
    run = RunDir(str(tmp_path))
    r = create_retriever(name).fit(training_data())
    r.save(run)
    again = load_retriever(name, run)
    want = r.candidates([1, 4], k=5, recent=[[7], None])
    got = again.candidates([1, 4], k=5, recent=[[7], None])
    assert np.array_equal(want.ids, got.ids) and np.allclose(want.scores, got.scores)
    if r.has_vectors:
        assert np.allclose(r.user_vectors([1]).vectors, again.user_vectors([1]).vectors)


def test_a_trained_retriever_that_was_never_saved_is_an_artifact_error(tmp_path):
    with pytest.raises(
        ArtifactError, match=r"retrieval/two_tower/meta.json is not in .*python -m ray_jobs.train_two_tower"
    ):
        load_retriever("two_tower", RunDir(str(tmp_path)))
    with pytest.raises(ArtifactError, match="ray_jobs.multi_interest"):
        load_retriever("multi_interest", RunDir(str(tmp_path)))


def test_user_vectors_have_the_documented_shape():
    r = create_retriever("pooled").fit(training_data())
    uv = r.user_vectors([0, 3])
    assert uv.vectors.shape == (2, 1, 4) and uv.weights.tolist() == [[1.0], [1.0]]
    assert np.allclose(np.linalg.norm(uv.vectors, axis=-1), 1, atol=1e-5)
    assert uv.scores(r.item_vectors).shape == (2, N_TOPICS)
