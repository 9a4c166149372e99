"""Policies by name, built from the bandit config, so jobs and benches compare the same set."""

from __future__ import annotations

from reco.policy.bandits.beta_bernoulli import BernoulliThompson
from reco.policy.bandits.config import BanditConfig
from reco.policy.bandits.epsilon_greedy import EpsilonGreedy
from reco.policy.bandits.linear_thompson import LinearThompson
from reco.policy.bandits.policy import BanditPolicy, UniformRandom
from reco.errors import ConfigError

POLICIES = ("thompson", "bernoulli_thompson", "epsilon_greedy", "random")


def make_policy(name: str, n_actions: int, dim: int, cfg: BanditConfig) -> BanditPolicy:
    """A fresh policy; ``dim`` is the length of a feature row (intercept included)."""
    if name == "thompson":
        return LinearThompson(n_actions, dim, cfg.ridge, cfg.posterior_scale)
    if name == "bernoulli_thompson":
        return BernoulliThompson(n_actions)
    if name == "epsilon_greedy":
        return EpsilonGreedy(n_actions, dim, cfg.epsilon, cfg.ridge)
    if name == "random":
        return UniformRandom(n_actions)
    raise ConfigError(f"unknown bandit policy {name!r}; expected one of {list(POLICIES)}")
