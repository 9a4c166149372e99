"""Every registry model: output shapes, a few gradient steps lower the loss, save/load keeps scores."""

import numpy as np
import pandas as pd
import pytest
import torch

from reco.errors import ConfigError
from reco.rank.artifact import Ranker
from reco.rank.calibration import Calibrator
from reco.rank.catalog import Catalog
from reco.rank.config import RankFeatureConfig, RankModelConfig
from reco.rank.features import FeaturePipeline, FeatureSpec, FieldSpec
from reco.rank.losses import bce_loss, focal_loss
from reco.rank.models import MODELS, MULTI_LABEL, build_model
from reco.rank.models.neumf import NeuMF

SPEC = FeatureSpec(
    (
        FieldSpec("user", "cat", "user"),
        FieldSpec("age", "dense", "user"),
        FieldSpec("item", "cat", "item"),
        FieldSpec("genres", "multi", "item"),
        FieldSpec("hour", "cat", "context"),
    ),
    user_key="user",
    item_key="item",
)


def toy_frame(n: int = 256, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    user, item = rng.integers(0, 20, n), rng.integers(0, 30, n)
    genres = np.array(["a", "b", "a|c", "", "b|c|d"], dtype=object)[item % 5]
    click = ((user + item) % 3 == 0).astype(np.float32)
    return pd.DataFrame(
        {
            "user": user.astype(str),
            "age": 20.0 + user,
            "item": item.astype(str),
            "genres": genres,
            "hour": rng.integers(0, 24, n),
            "click": click,
            "conversion": click * (item % 2),
        }
    )


def small_cfg(name: str, **extra) -> RankModelConfig:
    base = dict(
        embed_dim=8,
        mlp_dims=[16],
        dropout=0.0,
        attention_dim=8,
        attention_heads=2,
        attention_layers=2,
        expert_dims=[16],
        tower_dims=[8],
        retention_dim=8,
        retention_heads=2,
        gate_dims=[16],
        cross_layers=2,
    )
    return RankModelConfig(name=name, **{**base, **extra})


CASES = [(name, {}, ["click"]) for name in MODELS if name not in {"shared_bottom", "mmoe"}] + [
    ("shared_bottom", {}, ["click", "conversion"]),
    ("mmoe", {}, ["click", "conversion"]),
    ("mmoe", {"esmm": True}, ["click", "conversion"]),
    ("dcnv2", {"cross_rank": 4, "cross_structure": "stacked"}, ["click"]),
]


@pytest.fixture(scope="module")
def encoded():
    frame = toy_frame()
    pipe = FeaturePipeline.fit(frame, SPEC, RankFeatureConfig(multi_max_len=3))
    return frame, pipe


@pytest.mark.parametrize(
    "name, extra, labels", CASES, ids=[f"{c[0]}{'-' + '-'.join(c[1]) if c[1] else ''}" for c in CASES]
)
def test_model_trains_and_round_trips(encoded, name, extra, labels):
    frame, pipe = encoded
    torch.manual_seed(0)
    rows = pipe.rows(frame, labels)
    model = build_model(small_cfg(name, **extra), pipe.layout(), len(labels))
    cat, dense, y = torch.from_numpy(rows.cat), torch.from_numpy(rows.dense), torch.from_numpy(rows.labels)
    logits = model(cat, dense)
    assert logits.shape == (len(frame), len(labels)) and torch.isfinite(logits).all()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    before = float(bce_loss(model(cat, dense), y).detach())
    for _ in range(5):
        loss = bce_loss(model(cat, dense), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(bce_loss(model(cat, dense), y).detach()) < before
    ranker = Ranker(
        model.eval(),
        small_cfg(name, **extra),
        pipe,
        Catalog.build(pipe, frame, frame),
        labels,
        [Calibrator("temperature", {"t": 1.5})] * len(labels),
    )
    again = Ranker.from_bytes(ranker.to_bytes())
    assert np.allclose(ranker.score_frame(frame), again.score_frame(frame), atol=1e-6)
    assert np.allclose(ranker.score("3", ["1", "2", "unseen"]), again.score("3", ["1", "2", "unseen"]), atol=1e-6)


def test_esmm_conversion_is_click_times_conversion_given_click(encoded):
    frame, pipe = encoded
    rows = pipe.rows(frame, ["click", "conversion"])
    model = build_model(small_cfg("mmoe", esmm=True), pipe.layout(), 2).eval()
    z = model(torch.from_numpy(rows.cat), torch.from_numpy(rows.dense)).detach()
    p_click, p_ctcvr = torch.sigmoid(z[:, 0]), torch.sigmoid(z[:, 1])
    assert (p_ctcvr <= p_click + 1e-6).all()


def test_neumf_pretraining_reproduces_the_weighted_halves(encoded):
    frame, pipe = encoded
    rows = pipe.rows(frame, ["click"])
    cat, dense = torch.from_numpy(rows.cat), torch.from_numpy(rows.dense)
    cfg = small_cfg("neumf")
    gmf, mlp = (
        build_model(small_cfg("gmf"), pipe.layout(), 1).eval(),
        build_model(small_cfg("mlp"), pipe.layout(), 1).eval(),
    )
    neumf = NeuMF(pipe.layout(), cfg).eval()
    neumf.load_pretrained(gmf.state_dict(), mlp.state_dict(), alpha=0.5)
    want = 0.5 * gmf(cat, dense) + 0.5 * mlp(cat, dense)
    assert torch.allclose(neumf(cat, dense), want, atol=1e-5)


def test_build_errors_name_the_setting(encoded):
    _, pipe = encoded
    with pytest.raises(ConfigError, match="learns one label"):
        build_model(small_cfg("deepfm"), pipe.layout(), 2)
    tiny = FeaturePipeline.fit(toy_frame(), FeatureSpec((FieldSpec("hour", "cat"),)), RankFeatureConfig())
    with pytest.raises(ConfigError, match="needs user and item id fields"):
        build_model(small_cfg("mf"), tiny.layout(), 1)
    with pytest.raises(ConfigError, match="divisible"):
        build_model(small_cfg("autoint+", attention_heads=3), pipe.layout(), 1)
    assert MULTI_LABEL <= set(MODELS)


def test_focal_loss_reduces_to_bce_and_down_weights_easy_examples():
    z = torch.tensor([[3.0], [-2.0], [0.1]])
    y = torch.tensor([[1.0], [0.0], [1.0]])
    assert torch.allclose(focal_loss(z, y, gamma=0.0, alpha=0.5) * 2, bce_loss(z, y))
    easy = focal_loss(torch.tensor([[4.0]]), torch.tensor([[1.0]]), gamma=2.0, alpha=0.5)
    hard = focal_loss(torch.tensor([[-1.0]]), torch.tensor([[1.0]]), gamma=2.0, alpha=0.5)
    assert easy < 0.01 * hard
