"""LightGBM beside the neural rankers, on exactly the same encoded features and splits.

Single-valued id fields enter as LightGBM categorical features (their encoded ids, 0 = OOV),
multi-valued fields as multi-hot indicator columns, dense fields as their standardised
values. Boosting stops early on the validation rows' logloss, the same rows that pick the
neural models' epochs. Predictions are raw scores (logits), so the same calibration and
metrics apply.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from reco.rank.features import FeaturePipeline, Rows

DEFAULT_PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 63,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "cat_smooth": 10.0,
    "max_cat_to_onehot": 8,
    "verbosity": -1,
    "num_threads": 1,  # OpenMP threads spin badly on a busy 2-core machine
}


@dataclass
class GbdtModel:
    booster: lgb.Booster
    best_iteration: int
    fit_seconds: float
    train_rows: int

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.booster.predict(x, raw_score=True, num_iteration=self.best_iteration)


def feature_matrix(pipeline: FeaturePipeline, rows: Rows) -> tuple[np.ndarray, list[str], list[int]]:
    """(X, column names, categorical column indices) from encoded rows."""
    cols, names, categorical, s = [], [], [], 0
    for f in pipeline.id_fields:
        ids = rows.cat[:, s : s + f.slots]
        if f.slots == 1:
            categorical.append(len(names))
            cols.append(ids[:, :1].astype(np.float64))
            names.append(f.spec.name)
        else:
            hot = np.zeros((len(rows), f.size), np.float64)
            np.put_along_axis(hot, ids, 1.0, axis=1)
            cols.append(hot[:, 1:])  # column 0 is padding / OOV
            names.extend(f"{f.spec.name}={v}" for v in (f.vocab or range(1, f.size)))
        s += f.slots
    cols.append(rows.dense.astype(np.float64))
    names.extend(f.spec.name for f in pipeline.dense_fields)
    return np.concatenate(cols, axis=1), names, categorical


def fit_lightgbm(
    pipeline: FeaturePipeline,
    train: Rows,
    validation: Rows,
    task: int = 0,
    rounds: int = 2000,
    early_stopping: int = 50,
    seed: int = 0,
    params: dict | None = None,
) -> GbdtModel:
    x_tr, names, cats = feature_matrix(pipeline, train)
    x_va, _, _ = feature_matrix(pipeline, validation)
    p = {**DEFAULT_PARAMS, "seed": seed, **(params or {})}
    dtrain = lgb.Dataset(x_tr, train.labels[:, task], feature_name=names, categorical_feature=cats, free_raw_data=False)
    dval = lgb.Dataset(x_va, validation.labels[:, task], reference=dtrain)
    t0 = time.perf_counter()
    booster = lgb.train(
        {**p, "metric": "binary_logloss"},
        dtrain,
        num_boost_round=rounds,
        valid_sets=[dval],
        callbacks=[lgb.early_stopping(early_stopping, verbose=False)],
    )
    return GbdtModel(booster, booster.best_iteration or rounds, time.perf_counter() - t0, len(train))
