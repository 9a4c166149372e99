"""Online simulation on the synthetic bandit, and cumulative regret.

Each round draws a context, the policy picks an action, a Bernoulli reward is drawn from the
environment's known click probabilities and the policy learns from it. Regret is measured
against the best action for that context, in expectation (``max_a p(x, a) - p(x, a_t)``), so it
carries no reward noise. All policies of one seed see the same contexts and the same uniform
numbers for their rewards (common random numbers), so their regret curves differ by their
choices alone.
"""

from __future__ import annotations

import numpy as np

from reco.policy.bandits.config import BanditConfig
from reco.policy.bandits.factory import make_policy
from reco.policy.bandits.policy import choose
from reco.policy.ope.synthetic_bandit import SyntheticBandit, make_bandit


def bandit_environment(cfg: BanditConfig) -> SyntheticBandit:
    return make_bandit(cfg.n_actions, cfg.dim, cfg.seed, cfg.signal, cfg.base_logit)


def arm_features(x: np.ndarray, n_actions: int) -> np.ndarray:
    """The context with an intercept, repeated for every action: (n_actions, dim + 1)."""
    return np.tile(np.concatenate([[1.0], x]), (n_actions, 1))


def simulate(env: SyntheticBandit, policy_name: str, cfg: BanditConfig, seed: int) -> np.ndarray:
    """Per-round expected regret of one policy over ``cfg.horizon`` rounds."""
    data_rng = np.random.default_rng(seed)
    contexts = env.contexts(cfg.horizon, data_rng)
    probs = env.reward_probability(contexts)
    u = data_rng.random(cfg.horizon)
    policy = make_policy(policy_name, env.n_actions, env.dim + 1, cfg)
    policy_rng = np.random.default_rng([seed, 1])
    regret = np.empty(cfg.horizon)
    best = probs.max(axis=1)
    for t in range(cfg.horizon):
        feats = arm_features(contexts[t], env.n_actions)
        a = choose(policy, feats, policy_rng)
        policy.update(feats[a], a, float(u[t] < probs[t, a]))
        regret[t] = best[t] - probs[t, a]
    return regret


def regret_summary(curves: dict[str, list[np.ndarray]]) -> dict[str, dict]:
    """Per policy: final cumulative regret (mean and sd over seeds) and the mean curve."""
    out = {}
    for name, runs in curves.items():
        cum = np.cumsum(np.vstack(runs), axis=1)
        out[name] = {
            "cumulative_regret": float(cum[:, -1].mean()),
            "sd": float(cum[:, -1].std(ddof=1)) if len(runs) > 1 else 0.0,
            "seeds": len(runs),
            "curve": cum.mean(axis=0),
        }
    return out
