"""Bandit and score-based targets on your own logs: proper distributions, fitted only on earlier rows,
and estimates through the generic source that recover a known true value."""

import dataclasses

import numpy as np
import pytest
from scipy.special import softmax

from reco.errors import DataError
from reco.policy.bandits.config import BanditConfig
from reco.policy.bandits.factory import POLICIES, make_policy
from reco.policy.ope.bootstrap import bootstrap_values, percentile_interval
from reco.policy.ope.config import EstimatorConfig, RewardModelConfig
from reco.policy.ope.logged_feedback import read_feedback, write_feedback
from reco.policy.ope.logs_evaluation import LogsEvaluation, refit_bootstrap
from reco.policy.ope.reward_model import cross_fit
from reco.policy.ope.synthetic_log import bandit_true_value
from reco.policy.ope.target_policies import (
    bandit_action_dist,
    bandit_method,
    feature_dim,
    fit_bandit,
    kth_best,
    scores_to_dist,
    time_split,
)
from tests.unit.policy.ope_logs_helpers import logs_config, synthetic_log

CFG = BanditConfig()


@pytest.fixture(scope="module")
def feedback(tmp_path_factory):
    syn = synthetic_log(1_200, seed=5)
    path = write_feedback(syn.frame, str(tmp_path_factory.mktemp("logs") / "log.csv"))
    return syn, read_feedback(logs_config(path))


def _fitted(name, fb, fit_share=0.5, seed=0):
    fit, evaluated = time_split(fb.time_order(), fit_share, fb.log.source)
    policy = make_policy(name, fb.log.n_actions, feature_dim(fb.log), CFG)
    fit_bandit(policy, fb.log, fit)
    return policy, fit, evaluated


@pytest.mark.parametrize("name", POLICIES.names())
def test_every_bandit_gives_a_distribution_per_row(feedback, name):
    _, fb = feedback
    policy, fit, evaluated = _fitted(name, fb)
    dist = bandit_action_dist(policy, fb.log, evaluated, samples=100, seed=0)
    assert dist.shape == (evaluated.size, fb.log.n_actions)
    assert (dist >= 0).all()
    np.testing.assert_allclose(dist.sum(axis=1), 1.0)


def test_the_bandit_learns_only_from_rows_before_the_evaluated_ones(feedback):
    _, fb = feedback
    policy, fit, evaluated = _fitted("epsilon_greedy", fb)
    assert np.intersect1d(fit, evaluated).size == 0 and fit.size + evaluated.size == fb.n
    assert fb.log.timestamp[fit].max() < fb.log.timestamp[evaluated].min()
    dist = bandit_action_dist(policy, fb.log, evaluated, 100, 0)
    # the evaluated rows' rewards cannot move the target: change them all, refit, same distribution
    flipped = dataclasses.replace(
        fb.log, reward=np.where(np.isin(np.arange(fb.n), evaluated), 1 - fb.log.reward, fb.log.reward)
    )
    again = make_policy("epsilon_greedy", fb.log.n_actions, feature_dim(fb.log), CFG)
    fit_bandit(again, flipped, fit)
    np.testing.assert_array_equal(bandit_action_dist(again, flipped, evaluated, 100, 0), dist)
    # while the fit rows' rewards do
    flipped_fit = dataclasses.replace(
        fb.log, reward=np.where(np.isin(np.arange(fb.n), fit), 1 - fb.log.reward, fb.log.reward)
    )
    other = make_policy("epsilon_greedy", fb.log.n_actions, feature_dim(fb.log), CFG)
    fit_bandit(other, flipped_fit, fit)
    assert not np.allclose(bandit_action_dist(other, flipped_fit, evaluated, 100, 0), dist)
    with pytest.raises(DataError, match=r"only 6 rows are left to evaluate .*lower ope\.target\.bandit\.fit_share"):
        time_split(fb.time_order(), 0.995, "log")


def test_epsilon_greedy_is_exact_and_an_untrained_bandit_is_uniform(feedback):
    _, fb = feedback
    policy, _, evaluated = _fitted("epsilon_greedy", fb)
    dist = bandit_action_dist(policy, fb.log, evaluated, 100, 0)
    k = fb.log.n_actions
    assert bandit_method(policy).startswith("exact")
    np.testing.assert_allclose(dist.max(axis=1), 1 - CFG.epsilon + CFG.epsilon / k)
    np.testing.assert_allclose(dist.min(axis=1), CFG.epsilon / k)
    prior, _, _ = _fitted("epsilon_greedy", fb, fit_share=0.0)  # every mean is 0: the tie-break is uniform
    np.testing.assert_allclose(bandit_action_dist(prior, fb.log, evaluated, 100, 0), 1 / k)


class _Opaque:
    """A bandit the target code knows nothing about: only its scores() can be called."""

    name = "opaque"

    def __init__(self, inner):
        self.inner = inner

    def scores(self, features, rng):
        return self.inner.scores(features, rng)

    def update(self, features, action, reward):
        self.inner.update(features, action, reward)


