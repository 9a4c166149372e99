"""Off-policy estimators of a target policy's value from logged bandit feedback.

Each estimator is written as a ratio of per-row sums, ``sum(numerator) / sum(denominator)``
(:class:`EstimatorTerms`): IPW, DM, DR and switch-DR are plain means (denominator one per row),
SNIPW divides by the sum of the importance weights. That one shape lets the bootstrap
(reco.policy.ope.bootstrap) resample rows for every estimator the same way, and keeps each estimator a
line of arithmetic that a test can check by hand:

- IPW:       mean(w r),                       w = pi_e(a|x) / pi_b(a|x)
- SNIPW:     sum(w r) / sum(w)                (biased O(1/n), lower variance, no blow-up from big w)
- DM:        mean(sum_a pi_e(a|x) q(x, a))    (only as good as the reward model q)
- DR:        DM + mean(w (r - q(x, a)))       (unbiased if either w or q is right)
- switch-DR: DM + mean(w 1[w <= tau] (r - q(x, a)))   (rows with huge weights trust q alone)

``q`` must come from a model that did not see the row (cross-fitting, reco.policy.ope.reward_model),
or DR's correction term is biased towards zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reco.errors import DataError
from reco.policy.ope.logged_data import LoggedFeedback, check_propensities

ESTIMATORS = ("ipw", "snipw", "dm", "dr", "switch_dr")


@dataclass(frozen=True)
class EstimatorTerms:
    """An estimate as sum(numerator) / sum(denominator) over the logged rows."""

    numerator: np.ndarray
    denominator: np.ndarray

    def value(self) -> float:
        den = float(self.denominator.sum())
        if den == 0:
            raise DataError("the estimator's denominator is zero: the target policy never takes a logged action")
        return float(self.numerator.sum()) / den


@dataclass(frozen=True)
class OPEInputs:
    """What the estimators read, per logged row."""

    reward: np.ndarray  # r
    weight: np.ndarray  # pi_e(a|x) / pi_b(a|x), unclipped
    q_logged: np.ndarray | None = None  # q(x, a) for the logged action
    q_target: np.ndarray | None = None  # sum_a pi_e(a|x) q(x, a)

    def subset(self, rows: np.ndarray) -> OPEInputs:
        """The inputs of resampled rows (a bootstrap draw with the reward model held fixed)."""

        def pick(a):
            return None if a is None else a[rows]

        return OPEInputs(self.reward[rows], self.weight[rows], pick(self.q_logged), pick(self.q_target))


def importance_weights(target_prob: np.ndarray, propensity: np.ndarray, source: str = "log") -> np.ndarray:
    """pi_e(a|x) / pi_b(a|x) for the logged actions, after checking both probabilities."""
    target_prob = np.asarray(target_prob, dtype=np.float64)
    propensity = np.asarray(propensity, dtype=np.float64)
    if target_prob.shape != propensity.shape:
        raise DataError(f"{source}: {target_prob.shape[0]} target probabilities for {propensity.shape[0]} logged rows")
    check_propensities(propensity, source)
    if not np.isfinite(target_prob).all() or (target_prob < 0).any() or (target_prob > 1 + 1e-9).any():
        raise DataError(f"{source}: target policy probabilities must lie in [0, 1]")
    return target_prob / propensity


def check_action_dist(dist: np.ndarray, n: int, n_actions: int, source: str = "target policy") -> None:
    """A target policy is given as (n, n_actions) probabilities, one distribution per logged row."""
    if dist.shape != (n, n_actions):
        raise DataError(f"{source}: action distribution has shape {dist.shape}, expected ({n}, {n_actions})")
    if not np.isfinite(dist).all() or (dist < 0).any():
        raise DataError(f"{source}: action probabilities must be finite and non-negative")
    sums = dist.sum(axis=1)
    if np.abs(sums - 1).max() > 1e-6:
        i = int(np.argmax(np.abs(sums - 1)))
        raise DataError(f"{source}: action probabilities of row {i} sum to {sums[i]:.6f}, not 1")


def ope_inputs(log: LoggedFeedback, action_dist: np.ndarray, q_hat: np.ndarray | None = None) -> OPEInputs:
    """Per-row inputs for a target policy given as ``action_dist[i, a] = pi_e(a | x_i)``.

    ``q_hat[i, a]`` is the (cross-fitted) predicted reward of action a in row i's context; without
    it only IPW and SNIPW can be computed.
    """
    check_action_dist(action_dist, log.n, log.n_actions, f"{log.source}: target policy")
    rows = np.arange(log.n)
    weight = importance_weights(action_dist[rows, log.action], log.propensity, log.source)
    if q_hat is None:
        return OPEInputs(log.reward, weight)
    if q_hat.shape != action_dist.shape:
        raise DataError(f"{log.source}: reward predictions have shape {q_hat.shape}, expected {action_dist.shape}")
    return OPEInputs(log.reward, weight, q_hat[rows, log.action], (action_dist * q_hat).sum(axis=1))


def _clipped(w: np.ndarray, clip: float | None) -> np.ndarray:
    return w if clip is None else np.minimum(w, clip)


def _ones(x: np.ndarray) -> np.ndarray:
    return np.ones_like(x, dtype=np.float64)


def _need_model(inp: OPEInputs, name: str) -> tuple[np.ndarray, np.ndarray]:
    if inp.q_logged is None or inp.q_target is None:
        raise DataError(f"{name} needs reward-model predictions (q_hat); none were given")
    return inp.q_logged, inp.q_target


def ipw(inp: OPEInputs, clip: float | None = None) -> EstimatorTerms:
    v = _clipped(inp.weight, clip) * inp.reward
    return EstimatorTerms(v, _ones(v))


def snipw(inp: OPEInputs, clip: float | None = None) -> EstimatorTerms:
    w = _clipped(inp.weight, clip)
    return EstimatorTerms(w * inp.reward, w)


def dm(inp: OPEInputs) -> EstimatorTerms:
    _, q_target = _need_model(inp, "DM")
    return EstimatorTerms(q_target.astype(np.float64), _ones(q_target))


def dr(inp: OPEInputs, clip: float | None = None) -> EstimatorTerms:
    q_logged, q_target = _need_model(inp, "DR")
    v = q_target + _clipped(inp.weight, clip) * (inp.reward - q_logged)
    return EstimatorTerms(v, _ones(v))


def switch_dr(inp: OPEInputs, tau: float) -> EstimatorTerms:
    q_logged, q_target = _need_model(inp, "switch-DR")
    keep = inp.weight <= tau
    v = q_target + np.where(keep, inp.weight * (inp.reward - q_logged), 0.0)
    return EstimatorTerms(v, _ones(v))


def all_estimators(inp: OPEInputs, clip: float | None = None, switch_tau: float = np.inf) -> dict[str, EstimatorTerms]:
    """Every estimator the inputs allow (DM, DR, switch-DR only with reward predictions)."""
    out = {"ipw": ipw(inp, clip), "snipw": snipw(inp, clip)}
    if inp.q_logged is not None:
        out.update(dm=dm(inp), dr=dr(inp, clip), switch_dr=switch_dr(inp, switch_tau))
    return out


MODEL_BASED = ("dm", "dr", "switch_dr")  # estimators that use the reward model


def interval_entry(
    name: str,
    estimate: float,
    row_ci: dict[str, tuple[float, float]],
    refit_ci: dict[str, tuple[float, float]] | None,
) -> dict:
    """One estimator's estimate and interval. Model-based estimators take the refit interval when
    there is one (it includes the reward model's noise), the fixed-model one kept beside it."""
    refit = refit_ci is not None and name in MODEL_BASED
    entry = {
        "estimate": estimate,
        "ci": list(refit_ci[name] if refit else row_ci[name]),
        "ci_kind": "refit" if refit else ("rows, model fixed" if name in MODEL_BASED else "rows"),
    }
    if refit:
        entry["ci_model_fixed"] = list(row_ci[name])
    return entry
