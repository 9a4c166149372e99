"""The Open Bandit Dataset's truth check: which policy is evaluated, and what its true value is.

The ``bts`` logs were collected by ZOZOTOWN's Bernoulli Thompson sampling policy, the ``random``
logs by a uniform policy over the same 80 items in the same week. We estimate BTS's value from
the ``random`` logs and compare with the click rate BTS actually got (the on-policy truth).

Why the target policy is the empirical action frequency per position (and per day) in the
``bts`` logs:

- BTS is not contextual (it samples one Beta posterior per item and ranks items by the
  samples), so its action distribution at position k is one vector pi(. | k), the same for
  every user; no user feature is needed.
- But it changed during the week: its posteriors were updated in batches. Item 7 filled
  position 1 in 18% of the bts rows on 25 Nov and in 1% on 27 Nov (mean logged propensity 0.55
  against 0.12). The truth, the mean click of the bts logs, averages over that week of
  policies, and if an item's click rate moved with the days BTS favoured it, a single
  week-average policy misses that covariance. So the week is cut into ``time_blocks`` equal
  slices (7: one per day) and the target is the policy of the slice a random-log row falls in;
  both logs cover the same week.
- The share of bts rows at position k in a slice that show item a is an unbiased estimate of
  that slice's average pi_t(a | k). The mean *logged propensity* of item a is not: propensities
  are only seen when a was chosen, so times when a was likely are over-represented (those means
  sum to 3.7 at position 1, not 1).
- Simulating Beta posteriors (as obp does with the production priors it ships) needs posterior
  parameters the logs do not contain; the sample's own 42 clicks are far too few to rebuild
  them, and one posterior would miss the week's drift.

The frequencies come from ~3,300 rows per position (~470 per day), so the target carries its
own sampling noise; the bootstrap resamples the bts rows as well as the random rows, so the
intervals include it. The target uses only the bts *actions*, never their clicks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reco.errors import DataError
from reco.policy.ope.bootstrap import percentile_interval
from reco.policy.ope.config import EstimatorConfig, RewardModelConfig
from reco.policy.ope.estimators import all_estimators, interval_entry, ope_inputs
from reco.policy.ope.logged_data import LoggedFeedback
from reco.policy.ope.reward_model import cross_fit, fold_ids


def time_edges(logs: list[LoggedFeedback], n_blocks: int) -> np.ndarray:
    """n_blocks + 1 edges of equal time slices spanning every given log (one slice without timestamps)."""
    if n_blocks == 1:
        return np.array([-np.inf, np.inf])
    if any(lg.timestamp is None for lg in logs):
        raise DataError(
            f"time_blocks={n_blocks} needs timestamps, and {next(lg.source for lg in logs if lg.timestamp is None)} "
            "has none"
        )
    lo = min(float(lg.timestamp.min()) for lg in logs)
    hi = max(float(lg.timestamp.max()) for lg in logs)
    return np.linspace(lo, hi, n_blocks + 1)


def time_block(log: LoggedFeedback, edges: np.ndarray) -> np.ndarray:
    n_blocks = edges.size - 1
    if log.timestamp is None or n_blocks == 1:
        return np.zeros(log.n, dtype=np.int64)
    return np.clip(np.searchsorted(edges, log.timestamp, side="right") - 1, 0, n_blocks - 1)


def empirical_action_dist(
    target_log: LoggedFeedback, n_positions: int, edges: np.ndarray | None = None, rows: np.ndarray | None = None
) -> np.ndarray:
    """(n_blocks, n_positions, n_actions): share of the target policy's rows in each slice and
    position showing each action; ``rows`` picks (resampled) rows of the target log."""
    edges = np.array([-np.inf, np.inf]) if edges is None else edges
    block, position, action = time_block(target_log, edges), target_log.position, target_log.action
    if rows is not None:
        block, position, action = block[rows], position[rows], action[rows]
    counts = np.zeros((edges.size - 1, n_positions, target_log.n_actions))
    np.add.at(counts, (block, position, action), 1.0)
    totals = counts.sum(axis=2, keepdims=True)
    if (totals == 0).any():
        b, k = np.argwhere(totals[..., 0] == 0)[0]
        raise DataError(
            f"{target_log.source}: no rows in time slice {b + 1} at position {k + 1}; "
            "cannot estimate the policy there (use fewer ope.obd.time_blocks)"
        )
    return counts / totals


def per_row_dist(dist: np.ndarray, log: LoggedFeedback, edges: np.ndarray | None = None) -> np.ndarray:
    """(n, n_actions): each logged row's target distribution, by its time slice and position."""
    edges = np.array([-np.inf, np.inf]) if edges is None else edges
    if log.position.max() >= dist.shape[1]:
        raise DataError(
            f"{log.source}: position {log.position.max() + 1} has no target distribution (only {dist.shape[1]} "
            "positions)"
        )
    return dist[time_block(log, edges), log.position]


