"""Target policies for your own logs: each one as an action distribution per logged row.

Every estimator reads the target policy as ``dist[i, a] = pi(a | row i)`` (reco.policy.ope.estimators).
Two kinds of target are turned into that here; the job (ray_jobs.ope) builds them and spreads
the rows over Ray tasks.

A bandit of reco.policy.bandits (passed in as an object: the bandit package imports this one, so
this module cannot import the registry):

- It learns from the *earliest* rows of the log (:func:`time_split`): every logged (context,
  action, reward) of that slice is one ``update``, in time order, as a bandit warm-started from
  the logs would learn. It is then frozen, and its distribution is computed on the *later*
  rows only, which are the rows the estimators read. A bandit that kept learning during the
  evaluated rows would need the rewards of the actions it took there, which the log does not
  hold for the actions it did not take.
- The distribution is exact where the bandit's randomness allows: uniform random is 1/K;
  epsilon-greedy is eps/K plus (1 - eps) on its best action (ties shared, as its random
  tie-break shares them). Thompson sampling's "probability that this action's sampled score is
  the highest" has no closed form: it is estimated per row from ``samples`` draws of the scores
  from the policy's own posterior (linear Thompson: each action's score is Gaussian given the
  row; Beta-Bernoulli: Beta draws). The estimate is unbiased, and IPW and DR are linear in the
  target's probabilities, so they stay unbiased; the draws add a little variance. Any other
  registered bandit is handled the same way by calling its ``scores`` ``samples`` times per row.
- Features per action are the bandit simulation's: an intercept, the row's context and, where a
  log has one, the (row, action) pair feature.

A score per candidate action (a ranker's calibrated click probabilities): ``softmax``
(pi(a) proportional to p(a)^(1 / temperature): temperature 1 chooses in proportion to the
click probability, small temperatures approach greedy) or ``greedy`` (the best-scored action),
either mixed with ``epsilon`` uniform exploration.

Multi-slot logs: a row logged at position k is evaluated against the policy's distribution of
the item it would put at position k (the k-th best score), as reco.policy.ope.obd_target does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import softmax

from reco.errors import DataError
from reco.policy.ope.logged_data import LoggedFeedback

_CHUNK = 2_000_000  # floats of (rows x draws x actions) held at once


def time_split(order: np.ndarray, fit_share: float, source: str = "log") -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, evaluated rows): the earliest ``fit_share`` of ``order`` (in time order), and the rest."""
    n_fit = int(np.floor(fit_share * order.size))
    fit, evaluated = order[:n_fit], np.sort(order[n_fit:])
    if evaluated.size < 10:
        raise DataError(
            f"{source}: only {evaluated.size} rows are left to evaluate after the fit slice "
            f"(fit_share {fit_share}); lower ope.target.bandit.fit_share"
        )
    return fit, evaluated


def bandit_features(log: LoggedFeedback, rows: np.ndarray) -> np.ndarray:
    """(len(rows), n_actions, 1 + d [+ 1]) feature rows: intercept, context, the pair feature if any."""
    m, k = rows.size, log.n_actions
    base = np.concatenate([np.ones((m, 1)), log.context[rows]], axis=1)
    feats = np.broadcast_to(base[:, None, :], (m, k, base.shape[1]))
    if log.pair_features is not None:
        feats = np.concatenate([feats, log.pair_features[rows][:, :, None]], axis=2)
    return np.ascontiguousarray(feats)


def feature_dim(log: LoggedFeedback) -> int:
    return 1 + log.context.shape[1] + (log.pair_features is not None)


def fit_bandit(policy: Any, log: LoggedFeedback, rows: np.ndarray) -> Any:
    """The policy after one ``update`` per logged row of ``rows``, in that order (changed in place)."""
    for start in range(0, rows.size, 1_000):
        chunk = rows[start : start + 1_000]
        feats = bandit_features(log, chunk)
        for j, i in enumerate(chunk):
            a = int(log.action[i])
            policy.update(feats[j, a], a, float(log.reward[i]))
    return policy


