"""Test-set figures of a trained ranker: the CTR view and the leave-one-out protocols.

- CTR: per task AUC, logloss, GAUC, and ECE / Brier before and after the calibrator fitted on
  validation rows.
- Leave-one-out: one (users x items) score matrix per model gives both protocols: the sampled
  one reads the held-out item and its sampled negatives from it; full ranking ranks every
  catalogue item the user did not interact with in training or validation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from torch import nn

from reco.rank import metrics
from reco.rank.calibration import Calibrator, calibration_report
from reco.rank.catalog import Catalog
from reco.rank.datasets import RankingData
from reco.rank.training import predict_logits

ScoreMatrixFn = Callable[[np.ndarray], np.ndarray]  # catalog user rows (U,) -> scores (U, items)


def ctr_report(
    logits: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    tasks: list[str],
    calibrators: list[Calibrator],
    bins: int = 15,
) -> dict[str, dict[str, float]]:
    out = {}
    for t, name in enumerate(tasks):
        y, z = labels[:, t], logits[:, t]
        cal = calibration_report(calibrators[t], z, y, bins)
        out[name] = {
            "auc": metrics.auc(y, z),
            "logloss": metrics.logloss(y, calibrators[t].probabilities(z)),
            "logloss_uncalibrated": metrics.logloss(y, 1 / (1 + np.exp(-z.astype(np.float64)))),
            "gauc": metrics.gauc(y, z, groups),
            "rows": int(len(y)),
            "positives": int(y.sum()),
            **cal,
        }
    return out


def model_score_matrix(model: nn.Module, catalog: Catalog, chunk_users: int = 32) -> ScoreMatrixFn:
    """Scores of every catalogue item for given users, task 0 logits."""
    n_items = len(catalog.items.ids)
    item_rows = np.arange(n_items)

    def score(user_rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(user_rows), n_items), np.float32)
        for s in range(0, len(user_rows), chunk_users):
            part = user_rows[s : s + chunk_users]
            cat, dense = catalog.assemble(np.repeat(part, n_items), np.tile(item_rows, len(part)))
            out[s : s + len(part)] = predict_logits(model, cat, dense)[:, 0].reshape(len(part), n_items)
        return out

    return score


def popularity_score_matrix(data: RankingData, catalog: Catalog) -> ScoreMatrixFn:
    """Training interactions per item: the popularity baseline."""
    counts = data.train[data.spec.item_key].astype(str).value_counts()
    per_item = counts.reindex(pd.Index(catalog.items.ids)).fillna(0).to_numpy(np.float32)
    return lambda user_rows: np.broadcast_to(per_item, (len(user_rows), len(per_item))).copy()


def leave_one_out_report(
    data: RankingData, catalog: Catalog, score_matrix: ScoreMatrixFn, k: int = 10
) -> dict[str, dict[str, float]]:
    """HR@k / NDCG@k against the sampled negatives and recall@k / NDCG@k over all items."""
    ukey, ikey = data.spec.user_key, data.spec.item_key
    test = data.test
    users = np.unique(catalog.users.lookup(test[ukey]))
    pos_of = {u: i for i, u in enumerate(users)}
    scores = score_matrix(users)
    u_idx = np.array([pos_of[u] for u in catalog.users.lookup(test[ukey])])
    i_idx = catalog.items.lookup(test[ikey])
    if (i_idx >= len(catalog.items.ids)).any():
        raise ValueError("leave-one-out candidates must be catalogue items")
    lists = metrics.leave_one_out_lists(u_idx, test["label"].to_numpy(), scores[u_idx, i_idx])
    sampled = metrics.sampled_hr_ndcg(lists, k)
    seen = pd.concat([data.train[[ukey, ikey]], data.validation.loc[data.validation["label"] > 0, [ukey, ikey]]])
    exclude = np.zeros_like(scores, dtype=bool)
    su = catalog.users.lookup(seen[ukey])
    keep = np.isin(su, users)
    exclude[np.searchsorted(users, su[keep]), catalog.items.lookup(seen[ikey])[keep]] = True
    targets = np.zeros_like(exclude)
    positive = test["label"].to_numpy() > 0
    targets[u_idx[positive], i_idx[positive]] = True
    return {"sampled": sampled, "full": metrics.full_ranking(scores, targets, exclude, k)}
