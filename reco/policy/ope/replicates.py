"""The known-truth study: many independent logs from the synthetic bandit, every estimator on each.

Over replicates, an unbiased estimator's mean sits within a few standard errors of the true
value (:func:`summarize` reports ``t = bias / se``), and its bootstrap intervals cover the truth
about as often as their level says. Each replicate draws its own log, cross-fits its own reward
model and bootstraps its own intervals, so replicates are independent and the Ray job spreads
them over tasks with :func:`run_replicates` on slices of the seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reco.policy.ope.bootstrap import bootstrap_values, percentile_interval
from reco.policy.ope.config import EstimatorConfig, SyntheticOPEConfig
from reco.policy.ope.estimators import all_estimators, ope_inputs
from reco.policy.ope.reward_model import cross_fit
from reco.policy.ope.synthetic_bandit import (
    LinearSoftmaxPolicy,
    SyntheticBandit,
    logging_policy,
    make_bandit,
    sample_log,
    target_policies,
    true_values,
)


@dataclass(frozen=True)
class SyntheticSetup:
    env: SyntheticBandit
    logging: LinearSoftmaxPolicy
    targets: dict[str, LinearSoftmaxPolicy]
    truth: dict[str, tuple[float, float]]  # target -> (value, Monte-Carlo standard error)


def synthetic_setup(cfg: SyntheticOPEConfig) -> SyntheticSetup:
    env = make_bandit(cfg.n_actions, cfg.dim, cfg.seed, cfg.signal, cfg.base_logit)
    targets = target_policies(env)
    truth = true_values(env, targets, cfg.truth_contexts, cfg.seed + 1)
    return SyntheticSetup(env, logging_policy(env, cfg.logging_temperature, cfg.seed), targets, truth)


def replicate_seeds(cfg: SyntheticOPEConfig) -> list[int]:
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence([cfg.seed, 1]).spawn(cfg.replicates)]


def one_replicate(
    setup: SyntheticSetup, cfg: SyntheticOPEConfig, est: EstimatorConfig, seed: int, level: float = 0.95
) -> dict:
    """{target: {estimator: {"estimate", "ci"}}} for one freshly logged data set."""
    rng = np.random.default_rng(seed)
    log = sample_log(setup.env, setup.logging, cfg.n_rounds, rng)
    q_hat = cross_fit(log, cfg.reward_model.model_copy(update={"seed": seed % 2**31}))
    out = {}
    for name, pol in setup.targets.items():
        terms = all_estimators(ope_inputs(log, pol.action_dist(log.context), q_hat), est.clip, est.switch_tau)
        boot = bootstrap_values(terms, cfg.bootstrap_draws, seed + 1)
        out[name] = {
            e: {"estimate": t.value(), "ci": list(percentile_interval(boot[e], level))} for e, t in terms.items()
        }
    return out


def run_replicates(
    setup: SyntheticSetup, cfg: SyntheticOPEConfig, est: EstimatorConfig, seeds: list[int]
) -> list[dict]:
    return [one_replicate(setup, cfg, est, s) for s in seeds]


def summarize(replicates: list[dict], truth: dict[str, tuple[float, float]]) -> dict[str, dict[str, dict]]:
    """Per target and estimator: truth, mean, bias, sd, rmse, t = bias / se, interval coverage."""
    out: dict[str, dict[str, dict]] = {}
    for target, (value, truth_se) in truth.items():
        out[target] = {}
        for est in replicates[0][target]:
            e = np.array([r[target][est]["estimate"] for r in replicates])
            ci = np.array([r[target][est]["ci"] for r in replicates])
            se = np.sqrt(e.var(ddof=1) / e.size + truth_se**2)
            out[target][est] = {
                "truth": value,
                "mean": float(e.mean()),
                "bias": float(e.mean() - value),
                "sd": float(e.std(ddof=1)),
                "rmse": float(np.sqrt(((e - value) ** 2).mean())),
                "t": float((e.mean() - value) / se) if se > 0 else 0.0,
                "coverage": float(((ci[:, 0] <= value) & (value <= ci[:, 1])).mean()),
                "replicates": int(e.size),
            }
    return out
