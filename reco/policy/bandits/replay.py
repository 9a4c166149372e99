"""Replay evaluation (Li et al., 2011) of a learning policy on uniformly random logs.

Walk the log in order; at each row the policy ranks the items and the item it would put at the
row's position is compared with the logged one. On a match the logged reward is what the policy
would have seen: it is counted and the policy learns from it; otherwise the row is skipped.
Because the logging policy was uniform, the matched rows are an unbiased sample of what the
policy would have met, so clicks / matches estimates its click rate (as it learns over the
run). Only a 1 / n_actions share of rows match: on OBD's 10,000-row sample with 80 items that
is about 125 rows and well under one expected click, so the estimate is mostly noise; the
Wilson interval says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from reco.errors import DataError
from reco.policy.bandits.policy import BanditPolicy, ranking
from reco.policy.ope.logged_data import LoggedFeedback

FeatureFn = Callable[[LoggedFeedback, int], np.ndarray]


@dataclass(frozen=True)
class ReplayResult:
    matches: int
    clicks: float
    value: float  # clicks / matches (nan without matches)
    ci: tuple[float, float]


def check_uniform_logging(log: LoggedFeedback) -> None:
    if np.ptp(log.propensity) > 1e-12:
        raise DataError(
            f"{log.source}: replay needs uniformly random logs, but propensities range "
            f"{log.propensity.min():.4g}..{log.propensity.max():.4g}"
        )


def replay(
    log: LoggedFeedback, policy: BanditPolicy, features: FeatureFn, seed: int, level: float = 0.95
) -> ReplayResult:
    """Replay ``policy`` over ``log`` in row order; ``features(log, i)`` gives row i's (n_actions, d) feature rows."""
    check_uniform_logging(log)
    rng = np.random.default_rng(seed)
    matches, clicks = 0, 0.0
    for i in range(log.n):
        feats = features(log, i)
        shown = int(ranking(policy, feats, rng)[log.position[i]])
        if shown == log.action[i]:
            matches += 1
            clicks += float(log.reward[i])
            policy.update(feats[shown], shown, float(log.reward[i]))
    if matches == 0:
        return ReplayResult(0, 0.0, float("nan"), (float("nan"), float("nan")))
    ci = binomtest(int(round(clicks)), matches).proportion_ci(confidence_level=level, method="wilson")
    return ReplayResult(matches, clicks, clicks / matches, (float(ci.low), float(ci.high)))


def obd_features(log: LoggedFeedback, i: int) -> np.ndarray:
    """Row i of OBD as per-item feature rows: intercept, the user's one-hot features, the user-item affinity."""
    k = log.n_actions
    user = np.tile(np.concatenate([[1.0], log.context[i]]), (k, 1))
    aff = log.pair_features[i][:, None] if log.pair_features is not None else np.zeros((k, 0))
    return np.hstack([user, aff])