@dataclass(frozen=True)
class OBDEvaluation:
    """Everything an estimate needs, so a bootstrap draw is one call on resampled row indices."""

    logged: LoggedFeedback  # the logging (random) policy's rows: the estimators read these
    target: LoggedFeedback  # the target (bts) policy's rows: its action frequencies
    edges: np.ndarray
    reward: RewardModelConfig
    est: EstimatorConfig

    def action_dist(self, target_rows: np.ndarray | None = None) -> np.ndarray:
        dist = empirical_action_dist(self.target, self.logged.n_positions, self.edges, target_rows)
        return per_row_dist(dist, self.logged, self.edges)

    def estimates(self, rows: np.ndarray, target_rows: np.ndarray, q_hat: np.ndarray | None = None) -> dict[str, float]:
        """Every estimator on resampled rows of both logs. ``q_hat`` given: the reward model is held
        fixed; None: it is cross-fitted again on the resample (copies of a row share its fold)."""
        dist = self.action_dist(target_rows)
        if q_hat is None:
            sub = self.logged.subset(rows)
            folds = fold_ids(self.logged.n, self.reward.n_folds, self.reward.seed)[rows]
            inputs = ope_inputs(sub, dist[rows], cross_fit(sub, self.reward, folds=folds))
        else:  # per-row inputs do not depend on the resample: compute once, then pick the rows
            inputs = ope_inputs(self.logged, dist, q_hat).subset(rows)
        terms = all_estimators(inputs, self.est.clip, self.est.switch_tau)
        return {name: t.value() for name, t in terms.items()}


def on_policy_truth(target_log: LoggedFeedback, draws: int, seed: int, level: float = 0.95) -> dict:
    """The target policy's own mean reward, with a bootstrap interval (it is a 10,000-row sample too)."""
    r = target_log.reward
    rng = np.random.default_rng(seed)
    boot = np.array([r[rng.integers(0, r.size, r.size)].mean() for _ in range(draws)])
    return {
        "value": float(r.mean()),
        "ci": list(percentile_interval(boot, level)),
        "rows": int(r.size),
        "clicks": int(r.sum()),
    }


def relative_error(estimate: float, truth: float) -> float:
    return abs(estimate - truth) / abs(truth) if truth else float("nan")


def weight_diagnostics(weight: np.ndarray) -> dict:
    """Importance weights at a glance: max, mean (about 1 if the supports match) and effective sample size."""
    return {
        "max": float(weight.max()),
        "mean": float(weight.mean()),
        "ess": float(weight.sum() ** 2 / (weight**2).sum()),
        "rows": int(weight.size),
    }


def assemble_result(
    truth: dict,
    estimates: dict[str, float],
    row_ci: dict[str, tuple[float, float]],
    refit_ci: dict[str, tuple[float, float]] | None,
    diagnostics: dict,
) -> dict:
    """The OBD report: per estimator its estimate, interval and relative error against the truth.

    Model-based estimators take their interval from the refit bootstrap when there is one (it
    includes the reward model's own noise); the fixed-model interval is kept beside it.
    """
    out = {
        "truth": truth["value"],
        "truth_ci": truth["ci"],
        "truth_clicks": truth["clicks"],
        "rows": truth["rows"],
        "weights": diagnostics,
        "estimators": {},
    }
    for name, est in estimates.items():
        entry = interval_entry(name, est, row_ci, refit_ci)
        entry["rel_error"] = relative_error(est, truth["value"])
        lo, hi = entry["ci"]
        entry["covers_truth"] = bool(lo <= truth["value"] <= hi)
        out["estimators"][name] = entry
    return out
