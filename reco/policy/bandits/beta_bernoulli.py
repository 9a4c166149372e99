"""Bernoulli Thompson sampling: one Beta posterior per item, no context.

Each round draws a click rate for every item from Beta(alpha + clicks, beta + misses) and shows
the items in the order of their draws, so an item is shown about as often as the posterior
believes it is the best: uncertain items get tried, clearly bad ones fade. This is the policy
that logged OBD's ``bts`` data.
"""

from __future__ import annotations

import numpy as np


class BernoulliThompson:
    name = "bernoulli_thompson"

    def __init__(self, n_actions: int, prior_alpha: float = 1.0, prior_beta: float = 1.0):
        self.alpha = np.full(n_actions, float(prior_alpha))
        self.beta = np.full(n_actions, float(prior_beta))

    def scores(self, features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return rng.beta(self.alpha, self.beta)

    def update(self, features: np.ndarray, action: int, reward: float) -> None:
        self.alpha[action] += reward
        self.beta[action] += 1.0 - reward

    def posterior_mean(self) -> np.ndarray:
        return self.alpha / (self.alpha + self.beta)
