"""The ALS retriever: never a seen or recent topic, the user's own group first, folded-in users, save / load."""

import numpy as np
import pytest

from reco.embedding.als import fit_als
from reco.retrieval.als import AlsRetriever, fold_in, sequence_matrix
from reco.retrieval.config import RetrievalConfig
from reco.retrieval.data import TrainingData, UserSequences
from reco.retrieval.registry import create_retriever, load_retriever
from reco.run_dir import RunDir


def two_groups(n_users=40, per_user=6):
    """Even users engage with topics 0-9, odd users with topics 10-19 (weights 1-5)."""
    rng = np.random.default_rng(0)
    users, topics = [], []
    for u in range(n_users):
        base = 0 if u % 2 == 0 else 10
        users += [u] * per_user
        topics += (base + rng.choice(10, per_user, replace=False)).tolist()
    n = len(users)
    return UserSequences.from_interactions(
        np.array(users), np.array(topics), np.arange(n, dtype=np.int64), rng.integers(1, 6, n).astype(np.float32)
    )


def config() -> RetrievalConfig:
    cfg = RetrievalConfig()
    cfg.als.factors, cfg.als.iterations, cfg.als.regularization = 4, 10, 10.0
    return cfg


def group_share(ids: np.ndarray, users: np.ndarray) -> float:
    """Share of returned topics from the user's own group (even users: 0-9, odd: 10-19)."""
    keep = ids >= 0
    own = (ids // 10) == (users % 2)[:, None]
    return float(own[keep].mean())


def test_candidates_never_repeat_a_seen_topic_and_come_from_the_users_group():
    seqs = two_groups()
    r = create_retriever("als", config()).fit(TrainingData(seqs, 20, 40))
    assert isinstance(r, AlsRetriever) and r.has_vectors
    users = np.arange(40)
    got = r.candidates(users, k=4)
    for i in users:
        ids = got.row(i)[0]
        assert len(ids) == 4 and not set(ids) & set(seqs.row(i)[0].tolist())
        assert np.all(np.diff(got.row(i)[1]) <= 0)  # best first
    assert group_share(got.ids, users) == 1.0
    # asked for everything: every unseen topic once, the seen ones never
    full = r.candidates([0], k=20).row(0)[0]
    assert sorted(full.tolist()) == sorted(set(range(20)) - set(seqs.row(0)[0].tolist()))


def test_users_who_never_trained_are_folded_in_and_recent_topics_are_excluded():
    seqs = two_groups()
    r = AlsRetriever(config()).fit(TrainingData(seqs.take(np.arange(30)), 20, 40))  # users 30..39 never train
    r.index_users(seqs)
    new = np.arange(30, 40)
    assert group_share(r.candidates(new, k=4).ids, new) == 1.0
    # the request's recent topics are never returned, and pull an unknown user towards their group
    recent = [np.array([10, 11, 12])]
    got = r.candidates([99], k=5, recent=recent).row(0)[0]
    assert len(got) == 5 and not set(got) & {10, 11, 12} and (got // 10 == 1).all()
    seen = set(seqs.row(0)[0].tolist())
    got = r.candidates([0], k=20, recent=[np.array([15])]).row(0)[0]
    assert 15 not in got and not set(got) & seen


def test_a_users_vector_is_the_als_user_step():
    """The fold-in solves the user side exactly: one more user step of the fit changes nothing."""
    seqs = two_groups()
    cfg = config()
    r = AlsRetriever(cfg).fit(TrainingData(seqs, 20, 40))
    matrix = sequence_matrix(seqs, 20)
    x = fold_in(r.item_vectors, matrix, cfg.als)
    uv = r.user_vectors(seqs.user_ids)
    assert uv.vectors.shape == (40, 1, 4) and (uv.weights == 1).all()
    assert np.allclose(uv.vectors[:, 0], x)
    # the fit's own users are close to it: the fit ends on a topic step, then 3 CG steps per side
    fit = fit_als(matrix, cfg.als)
    scores_fit = fit.users @ fit.topics.T
    scores_ours = x @ r.item_vectors.T
    assert np.corrcoef(scores_fit.ravel(), scores_ours.ravel())[0, 1] > 0.95


def test_save_and_load_answer_the_same(tmp_path):
    seqs = two_groups()
    r = create_retriever("als", config()).fit(TrainingData(seqs, 20, 40))
    run = RunDir(str(tmp_path))
    r.save(run)
    again = load_retriever("als", run)
    users = np.arange(40)
    a, b = r.candidates(users, k=6), again.candidates(users, k=6)
    assert np.array_equal(a.ids, b.ids) and np.allclose(a.scores, b.scores)
    ra, rb = (x.candidates([3], k=6, recent=[[1, 2]]) for x in (r, again))
    assert np.array_equal(ra.ids, rb.ids)
    assert again.fitted == r.fitted


def test_fits_are_a_function_of_the_data_and_the_seed():
    seqs = two_groups()
    a = create_retriever("als", config()).fit(TrainingData(seqs, 20, 40))
    b = create_retriever("als", config()).fit(TrainingData(seqs, 20, 40))
    assert np.array_equal(a.item_vectors, b.item_vectors)
    assert np.array_equal(a.candidates(np.arange(40), k=5).ids, b.candidates(np.arange(40), k=5).ids)


@pytest.mark.parametrize("confidence", ["binary", "linear", "log"])
def test_every_confidence_retrieves_the_group(confidence):
    cfg = config()
    cfg.als.confidence = confidence
    r = AlsRetriever(cfg).fit(TrainingData(two_groups(), 20, 40))
    assert group_share(r.candidates(np.arange(40), k=3).ids, np.arange(40)) > 0.9
