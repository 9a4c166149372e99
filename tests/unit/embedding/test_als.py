"""Weighted ALS (reco.embedding.als): it recovers planted low-rank structure, and its objective falls."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp
from pydantic import ValidationError
from sklearn.metrics import roc_auc_score

from reco.config import load_config
from reco.embedding.als import confidence, fit_als, interaction_matrix, loss
from reco.embedding.config import ALSConfig
from reco.errors import ConfigError


def planted(n_users=300, n_topics=200, groups=4, share=0.3, seed=0):
    """Users and topics in ``groups`` blocks; a user engages with ``share`` of its block's topics.

    Returns the training matrix and (user, topic) pairs held out of it: engaged pairs and as many
    random pairs outside the user's block."""
    rng = np.random.default_rng(seed)
    ug = rng.integers(groups, size=n_users)
    tg = rng.integers(groups, size=n_topics)
    engaged = (ug[:, None] == tg[None, :]) & (rng.random((n_users, n_topics)) < share)
    u, t = np.nonzero(engaged)
    held = rng.random(len(u)) < 0.2
    train = sp.csr_matrix((np.ones((~held).sum(), np.float32), (u[~held], t[~held])), shape=engaged.shape)
    nu = rng.integers(n_users, size=held.sum())
    nt = rng.integers(n_topics, size=held.sum())
    outside = ug[nu] != tg[nt]
    return train, (u[held], t[held]), (nu[outside], nt[outside])


def test_als_ranks_held_out_engagements_above_random_pairs():
    train, (hu, ht), (nu, nt) = planted()
    fit = fit_als(train, ALSConfig(factors=8, regularization=1.0, iterations=10, alpha=10.0, confidence="binary"))
    score = lambda u, t: np.einsum("nd,nd->n", fit.users[u], fit.topics[t])  # noqa: E731
    labels = np.r_[np.ones(len(hu)), np.zeros(len(nu))]
    auc = roc_auc_score(labels, np.r_[score(hu, ht), score(nu, nt)])
    assert auc > 0.95, auc


def test_more_iterations_lower_the_weighted_objective():
    train, _, _ = planted(n_users=80, n_topics=60)
    cfg = ALSConfig(factors=6, regularization=0.5, iterations=1, alpha=5.0, confidence="binary")
    one = loss(train, fit_als(train, cfg), cfg)
    many_cfg = cfg.model_copy(update={"iterations": 10})
    many = loss(train, fit_als(train, many_cfg), many_cfg)
    assert many < one


def test_the_fit_is_a_function_of_the_data_and_the_seed():
    train, _, _ = planted(n_users=60, n_topics=40)
    cfg = ALSConfig(factors=4, iterations=3)
    a, b = fit_als(train, cfg), fit_als(train, cfg)
    assert np.array_equal(a.users, b.users) and np.array_equal(a.topics, b.topics)
    c = fit_als(train, cfg.model_copy(update={"seed": 1}))
    assert not np.array_equal(a.users, c.users)


def test_confidence_weighting():
    m = sp.csr_matrix(np.array([[0, 3.0, 0], [1.0, 0, 0]], np.float32))
    assert confidence(m, ALSConfig(alpha=2.0, confidence="binary")).data.tolist() == [2.0, 2.0]
    assert confidence(m, ALSConfig(alpha=2.0, confidence="linear")).data.tolist() == [6.0, 2.0]
    assert np.allclose(confidence(m, ALSConfig(alpha=1.0, confidence="log")).data, np.log1p([3.0, 1.0]))


def test_interaction_matrix_sums_repeated_topics():
    topics = pa.array([[1, 2, 1], [0]], pa.list_(pa.int64()))
    weights = pa.array([[1.0, 2.0, 3.0], [5.0]], pa.list_(pa.float32()))
    m = interaction_matrix(np.array([7, 9]), topics, weights, 3).toarray()
    assert m.tolist() == [[0.0, 4.0, 2.0], [5.0, 0.0, 0.0]]


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ValidationError, match="factors"):
        ALSConfig(factors=1)
    with pytest.raises(ConfigError, match=r"expansion\.als\.factorz: unknown key"):
        load_config("configs/local.yaml", ["expansion.als.factorz=3"])
    with pytest.raises(ConfigError, match=r"expansion\.als\.confidence"):
        load_config("configs/local.yaml", ["expansion.als.confidence=sqrt"])
