"""Epsilon-greedy: the ridge model's best action, except a uniformly random one with probability eps.

The usual baseline for Thompson sampling: the same per-action ridge regression
(reco.policy.bandits.linear_thompson.RidgeArms), but exploration is blind (it keeps trying actions it
already knows are bad, forever) and greedy rounds never explore the ones it is unsure about.
"""

from __future__ import annotations

import numpy as np

from reco.policy.bandits.linear_thompson import RidgeArms


class EpsilonGreedy:
    name = "epsilon_greedy"

    def __init__(self, n_actions: int, dim: int, epsilon: float = 0.1, ridge: float = 1.0):
        self.arms = RidgeArms(n_actions, dim, ridge)
        self.epsilon = epsilon

    def scores(self, features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < self.epsilon:
            return rng.random(self.arms.mean.shape[0])
        # tiny random tie-break: before any data every mean is zero
        return self.arms.mean_scores(features) + 1e-12 * rng.random(self.arms.mean.shape[0])

    def update(self, features: np.ndarray, action: int, reward: float) -> None:
        self.arms.update(features, action, reward)
