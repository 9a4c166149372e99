"""Truth check 1: on a bandit with known rewards, IPW and DR are unbiased over repeated logs.

Each of R independent logs gives one estimate per target policy; an unbiased estimator's mean
over the R logs lies within a few standard errors of the true value (``t = bias / se``). The
same check flags a biased estimator: IPW fed the wrong propensities, and DM with a reward model
that ignores the context, are both many standard errors off, while DR with that same bad model
stays unbiased (it is doubly robust: right propensities suffice). The reward model used by DR is
fitted once on an independent log, so it is fixed with respect to every replicate. Fixed seeds:
the outcome is deterministic.
"""

import dataclasses

import numpy as np
import pytest

from reco.policy.ope.bootstrap import bootstrap_values, percentile_interval
from reco.policy.ope.config import RewardModelConfig
from reco.policy.ope.estimators import all_estimators, ope_inputs
from reco.policy.ope.reward_model import fit_click_model
from reco.policy.ope.synthetic_bandit import logging_policy, make_bandit, sample_log, target_policies, true_values

R, N = 300, 500
TARGETS = ("softmax_sharp", "eps_greedy", "greedy", "uniform")


@pytest.fixture(scope="module")
def study():
    env = make_bandit(n_actions=5, dim=3, seed=0, signal=1.0, base_logit=-0.5)
    logging = logging_policy(env, temperature=1.0, seed=0)
    targets = target_policies(env)
    truth = true_values(env, targets, 200_000, seed=1)
    train = sample_log(env, logging, 20_000, np.random.default_rng(99))
    good = fit_click_model(train, np.arange(train.n), RewardModelConfig(cs=[1.0], interactions=True))
    rng = np.random.default_rng(2024)
    est = {
        t: {k: [] for k in ("ipw", "snipw", "dm", "dr", "ipw_wrong_propensity", "dm_bad_model", "dr_bad_model")}
        for t in targets
    }
    coverage = {t: {"ipw": 0, "dr": 0} for t in targets}
    for r in range(R):
        log = sample_log(env, logging, N, rng)
        rows = np.arange(N)
        q_good = good.predict_all(log, rows)
        q_bad = np.full_like(q_good, train.reward.mean())  # ignores context and action
        uniform_prop = dataclasses.replace(log, propensity=np.full(N, 1 / env.n_actions))
        for name, pol in targets.items():
            dist = pol.action_dist(log.context)
            terms = all_estimators(ope_inputs(log, dist, q_good))
            for k in ("ipw", "snipw", "dm", "dr"):
                est[name][k].append(terms[k].value())
            bad = all_estimators(ope_inputs(log, dist, q_bad))
            est[name]["dm_bad_model"].append(bad["dm"].value())
            est[name]["dr_bad_model"].append(bad["dr"].value())
            # the classic mistake: treating the logs as if they were uniformly random
            est[name]["ipw_wrong_propensity"].append(all_estimators(ope_inputs(uniform_prop, dist))["ipw"].value())
            if r < 100:
                boot = bootstrap_values({k: terms[k] for k in ("ipw", "dr")}, 200, seed=r)
                for k in ("ipw", "dr"):
                    lo, hi = percentile_interval(boot[k])
                    coverage[name][k] += lo <= truth[name][0] <= hi
    return truth, {t: {k: np.array(v) for k, v in d.items()} for t, d in est.items()}, coverage


def t_stat(values: np.ndarray, truth: tuple[float, float]) -> float:
    value, truth_se = truth
    return float((values.mean() - value) / np.sqrt(values.var(ddof=1) / values.size + truth_se**2))


@pytest.mark.parametrize("target", TARGETS)
def test_ipw_and_dr_are_unbiased(study, target):
    truth, est, _ = study
    for k in ("ipw", "dr"):
        assert abs(t_stat(est[target][k], truth[target])) < 3.5, (target, k, est[target][k].mean(), truth[target])


@pytest.mark.parametrize("target", TARGETS)
def test_the_check_catches_biased_estimators(study, target):
    truth, est, _ = study
    assert abs(t_stat(est[target]["ipw_wrong_propensity"], truth[target])) > 6
    assert abs(t_stat(est[target]["dm_bad_model"], truth[target])) > 6
    # doubly robust: the same bad model, corrected by the right propensities, is unbiased
    assert abs(t_stat(est[target]["dr_bad_model"], truth[target])) < 3.5


@pytest.mark.parametrize("target", ["softmax_sharp", "eps_greedy", "greedy"])
def test_dr_has_lower_variance_than_ipw_with_a_good_model(study, target):
    _, est, _ = study
    assert est[target]["dr"].std() < 0.8 * est[target]["ipw"].std()


@pytest.mark.parametrize("target", TARGETS)
def test_bootstrap_intervals_cover_the_truth(study, target):
    _, _, coverage = study
    for k in ("ipw", "dr"):
        assert coverage[target][k] >= 88, (target, k, coverage[target][k])  # 95% intervals, 100 replicates