@pytest.mark.parametrize("name", ["epsilon_greedy", "thompson", "bernoulli_thompson"])
def test_fast_distributions_agree_with_calling_the_policy(feedback, name):
    _, fb = feedback
    policy, _, evaluated = _fitted(name, fb)
    rows = evaluated[:25]
    fast = bandit_action_dist(policy, fb.log, rows, samples=4_000, seed=1)
    slow = bandit_action_dist(_Opaque(policy), fb.log, rows, samples=2_000, seed=2)
    assert bandit_method(_Opaque(policy)).startswith("estimated")
    assert np.abs(fast - slow).max() < 0.06  # two Monte-Carlo estimates of the same probabilities


def test_scores_to_distribution():
    p = np.array([[0.1, 0.2, 0.4, 0.3], [0.5, 0.5, 0.1, 0.1]])
    top = np.zeros(2, dtype=np.int64)
    np.testing.assert_allclose(scores_to_dist(p, top, "softmax", temperature=1.0), p / p.sum(axis=1, keepdims=True))
    np.testing.assert_allclose(scores_to_dist(p, top, "softmax", 0.5), softmax(2 * np.log(p), axis=1))
    greedy = scores_to_dist(p, top, "greedy")
    np.testing.assert_allclose(greedy, [[0, 0, 1, 0], [0.5, 0.5, 0, 0]])  # ties share the mass
    np.testing.assert_allclose(scores_to_dist(p, top, "greedy", epsilon=0.2)[0], [0.05, 0.05, 0.85, 0.05])
    np.testing.assert_allclose(kth_best(p, np.array([1, 2])), [[0, 0, 0, 1], [0, 0, 0.5, 0.5]])
    # second slot of a softmax ranking (Plackett-Luce): sum over the first item b of w_b / W * w_a / (W - w_b)
    w = p[0] / p[0].sum()
    exact = np.array([sum(w[b] * w[a] / (1 - w[b]) for b in range(4) if b != a) for a in range(4)])
    mc = scores_to_dist(p[:1], np.array([1]), "softmax", samples=40_000, seed=0)[0]
    np.testing.assert_allclose(mc, exact, atol=0.01)
    with pytest.raises(DataError, match="position 4 but only 4 actions"):
        scores_to_dist(p, np.array([0, 4]), "greedy")


def _estimate(fb, dist, draws=400, seed=0):
    q = cross_fit(fb.log, RewardModelConfig(cs=[1.0], interactions=True))
    ev = LogsEvaluation(fb.log, dist, RewardModelConfig(cs=[1.0], interactions=True), EstimatorConfig())
    terms = ev.terms(q)
    boot = bootstrap_values(terms, draws, seed)
    return {k: (terms[k].value(), percentile_interval(boot[k])) for k in ("ipw", "dr")}, ev


def test_ipw_and_dr_recover_a_known_value_through_the_generic_source(tmp_path):
    """20 logs from the synthetic bandit, written as CSV and read back: the frozen bandit's true value
    (exact rewards over fresh contexts) sits inside the 95% intervals about 95% of the time."""
    covered = {"ipw": 0, "dr": 0}
    errors = {"ipw": [], "dr": []}
    reps = 20
    for seed in range(reps):
        syn = synthetic_log(1_000, seed=100 + seed)
        fb = read_feedback(logs_config(write_feedback(syn.frame, str(tmp_path / f"log{seed}.parquet"))))
        policy, _, evaluated = _fitted("epsilon_greedy", fb)
        ev_fb = fb.subset(evaluated)
        dist = bandit_action_dist(policy, ev_fb.log, np.arange(ev_fb.n), 100, 0)
        truth, _ = bandit_true_value(syn.env, policy, samples=100)
        est, _ = _estimate(ev_fb, dist, seed=seed)
        for k, (value, (lo, hi)) in est.items():
            covered[k] += lo <= truth <= hi
            errors[k].append(value - truth)
    for k in ("ipw", "dr"):
        e = np.array(errors[k])
        assert covered[k] >= 16, (k, covered[k])
        assert abs(e.mean()) / (e.std(ddof=1) / np.sqrt(reps)) < 3.5, (k, e.mean())  # no bias beyond noise


def test_refit_intervals_and_non_binary_rewards(feedback):
    _, fb = feedback
    dist = np.full((fb.n, fb.log.n_actions), 1 / fb.log.n_actions)
    ev = LogsEvaluation(fb.log, dist, RewardModelConfig(cs=[1.0]), EstimatorConfig())
    refit = refit_bootstrap(ev, draws=3, seed=0)
    assert set(refit) == {"ipw", "snipw", "dm", "dr", "switch_dr"} and all(v.size == 3 for v in refit.values())
    revenue = dataclasses.replace(fb.log, reward=fb.log.reward * 2.5)
    only_weights = LogsEvaluation(revenue, dist, RewardModelConfig(), EstimatorConfig(), model_based=False)
    assert set(only_weights.terms(None)) == {"ipw", "snipw"}
    assert only_weights.estimates(np.arange(fb.n))["ipw"] == pytest.approx(
        np.mean(revenue.reward / fb.log.n_actions / fb.log.propensity)
    )
    with pytest.raises(DataError, match="sum to"):
        LogsEvaluation(fb.log, dist * 2, RewardModelConfig(), EstimatorConfig())
