"""Policies by name, built from the bandit config, so jobs and benches compare the same set."""

from __future__ import annotations

from collections.abc import Callable

from reco.policy.bandits.beta_bernoulli import BernoulliThompson
from reco.policy.bandits.config import BanditConfig
from reco.policy.bandits.epsilon_greedy import EpsilonGreedy
from reco.policy.bandits.linear_thompson import LinearThompson
from reco.policy.bandits.policy import BanditPolicy, UniformRandom
from reco.registry import Registry

PolicyFactory = Callable[[int, int, BanditConfig], BanditPolicy]  # (actions, feature length, config)

POLICIES: Registry[PolicyFactory] = Registry("bandit policy")
POLICIES.add("thompson", lambda n_actions, dim, cfg: LinearThompson(n_actions, dim, cfg.ridge, cfg.posterior_scale))
POLICIES.add("bernoulli_thompson", lambda n_actions, dim, cfg: BernoulliThompson(n_actions))
POLICIES.add("epsilon_greedy", lambda n_actions, dim, cfg: EpsilonGreedy(n_actions, dim, cfg.epsilon, cfg.ridge))
POLICIES.add("random", lambda n_actions, dim, cfg: UniformRandom(n_actions))


def make_policy(name: str, n_actions: int, dim: int, cfg: BanditConfig) -> BanditPolicy:
    """A fresh policy; ``dim`` is the length of a feature row (intercept included)."""
    return POLICIES.get(name)(n_actions, dim, cfg)
