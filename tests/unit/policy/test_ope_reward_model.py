"""The cross-fitted reward model: fast per-block prediction equals scikit-learn's, folds never see their rows."""

import dataclasses
import logging

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from reco.policy.ope.config import RewardModelConfig
from reco.policy.ope.reward_model import cross_fit, design, fit_click_model, fold_ids
from reco.policy.ope.synthetic_bandit import logging_policy, make_bandit, sample_log


@pytest.fixture(scope="module")
def obd_log(shared_data):
    from reco.policy.ope.logged_data import read_obd

    return read_obd(str(shared_data / "obd"), "random", "all")[0]


@pytest.mark.parametrize("interactions", [False, True])
def test_block_prediction_equals_sklearn_on_the_full_design(obd_log, interactions):
    train = np.arange(0, 3_000)
    model = fit_click_model(obd_log, train, RewardModelConfig(cs=[1.0], interactions=interactions))
    rows = np.arange(9_000, 9_040)
    k = obd_log.n_actions
    ref = LogisticRegression(C=1.0, max_iter=500).fit(
        design(obd_log, train, obd_log.action[train], interactions), (obd_log.reward[train] > 0).astype(int)
    )
    want = ref.predict_proba(design(obd_log, np.repeat(rows, k), np.tile(np.arange(k), rows.size), interactions))[:, 1]
    np.testing.assert_allclose(model.predict_all(obd_log, rows), want.reshape(rows.size, k), atol=1e-6)


def test_cross_fitting_predicts_each_row_without_it():
    env = make_bandit(3, 2, seed=1)
    log = sample_log(env, logging_policy(env, 1.0, 1), 600, np.random.default_rng(1))
    cfg = RewardModelConfig(n_folds=3, cs=[1.0], interactions=True, seed=4)
    q = cross_fit(log, cfg)
    folds = fold_ids(log.n, 3, 4)
    assert np.bincount(folds).tolist() == [200, 200, 200]
    # flipping the rewards of fold 0 changes fold 0's training data only for the other folds' models:
    # fold 0's own predictions do not move
    flipped = dataclasses.replace(log, reward=np.where(folds == 0, 1 - log.reward, log.reward))
    q2 = cross_fit(flipped, cfg)
    np.testing.assert_allclose(q2[folds == 0], q[folds == 0])
    assert not np.allclose(q2[folds != 0], q[folds != 0])


def test_a_fold_without_clicks_predicts_the_mean(caplog):
    env = make_bandit(3, 2, seed=1)
    log = sample_log(env, logging_policy(env, 1.0, 1), 60, np.random.default_rng(1))
    zero = dataclasses.replace(log, reward=np.zeros(log.n))
    with caplog.at_level(logging.WARNING):
        q = cross_fit(zero, RewardModelConfig(cs=[1.0]))
    assert np.all(q == 0) and "all zero" in caplog.text


def test_cs_are_checked():
    with pytest.raises(ValueError, match="cs must all be > 0"):
        RewardModelConfig(cs=[0.1, -1.0])
