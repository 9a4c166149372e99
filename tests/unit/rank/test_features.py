"""Features: fitted on training rows only, OOV bucket, hashing, multi-valued fields, standardising."""

import numpy as np
import pandas as pd
import pytest

from reco.errors import DataError
from reco.rank.config import RankFeatureConfig, RankingConfig
from reco.rank.datasets import load_ranking_data
from reco.rank.features import FeaturePipeline, FeatureSpec, FieldSpec, Rows

SPEC = FeatureSpec(
    (
        FieldSpec("user", "cat", "user"),
        FieldSpec("item", "cat", "item"),
        FieldSpec("tags", "multi", "item"),
        FieldSpec("price", "dense", "item"),
    ),
    user_key="user",
    item_key="item",
)
TRAIN = pd.DataFrame(
    {
        "user": ["u1", "u2", "u1", "u3"],
        "item": ["a", "b", "b", "c"],
        "tags": ["x|y", "y", "", "z|x|w"],
        "price": [1.0, 3.0, 5.0, np.nan],
        "click": [1.0, 0.0, 1.0, 0.0],
    }
)


def test_fit_uses_training_rows_only_and_unknowns_get_the_oov_bucket():
    pipe = FeaturePipeline.fit(TRAIN, SPEC, RankFeatureConfig(multi_max_len=2))
    held_out = pd.DataFrame(
        {"user": ["u9", "u2"], "item": ["zz", "a"], "tags": ["q|x", None], "price": [100.0, None], "click": [0.0, 1.0]}
    )
    rows = pipe.rows(held_out, ["click"])
    user_vocab = pipe.fields[0].vocab
    assert user_vocab == ["u1", "u2", "u3"] and "u9" not in user_vocab
    assert rows.cat[0, 0] == 0 and rows.cat[0, 1] == 0  # unknown user and item -> OOV
    assert rows.cat[1, 0] == user_vocab.index("u2") + 1
    assert rows.cat[0, 2:4].tolist() == [0, pipe.fields[2].vocab.index("x") + 1]  # unknown tag q -> padding/OOV, x kept
    price = pipe.fields[3]
    assert price.mean == pytest.approx(3.0) and price.std == pytest.approx(np.std([1.0, 3.0, 5.0]))
    assert (
        rows.dense[0, 0] == pytest.approx((100.0 - 3.0) / price.std) and rows.dense[1, 0] == 0.0
    )  # missing -> the mean


def test_fitting_ignores_what_validation_and_test_rows_contain():
    cfg = RankingConfig(source="movielens")
    data = load_ranking_data(cfg)
    pipe = FeaturePipeline.fit(data.train, data.spec, cfg.features)
    assert set(pipe.fields[0].vocab) == set(data.train["user_id"].astype(str))
    only_held_out = set(data.test["item_id"].astype(str)) - set(data.train["item_id"].astype(str))
    assert only_held_out and not only_held_out & set(pipe.fields[5].vocab)
    rows = pipe.rows(data.validation.assign(user_id=-1, item_id=-1), ["click"])
    assert (rows.cat[:, 0] == 0).all() and (rows.cat[:, 5] == 0).all()
    assert pipe.fields[-1].mean == pytest.approx(data.train["day"].mean())


def test_high_cardinality_fields_are_hashed_stably():
    frame = pd.DataFrame({"user": [f"u{i}" for i in range(50)], "item": ["a"] * 50, "tags": ["x"] * 50, "price": 1.0})
    pipe = FeaturePipeline.fit(frame, SPEC, RankFeatureConfig(hash_threshold=10, hash_buckets=16))
    user = pipe.fields[0]
    assert user.buckets == 16 and user.vocab == [] and user.size == 17
    cat, _ = pipe.transform(frame)
    assert cat[:, 0].min() >= 1 and cat[:, 0].max() <= 16
    restored = FeaturePipeline.from_dict(pipe.to_dict())
    assert np.array_equal(restored.transform(frame)[0], cat)
    assert cat[frame["user"] == "u7", 0][0] == restored.transform(frame.iloc[7:8])[0][0, 0]


def test_rows_round_trip_through_an_arrow_table():
    pipe = FeaturePipeline.fit(TRAIN, SPEC, RankFeatureConfig(multi_max_len=3))
    rows = pipe.rows(TRAIN, ["click"])
    back = Rows.from_columns(rows.to_table())
    for a in ("cat", "dense", "labels", "groups"):
        assert np.array_equal(getattr(back, a), getattr(rows, a))
    assert pipe.layout().slots == (1, 1, 3) and pipe.layout().n_fields == 4


def test_missing_columns_are_named():
    with pytest.raises(DataError, match="'price'"):
        FeaturePipeline.fit(TRAIN.drop(columns="price"), SPEC, RankFeatureConfig())
    with pytest.raises(DataError, match="empty"):
        FeaturePipeline.fit(TRAIN.iloc[:0], SPEC, RankFeatureConfig())
