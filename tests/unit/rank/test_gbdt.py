"""LightGBM on the same encoded features: the matrix layout and a model that learns."""

import numpy as np
import pandas as pd

from reco.rank import metrics
from reco.rank.config import RankFeatureConfig
from reco.rank.features import FeaturePipeline, FeatureSpec, FieldSpec
from reco.rank.gbdt import feature_matrix, fit_lightgbm

SPEC = FeatureSpec(
    (FieldSpec("user", "cat", "user"), FieldSpec("tags", "multi", "item"), FieldSpec("price", "dense", "item"))
)


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    user = rng.integers(0, 8, n)
    tags = np.array(["a", "b", "a|c", "c"], dtype=object)[rng.integers(0, 4, n)]
    price = rng.normal(size=n)
    logit = (user % 2) * 2 - 1 + np.char.find(tags.astype(str), "c").clip(-1, 0) + price
    return pd.DataFrame(
        {"user": user, "tags": tags, "price": price, "y": (rng.random(n) < 1 / (1 + np.exp(-2 * logit))).astype(float)}
    )


def test_feature_matrix_is_ids_multi_hot_and_dense():
    train = frame(400, 0)
    pipe = FeaturePipeline.fit(train, SPEC, RankFeatureConfig(multi_max_len=2))
    x, names, cats = feature_matrix(pipe, pipe.rows(train.iloc[:4], ["y"]))
    assert names == ["user", "tags=a", "tags=b", "tags=c", "price"] and cats == [0]
    assert x.shape == (4, 5)
    tags = train["tags"].iloc[:4].tolist()
    for row, t in zip(x, tags):
        assert {n.split("=")[1] for n, v in zip(names[1:4], row[1:4]) if v} == set(t.split("|"))


def test_lightgbm_learns_on_the_same_rows():
    train, val, test = frame(3000, 1), frame(500, 2), frame(1000, 3)
    pipe = FeaturePipeline.fit(train, SPEC, RankFeatureConfig())
    model = fit_lightgbm(pipe, pipe.rows(train, ["y"]), pipe.rows(val, ["y"]), rounds=60, early_stopping=10)
    te = pipe.rows(test, ["y"])
    assert metrics.auc(te.labels[:, 0], model.logits(feature_matrix(pipe, te)[0])) > 0.75
    assert 1 <= model.best_iteration <= 60
