"""Linear Thompson sampling: a Gaussian posterior over each action's reward weights.

Each action a has Bayesian ridge regression weights theta_a ~ N(mu_a, s^2 A_a^-1) with
A_a = ridge I + sum x x^T and mu_a = A_a^-1 sum r x over the rounds it was shown. A round samples
one theta per action and scores x_a . theta_a: actions with few observations have wide
posteriors and get explored, without a tuned exploration rate. :class:`RidgeArms` holds the
posteriors; epsilon-greedy (reco.policy.bandits.epsilon_greedy) uses the same model's means, so the
two differ only in how they explore.
"""

from __future__ import annotations

import numpy as np


class RidgeArms:
    """Per-action Bayesian ridge regression, updated one observation at a time."""

    def __init__(self, n_actions: int, dim: int, ridge: float = 1.0):
        self.precision = np.tile(np.eye(dim) * ridge, (n_actions, 1, 1))
        self.target = np.zeros((n_actions, dim))
        self.mean = np.zeros((n_actions, dim))
        self.cov_chol = np.tile(np.eye(dim) / np.sqrt(ridge), (n_actions, 1, 1))

    def update(self, features: np.ndarray, action: int, reward: float) -> None:
        self.precision[action] += np.outer(features, features)
        self.target[action] += reward * features
        cov = np.linalg.inv(self.precision[action])
        self.mean[action] = cov @ self.target[action]
        self.cov_chol[action] = np.linalg.cholesky((cov + cov.T) / 2)

    def mean_scores(self, features: np.ndarray) -> np.ndarray:
        return np.einsum("kd,kd->k", self.mean, features)

    def sampled_scores(self, features: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal(self.mean.shape)
        theta = self.mean + scale * np.einsum("kij,kj->ki", self.cov_chol, z)
        return np.einsum("kd,kd->k", theta, features)


class LinearThompson:
    name = "thompson"

    def __init__(self, n_actions: int, dim: int, ridge: float = 1.0, posterior_scale: float = 0.5):
        self.arms = RidgeArms(n_actions, dim, ridge)
        self.posterior_scale = posterior_scale

    def scores(self, features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.arms.sampled_scores(features, self.posterior_scale, rng)

    def update(self, features: np.ndarray, action: int, reward: float) -> None:
        self.arms.update(features, action, reward)
