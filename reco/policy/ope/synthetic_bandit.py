"""A contextual bandit whose reward functions are known, so estimates can be checked against truth.

Contexts are standard normal vectors; action a pays 1 with probability
``sigmoid(base + bias_a + x . w_a)``. Policies are softmax (or greedy, or epsilon-mixed) over
linear scores, so their action probabilities are exact and every logged propensity is the true
one. A policy's true value ``E_x sum_a pi(a|x) p(x, a)`` is averaged over many fresh contexts
with the exact reward probabilities (no reward noise), which makes its own error negligible
beside an estimator's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, softmax

from reco.policy.ope.logged_data import LoggedFeedback

TARGETS = ("softmax_sharp", "eps_greedy", "greedy", "uniform")


@dataclass(frozen=True)
class SyntheticBandit:
    weights: np.ndarray  # (n_actions, dim)
    bias: np.ndarray  # (n_actions,)

    @property
    def n_actions(self) -> int:
        return int(self.weights.shape[0])

    @property
    def dim(self) -> int:
        return int(self.weights.shape[1])

    def contexts(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((n, self.dim))

    def logits(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weights.T + self.bias

    def reward_probability(self, x: np.ndarray) -> np.ndarray:
        """(n, n_actions) click probabilities."""
        return expit(self.logits(x))


def make_bandit(n_actions: int, dim: int, seed: int, signal: float = 1.0, base_logit: float = -1.0) -> SyntheticBandit:
    """Random per-action weights (scale ``signal / sqrt(dim)``) and biases around ``base_logit``."""
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((n_actions, dim)) * signal / np.sqrt(dim)
    return SyntheticBandit(weights, base_logit + 0.5 * rng.standard_normal(n_actions))


@dataclass(frozen=True)
class LinearSoftmaxPolicy:
    """pi(a|x) = (1 - eps) softmax(score / temperature) + eps / K; temperature 0 means greedy."""

    weights: np.ndarray  # (n_actions, dim)
    bias: np.ndarray
    temperature: float = 1.0
    epsilon: float = 0.0

    def action_dist(self, x: np.ndarray) -> np.ndarray:
        scores = x @ self.weights.T + self.bias
        k = scores.shape[1]
        if self.temperature == 0:
            base = np.zeros_like(scores)
            base[np.arange(len(scores)), scores.argmax(axis=1)] = 1.0
        else:
            base = softmax(scores / self.temperature, axis=1)
        return (1 - self.epsilon) * base + self.epsilon / k


def uniform_policy(env: SyntheticBandit) -> LinearSoftmaxPolicy:
    return LinearSoftmaxPolicy(np.zeros_like(env.weights), np.zeros(env.n_actions), 1.0, 1.0)


def logging_policy(env: SyntheticBandit, temperature: float, seed: int) -> LinearSoftmaxPolicy:
    """An imperfect production model: the true scores plus noise, softened so every action has mass."""
    rng = np.random.default_rng(seed + 7919)
    noise = rng.standard_normal(env.weights.shape) * np.abs(env.weights).mean()
    return LinearSoftmaxPolicy(env.weights + noise, env.bias, temperature, 0.0)


def target_policies(env: SyntheticBandit) -> dict[str, LinearSoftmaxPolicy]:
    """Several policies to evaluate: near-greedy, greedy with exploration, deterministic greedy, uniform."""
    return {
        "softmax_sharp": LinearSoftmaxPolicy(env.weights, env.bias, 0.3, 0.0),
        "eps_greedy": LinearSoftmaxPolicy(env.weights, env.bias, 0.0, 0.2),
        "greedy": LinearSoftmaxPolicy(env.weights, env.bias, 0.0, 0.0),
        "uniform": uniform_policy(env),
    }


def sample_actions(dist: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row drawn from its distribution (inverse CDF, vectorised)."""
    cdf = np.cumsum(dist, axis=1)
    u = rng.random(dist.shape[0]) * cdf[:, -1]
    return np.minimum((cdf < u[:, None]).sum(axis=1), dist.shape[1] - 1)


def sample_log(
    env: SyntheticBandit,
    policy: LinearSoftmaxPolicy,
    n: int,
    rng: np.random.Generator,
    propensity_override: np.ndarray | None = None,
) -> LoggedFeedback:
    """n rounds logged by ``policy``; ``propensity_override`` records wrong propensities (for tests)."""
    x = env.contexts(n, rng)
    dist = policy.action_dist(x)
    a = sample_actions(dist, rng)
    rows = np.arange(n)
    r = (rng.random(n) < env.reward_probability(x)[rows, a]).astype(np.float64)
    prop = dist[rows, a] if propensity_override is None else propensity_override
    return LoggedFeedback(
        action=a,
        reward=r,
        propensity=prop,
        position=np.zeros(n, dtype=np.int64),
        context=x,
        n_actions=env.n_actions,
        source="synthetic bandit",
    )


def true_values(
    env: SyntheticBandit, policies: dict[str, LinearSoftmaxPolicy], n_contexts: int, seed: int
) -> dict[str, tuple[float, float]]:
    """{policy: (value, its Monte-Carlo standard error)} over the same ``n_contexts`` fresh contexts, exact rewards."""
    rng = np.random.default_rng(seed)
    per_context: dict[str, list[np.ndarray]] = {name: [] for name in policies}
    for start in range(0, n_contexts, 100_000):
        x = env.contexts(min(100_000, n_contexts - start), rng)
        p = env.reward_probability(x)
        for name, pol in policies.items():
            per_context[name].append((pol.action_dist(x) * p).sum(axis=1))
    out = {}
    for name, parts in per_context.items():
        v = np.concatenate(parts)
        out[name] = (float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size)))
    return out
