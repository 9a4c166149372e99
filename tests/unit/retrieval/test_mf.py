"""MF as a retriever: the ranking stack's model trained on implicit feedback, with fold-in."""

import numpy as np

from reco.retrieval.config import RetrievalConfig
from reco.retrieval.data import TrainingData, UserSequences
from reco.retrieval.mf import MfRetriever, training_rows
from reco.retrieval.registry import load_retriever
from reco.run_dir import RunDir


def two_groups(n_users=40):
    """Even users engage with topics 0-9, odd users with topics 10-19."""
    rng = np.random.default_rng(0)
    users, topics = [], []
    for u in range(n_users):
        base = 0 if u % 2 == 0 else 10
        t = base + rng.choice(10, 6, replace=False)
        users += [u] * 6
        topics += t.tolist()
    return UserSequences.from_interactions(
        np.array(users), np.array(topics), np.zeros(len(users), np.int64), np.ones(len(users))
    )


def test_training_rows_shift_ids_past_the_oov_bucket():
    seqs = two_groups(4)
    rows = training_rows(seqs, 20, negatives=2, rng=np.random.default_rng(0))
    assert len(rows) == 3 * len(seqs.topics)
    assert rows.labels[: len(seqs.topics)].sum() == len(seqs.topics) and rows.labels[len(seqs.topics) :].sum() == 0
    assert rows.cat.min() >= 1 and rows.cat[:, 1].max() <= 20


def test_mf_retrieves_the_users_group_and_folds_in_new_users(tmp_path):
    cfg = RetrievalConfig()
    cfg.mf.dim, cfg.mf.epochs, cfg.mf.lr = 8, 30, 0.05
    seqs = two_groups()
    train = seqs.take(np.arange(30))  # users 30..39 never train
    r = MfRetriever(cfg).fit(TrainingData(train, 20, 40))
    r.index_users(seqs)
    got = r.candidates(np.arange(40), k=4).ids
    group = np.where(np.arange(40) % 2 == 0, 0, 1)
    assert ((got // 10) == group[:, None]).mean() > 0.9  # trained and folded-in users alike
    r.save(RunDir(str(tmp_path)))
    again = load_retriever("mf", RunDir(str(tmp_path)))
    assert np.array_equal(again.candidates([3, 35], k=4).ids, r.candidates([3, 35], k=4).ids)
