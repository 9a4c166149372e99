"""Two-tower: shapes, the unknown-user row, features, and one in-batch step lowering the loss."""

import numpy as np
import torch

from reco.retrieval.config import TwoTowerConfig
from reco.retrieval.data import TrainingData, UserSequences
from reco.retrieval.sampled_softmax import item_distribution
from reco.retrieval.tower import model_bytes, model_from_bytes
from reco.retrieval.two_tower_fit import examples, make_model, train_step
from reco.retrieval.two_tower_model import TwoTower

N_USERS, N_TOPICS = 30, 50


def data(with_features=True) -> TrainingData:
    rng = np.random.default_rng(0)
    users, topics = [], []
    for u in range(20):  # users 20..29 never train
        t = rng.choice(N_TOPICS, int(rng.integers(2, 15)), replace=False)
        users += [u] * len(t)
        topics += t.tolist()
    seqs = UserSequences.from_interactions(
        np.array(users), np.array(topics), np.zeros(len(users), np.int64), np.ones(len(users))
    )
    items = rng.random((N_TOPICS, 5)).astype(np.float32) if with_features else None
    feats = rng.random((N_USERS, 3)).astype(np.float32) if with_features else None
    return TrainingData(seqs, N_TOPICS, N_USERS, item_features=items, user_features=feats)


def test_towers_shapes_and_unknown_users():
    d = data()
    cfg = TwoTowerConfig(dim=8, hidden=16)
    model = make_model(N_USERS, N_TOPICS, cfg, d.item_features, d.user_features, d.sequences.user_ids)
    assert model.item_vectors().shape == (N_TOPICS, 8)
    assert np.allclose(np.linalg.norm(model.item_vectors(), axis=1), 1, atol=1e-5)
    id_rows, feat_rows = model.rows(torch.tensor([0, 19, 25, 999]))
    assert id_rows.tolist() == [0, 19, N_USERS, N_USERS]  # user 25 never trained, 999 is not a user
    assert feat_rows.tolist() == [0, 19, 25, N_USERS]  # features still known for user 25
    vecs = model.user_vectors(d.sequences, max_history=10)
    assert vecs.shape == (len(d.sequences), 8)
    ex = examples(d.sequences, cfg, N_USERS, np.random.default_rng(0))
    assert len(ex["targets"]) == cfg.samples_per_user * len(d.sequences)
    assert set(ex["owners"].tolist()) <= set(d.sequences.user_ids.tolist())


def test_model_round_trips_through_bytes():
    d = data()
    model = make_model(
        N_USERS, N_TOPICS, TwoTowerConfig(dim=8, hidden=16), d.item_features, d.user_features, d.sequences.user_ids
    )
    again, _ = model_from_bytes(model_bytes(model, {}), TwoTower)
    assert np.allclose(again.item_vectors(), model.item_vectors())
    assert np.allclose(again.user_vectors(d.sequences, 10), model.user_vectors(d.sequences, 10))


def test_one_gradient_step_lowers_the_loss():
    for with_features in (True, False):
        d = data(with_features)
        cfg = TwoTowerConfig(dim=8, hidden=16, id_dropout=0.0)
        model = make_model(N_USERS, N_TOPICS, cfg, d.item_features, d.user_features, d.sequences.user_ids)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        probs = item_distribution(d.topic_counts())
        losses = [
            train_step(model, opt, d.sequences, cfg, N_USERS, probs, np.random.default_rng(1))[0] for _ in range(2)
        ]
        assert losses[1] < losses[0]
    assert isinstance(model, TwoTower)
