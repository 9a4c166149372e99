"""The reward model behind DM, DR and switch-DR: a cross-fitted logistic click model.

``q(x, a)`` is predicted for every action in every logged row, because DM averages it over the
target policy's actions. Cross-fitting: the rows are split into folds and each fold is predicted
by a model fitted on the other folds, so no row's own reward leaks into its prediction (a model
that memorised the row would cancel DR's correction term). Folds are independent, so the Ray job
fits them in parallel through :func:`fit_predict_fold`.

Features of a (row, action) pair: the row's context, a one-hot of the action, the action's
features, the pair feature (OBD's user-item affinity) and a one-hot of the position; with
``interactions`` also context x action-indicator columns, i.e. one linear model per action
(well specified for reco.policy.ope.synthetic_bandit). The model is scikit-learn's L2 logistic
regression; with several ``cs`` the strength is picked by inner cross-validated log loss.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from threadpoolctl import ThreadpoolController

from reco.policy.ope.config import RewardModelConfig
from reco.policy.ope.logged_data import LoggedFeedback

logger = logging.getLogger(__name__)
_INNER_FOLDS = 3
_THREADS = ThreadpoolController()  # inspects the loaded BLAS libraries once, not on every fit


@dataclass(frozen=True)
class ClickModel:
    """A fitted logistic model (its coefficients split by feature block), or a constant.

    Predicting every action in every row would mean building an (n x n_actions) design; the
    logit is a sum of per-block terms instead, so :meth:`predict_all` adds a per-row part, a
    per-action part and the per-pair parts directly.
    """

    coef: np.ndarray | None  # (n_features,), in design()'s column order
    intercept: float
    constant: float  # the mean reward, used when coef is None
    interactions: bool
    c: float | None = None  # the inverse regularisation strength used (picked by inner CV when several)

    def predict_all(self, log: LoggedFeedback, rows: np.ndarray) -> np.ndarray:
        """(len(rows), n_actions) predicted rewards at each row's own context and position."""
        if self.coef is None:
            return np.full((rows.shape[0], log.n_actions), self.constant)
        w = _split(self.coef, log, self.interactions)
        ctx = log.context[rows]
        per_row = ctx @ w["context"] + w["position"][log.position[rows]] + self.intercept
        per_action = w["action"].copy()
        if "action_features" in w:
            per_action += log.action_features @ w["action_features"]
        logit = per_row[:, None] + per_action[None, :]
        if "pair" in w:
            logit += w["pair"][0] * log.pair_features[rows]
        if "interactions" in w:
            logit += ctx @ w["interactions"].reshape(log.n_actions, -1).T
        return expit(logit)


def fold_ids(n: int, n_folds: int, seed: int) -> np.ndarray:
    """Row -> fold, balanced, in random order."""
    return np.random.default_rng(seed).permutation(np.arange(n) % n_folds)


def _block_sizes(log: LoggedFeedback, interactions: bool) -> list[tuple[str, int]]:
    d = log.context.shape[1]
    sizes = [("context", d), ("action", log.n_actions), ("position", log.n_positions)]
    if log.action_features is not None:
        sizes.append(("action_features", log.action_features.shape[1]))
    if log.pair_features is not None:
        sizes.append(("pair", 1))
    if interactions:
        sizes.append(("interactions", d * log.n_actions))
    return sizes


def _split(coef: np.ndarray, log: LoggedFeedback, interactions: bool) -> dict[str, np.ndarray]:
    out, start = {}, 0
    for name, size in _block_sizes(log, interactions):
        out[name] = coef[start : start + size]
        start += size
    return out


def design(log: LoggedFeedback, rows: np.ndarray, actions: np.ndarray, interactions: bool) -> sp.csr_matrix:
    """Features of the pairs (rows[j], actions[j]), blocks in _block_sizes' order."""
    ctx = log.context[rows]
    blocks = [ctx, np.eye(log.n_actions)[actions], np.eye(log.n_positions)[log.position[rows]]]
    if log.action_features is not None:
        blocks.append(log.action_features[actions])
    if log.pair_features is not None:
        blocks.append(log.pair_features[rows, actions][:, None])
    if interactions:
        m, d = ctx.shape
        inter = np.zeros((m, log.n_actions, d))
        inter[np.arange(m), actions] = ctx
        blocks.append(inter.reshape(m, log.n_actions * d))
    return sp.csr_matrix(np.hstack(blocks))  # mostly one-hots: sparse fits several times faster


def fit_click_model(log: LoggedFeedback, rows: np.ndarray, cfg: RewardModelConfig) -> ClickModel:
    """Fit on the logged (action, reward) of ``rows``."""
    y = (log.reward[rows] > 0).astype(np.int64)
    positives = int(y.sum())
    if positives == 0 or positives == y.size:
        what = "all zero" if positives == 0 else "all positive"
        logger.warning("reward model: %d training rows are %s; predicting the mean reward", y.size, what)
        return ClickModel(None, 0.0, float(log.reward[rows].mean()), cfg.interactions)
    x = design(log, rows, log.action[rows], cfg.interactions)
    # one BLAS thread: these fits are small, and OpenBLAS threads spinning on a shared 2-core
    # machine made them 20-50x slower
    with warnings.catch_warnings(), _THREADS.limit(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", FutureWarning)  # scikit-learn 1.9 announces LogisticRegressionCV API changes
        if len(cfg.cs) > 1 and min(positives, y.size - positives) >= _INNER_FOLDS:
            model = LogisticRegressionCV(Cs=cfg.cs, cv=_INNER_FOLDS, scoring="neg_log_loss", max_iter=500).fit(x, y)
        else:
            model = LogisticRegression(C=cfg.cs[0], max_iter=500).fit(x, y)
    c = float(np.ravel(model.C_)[0]) if isinstance(model, LogisticRegressionCV) else cfg.cs[0]
    return ClickModel(model.coef_[0].copy(), float(model.intercept_[0]), float(y.mean()), cfg.interactions, c)


def fit_predict_fold(
    log: LoggedFeedback, folds: np.ndarray, k: int, cfg: RewardModelConfig
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """(rows of fold k, their predictions, the C used) from a model fitted on every other fold."""
    test = np.flatnonzero(folds == k)
    model = fit_click_model(log, np.flatnonzero(folds != k), cfg)
    return test, model.predict_all(log, test), model.c


def assemble_folds(n: int, n_actions: int, parts: list[tuple[np.ndarray, np.ndarray, float | None]]) -> np.ndarray:
    q = np.full((n, n_actions), np.nan)
    for rows, pred, _ in parts:
        q[rows] = pred
    if np.isnan(q).any():
        raise ValueError("cross-fitting left rows without a prediction")
    return q


def cross_fit(log: LoggedFeedback, cfg: RewardModelConfig, folds: np.ndarray | None = None) -> np.ndarray:
    """Cross-fitted q_hat (n, n_actions), folds fitted one after the other.

    ``folds`` overrides the random fold of each row; a bootstrap resample passes its rows'
    original folds so that copies of one row never sit on both sides of a split.
    """
    folds = fold_ids(log.n, cfg.n_folds, cfg.seed) if folds is None else folds
    parts = [fit_predict_fold(log, folds, k, cfg) for k in np.unique(folds)]
    return assemble_folds(log.n, log.n_actions, parts)