def kth_best(values: np.ndarray, positions: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """(m, K) one-hot of the action with the k-th highest value per row; tied actions share the mass."""
    t = -np.sort(-values, axis=1)[np.arange(values.shape[0]), positions]
    tied = np.abs(values - t[:, None]) <= tol
    return tied / tied.sum(axis=1, keepdims=True)


def count_positions(scores: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(m, K) share of draws in which each action ranks at the row's position; scores are (m, S, K)."""
    m, s, k = scores.shape
    if not positions.any():
        idx = scores.argmax(axis=2)
    else:
        order = np.argsort(-scores, axis=2, kind="stable")
        idx = np.take_along_axis(order, np.broadcast_to(positions[:, None, None], (m, s, 1)), axis=2)[..., 0]
    counts = np.zeros((m, k))
    np.add.at(counts, (np.repeat(np.arange(m), s), idx.ravel()), 1.0)
    return counts / s


def _check_positions(positions: np.ndarray, n_actions: int, source: str) -> None:
    if positions.size and positions.max() >= n_actions:
        raise DataError(f"{source}: position {positions.max()} but only {n_actions} actions to rank")


def _chunks(m: int, per_row: int) -> list[slice]:
    step = max(1, _CHUNK // max(per_row, 1))
    return [slice(s, min(s + step, m)) for s in range(0, m, step)]


def bandit_method(policy: Any) -> str:
    """How :func:`bandit_action_dist` computes this policy's distribution (for the report)."""
    name = getattr(policy, "name", "")
    if name == "random":
        return "exact: uniform"
    if name == "epsilon_greedy" and hasattr(policy, "arms"):
        return "exact: epsilon / K plus (1 - epsilon) on the best posterior-mean action"
    if name == "thompson" and hasattr(policy, "arms"):
        return "estimated: Gaussian score draws from the posterior per row"
    if name == "bernoulli_thompson":
        return "estimated: Beta draws from the posterior per row"
    return "estimated: repeated calls of the policy's scores per row"


def bandit_action_dist(
    policy: Any, log: LoggedFeedback, rows: np.ndarray, samples: int, seed: int | np.random.SeedSequence
) -> np.ndarray:
    """(len(rows), n_actions): the frozen bandit's distribution at each row's context and position."""
    k = log.n_actions
    positions = log.position[rows]
    _check_positions(positions, k, log.source)
    rng = np.random.default_rng(seed)
    name = getattr(policy, "name", "")
    out = np.empty((rows.size, k))
    if name == "random":
        out[:] = 1.0 / k
        return out
    d = feature_dim(log)
    per_row = k * max(d * d if name == "thompson" else d, samples)
    for sl in _chunks(rows.size, per_row):
        r, pos = rows[sl], positions[sl]
        m = r.size
        if name == "epsilon_greedy" and hasattr(policy, "arms"):
            means = np.einsum("mkd,kd->mk", bandit_features(log, r), policy.arms.mean)
            out[sl] = policy.epsilon / k + (1 - policy.epsilon) * kth_best(means, pos)
        elif name == "thompson" and hasattr(policy, "arms"):
            feats = bandit_features(log, r)
            mean = np.einsum("mkd,kd->mk", feats, policy.arms.mean)
            # theta_a = mu_a + s L_a z_a, so x . theta_a ~ N(x . mu_a, s^2 |L_a^T x|^2), independent over actions
            sd = policy.posterior_scale * np.linalg.norm(np.einsum("kij,mki->mkj", policy.arms.cov_chol, feats), axis=2)
            draws = mean[:, None, :] + sd[:, None, :] * rng.standard_normal((m, samples, k))
            out[sl] = count_positions(draws, pos)
        elif name == "bernoulli_thompson":
            out[sl] = count_positions(rng.beta(policy.alpha, policy.beta, size=(m, samples, k)), pos)
        else:
            feats = bandit_features(log, r)
            draws = np.stack([np.stack([policy.scores(feats[j], rng) for _ in range(samples)]) for j in range(m)])
            out[sl] = count_positions(draws, pos)
    return out


def scores_to_dist(
    scores: np.ndarray,
    positions: np.ndarray,
    mode: str,
    temperature: float = 1.0,
    epsilon: float = 0.0,
    samples: int = 200,
    seed: int | np.random.SeedSequence = 0,
) -> np.ndarray:
    """(m, K) distribution from (m, K) scores in (0, 1] (calibrated click probabilities).

    greedy: the k-th best action at position k. softmax: pi(a) proportional to
    scores^(1 / temperature); at positions below the top, the Plackett-Luce marginal of that
    softmax (items drawn without replacement), estimated from ``samples`` Gumbel draws per row.
    Both mixed with ``epsilon`` uniform exploration.
    """
    m, k = scores.shape
    _check_positions(positions, k, "target policy")
    if not np.isfinite(scores).all():
        raise DataError("target policy: the scores contain missing or non-finite values")
    if mode == "greedy":
        base = kth_best(scores, positions)
    elif mode == "softmax":
        logits = np.log(np.clip(scores, 1e-12, None)) / temperature
        base = softmax(logits, axis=1)
        lower = np.flatnonzero(positions > 0)
        if lower.size:
            rng = np.random.default_rng(seed)
            for sl in _chunks(lower.size, k * samples):
                rows = lower[sl]
                g = logits[rows][:, None, :] + rng.gumbel(size=(rows.size, samples, k))
                base[rows] = count_positions(g, positions[rows])
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return (1 - epsilon) * base + epsilon / k
