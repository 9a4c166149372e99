"""The one-file ranker artifact: loaded from a run directory, scoring raw ids, OOV, bad files."""

import numpy as np
import pandas as pd
import pytest

from reco import artifacts
from reco.errors import ArtifactError
from reco.rank.artifact import Ranker
from reco.rank.calibration import Calibrator
from reco.rank.catalog import Catalog
from reco.rank.config import RankFeatureConfig, RankModelConfig
from reco.rank.features import FeaturePipeline, FeatureSpec, FieldSpec
from reco.rank.models import build_model
from reco.rank.training import predict_logits
from reco.run_dir import RunDir

SPEC = FeatureSpec(
    (
        FieldSpec("user", "cat", "user"),
        FieldSpec("age", "dense", "user"),
        FieldSpec("item", "cat", "item"),
        FieldSpec("genre", "cat", "item"),
        FieldSpec("hour", "cat", "context"),
    ),
    user_key="user",
    item_key="item",
)


@pytest.fixture(scope="module")
def ranker():
    rng = np.random.default_rng(0)
    users = pd.DataFrame({"user": [f"u{i}" for i in range(10)], "age": np.arange(10) * 5.0})
    items = pd.DataFrame({"item": [f"i{i}" for i in range(12)], "genre": ["g0", "g1", "g2"] * 4})
    train = pd.DataFrame(
        {
            "user": rng.choice(users["user"], 200),
            "item": rng.choice(items["item"][:10], 200),
            "hour": rng.integers(0, 24, 200),
        }
    )
    train = train.merge(users, on="user").merge(items, on="item").assign(click=1.0)
    pipe = FeaturePipeline.fit(train, SPEC, RankFeatureConfig())
    model = build_model(RankModelConfig(name="deepfm", embed_dim=4, mlp_dims=[8]), pipe.layout(), 1).eval()
    return Ranker(
        model,
        RankModelConfig(name="deepfm", embed_dim=4, mlp_dims=[8]),
        pipe,
        Catalog.build(pipe, users, items),
        ["click"],
        [Calibrator("platt", {"a": 0.5, "b": -0.2})],
        {"data": "toy"},
    ), train


def test_score_matches_the_rows_it_stands_for(ranker):
    r, train = ranker
    got = r.score("u3", ["i1", "i11", "never-seen"], context={"hour": 5})
    frame = pd.DataFrame(
        {"user": "u3", "age": 15.0, "item": ["i1", "i11", "never-seen"], "genre": ["g1", "g2", None], "hour": 5}
    )
    assert np.allclose(got, r.score_frame(frame)[:, 0], atol=1e-6)
    assert ((got > 0) & (got < 1)).all()
    # i11 is in the catalogue but was never trained on: OOV item id, its genre still known
    cat, _ = r.pipeline.transform(frame)
    assert cat[1, 1] == 0 and cat[1, 2] > 0 and cat[2, 2] == 0  # id fields: user, item, genre, hour


def test_unknown_user_scores_like_the_oov_row_and_context_is_optional(ranker):
    r, _ = ranker
    a = r.score("nobody", ["i1", "i2"])
    frame = pd.DataFrame(
        {"user": ["nobody"] * 2, "age": [None] * 2, "item": ["i1", "i2"], "genre": ["g1", "g2"], "hour": [None] * 2}
    )
    assert np.allclose(a, r.score_frame(frame)[:, 0], atol=1e-6)
    raw = r.score("u1", ["i1"], calibrated=False)
    z = predict_logits(r.model, *r.catalog.assemble(r.catalog.users.lookup(["u1"]), r.catalog.items.lookup(["i1"])))
    assert np.allclose(raw, 1 / (1 + np.exp(-z[:, 0])), atol=1e-6)
    with pytest.raises(ArtifactError, match="unknown task"):
        r.score("u1", ["i1"], task="conversion")


def test_load_from_a_run_dir_checks_the_manifest(ranker, tmp_path):
    r, _ = ranker
    run = RunDir(str(tmp_path))
    run.start({})
    run.write_bytes(artifacts.RANKER, r.to_bytes(), step="test")
    loaded = Ranker.load(str(tmp_path))
    assert np.allclose(loaded.score("u2", ["i3", "i4"]), r.score("u2", ["i3", "i4"]))
    assert loaded.meta["data"] == "toy"
    (tmp_path / artifacts.RANKER).write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match=artifacts.RANKER):
        Ranker.load(str(tmp_path))
    with pytest.raises(ArtifactError, match="not a ranker artifact"):
        Ranker.from_bytes(b"garbage", "x.pt")


def test_score_batch_equals_score_per_request_in_one_forward_pass(ranker):
    r, _ = ranker
    requests = [
        ("u3", ["i1", "i11", "never-seen"], {"hour": 5}),
        ("nobody", ["i2"], None),
        ("u1", [], {"hour": 7}),
        ("u7", ["i4", "i5", "i6", "i0"], {}),
        ("u2", ["i9"], {"hour": 23, "unused_key": "x"}),
    ]
    calls = []
    hook = r.model.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
    try:
        got = r.score_batch(requests)
    finally:
        hook.remove()
    assert calls == [9]  # every request's candidates in one pass
    assert [len(p) for p in got] == [3, 1, 0, 4, 1]
    for (user, items, ctx), p in zip(requests, got):
        assert np.allclose(p, r.score(user, items, context=ctx), atol=1e-6)
        assert np.allclose(
            r.score_batch([(user, items, ctx)], calibrated=False)[0],
            r.score(user, items, context=ctx, calibrated=False),
            atol=1e-6,
        )
    # a context value must not change type beside a request without one (5 stays "5", not "5.0")
    cat, _ = r.catalog.request_context_rows([{"hour": 5}, None], [1, 1])
    hour = r.pipeline.layout().names.index("hour")
    assert cat[0, hour] == r.pipeline.fields[-1].vocab.index("5") + 1 and cat[1, hour] == 0
    assert r.score_batch([("u1", [], None)])[0].shape == (0,)
    with pytest.raises(ArtifactError, match="unknown task"):
        r.score_batch(requests, task="conversion")
