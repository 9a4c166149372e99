"""Thompson sampling, epsilon-greedy and random: posteriors, regret on the synthetic bandit, replay."""

import numpy as np
import pytest

from reco.errors import ConfigError, DataError
from reco.policy.bandits.beta_bernoulli import BernoulliThompson
from reco.policy.bandits.config import BanditConfig
from reco.policy.bandits.factory import POLICIES, make_policy
from reco.policy.bandits.linear_thompson import RidgeArms
from reco.policy.bandits.policy import choose, ranking
from reco.policy.bandits.replay import obd_features, replay
from reco.policy.bandits.simulation import bandit_environment, regret_summary, simulate
from reco.policy.ope.synthetic_bandit import LinearSoftmaxPolicy, make_bandit, sample_log, true_values, uniform_policy


def test_beta_bernoulli_posterior_counts_clicks_and_misses():
    p = BernoulliThompson(3)
    for r in (1, 0, 0, 1, 1):
        p.update(np.zeros(1), 2, r)
    assert p.alpha.tolist() == [1, 1, 4] and p.beta.tolist() == [1, 1, 3]
    assert p.posterior_mean()[2] == pytest.approx(4 / 7)


def test_thompson_concentrates_on_the_best_item():
    rng = np.random.default_rng(0)
    rates = np.array([0.05, 0.10, 0.30])
    p = BernoulliThompson(3)
    picks = []
    for _ in range(2_000):
        a = choose(p, np.zeros((3, 1)), rng)
        p.update(np.zeros(1), a, float(rng.random() < rates[a]))
        picks.append(a)
    assert np.mean(np.array(picks[-500:]) == 2) > 0.9
    assert ranking(p, np.zeros((3, 1)), rng).tolist() in ([2, 1, 0], [2, 0, 1])


def test_ridge_posterior_matches_the_closed_form():
    rng = np.random.default_rng(1)
    arms = RidgeArms(2, 3, ridge=2.0)
    x = rng.normal(size=(40, 3))
    y = x @ np.array([0.5, -1.0, 2.0]) + 0.1 * rng.normal(size=40)
    for xi, yi in zip(x, y):
        arms.update(xi, 1, yi)
    want = np.linalg.solve(2.0 * np.eye(3) + x.T @ x, x.T @ y)
    np.testing.assert_allclose(arms.mean[1], want, atol=1e-10)
    np.testing.assert_allclose(
        arms.cov_chol[1] @ arms.cov_chol[1].T, np.linalg.inv(2.0 * np.eye(3) + x.T @ x), atol=1e-10
    )
    assert np.all(arms.mean[0] == 0)  # the other arm saw nothing


def test_thompson_has_less_regret_than_epsilon_greedy_and_random():
    cfg = BanditConfig(horizon=2_000, seeds=2)
    env = bandit_environment(cfg)
    curves = {p: [simulate(env, p, cfg, seed) for seed in (11, 12)] for p in ("thompson", "epsilon_greedy", "random")}
    s = regret_summary(curves)
    assert (
        s["thompson"]["cumulative_regret"] < s["epsilon_greedy"]["cumulative_regret"] < s["random"]["cumulative_regret"]
    )
    # and it is still learning: its regret per round falls over time, random's does not
    ts = np.mean(curves["thompson"], axis=0)
    assert ts[-500:].mean() < 0.5 * ts[:500].mean()


def test_policies_by_name():
    for name in POLICIES:
        assert make_policy(name, 4, 3, BanditConfig()).name == name
    with pytest.raises(ConfigError, match="unknown bandit policy 'ucb'"):
        make_policy("ucb", 4, 3, BanditConfig())


class _Fixed:
    """A policy that never learns: replay must then estimate its value without bias."""

    name = "fixed"

    def __init__(self, policy: LinearSoftmaxPolicy):
        self.policy = policy

    def scores(self, features, rng):
        return self.policy.action_dist(features[:1, 1:])[0] + 1e-9 * rng.random(features.shape[0])

    def update(self, features, action, reward):
        return None


def test_replay_of_a_fixed_policy_is_unbiased_on_uniform_logs():
    env = make_bandit(4, 2, seed=5, base_logit=0.0)
    greedy = LinearSoftmaxPolicy(env.weights, env.bias, 0.0, 0.0)
    truth, _ = true_values(env, {"greedy": greedy}, 100_000, seed=1)["greedy"]
    log = sample_log(env, uniform_policy(env), 8_000, np.random.default_rng(3))

    def feats(lg, i):
        return np.tile(np.concatenate([[1.0], lg.context[i]]), (lg.n_actions, 1))

    r = replay(log, _Fixed(greedy), feats, seed=0)
    assert r.matches == pytest.approx(2_000, rel=0.05)  # a quarter of the rows match
    assert r.ci[0] <= truth <= r.ci[1]
    assert abs(r.value - truth) < 0.03


def test_replay_rejects_non_uniform_logs():
    env = make_bandit(3, 2, seed=0)
    log = sample_log(env, LinearSoftmaxPolicy(env.weights, env.bias), 50, np.random.default_rng(0))
    with pytest.raises(DataError, match="replay needs uniformly random logs"):
        replay(log, make_policy("random", 3, 3, BanditConfig()), lambda lg, i: np.ones((3, 3)), seed=0)


def test_obd_feature_rows(shared_data):
    from reco.policy.ope.logged_data import read_obd

    log, _ = read_obd(str(shared_data / "obd"), "random", "all")
    log = log.subset(np.arange(300))
    f = obd_features(log, 0)
    assert f.shape == (80, 1 + log.context.shape[1] + 1) and np.all(f[:, 0] == 1)
    r = replay(log, make_policy("thompson", 80, f.shape[1], BanditConfig()), obd_features, seed=0)
    assert 0 < r.matches < 30  # about 1 row in 80 matches
