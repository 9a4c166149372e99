"""The Ray tasks the off-policy studies share: the reward model's cross-fitting folds, pooled draws."""

from __future__ import annotations

import numpy as np
import ray

from reco.policy.ope.config import RewardModelConfig
from reco.policy.ope.logged_data import LoggedFeedback
from reco.policy.ope.reward_model import assemble_folds, fit_predict_fold, fold_ids


@ray.remote(num_cpus=1)
def _fold(log_: LoggedFeedback, folds: np.ndarray, k: int, cfg: RewardModelConfig):
    return fit_predict_fold(log_, folds, k, cfg)


def cross_fit(log_ref: ray.ObjectRef, n: int, n_actions: int, cfg: RewardModelConfig) -> tuple[np.ndarray, list]:
    """(the reward model's out-of-fold predictions, the regularisation each fold chose): one task a fold."""
    folds = fold_ids(n, cfg.n_folds, cfg.seed)
    parts = ray.get([_fold.remote(log_ref, folds, k, cfg) for k in range(cfg.n_folds)])
    return assemble_folds(n, n_actions, parts), [c for _, _, c in parts if c is not None]


def pooled(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
