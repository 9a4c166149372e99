"""Estimating a target policy's value on your own logs, with intervals, and the page's plot.

The target is fixed before the estimate: one distribution per evaluated row
(reco.policy.ope.target_policies, reco.policy.ope.ranker_target). So, unlike the OBD study whose
target is itself estimated from a second log (reco.policy.ope.obd_target), a bootstrap draw
resamples the evaluated rows only. The interval is for the value of *this* target: a bandit
fitted on the earlier slice is not refitted per draw.

DM, DR and switch-DR need the reward model, which is a click model (reco.policy.ope.reward_model
fits P(reward > 0)); on a log whose rewards are not all 0 or 1 it would estimate the wrong
quantity, so only IPW and SNIPW are computed there and the result says why.

The logging policy's own value (the mean reward of the evaluated rows) is reported beside the
estimates as the baseline a new policy is compared with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reco.policy.ope.bootstrap import percentile_interval
from reco.policy.ope.config import EstimatorConfig, RewardModelConfig
from reco.policy.ope.estimators import EstimatorTerms, all_estimators, check_action_dist, interval_entry, ope_inputs
from reco.policy.ope.logged_data import LoggedFeedback
from reco.policy.ope.reward_model import cross_fit, fold_ids


@dataclass(frozen=True)
class LogsEvaluation:
    """The evaluated rows, the target's distribution on them, and how to estimate."""

    logged: LoggedFeedback
    dist: np.ndarray  # (n, n_actions)
    reward: RewardModelConfig
    est: EstimatorConfig
    model_based: bool = True  # DM / DR / switch-DR (0/1 rewards only)

    def __post_init__(self) -> None:
        check_action_dist(self.dist, self.logged.n, self.logged.n_actions, f"{self.logged.source}: target policy")

    def terms(self, q_hat: np.ndarray | None) -> dict[str, EstimatorTerms]:
        inputs = ope_inputs(self.logged, self.dist, q_hat if self.model_based else None)
        return all_estimators(inputs, self.est.clip, self.est.switch_tau)

    def estimates(self, rows: np.ndarray, q_hat: np.ndarray | None = None) -> dict[str, float]:
        """Every estimator on resampled rows; ``q_hat`` None re-cross-fits the reward model on them
        (copies of a row share its fold)."""
        if q_hat is not None or not self.model_based:
            inputs = ope_inputs(self.logged, self.dist, q_hat if self.model_based else None).subset(rows)
        else:
            sub = self.logged.subset(rows)
            folds = fold_ids(self.logged.n, self.reward.n_folds, self.reward.seed)[rows]
            inputs = ope_inputs(sub, self.dist[rows], cross_fit(sub, self.reward, folds=folds))
        terms = all_estimators(inputs, self.est.clip, self.est.switch_tau)
        return {name: t.value() for name, t in terms.items()}


def refit_bootstrap(evaluation: LogsEvaluation, draws: int, seed: int) -> dict[str, np.ndarray]:
    """``draws`` resamples of the evaluated rows, the reward model cross-fitted again in each."""
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {}
    n = evaluation.logged.n
    for _ in range(draws):
        for name, v in evaluation.estimates(rng.integers(0, n, n), None).items():
            values.setdefault(name, []).append(v)
    return {name: np.asarray(v) for name, v in values.items()}


def logging_value(log: LoggedFeedback, draws: int, seed: int, level: float = 0.95) -> dict:
    """The logging policy's value on these rows: their mean reward, with a bootstrap interval."""
    r = log.reward
    rng = np.random.default_rng(seed)
    boot = np.array([r[rng.integers(0, r.size, r.size)].mean() for _ in range(draws)])
    return {"value": float(r.mean()), "ci": list(percentile_interval(boot, level)), "rows": int(r.size)}


def assemble_logs_result(
    estimates: dict[str, float],
    row_ci: dict[str, tuple[float, float]],
    refit_ci: dict[str, tuple[float, float]] | None,
    diagnostics: dict,
    baseline: dict,
    data: dict,
    target: dict,
) -> dict:
    """Per estimator its estimate and interval, beside the logging policy's own value.

    As in the OBD result, model-based estimators take the refit interval when there is one
    (it includes the reward model's noise), the fixed-model one kept beside it.
    """
    out = {"data": data, "target": target, "logging_policy": baseline, "weights": diagnostics, "estimators": {}}
    for name, est in estimates.items():
        entry = interval_entry(name, est, row_ci, refit_ci)
        entry["vs_logging"] = est - baseline["value"]
        out["estimators"][name] = entry
    return out
