"""The evaluation protocol: seed-list definitions, splits, figures, and the bucket summary."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from reco.expansion.config import ExpansionConfig, SizeBuckets, SyntheticListsConfig
from reco.expansion.list_definitions import community_audiences, spread, topic_audiences
from reco.expansion.protocol import (
    EvalList,
    UserSpace,
    against_best_other,
    audience_figures,
    evaluate_split,
    recall_at_holdout,
    split_list,
    summarize,
)


def test_figures_by_hand():
    held = np.zeros(10, bool)
    held[[1, 2, 3, 4]] = True
    truth = np.zeros(10, bool)
    truth[[1, 2, 3, 4, 5, 6]] = True
    f = audience_figures(np.array([1, 5, 9]), held, truth, 3, "k")
    assert f == {"recall@k": 0.25, "precision@k": pytest.approx(1 / 3), "truth_precision@k": pytest.approx(2 / 3)}


def test_split_holds_out_a_share_and_keeps_the_rest():
    rng = np.random.default_rng(0)
    members = np.arange(100, 150)
    held, rest = split_list(members, 0.2, rng)
    assert len(held) == 10 and len(rest) == 40 and not set(held) & set(rest) and set(held) | set(rest) == set(members)
    held, rest = split_list(np.array([1, 2]), 0.2, rng)
    assert len(held) == 1 and len(rest) == 1


def _space(rng, n=1500, dim=16, clusters=5):
    centres = rng.standard_normal((clusters, dim)) * 1.5
    label = rng.integers(0, clusters, n)
    x = centres[label] + rng.standard_normal((n, dim))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    cfg = ExpansionConfig()
    cfg.classifier.hidden = 8
    cfg.classifier.max_epochs = 60
    return UserSpace.build(x, rng.integers(1, 100, n), cfg), label, cfg


def test_one_split_scores_every_method_and_beats_random_on_clusters():
    rng = np.random.default_rng(1)
    space, label, cfg = _space(rng)
    members = np.flatnonzero(label == 0)
    rows = pd.DataFrame(evaluate_split(space, EvalList("c0", members, "large", members), 0, cfg))
    assert set(rows.method) == set(cfg.protocol.methods)
    wide = rows.pivot(index="method", columns="metric", values="value")
    assert ((wide >= 0) & (wide <= 1)).all().all()
    assert (wide["recall@holdout"] == wide["precision@holdout"]).all()  # K = |H|
    for m in ("blend", "density", "classifier", "centroid", "logreg"):
        assert wide.loc[m, "auc"] > 0.9 and wide.loc[m, "recall@holdout"] > wide.loc["random", "recall@holdout"]
    assert abs(wide.loc["random", "auc"] - 0.5) < 0.2


def test_validation_stage_never_scores_the_test_seeds():
    rng = np.random.default_rng(2)
    space, label, cfg = _space(rng)
    members = np.flatnonzero(label == 1)
    test_rows = evaluate_split(space, EvalList("c1", members, "large"), 0, cfg)
    cfg.protocol.stage = "validation"
    val_rows = evaluate_split(space, EvalList("c1", members, "large"), 0, cfg)
    held_test = test_rows[0]["held_out"]
    assert val_rows[0]["seeds"] + val_rows[0]["held_out"] == len(members) - held_test


def test_summary_averages_lists_and_splits_per_bucket():
    rows = pd.DataFrame(
        [
            {
                "list": "a",
                "bucket": "small",
                "split": s,
                "size": 20,
                "method": "blend",
                "metric": "recall@holdout",
                "value": v,
            }
            for s, v in enumerate([0.2, 0.4])
        ]
        + [
            {
                "list": "b",
                "bucket": "small",
                "split": 0,
                "size": 30,
                "method": "blend",
                "metric": "recall@holdout",
                "value": 0.9,
            }
        ]
    )
    s = summarize(rows)
    assert s["small"]["lists"] == 2 and s["small"]["mean_size"] == 25
    assert s["small"]["methods"]["blend"]["recall@holdout"] == pytest.approx(0.5)
    assert recall_at_holdout(s) == {"small": {"blend": 0.5}}


def test_topic_audiences_fill_every_bucket_and_name_the_topics_to_exclude():
    rows = []
    for t, size in enumerate([12, 20, 30, 60, 120, 180, 250, 400, 3]):
        rows += [(f"u{u}", f"t{t}", 5.0) for u in range(size)] + [(f"v{u}", f"t{t}", 2.0) for u in range(7)]
    raw = pa.table(
        {
            "user": [r[0] for r in rows],
            "topic": [r[1] for r in rows],
            "weight": pa.array([r[2] for r in rows], pa.float32()),
        }
    )
    d = topic_audiences(raw, SizeBuckets(), per_bucket=2, min_size=10, prefix="m:", min_weight=4)
    sizes = {k: len(v) for k, v in d.lists.items()}
    assert sizes == {"m:t0": 12, "m:t2": 30, "m:t3": 60, "m:t5": 180, "m:t6": 250, "m:t7": 400}
    assert d.exclude_topics == ["t0", "t2", "t3", "t5", "t6", "t7"]
    every = topic_audiences(raw, SizeBuckets(), 2, 10, "m:").lists  # without min_weight: the 2.0 ratings count too
    assert len(every["m:t8"]) == 10 and len(every["m:t2"]) == 37


def test_community_audiences_whole_and_sampled():
    rng = np.random.default_rng(0)
    users = np.arange(3000)
    comm = rng.integers(0, 4, 3000)
    truth = pa.table({"user_id": users, "community": comm, "share": np.where(users % 10 == 0, 0.05, 0.8)})
    d = community_audiences(truth, SizeBuckets(), SyntheticListsConfig(per_bucket=3, min_share=0.1, min_size=10))
    buckets = pd.Series({k: SizeBuckets().of(len(v)) for k, v in d.lists.items()})
    assert buckets.value_counts().to_dict() == {"large": 3, "small": 3, "medium": 3}
    for name, members in d.lists.items():
        c = int(name.split(":")[1].split("/")[0])
        assert set(members) <= set(d.truth[name]) and set(d.truth[name]) == set(users[(comm == c) & (users % 10 != 0)])


def test_spread_picks_evenly():
    assert spread(np.arange(10), 3).tolist() == [0, 4, 9] or spread(np.arange(10), 3).tolist() == [0, 5, 9]
    assert spread(np.arange(2), 5).tolist() == [0, 1]


def _rows(blend, other, weak):
    """recall@holdout per list (one split) for blend, a strong other method and a weak one."""
    rows = []
    for i, values in enumerate(zip(blend, other, weak)):
        for method, v in zip(("blend", "other", "weak"), values):
            rows.append(
                {
                    "bucket": "large",
                    "list": f"l{i}",
                    "split": 0,
                    "method": method,
                    "metric": "recall@holdout",
                    "value": v,
                }
            )
    return pd.DataFrame(rows)


def test_blend_against_the_best_other_method_is_paired_over_lists():
    base = np.array([0.2, 0.5, 0.8, 0.3, 0.6, 0.4])  # lists differ a lot; the methods move together
    weak = base - 0.3
    better = against_best_other(_rows(base + 0.02 + 0.001 * np.arange(6), base, weak))["large"]
    assert better["best_other"] == "other" and better["verdict"] == "better" and better["diff"] > 0
    assert against_best_other(_rows(base - 0.02 - 0.001 * np.arange(6), base, weak))["large"]["verdict"] == "worse"
    noisy = against_best_other(_rows(base + np.array([0.05, -0.05, 0.04, -0.04, 0.03, -0.03]), base, weak))["large"]
    assert noisy["verdict"] == "tied" and abs(noisy["z"]) < 2
