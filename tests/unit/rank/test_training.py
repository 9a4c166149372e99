"""The training loop without Ray: negative sampling, early stopping, the best epoch's weights."""

import numpy as np
import pandas as pd

from reco.rank.catalog import Catalog
from reco.rank.config import RankFeatureConfig, RankModelConfig, RankTrainConfig
from reco.rank.features import FeaturePipeline, FeatureSpec, FieldSpec
from reco.rank.models import build_model
from reco.rank.training import MONITOR_KEY, NegativeSampler, fit, predict_logits, seen_pairs, validation_metrics

SPEC = FeatureSpec(
    (FieldSpec("user", "cat", "user"), FieldSpec("item", "cat", "item")), user_key="user", item_key="item"
)


def implicit(seed: int = 0) -> pd.DataFrame:
    """Users 0-29 like even items, users 30-59 odd ones."""
    rng = np.random.default_rng(seed)
    user = rng.integers(0, 60, 900)
    item = rng.integers(0, 20, 900) * 2 + (user >= 30)
    return pd.DataFrame({"user": user.astype(str), "item": item.astype(str), "label": 1.0}).drop_duplicates(
        ["user", "item"]
    )


def test_sampled_negatives_are_unseen_catalogue_items():
    train = implicit()
    pipe = FeaturePipeline.fit(train, SPEC, RankFeatureConfig())
    items = pd.DataFrame({"item": [str(i) for i in range(40)]})
    catalog = Catalog.build(pipe, train[["user"]], items)
    rows = pipe.rows(train, ["label"])
    layout = pipe.layout()
    sampler = NegativeSampler(layout, catalog.items, seen_pairs(layout, rows), k=4)
    out = sampler.augment(rows, np.random.default_rng(0))
    assert len(out) == 5 * len(rows) and out.labels[len(rows) :].sum() == 0
    neg = out.take(slice(len(rows), None))
    seen = set(zip(rows.cat[:, 0], rows.cat[:, 1]))
    clashes = sum((u, i) in seen for u, i in zip(neg.cat[:, 0], neg.cat[:, 1]))
    assert clashes <= 0.01 * len(neg)
    assert set(neg.cat[:, 1]) <= set(catalog.items.cat[:-1, 0])


def test_fit_learns_the_preference_and_keeps_the_best_epoch():
    train, val = implicit(0), implicit(1)
    pipe = FeaturePipeline.fit(train, SPEC, RankFeatureConfig())
    catalog = Catalog.build(pipe, train[["user"]], pd.DataFrame({"item": [str(i) for i in range(40)]}))
    layout = pipe.layout()
    tr = pipe.rows(train, ["label"])
    neg = val.assign(item=((val["item"].astype(int) + 1) % 40).astype(str), label=0.0)  # the other parity: disliked
    va = pipe.rows(pd.concat([val, neg], ignore_index=True), ["label"])
    cfg = RankTrainConfig(epochs=6, batch_size=64, lr=0.02, patience=2, negatives=2)
    model = build_model(RankModelConfig(name="mf", embed_dim=8), layout, 1)
    state, best = fit(model, tr, va, cfg, ["label"], NegativeSampler(layout, catalog.items, seen_pairs(layout, tr), 2))
    assert 1 <= state.best_epoch <= state.epoch <= 6
    assert state.history[state.best_epoch - 1][MONITOR_KEY] == max(h[MONITOR_KEY] for h in state.history)
    final = validation_metrics(predict_logits(model, va.cat, va.dense), va.labels, va.groups, "auc", ["label"])
    assert final["val_auc"] == state.best_metric > 0.8  # the model holds the best epoch's weights


def test_monitored_value_signs():
    z = np.array([[2.0], [-1.0], [0.5], [-2.0]])
    y = np.array([[1.0], [0.0], [1.0], [0.0]])
    g = np.zeros(4, np.int64)
    assert validation_metrics(z, y, g, "auc", ["t"])[MONITOR_KEY] == 1.0
    m = validation_metrics(z, y, g, "logloss", ["t"])
    assert m[MONITOR_KEY] == -m["val_logloss"] < 0
