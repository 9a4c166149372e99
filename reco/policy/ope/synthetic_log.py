"""A log in the generic layout from the synthetic bandit, so a target's true value is known.

:func:`synthetic_log_frame` logs ``n_rounds`` rounds of the known-reward contextual bandit
(reco.policy.ope.synthetic_bandit) under its softmax logging policy and lays them out as a user's
own log would be: one row per round with ``timestamp``, ``user_id``, ``action`` (labels
``a0``...), ``reward``, ``propensity`` and context columns ``x0``.... Read through
reco.policy.ope.logged_feedback with :data:`COLUMNS`, it is the same log the estimators would get
from the simulator directly.

:func:`true_value` gives any target's true value from the simulator's exact reward
probabilities over fresh contexts, for a target given as a function from contexts to action
distributions (a frozen bandit, a softmax over scores), so a test can check that an estimate's
interval covers it; :func:`bandit_true_value` does so for a frozen bandit target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reco.policy.ope.logged_data import LoggedFeedback
from reco.policy.ope.synthetic_bandit import (
    LinearSoftmaxPolicy,
    SyntheticBandit,
    logging_policy,
    make_bandit,
    sample_actions,
)
from reco.policy.ope.target_policies import bandit_action_dist

COLUMNS = {
    "action": "action",
    "reward": "reward",
    "propensity": "propensity",
    "user": "user_id",
    "timestamp": "timestamp",
    "context": ["x*"],
}


@dataclass(frozen=True)
class SyntheticLog:
    frame: pd.DataFrame
    env: SyntheticBandit
    logging: LinearSoftmaxPolicy


def synthetic_log_frame(
    n_rounds: int,
    n_actions: int = 6,
    dim: int = 3,
    seed: int = 0,
    temperature: float = 1.0,
    n_users: int = 50,
    signal: float = 1.0,
    base_logit: float = -0.5,
) -> SyntheticLog:
    """``n_rounds`` logged rounds in the generic layout (one per second), and the bandit behind them."""
    env = make_bandit(n_actions, dim, seed, signal, base_logit)
    logging = logging_policy(env, temperature, seed)
    rng = np.random.default_rng([seed, 17])
    x = env.contexts(n_rounds, rng)
    dist = logging.action_dist(x)
    a = sample_actions(dist, rng)
    rows = np.arange(n_rounds)
    reward = (rng.random(n_rounds) < env.reward_probability(x)[rows, a]).astype(np.int64)
    frame = pd.DataFrame(
        {
            "timestamp": 1_700_000_000 + rows,
            "user_id": [f"u{u}" for u in rng.integers(0, n_users, n_rounds)],
            "action": [f"a{i}" for i in a],
            "reward": reward,
            "propensity": dist[rows, a],
            **{f"x{j}": x[:, j] for j in range(dim)},
        }
    )
    return SyntheticLog(frame, env, logging)


def true_value(
    env: SyntheticBandit, policy: Callable[[np.ndarray], np.ndarray], n_contexts: int = 200_000, seed: int = 1
) -> tuple[float, float]:
    """(value, Monte-Carlo standard error) of ``policy(contexts) -> (m, n_actions)`` under exact rewards.

    The action index order is the log's: labels ``a0``... sorted as text, which is index order
    for up to ten actions.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for start in range(0, n_contexts, 50_000):
        x = env.contexts(min(50_000, n_contexts - start), rng)
        parts.append((policy(x) * env.reward_probability(x)).sum(axis=1))
    v = np.concatenate(parts)
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size))


def bandit_true_value(
    env: SyntheticBandit, policy: Any, samples: int = 200, n_contexts: int = 200_000, seed: int = 1
) -> tuple[float, float]:
    """The true value of a frozen bandit (fitted on a log of this bandit), at the top position."""

    def dist(x: np.ndarray) -> np.ndarray:
        m = x.shape[0]
        zeros = np.zeros(m, dtype=np.int64)
        fresh = LoggedFeedback(zeros, np.zeros(m), np.ones(m), zeros, x, env.n_actions, source="fresh contexts")
        return bandit_action_dist(policy, fresh, np.arange(m), samples, seed)

    return true_value(env, dist, n_contexts, seed)
