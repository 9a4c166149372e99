"""What every bandit policy offers, and the simplest one, uniform random.

A policy scores every action for one round from per-action feature rows (``(n_actions, d)``:
the same context repeated for a plain contextual bandit, or context plus item features such as
OBD's user-item affinity), then learns from the reward of the action it took. The scores may be
random (a Thompson sample), so :func:`choose` picks the best and :func:`ranking` orders all of
them for multi-slot displays (the item at position k is the k-th best score).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class BanditPolicy(Protocol):
    name: str

    def scores(self, features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(n_actions,) scores for this round; higher is shown first."""
        ...

    def update(self, features: np.ndarray, action: int, reward: float) -> None:
        """Learn from the reward of ``action`` shown with feature row ``features`` (d,)."""
        ...


def choose(policy: BanditPolicy, features: np.ndarray, rng: np.random.Generator) -> int:
    return int(np.argmax(policy.scores(features, rng)))


def ranking(policy: BanditPolicy, features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.argsort(-policy.scores(features, rng), kind="stable")


class UniformRandom:
    """Every action equally likely, whatever happened before: the exploration-only baseline."""

    name = "random"

    def __init__(self, n_actions: int):
        self.n_actions = n_actions

    def scores(self, features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return rng.random(self.n_actions)

    def update(self, features: np.ndarray, action: int, reward: float) -> None:
        return None
