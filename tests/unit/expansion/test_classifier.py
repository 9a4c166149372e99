"""The affinity classifier: learns a list, is class-balanced, stops early; exact stacked scoring."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from reco.expansion.affinity_classifier import (
    StackedClassifiers,
    background_size,
    fit_classifier,
    mlp_scores,
    sample_background,
)
from reco.expansion.config import ClassifierConfig
from reco.expansion.fixed_point import user_grid


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _cluster(rng, n, centre, spread=0.6):
    return _unit(centre + spread * rng.standard_normal((n, len(centre))))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    centre = rng.standard_normal(16)
    return rng, centre, _cluster(rng, 40, centre), _unit(rng.standard_normal((800, 16)))


def test_a_list_is_learnt_from_few_seeds_against_many_background_users(data):
    rng, centre, seeds, background = data
    w = fit_classifier(seeds, background, ClassifierConfig(hidden=16, max_epochs=100))
    fresh_members, fresh_others = _cluster(rng, 200, centre), _unit(rng.standard_normal((200, 16)))
    scores = mlp_scores(w, np.concatenate([fresh_members, fresh_others]))
    assert roc_auc_score(np.r_[np.ones(200), np.zeros(200)], scores) > 0.95
    # class-balanced: 40 seeds against 800 users still put members on the positive side
    assert (mlp_scores(w, fresh_members) > 0).mean() > 0.8


def test_early_stopping_keeps_the_best_step(data):
    _, _, seeds, background = data
    w = fit_classifier(seeds, background, ClassifierConfig(hidden=16, max_epochs=500, patience=5, lr=0.05, refit=False))
    assert w.best_step <= w.steps < 500
    assert w.steps - w.best_step <= 5


def test_fitting_is_deterministic(data):
    _, _, seeds, background = data
    cfg = ClassifierConfig(hidden=8, max_epochs=30)
    a = fit_classifier(seeds, background, cfg, seed=3)
    b = fit_classifier(seeds, background, cfg, seed=3)
    assert np.array_equal(a.w1, b.w1) and a.b2 == b.b2


def test_background_sampling_excludes_seeds_and_respects_sizes():
    rng = np.random.default_rng(1)
    bg = sample_background(np.arange(100), np.arange(10), 30, rng)
    assert len(bg) == 30 and len(set(bg.tolist())) == 30 and bg.min() >= 10
    assert len(sample_background(np.arange(20), np.arange(10), 30, rng)) == 10
    cfg = ClassifierConfig(background_ratio=10, min_background=1000, max_background=5000)
    assert [background_size(n, cfg) for n in (5, 300, 10_000)] == [1000, 3000, 5000]


def test_stacked_fixed_point_logits_match_float_and_ignore_batching(data):
    rng, centre, seeds, background = data
    cfg = ClassifierConfig(hidden=8, max_epochs=40)
    weights = [fit_classifier(seeds, background, cfg, seed=s) for s in range(3)]
    stacked = StackedClassifiers.from_weights(weights)
    users = _unit(rng.standard_normal((1000, 16)))
    logits = stacked.logits(user_grid(users))
    for i, w in enumerate(weights):
        np.testing.assert_allclose(logits[i], mlp_scores(w, users), atol=2e-3)
    parts = np.concatenate([stacked.logits(user_grid(users[s : s + 33])) for s in range(0, 1000, 33)], axis=1)
    assert np.array_equal(parts, logits)
    assert np.array_equal(stacked.logits(user_grid(users[7:8])), logits[:, 7:8])


def test_gradients_match_finite_differences():
    from reco.expansion.affinity_classifier import _data, _gradients, _init, _logits, balanced_loss

    rng = np.random.default_rng(5)
    # float64 copies of the (float32) training arrays, so that central differences are exact enough
    data = tuple(a.astype(np.float64) for a in _data(rng.standard_normal((6, 4)), rng.standard_normal((9, 4))))
    params = [p.astype(np.float64) for p in _init(4, 3, seed=2)]
    params[1] += 0.3  # keep every hidden unit away from the ReLU kink
    grads = _gradients(params, data)
    eps = 1e-6
    for p, g in zip(params, grads):
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            up = balanced_loss(_logits(params, data[0]), data[1], data[2])
            p[i] = old - eps
            down = balanced_loss(_logits(params, data[0]), data[1], data[2])
            p[i] = old
            assert abs((up - down) / (2 * eps) - g[i]) < 1e-6
